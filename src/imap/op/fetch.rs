//! FETCH (RFC 3501 §6.4.5, RFC 7162 MODSEQ/CHANGEDSINCE, RFC 3516 BINARY):
//! metadata from the stored rows, ENVELOPE and BODYSTRUCTURE from what delivery
//! computed, content read only when a body item asks for it.
//!
//! imap-codec parses BINARY, BINARY.PEEK and BINARY.SIZE and writes their
//! responses, literal8 included, but its `MessageDataItem::Binary` has no
//! origin: a FETCH response with a partial BINARY item is encoded here
//! ([`encode_fetch`]) and sent through the session's raw-response queue.

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::body::BodyStructure;
use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::{LiteralMode, NString, NString8, Tag, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::envelope::Envelope;
use imap_codec::imap_types::extensions::binary::Literal8;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;

use crate::imap::sequence;
use crate::imap::session::{ImapSession, code, flag_fetch};
use crate::imap::storage::Mailstore;
use crate::imap::storage::{Entry, FlagOp, FolderChanges};
use crate::imap::wire;
use crate::mime::structure;

fn nstring(bytes: Vec<u8>) -> NString<'static> {
    NString::try_from(bytes.clone())
        .or_else(|_| {
            imap_codec::imap_types::core::Literal::try_from(bytes).map(|l| NString(Some(l.into())))
        })
        .unwrap_or(NString(None))
}

/// BINARY content (RFC 3516 §4.2): a literal8 when it holds NUL, else a string.
fn nstring8(bytes: Vec<u8>) -> NString8<'static> {
    if bytes.contains(&0) {
        NString8::Literal8(Literal8 {
            data: bytes.into(),
            mode: LiteralMode::Sync,
        })
    } else {
        NString8::NString(nstring(bytes))
    }
}

/// One FETCH response whose BINARY items carry the origin of a partial fetch
/// (`BINARY[1]<0>`, RFC 3516 §4.2), which imap-types has no field for: each
/// item is encoded by imap-codec and the origin put in after its section.
fn encode_fetch(seq: NonZeroU32, items: Vec<(MessageDataItem<'static>, Option<u32>)>) -> Vec<u8> {
    let prefix = format!("* {seq} FETCH (");
    let mut out = prefix.clone().into_bytes();
    for (i, (item, origin)) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        let one = Response::Data(Data::Fetch {
            seq,
            items: Vec1::from(item),
        });
        let encoded = ResponseCodec::default().encode(&one).dump();
        let inner = encoded
            .get(prefix.len()..encoded.len().saturating_sub(3))
            .unwrap_or_default();
        match (origin, inner.iter().position(|&b| b == b']')) {
            (Some(origin), Some(close)) => {
                out.extend_from_slice(&inner[..=close]);
                out.extend_from_slice(format!("<{origin}>").as_bytes());
                out.extend_from_slice(&inner[close + 1..]);
            }
            _ => out.extend_from_slice(inner),
        }
    }
    out.extend_from_slice(b")\r\n");
    out
}

fn internal_date(secs: i64) -> Option<DateTime> {
    let utc = chrono::DateTime::from_timestamp(secs, 0)?;
    let fixed = utc.with_timezone(&chrono::FixedOffset::east_opt(0)?);
    DateTime::try_from(fixed).ok()
}

fn envelope_of(entry: &Entry, content: Option<&[u8]>) -> Envelope<'static> {
    entry
        .imap_envelope
        .as_deref()
        .and_then(structure::wire::parse_envelope)
        .or_else(|| {
            entry
                .envelope
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
        })
        .or_else(|| content.map(structure::envelope))
        .unwrap_or_else(|| structure::envelope(b""))
}

fn bodystructure_of(entry: &Entry, content: Option<&[u8]>) -> BodyStructure<'static> {
    entry
        .bodystructure
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .or_else(|| content.map(structure::body_structure))
        .unwrap_or_else(|| structure::body_structure(b""))
}

