//! APPEND (RFC 3501 §6.3.11, RFC 4315 APPENDUID, RFC 7889 APPENDLIMIT): through
//! the delivery path.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::Code;

use super::nz;
use crate::delivery::NewRecipient;
use crate::delivery::prepare::Incoming;
use crate::imap::session::{ImapSession, code};
use crate::store::entries::normalize_flags;

impl ImapSession {
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
        if content.len() > self.services.max_message_size {
            return self.no(tag, Some(Code::TooBig), "Message too large");
        }
        let facts = crate::delivery::facts::MessageFacts::read(&content);
        let received_at = date
            .map(|d| d.as_ref().timestamp())
            .unwrap_or_else(crate::store::now);
        let flag_texts: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let message = Incoming {
            content,
            mail_from: self
                .user
                .as_ref()
                .map(|u| u.address.clone())
                .unwrap_or_default(),
            message_id: facts.message_id,
            origin: "append",
            received_at,
            recipients: vec![NewRecipient {
                address: self
                    .user
                    .as_ref()
                    .map(|u| u.address.clone())
                    .unwrap_or_default(),
                orcpt: None,
                notify: 0,
                mailbox_id: Some(folder.id),
                remote: false,
                patient_id: None,
            }],
            dsn_envid: None,
            dsn_ret: None,
            flags: normalize_flags(flag_texts.iter().map(String::as_str)),
            thread: None,
            dossier: None,
            analysis: None,
        }
        .prepare();
        match self.services.deliverer.deliver(message).await {
            Ok(stored) => {
                let uid = stored.placements.first().map(|p| p.1).unwrap_or(0);
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
