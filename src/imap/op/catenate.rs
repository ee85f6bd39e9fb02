//! CATENATE (RFC 4469): a message put together from TEXT literals and IMAP
//! URLs (RFC 5092, `url.rs`) naming messages or parts of messages of the
//! logged-in account, read as `BODY.PEEK[section]<partial>` would read them.
//! A URL that names nothing here (another server or user, a missing mailbox
//! or message, a stale UIDVALIDITY, URLAUTH) is `NO [BADURL url]`; a result
//! over APPENDLIMIT is `NO [TOOBIG]`.

use std::borrow::Cow;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};
use imap_codec::imap_types::response::{Code, CodeOther};

use crate::imap::extend::append::CatPart;
use crate::imap::session::ImapSession;
use crate::imap::storage::Mailstore;
use crate::imap::url::{self, MessageUrl};
use crate::mime::structure;
use crate::store::StoreError;

/// Why a URL part could not be read.
enum UrlFailure {
    /// The URL names nothing this session may read: BADURL with this text.
    Bad(String),
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for UrlFailure {
    fn from(e: StoreError) -> Self {
        UrlFailure::Store(e)
    }
}

/// `BADURL url` (RFC 4469 §6: `url-resp-text` holds no `]`, CR or LF; any
/// other octet outside printable ASCII is percent-encoded here).
fn bad_url(url: &str) -> Code<'static> {
    let mut text = String::with_capacity(url.len() + 7);
    text.push_str("BADURL ");
    for b in url.bytes() {
        if (0x20..0x7f).contains(&b) && b != b']' {
            text.push(char::from(b));
        } else {
            text.push_str(&format!("%{b:02X}"));
        }
    }
    if url.is_empty() {
        text.push_str("\"\"");
    }
    Code::Other(CodeOther::unvalidated(text.into_bytes()))
}

/// A BODY[] section as written in a URL (`1.2`, `HEADER.FIELDS (TO)`),
/// read by imap-codec from a FETCH made of it; None when it is not one.
fn section(text: &str) -> Option<Section<'static>> {
    if text
        .bytes()
        .any(|b| matches!(b, b']' | b'\r' | b'\n' | b'['))
    {
        return None;
    }
    let fetch = format!("x FETCH 1 BODY.PEEK[{text}]\r\n");
    let (_, command) = CommandCodec::default().decode(fetch.as_bytes()).ok()?;
    let CommandBody::Fetch {
        macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(items),
        ..
    } = command.body
    else {
        return None;
    };
    match items.into_iter().next()? {
        MessageDataItemName::BodyExt {
            section: Some(section),
            ..
        } => Some(imap_codec::imap_types::IntoStatic::into_static(section)),
        _ => None,
    }
}

impl<S: Mailstore> ImapSession<S> {
    /// Puts a CATENATE message together; None once the command is answered
    /// (BADURL, TOOBIG, a store failure).
    pub(super) async fn catenate(
        &mut self,
        tag: &Tag<'static>,
        parts: Vec<CatPart>,
    ) -> Option<Vec<u8>> {
        let mut message = Vec::new();
        for part in parts {
            let piece = match part {
                CatPart::Text(text) => text,
                CatPart::Url(u) => match self.url_content(&u).await {
                    Ok(bytes) => bytes,
                    Err(UrlFailure::Bad(reason)) => {
                        tracing::debug!(reason = %reason, "CATENATE URL refused");
                        self.no(tag.clone(), Some(bad_url(&u)), &reason);
                        return None;
                    }
                    Err(UrlFailure::Store(e)) => {
                        self.store_failed(tag.clone(), e);
                        return None;
                    }
                },
            };
            if message.len() + piece.len() > self.config.max_message_size {
                self.no(tag.clone(), Some(Code::TooBig), "Message too large");
                return None;
            }
            message.extend_from_slice(&piece);
        }
        Some(message)
    }

    /// The octets a CATENATE URL names.
    async fn url_content(&mut self, text: &str) -> Result<Vec<u8>, UrlFailure> {
        let address = self
            .user
            .as_ref()
            .map(|u| u.address.clone())
            .unwrap_or_default();
        let url: MessageUrl = url::parse(text, &self.config.hostname, &address)
            .map_err(|e| UrlFailure::Bad(e.to_string()))?;
        let folder = match &url.mailbox {
            Some(name) => self.mailstore.folder(self.account(), name).await?,
            None => match self.selected.as_ref().map(|s| s.id) {
                Some(id) => self.mailstore.folder_by_id(id).await?,
                None => return Err(UrlFailure::Bad("No mailbox selected".into())),
            },
        }
        .ok_or_else(|| UrlFailure::Bad("No such mailbox".into()))?;
        if url
            .uidvalidity
            .is_some_and(|v| i64::from(v) != folder.uidvalidity)
        {
            return Err(UrlFailure::Bad("UIDVALIDITY changed".into()));
        }
        let uid = i64::from(url.uid);
        let entry = self
            .mailstore
            .entries_in_range(folder.id, uid, uid, false, false)
            .await?
            .into_iter()
            .find(|e| e.uid == uid)
            .ok_or_else(|| UrlFailure::Bad("No such message".into()))?;
        let raw = self.mailstore.blob(&entry.blob_hash).await?;
        let bytes: Cow<'_, [u8]> = match &url.section {
            Some(text) => {
                let section =
                    section(text).ok_or_else(|| UrlFailure::Bad("Invalid section".into()))?;
                Cow::Owned(structure::section(&raw, Some(&section)))
            }
            None => Cow::Borrowed(&raw),
        };
        Ok(match url.partial {
            Some((offset, length)) => {
                let start = (offset as usize).min(bytes.len());
                let end = length.map_or(bytes.len(), |l| {
                    start.saturating_add(l as usize).min(bytes.len())
                });
                bytes[start..end].to_vec()
            }
            None => bytes.into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_read_as_fetch_reads_them() {
        assert!(matches!(section("HEADER"), Some(Section::Header(None))));
        assert!(matches!(section("1.MIME"), Some(Section::Mime(_))));
        assert!(matches!(section("2"), Some(Section::Part(_))));
        assert!(matches!(
            section("HEADER.FIELDS (SUBJECT TO)"),
            Some(Section::HeaderFields(None, _))
        ));
        for bad in ["", "X", "1]", "HEADER]\r\nA2 LOGOUT"] {
            assert!(section(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn bad_url_codes_stay_on_one_line() {
        let Code::Other(other) = bad_url("/INBOX/;UID=1]\r\né") else {
            panic!("not an other code");
        };
        assert_eq!(other.inner(), b"BADURL /INBOX/;UID=1%5D%0D%0A%C3%A9");
    }
}
