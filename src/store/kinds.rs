//! The kinds of accounts and domains as stored (names in the rows and on the
//! command line); `identity` re-exports them.

use std::fmt;
use std::str::FromStr;

use super::StoreError;

/// The four kinds of mailbox of the trust space (the directory's "type de BAL").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// A health professional (PER): IMAP and submission.
    Professional,
    /// An organisation's mailbox (ORG), e.g. a department.
    Organisation,
    /// An application's mailbox (APP), e.g. a hospital information system.
    Application,
    /// A patient: webmail and API only, never IMAP or submission.
    Patient,
}

impl AccountKind {
    /// The stable name used in the database and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Professional => "professional",
            AccountKind::Organisation => "organisation",
            AccountKind::Application => "application",
            AccountKind::Patient => "patient",
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown account kind name.
#[derive(Debug, thiserror::Error)]
#[error("unknown account kind `{0}` (professional, organisation, application or patient)")]
pub struct UnknownKind(pub String);

impl FromStr for AccountKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "professional" => Ok(AccountKind::Professional),
            "organisation" => Ok(AccountKind::Organisation),
            "application" => Ok(AccountKind::Application),
            "patient" => Ok(AccountKind::Patient),
            other => Err(UnknownKind(other.to_string())),
        }
    }
}

/// The kind of a mail domain we host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DomainKind {
    /// Professionals, organisations and applications.
    Professional,
    /// Patients (addresses are INS matricules).
    Patient,
}

impl DomainKind {
    /// The stable name used in the database and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainKind::Professional => "professional",
            DomainKind::Patient => "patient",
        }
    }
}

impl FromStr for DomainKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "professional" => Ok(DomainKind::Professional),
            "patient" => Ok(DomainKind::Patient),
            other => Err(UnknownKind(other.to_string())),
        }
    }
}

/// A kind read from a row; an unknown name is a corrupt row.
pub(super) fn parse<K: FromStr>(name: String) -> Result<K, StoreError> {
    name.parse().map_err(|_| StoreError::Corrupt(name))
}
