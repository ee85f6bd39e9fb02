//! One outbound SMTP connection (mail-send, on smtp-proto like our server side):
//! STARTTLS required with the trust anchors and our operator certificate, the
//! server's certificate subject checked by the caller (the destination domain's
//! whitelisted operator, under the DN rule), then several messages on the same
//! connection, MAIL/RCPT pipelined when offered, each recipient's answer kept apart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mail_send::SmtpClient;
use smtp_proto::{EXT_DSN, EXT_PIPELINING, EXT_START_TLS};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::pki::dn::DistinguishedName;

/// The remote's answer about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    /// 2xx after DATA.
    Delivered,
    /// 4xx, or the connection failed: try again later.
    Temporary(String),
    /// 5xx: give up and tell the sender.
    Permanent(String),
}

/// Why a connection could not be used at all.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(pub String);

/// A recipient as the client sends it.
#[derive(Debug, Clone)]
pub struct OutRcpt {
    /// Address.
    pub address: String,
    /// ORCPT parameter value (`rfc822;…`).
    pub orcpt: Option<String>,
    /// NOTIFY bits.
    pub notify: i64,
}

/// An open, TLS-protected session with a remote MTA.
pub struct Connection {
    client: SmtpClient<TlsStream<TcpStream>>,
    pipelining: bool,
    dsn: bool,
    /// `host [ip]:port` for logs and DSNs.
    pub remote: String,
}

/// A remote reply as one line: code, enhanced status code when the server
/// gave one (smtp-proto reads a missing one as `0.0.0`, which is no status:
/// it is left out rather than reported), text.
fn reply_text(r: &smtp_proto::Response<String>) -> String {
    let text = r.message.trim_end().replace(['\r', '\n'], " ");
    if matches!(r.esc[0], 2 | 4 | 5) {
        format!("{} {}.{}.{} {text}", r.code, r.esc[0], r.esc[1], r.esc[2])
    } else {
        format!("{} {text}", r.code)
    }
}

