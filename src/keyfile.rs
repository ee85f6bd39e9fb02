//! Keys kept in files outside the database (64 hexadecimal digits, mode
//! 0600): what someone who can read or write the database must not have.
//! Used to seal the audit trail (`audit::seal`) and to encrypt the secrets
//! the database keeps (`identity::secret_box`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rand::RngCore;

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file does not hold 64 hexadecimal digits.
    #[error("key file {0}: not 64 hexadecimal digits")]
    Format(String),
}

/// Reads a 32-byte key from `path`.
pub fn load(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let bytes =
        hex::decode(text.trim()).map_err(|_| KeyError::Format(path.display().to_string()))?;
    bytes
        .try_into()
        .map_err(|_| KeyError::Format(path.display().to_string()))
}

/// Reads the key, or makes a new random one (file mode 0600, whatever the
/// umask) when there is no file yet.
pub fn load_or_create(path: &Path) -> Result<[u8; 32], KeyError> {
    if path.exists() {
        return load(path);
    }
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    writeln!(file, "{}", hex::encode(key)).map_err(io)?;
    file.sync_all().map_err(io)?;
    tracing::info!(path = %path.display(), "key file created");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/some.key");
        let made = load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&path).unwrap(), made);
        assert_eq!(load_or_create(&path).unwrap(), made);
        std::fs::write(&path, "short").unwrap();
        assert!(matches!(load(&path), Err(KeyError::Format(_))));
    }
}
