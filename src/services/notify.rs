//! Notifications a connected service puts in its patient's INBOX
//! (`messages.notify`): a short plain French text, no attachment, from a
//! fixed address of the service that nobody reads (decided here, never by
//! the service), built with mail-builder. The web layer reads the FHIR
//! `Communication`, counts the daily limit and hands the message to the one
//! delivery path (`delivery::Source::Service`).

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;

/// Most characters of a notification's text.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Most characters of its subject.
pub const MAX_SUBJECT_CHARS: usize = 120;

/// Why a notification is refused (answered 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// No text.
    #[error("the text is empty")]
    Empty,
    /// Text or subject too long.
    #[error("the text is longer than 2000 characters or the subject than 120")]
    TooLong,
    /// Control characters (other than line breaks and tabs in the text).
    #[error("control characters are not allowed")]
    Control,
}

/// A checked notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Subject.
    pub subject: String,
    /// Text, lines ending in CRLF.
    pub text: String,
}

/// The service's sender address on the patient's domain: `no-reply+ID@DOMAIN`
/// (ids are `a-z 0-9 - .`, so the local part is always valid).
pub fn from_address(service_id: &str, domain: &str) -> String {
    format!("no-reply+{service_id}@{domain}")
}

/// The sender's name as the patient reads it.
pub fn display_name(service_name: &str) -> String {
    format!("{service_name} (service connecté)")
}

/// Checks a service's text and optional subject (default: "Notification de
/// NAME").
pub fn check(
    text: &str,
    subject: Option<&str>,
    service_name: &str,
) -> Result<Notification, NotifyError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(NotifyError::Empty);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(NotifyError::TooLong);
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(NotifyError::Control);
    }
    let subject = match subject.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > MAX_SUBJECT_CHARS => return Err(NotifyError::TooLong),
        Some(s) if s.chars().any(char::is_control) => return Err(NotifyError::Control),
        Some(s) => s.to_string(),
        None => format!("Notification de {service_name}"),
    };
    let text = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n");
    Ok(Notification { subject, text })
}

/// The message of `n` from service (`id`, `name`) to `patient`.
pub fn message(
    n: &Notification,
    service: (&str, &str),
    patient: &str,
    domain: &str,
    now: i64,
    message_id: String,
) -> std::io::Result<Vec<u8>> {
    let body = format!(
        "{}\r\n\r\n-- \r\nMessage envoyé par le service « {} » que vous avez connecté à votre \
         espace santé. Il ne peut pas recevoir de réponse.\r\n",
        n.text, service.1
    );
    MessageBuilder::new()
        .from(Address::new_address(
            Some(display_name(service.1)),
            from_address(service.0, domain),
        ))
        .to(Address::new_address(None::<String>, patient.to_string()))
        .subject(n.subject.clone())
        .message_id(message_id)
        .date(mail_builder::headers::date::Date::new(now))
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-generated"),
        )
        .text_body(body)
        .write_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_checked_and_composed() {
        let n = check("Votre relevé\nest prêt.", None, "Suivi Tension").unwrap();
        assert_eq!(n.subject, "Notification de Suivi Tension");
        assert_eq!(n.text, "Votre relevé\r\nest prêt.");
        assert_eq!(check("  ", None, "x"), Err(NotifyError::Empty));
        let long = "é".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(check(&long, None, "x"), Err(NotifyError::TooLong));
        assert!(check(&"é".repeat(MAX_TEXT_CHARS), None, "x").is_ok());
        assert_eq!(check("a\u{1b}[2J", None, "x"), Err(NotifyError::Control));
        assert_eq!(check("a", Some("b\nc"), "x"), Err(NotifyError::Control));
        let raw = message(
            &n,
            ("suivi-tension", "Suivi Tension"),
            "p@patient.example",
            "patient.example",
            1_800_000_000,
            "id@x".into(),
        )
        .unwrap();
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let from = m.from().and_then(|f| f.first()).unwrap();
        assert_eq!(
            from.address(),
            Some("no-reply+suivi-tension@patient.example")
        );
        assert_eq!(from.name(), Some("Suivi Tension (service connecté)"));
        assert_eq!(m.attachment_count(), 0);
        assert!(m.body_text(0).unwrap_or_default().contains("Votre relevé"));
    }
}
