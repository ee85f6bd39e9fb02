//! What SEARCH's text keys look at in a message: its headers decoded and
//! lower-cased (address lists written as Dovecot searches them), its text
//! body, its sent date. One parse for IMAP SEARCH's content path and for the
//! search text stored at delivery, so that both give the same answers.

use mail_parser::HeaderValue;

/// The parts of a message text keys look at, decoded and lower-cased.
#[derive(Debug, Default)]
pub struct Parsed {
    /// (lower-case name, decoded lower-cased value) of every field, in order.
    pub headers: Vec<(String, String)>,
    /// The text and HTML bodies, decoded and lower-cased (empty unless asked for).
    pub body: String,
    /// The Date field's day, as written (its own zone).
    pub sent: Option<chrono::NaiveDate>,
}

/// Parses `raw` (headers only unless `with_body`); unparsable: nothing.
pub fn parse(raw: &[u8], with_body: bool) -> Parsed {
    let parsed = if with_body {
        super::parse(raw)
    } else {
        super::parse_headers(raw)
    };
    let Some(msg) = parsed else {
        return Parsed::default();
    };
    let mut headers = Vec::new();
    for h in msg.headers() {
        let name = h.name().to_ascii_lowercase();
        let start = h.offset_start() as usize;
        let end = (h.offset_end() as usize).min(raw.len());
        let value_bytes = raw.get(start..end).unwrap_or_default();
        let value = if ADDRESS_HEADERS.contains(&name.as_str()) {
            // As Dovecot: the address list rewritten (groups included), then decoded.
            decode_words(&super::structure::address_search_form(value_bytes))
        } else {
            match h.value() {
                HeaderValue::Text(t) => t.to_string(),
                HeaderValue::TextList(list) => list.join(" "),
                _ => String::from_utf8_lossy(value_bytes).into_owned(),
            }
        };
        headers.push((name, value.to_lowercase()));
    }
    let mut body = String::new();
    for i in 0..if with_body { msg.text_body_count() } else { 0 } {
        if let Some(t) = msg.body_text(i) {
            body.push_str(&t);
            body.push('\n');
        }
    }
    for i in 0..if with_body { msg.html_body_count() } else { 0 } {
        if let Some(t) = msg.body_html(i) {
            body.push_str(&t);
            body.push('\n');
        }
    }
    // The date as written, in the header's own zone (RFC 3501 §6.4.4).
    let sent = msg.date().and_then(|d| {
        chrono::NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
    });
    Parsed {
        headers,
        body: body.to_lowercase(),
        sent,
    }
}

/// The headers Dovecot searches as address lists (`message_header_is_address`).
const ADDRESS_HEADERS: [&str; 11] = [
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-bcc",
];

/// `text` with its RFC 2047 encoded-words decoded, by mail-parser's reading
/// of an unstructured header.
fn decode_words(text: &[u8]) -> String {
    if !text.windows(2).any(|w| w == b"=?") {
        return String::from_utf8_lossy(text).into_owned();
    }
    let mut header = b"Subject: ".to_vec();
    header.extend_from_slice(text);
    header.extend_from_slice(b"\r\n\r\n");
    super::parse_headers(&header)
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(text).into_owned())
}

/// The values of the fields `name` as the stored search text: one line each,
/// `\n` before each (`""`: no such field). None when a value holds a `\n` (a
/// line could not tell values apart) or a NUL (PostgreSQL TEXT cannot hold
/// it): the message then keeps the content path for that key.
pub fn lines(parsed: &Parsed, name: &str) -> Option<String> {
    let mut text = String::new();
    for (_, v) in parsed.headers.iter().filter(|(n, _)| n == name) {
        if v.contains(['\n', '\0']) {
            return None;
        }
        text.push('\n');
        text.push_str(v);
    }
    Some(text)
}
