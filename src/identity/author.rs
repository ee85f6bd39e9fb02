//! Who wrote a message: the one rule every path that accepts mail calls.
//!
//! The author of a message is established by authentication, never by a
//! header alone:
//! - submission: the logged-in account, or an organisation mailbox it holds a
//!   delegation for (`[smtp.delegations]`);
//! - MX with a client certificate mapped to an account (a hospital system):
//!   that account, or an address it holds a delegation for;
//! - MX with another operator's certificate: an address of a domain the
//!   whitelist gives to that certificate, never one of our own domains.
//!
//! The envelope sender ([`AuthorRule::check_envelope`], at MAIL FROM) and the
//! `From:`/`Sender:` header fields ([`AuthorRule::establish`], at the end of
//! DATA) must both pass the same test. A message has exactly one `From:`
//! address. The null sender carries only reports (DSN, MDN), which never
//! join a patient thread. A patient is never the author of mail arriving over
//! SMTP: patients write from the patient space only.
//!
//! The name and profession a patient sees come from our accounts for a local
//! author, or from the display name (marked as another operator's) for a
//! remote one; when a system or another account writes for the author, the
//! patient sees it too ("via …").

use std::collections::BTreeMap;
use std::fmt;

use crate::address::Address;
use crate::identity::{AccountKind, DomainKind};
use crate::mime::facts::MessageFacts;
use crate::store::accounts::Account;
use crate::store::{Store, StoreError};
use crate::trust::{TrustError, TrustSpace};

/// What authentication proved about the SMTP peer before any address was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer<'a> {
    /// A logged-in account (submission: password or SASL EXTERNAL).
    Account(&'a str),
    /// A verified client certificate on the MX listener, by its subject DN.
    Certificate(&'a str),
    /// Nothing proven (an MX peer without a client certificate).
    Anonymous,
}

/// A peer as the logs name it: the account or the certificate, nothing else.
impl fmt::Display for Peer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Account(a) => write!(f, "account {a}"),
            Peer::Certificate(s) => write!(f, "certificate {s}"),
            Peer::Anonymous => f.write_str("unauthenticated"),
        }
    }
}

/// How the author was proven, for the logs and the trace of decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// The logged-in account.
    Account {
        /// The account's address.
        account: String,
    },
    /// A client certificate mapped to an account (a hospital system).
    MappedCertificate {
        /// The account the certificate is mapped to.
        account: String,
    },
    /// Another operator's certificate, whitelisted for the author's domain.
    Operator {
        /// The certificate's subject DN.
        subject: String,
    },
}

impl fmt::Display for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proof::Account { account } => write!(f, "login of {account}"),
            Proof::MappedCertificate { account } => {
                write!(f, "client certificate mapped to {account}")
            }
            Proof::Operator { subject } => write!(f, "operator certificate {subject}"),
        }
    }
}

/// The proven author of a message, as the patient and the logs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Normalised address: the `From:` address, checked against the proof.
    pub address: String,
    /// The name shown to the patient (our account's, else the display name
    /// of another operator's professional, else the address).
    pub name: String,
    /// Profession, for our own professionals.
    pub profession: Option<String>,
    /// Who wrote on the author's behalf (a hospital system or another
    /// account holding a delegation), by name.
    pub via: Option<String>,
    /// The author belongs to another operator of the trust space: the name
    /// comes from the message, vouched for by that operator only.
    pub other_operator: bool,
    /// The author's establishment, for our own accounts.
    pub establishment: Option<String>,
    /// The author's account kind, for our own accounts.
    pub kind: Option<AccountKind>,
    /// How the author was proven.
    pub proof: Proof,
}

/// Who wrote a message that passed [`AuthorRule::establish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authored {
    /// A person or system, proven.
    Author(Box<Author>),
    /// A delivery or disposition report under the null sender: nobody's
    /// message, never part of a patient thread.
    Report,
}

impl Authored {
    /// The author, unless this is a report.
    pub fn author(&self) -> Option<&Author> {
        match self {
            Authored::Author(a) => Some(a),
            Authored::Report => None,
        }
    }
}

