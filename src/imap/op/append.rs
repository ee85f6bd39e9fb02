//! APPEND (RFC 3501 §6.3.11, RFC 4315 APPENDUID, RFC 7889 APPENDLIMIT): the
//! message goes to [`Mailstore::append`] (the delivery path for real sessions).

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::Code;

use super::nz;
use crate::imap::session::{ImapSession, code};
use crate::imap::storage::Mailstore;
use crate::store::entries::normalize_flags;

impl<S: Mailstore> ImapSession<S> {
    /// APPEND.
    pub(in crate::imap) async fn append(
        &mut self,
        tag: Tag<'static>,
        mailbox: Mailbox<'static>,
        flags: Vec<Flag<'static>>,
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'static>,
    ) {
        let Some(folder) = self.resolve_target(&tag, &mailbox).await else {
            return;
        };
        let content: Vec<u8> = match message {
            LiteralOrLiteral8::Literal(l) => l.into_inner().into_owned(),
            LiteralOrLiteral8::Literal8(l) => l.data.into_owned(),
        };
        if content.len() > self.config.max_message_size {
            return self.no(tag, Some(Code::TooBig), "Message too large");
        }
        let account = self
            .user
            .as_ref()
            .map(|u| u.address.clone())
            .unwrap_or_default();
        let flag_texts: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let flags = normalize_flags(flag_texts.iter().map(String::as_str));
        let internal_date = date.map(|d| d.as_ref().timestamp());
        match self
            .mailstore
            .append(&account, folder.id, &flags, internal_date, content)
            .await
        {
            Ok(uid) => {
                if self.selected.as_ref().is_some_and(|s| s.id == folder.id) {
                    self.sync_selected(true).await;
                }
                self.ok(
                    tag,
                    Some(Code::AppendUid {
                        uid_validity: nz(folder.uidvalidity),
                        uid: nz(uid),
                    }),
                    "APPEND completed",
                );
            }
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
