//! QUOTA (RFC 9208): GETQUOTAROOT and GETQUOTA answer from the account's
//! quota in force (`delivery::quota`, through [`Mailstore::quota`]);
//! SETQUOTA is refused, as operators set quotas with `mes user quota`.
//!
//! Each account has one quota root, named `""`, over all its folders,
//! with STORAGE (KiB) and MESSAGE resources as far as they are limited; an
//! account without any limit has no quota root.

use imap_codec::imap_types::core::{AString, IString, Quoted, Tag, Vec1};
use imap_codec::imap_types::extensions::quota::{QuotaGet, Resource};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data};

use crate::imap::session::{ImapSession, code};
use crate::imap::storage::{Mailstore, Quota, QuotaRefusal};

/// The name of every account's one quota root.
const ROOT: &str = "";

fn root() -> AString<'static> {
    // The empty string is a valid quoted string.
    AString::String(IString::Quoted(Quoted::unvalidated(ROOT)))
}

/// The text of a tagged `NO [OVERQUOTA]` (APPEND, COPY).
fn over_quota_text(refusal: &QuotaRefusal) -> &'static str {
    if refusal.permanent() {
        "Quota exceeded (message larger than the quota)"
    } else {
        "Quota exceeded (mailbox full)"
    }
}

impl<S: Mailstore> ImapSession<S> {
    /// The account's quota, when a limit applies; None after answering a failure.
    async fn limited_quota(&mut self, tag: &Tag<'static>) -> Option<Option<Quota>> {
        match self.mailstore.quota(self.account()).await {
            Ok(q) => Some(q.filter(Quota::is_limited)),
            Err(e) => {
                self.store_failed(tag.clone(), e);
                None
            }
        }
    }

    /// GETQUOTAROOT: the mailbox's quota roots, then each root's QUOTA.
    pub(in crate::imap) async fn get_quota_root(
        &mut self,
        tag: Tag<'static>,
        mailbox: Mailbox<'static>,
    ) {
        let Some(folder) = self.resolve_folder(&tag, &mailbox).await else {
            return;
        };
        let Some(quota) = self.limited_quota(&tag).await else {
            return;
        };
        if let Some(mailbox) = self.wire_mailbox(&folder.name) {
            let roots = quota.iter().map(|_| root()).collect();
            self.data(Data::QuotaRoot { mailbox, roots });
        }
        if let Some(q) = &quota {
            self.quota_data(q);
        }
        self.ok(tag, None, "GETQUOTAROOT completed");
    }

    /// GETQUOTA of the one root `""`.
    pub(in crate::imap) async fn get_quota(&mut self, tag: Tag<'static>, name: AString<'static>) {
        if name.as_ref() != ROOT.as_bytes() {
            return self.no(tag, Some(code("NONEXISTENT")), "No such quota root");
        }
        match self.limited_quota(&tag).await {
            Some(Some(q)) => {
                self.quota_data(&q);
                self.ok(tag, None, "GETQUOTA completed");
            }
            Some(None) => self.no(tag, Some(code("NONEXISTENT")), "No such quota root"),
            None => {}
        }
    }

    /// SETQUOTA: not for clients (no QUOTASET capability).
    pub(in crate::imap) fn set_quota(&mut self, tag: Tag<'static>) {
        self.no(tag, Some(code("NOPERM")), "Quotas are set by the operator");
    }

    /// `* QUOTA "" (STORAGE used limit MESSAGE used limit)`, limited resources only.
    fn quota_data(&mut self, q: &Quota) {
        let mut resources = Vec::new();
        if let Some(limit) = q.storage_limit_kib {
            resources.push(QuotaGet::new(
                Resource::Storage,
                q.storage_used_kib(),
                limit,
            ));
        }
        if let Some(limit) = q.messages_limit {
            resources.push(QuotaGet::new(Resource::Message, q.messages_used, limit));
        }
        if let Ok(quotas) = Vec1::try_from(resources) {
            self.data(Data::Quota {
                root: root(),
                quotas,
            });
        }
    }

    /// `NO [OVERQUOTA]` for a refusal of the quota rule.
    pub(super) fn over_quota(&mut self, tag: Tag<'static>, refusal: &QuotaRefusal) {
        self.no(tag, Some(Code::OverQuota), over_quota_text(refusal));
    }
}