/// Why a sender or a message was refused. Each text names the real reason;
/// none names a patient.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// MX without a client certificate.
    #[error("A client certificate of the trust space is required")]
    NoCertificate,
    /// The null sender on submission.
    #[error("The null sender is not accepted on submission")]
    NullOnSubmission,
    /// The null sender from a certificate that is neither an operator's nor mapped.
    #[error("Certificate is not an operator of the trust space")]
    NotAnOperator,
    /// The null sender with something else than a report.
    #[error("The null sender may carry only delivery or disposition reports")]
    NullSenderNotReport,
    /// A logged-in account using an address it does not hold.
    #[error("{address} is not an address of {account}")]
    NotOwned {
        /// The account logged in.
        account: String,
        /// The address it tried to use.
        address: String,
    },
    /// A mapped certificate using an address its account does not hold.
    #[error("This certificate is mapped to {account}, which may not send as {address}")]
    NotMapped {
        /// The account the certificate is mapped to.
        account: String,
        /// The address it tried to use.
        address: String,
    },
    /// An address of a domain hosted here, arriving from another operator.
    #[error("{address} is hosted here: mail from it never arrives from another operator")]
    OwnDomain {
        /// The address.
        address: String,
    },
    /// A patient's address as a sender.
    #[error("Patient messages are sent from the patient space only")]
    Patient,
    /// The domain is outside the trust space.
    #[error("Sender domain {0} is not in the trust space")]
    NotWhitelisted(String),
    /// The domain belongs to another operator.
    #[error("Your certificate is not the operator of {0}")]
    WrongOperator(String),
    /// No `From:`, several, or one with several addresses.
    #[error("A message must have exactly one From header with one address")]
    From,
    /// Several `Sender:` fields or addresses.
    #[error("A message may have at most one Sender header with one address")]
    Sender,
    /// The store could not answer (a temporary failure, not a refusal).
    #[error("temporary failure")]
    Unavailable,
}

impl Refusal {
    /// True when the sender should try again later (451), not give up.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Refusal::Unavailable)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "author check: store lookup failed");
        Refusal::Unavailable
    }
}

/// Organisation mailbox -> accounts allowed to send as it (`[smtp.delegations]`).
pub type Delegations = BTreeMap<String, Vec<String>>;

/// The author rule with what it reads: the accounts, the whitelist in force
/// and the delegations.
#[derive(Debug, Clone, Copy)]
pub struct AuthorRule<'a> {
    /// Accounts and hosted domains.
    pub store: &'a Store,
    /// The whitelist in force.
    pub trust: &'a TrustSpace,
    /// Delegations of organisation mailboxes.
    pub delegations: &'a Delegations,
}

/// What one sender address was found to be. The check of the envelope
/// sender at MAIL FROM is kept with the transaction, so that a `From:` with the
/// same address is not checked twice in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderCheck {
    /// The address checked, normalised.
    address: String,
    proof: Proof,
    /// The account that proved it, when it is not the address's own.
    via_account: Option<String>,
}

