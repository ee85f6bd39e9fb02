//! Reading certificates and writing them, private keys readable by their owner only.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::{KEY_FILE_MODE, PkiError};

pub(super) fn read_to_string(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    })
}

pub(super) fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    fs::write(path, contents).map_err(|source| PkiError::Io {
        action: "cannot write",
        path: path.to_owned(),
        source,
    })
}

/// Writes a private key readable by its owner only. The mode is set before the key is
/// written, also when the file already existed with a wider mode.
pub(super) fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    let io_err = |source| PkiError::Io {
        action: "cannot write",
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(KEY_FILE_MODE)
        .open(path)
        .map_err(io_err)?;
    file.set_permissions(fs::Permissions::from_mode(KEY_FILE_MODE))
        .map_err(io_err)?;
    file.write_all(contents.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}
