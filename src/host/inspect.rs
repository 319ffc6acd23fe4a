//! The current state of a path under the root: type, owner, group, mode
//! and (for files) content, read without following symbolic links.
//!
//! A link where dkimctl manages a file or directory is an error, never
//! something to look through: applying through it would write wherever
//! the link points (a classic way to make a root process overwrite
//! `/etc/shadow`).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a managed path could not be inspected or read.
#[derive(Debug)]
pub enum InspectError {
    /// A system call failed.
    Io {
        /// The operation (`inspect`, `read`).
        op: &'static str,
        /// The real path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A symbolic link sits where a managed file or directory belongs.
    Symlink {
        /// The real path.
        path: PathBuf,
    },
    /// Something other than the wanted type sits at the path.
    WrongType {
        /// The real path.
        path: PathBuf,
        /// What is wanted.
        want: &'static str,
        /// What is there.
        found: &'static str,
    },
}

impl fmt::Display for InspectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InspectError::Io { op, path, .. } => write!(f, "failed to {op} {}", path.display()),
            InspectError::Symlink { path } => write!(
                f,
                "{} is a symbolic link; dkimctl does not follow links at paths it manages",
                path.display()
            ),
            InspectError::WrongType { path, want, found } => {
                write!(f, "{} is a {found}, not a {want}", path.display())
            }
        }
    }
}

impl std::error::Error for InspectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InspectError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What is on disk at a managed path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    /// Owning uid.
    pub uid: u32,
    /// Owning gid.
    pub gid: u32,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
}

/// The type an artifact needs at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A regular file.
    File,
    /// A directory.
    Directory,
}

fn type_name(ft: fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "symbolic link"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_file() {
        "regular file"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

/// The state of `real`, `None` when nothing is there. A symbolic link, or
/// a file type other than the wanted one, is an error naming the path.
pub fn inspect(real: &Path, want: Want) -> Result<Option<Current>, InspectError> {
    let meta = match fs::symlink_metadata(real) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(InspectError::Io {
                op: "inspect",
                path: real.to_path_buf(),
                source,
            });
        }
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Err(InspectError::Symlink {
            path: real.to_path_buf(),
        });
    }
    let ok = match want {
        Want::File => ft.is_file(),
        Want::Directory => ft.is_dir(),
    };
    if !ok {
        return Err(InspectError::WrongType {
            path: real.to_path_buf(),
            want: match want {
                Want::File => "regular file",
                Want::Directory => "directory",
            },
            found: type_name(ft),
        });
    }
    Ok(Some(Current {
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o7777,
    }))
}

/// Reads a regular file without following a symbolic link at its path
/// (`O_NOFOLLOW`), and without blocking on a fifo swapped in after
/// [`inspect`] (`O_NONBLOCK`, then a type check on the open file).
pub fn read_file(real: &Path) -> Result<Vec<u8>, InspectError> {
    let err = |source| InspectError::Io {
        op: "read",
        path: real.to_path_buf(),
        source,
    };
    let mut f: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(real)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                InspectError::Symlink {
                    path: real.to_path_buf(),
                }
            } else {
                err(e)
            }
        })?;
    let meta = f.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(InspectError::WrongType {
            path: real.to_path_buf(),
            want: "regular file",
            found: type_name(meta.file_type()),
        });
    }
    let mut buf = Vec::with_capacity(meta.len().min(1 << 20) as usize);
    f.read_to_end(&mut buf).map_err(err)?;
    Ok(buf)
}
