//! Messages as the patient sees them: text only (HTML turned into text by
//! mail-parser, never rendered), the sender's name, the attachment list.

use mail_parser::{MessageParser, MimeHeaders};
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
    /// Attachments.
    pub attachments: Vec<AttachmentInfo>,
}

/// Renders a stored message.
pub fn render(raw: &[u8]) -> Rendered {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Rendered {
            from_name: String::new(),
            subject: String::new(),
            text: String::new(),
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
        attachments,
    }
}

/// The bytes of attachment `index`, with its info.
pub fn attachment(raw: &[u8], index: usize) -> Option<(AttachmentInfo, Vec<u8>)> {
    let msg = MessageParser::default().parse(raw)?;
    let part = msg.attachment(index as u32)?;
    let info = render(raw).attachments.into_iter().nth(index)?;
    Some((info, part.contents().to_vec()))
}
