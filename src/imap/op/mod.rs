//! The IMAP commands, one file per group, as methods of [`ImapSession`]:
//! [`ImapSession::command`] dispatches a command by state (any state, not
//! authenticated, authenticated, selected); the session pump (`session.rs`)
//! calls it.

pub(super) mod append;
pub(super) mod auth;
pub(super) mod catenate;
pub(super) mod context;
pub(super) mod copy_move;
pub(super) mod expunge;
pub(super) mod fetch;
pub(super) mod list;
pub(super) mod mailbox;
pub(super) mod quota;
pub(super) mod returns;
pub(super) mod search;
pub(super) mod select;
pub(super) mod sort;
pub(super) mod status;
pub(super) mod store;
pub(super) mod sync;

use std::num::NonZeroU32;

use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::extensions::compress::CompressionAlgorithm;
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::utf8::Utf8Kind;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, Status};

use crate::identity::sasl::Credentials;
use crate::imap::names::{self, Wire};
use crate::imap::session::{ImapSession, code, has_cert};
use crate::imap::storage::Folder;
use crate::imap::storage::Mailstore;

/// A UID, UIDVALIDITY or UIDNEXT as a non-zero number (clamped).
pub(super) fn nz(n: i64) -> NonZeroU32 {
    NonZeroU32::new(n.clamp(1, u32::MAX as i64) as u32).unwrap_or(NonZeroU32::MIN)
}

impl<S: Mailstore> ImapSession<S> {
    /// Runs one command: what any state allows, then LOGIN before
    /// authentication, then the authenticated and selected states.
    pub(in crate::imap) async fn command(&mut self, command: Command<'static>) {
        if !self.account_still_valid().await {
            return;
        }
        let tag = command.tag;
        let authenticated = self.user.is_some();
        let selected = self.selected.is_some();
        match command.body {
            CommandBody::Capability => {
                let caps = crate::imap::capabilities(
                    self.tls.is_some(),
                    authenticated,
                    has_cert(&self.tls),
                    self.config.max_message_size,
                );
                self.data(Data::Capability(caps));
                self.ok(tag, None, "CAPABILITY completed");
            }
            CommandBody::Noop => {
                self.sync_selected(true).await;
                self.ok(tag, None, "NOOP completed");
            }
            CommandBody::Logout => {
                if let Ok(s) = Status::bye(None, "Logging out") {
                    self.server.enqueue_status(s);
                }
                self.ok(tag, None, "LOGOUT completed");
                self.closing = true;
            }
            CommandBody::StartTLS => {
                if self.tls.is_some() {
                    self.bad(tag, "TLS is already active");
                } else if let Ok(s) = Status::ok(Some(tag), None, "Begin TLS negotiation now") {
                    self.starttls_handle = Some(self.server.enqueue_status(s));
                }
            }
            CommandBody::Id { .. } => {
                let params = vec![
                    (
                        imap_codec::imap_types::core::IString::try_from("name").expect("static"),
                        imap_codec::imap_types::core::NString::try_from("MES").expect("static"),
                    ),
                    (
                        imap_codec::imap_types::core::IString::try_from("version").expect("static"),
                        imap_codec::imap_types::core::NString::try_from(env!("CARGO_PKG_VERSION"))
                            .expect("static"),
                    ),
                ];
                self.data(Data::Id {
                    parameters: Some(params),
                });
                self.ok(tag, None, "ID completed");
            }
            CommandBody::Login { username, password } => {
                if authenticated {
                    self.bad(tag, "Already authenticated");
                } else if self.tls.is_none() {
                    self.no(
                        tag,
                        Some(code("PRIVACYREQUIRED")),
                        "LOGIN is disabled before STARTTLS",
                    );
                } else {
                    let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                    let pass = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                    self.login_with(
                        tag,
                        Credentials {
                            username: user,
                            password: pass,
                        },
                    )
                    .await;
                }
            }
            _ if !authenticated => self.bad(tag, "Log in first"),
            CommandBody::Enable { capabilities } => {
                let mut enabled = Vec::new();
                let mut first = false;
                for c in capabilities.as_ref() {
                    if matches!(c, CapabilityEnable::CondStore) {
                        first |= self.enable_condstore();
                        enabled.push(c.clone());
                    } else if c.to_string().eq_ignore_ascii_case("IMAP4rev2") {
                        self.rev2 = true;
                        enabled.push(c.clone());
                    } else if matches!(c, CapabilityEnable::Utf8(Utf8Kind::Accept)) {
                        // RFC 6855: UTF-8 mailbox names both ways, APPEND's UTF8 item.
                        self.utf8 = true;
                        enabled.push(c.clone());
                    } else if c.to_string().eq_ignore_ascii_case("QRESYNC") {
                        // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                        self.qresync = true;
                        first |= self.enable_condstore();
                        enabled.push(c.clone());
                    }
                }
                self.data(Data::Enabled {
                    capabilities: enabled,
                });
                let code = self.highest_modseq(first);
                self.ok(tag, code, "ENABLE completed");
            }
            CommandBody::Compress { algorithm } => self.compress(tag, algorithm),
            CommandBody::Namespace => {
                self.namespace(tag);
            }
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select(tag, mailbox, false, parameters).await,
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(tag, mailbox, true, parameters).await,
            CommandBody::Create { mailbox } => self.create(tag, mailbox).await,
            CommandBody::Delete { mailbox } => self.delete(tag, mailbox).await,
            CommandBody::Rename { from, to } => self.rename(tag, from, to).await,
            CommandBody::Subscribe { mailbox } => self.subscribe(tag, mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(tag, mailbox, false).await,
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => self.list(tag, reference, mailbox_wildcard, false).await,
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self.list(tag, reference, mailbox_wildcard, true).await,
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(tag, mailbox, item_names.as_ref()).await,
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append_one(tag, mailbox, flags, date, message).await,
            CommandBody::GetQuotaRoot { mailbox } => self.get_quota_root(tag, mailbox).await,
            CommandBody::GetQuota { root } => self.get_quota(tag, root).await,
            CommandBody::SetQuota { .. } => self.set_quota(tag),
            _ if !selected => self.bad(tag, "Select a mailbox first"),
            CommandBody::Check => {
                self.sync_selected(true).await;
                self.ok(tag, None, "CHECK completed");
            }
            CommandBody::Close => {
                if let Some(sel) = &self.selected
                    && !sel.read_only
                {
                    let id = sel.id;
                    if let Err(e) = self.mailstore.expunge(id, None).await {
                        tracing::error!(error = %e, "expunge on CLOSE failed");
                    }
                }
                self.selected = None;
                self.ok(tag, None, "CLOSE completed");
            }
            CommandBody::Unselect => {
                self.selected = None;
                self.ok(tag, None, "UNSELECT completed");
            }
            CommandBody::Expunge => self.expunge(tag, None).await,
            CommandBody::ExpungeUid { sequence_set } => self.expunge(tag, Some(sequence_set)).await,
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => self.search(tag, charset, criteria, uid).await,
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                self.sort(tag, sort_criteria, charset, search_criteria, uid)
                    .await
            }
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => {
                self.thread(tag, algorithm, charset, search_criteria, uid)
                    .await
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                self.fetch(tag, sequence_set, macro_or_item_names, uid, modifiers)
                    .await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                self.store(tag, sequence_set, kind, response, flags, uid, modifiers)
                    .await
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(tag, sequence_set, mailbox, uid, false).await,
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(tag, sequence_set, mailbox, uid, true).await,
            _ => self.bad(tag, "Command not supported"),
        }
    }

    /// A CONDSTORE enabling command ran (RFC 7162 §3.1): from now on FETCH
    /// responses carry MODSEQ. True when it is the first one and a mailbox is
    /// selected: its tagged OK then carries [`ImapSession::highest_modseq`].
    pub(in crate::imap) fn enable_condstore(&mut self) -> bool {
        let first = !self.condstore;
        self.condstore = true;
        first && self.selected.is_some()
    }

    /// `[HIGHESTMODSEQ n]` of the selected mailbox as the client knows it
    /// (the highest MODSEQ reported to it), when `first` (see
    /// [`ImapSession::enable_condstore`]).
    pub(in crate::imap) fn highest_modseq(&self, first: bool) -> Option<Code<'static>> {
        let sel = self.selected.as_ref().filter(|_| first)?;
        std::num::NonZeroU64::new(u64::try_from(sel.modseq).ok()?).map(Code::HighestModSeq)
    }

