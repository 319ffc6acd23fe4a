//! Reading host paths under a root without ever writing and without
//! leaving the root: [`Reader`].
//!
//! Symbolic links are resolved *inside* the root, component by component
//! (an absolute link target is a host path, so under `--root` it must not
//! lead out to the machine running the command); only regular files are
//! read (a fifo would block, a device never ends), with `O_NOFOLLOW` and a
//! size cap. audit, import and the checks of `check` read through it.

use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use super::Root;

/// Largest configuration file read (a table of a few thousand domains is
/// well below it).
const MAX_FILE: u64 = 8 << 20;

/// Most symbolic links followed while resolving one path (Linux's own
/// limit is 40).
const MAX_LINKS: usize = 40;

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Nothing is there.
    Missing,
    /// Something is there but cannot be read: the reason.
    Unreadable(String),
}

/// Reads host paths under a root, never writing and never leaving it.
#[derive(Debug, Clone)]
pub struct Reader {
    root: Root,
}

impl Reader {
    /// A reader for the tree under `root`.
    pub fn new(root: &Root) -> Reader {
        Reader { root: root.clone() }
    }

    /// The root.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The real path of a host path, symbolic links resolved inside the
    /// root, component by component.
    pub fn resolve(&self, host: &Path) -> Result<PathBuf, ReadError> {
        if self.root.is_live() {
            return Ok(self.root.join(host));
        }
        let mut pending: Vec<PathBuf> = host
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(PathBuf::from(p)),
                Component::ParentDir => Some(PathBuf::from("..")),
                _ => None,
            })
            .rev()
            .collect();
        let mut done = PathBuf::from("/");
        let mut links = 0;
        while let Some(part) = pending.pop() {
            if part == Path::new("..") {
                done.pop();
                continue;
            }
            let next = done.join(&part);
            let real = self.root.join(&next);
            match fs::symlink_metadata(&real) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(ReadError::Unreadable("too many symbolic links".into()));
                    }
                    let target =
                        fs::read_link(&real).map_err(|e| ReadError::Unreadable(e.to_string()))?;
                    if target.is_absolute() {
                        done = PathBuf::from("/");
                    }
                    let parts: Vec<PathBuf> = target
                        .components()
                        .filter_map(|c| match c {
                            Component::Normal(p) => Some(PathBuf::from(p)),
                            Component::ParentDir => Some(PathBuf::from("..")),
                            _ => None,
                        })
                        .collect();
                    pending.extend(parts.into_iter().rev());
                }
                Ok(_) => done = next,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // The rest cannot exist; join it as written.
                    let mut rest = next;
                    while let Some(p) = pending.pop() {
                        rest.push(p);
                    }
                    return Ok(self.root.join(&rest));
                }
                Err(e) => return Err(ReadError::Unreadable(e.to_string())),
            }
        }
        Ok(self.root.join(&done))
    }

    /// Metadata of a host path (links followed inside the root).
    pub fn metadata(&self, host: &Path) -> Result<Metadata, ReadError> {
        let real = self.resolve(host)?;
        fs::symlink_metadata(&real).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ReadError::Missing,
            _ => ReadError::Unreadable(e.to_string()),
        })
    }

    /// True when something is at the host path.
    pub fn exists(&self, host: &Path) -> bool {
        self.metadata(host).is_ok()
    }

    /// Reads a regular file as text (invalid UTF-8 replaced).
    pub fn read(&self, host: &Path) -> Result<String, ReadError> {
        let real = self.resolve(host)?;
        let meta = fs::symlink_metadata(&real).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ReadError::Missing,
            _ => ReadError::Unreadable(e.to_string()),
        })?;
        check_regular(&meta)?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&real)
            .map_err(|e| ReadError::Unreadable(e.to_string()))?;
        // The file may have been swapped since the check above.
        check_regular(
            &file
                .metadata()
                .map_err(|e| ReadError::Unreadable(e.to_string()))?,
        )?;
        let mut buf = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ReadError::Unreadable(e.to_string()))?;
        if buf.len() as u64 > MAX_FILE {
            return Err(ReadError::Unreadable(format!(
                "larger than {} MiB",
                MAX_FILE >> 20
            )));
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// The names in a directory (sorted), empty when it cannot be listed.
    pub fn list_dir(&self, host: &Path) -> Vec<String> {
        let Ok(real) = self.resolve(host) else {
            return Vec::new();
        };
        let mut names: Vec<String> = fs::read_dir(real)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn check_regular(meta: &Metadata) -> Result<(), ReadError> {
    let ft = meta.file_type();
    if ft.is_file() {
        Ok(())
    } else if ft.is_dir() {
        Err(ReadError::Unreadable("it is a directory".into()))
    } else if ft.is_fifo() {
        Err(ReadError::Unreadable(
            "it is a fifo, not a regular file".into(),
        ))
    } else if ft.is_socket() {
        Err(ReadError::Unreadable(
            "it is a socket, not a regular file".into(),
        ))
    } else if ft.is_block_device() || ft.is_char_device() {
        Err(ReadError::Unreadable(
            "it is a device, not a regular file".into(),
        ))
    } else {
        Err(ReadError::Unreadable("it is not a regular file".into()))
    }
}
