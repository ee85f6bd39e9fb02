//! Mailbox management: CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE
//! (RFC 3501 §6.3, RFC 9051 §6.3).

use imap_codec::imap_types::core::{IString, Literal, QuotedChar, Tag};
use imap_codec::imap_types::extensions::utf8::QuotedUtf8;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::Data;

use super::list::{list_attributes, list_with_extended};
use crate::imap::names::{self, DELIMITER};
use crate::imap::session::{ImapSession, code};
use crate::imap::storage::Mailstore;
use crate::imap::wire;
use crate::store::StoreError;

/// `text` as an IMAP string: quoted UTF-8 (names are UTF-8 in IMAP4rev2),
/// or a literal when it holds CR or LF; None if not even a literal can hold
/// it (a NUL, which no mailbox name has).
fn quoted_or_literal(text: &str) -> Option<Vec<u8>> {
    let string = match QuotedUtf8::try_from(text) {
        Ok(quoted) => IString::QuotedUtf8(quoted),
        Err(_) => IString::Literal(Literal::try_from(text).ok()?),
    };
    Some(wire::string(&string))
}

impl<S: Mailstore> ImapSession<S> {
    /// After CREATE or RENAME of `supplied` into `name`: when the server
    /// normalised the name (trailing delimiter, INBOX's case), an IMAP4rev2
    /// session gets the mailbox's LIST response with `OLDNAME` (RFC 9051 §6.3.4,
    /// §6.3.6), which imap-types cannot express.
    async fn report_normalised(&mut self, supplied: Option<String>, name: &str) {
        if !self.rev2 || supplied.as_deref().is_none_or(|s| s == name) {
            return;
        }
        let (Some(old), Some(mailbox)) = (
            supplied.as_deref().and_then(quoted_or_literal),
            self.wire_mailbox(name),
        ) else {
            return;
        };
        let Ok(all) = self.mailstore.folders(self.account()).await else {
            return;
        };
        let Some(folder) = all.iter().find(|f| f.name == name) else {
            return;
        };
        let list = Data::List {
            items: list_attributes(folder, &all),
            delimiter: QuotedChar::try_from(DELIMITER).ok(),
            mailbox,
        };
        let mut extended = b"(\"OLDNAME\" (".to_vec();
        extended.extend_from_slice(&old);
        extended.extend_from_slice(b"))");
        self.raw(list_with_extended(list, &extended));
    }

    /// CREATE.
    pub(in crate::imap) async fn create(&mut self, tag: Tag<'static>, mailbox: Mailbox<'static>) {
        let name = match names::decode(&mailbox, self.name_wire()) {
            Ok(n) => n,
            Err(e) => return self.bad(tag, &e.to_string()),
        };
        if name == "INBOX" {
            return self.no(tag, Some(code("ALREADYEXISTS")), "INBOX always exists");
        }
        match self.mailstore.create_folder(self.account(), &name).await {
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

    /// DELETE.
    pub(in crate::imap) async fn delete(&mut self, tag: Tag<'static>, mailbox: Mailbox<'static>) {
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
        match self.mailstore.delete_folder(folder.id).await {
            Ok(()) => self.ok(tag, None, "DELETE completed"),
            Err(e) => self.store_failed(tag, e),
        }
    }

    /// RENAME (of INBOX too: its messages move, RFC 3501 §6.3.5).
    pub(in crate::imap) async fn rename(
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
        let result = self
            .mailstore
            .rename_folder(self.account(), &folder, &to_name)
            .await;
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

    /// SUBSCRIBE and UNSUBSCRIBE.
    pub(in crate::imap) async fn subscribe(
        &mut self,
        tag: Tag<'static>,
        mailbox: Mailbox<'static>,
        on: bool,
    ) {
        let Some(folder) = self.resolve_folder(&tag, &mailbox).await else {
            return;
        };
        match self.mailstore.set_subscribed(folder.id, on).await {
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
}

#[cfg(test)]
mod tests {
    use super::quoted_or_literal;

    #[test]
    fn old_names_are_quoted_or_literal() {
        let q = |s| String::from_utf8(quoted_or_literal(s).unwrap()).unwrap();
        assert_eq!(q("inbox/Été"), "\"inbox/Été\"");
        assert_eq!(q(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(q(""), "\"\"");
        assert_eq!(q("a\r\nb"), "{4}\r\na\r\nb");
        assert_eq!(quoted_or_literal("a\0b"), None);
    }
}
