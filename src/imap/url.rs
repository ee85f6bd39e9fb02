//! IMAP URLs (RFC 5092) as CATENATE (RFC 4469) uses them: one message, or a
//! part of one, of the logged-in account on this server. Pure parsing; the
//! session looks the message up (`op/catenate.rs`).
//!
//! Accepted forms: `imap://[user@]OURHOST[:port]/MAILBOX[;UIDVALIDITY=v]/;UID=u…`
//! (only our host name, only the logged-in user), the absolute path
//! `/MAILBOX[;UIDVALIDITY=v]/;UID=u…` and `;UID=u…` relative to the selected
//! mailbox, each with optional `/;SECTION=s` and `/;PARTIAL=o[.l]`.
//! Percent-encoding is decoded; mailbox names are UTF-8 (RFC 5092 §3.2).
//! URLAUTH-authorised URLs are refused: they serve access by other users,
//! which this server does not offer.

/// A message, or part of one, named by a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageUrl {
    /// The mailbox's UTF-8 name; None: the selected mailbox.
    pub mailbox: Option<String>,
    /// The UIDVALIDITY the mailbox must have.
    pub uidvalidity: Option<u32>,
    /// The message's UID.
    pub uid: u32,
    /// A BODY[] section (`1.2`, `HEADER`, `1.MIME`…), decoded.
    pub section: Option<String>,
    /// `<offset.length>` of the section's octets (length None: to the end).
    pub partial: Option<(u32, Option<u32>)>,
}

/// Why a URL names nothing CATENATE can use (the client gets `NO [BADURL …]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Another server's URL.
    #[error("URL of another server")]
    OtherServer,
    /// Another user's mailbox.
    #[error("URL of another user's mailbox")]
    OtherUser,
    /// URLAUTH (RFC 4467) is not supported.
    #[error("URLAUTH is not supported")]
    UrlAuth,
    /// A mailbox or search URL: no message UID.
    #[error("URL does not name a message")]
    NotAMessage,
    /// Not an IMAP URL.
    #[error("malformed IMAP URL")]
    Syntax,
}

/// Parses `url` for the logged-in `user` of the server named `hostname`.
pub fn parse(url: &str, hostname: &str, user: &str) -> Result<MessageUrl, UrlError> {
    let lower = url.to_ascii_lowercase();
    let path = if lower.starts_with("imap://") || lower.starts_with("//") {
        let after = &url[url.find("//").map_or(0, |i| i + 2)..];
        let (authority, path) = match after.find('/') {
            Some(i) => after.split_at(i),
            None => return Err(UrlError::NotAMessage),
        };
        check_authority(authority, hostname, user)?;
        path
    } else if url.starts_with('/') || url.starts_with(';') {
        url
    } else {
        return Err(UrlError::Syntax);
    };
    if path.contains('?') {
        // A search URL (RFC 5092 `enc-search`): not one message.
        return Err(UrlError::NotAMessage);
    }
    parse_path(path)
}

/// `[user[;AUTH=…]@]host[:port]`: our host, and the logged-in user if named.
fn check_authority(authority: &str, hostname: &str, user: &str) -> Result<(), UrlError> {
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let host = if hostport.starts_with('[') {
        // An IP literal: `[::1]:143`.
        hostport.find(']').map_or(hostport, |i| &hostport[..=i])
    } else {
        hostport.split(':').next().unwrap_or(hostport)
    };
    if host.is_empty() || !host.eq_ignore_ascii_case(hostname) {
        return Err(UrlError::OtherServer);
    }
    if let Some(info) = userinfo {
        let enc_user = info.split(';').next().unwrap_or(info);
        if !enc_user.is_empty() {
            let name = decode(enc_user)?;
            if !name.eq_ignore_ascii_case(user) {
                return Err(UrlError::OtherUser);
            }
        }
    }
    Ok(())
}