    /// The logged-in account (0 before login, never used then).
    pub(super) fn account(&self) -> i64 {
        self.user.as_ref().map(|u| u.account_id).unwrap_or_default()
    }

    /// How this session's mailbox names travel: UTF-8 after `ENABLE IMAP4rev2`
    /// or `ENABLE UTF8=ACCEPT`.
    pub(in crate::imap) fn name_wire(&self) -> Wire {
        if self.rev2 || self.utf8 {
            Wire::Utf8
        } else {
            Wire::Utf7
        }
    }

    /// COMPRESS (RFC 4978): OK, then the listener compresses both directions
    /// once the OK is written; only once per connection.
    fn compress(&mut self, tag: Tag<'static>, algorithm: CompressionAlgorithm) {
        if self.compressed {
            return self.no(
                tag,
                Some(Code::CompressionActive),
                "DEFLATE is already active",
            );
        }
        if algorithm != CompressionAlgorithm::Deflate {
            return self.bad(tag, "Unknown compression algorithm");
        }
        if let Ok(s) = Status::ok(Some(tag), None, "DEFLATE active") {
            self.compressed = true;
            self.compress_handle = Some(self.server.enqueue_status(s));
        }
    }

    /// `name` as this session writes mailbox names.
    pub(super) fn wire_mailbox(&self, name: &str) -> Option<Mailbox<'static>> {
        names::wire(name, self.name_wire())
    }

    /// Resolves a mailbox argument to an existing folder, answering NO/BAD itself.
    /// A missing mailbox is `NO [NONEXISTENT]` (RFC 5530, RFC 9051 §7.1).
    pub(in crate::imap) async fn resolve_folder(
        &mut self,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
    ) -> Option<Folder> {
        self.resolve_folder_or(tag, mailbox, code("NONEXISTENT"))
            .await
    }

    /// [`ImapSession::resolve_folder`] for the target of APPEND, COPY and MOVE,
    /// where a missing mailbox is `NO [TRYCREATE]` (RFC 3501 §6.3.11, §6.4.7).
    pub(in crate::imap) async fn resolve_target(
        &mut self,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
    ) -> Option<Folder> {
        self.resolve_folder_or(tag, mailbox, Code::TryCreate).await
    }

    /// Resolves `mailbox`, answering `missing` when it does not exist.
    async fn resolve_folder_or(
        &mut self,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
        missing: Code<'static>,
    ) -> Option<Folder> {
        let name = match names::decode(mailbox, self.name_wire()) {
            Ok(n) => n,
            Err(e) => {
                self.bad(tag.clone(), &e.to_string());
                return None;
            }
        };
        match self.mailstore.folder(self.account(), &name).await {
            Ok(Some(f)) => Some(f),
            Ok(None) => {
                self.no(tag.clone(), Some(missing), "No such mailbox");
                None
            }
            Err(e) => {
                self.store_failed(tag.clone(), e);
                None
            }
        }
    }
}
