//! LIST and LSUB (RFC 3501 §6.3.8-9, LIST-EXTENDED RFC 5258, LIST-STATUS
//! RFC 5819, CHILDREN RFC 3348, SPECIAL-USE RFC 6154) and NAMESPACE (RFC 2342).
//! Which names are returned is `hierarchy.rs`; this file words the answer.

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::{Atom, QuotedChar, Tag};
use imap_codec::imap_types::extensions::namespace::{Namespace, NamespaceResponseExtension};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Data, Response};

use super::status::status_items;
use crate::imap::extend::ListOptions;
use crate::imap::hierarchy::{self, Selection, Shown};
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

/// A LIST response with extended data after the name (RFC 5258 §6
/// `mbox-list-extended`: CHILDINFO, OLDNAME), which imap-types cannot
/// express: imap-codec writes the response, `extended` (e.g.
/// `("CHILDINFO" ("SUBSCRIBED"))`) goes before its CRLF.
pub(super) fn list_with_extended(data: Data<'static>, extended: &[u8]) -> Vec<u8> {
    let mut bytes = ResponseCodec::default()
        .encode(&Response::Data(data))
        .dump();
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    }
    bytes.push(b' ');
    bytes.extend_from_slice(extended);
    bytes.extend_from_slice(b"\r\n");
    bytes
}

/// The attributes of one name of a LIST or LSUB answer.
fn shown_attributes(
    shown: &Shown<'_>,
    all: &[Folder],
    ext: &ListOptions,
    lsub: bool,
) -> Vec<FlagNameAttribute<'static>> {
    match shown.folder {
        Some(f) if !shown.noselect => {
            let mut attrs = list_attributes(f, all);
            if !lsub && (ext.return_subscribed || ext.select_subscribed) && f.subscribed {
                attrs.extend(attr("\\Subscribed"));
            }
            attrs
        }
        // LSUB: a level above a subscribed mailbox (RFC 3501 §6.3.9).
        _ if lsub => attr("\\Noselect").into_iter().collect(),
        // A level with no mailbox of its own: \NonExistent (which implies
        // \Noselect) for a LIST-EXTENDED client (RFC 5258 §3.4).
        _ => [
            if ext.extended {
                "\\NonExistent"
            } else {
                "\\Noselect"
            },
            "\\HasChildren",
        ]
        .into_iter()
        .filter_map(attr)
        .collect(),
    }
}

impl<S: Mailstore> ImapSession<S> {
    /// LIST, or LSUB when `lsub`; the options and any further patterns of the
    /// extended syntax come from `extend.rs` through the session.
    pub(in crate::imap) async fn list(
        &mut self,
        tag: Tag<'static>,
        reference: Mailbox<'static>,
        pattern: ListMailbox<'static>,
        lsub: bool,
    ) {
        let ext = self.list_options.take().unwrap_or_default();
        let wire = self.name_wire();
        let reference = match &reference {
            Mailbox::Inbox => Ok("INBOX".to_string()),
            Mailbox::Other(o) => names::pattern_bytes(o.as_ref(), wire),
        };
        let given = ext.patterns.clone().unwrap_or_else(|| vec![pattern]);
        let patterns = given
            .iter()
            .map(|p| names::pattern_text(p, wire))
            .collect::<Result<Vec<_>, _>>();
        let (reference, patterns) = match (reference, patterns) {
            (Ok(r), Ok(p)) => (r, p),
            (Err(e), _) | (_, Err(e)) => return self.bad(tag, &e.to_string()),
        };
        let done = if lsub {
            "LSUB completed"
        } else {
            "LIST completed"
        };
        let delimiter = QuotedChar::try_from(DELIMITER).ok();
        if !ext.extended && patterns.iter().all(String::is_empty) {
            // The hierarchy delimiter and root (RFC 3501 §6.3.8); nothing for
            // LSUB, as Dovecot.
            if !lsub {
                self.data(Data::List {
                    items: attr("\\Noselect").into_iter().collect(),
                    delimiter,
                    mailbox: Mailbox::try_from("").unwrap_or(Mailbox::Inbox),
                });
            }
            return self.ok(tag, None, done);
        }
        // The extended syntax ignores empty patterns (RFC 5258 §3).
        let full: Vec<String> = patterns
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| format!("{reference}{p}"))
            .collect();
        if full.is_empty() {
            return self.ok(tag, None, done);
        }
        let folders = match self.mailstore.folders(self.account()).await {
            Ok(f) => f,
            Err(e) => return self.store_failed(tag, e),
        };
        let selection = Selection {
            lsub,
            subscribed: ext.select_subscribed,
            special_use: ext.select_special_use,
            recursive: ext.select_recursive,
        };
        for shown in hierarchy::select(&folders, &full, selection) {
            let Some(mailbox) = self.wire_mailbox(&shown.name) else {
                continue;
            };
            let items = shown_attributes(&shown, &folders, &ext, lsub);
            // LIST-STATUS (RFC 5819): the STATUS response follows the LIST one,
            // for selectable mailboxes only.
            let status = match (&ext.return_status, shown.folder, lsub) {
                (Some(names), Some(folder), false) => {
                    match self.mailstore.folder_counts(folder.id).await {
                        Ok(counts) => Some(Data::Status {
                            mailbox: mailbox.clone(),
                            items: status_items(folder, &counts, names).into(),
                        }),
                        Err(e) => return self.store_failed(tag, e),
                    }
                }
                _ => None,
            };
            if lsub {
                self.data(Data::Lsub {
                    items,
                    delimiter,
                    mailbox,
                });
            } else {
                let data = Data::List {
                    items,
                    delimiter,
                    mailbox,
                };
                if shown.childinfo {
                    self.raw(list_with_extended(
                        data,
                        b"(\"CHILDINFO\" (\"SUBSCRIBED\"))",
                    ));
                } else {
                    self.data(data);
                }
            }
            if let Some(status) = status {
                self.data(status);
            }
        }
        self.ok(tag, None, done);
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
