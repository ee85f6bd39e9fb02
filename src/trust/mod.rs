//! The trust space: which domains belong to it and which operator certificate
//! may send for each. Every inbound path asks [`TrustSpace`]; nothing else
//! decides whether a peer may send as a domain.

pub mod refresh;
pub mod signature;
pub mod whitelist;

use std::collections::HashMap;

use crate::config::Config;
use crate::pki::dn::DistinguishedName;
use crate::store::{Store, StoreError};

/// The whitelist in force: configured entries plus the last imported XML.
///
/// Operator DNs are compared under the one DN rule ([`crate::pki::dn`]): each
/// listed DN is parsed once, here, and a certificate subject is compared by
/// canonical key. A listed DN that cannot be parsed matches nothing.
#[derive(Debug, Clone, Default)]
pub struct TrustSpace {
    domains: HashMap<String, Vec<OperatorDn>>,
}

/// One `DNCertificatOperateur`: its canonical key, when it parses.
#[derive(Debug, Clone)]
struct OperatorDn {
    key: Option<String>,
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
        let mut domains: HashMap<String, Vec<OperatorDn>> = HashMap::new();
        for (domain, dns) in entries {
            let keys = dns.iter().map(|dn| {
                let key = crate::pki::dn::key_of(dn);
                if key.is_none() {
                    tracing::warn!(%domain, dn = %dn, "whitelisted operator DN cannot be parsed; it matches no certificate");
                }
                OperatorDn { key }
            });
            domains
                .entry(domain.to_ascii_lowercase())
                .or_default()
                .extend(keys);
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

    /// True if `subject` (a DN in any usual textual form, e.g. [`crate::tls::TlsInfo::peer_subject`])
    /// is the certificate of some operator of the trust space.
    pub fn is_operator(&self, subject: &str) -> bool {
        DistinguishedName::parse(subject).is_ok_and(|dn| self.is_operator_dn(&dn))
    }

    /// True if the certificate subject `subject` is that of some operator of the trust space.
    pub fn is_operator_dn(&self, subject: &DistinguishedName) -> bool {
        self.domains
            .values()
            .flatten()
            .any(|op| op.key.as_deref() == Some(subject.key()))
    }

    /// May the operator whose certificate is `subject` (a DN in any usual
    /// textual form) send as `domain`? A subject that cannot be parsed is no
    /// operator's.
    pub fn operator_may_send(&self, subject: &str, domain: &str) -> Result<(), TrustError> {
        match DistinguishedName::parse(subject) {
            Ok(dn) => self.operator_may_send_dn(&dn, domain),
            Err(_) => {
                self.operator_keys(domain)?;
                Err(TrustError::WrongOperator {
                    subject: subject.to_string(),
                    domain: domain.to_string(),
                })
            }
        }
    }

    /// May the operator whose certificate subject is `subject` send as, or
    /// receive for, `domain`? The same check serves inbound (MX: the peer's
    /// client certificate) and outbound (relay: the destination server's certificate).
    pub fn operator_may_send_dn(
        &self,
        subject: &DistinguishedName,
        domain: &str,
    ) -> Result<(), TrustError> {
        if self
            .operator_keys(domain)?
            .iter()
            .any(|op| op.key.as_deref() == Some(subject.key()))
        {
            Ok(())
        } else {
            Err(TrustError::WrongOperator {
                subject: subject.to_string(),
                domain: domain.to_string(),
            })
        }
    }

    fn operator_keys(&self, domain: &str) -> Result<&[OperatorDn], TrustError> {
        self.domains
            .get(&domain.to_ascii_lowercase())
            .map(Vec::as_slice)
            .ok_or_else(|| TrustError::NotWhitelisted(domain.to_string()))
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
        assert!(t.is_operator("C=FR,O=Op B,CN=mx.b"));
        assert!(!t.is_operator("CN=evil"));
        assert!(!t.is_operator(""));
        // A CN that holds ", O=Op A" is not Op A's certificate.
        assert!(!t.is_operator(r"CN=mx.a\, O=Op A\, C=FR"));
        assert!(
            t.operator_may_send(r"CN=mx.a\, O=Op A, C=FR", "a.test")
                .is_err()
        );
        let dn = DistinguishedName::parse("/C=FR/O=op a/CN=MX.A").unwrap();
        assert!(t.operator_may_send_dn(&dn, "a.test").is_ok());
        assert!(matches!(
            t.operator_may_send_dn(&dn, "b.test"),
            Err(TrustError::WrongOperator { .. })
        ));
    }
}
