//! Trace headers added on receipt: Return-Path, Received (RFC 5321 §4.4), and on
//! submission the Message-ID and Date a client left out (RFC 6409 §8).

use mail_builder::headers::date::Date;

use crate::mime::facts::MessageFacts;

/// How the message reached us, for the Received header.
#[derive(Debug, Clone)]
pub struct TraceInfo {
    /// Our host name.
    pub hostname: String,
    /// The client's EHLO name.
    pub helo: String,
    /// The client's IP address.
    pub peer_ip: String,
    /// `ESMTPS`, `ESMTPSA`… (RFC 3848).
    pub protocol: &'static str,
    /// TLS version, if any.
    pub tls_version: Option<String>,
    /// TLS cipher suite, if any.
    pub tls_cipher: Option<String>,
    /// Verified client certificate subject, if any.
    pub peer_subject: Option<String>,
    /// Our identifier of this transaction.
    pub id: String,
    /// Unix seconds.
    pub time: i64,
}

/// Keeps printable ASCII only and no quotes or parentheses, so a value cannot break a header.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| !matches!(c, '"' | '(' | ')' | ';' | '\\'))
        .take(256)
        .collect()
}

/// The final bytes: trace headers, then the message as received.
pub fn assemble(
    raw: &[u8],
    facts: &MessageFacts,
    mail_from: &str,
    trace: &TraceInfo,
    add_missing_ids: bool,
) -> (Vec<u8>, Option<String>) {
    let date = Date::new(trace.time).to_rfc822();
    let mut head = String::with_capacity(512);
    head.push_str(&format!("Return-Path: <{}>\r\n", clean(mail_from)));
    head.push_str(&format!(
        "Received: from {} ([{}])\r\n\tby {} (MES) with {} id {}",
        clean(&trace.helo),
        clean(&trace.peer_ip),
        clean(&trace.hostname),
        trace.protocol,
        trace.id
    ));
    if let (Some(v), Some(c)) = (&trace.tls_version, &trace.tls_cipher) {
        head.push_str(&format!("\r\n\t(version={} cipher={}", clean(v), clean(c)));
        if let Some(s) = &trace.peer_subject {
            head.push_str(&format!(" verified-peer=\"{}\"", clean(s)));
        }
        head.push(')');
    }
    head.push_str(&format!(";\r\n\t{date}\r\n"));
    let mut message_id = facts.message_id.clone();
    if add_missing_ids {
        if message_id.is_none() {
            let id = format!("{}@{}", trace.id, clean(&trace.hostname));
            head.push_str(&format!("Message-ID: <{id}>\r\n"));
            message_id = Some(id);
        }
        if !facts.has_date {
            head.push_str(&format!("Date: {date}\r\n"));
        }
    }
    let mut out = Vec::with_capacity(head.len() + raw.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(raw);
    (out, message_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> TraceInfo {
        TraceInfo {
            hostname: "mx.a.test".into(),
            helo: "client\r\nInjected: yes".into(),
            peer_ip: "127.0.0.1".into(),
            protocol: "ESMTPSA",
            tls_version: Some("TLSv1.3".into()),
            tls_cipher: Some("TLS13_AES_128_GCM_SHA256".into()),
            peer_subject: Some("CN=x, O=y".into()),
            id: "abc123".into(),
            time: 1_700_000_000,
        }
    }

    #[test]
    fn adds_trace_and_missing_ids_without_header_injection() {
        let raw = b"Subject: hi\r\n\r\nbody\r\n";
        let facts = MessageFacts::read(raw);
        let (out, id) = assemble(raw, &facts, "jean@a.test", &info(), true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "Return-Path: <jean@a.test>\r\nReceived: from clientInjected: yes ([127.0.0.1])"
        ));
        assert!(text.contains(
            "version=TLSv1.3 cipher=TLS13_AES_128_GCM_SHA256 verified-peer=\"CN=x, O=y\""
        ));
        assert!(text.contains("Message-ID: <abc123@mx.a.test>\r\n"));
        assert!(text.contains("\r\nDate: "));
        assert!(text.ends_with("Subject: hi\r\n\r\nbody\r\n"));
        assert_eq!(id.as_deref(), Some("abc123@mx.a.test"));
        assert!(!text.contains("\r\nInjected"));
    }
}
