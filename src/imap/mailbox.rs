//! Mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE,
//! LIST/LSUB, STATUS, APPEND, NAMESPACE (RFC 3501 §6.3, RFC 2342, RFC 6154).

use std::collections::HashSet;
use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::core::{Atom, QuotedChar, Tag};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::extensions::namespace::{Namespace, NamespaceResponseExtension};
use imap_codec::imap_types::flag::{Flag, FlagNameAttribute, FlagPerm};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Code, Data, Response};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};

use super::names::{self, DELIMITER, Wire};
use super::sequence;
use super::session::{ImapSession, Selected, code};
use crate::delivery::NewRecipient;
use crate::delivery::prepare::Incoming;
use crate::store::StoreError;
use crate::store::entries::normalize_flags;
use crate::store::folders::{Folder, FolderCounts};

fn nz(n: i64) -> NonZeroU32 {
    NonZeroU32::new(n.clamp(1, u32::MAX as i64) as u32).unwrap_or(NonZeroU32::MIN)
}

fn system_flags() -> Vec<Flag<'static>> {
    vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ]
}

fn attr(name: &str) -> Option<FlagNameAttribute<'static>> {
    Atom::try_from(name.trim_start_matches('\\').to_string())
        .ok()
        .map(FlagNameAttribute::from)
}