impl AuthorRule<'_> {
    /// May the account `account` use `address` (its own, or a delegated mailbox)?
    pub fn may_send_as(&self, account: &str, address: &str) -> bool {
        account.eq_ignore_ascii_case(address)
            || self
                .delegations
                .get(address)
                .is_some_and(|names| names.iter().any(|n| n.eq_ignore_ascii_case(account)))
    }

    /// The envelope sender check, at MAIL FROM; what it proved, unless the
    /// sender is null.
    pub async fn check_envelope(
        &self,
        peer: Peer<'_>,
        mail_from: &str,
    ) -> Result<Option<SenderCheck>, Refusal> {
        if mail_from.is_empty() {
            return match peer {
                Peer::Account(_) => Err(Refusal::NullOnSubmission),
                Peer::Anonymous => Err(Refusal::NoCertificate),
                Peer::Certificate(subject) => {
                    // Bounces and MDNs: any operator of the trust space, or a mapped system.
                    if self.trust.is_operator(subject)
                        || !self
                            .store
                            .accounts_by_cert_subject(subject)
                            .await?
                            .is_empty()
                    {
                        Ok(None)
                    } else {
                        Err(Refusal::NotAnOperator)
                    }
                }
            };
        }
        self.check_address(peer, mail_from).await.map(Some)
    }

    /// One sender address (envelope, `From:` or `Sender:`) against what the peer proved.
    async fn check_address(&self, peer: Peer<'_>, address: &str) -> Result<SenderCheck, Refusal> {
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        // One round trip for the domain's kind and whether the certificate is
        // mapped to systems; the mapped accounts themselves only when it is.
        let cert_key = match peer {
            Peer::Certificate(subject) => crate::pki::dn::key_of(subject),
            _ => None,
        };
        let (hosted, mapped_any) = self.store.sender_facts(domain, cert_key.as_deref()).await?;
        if hosted == Some(DomainKind::Patient) {
            return Err(Refusal::Patient);
        }
        match peer {
            Peer::Anonymous => Err(Refusal::NoCertificate),
            Peer::Account(account) => {
                if self.may_send_as(account, address) {
                    Ok(SenderCheck {
                        address: address.to_string(),
                        proof: Proof::Account {
                            account: account.to_string(),
                        },
                        via_account: (!account.eq_ignore_ascii_case(address))
                            .then(|| account.to_string()),
                    })
                } else {
                    Err(Refusal::NotOwned {
                        account: account.to_string(),
                        address: address.to_string(),
                    })
                }
            }
            Peer::Certificate(subject) => {
                let mapped = if mapped_any {
                    self.store.accounts_by_cert_subject(subject).await?
                } else {
                    Vec::new()
                };
                if let Some(system) = mapped
                    .iter()
                    .find(|a| self.may_send_as(&a.address, address))
                {
                    return Ok(SenderCheck {
                        address: address.to_string(),
                        proof: Proof::MappedCertificate {
                            account: system.address.clone(),
                        },
                        via_account: (!system.address.eq_ignore_ascii_case(address))
                            .then(|| system.address.clone()),
                    });
                }
                let refusal = match self.trust.operator_may_send(subject, domain) {
                    _ if hosted.is_some() => Refusal::OwnDomain {
                        address: address.to_string(),
                    },
                    Ok(()) => {
                        return Ok(SenderCheck {
                            address: address.to_string(),
                            proof: Proof::Operator {
                                subject: subject.to_string(),
                            },
                            via_account: None,
                        });
                    }
                    Err(TrustError::NotWhitelisted(d)) => Refusal::NotWhitelisted(d),
                    Err(TrustError::WrongOperator { domain, .. }) => Refusal::WrongOperator(domain),
                };
                // A mapped system gets the reason that concerns it.
                match mapped.first() {
                    Some(system) => Err(Refusal::NotMapped {
                        account: system.address.clone(),
                        address: address.to_string(),
                    }),
                    None => Err(refusal),
                }
            }
        }
    }

    /// The author of a message, at the end of DATA: the envelope sender was
    /// checked at MAIL FROM (`envelope`: what that check proved); here the
    /// `From:` (exactly one address) and any `Sender:` must pass the same
    /// test, and the author is looked up.
    pub async fn establish(
        &self,
        peer: Peer<'_>,
        mail_from: &str,
        envelope: Option<&SenderCheck>,
        facts: &MessageFacts,
    ) -> Result<Authored, Refusal> {
        if mail_from.is_empty() {
            return if facts.report {
                Ok(Authored::Report)
            } else {
                Err(Refusal::NullSenderNotReport)
            };
        }
        let [from] = facts.from.as_slice() else {
            return Err(Refusal::From);
        };
        if facts.from_fields != 1 {
            return Err(Refusal::From);
        }
        let from = Address::parse(from).map_err(|_| Refusal::From)?.to_string();
        let checked = match envelope {
            Some(check) if check.address == from => check.clone(),
            _ => self.check_address(peer, &from).await?,
        };
        match facts.sender.as_slice() {
            [] if facts.sender_fields == 0 => {}
            [sender] if facts.sender_fields == 1 => {
                let sender = Address::parse(sender).map_err(|_| Refusal::Sender)?;
                self.check_address(peer, &sender.to_string()).await?;
            }
            _ => return Err(Refusal::Sender),
        }
        let other_operator = matches!(checked.proof, Proof::Operator { .. });
        // Another operator's proof means a domain we do not host: no account here.
        let account = if other_operator {
            None
        } else {
            self.store.account_by_address(&from).await?
        };
        if account
            .as_ref()
            .is_some_and(|a| a.kind == AccountKind::Patient)
        {
            return Err(Refusal::Patient);
        }
        let via = match &checked.via_account {
            Some(v) => Some(
                self.store
                    .account_by_address(v)
                    .await?
                    .map_or_else(|| v.clone(), |a| a.shown_name()),
            ),
            None => None,
        };
        Ok(Authored::Author(Box::new(match account {
            Some(Account {
                display_name,
                profession,
                establishment,
                kind,
                ..
            }) if !other_operator => Author {
                name: if display_name.is_empty() {
                    from.clone()
                } else {
                    display_name
                },
                address: from,
                profession,
                via,
                other_operator,
                establishment,
                kind: Some(kind),
                proof: checked.proof,
            },
            _ => Author {
                name: facts.from_name.clone().unwrap_or_else(|| from.clone()),
                address: from,
                profession: None,
                via,
                other_operator,
                establishment: None,
                kind: None,
                proof: checked.proof,
            },
        })))
    }
}
