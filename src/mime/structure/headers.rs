//! Header fields read from the raw header block, values exactly as sent:
//! splitting a block into fields, `HEADER.FIELDS (…)` and `HEADER.FIELDS.NOT
//! (…)`, unfolding, and whether the Content-* headers of a message count.

use super::params::PartData;

/// One header field as it appears in the raw header block.
pub(super) struct Field<'h> {
    /// Field name, white space before the colon removed.
    pub(super) name: &'h [u8],
    /// Value: after the colon and the white space that follows it, folded
    /// lines included (with their CRLF), without the final line ending.
    pub(super) value: &'h [u8],
    /// The field's bytes, all its lines with their line endings.
    pub(super) raw: &'h [u8],
}

/// Splits a header block into fields. Returns the fields and the blank line
/// that ends the block, if any.
pub(super) fn split_fields(block: &[u8]) -> (Vec<Field<'_>>, &[u8]) {
    let (block, eoh) = match crate::mime::blank_line(block) {
        Some(blank) => (&block[..blank.start], &block[blank]),
        None => (block, &[][..]),
    };
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut starts: Vec<(usize, usize, usize)> = Vec::new(); // (start, value start, name end)
    let mut ends: Vec<(usize, usize)> = Vec::new(); // (content end, raw end)
    let mut pos = 0;
    while pos < block.len() {
        let line_end = block[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(block.len(), |i| pos + i + 1);
        let line = &block[pos..line_end];
        let content_len = line.len()
            - if line.ends_with(b"\r\n") {
                2
            } else {
                usize::from(line.ends_with(b"\n"))
            };
        let continues = matches!(line[0], b' ' | b'\t');
        if continues && let Some(last) = ends.last_mut() {
            *last = (pos + content_len, line_end);
        } else {
            let content = &line[..content_len];
            let (name_end, value_start) = match content.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let mut name_end = colon;
                    while name_end > 0 && matches!(content[name_end - 1], b' ' | b'\t') {
                        name_end -= 1;
                    }
                    // Skip the white space after the colon; if the first line
                    // is nothing but white space, skip only one character.
                    let rest = &content[colon + 1..];
                    let ws = rest
                        .iter()
                        .take_while(|b| matches!(b, b' ' | b'\t'))
                        .count();
                    let skip = if ws == rest.len() { ws.min(1) } else { ws };
                    (name_end, colon + 1 + skip)
                }
                None => (content_len, content_len),
            };
            starts.push((pos, pos + value_start, pos + name_end));
            ends.push((pos + content_len, line_end));
        }
        pos = line_end;
    }
    for (&(start, value_start, name_end), &(content_end, raw_end)) in starts.iter().zip(&ends) {
        fields.push(Field {
            name: &block[start..name_end],
            value: block.get(value_start..content_end).unwrap_or_default(),
            raw: &block[start..raw_end],
        });
    }
    (fields, eoh)
}

/// `HEADER.FIELDS (…)` (`wanted` true) or `HEADER.FIELDS.NOT (…)`.
/// HEADER.FIELDS.NOT ends with the message's own blank line if it has one.
/// HEADER.FIELDS ends with a blank line too, as RFC 3501 asks, and like
/// Dovecot also adds one after the fields it found in a message that has no
/// blank line (no field found there gives the empty string).
pub(super) fn header_fields(block: &[u8], names: &[&[u8]], wanted: bool) -> Vec<u8> {
    let (fields, eoh) = split_fields(block);
    let mut out = Vec::new();
    for field in &fields {
        let matches = names.iter().any(|n| n.eq_ignore_ascii_case(field.name));
        if matches == wanted {
            out.extend_from_slice(field.raw);
            if !field.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    if !wanted {
        out.extend_from_slice(eoh);
    } else if !eoh.is_empty() || !out.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Removes CR and LF (unfolds a header value, keeping the folding white space).
pub(super) fn unfold(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

/// Whether the Content-* headers of a message header count: it has a
/// MIME-Version or a Content-Type header.
pub(super) fn is_mime_message(header: &[u8]) -> bool {
    split_fields(header).0.iter().any(|f| {
        f.name.eq_ignore_ascii_case(b"MIME-Version") || f.name.eq_ignore_ascii_case(b"Content-Type")
    })
}

pub(super) fn is_message_rfc822(header: &[u8]) -> bool {
    PartData::from_header(header).is_message_rfc822()
}
