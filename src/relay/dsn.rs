//! Delivery status notifications (RFC 3464): a multipart/report with a readable
//! explanation (French first: the senders are French health professionals), the
//! machine-readable delivery-status, and the original headers (or the whole
//! message with RET=FULL).

use mail_builder::MessageBuilder;
use mail_builder::headers::HeaderType;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::text::Text;
use mail_builder::mime::MimePart;

/// What happened to a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnAction {
    /// Given up.
    Failed,
    /// Still trying.
    Delayed,
}

/// One recipient in a DSN.
#[derive(Debug, Clone)]
pub struct DsnRecipient {
    /// Final recipient address.
    pub address: String,
    /// ORCPT (`rfc822;…`).
    pub orcpt: Option<String>,
    /// Failed or delayed.
    pub action: DsnAction,
    /// Enhanced status code, e.g. `5.1.1`.
    pub status: String,
    /// The remote's reply or our reason.
    pub diagnostic: String,
    /// The remote MTA, when one answered.
    pub remote_mta: Option<String>,
}

/// The original message's envelope facts.
#[derive(Debug, Clone)]
pub struct Original<'a> {
    /// Reverse path (the DSN's recipient).
    pub mail_from: &'a str,
    /// ENVID.
    pub envid: Option<&'a str>,
    /// RET=FULL asks for the whole message.
    pub full: bool,
    /// Unix seconds of acceptance.
    pub arrival: i64,
    /// The stored content.
    pub content: &'a [u8],
}

/// The enhanced status code inside an SMTP reply text (`550 5.1.1 …`), or `fallback`.
pub fn status_of(reply: &str, fallback: &str) -> String {
    reply
        .split_whitespace()
        .nth(1)
        .filter(|s| {
            let parts: Vec<&str> = s.split('.').collect();
            // RFC 3463: class 2, 4 or 5, then two numbers.
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .unwrap_or(fallback)
        .to_string()
}

/// Builds the DSN message from `hostname`'s postmaster to the original sender.
pub fn build(
    hostname: &str,
    original: &Original<'_>,
    rcpts: &[DsnRecipient],
) -> std::io::Result<Vec<u8>> {
    let failed = rcpts.iter().any(|r| r.action == DsnAction::Failed);
    let list: String = rcpts
        .iter()
        .map(|r| format!("  <{}>: {}\r\n", r.address, r.diagnostic))
        .collect();
    let human = if failed {
        format!(
            "Votre message n'a pas pu être remis aux destinataires suivants :\r\n\r\n{list}\r\n\
             Your message could not be delivered to the recipients above.\r\n\r\n-- {hostname}\r\n"
        )
    } else {
        format!(
            "Votre message n'a pas encore pu être remis ; nous continuons d'essayer :\r\n\r\n{list}\r\n\
             Your message has not been delivered yet; delivery will be retried.\r\n\r\n-- {hostname}\r\n"
        )
    };
    let mut status = format!(
        "Reporting-MTA: dns; {hostname}\r\nArrival-Date: {}\r\n",
        Date::new(original.arrival).to_rfc822()
    );
    if let Some(envid) = original.envid {
        status.push_str(&format!("Original-Envelope-Id: {envid}\r\n"));
    }
    for r in rcpts {
        status.push_str("\r\n");
        if let Some(o) = &r.orcpt {
            status.push_str(&format!("Original-Recipient: {o}\r\n"));
        }
        status.push_str(&format!("Final-Recipient: rfc822; {}\r\n", r.address));
        status.push_str(&format!(
            "Action: {}\r\nStatus: {}\r\n",
            if r.action == DsnAction::Failed {
                "failed"
            } else {
                "delayed"
            },
            r.status
        ));
        if let Some(m) = &r.remote_mta {
            let host = m.split_whitespace().next().unwrap_or(m);
            status.push_str(&format!("Remote-MTA: dns; {host}\r\n"));
        }
        status.push_str(&format!(
            "Diagnostic-Code: smtp; {}\r\n",
            r.diagnostic.replace(['\r', '\n'], " ")
        ));
        status.push_str(&format!(
            "Last-Attempt-Date: {}\r\n",
            Date::new(crate::clock::system_now()).to_rfc822()
        ));
    }
    let returned = if original.full {
        MimePart::new("message/rfc822", original.content.to_vec()).transfer_encoding("8bit")
    } else {
        MimePart::new(
            "text/rfc822-headers",
            crate::mime::header_fields(original.content).to_vec(),
        )
        .transfer_encoding("8bit")
    };
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", human),
            MimePart::new("message/delivery-status", status.into_bytes()).transfer_encoding("7bit"),
            returned,
        ],
    );
    let subject = if failed {
        "Message non remis / Undelivered mail"
    } else {
        "Message retardé / Delayed mail"
    };
    MessageBuilder::new()
        .from((
            "Mail Delivery System".to_string(),
            format!("mailer-daemon@{hostname}"),
        ))
        .to(original.mail_from)
        .subject(subject)
        .header(
            "Auto-Submitted",
            HeaderType::Text(Text::new("auto-replied")),
        )
        .message_id(format!("dsn.{}@{hostname}", crate::clock::system_now()))
        .body(report)
        .write_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_report_has_the_three_parts() {
        let content = b"From: a@a.test\r\nSubject: CR\r\n\r\nsecret body\r\n";
        let dsn = build(
            "mx.a.test",
            &Original {
                mail_from: "a@a.test",
                envid: Some("env1"),
                full: false,
                arrival: 1_700_000_000,
                content,
            },
            &[DsnRecipient {
                address: "b@b.test".into(),
                orcpt: Some("rfc822;b@b.test".into()),
                action: DsnAction::Failed,
                status: status_of("550 5.1.1 No such user", "5.0.0"),
                diagnostic: "550 5.1.1 No such user".into(),
                remote_mta: Some("mx.b.test [127.0.0.1]:25".into()),
            }],
        )
        .unwrap();
        let text = String::from_utf8(dsn).unwrap();
        assert!(text.contains("multipart/report"), "{text}");
        assert!(
            text.contains("report-type=\"delivery-status\"")
                || text.contains("report-type=delivery-status"),
            "{text}"
        );
        assert!(text.contains("Action: failed\r\nStatus: 5.1.1"), "{text}");
        assert!(text.contains("Original-Envelope-Id: env1"), "{text}");
        assert!(text.contains("Remote-MTA: dns; mx.b.test"), "{text}");
        assert!(text.contains("Subject: CR"), "original headers returned");
        assert!(
            !text.contains("secret body"),
            "RET=HDRS returns headers only"
        );
        assert!(text.contains("Auto-Submitted: auto-replied"));
    }
}
