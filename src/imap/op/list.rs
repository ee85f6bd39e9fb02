//! LIST and LSUB (RFC 3501 §6.3.8-9, LIST-EXTENDED RFC 5258, LIST-STATUS
//! RFC 5819, CHILDREN RFC 3348, SPECIAL-USE RFC 6154) and NAMESPACE (RFC 2342).

use std::collections::HashSet;

use imap_codec::imap_types::core::{Atom, QuotedChar, Tag};
use imap_codec::imap_types::extensions::namespace::{Namespace, NamespaceResponseExtension};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::Data;

use super::status::status_items;
use crate::imap::names::{self, DELIMITER};
use crate::imap::session::ImapSession;
use crate::imap::storage::Folder;
use crate::imap::storage::Mailstore;

pub(super) fn attr(name: &str) -> Option<FlagNameAttribute<'static>> {
    Atom::try_from(name.trim_start_matches('\\').to_string())
        .ok()
        .map(FlagNameAttribute::from)
}

/// The attributes every LIST response carries for `folder`: children
/// (RFC 3348) and special use (RFC 6154).
pub(super) fn list_attributes(folder: &Folder, all: &[Folder]) -> Vec<FlagNameAttribute<'static>> {
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

impl<S: Mailstore> ImapSession<S> {
    /// LIST, or LSUB when `lsub`.
    pub(in crate::imap) async fn list(
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
        let folders = match self.mailstore.folders(self.account()).await {
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
                (Some(names), false) => match self.mailstore.folder_counts(folder.id).await {
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

    /// NAMESPACE: one personal namespace.
    pub(in crate::imap) fn namespace(&mut self, tag: Tag<'static>) {
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