impl Connection {
    /// Connects to `addr`, requires STARTTLS, verifies the certificate for
    /// `tls_name` (rustls: chain to the trust anchors, name), then hands the
    /// certificate's subject, read from its parsed RDNs, to `check_peer`, which
    /// says why it is not acceptable (e.g. not the whitelisted operator of the
    /// recipient's domain). Any failure, that one included, is a [`ConnectError`]:
    /// the caller tries the next address and otherwise retries later.
    pub async fn open(
        addr: SocketAddr,
        tls_name: &str,
        helo: &str,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
        check_peer: impl FnOnce(&DistinguishedName) -> Result<(), String>,
    ) -> Result<Connection, ConnectError> {
        let remote = format!("{tls_name} [{}]:{}", addr.ip(), addr.port());
        let err =
            |what: &str, e: &dyn std::fmt::Display| ConnectError(format!("{remote}: {what}: {e}"));
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectError(format!("{remote}: connect: timed out")))?
            .map_err(|e| err("connect", &e))?;
        // Without it, the end of DATA waits for the peer's delayed ACK (Nagle): ~40 ms a message.
        let _ = stream.set_nodelay(true);
        let mut client = SmtpClient { stream, timeout };
        let greeting = client.read().await.map_err(|e| err("greeting", &e))?;
        if greeting.code != 220 {
            return Err(ConnectError(format!(
                "{remote}: greeting {}",
                reply_text(&greeting)
            )));
        }
        let ehlo = client.ehlo(helo).await.map_err(|e| err("EHLO", &e))?;
        if !ehlo.has_capability(EXT_START_TLS) {
            // Never plaintext: the trust space is TLS only.
            return Err(ConnectError(format!("{remote}: STARTTLS not offered")));
        }
        let connector = TlsConnector::from(tls);
        let mut client = client
            .start_tls(&connector, tls_name)
            .await
            .map_err(|e| err("TLS", &e))?;
        let subject = client
            .stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| DistinguishedName::from_der_certificate(leaf.as_ref()));
        match subject {
            Some(Ok(dn)) => check_peer(&dn).map_err(|reason| err("TLS", &reason))?,
            Some(Err(e)) => return Err(err("TLS: server certificate subject", &e)),
            None => {
                return Err(ConnectError(format!(
                    "{remote}: TLS: no server certificate"
                )));
            }
        }
        let ehlo = client
            .ehlo(helo)
            .await
            .map_err(|e| err("EHLO after TLS", &e))?;
        Ok(Connection {
            pipelining: ehlo.has_capability(EXT_PIPELINING),
            dsn: ehlo.has_capability(EXT_DSN),
            client,
            remote,
        })
    }

    /// Sends one message to `rcpts`; one outcome per recipient, in order.
    /// `before_data` runs once the recipients are accepted, just before DATA.
    pub async fn send<F, Fut>(
        &mut self,
        mail_from: &str,
        ret: Option<&str>,
        envid: Option<&str>,
        rcpts: &[OutRcpt],
        content: &[u8],
        before_data: F,
    ) -> Result<Vec<RcptOutcome>, ConnectError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut mail = format!("MAIL FROM:<{mail_from}>");
        if !content.is_ascii() {
            mail.push_str(" BODY=8BITMIME");
        }
        if self.dsn {
            if let Some(r) = ret {
                mail.push_str(&format!(" RET={r}"));
            }
            if let Some(e) = envid {
                mail.push_str(&format!(" ENVID={}", xtext(e)));
            }
        }
        mail.push_str("\r\n");
        let mut commands = vec![mail];
        for r in rcpts {
            let mut line = format!("RCPT TO:<{}>", r.address);
            if self.dsn {
                let mut notify = Vec::new();
                if r.notify & smtp_proto::RCPT_NOTIFY_NEVER as i64 != 0 {
                    notify.push("NEVER");
                } else {
                    if r.notify & smtp_proto::RCPT_NOTIFY_SUCCESS as i64 != 0 {
                        notify.push("SUCCESS");
                    }
                    if r.notify & smtp_proto::RCPT_NOTIFY_FAILURE as i64 != 0 {
                        notify.push("FAILURE");
                    }
                    if r.notify & smtp_proto::RCPT_NOTIFY_DELAY as i64 != 0 {
                        notify.push("DELAY");
                    }
                }
                if !notify.is_empty() {
                    line.push_str(&format!(" NOTIFY={}", notify.join(",")));
                }
                if let Some(o) = &r.orcpt {
                    let addr = o.strip_prefix("rfc822;").unwrap_or(o);
                    line.push_str(&format!(" ORCPT=rfc822;{}", xtext(addr)));
                }
            }
            line.push_str("\r\n");
            commands.push(line);
        }
        let replies = if self.pipelining {
            self.client
                .cmds(commands.iter())
                .await
                .map_err(|e| ConnectError(format!("{}: {e}", self.remote)))?
        } else {
            let mut replies = Vec::new();
            for c in &commands {
                let r = self
                    .client
                    .cmd(c)
                    .await
                    .map_err(|e| ConnectError(format!("{}: {e}", self.remote)))?;
                let refused_sender = replies.is_empty() && r.code >= 400;
                replies.push(r);
                if refused_sender {
                    break;
                }
            }
            replies
        };
        let Some(mail_reply) = replies.first() else {
            return Err(ConnectError(format!("{}: no reply to MAIL", self.remote)));
        };
        if mail_reply.code >= 400 {
            let text = reply_text(mail_reply);
            let out = if mail_reply.code >= 500 {
                RcptOutcome::Permanent(text)
            } else {
                RcptOutcome::Temporary(text)
            };
            let _ = self.client.rset().await;
            return Ok(vec![out; rcpts.len()]);
        }
        let mut outcomes: Vec<Option<RcptOutcome>> = Vec::with_capacity(rcpts.len());
        for i in 0..rcpts.len() {
            let r = replies.get(i + 1);
            outcomes.push(match r {
                Some(r) if r.code < 300 => None,
                Some(r) if r.code >= 500 => Some(RcptOutcome::Permanent(reply_text(r))),
                Some(r) => Some(RcptOutcome::Temporary(reply_text(r))),
                None => Some(RcptOutcome::Temporary("no reply to RCPT".into())),
            });
        }
        if outcomes.iter().all(Option::is_some) {
            let _ = self.client.rset().await;
            return Ok(outcomes.into_iter().flatten().collect());
        }
        before_data().await;
        let data = self
            .client
            .cmd(b"DATA\r\n")
            .await
            .map_err(|e| ConnectError(format!("{}: {e}", self.remote)))?;
        let final_reply = if data.code == 354 {
            self.client
                .write_message(content)
                .await
                .map_err(|e| ConnectError(format!("{}: {e}", self.remote)))?;
            self.client
                .read()
                .await
                .map_err(|e| ConnectError(format!("{}: {e}", self.remote)))?
        } else {
            data
        };
        let accepted = final_reply.code < 300;
        let text = reply_text(&final_reply);
        Ok(outcomes
            .into_iter()
            .map(|o| match o {
                Some(o) => o,
                None if accepted => RcptOutcome::Delivered,
                None if final_reply.code >= 500 => RcptOutcome::Permanent(text.clone()),
                None => RcptOutcome::Temporary(text.clone()),
            })
            .collect())
    }

    /// Ends the session politely.
    pub async fn quit(self) {
        let _ = self.client.quit().await;
    }
}

/// RFC 3461 xtext: `+XX` for `+`, `=`, controls and non-ASCII.
fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod reply_tests {
    use super::*;

    #[test]
    fn no_enhanced_code_is_never_0_0_0() {
        let with = smtp_proto::Response::new(550, 5, 1, 1, "No such user".to_string());
        assert_eq!(reply_text(&with), "550 5.1.1 No such user");
        let without = smtp_proto::Response::new(550, 0, 0, 0, "Go away\r\n".to_string());
        assert_eq!(reply_text(&without), "550 Go away");
        assert_eq!(
            crate::relay::dsn::status_of(&reply_text(&without), "5.0.0"),
            "5.0.0"
        );
    }
}