fn needs_content(names: &[MessageDataItemName<'_>], entry: &Entry) -> bool {
    names.iter().any(|n| match n {
        MessageDataItemName::BodyExt { .. }
        | MessageDataItemName::Rfc822
        | MessageDataItemName::Rfc822Header
        | MessageDataItemName::Rfc822Text
        | MessageDataItemName::Binary { .. }
        | MessageDataItemName::BinarySize { .. } => true,
        MessageDataItemName::Envelope => entry.envelope.is_none() && entry.imap_envelope.is_none(),
        MessageDataItemName::Body | MessageDataItemName::BodyStructure => {
            entry.bodystructure.is_none()
        }
        _ => false,
    })
}

fn partial(bytes: Vec<u8>, partial: Option<(u32, NonZeroU32)>) -> Vec<u8> {
    match partial {
        None => bytes,
        Some((start, len)) => {
            let start = (start as usize).min(bytes.len());
            let end = start.saturating_add(len.get() as usize).min(bytes.len());
            bytes[start..end].to_vec()
        }
    }
}

impl<S: Mailstore> ImapSession<S> {
    pub(in crate::imap) async fn fetch(
        &mut self,
        tag: Tag<'static>,
        set: SequenceSet,
        names: MacroOrMessageDataItemNames<'static>,
        uid: bool,
        modifiers: Vec<FetchModifier>,
    ) {
        let Some(sel) = self.selected.clone() else {
            return self.bad(tag, "Select a mailbox first");
        };
        if !uid && sequence::out_of_range(&set, sel.uids.len()) {
            return self.bad(tag, "Invalid message sequence number");
        }
        let mut names: Vec<MessageDataItemName<'static>> = match names {
            MacroOrMessageDataItemNames::Macro(m) => {
                m.expand().into_iter().map(|n| n.into_static()).collect()
            }
            MacroOrMessageDataItemNames::MessageDataItemNames(n) => n,
        };
        let changed_since = modifiers.iter().find_map(|m| match m {
            FetchModifier::ChangedSince(v) => Some(v.get() as i64),
            _ => None,
        });
        // VANISHED (RFC 7162 §3.2.6): UID FETCH only, with CHANGEDSINCE, after ENABLE QRESYNC.
        let vanished = modifiers.contains(&FetchModifier::Vanished);
        if vanished && !(uid && self.qresync && changed_since.is_some()) {
            return self.bad(
                tag,
                "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC",
            );
        }
        if let Some(since) = changed_since.filter(|_| vanished) {
            // `*` covers UIDs past the highest remaining one: they may have vanished.
            let in_set = |u: i64| sequence::contains(&set, u, i64::from(u32::MAX));
            if let Err(e) = self.report_vanished(sel.id, since, in_set).await {
                return self.store_failed(tag, e);
            }
        }
        let enabling = (changed_since.is_some() || names.contains(&MessageDataItemName::ModSeq))
            && self.enable_condstore();
        if uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        if self.condstore
            && changed_since.is_some()
            && !names.contains(&MessageDataItemName::ModSeq)
        {
            names.push(MessageDataItemName::ModSeq);
        }
        let wanted = sel.uids.resolve(&set, uid);
        let (Some(&first), Some(&last)) = (wanted.first(), wanted.last()) else {
            let code = self.highest_modseq(enabling);
            return self.ok(tag, code, "FETCH completed");
        };
        // The session's changes, when read with the listing's catch-up.
        let mut changes = None;
        if wire::is_metadata_only(&names) {
            match self
                .fetch_listed(&sel, &wanted, &names, changed_since)
                .await
            {
                Ok((answer, read)) => {
                    changes = read;
                    if let Some((out, keywords)) = answer {
                        self.announce_keywords(keywords.iter().map(String::as_str));
                        if !out.is_empty() {
                            self.raw(out);
                        }
                        self.sync_from(changes, false).await;
                        let code = self.highest_modseq(enabling);
                        return self.ok(tag, code, "FETCH completed");
                    }
                }
                Err(e) => return self.store_failed(tag, e),
            }
        }
        let store = self.mailstore.clone();
        let want_envelope = names.contains(&MessageDataItemName::Envelope);
        let want_structure = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::Body | MessageDataItemName::BodyStructure
            )
        });
        let entries = match store
            .entries_in_range(sel.id, first, last, want_envelope, want_structure)
            .await
        {
            Ok(e) => e,
            Err(e) => return self.store_failed(tag, e),
        };
        let wanted_set: std::collections::HashSet<i64> = wanted.iter().copied().collect();
        let sets_seen = !sel.read_only
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Binary { peek: false, .. }
                ) || matches!(
                    n,
                    MessageDataItemName::Rfc822 | MessageDataItemName::Rfc822Text
                )
            });
        if sets_seen || names.contains(&MessageDataItemName::Flags) {
            self.announce_keywords(
                entries
                    .iter()
                    .filter(|e| wanted_set.contains(&e.uid))
                    .map(|e| e.flags.as_str()),
            );
        }
        let mut seen_now: Vec<i64> = Vec::new();
        let mut failure: Option<(&'static str, &'static str)> = None;
        'entries: for entry in entries {
            if !wanted_set.contains(&entry.uid) {
                continue;
            }
            if changed_since.is_some_and(|c| entry.modseq <= c) {
                continue;
            }
            let Some(seq) = sel.seq_of(entry.uid) else {
                continue;
            };
            let recent = !self.rev2 && sel.recent.contains(&entry.uid);
            let content = if needs_content(&names, &entry) {
                match store.blob(&entry.blob_hash).await {
                    Ok(c) => Some(c),
                    Err(e) => return self.store_failed(tag, e),
                }
            } else {
                None
            };
            let mut flags = entry.flags.clone();
            if sets_seen && !flags.split(' ').any(|f| f.eq_ignore_ascii_case("\\Seen")) {
                seen_now.push(entry.uid);
                flags = crate::store::entries::normalize_flags(flags.split(' ').chain(["\\Seen"]));
            }
            let parsed = names
                .iter()
                .any(|n| {
                    matches!(
                        n,
                        MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. }
                    )
                })
                .then(|| structure::ParsedMessage::parse(content.as_deref().unwrap_or_default()));
            let mut items: Vec<MessageDataItem<'static>> = Vec::with_capacity(names.len());
            // Origins of partial BINARY items, by index in `items`.
            let mut origins: Vec<(usize, u32)> = Vec::new();
            let mut flags_sent = false;
            for name in &names {
                let item = match name {
                    MessageDataItemName::Uid => MessageDataItem::Uid(
                        NonZeroU32::new(entry.uid as u32).unwrap_or(NonZeroU32::MIN),
                    ),
                    MessageDataItemName::Flags => {
                        flags_sent = true;
                        MessageDataItem::Flags(flag_fetch(&flags, recent))
                    }
                    MessageDataItemName::InternalDate => match internal_date(entry.internal_date) {
                        Some(d) => MessageDataItem::InternalDate(d),
                        None => continue,
                    },
                    MessageDataItemName::Rfc822Size => {
                        MessageDataItem::Rfc822Size(entry.size as u32)
                    }
                    MessageDataItemName::Envelope => {
                        MessageDataItem::Envelope(envelope_of(&entry, content.as_deref()))
                    }
                    MessageDataItemName::BodyStructure => {
                        MessageDataItem::BodyStructure(bodystructure_of(&entry, content.as_deref()))
                    }
                    MessageDataItemName::Body => MessageDataItem::Body(
                        structure::strip_extensions(bodystructure_of(&entry, content.as_deref())),
                    ),
                    MessageDataItemName::ModSeq => MessageDataItem::ModSeq(
                        NonZeroU64::new(entry.modseq as u64).unwrap_or(NonZeroU64::MIN),
                    ),
                    MessageDataItemName::Rfc822 => {
                        MessageDataItem::Rfc822(nstring(content.clone().unwrap_or_default()))
                    }
                    MessageDataItemName::Rfc822Header => {
                        MessageDataItem::Rfc822Header(nstring(structure::section(
                            content.as_deref().unwrap_or_default(),
                            Some(&Section::Header(None)),
                        )))
                    }
                    MessageDataItemName::Rfc822Text => {
                        MessageDataItem::Rfc822Text(nstring(structure::section(
                            content.as_deref().unwrap_or_default(),
                            Some(&Section::Text(None)),
                        )))
                    }
                    MessageDataItemName::BodyExt {
                        section,
                        partial: range,
                        ..
                    } => {
                        let bytes = structure::section(
                            content.as_deref().unwrap_or_default(),
                            section.as_ref(),
                        );
                        MessageDataItem::BodyExt {
                            section: section.clone(),
                            origin: range.map(|(start, _)| start),
                            data: nstring(partial(bytes, range.to_owned())),
                        }
                    }
                    MessageDataItemName::Binary {
                        section,
                        partial: range,
                        ..
                    } => {
                        let decoded = match parsed.as_ref().map(|p| p.binary(section)) {
                            Some(Ok(d)) => d.into_owned(),
                            Some(Err(e)) => {
                                failure = Some(binary_failure(e));
                                seen_now.retain(|&u| u != entry.uid);
                                break 'entries;
                            }
                            None => Vec::new(),
                        };
                        if let Some((start, _)) = range {
                            origins.push((items.len(), *start));
                        }
                        MessageDataItem::Binary {
                            section: section.clone(),
                            value: nstring8(partial(decoded, range.to_owned())),
                        }
                    }
                    MessageDataItemName::BinarySize { section } => {
                        let size = match parsed.as_ref().map(|p| p.binary(section)) {
                            Some(Ok(d)) => d.len(),
                            Some(Err(e)) => {
                                failure = Some(binary_failure(e));
                                seen_now.retain(|&u| u != entry.uid);
                                break 'entries;
                            }
                            None => 0,
                        };
                        MessageDataItem::BinarySize {
                            section: section.clone(),
                            size: u32::try_from(size).unwrap_or(u32::MAX),
                        }
                    }
                };
                items.push(item);
            }
            if seen_now.last() == Some(&entry.uid) && !flags_sent {
                items.push(MessageDataItem::Flags(flag_fetch(&flags, recent)));
            }
            if !origins.is_empty() {
                let items = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let origin = origins.iter().find(|(at, _)| *at == i).map(|(_, o)| *o);
                        (item, origin)
                    })
                    .collect();
                self.raw(encode_fetch(seq, items));
            } else if let Ok(items) = Vec1::try_from(items) {
                self.data(Data::Fetch { seq, items });
            }
        }
        if !seen_now.is_empty() {
            // Read before this change: the check after it reads again.
            changes = None;
            let result = store
                .store_flags(
                    sel.id,
                    &seen_now,
                    FlagOp::Add,
                    &["\\Seen".to_string()],
                    None,
                )
                .await;
            if let (Ok(change), Some(s)) = (result, self.selected.as_mut()) {
                // Our own change was reported with the FETCH above.
                if let Some((_, _, m)) = change.changed.first()
                    && *m == s.modseq + 1
                {
                    s.modseq = *m;
                }
            }
        }
        self.sync_from(changes, false).await;
        match failure {
            Some((name, text)) => self.no(tag, Some(code(name)), text),
            None => {
                let code = self.highest_modseq(enabling);
                self.ok(tag, code, "FETCH completed")
            }
        }
    }
}

