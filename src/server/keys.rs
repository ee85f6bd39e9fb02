//! The node's keys outside the database at start: the audit seal key and the
//! secrets key. On an empty database a missing key file is made (the first
//! node, or `mes init`); once the database holds an audit trail or sealed
//! secrets, a missing file means a node that was not given the first node's
//! keys, and making a new one would break the trail's verification and the
//! sealed secrets for every node: such a node refuses to start.

use std::path::{Path, PathBuf};

use crate::audit::seal::SealKey;
use crate::identity::secret_box::SecretBox;
use crate::keyfile::KeyError;
use crate::store::{Store, StoreError};

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    /// The file is missing while the database holds data made with the key.
    #[error(
        "{what} key file {path} is missing but the database already holds {holds}: \
         copy {path} from the first node (every node needs the same key) instead of \
         letting this node make a new one"
    )]
    Missing {
        /// Which key.
        what: &'static str,
        /// The configured file.
        path: PathBuf,
        /// What the database holds that needs it.
        holds: &'static str,
    },
    /// Reading or making the file failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The audit seal key at `path`; made only while the audit trail is empty.
pub async fn audit_key(path: &Path, store: &Store) -> Result<SealKey, NodeKeyError> {
    if !path.exists() && crate::audit::seal::head(store).await?.is_some() {
        return Err(NodeKeyError::Missing {
            what: "audit seal",
            path: path.to_path_buf(),
            holds: "an audit trail sealed with it",
        });
    }
    Ok(SealKey::load_or_create(path)?)
}

/// The secrets key at `path`; made only while no stored secret is sealed.
pub async fn secrets_key(path: &Path, store: &Store) -> Result<SecretBox, NodeKeyError> {
    if !path.exists()
        && store
            .totp_secrets()
            .await?
            .iter()
            .any(|(_, v)| SecretBox::is_sealed(v))
    {
        return Err(NodeKeyError::Missing {
            what: "secrets",
            path: path.to_path_buf(),
            holds: "secrets sealed with it",
        });
    }
    Ok(SecretBox::load_or_create(path)?)
}
