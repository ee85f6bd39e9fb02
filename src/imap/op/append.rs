//! APPEND (RFC 3501 §6.3.11, RFC 4315 APPENDUID, RFC 7889 APPENDLIMIT), with
//! several messages (RFC 3502 MULTIAPPEND) and messages put together from
//! parts (RFC 4469 CATENATE, `catenate.rs`): every message of the command
//! goes to [`Mailstore::append`] at once (the delivery path for real
//! sessions), all stored or none; a quota that cannot take them all is
//! `NO [OVERQUOTA]` (RFC 9208).

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, CodeOther};

use super::nz;
use crate::delivery::AcceptError;
use crate::imap::extend::append::{AppendCommand, AppendData, AppendMessage};
use crate::imap::sequence;
use crate::imap::session::{ImapSession, code};
use crate::imap::storage::{Mailstore, ToAppend};
use crate::store::entries::normalize_flags;

/// `APPENDUID v uid` for one message, `APPENDUID v uid-set` for several (RFC 4315).
fn append_uid(uidvalidity: i64, uids: &[i64]) -> Option<Code<'static>> {
    match uids {
        [] => None,
        [uid] => Some(Code::AppendUid {
            uid_validity: nz(uidvalidity),
            uid: nz(*uid),
        }),
        _ => {
            let text = format!("APPENDUID {} {}", nz(uidvalidity), sequence::compact(uids));
            Some(Code::Other(CodeOther::unvalidated(text.into_bytes())))
        }
    }
}

impl<S: Mailstore> ImapSession<S> {
    /// A plain APPEND, as imap-codec parsed it.
    pub(in crate::imap) async fn append_one(
        &mut self,
        tag: Tag<'static>,
        mailbox: Mailbox<'static>,
        flags: Vec<Flag<'static>>,
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'static>,
    ) {
        let content: Vec<u8> = match message {
            LiteralOrLiteral8::Literal(l) => l.into_inner().into_owned(),
            LiteralOrLiteral8::Literal8(l) => l.data.into_owned(),
        };
        let message = AppendMessage {
            flags,
            date,
            data: AppendData::Literal(content),
        };
        self.append(AppendCommand {
            tag,
            mailbox,
            messages: vec![message],
        })
        .await;
    }

    /// APPEND of one message or several (MULTIAPPEND), literal or CATENATE.
    pub(in crate::imap) async fn append(&mut self, command: AppendCommand) {
        let AppendCommand {
            tag,
            mailbox,
            messages,
        } = command;
        let Some(folder) = self.resolve_target(&tag, &mailbox).await else {
            return;
        };
        let mut to_store = Vec::with_capacity(messages.len());
        for message in messages {
            let content = match message.data {
                AppendData::Literal(content) => content,
                AppendData::Catenate(parts) => match self.catenate(&tag, parts).await {
                    Some(content) => content,
                    None => return,
                },
            };
            if content.len() > self.config.max_message_size {
                return self.no(tag, Some(Code::TooBig), "Message too large");
            }
            let flag_texts: Vec<String> = message.flags.iter().map(|f| f.to_string()).collect();
            to_store.push(ToAppend {
                flags: normalize_flags(flag_texts.iter().map(String::as_str)),
                internal_date: message.date.map(|d| d.as_ref().timestamp()),
                content,
            });
        }
        let account = self
            .user
            .as_ref()
            .map(|u| u.address.clone())
            .unwrap_or_default();
        match self.mailstore.append(&account, folder.id, to_store).await {
            Ok(uids) => {
                if self.selected.as_ref().is_some_and(|s| s.id == folder.id) {
                    self.sync_selected(true).await;
                }
                self.ok(
                    tag,
                    append_uid(folder.uidvalidity, &uids),
                    "APPEND completed",
                );
            }
            Err(AcceptError::Quota(refusal)) => self.over_quota(tag, &refusal),
            Err(e) => {
                tracing::error!(error = %e, "APPEND failed");
                self.no(
                    tag,
                    Some(code("SERVERBUG")),
                    "Internal error, try again later",
                );
            }
        }
    }
}
