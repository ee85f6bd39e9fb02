//! The storage quota rule (RFC 9208 resources STORAGE and MESSAGE), in one
//! place: an account's limits are its own (`mes user quota`) or else the
//! configured ones (`[quota]`); what would take an account past one of them
//! is refused, for now when the account is full (SMTP 452 4.2.2, the sender
//! retries), for good when the message alone is larger than the limit (552
//! 5.2.2). The group-commit writer applies it to every message of every
//! source (`writer.rs`), judged by the store under the write lock so that
//! concurrent deliveries cannot overshoot it; SMTP also asks it early at
//! RCPT TO and IMAP before a COPY, through the [`super::Acceptor`]. The
//! usage counters are the store's
//! (`store::quota`).

use std::fmt;

use super::accept::Acceptor;
use crate::config::QuotaSettings;
use crate::store::StoreError;
use crate::store::quota::{AccountQuota, Limit};

/// A quota resource (RFC 9208 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// KiB of mail (STORAGE).
    Storage,
    /// Number of messages (MESSAGE).
    Message,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resource::Storage => "STORAGE",
            Resource::Message => "MESSAGE",
        })
    }
}

/// An account's usage against the limits in force for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// The account.
    pub account_id: i64,
    /// Its address.
    pub address: String,
    /// Octets of mail in its folders.
    pub storage_used: u64,
    /// Its storage limit in KiB (None: no limit).
    pub storage_limit_kib: Option<u64>,
    /// Messages in its folders.
    pub messages_used: u64,
    /// Its message limit (None: no limit).
    pub messages_limit: Option<u64>,
}

/// Why a message does not fit an account's quota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaRefusal {
    /// The account is full for now: it takes this message once mail is removed.
    #[error("the mailbox of {address} is full ({resource})")]
    Full {
        /// The account.
        address: String,
        /// The resource that would be exceeded.
        resource: Resource,
    },
    /// The message alone is larger than the account's whole quota.
    #[error("the message is larger than the quota of {address} ({resource})")]
    TooLarge {
        /// The account.
        address: String,
        /// The resource it exceeds.
        resource: Resource,
    },
}

impl QuotaRefusal {
    /// Retrying cannot help (SMTP 5xx rather than 4xx).
    pub fn permanent(&self) -> bool {
        matches!(self, QuotaRefusal::TooLarge { .. })
    }

    /// The account whose quota refused.
    pub fn address(&self) -> &str {
        match self {
            QuotaRefusal::Full { address, .. } | QuotaRefusal::TooLarge { address, .. } => address,
        }
    }
}

/// A stored limit with the configured default in place of `Default`.
fn in_force(limit: Limit, default: Option<u64>) -> Option<u64> {
    match limit {
        Limit::Default => default,
        Limit::Unlimited => None,
        Limit::Max(n) => Some(n),
    }
}

impl Quota {
    /// The quota in force for an account, from its row and the configured defaults.
    pub fn of(row: &AccountQuota, defaults: &QuotaSettings) -> Quota {
        Quota {
            account_id: row.account_id,
            address: row.address.clone(),
            storage_used: row.storage_used,
            storage_limit_kib: in_force(row.storage_limit, defaults.storage_kib),
            messages_used: row.messages_used,
            messages_limit: in_force(row.messages_limit, defaults.messages),
        }
    }

    /// Whether any limit applies (else IMAP names no quota root for it).
    pub fn is_limited(&self) -> bool {
        self.storage_limit_kib.is_some() || self.messages_limit.is_some()
    }

    /// Storage used, in KiB as RFC 9208 counts it (rounded up: a message
    /// uses space).
    pub fn storage_used_kib(&self) -> u64 {
        self.storage_used.div_ceil(1024)
    }