/// `text` as an IMAP string: quoted UTF-8, or a literal when it holds CR, LF or NUL.
fn quoted_or_literal(text: &str) -> Vec<u8> {
    if text.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
        let mut out = format!("{{{}}}\r\n", text.len()).into_bytes();
        out.extend_from_slice(text.as_bytes());
        return out;
    }
    let mut out = vec![b'"'];
    for b in text.bytes() {
        if matches!(b, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

/// The attributes every LIST response carries for `folder`: children
/// (RFC 3348) and special use (RFC 6154).
fn list_attributes(folder: &Folder, all: &[Folder]) -> Vec<FlagNameAttribute<'static>> {
    let mut attrs = Vec::new();
    let prefix = format!("{}{DELIMITER}", folder.name);
    let has_children = all.iter().any(|o| o.name.starts_with(&prefix));
    attrs.extend(attr(if has_children {
        "\\HasChildren"
    } else {
        "\\HasNoChildren"
    }));
    if let Some(special) = &folder.special_use {
        attrs.extend(attr(special));
    }
    attrs
}

/// The STATUS items asked for (STATUS, LIST-STATUS).
fn status_items(
    folder: &Folder,
    counts: &FolderCounts,
    items: &[StatusDataItemName],
) -> Vec<StatusDataItem> {
    items
        .iter()
        .map(|item| match item {
            StatusDataItemName::Messages => StatusDataItem::Messages(counts.messages as u32),
            StatusDataItemName::Recent => StatusDataItem::Recent(counts.recent as u32),
            StatusDataItemName::UidNext => StatusDataItem::UidNext(nz(folder.uidnext)),
            StatusDataItemName::UidValidity => StatusDataItem::UidValidity(nz(folder.uidvalidity)),
            StatusDataItemName::Unseen => StatusDataItem::Unseen(counts.unseen as u32),
            StatusDataItemName::Deleted => StatusDataItem::Deleted(counts.deleted as u32),
            StatusDataItemName::DeletedStorage => {
                StatusDataItem::DeletedStorage(counts.deleted_size as u64)
            }
            StatusDataItemName::Size => StatusDataItem::Size(counts.size as u64),
            StatusDataItemName::HighestModSeq => {
                StatusDataItem::HighestModSeq(folder.highestmodseq as u64)
            }
        })
        .collect()
}

impl ImapSession {
    fn account(&self) -> i64 {
        self.user.as_ref().map(|u| u.account_id).unwrap_or_default()
    }

    /// How this session's mailbox names travel: UTF-8 after `ENABLE IMAP4rev2`.
    pub(super) fn name_wire(&self) -> Wire {
        if self.rev2 { Wire::Utf8 } else { Wire::Utf7 }
    }

    fn wire_mailbox(&self, name: &str) -> Option<Mailbox<'static>> {
        names::wire(name, self.name_wire())
    }

    /// After CREATE or RENAME of `supplied` into `name`: when the server
    /// normalised the name (trailing delimiter, INBOX's case), an IMAP4rev2
    /// session gets the mailbox's LIST response with `OLDNAME` (RFC 9051 §6.3.4,
    /// §6.3.6), which imap-types cannot express.
    async fn report_normalised(&mut self, supplied: Option<String>, name: &str) {
        if !self.rev2 || supplied.as_deref().is_none_or(|s| s == name) {
            return;
        }
        let (Some(old), Some(mailbox)) = (supplied, self.wire_mailbox(name)) else {
            return;
        };
        let Ok(all) = self.services.store.folders(self.account()).await else {
            return;
        };
        let Some(folder) = all.iter().find(|f| f.name == name) else {
            return;
        };
        let list = Response::Data(Data::List {
            items: list_attributes(folder, &all),
            delimiter: QuotedChar::try_from(DELIMITER).ok(),
            mailbox,
        });
        let mut bytes = ResponseCodec::default().encode(&list).dump();
        if bytes.ends_with(b"\r\n") {
            bytes.truncate(bytes.len() - 2);
        }
        bytes.extend_from_slice(b" (\"OLDNAME\" (");
        bytes.extend_from_slice(&quoted_or_literal(&old));
        bytes.extend_from_slice(b"))\r\n");
        self.raw(bytes);
    }

    /// Resolves a mailbox argument to an existing folder, answering NO/BAD itself.
    /// A missing mailbox is `NO [NONEXISTENT]` (RFC 5530, RFC 9051 §7.1).
    pub(super) async fn resolve_folder(
        &mut self,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
    ) -> Option<Folder> {
        self.resolve_folder_or(tag, mailbox, code("NONEXISTENT"))
            .await
    }

    /// [`ImapSession::resolve_folder`] for the target of APPEND, COPY and MOVE,
    /// where a missing mailbox is `NO [TRYCREATE]` (RFC 3501 §6.3.11, §6.4.7).
    pub(super) async fn resolve_target(
        &mut self,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
    ) -> Option<Folder> {
        self.resolve_folder_or(tag, mailbox, Code::TryCreate).await
    }

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
        match self.services.store.folder(self.account(), &name).await {
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

    pub(super) async fn select(
        &mut self,
        tag: Tag<'static>,
        mailbox: Mailbox<'static>,
        read_only: bool,
        parameters: Vec<SelectParameter>,
    ) {
        let qresync = parameters.iter().find_map(|p| match p {
            SelectParameter::QResync {
                uid_validity,
                mod_sequence_value,
                known_uids,
                ..
            } => Some((*uid_validity, *mod_sequence_value, known_uids.clone())),
            _ => None,
        });
        if qresync.is_some() && !self.qresync {
            // RFC 7162 §3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
            return self.bad(tag, "ENABLE QRESYNC first");
        }
        // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1). A server
        // with CONDSTORE says so first (RFC 7162 §3.2.11, RFC 9051 §6.3.2).
        if self.selected.take().is_some() {
            self.untagged_ok(Code::Closed, "Previous mailbox closed");
        }
        let Some(folder) = self.resolve_folder(&tag, &mailbox).await else {
            return;
        };
        if parameters
            .iter()
            .any(|p| matches!(p, SelectParameter::CondStore))
        {
            self.condstore = true;
        }
        let store = self.services.store.clone();
        let uids = match store.folder_uids(folder.id).await {
            Ok(u) => u,
            Err(e) => return self.store_failed(tag, e),
        };
        let entries = match store.entry_flags(folder.id).await {
            Ok(e) => e,
            Err(e) => return self.store_failed(tag, e),
        };
        let recent: HashSet<i64> = if read_only {
            entries.iter().filter(|e| e.2).map(|e| e.0).collect()
        } else {
            match store.claim_recent(folder.id).await {
                Ok(c) => c.into_iter().collect(),
                Err(e) => return self.store_failed(tag, e),
            }
        };
        let first_unseen = entries
            .iter()
            .position(|e| !e.1.split(' ').any(|f| f.eq_ignore_ascii_case("\\Seen")));
        let mut keywords: Vec<Flag<'static>> = system_flags();
        for e in &entries {
            for f in
                e.1.split(' ')
                    .filter(|f| !f.is_empty() && !f.starts_with('\\'))
            {
                if let Ok(flag) = Flag::try_from(f).map(IntoStatic::into_static)
                    && !keywords.contains(&flag)
                {
                    keywords.push(flag);
                }
            }
        }
        // IMAP4rev2 has neither RECENT nor the UNSEEN code, and wants the
        // mailbox's LIST response (RFC 9051 §6.3.2).
        let list = if self.rev2 {
            match store.folders(self.account()).await {
                Ok(all) => Some(Data::List {
                    items: list_attributes(&folder, &all),
                    delimiter: QuotedChar::try_from(DELIMITER).ok(),
                    mailbox: self
                        .wire_mailbox(&folder.name)
                        .unwrap_or_else(|| mailbox.clone()),
                }),
                Err(e) => return self.store_failed(tag, e),
            }
        } else {
            None
        };
        self.data(Data::Flags(keywords.clone()));
        self.data(Data::Exists(uids.len() as u32));
        if let Some(list) = list {
            self.data(list);
        } else {
            self.data(Data::Recent(recent.len() as u32));
            if let Some(i) = first_unseen {
                self.untagged_ok(Code::Unseen(nz(i as i64 + 1)), "First unseen");
            }
        }
        let mut perm: Vec<FlagPerm<'static>> = keywords.into_iter().map(FlagPerm::Flag).collect();
        perm.push(FlagPerm::Asterisk);
        self.untagged_ok(
            Code::PermanentFlags(if read_only { Vec::new() } else { perm }),
            "Flags permitted",
        );
        self.untagged_ok(Code::UidValidity(nz(folder.uidvalidity)), "UIDs valid");
        self.untagged_ok(Code::UidNext(nz(folder.uidnext)), "Predicted next UID");
        if let Some(m) = NonZeroU64::new(folder.highestmodseq as u64) {
            self.untagged_ok(Code::HighestModSeq(m), "Highest");
        }
        self.selected = Some(Selected {
            id: folder.id,
            name: folder.name,
            read_only,
            uidvalidity: folder.uidvalidity,
            uids: super::sequence::UidMap::from_sorted(&uids),
            recent,
            modseq: folder.highestmodseq,
            checked: (folder.highestmodseq, folder.uidnext),
            saved: Vec::new(),
        });
        // QRESYNC (RFC 7162 §3.2.5.1): what changed since the client's MODSEQ,
        // when its UIDVALIDITY is still right.
        if let Some((validity, since, known)) = qresync
            && i64::from(validity.get()) == folder.uidvalidity
        {
            let since = i64::try_from(since.get()).unwrap_or(i64::MAX);
            let max = uids.last().copied().unwrap_or(0);
            let keep = |uid: i64| {
                known
                    .as_ref()
                    .is_none_or(|set| sequence::contains(set, uid, max))
            };
            if let Err(e) = self.report_vanished(folder.id, since, keep).await {
                self.selected = None;
                return self.store_failed(tag, e);
            }
            if let Err(e) = self.report_changed(folder.id, since).await {
                self.selected = None;
                return self.store_failed(tag, e);
            }
        }
        if read_only {
            self.ok(tag, Some(Code::ReadOnly), "EXAMINE completed");
        } else {
            self.ok(tag, Some(Code::ReadWrite), "SELECT completed");
        }
    }

    pub(super) async fn create(&mut self, tag: Tag<'static>, mailbox: Mailbox<'static>) {
        let name = match names::decode(&mailbox, self.name_wire()) {
            Ok(n) => n,
            Err(e) => return self.bad(tag, &e.to_string()),
        };
        if name == "INBOX" {
            return self.no(tag, Some(code("ALREADYEXISTS")), "INBOX always exists");
        }
        match self
            .services
            .store
            .create_folder(self.account(), &name)
            .await
        {
            Ok(()) => {
                let supplied = names::supplied(&mailbox, self.name_wire());
                self.report_normalised(supplied, &name).await;
                self.ok(tag, None, "CREATE completed")
            }
            Err(StoreError::Conflict(_)) => {
                self.no(tag, Some(code("ALREADYEXISTS")), "Mailbox already exists")
            }
            Err(e) => self.store_failed(tag, e),
        }
    }

    pub(super) async fn delete(&mut self, tag: Tag<'static>, mailbox: Mailbox<'static>) {
        let Some(folder) = self.resolve_folder(&tag, &mailbox).await else {
            return;
        };
        if folder.name == "INBOX" {
            return self.no(tag, Some(code("CANNOT")), "INBOX cannot be deleted");
        }
        if folder.special_use.is_some() {
            return self.no(
                tag,
                Some(code("CANNOT")),
                "Special-use mailboxes cannot be deleted",
            );
        }
        if self.selected.as_ref().is_some_and(|s| s.id == folder.id) {
            self.selected = None;
        }
        match self.services.store.delete_folder(folder.id).await {
            Ok(()) => self.ok(tag, None, "DELETE completed"),
            Err(e) => self.store_failed(tag, e),
        }
    }

    pub(super) async fn rename(
        &mut self,
        tag: Tag<'static>,
        from: Mailbox<'static>,
        to: Mailbox<'static>,
    ) {
        let Some(folder) = self.resolve_folder(&tag, &from).await else {
            return;
        };
        let to_name = match names::decode(&to, self.name_wire()) {
            Ok(n) => n,
            Err(e) => return self.bad(tag, &e.to_string()),
        };
        if to_name == "INBOX" {
            return self.no(tag, Some(code("ALREADYEXISTS")), "INBOX already exists");
        }
        let store = self.services.store.clone();
        let result = if folder.name == "INBOX" {
            store
                .rename_inbox(self.account(), folder.id, &to_name)
                .await
        } else {
            store
                .rename_folder(self.account(), &folder.name, &to_name)
                .await
        };
        match result {
            Ok(()) => {
                let supplied = names::supplied(&to, self.name_wire());
                self.report_normalised(supplied, &to_name).await;
                self.ok(tag, None, "RENAME completed")
            }
            Err(StoreError::Conflict(_)) => {
                self.no(tag, Some(code("ALREADYEXISTS")), "Target mailbox exists")
            }
            Err(e) => self.store_failed(tag, e),
        }
    }

    pub(super) async fn subscribe(
        &mut self,
        tag: Tag<'static>,
        mailbox: Mailbox<'static>,
        on: bool,
    ) {
        let Some(folder) = self.resolve_folder(&tag, &mailbox).await else {
            return;
        };
        match self.services.store.set_subscribed(folder.id, on).await {
            Ok(()) => self.ok(
                tag,
                None,
                if on {
                    "SUBSCRIBE completed"
                } else {
                    "UNSUBSCRIBE completed"
                },
            ),
            Err(e) => self.store_failed(tag, e),
        }
    }

    pub(super) async fn list(
        &mut self,
        tag: Tag<'static>,
        reference: Mailbox<'static>,
        pattern: ListMailbox<'static>,
        lsub: bool,
    ) {
        let ext = self.list_options.take().unwrap_or_default();
        let pattern = match names::pattern_text(&pattern, self.name_wire()) {
            Ok(p) => p,
            Err(e) => return self.bad(tag, &e.to_string()),
        };
        let reference = match &reference {
            Mailbox::Inbox => "INBOX".to_string(),
            Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
        };
        let delimiter = QuotedChar::try_from(DELIMITER).ok();
        if pattern.is_empty() {
            // The hierarchy delimiter and root (RFC 3501 §6.3.8).
            let data = Data::List {
                items: attr("\\Noselect").into_iter().collect(),
                delimiter,
                mailbox: Mailbox::try_from("").unwrap_or(Mailbox::Inbox),
            };
            self.data(data);
            return self.ok(tag, None, "LIST completed");
        }
        let full = format!("{reference}{pattern}");
        let folders = match self.services.store.folders(self.account()).await {
            Ok(f) => f,
            Err(e) => return self.store_failed(tag, e),
        };
        let names: HashSet<&str> = folders.iter().map(|f| f.name.as_str()).collect();
        let mut shown: Vec<(&Folder, Vec<FlagNameAttribute<'static>>)> = Vec::new();
        for f in &folders {
            if (lsub || ext.select_subscribed) && !f.subscribed {
                continue;
            }
            if ext.select_special_use && f.special_use.is_none() {
                continue;
            }
            if !names::matches(&full, &f.name) {
                // With `%`, a parent of a matching child shows as \Noselect in LSUB (RFC 3501 §6.3.9).
                continue;
            }
            let mut attrs = list_attributes(f, &folders);
            if (ext.return_subscribed || ext.select_subscribed) && f.subscribed {
                attrs.extend(attr("\\Subscribed"));
            }
            if lsub && !names.contains(f.name.as_str()) {
                attrs.extend(attr("\\Noselect"));
            }
            shown.push((f, attrs));
        }
        for (folder, items) in shown {
            let Some(mailbox) = self.wire_mailbox(&folder.name) else {
                continue;
            };
            // LIST-STATUS (RFC 5819): the STATUS response follows the LIST one.
            let status = match (&ext.return_status, lsub) {
                (Some(names), false) => match self.services.store.folder_counts(folder.id).await {
                    Ok(counts) => Some(Data::Status {
                        mailbox: mailbox.clone(),
                        items: status_items(folder, &counts, names).into(),
                    }),
                    Err(e) => return self.store_failed(tag, e),
                },
                _ => None,
            };
            let data = if lsub {
                Data::Lsub {
                    items,
                    delimiter,
                    mailbox,
                }
            } else {
                Data::List {
                    items,
                    delimiter,
                    mailbox,
                }
            };
            self.data(data);
            if let Some(status) = status {
                self.data(status);
            }
        }
        self.ok(
            tag,
            None,
            if lsub {
                "LSUB completed"
            } else {
                "LIST completed"
            },
        );
    }

    pub(super) async fn status(
        &mut self,
        tag: Tag<'static>,
        mailbox: Mailbox<'static>,
        items: &[StatusDataItemName],
    ) {
        let Some(folder) = self.resolve_folder(&tag, &mailbox).await else {
            return;
        };
        let counts = match self.services.store.folder_counts(folder.id).await {
            Ok(c) => c,
            Err(e) => return self.store_failed(tag, e),
        };
        let out = status_items(&folder, &counts, items);
        if let Some(mailbox) = self.wire_mailbox(&folder.name) {
            self.data(Data::Status {
                mailbox,
                items: out.into(),
            });
        }
        self.ok(tag, None, "STATUS completed");
    }

    pub(super) async fn append(
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

    pub(super) fn namespace(&mut self, tag: Tag<'static>) {
        let personal = vec![Namespace {
            prefix: imap_codec::imap_types::core::IString::try_from("").expect("static"),
            delimiter: QuotedChar::try_from(DELIMITER).ok(),
            extensions: Vec::<NamespaceResponseExtension>::new(),
        }];
        self.data(Data::Namespace {
            personal,
            other: Vec::new(),
            shared: Vec::new(),
        });
        self.ok(tag, None, "NAMESPACE completed");
    }
}