impl<S: Mailstore> ImapSession<S> {
    /// A metadata FETCH answered from the folder's shared listing
    /// (`listing.rs`), written straight into bytes (`wire.rs`), with the
    /// flag strings that hold keywords (to announce first). None when the
    /// listing is not worth using or a message cannot be written that way:
    /// the caller reads the rows instead. With it, the session's changes
    /// when they were read in the same round trip as the listing's catch-up.
    async fn fetch_listed(
        &self,
        sel: &crate::imap::session::Selected,
        wanted: &[i64],
        names: &[MessageDataItemName<'static>],
        changed_since: Option<i64>,
    ) -> Result<(Option<(Vec<u8>, Vec<String>)>, Option<FolderChanges>), crate::store::StoreError>
    {
        let read = self
            .mailstore
            .listing(
                sel.id,
                sel.uidvalidity,
                sel.uids.len(),
                wanted.len(),
                self.changes_since(),
            )
            .await?;
        let Some(listing) = read.listing else {
            return Ok((None, read.changes));
        };
        let mut out = Vec::with_capacity(wanted.len().min(listing.len()).saturating_mul(192));
        let with_flags = names.contains(&MessageDataItemName::Flags);
        let mut keywords: Vec<String> = Vec::new();
        for &uid in wanted {
            let Some(entry) = listing.get(uid) else {
                continue;
            };
            if changed_since.is_some_and(|c| entry.modseq <= c) {
                continue;
            }
            let Some(seq) = sel.seq_of(uid) else {
                continue;
            };
            let recent = !self.rev2 && sel.recent.contains(&uid);
            if !wire::metadata_response(&mut out, seq, uid, entry, names, recent) {
                return Ok((None, read.changes));
            }
            if with_flags
                && entry
                    .flags
                    .split(' ')
                    .any(|f| !f.is_empty() && !f.starts_with('\\'))
                && !keywords.iter().any(|k| **k == *entry.flags)
            {
                keywords.push(entry.flags.to_string());
            }
        }
        Ok((Some((out, keywords)), read.changes))
    }
}

/// The tagged NO for a BINARY item that cannot be given (RFC 3516 §4.3).
fn binary_failure(e: structure::BinaryError) -> (&'static str, &'static str) {
    match e {
        structure::BinaryError::UnknownCte => (
            "UNKNOWN-CTE",
            "Cannot decode the part's Content-Transfer-Encoding",
        ),
        structure::BinaryError::Corrupt => (
            "PARSE",
            "The part is not valid in its Content-Transfer-Encoding",
        ),
    }
}
