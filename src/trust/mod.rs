//! The trust space: which domains belong to it and which operator certificate
//! may send for each. Every inbound path asks [`TrustSpace`]; nothing else
//! decides whether a peer may send as a domain.

pub mod whitelist;

use std::collections::HashMap;

use crate::config::Config;
use crate::store::{Store, StoreError};

/// The whitelist in force: configured entries plus the last imported XML.
#[derive(Debug, Clone, Default)]
pub struct TrustSpace {
    domains: HashMap<String, Vec<String>>,
}

/// Why a peer may not send as a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The domain is not on the whitelist.
    #[error("domain {0} is not in the trust space")]
    NotWhitelisted(String),
    /// The domain is whitelisted for another operator.
    #[error("certificate {subject} is not the operator of {domain}")]
    WrongOperator {
        /// The peer certificate's subject.
        subject: String,
        /// The domain it tried to send as.
        domain: String,
    },
}

impl TrustSpace {
    /// Builds the trust space from (domain, operator DNs) pairs.
    pub fn from_entries(entries: impl IntoIterator<Item = (String, Vec<String>)>) -> TrustSpace {
        let mut domains: HashMap<String, Vec<String>> = HashMap::new();
        for (domain, dns) in entries {
            domains
                .entry(domain.to_ascii_lowercase())
                .or_default()
                .extend(dns);
        }
        TrustSpace { domains }
    }

    /// The configured entries plus the imported whitelist.
    pub async fn load(config: &Config, store: &Store) -> Result<TrustSpace, StoreError> {
        let mut entries = store.whitelist().await?;
        entries.extend(
            config
                .trust
                .whitelist
                .iter()
                .map(|w| (w.domain.clone(), vec![w.operator_dn.clone()])),
        );
        Ok(TrustSpace::from_entries(entries))
    }

    /// True if `domain` is in the trust space.
    pub fn is_whitelisted(&self, domain: &str) -> bool {
        self.domains.contains_key(&domain.to_ascii_lowercase())
    }

    /// True if `subject` is the certificate of some operator of the trust space.
    pub fn is_operator(&self, subject: &str) -> bool {
        self.domains
            .values()
            .flatten()
            .any(|dn| whitelist::dn_matches(dn, subject))
    }

    /// May the operator whose certificate is `subject` send as `domain`?
    pub fn operator_may_send(&self, subject: &str, domain: &str) -> Result<(), TrustError> {
        let Some(dns) = self.domains.get(&domain.to_ascii_lowercase()) else {
            return Err(TrustError::NotWhitelisted(domain.to_string()));
        };
        if dns.iter().any(|dn| whitelist::dn_matches(dn, subject)) {
            Ok(())
        } else {
            Err(TrustError::WrongOperator {
                subject: subject.to_string(),
                domain: domain.to_string(),
            })
        }
    }

    /// Number of whitelisted domains (for logs).
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// True when no domain is whitelisted.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_rules() {
        let t = TrustSpace::from_entries([
            (
                "a.test".to_string(),
                vec!["CN=mx.a, O=Op A, C=FR".to_string()],
            ),
            (
                "b.test".to_string(),
                vec!["CN=mx.b, O=Op B, C=FR".to_string()],
            ),
        ]);
        assert!(
            t.operator_may_send("CN=mx.a, O=Op A, C=FR", "A.test")
                .is_ok()
        );
        assert_eq!(
            t.operator_may_send("CN=mx.a, O=Op A, C=FR", "b.test"),
            Err(TrustError::WrongOperator {
                subject: "CN=mx.a, O=Op A, C=FR".into(),
                domain: "b.test".into()
            })
        );
        assert_eq!(
            t.operator_may_send("CN=mx.a, O=Op A, C=FR", "c.test"),
            Err(TrustError::NotWhitelisted("c.test".into()))
        );
        assert!(t.is_operator("CN=mx.b, O=Op B, C=FR"));
        assert!(!t.is_operator("CN=evil"));
    }
}