    /// Whether `octets` more in `messages` more messages fit.
    pub fn admit(&self, octets: u64, messages: u64) -> Result<(), QuotaRefusal> {
        if let Some(kib) = self.storage_limit_kib {
            let limit = kib.saturating_mul(1024);
            if octets > limit {
                return Err(self.too_large(Resource::Storage));
            }
            if self.storage_used.saturating_add(octets) > limit {
                return Err(self.full(Resource::Storage));
            }
        }
        if let Some(limit) = self.messages_limit {
            if messages > limit {
                return Err(self.too_large(Resource::Message));
            }
            if self.messages_used.saturating_add(messages) > limit {
                return Err(self.full(Resource::Message));
            }
        }
        Ok(())
    }

    fn full(&self, resource: Resource) -> QuotaRefusal {
        QuotaRefusal::Full {
            address: self.address.clone(),
            resource,
        }
    }

    fn too_large(&self, resource: Resource) -> QuotaRefusal {
        QuotaRefusal::TooLarge {
            address: self.address.clone(),
            resource,
        }
    }
}

impl Acceptor {
    /// The quota in force for an account (None: no such account): GETQUOTA,
    /// and the check before an IMAP COPY.
    pub async fn quota(&self, account_id: i64) -> Result<Option<Quota>, StoreError> {
        let row = self.services.store.quota_of(account_id).await?;
        Ok(row.map(|r| self.quota_in_force(&r)))
    }

    /// The quota in force for an account whose row the caller read (the
    /// RCPT TO lookup reads it with the recipient).
    pub fn quota_in_force(&self, row: &AccountQuota) -> Quota {
        Quota::of(row, &self.services.quota)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(storage_used: u64, messages_used: u64, storage: Limit, messages: Limit) -> AccountQuota {
        AccountQuota {
            account_id: 7,
            address: "a@b.test".into(),
            storage_used,
            messages_used,
            storage_limit: storage,
            messages_limit: messages,
        }
    }

    const DEFAULTS: QuotaSettings = QuotaSettings {
        storage_kib: Some(10),
        messages: Some(3),
    };

    #[test]
    fn own_limits_replace_the_defaults() {
        let q = Quota::of(&row(0, 0, Limit::Default, Limit::Default), &DEFAULTS);
        assert_eq!((q.storage_limit_kib, q.messages_limit), (Some(10), Some(3)));
        let q = Quota::of(&row(0, 0, Limit::Max(20), Limit::Unlimited), &DEFAULTS);
        assert_eq!((q.storage_limit_kib, q.messages_limit), (Some(20), None));
        assert!(q.is_limited());
        let q = Quota::of(
            &row(0, 0, Limit::Default, Limit::Default),
            &QuotaSettings::default(),
        );
        assert!(!q.is_limited());
        assert_eq!(q.admit(u64::MAX, u64::MAX), Ok(()));
    }

    #[test]
    fn full_for_now_or_too_large_for_good() {
        let q = Quota::of(&row(9 * 1024, 1, Limit::Default, Limit::Default), &DEFAULTS);
        assert_eq!(q.storage_used_kib(), 9);
        assert_eq!(q.admit(1024, 1), Ok(()));
        let full = q.admit(1025, 1).unwrap_err();
        assert_eq!(
            full,
            QuotaRefusal::Full {
                address: "a@b.test".into(),
                resource: Resource::Storage
            }
        );
        assert!(!full.permanent());
        let big = q.admit(10 * 1024 + 1, 1).unwrap_err();
        assert!(big.permanent(), "{big}");
        assert_eq!(big.address(), "a@b.test");
        // Messages: two more fit, a third does not, four never will.
        assert_eq!(q.admit(0, 2), Ok(()));
        assert!(matches!(
            q.admit(0, 3),
            Err(QuotaRefusal::Full {
                resource: Resource::Message,
                ..
            })
        ));
        assert!(matches!(
            q.admit(0, 4),
            Err(QuotaRefusal::TooLarge {
                resource: Resource::Message,
                ..
            })
        ));
        // Usage rounds up to whole KiB.
        let q = Quota::of(&row(1, 0, Limit::Default, Limit::Default), &DEFAULTS);
        assert_eq!(q.storage_used_kib(), 1);
    }
}
