//! The messages of one folder as an mbox (RFC 4155, "mboxrd" quoting): each
//! message as stored, after a `From ` separator line, its lines that start
//! with `From ` (after any number of `>`) quoted with one more `>`, and an
//! empty line after it. Readers that un-quote (mail-parser, mutt, Thunderbird)
//! get the stored bytes back.

use mail_parser::MessageParser;

/// The `From sender asctime` separator line of `raw`: the envelope sender
/// (Return-Path, else the From address, else `MAILER-DAEMON`) and the Date
/// header (the epoch when it has none), so that the line depends on the
/// message alone.
pub fn separator(raw: &[u8]) -> String {
    let parsed = MessageParser::new().parse_headers(raw);
    let sender = parsed
        .as_ref()
        .and_then(|m| m.return_address())
        .map(|s| {
            s.chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .collect::<String>()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "MAILER-DAEMON".to_string());
    let at = parsed
        .as_ref()
        .and_then(|m| m.date())
        .map_or(0, |d| d.to_timestamp());
    let when = chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .format("%a %b %e %H:%M:%S %Y");
    format!("From {sender} {when}\n")
}

/// Appends `raw` to `out` as one mbox message: separator, quoted lines and
/// one newline, which is the empty line that ends the message when it ends
/// with a newline, and ends its last line otherwise. Readers take that one
/// newline off and get the stored bytes exactly, whatever the last line.
pub fn append(raw: &[u8], out: &mut Vec<u8>) {
    out.reserve(raw.len() + 128);
    out.extend_from_slice(separator(raw).as_bytes());
    for line in raw.split_inclusive(|b| *b == b'\n') {
        let quoted = line.iter().position(|b| *b != b'>').unwrap_or(line.len());
        if line[quoted..].starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
    out.push(b'\n');
}

/// The path of a folder's mbox in the archive: `messages/NAME.mbox`, the
/// hierarchy kept as folders, characters that file systems refuse replaced
/// by `_` and no `.`/`..` segment.
pub fn path(folder: &str) -> String {
    let segments: Vec<String> = folder
        .split('/')
        .map(|seg| {
            let clean: String = seg
                .chars()
                .map(|c| {
                    if c.is_control() || "\\:*?\"<>|".contains(c) {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            if clean.is_empty() || clean == "." || clean == ".." {
                "_".to_string()
            } else {
                clean
            }
        })
        .collect();
    format!("messages/{}.mbox", segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_from_lines_and_reads_back() {
        let raw = b"From: <a@b.test>\r\nDate: Thu, 1 Jan 2026 10:00:00 +0000\r\n\r\nFrom here\r\n>From there\r\nok\r\n";
        let mut out = Vec::new();
        append(raw, &mut out);
        append(b"Subject: x\r\n\r\nno newline", &mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("From a@b.test Thu Jan  1 10:00:00 2026\n"),
            "{text}"
        );
        assert!(
            text.contains("\r\n>From here\r\n>>From there\r\n"),
            "{text}"
        );
        let back: Vec<_> = mail_parser::mailbox::mbox::MessageIterator::new(&out[..])
            .map(|m| m.map(|m| m.contents().to_vec()))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        assert_eq!(back.len(), 2);
        assert_eq!(&back[0][..back[0].len() - 1], &raw[..]);
        assert_eq!(back[1], b"Subject: x\r\n\r\nno newline\n");
    }

    #[test]
    fn paths_are_safe() {
        assert_eq!(path("INBOX"), "messages/INBOX.mbox");
        assert_eq!(path("Archives/2026"), "messages/Archives/2026.mbox");
        assert_eq!(path("../x:y"), "messages/_/x_y.mbox");
    }
}