/// `/MAILBOX[;UIDVALIDITY=v]/;UID=u[/;SECTION=s][/;PARTIAL=o.l]` or `;UID=u…`.
fn parse_path(path: &str) -> Result<MessageUrl, UrlError> {
    let (mailbox, params) = match path.strip_prefix('/') {
        Some(rest) => {
            let end = rest.find(';').unwrap_or(rest.len());
            let name = rest[..end].strip_suffix('/').unwrap_or(&rest[..end]);
            if name.is_empty() {
                return Err(UrlError::NotAMessage);
            }
            (Some(decode(name)?), &rest[end..])
        }
        None => (None, path),
    };
    let mut url = MessageUrl {
        mailbox,
        uidvalidity: None,
        uid: 0,
        section: None,
        partial: None,
    };
    let mut seen_uid = false;
    for param in params.split(';').skip(1) {
        let param = param.strip_suffix('/').unwrap_or(param);
        let (key, value) = param.split_once('=').ok_or(UrlError::Syntax)?;
        match key.to_ascii_uppercase().as_str() {
            "UIDVALIDITY" if !seen_uid && url.mailbox.is_some() => {
                url.uidvalidity = Some(number(value)?);
            }
            "UID" if !seen_uid => {
                url.uid = number(value)?;
                seen_uid = true;
            }
            "SECTION" if seen_uid && url.section.is_none() => {
                url.section = Some(decode(value)?);
            }
            "PARTIAL" if seen_uid && url.partial.is_none() => {
                let (offset, length) = match value.split_once('.') {
                    Some((o, l)) => (number(o)?, Some(number(l)?)),
                    None => (number(value)?, None),
                };
                url.partial = Some((offset, length));
            }
            "URLAUTH" | "EXPIRE" => return Err(UrlError::UrlAuth),
            _ => return Err(UrlError::Syntax),
        }
    }
    if !seen_uid || url.uid == 0 {
        return Err(UrlError::NotAMessage);
    }
    Ok(url)
}

fn number(text: &str) -> Result<u32, UrlError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::Syntax);
    }
    text.parse().map_err(|_| UrlError::Syntax)
}

/// Percent-decoding into UTF-8.
fn decode(text: &str) -> Result<String, UrlError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or(UrlError::Syntax)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError::Syntax)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::Syntax)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "imap.mes.test";
    const USER: &str = "dr.a@mes.test";

    fn url(mailbox: Option<&str>, uidvalidity: Option<u32>, uid: u32) -> MessageUrl {
        MessageUrl {
            mailbox: mailbox.map(str::to_string),
            uidvalidity,
            uid,
            section: None,
            partial: None,
        }
    }

    #[test]
    fn relative_and_absolute_forms() {
        assert_eq!(
            parse("/Drafts;UIDVALIDITY=385759045/;UID=20", HOST, USER),
            Ok(url(Some("Drafts"), Some(385759045), 20))
        );
        assert_eq!(
            parse("/INBOX/;UID=3", HOST, USER),
            Ok(url(Some("INBOX"), None, 3))
        );
        assert_eq!(parse(";UID=7", HOST, USER), Ok(url(None, None, 7)));
        assert_eq!(
            parse(
                "imap://dr.a%40mes.test;AUTH=*@IMAP.mes.test:993/Archives%2F2026/%C3%A9t%C3%A9;UIDVALIDITY=9/;UID=1",
                HOST,
                USER
            ),
            Ok(url(Some("Archives/2026/été"), Some(9), 1))
        );
        assert_eq!(
            parse("imap://imap.mes.test/INBOX/;UID=1", HOST, USER),
            Ok(url(Some("INBOX"), None, 1))
        );
    }

    #[test]
    fn sections_and_partials() {
        let parsed = parse(
            "/Drafts;UIDVALIDITY=1/;UID=20/;SECTION=HEADER.FIELDS%20(SUBJECT%20TO)/;PARTIAL=10.20",
            HOST,
            USER,
        )
        .unwrap();
        assert_eq!(
            parsed.section.as_deref(),
            Some("HEADER.FIELDS (SUBJECT TO)")
        );
        assert_eq!(parsed.partial, Some((10, Some(20))));
        let parsed = parse("/Drafts/;UID=20/;section=1.MIME", HOST, USER).unwrap();
        assert_eq!(parsed.section.as_deref(), Some("1.MIME"));
        assert_eq!(
            parse("/a/;UID=2/;PARTIAL=5", HOST, USER).unwrap().partial,
            Some((5, None))
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse("imap://mx.other.test/INBOX/;UID=1", HOST, USER),
            Err(UrlError::OtherServer)
        );
        assert_eq!(
            parse("imap://bob@imap.mes.test/INBOX/;UID=1", HOST, USER),
            Err(UrlError::OtherUser)
        );
        assert_eq!(
            parse("/INBOX/;UID=1;URLAUTH=anonymous:internal:abc", HOST, USER),
            Err(UrlError::UrlAuth)
        );
        assert_eq!(parse("/INBOX", HOST, USER), Err(UrlError::NotAMessage));
        assert_eq!(
            parse("/INBOX?SUBJECT%20x", HOST, USER),
            Err(UrlError::NotAMessage)
        );
        assert_eq!(
            parse("/INBOX/;UID=0", HOST, USER),
            Err(UrlError::NotAMessage)
        );
        for bad in [
            "http://imap.mes.test/INBOX/;UID=1",
            "INBOX/;UID=1",
            "/INBOX/;UID=x",
            "/INBOX/;UID=1/;SECTION=%zz",
            "/INBOX/;UID=1/;FOO=1",
            "/IN%FFBOX/;UID=1",
        ] {
            assert_eq!(parse(bad, HOST, USER), Err(UrlError::Syntax), "{bad}");
        }
    }
}
