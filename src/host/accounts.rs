//! Users and groups under a root: `ROOT/etc/passwd` and `ROOT/etc/group`
//! read into [`Accounts`] (parsed by [`crate::formats::passwd`]).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use crate::formats::passwd::{Accounts, Group, User};

use super::Root;

/// An account file exists but could not be read.
#[derive(Debug)]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    pub source: io::Error,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to read {}", self.path.display())
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Reads `ROOT/etc/passwd` and `ROOT/etc/group`; a missing file holds no
/// accounts. Malformed lines are skipped.
pub fn load(root: &Root) -> Result<Accounts, LoadError> {
    let passwd = read_optional(&root.join(Path::new("/etc/passwd")))?.unwrap_or_default();
    let group = read_optional(&root.join(Path::new("/etc/group")))?.unwrap_or_default();
    Ok(Accounts::parse(&passwd, &group))
}

/// A file's bytes, `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, LoadError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LoadError {
            path: path.to_path_buf(),
            source,
        }),
    }
}
