//! Loading the TSIG key that signs dynamic updates (`[dns]
//! tsig_key_file`), with the care a secret needs: the file itself is never
//! a symbolic link (`O_NOFOLLOW`), it must be a regular file readable by
//! its owner only (mode 0600 or 0400), and it is read into a [`Secret`]
//! with a size cap. The format is parsed by [`crate::formats::tsig`].
//!
//! Under the `dkimctl-rotate.service` unit, systemd hands the key over as
//! a credential (`LoadCredential=tsig.key:PATH`); when
//! `$CREDENTIALS_DIRECTORY/tsig.key` exists it is read instead of the
//! configured path, which the sandbox may hide.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::formats::tsig::{TsigKey, TsigParseError, parse};
use crate::host::Root;
use crate::keys::Secret;

/// The credential name the rotate unit gives the key.
pub const CREDENTIAL: &str = "tsig.key";

/// Largest key file read (a key file is a few hundred bytes).
const MAX_KEY_FILE: u64 = 64 << 10;

/// Why the TSIG key could not be used.
#[derive(Debug)]
pub enum TsigLoadError {
    /// The file could not be opened or read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a regular file (a link, a directory, ...).
    NotRegular(PathBuf),
    /// Group or others may read or write it.
    Mode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Larger than a key file can be.
    TooLarge(PathBuf),
    /// Not a key file.
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: TsigParseError,
    },
}

impl fmt::Display for TsigLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TsigLoadError::Read { path, .. } => {
                write!(f, "failed to read the TSIG key {}", path.display())
            }
            TsigLoadError::NotRegular(p) => write!(
                f,
                "the TSIG key {} is not a regular file (symbolic links are not followed)",
                p.display()
            ),
            TsigLoadError::Mode { path, mode } => write!(
                f,
                "the TSIG key {} has mode {mode:04o}; it must be readable by its owner only \
                 (chmod 0600 {})",
                path.display(),
                path.display()
            ),
            TsigLoadError::TooLarge(p) => {
                write!(
                    f,
                    "the TSIG key {} is too large to be a key file",
                    p.display()
                )
            }
            TsigLoadError::Parse { path, .. } => {
                write!(f, "the TSIG key {} cannot be used", path.display())
            }
        }
    }
}

impl std::error::Error for TsigLoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TsigLoadError::Read { source, .. } => Some(source),
            TsigLoadError::Parse { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Loads the key named by `[dns] tsig_key_file` (a host path under
/// `root`), or the systemd credential when there is one.
pub fn load(root: &Root, host_path: &Path) -> Result<TsigKey, TsigLoadError> {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let cred = Path::new(&dir).join(CREDENTIAL);
        if cred.is_file() {
            return load_file(&cred);
        }
    }
    load_file(&root.join(host_path))
}

/// Loads a key file at a real path.
pub fn load_file(path: &Path) -> Result<TsigKey, TsigLoadError> {
    let read_err = |source| TsigLoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                TsigLoadError::NotRegular(path.to_path_buf())
            } else {
                read_err(e)
            }
        })?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(TsigLoadError::NotRegular(path.to_path_buf()));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TsigLoadError::Mode {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(TsigLoadError::TooLarge(path.to_path_buf()));
    }
    // Room for the whole file up front, so the buffer never grows and
    // leaves an unzeroed copy behind.
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0) + 1);
    let read = file.take(MAX_KEY_FILE + 1).read_to_end(&mut buf);
    let text = Secret::new(buf);
    read.map_err(read_err)?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(TsigLoadError::TooLarge(path.to_path_buf()));
    }
    let text = text.expose_str().ok_or_else(|| TsigLoadError::Parse {
        path: path.to_path_buf(),
        source: TsigParseError::Syntax("the file is not text".into()),
    })?;
    parse(text).map_err(|source| TsigLoadError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const KEY: &str = "key \"dkimctl\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0IGJ5dGVzIGZvciB0aGUgdGVzdHMgb25seSE=\";\n};\n";

    #[test]
    fn mode_link_and_content_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tsig.key");
        std::fs::write(&path, KEY).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_file(&path).unwrap_err().to_string();
        assert!(
            e.contains("has mode 0644") && e.contains("chmod 0600"),
            "{e}"
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let k = load_file(&path).unwrap();
        assert_eq!(k.name, "dkimctl");

        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = load_file(&link).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");

        std::fs::write(&path, "key \"x\" { algorithm hmac-sha256; };").unwrap();
        let e = crate::report::chain(&load_file(&path).unwrap_err());
        assert!(e.contains("the key has no `secret`"), "{e}");
        let e = load_file(&dir.path().join("missing.key")).unwrap_err();
        assert!(
            e.to_string().starts_with("failed to read the TSIG key"),
            "{e}"
        );
    }
}
