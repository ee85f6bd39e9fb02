//! The patient's messages, built by the server as proper RFC 5322 messages
//! (mail-builder) so that the professional's mail client threads them.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;

/// File types a patient may attach (PDF, JPEG, PNG, TIFF, TXT, RTF), checked by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentKind {
    /// application/pdf
    Pdf,
    /// image/jpeg
    Jpeg,
    /// image/png
    Png,
    /// image/tiff
    Tiff,
    /// text/plain
    Text,
    /// application/rtf
    Rtf,
}

impl AttachmentKind {
    /// The MIME type sent.
    pub fn mime(self) -> &'static str {
        match self {
            AttachmentKind::Pdf => "application/pdf",
            AttachmentKind::Jpeg => "image/jpeg",
            AttachmentKind::Png => "image/png",
            AttachmentKind::Tiff => "image/tiff",
            AttachmentKind::Text => "text/plain",
            AttachmentKind::Rtf => "application/rtf",
        }
    }
}

/// Why an attachment is refused (shown to the patient, in French).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// Over the size limit.
    #[error("La pièce jointe « {name} » dépasse la taille maximale de {limit_mb} Mo.")]
    TooLarge {
        /// File name.
        name: String,
        /// Limit in MB.
        limit_mb: usize,
    },
    /// Not an accepted type.
    #[error(
        "La pièce jointe « {name} » n'est pas d'un type accepté (PDF, JPEG, PNG, TIFF, TXT, RTF)."
    )]
    Type {
        /// File name.
        name: String,
    },
}

/// Checks an attachment by name and content.
pub fn check_attachment(
    name: &str,
    data: &[u8],
    limit: usize,
) -> Result<AttachmentKind, AttachmentError> {
    if data.len() > limit {
        return Err(AttachmentError::TooLarge {
            name: name.to_string(),
            limit_mb: limit / (1024 * 1024),
        });
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let kind = match ext.as_str() {
        "pdf" if data.starts_with(b"%PDF") => Some(AttachmentKind::Pdf),
        "jpg" | "jpeg" if data.starts_with(&[0xff, 0xd8, 0xff]) => Some(AttachmentKind::Jpeg),
        "png" if data.starts_with(b"\x89PNG\r\n\x1a\n") => Some(AttachmentKind::Png),
        "tif" | "tiff" if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") => {
            Some(AttachmentKind::Tiff)
        }
        "rtf" if data.starts_with(b"{\\rtf") => Some(AttachmentKind::Rtf),
        "txt" if std::str::from_utf8(data).is_ok() => Some(AttachmentKind::Text),
        _ => None,
    };
    kind.ok_or_else(|| AttachmentError::Type {
        name: name.to_string(),
    })
}

/// A message from a patient.
#[derive(Debug, Clone)]
pub struct PatientMessage {
    /// Patient's display name.
    pub from_name: String,
    /// Patient's address.
    pub from: String,
    /// Correspondent's name.
    pub to_name: String,
    /// Correspondent's address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Text typed by the patient.
    pub text: String,
    /// Message-ID it replies to.
    pub in_reply_to: Option<String>,
    /// References of the thread.
    pub references: Vec<String>,
    /// Checked attachments: (file name, kind, content).
    pub attachments: Vec<(String, AttachmentKind, Vec<u8>)>,
    /// Our host name (Message-ID right-hand side).
    pub hostname: String,
}

/// Builds the message; returns (content, Message-ID without brackets).
/// Names, subject and file names may come from incoming mail: they lose any
/// control character here too, so none can start a header or a part.
pub fn build(m: PatientMessage) -> std::io::Result<(Vec<u8>, String)> {
    use crate::mime::facts::clean_text;
    let id = format!("{:016x}.patient@{}", rand::random::<u64>(), m.hostname);
    let mut b = MessageBuilder::new()
        .from(Address::new_address(
            Some(clean_text(&m.from_name)),
            m.from.clone(),
        ))
        .to(Address::new_address(
            Some(clean_text(&m.to_name)),
            m.to.clone(),
        ))
        .subject(clean_text(&m.subject))
        .message_id(id.clone())
        .date(mail_builder::headers::date::Date::new(
            crate::clock::system_now(),
        ))
        .text_body(m.text.clone());
    if let Some(r) = &m.in_reply_to {
        b = b.in_reply_to(r.clone());
    }
    if !m.references.is_empty() {
        b = b.references(m.references.clone());
    }
    for (name, kind, data) in m.attachments {
        b = b.attachment(kind.mime(), clean_text(&name), data);
    }
    Ok((b.write_to_vec()?, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_rules() {
        assert_eq!(
            check_attachment("cr.pdf", b"%PDF-1.7 ...", 100),
            Ok(AttachmentKind::Pdf)
        );
        assert!(matches!(
            check_attachment("cr.pdf", b"MZ\x90\0", 100),
            Err(AttachmentError::Type { .. })
        ));
        assert!(matches!(
            check_attachment("virus.exe", b"MZ", 100),
            Err(AttachmentError::Type { .. })
        ));
        assert!(matches!(
            check_attachment("big.txt", &[b'a'; 200], 100),
            Err(AttachmentError::TooLarge { .. })
        ));
        assert_eq!(
            check_attachment("photo.PNG", b"\x89PNG\r\n\x1a\nxxxx", 100),
            Ok(AttachmentKind::Png)
        );
    }

    #[test]
    fn built_message_threads_in_a_mail_client() {
        let (raw, id) = build(PatientMessage {
            from_name: "Dominique Pat-Trois".into(),
            from: "279035121518989@patient.mes.test".into(),
            to_name: "Dr Jean Dupont".into(),
            to: "jean.dupont@hopital-a.mes.test".into(),
            subject: "Re: Résultats\r\nBcc: x@y.test\r\n\r\nforged".into(),
            text: "Merci docteur".into(),
            in_reply_to: Some("abc@hopital-a.mes.test".into()),
            references: vec!["abc@hopital-a.mes.test".into()],
            attachments: vec![],
            hostname: "mx.test".into(),
        })
        .unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(
            text.contains("In-Reply-To: <abc@hopital-a.mes.test>"),
            "{text}"
        );
        assert!(
            text.contains("References: <abc@hopital-a.mes.test>"),
            "{text}"
        );
        assert!(text.contains(&format!("Message-ID: <{id}>")), "{text}");
        assert!(
            text.contains("\"Dominique Pat-Trois\" <279035121518989@patient.mes.test>"),
            "{text}"
        );
        // A subject carried over from incoming mail never adds a header or a part.
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .unwrap();
        assert_eq!(parsed.subject(), Some("Re: Résultats Bcc: x@y.test forged"));
        assert_eq!(parsed.header_values("Bcc").count(), 0, "{text}");
        assert_eq!(parsed.header_values("Subject").count(), 1, "{text}");
        assert_eq!(parsed.body_text(0).as_deref(), Some("Merci docteur"));
    }
}
