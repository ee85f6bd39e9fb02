//! Message disposition notifications (RFC 8098) telling a sender what indexing
//! did with the structured attachments it sent to a patient: `processed` when
//! they were filed, `processed/error` with the integration error code (902
//! unknown or other patient, 903 no INS, 904 unknown document to withdraw,
//! 905 incomplete INS, 906 another author's document) when not. An MDN about
//! CDA documents carries their `X-MSS-CODECDA` and `X-MSS-INS`, computed
//! from the documents read (`dossier::headers`).

use mail_builder::MessageBuilder;
use mail_builder::headers::HeaderType;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::text::Text;
use mail_builder::mime::MimePart;

use super::headers::{self, MssHeaders};

/// What the MDN reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Every structured document was filed.
    Processed,
    /// Not filed: integration error code and its text.
    Error(u16, String),
}

/// The message the MDN is about.
#[derive(Debug, Clone)]
pub struct Original<'a> {
    /// Address in its `Disposition-Notification-To`.
    pub notify_to: &'a str,
    /// The recipient whose copy is reported.
    pub final_recipient: &'a str,
    /// Its Message-ID, without brackets.
    pub message_id: Option<&'a str>,
    /// Its header block (returned as text/rfc822-headers).
    pub headers: &'a [u8],
    /// The MSSanté headers of the documents it carried, as read.
    pub documents: &'a MssHeaders,
}

/// Builds the MDN, from our mailer-daemon to the address that asked for it.
pub fn build(
    hostname: &str,
    original: &Original<'_>,
    disposition: &Disposition,
) -> std::io::Result<Vec<u8>> {
    let (human, disposition_field, error) = match disposition {
        Disposition::Processed => (
            format!(
                "Les documents joints à votre message pour <{}> ont été intégrés à son dossier.\r\n\
                 The documents attached to your message were filed in the patient's record.\r\n",
                original.final_recipient
            ),
            "automatic-action/MDN-sent-automatically; processed",
            None,
        ),
        Disposition::Error(code, text) => (
            format!(
                "Les documents joints à votre message pour <{}> n'ont pas été intégrés : {text} (code {code}).\r\n\
                 The documents attached to your message were not filed (error {code}).\r\n",
                original.final_recipient
            ),
            "automatic-action/MDN-sent-automatically; processed/error",
            Some(format!("{code} {}", text.replace(['\r', '\n'], " "))),
        ),
    };
    let mut report = format!(
        "Reporting-UA: {hostname}; MES\r\nFinal-Recipient: rfc822; {}\r\n",
        original.final_recipient
    );
    if let Some(id) = original.message_id {
        report.push_str(&format!("Original-Message-ID: <{id}>\r\n"));
    }
    report.push_str(&format!("Disposition: {disposition_field}\r\n"));
    if let Some(e) = error {
        report.push_str(&format!("Error: {e}\r\n"));
    }
    let body = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "disposition-notification"),
        vec![
            MimePart::new("text/plain", human),
            MimePart::new("message/disposition-notification", report.into_bytes())
                .transfer_encoding("8bit"),
            MimePart::new("text/rfc822-headers", original.headers.to_vec())
                .transfer_encoding("8bit"),
        ],
    );
    let mut builder = MessageBuilder::new()
        .from((
            "Mail Delivery System".to_string(),
            format!("mailer-daemon@{hostname}"),
        ))
        .to(original.notify_to)
        .subject("Accusé de traitement / Disposition notification")
        .header(
            "Auto-Submitted",
            HeaderType::Text(Text::new("auto-replied")),
        )
        .message_id(format!(
            "mdn.{}.{}@{hostname}",
            crate::clock::system_now(),
            rand::random::<u32>()
        ))
        .body(body);
    if let Some(id) = original.message_id {
        builder = builder
            .in_reply_to(format!("<{id}>"))
            .references(format!("<{id}>"));
    }
    if let (Some(codes), Some(ins)) = (
        original.documents.codecda_value(),
        original.documents.ins_value(),
    ) {
        builder = builder
            .header(headers::CODECDA, HeaderType::Text(Text::new(codes)))
            .header(headers::INS, HeaderType::Text(Text::new(ins)));
    }
    builder.write_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};

    fn report_fields(raw: &[u8]) -> String {
        let msg = MessageParser::default().parse(raw).expect("parses");
        assert!(
            msg.content_type()
                .is_some_and(|ct| ct.ctype() == "multipart"
                    && ct.subtype() == Some("report")
                    && ct.attribute("report-type") == Some("disposition-notification")),
            "multipart/report; report-type=disposition-notification"
        );
        let part = msg
            .parts
            .iter()
            .find(|p| {
                p.content_type().is_some_and(|ct| {
                    ct.ctype() == "message" && ct.subtype() == Some("disposition-notification")
                })
            })
            .expect("a message/disposition-notification part");
        String::from_utf8_lossy(part.contents()).into_owned()
    }

    #[test]
    fn processed_and_error_reports_follow_rfc_8098() {
        let original = Original {
            notify_to: "jean@hopital.test",
            final_recipient: "279035121518989@patient.test",
            message_id: Some("m1@hopital.test"),
            headers: b"Subject: x\r\n\r\n",
            documents: &MssHeaders::default(),
        };
        let ok = build("mes.test", &original, &Disposition::Processed).unwrap();
        let fields = report_fields(&ok);
        assert!(fields.contains("Reporting-UA: mes.test; MES"), "{fields}");
        assert!(fields.contains("Final-Recipient: rfc822; 279035121518989@patient.test"));
        assert!(fields.contains("Original-Message-ID: <m1@hopital.test>"));
        assert!(
            fields.contains("Disposition: automatic-action/MDN-sent-automatically; processed\r\n")
        );

        let err = build(
            "mes.test",
            &original,
            &Disposition::Error(903, "Aucun INS".into()),
        )
        .unwrap();
        let fields = report_fields(&err);
        assert!(fields.contains("; processed/error\r\n"), "{fields}");
        assert!(fields.contains("Error: 903 Aucun INS"), "{fields}");
        let text = String::from_utf8_lossy(&err);
        assert!(!text.contains("X-MSS-"), "no CDA, no MSSanté header");

        let documents = MssHeaders {
            codecda: vec!["SYNTH".into(), "11490-0".into()],
            ins: Some(true),
        };
        let about = Original {
            documents: &documents,
            ..original
        };
        let ok = build("mes.test", &about, &Disposition::Processed).unwrap();
        let msg = MessageParser::default().parse(&ok).unwrap();
        assert_eq!(
            msg.header_raw("X-MSS-CODECDA").map(str::trim),
            Some("SYNTH,11490-0")
        );
        assert_eq!(msg.header_raw("X-MSS-INS").map(str::trim), Some("O"));
    }
}
