//! Messages as the patient sees them: the text, and for HTML mail a copy passed
//! through ammonia (no script, no event handler, no image, no style, links limited
//! to http/https/mailto); the sender's name; the attachment list.

use std::sync::OnceLock;

use mail_parser::{MimeHeaders, PartType};
use serde::Serialize;

/// One attachment in a message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// Position among the message's attachments.
    pub index: usize,
    /// File name (or a generic one).
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Octets (decoded).
    pub size: usize,
}

/// A message's readable parts.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rendered {
    /// Sender's display name (or address).
    pub from_name: String,
    /// Subject.
    pub subject: String,
    /// Plain text body.
    pub text: String,
    /// Sanitised HTML body, when the message was written in HTML.
    pub html: Option<String>,
    /// Attachments.
    pub attachments: Vec<AttachmentInfo>,
}

/// Renders a stored message.
pub fn render(raw: &[u8]) -> Rendered {
    let Some(msg) = crate::mime::parse(raw) else {
        return Rendered {
            from_name: String::new(),
            subject: String::new(),
            text: String::new(),
            html: None,
            attachments: Vec::new(),
        };
    };
    let from = msg.from().and_then(|a| a.first());
    let from_name = from
        .and_then(|a| a.name().map(str::to_string))
        .or_else(|| from.and_then(|a| a.address().map(str::to_string)))
        .unwrap_or_default();
    let attachments = msg
        .attachments()
        .enumerate()
        .map(|(index, part)| AttachmentInfo {
            index,
            filename: part
                .attachment_name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("piece-jointe-{}", index + 1)),
            content_type: part
                .content_type()
                .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("octet-stream")))
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: part.contents().len(),
        })
        .collect();
    Rendered {
        from_name,
        subject: msg.subject().unwrap_or_default().to_string(),
        text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: msg.html_part(0).and_then(|part| match &part.body {
            PartType::Html(html) => Some(sanitize(html)),
            _ => None,
        }),
        attachments,
    }
}

/// The sanitiser: ammonia's safe defaults, minus images (remote images would tell
/// the sender when and where the patient reads), plus `rel` on every link.
fn sanitizer() -> &'static ammonia::Builder<'static> {
    static BUILDER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    BUILDER.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        b.rm_tags(["img"])
            .url_schemes(["http", "https", "mailto"].into_iter().collect())
            .link_rel(Some("noopener noreferrer nofollow"));
        b
    })
}

/// Sanitises an HTML body for display inside a page.
pub fn sanitize(html: &str) -> String {
    sanitizer().clean(html).to_string()
}

/// The bytes of attachment `index`, with its info.
pub fn attachment(raw: &[u8], index: usize) -> Option<(AttachmentInfo, Vec<u8>)> {
    let msg = crate::mime::parse(raw)?;
    let part = msg.attachment(index as u32)?;
    let info = render(raw).attachments.into_iter().nth(index)?;
    Some((info, part.contents().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_html_loses_every_active_part() {
        let clean = sanitize(
            r#"<p onclick="steal()">Bonjour</p><script>steal()</script>
            <img src="https://tracker.example/p.png"><a href="javascript:steal()">lien</a>
            <a href="https://example.org/">site</a><style>p{background:url(https://x/)}</style>
            <iframe src="https://x/"></iframe><form action="https://x/"><input></form>"#,
        );
        for needle in [
            "onclick",
            "script",
            "img",
            "javascript:",
            "style",
            "iframe",
            "form",
            "input",
        ] {
            assert!(!clean.contains(needle), "{needle} left in {clean}");
        }
        assert!(clean.contains("Bonjour"), "{clean}");
        assert!(
            clean.contains(r#"href="https://example.org/" rel="noopener noreferrer nofollow""#),
            "{clean}"
        );
    }

    #[test]
    fn html_mail_gets_a_sanitised_copy_and_text_mail_none() {
        let html = b"From: a@b.test\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<p>Bonjour<script>x()</script></p>\r\n";
        let r = render(html);
        assert_eq!(r.html.as_deref().map(str::trim), Some("<p>Bonjour</p>"));
        let text = b"From: a@b.test\r\nSubject: x\r\n\r\nBonjour\r\n";
        assert_eq!(render(text).html, None);
    }
}
