//! LOGIN and AUTHENTICATE (PLAIN, EXTERNAL), RFC 3501 §6.2, RFC 4959 (SASL-IR):
//! both refused before TLS; the result of a login, shared by both.

use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Code, CommandContinuationRequest, Status};

use crate::identity::auth::CredentialStamp;
use crate::identity::sasl::{self, Credentials};
use crate::imap::session::{ImapSession, User, code};
use crate::imap::storage::{Login, Mailstore};

/// An AUTHENTICATE exchange waiting for the client's response.
pub(in crate::imap) struct AuthFlow {
    /// The AUTHENTICATE command's tag.
    pub(in crate::imap) tag: Tag<'static>,
    /// The mechanism chosen.
    mechanism: AuthMechanism<'static>,
}

impl<S: Mailstore> ImapSession<S> {
    /// LOGIN with the credentials given.
    pub(super) async fn login_with(&mut self, tag: Tag<'static>, credentials: Credentials) {
        let result = self.mailstore.login(self.peer_ip, credentials).await;
        self.login_result(tag, result);
    }

    /// Enters the authenticated state; returns the capabilities to announce.
    fn logged_in(
        &mut self,
        account_id: i64,
        address: String,
        stamp: CredentialStamp,
    ) -> Code<'static> {
        // After login, APPEND may send messages up to the size limit.
        self.guard.set_max_literal(None);
        self.user = Some(User {
            account_id,
            stamp,
            checked: std::time::Instant::now(),
            address,
        });
        Code::Capability(crate::imap::capabilities(
            true,
            true,
            false,
            self.config.max_message_size,
        ))
    }

    fn login_result(&mut self, tag: Tag<'static>, result: Login) {
        match result {
            Login::Success {
                account_id,
                address,
                stamp,
            } => {
                tracing::info!(account = %address, "IMAP login");
                let caps = self.logged_in(account_id, address, stamp);
                self.ok(tag, Some(caps), "Logged in");
            }
            Login::Invalid => self.no(
                tag,
                Some(code("AUTHENTICATIONFAILED")),
                "Authentication failed",
            ),
            Login::Patient => self.no(
                tag,
                Some(code("NOPERM")),
                "Patient accounts use the patient web space, not IMAP",
            ),
            Login::Closed => self.no(tag, Some(code("NOPERM")), "This patient space is closed"),
            Login::Throttled => {
                self.no(
                    tag,
                    Some(code("UNAVAILABLE")),
                    "Too many failed logins, try again later",
                );
                if let Ok(s) = Status::bye(None, "Too many failed logins") {
                    self.server.enqueue_status(s);
                }
                self.closing = true;
            }
            Login::Unavailable => self.no(tag, Some(code("UNAVAILABLE")), "Temporary failure"),
        }
    }

    /// AUTHENTICATE: answers at once with an initial response (SASL-IR), else
    /// asks for one.
    pub(in crate::imap) async fn authenticate_start(
        &mut self,
        tag: Tag<'static>,
        mechanism: AuthMechanism<'static>,
        initial: Option<Vec<u8>>,
    ) {
        let refuse = |s: &mut Self, tag: Tag<'static>, text: &str| {
            if let Ok(status) = Status::no(Some(tag), None, text.to_string()) {
                let _ = s.server.authenticate_finish(status);
            }
        };
        if self.user.is_some() {
            refuse(self, tag, "Already authenticated");
            return;
        }
        if self.tls.is_none() {
            refuse(self, tag, "AUTHENTICATE is disabled before STARTTLS");
            return;
        }
        let external = is_external(&mechanism);
        match (&mechanism, initial) {
            (AuthMechanism::Plain, Some(data)) => {
                let result = self.plain(&data).await;
                self.finish_auth(tag, result);
            }
            (_, Some(data)) if external => {
                let result = self.external(&data).await;
                self.finish_auth(tag, result);
            }
            (AuthMechanism::Plain, None) | (_, None)
                if external || mechanism == AuthMechanism::Plain =>
            {
                let cont =
                    CommandContinuationRequest::basic(None, "Go ahead").unwrap_or_else(|_| {
                        CommandContinuationRequest::basic(None, "+").expect("static")
                    });
                if self.server.authenticate_continue(cont).is_ok() {
                    self.auth_flow = Some(AuthFlow { tag, mechanism });
                }
            }
            _ => refuse(self, tag, "Unsupported mechanism"),
        }
    }

    /// The client's response to an AUTHENTICATE continuation request.
    pub(in crate::imap) async fn authenticate_data(&mut self, data: AuthenticateData<'static>) {
        let Some(flow) = self.auth_flow.take() else {
            return;
        };
        let bytes = match data {
            AuthenticateData::Continue(secret) => secret.declassify().to_vec(),
            AuthenticateData::Cancel => {
                if let Ok(s) = Status::bad(Some(flow.tag), None, "Authentication cancelled") {
                    let _ = self.server.authenticate_finish(s);
                }
                return;
            }
        };
        let result = if is_external(&flow.mechanism) {
            self.external(&bytes).await
        } else {
            self.plain(&bytes).await
        };
        self.finish_auth(flow.tag, result);
    }

    async fn plain(&mut self, decoded: &[u8]) -> Login {
        match sasl::parse_plain(decoded) {
            Ok(credentials) => self.mailstore.login(self.peer_ip, credentials).await,
            Err(_) => Login::Invalid,
        }
    }

    async fn external(&mut self, authzid: &[u8]) -> Login {
        let Some(subject) = self.tls.as_ref().and_then(|t| t.peer_subject.clone()) else {
            return Login::Invalid;
        };
        let authzid = std::str::from_utf8(authzid).ok().filter(|s| !s.is_empty());
        self.mailstore.login_certificate(&subject, authzid).await
    }

    fn finish_auth(&mut self, tag: Tag<'static>, result: Login) {
        // Build the tagged status the same way as LOGIN, then hand it to imap-next's AUTHENTICATE flow.
        let mut statuses = Vec::new();
        match result {
            Login::Success {
                account_id,
                address,
                stamp,
            } => {
                tracing::info!(account = %address, "IMAP authenticate");
                let caps = self.logged_in(account_id, address, stamp);
                statuses.push(Status::ok(Some(tag), Some(caps), "Logged in"));
            }
            Login::Invalid => statuses.push(Status::no(
                Some(tag),
                Some(code("AUTHENTICATIONFAILED")),
                "Authentication failed",
            )),
            Login::Patient => statuses.push(Status::no(
                Some(tag),
                Some(code("NOPERM")),
                "Patient accounts use the patient web space, not IMAP",
            )),
            Login::Closed => statuses.push(Status::no(
                Some(tag),
                Some(code("NOPERM")),
                "This patient space is closed",
            )),
            Login::Throttled => {
                statuses.push(Status::no(
                    Some(tag),
                    Some(code("UNAVAILABLE")),
                    "Too many failed logins",
                ));
                self.closing = true;
            }
            Login::Unavailable => statuses.push(Status::no(
                Some(tag),
                Some(code("UNAVAILABLE")),
                "Temporary failure",
            )),
        }
        for s in statuses.into_iter().flatten() {
            let _ = self.server.authenticate_finish(s);
        }
    }
}

fn is_external(m: &AuthMechanism<'_>) -> bool {
    m.as_ref().eq_ignore_ascii_case("EXTERNAL")
}
