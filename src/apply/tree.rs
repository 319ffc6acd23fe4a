//! The file-system primitives of the one writer: every write, rename,
//! removal, chown and chmod dkimctl makes goes through a [`Dir`], a
//! directory opened below the root without following a link that
//! someone else could have planted.
//!
//! # Why descriptors, not paths
//!
//! root writes below directories other users own: the milter's user owns
//! its key directory and its socket directory, and may be compromised.
//! A path-based `chown(".../keys/example.com/s1.private")` follows
//! whatever that user put there a moment before — a symbolic link to
//! `/etc/shadow`, or a link in place of `example.com/` itself. So every
//! path is walked component by component from an open directory with
//! `openat(O_DIRECTORY|O_NOFOLLOW)`, and every change is made through a
//! descriptor (`fchown`, `fchmod`) or relative to a directory descriptor
//! (`renameat`, `linkat`, `unlinkat`, `mkdirat`) with `O_NOFOLLOW`/
//! `O_EXCL`, never through a name that could be swapped.
//!
//! # Which links are followed
//!
//! A symbolic link among the parents is followed only when the directory
//! holding it is trusted — owned by root (or by the user running dkimctl)
//! and writable by nobody else — so it was put there by root or by the
//! image's maker, not by the service user. It is then resolved *inside*
//! the root, as a chroot would: an image built with `--root` whose
//! `/etc/systemd` links to `/usr/lib/systemd` stays in the image instead
//! of reaching out to the host. A link in a directory someone else can
//! write is refused, and so is a link at the final name of anything
//! written (files are replaced, never written through).

use std::collections::hash_map::RandomState;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Stat, Uid};

use crate::host::Root;

/// Most symbolic links followed while walking one path (Linux's own
/// limit is 40).
const MAX_LINKS: usize = 40;

/// How many temporary names are tried before giving up.
const NAME_ATTEMPTS: usize = 64;

/// Why a file-system step failed. Each names the path and the operation;
/// the `io::Error`, where there is one, is the `source()`.
#[derive(Debug)]
pub enum FsError {
    /// A system call failed.
    Io {
        /// What was being done, with its path ("rename X to Y").
        op: String,
        /// The cause.
        source: io::Error,
    },
    /// A symbolic link in a directory that someone other than root can
    /// write: following it would let that user redirect root's write.
    UntrustedLink {
        /// The link (real path).
        path: PathBuf,
        /// The uid owning the directory that holds it.
        owner: u32,
    },
    /// Something other than a directory where a directory must be, or a
    /// symbolic link or special file where a file is managed.
    WrongType {
        /// The real path.
        path: PathBuf,
        /// What is there.
        found: &'static str,
        /// What is needed.
        want: &'static str,
    },
    /// More symbolic links on the way than Linux itself follows (40).
    TooManyLinks {
        /// The path being resolved.
        path: PathBuf,
    },
    /// A key file with more than one name: changing its owner or mode
    /// would change the file behind the other name too.
    HardLinked {
        /// The real path.
        path: PathBuf,
        /// Its link count.
        links: u64,
    },
    /// The name exists and was not to be replaced.
    Exists {
        /// The real path.
        path: PathBuf,
    },
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::Io { op, .. } => write!(f, "failed to {op}"),
            FsError::UntrustedLink { path, owner } => write!(
                f,
                "refusing to follow the symbolic link {}: its directory can be written by uid {owner}, not only root",
                path.display()
            ),
            FsError::WrongType { path, found, want } => {
                write!(f, "{} is a {found}, not a {want}", path.display())
            }
            FsError::TooManyLinks { path } => {
                write!(f, "too many symbolic links resolving {}", path.display())
            }
            FsError::HardLinked { path, links } => write!(
                f,
                "refusing to change {}: it has {links} hard links, so another name shares the file",
                path.display()
            ),
            FsError::Exists { path } => write!(f, "{} already exists", path.display()),
        }
    }
}

impl std::error::Error for FsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FsError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(op: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> FsError {
    let op = op.into();
    move |e| FsError::Io {
        op,
        source: e.into(),
    }
}

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice | FileType::BlockDevice => "device",
        FileType::Unknown => "special file",
    }
}

/// Owner and mode of a directory dkimctl creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirSpec {
    /// Permission bits.
    pub mode: u32,
    /// Owner, `None` to keep the creator's.
    pub uid: Option<u32>,
    /// Group, `None` to keep the creator's.
    pub gid: Option<u32>,
}

impl DirSpec {
    /// A directory like `mkdir -p` makes for parents: 0755, our owner.
    pub const PARENT: DirSpec = DirSpec {
        mode: 0o755,
        uid: None,
        gid: None,
    };
}

/// A directory below the root, open.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// Its real path (for messages only: never used to reach it).
    real: PathBuf,
}

/// What [`Dir::open`] created on the way, as host paths.
pub type Created = Vec<PathBuf>;

impl Dir {
    /// Opens the host directory `host` below `root`. Missing directories
    /// are created (each born 0700, then given `create`'s owner and mode)
    /// when `create` is given, and listed in the result; otherwise a
    /// missing directory is an error.
    pub fn open(
        root: &Root,
        host: &Path,
        create: Option<&dyn Fn(&Path) -> DirSpec>,
    ) -> Result<(Dir, Created), FsError> {
        let root_fd = rustix::fs::openat(
            rustix::fs::CWD,
            root.dir(),
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err(format!("open {}", root.dir().display())))?;
        let mut stack: Vec<(Dir, PathBuf)> = vec![(
            Dir {
                fd: root_fd,
                real: root.dir().to_path_buf(),
            },
            PathBuf::from("/"),
        )];
        let mut pending: Vec<OsString> = components(host);
        pending.reverse();
        let mut created = Vec::new();
        let mut links = 0;
        let euid = nix::unistd::geteuid().as_raw();
        while let Some(name) = pending.pop() {
            if name == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let (cur, cur_host) = stack.last().expect("the root stays on the stack");
            let child_real = cur.real.join(&name);
            let child_host = cur_host.join(&name);
            let st = match rustix::fs::statat(&cur.fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            {
                Ok(st) => Some(st),
                Err(rustix::io::Errno::NOENT) => None,
                Err(e) => return Err(io_err(format!("inspect {}", child_real.display()))(e)),
            };
            match st.map(|s| FileType::from_raw_mode(s.st_mode)) {
                Some(FileType::Directory) => {
                    let fd = open_dir_at(&cur.fd, &name, &child_real)?;
                    stack.push((
                        Dir {
                            fd,
                            real: child_real,
                        },
                        child_host,
                    ));
                }
                Some(FileType::Symlink) => {
                    let holder = rustix::fs::fstat(&cur.fd)
                        .map_err(io_err(format!("inspect {}", cur.real.display())))?;
                    if !trusted(&holder, euid) {
                        return Err(FsError::UntrustedLink {
                            path: child_real,
                            owner: holder.st_uid,
                        });
                    }
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(FsError::TooManyLinks {
                            path: root.join(host),
                        });
                    }
                    let target = rustix::fs::readlinkat(&cur.fd, name.as_os_str(), Vec::new())
                        .map_err(io_err(format!("read the link {}", child_real.display())))?;
                    let target = Path::new(OsStr::from_bytes(target.as_bytes()));
                    if target.is_absolute() {
                        stack.truncate(1);
                    }
                    let mut parts = components(target);
                    parts.reverse();
                    pending.extend(parts);
                }
                Some(other) => {
                    return Err(FsError::WrongType {
                        path: child_real,
                        found: kind_name(other),
                        want: "directory",
                    });
                }
                None => {
                    let Some(spec_of) = create else {
                        return Err(FsError::Io {
                            op: format!("open {}", child_real.display()),
                            source: io::Error::from(io::ErrorKind::NotFound),
                        });
                    };
                    let spec = spec_of(&child_host);
                    cur.make_dir(&name, spec)?;
                    let fd = open_dir_at(&cur.fd, &name, &child_real)?;
                    created.push(child_host.clone());
                    stack.push((
                        Dir {
                            fd,
                            real: child_real,
                        },
                        child_host,
                    ));
                }
            }
        }
        let (dir, _) = stack.pop().expect("the root stays on the stack");
        Ok((dir, created))
    }

    /// Opens the directory holding `host` (see [`Dir::open`]) and returns
    /// it with the final name.
    pub fn parent_of(
        root: &Root,
        host: &Path,
        create: Option<&dyn Fn(&Path) -> DirSpec>,
    ) -> Result<(Dir, OsString, Created), FsError> {
        let name = host
            .file_name()
            .ok_or_else(|| FsError::Io {
                op: format!("write {}: not a file path", host.display()),
                source: io::Error::from(io::ErrorKind::InvalidInput),
            })?
            .to_os_string();
        let parent = host.parent().unwrap_or(Path::new("/"));
        let (dir, created) = Dir::open(root, parent, create)?;
        Ok((dir, name, created))
    }

    /// The real path of a name in this directory (for messages).
    pub fn real(&self, name: &OsStr) -> PathBuf {
        self.real.join(name)
    }

    /// The type, owner and mode of a name, without following a link;
    /// `None` when nothing is there.
    pub fn stat(&self, name: &OsStr) -> Result<Option<Stat>, FsError> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(io_err(format!("inspect {}", self.real(name).display()))(e)),
        }
    }

    /// Reads a regular file (not through a link, not blocking on a fifo),
    /// `None` when nothing is there.
    pub fn read(&self, name: &OsStr) -> Result<Option<(Vec<u8>, Stat)>, FsError> {
        let real = self.real(name);
        let fd = match rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP) => {
                return Err(FsError::WrongType {
                    path: real,
                    found: "symbolic link",
                    want: "regular file",
                });
            }
            Err(e) => return Err(io_err(format!("open {}", real.display()))(e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(io_err(format!("inspect {}", real.display())))?;
        let t = FileType::from_raw_mode(st.st_mode);
        if t != FileType::RegularFile {
            return Err(FsError::WrongType {
                path: real,
                found: kind_name(t),
                want: "regular file",
            });
        }
        let mut buf = Vec::new();
        File::from(fd)
            .read_to_end(&mut buf)
            .map_err(|source| FsError::Io {
                op: format!("read {}", real.display()),
                source,
            })?;
        Ok(Some((buf, st)))
    }

    /// Creates a directory with its final owner and mode: born 0700 (the
    /// umask can only narrow that), chowned, then given its mode, so it is
    /// never more open than wanted. An existing directory is given the
    /// owner and mode too.
    pub fn make_dir(&self, name: &OsStr, spec: DirSpec) -> Result<(), FsError> {
        let real = self.real(name);
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(io_err(format!("create directory {}", real.display()))(e)),
        }
        let fd = open_dir_at(&self.fd, name, &real)?;
        set_owner_mode(&fd, &real, spec.uid, spec.gid, Some(spec.mode))?;
        self.sync()
    }

    /// Replaces (or creates) a file atomically: readers see the old
    /// content or the new, never a mix, an empty file, or the new content
    /// under the wrong owner or mode.
    ///
    /// 1. A temporary file in this directory, `.NAME.dkimctl-XXXXXX`,
    ///    `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600.
    /// 2. `fchown` and `fchmod` to the final owner and mode, before any
    ///    byte is written (and chown first: it clears set-id bits).
    /// 3. Write, `fsync` (without it the rename can reach the disk before
    ///    the data: the classic zero-length file after a crash).
    /// 4. `renameat` over the name (a link there is replaced, not
    ///    followed); `fsync` the directory so the new name is durable.
    ///
    /// On error the temporary file is removed and the old file stays.
    pub fn write_atomic(
        &self,
        name: &OsStr,
        bytes: &[u8],
        uid: Option<u32>,
        gid: Option<u32>,
        mode: u32,
    ) -> Result<(), FsError> {
        let (tmp, fd) = self.create_temp(name)?;
        let result = self.fill(&tmp, fd, bytes, uid, gid, mode).and_then(|()| {
            rustix::fs::renameat(&self.fd, tmp.as_os_str(), &self.fd, name).map_err(io_err(
                format!(
                    "rename {} to {}",
                    self.real(&tmp).display(),
                    self.real(name).display()
                ),
            ))
        });
        if let Err(e) = result {
            let _ = rustix::fs::unlinkat(&self.fd, tmp.as_os_str(), AtFlags::empty());
            return Err(e);
        }
        self.sync()
    }

    /// Creates a file that must not exist yet (a private key), complete
    /// before it has its name: filled in a temporary file (as
    /// [`Dir::write_atomic`]), then `linkat` to the name, which fails when
    /// the name exists ([`FsError::Exists`], nothing changed). So a crash
    /// never leaves a partial file under the name. With `replace`, an
    /// existing file is replaced atomically instead.
    pub fn create_file(
        &self,
        name: &OsStr,
        bytes: &[u8],
        uid: Option<u32>,
        gid: Option<u32>,
        mode: u32,
        replace: bool,
    ) -> Result<(), FsError> {
        if replace {
            return self.write_atomic(name, bytes, uid, gid, mode);
        }
        if self.stat(name)?.is_some() {
            return Err(FsError::Exists {
                path: self.real(name),
            });
        }
        let (tmp, fd) = self.create_temp(name)?;
        let result = self.fill(&tmp, fd, bytes, uid, gid, mode).and_then(|()| {
            match rustix::fs::linkat(&self.fd, tmp.as_os_str(), &self.fd, name, AtFlags::empty()) {
                Ok(()) => Ok(()),
                Err(rustix::io::Errno::EXIST) => Err(FsError::Exists {
                    path: self.real(name),
                }),
                Err(e) => Err(io_err(format!("create {}", self.real(name).display()))(e)),
            }
        });
        let _ = rustix::fs::unlinkat(&self.fd, tmp.as_os_str(), AtFlags::empty());
        result?;
        self.sync()
    }

    /// Sets the owner and/or mode of `name` through a descriptor opened
    /// with `O_NOFOLLOW`, so a link swapped in cannot redirect the change.
    /// `want_dir` says which type must be there. With `single_link`, a
    /// file with more than one name is refused (a hard link to a file
    /// root owns, planted in place of a key).
    pub fn set_owner_mode(
        &self,
        name: &OsStr,
        want_dir: bool,
        uid: Option<u32>,
        gid: Option<u32>,
        mode: Option<u32>,
        single_link: bool,
    ) -> Result<(), FsError> {
        let real = self.real(name);
        let mut flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        if want_dir {
            flags |= OFlags::DIRECTORY;
        }
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // Not root and not readable: the file is ours (or chown would
            // fail anyway); O_PATH cannot fchmod, so the name is used,
            // after making sure no link sits at it.
            Err(rustix::io::Errno::ACCESS) => {
                return self.set_owner_mode_by_name(name, want_dir, uid, gid, mode);
            }
            Err(rustix::io::Errno::LOOP) => {
                return Err(FsError::WrongType {
                    path: real,
                    found: "symbolic link",
                    want: if want_dir {
                        "directory"
                    } else {
                        "regular file"
                    },
                });
            }
            Err(e) => return Err(io_err(format!("open {}", real.display()))(e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(io_err(format!("inspect {}", real.display())))?;
        let t = FileType::from_raw_mode(st.st_mode);
        let ok = if want_dir {
            t == FileType::Directory
        } else {
            t == FileType::RegularFile
        };
        if !ok {
            return Err(FsError::WrongType {
                path: real,
                found: kind_name(t),
                want: if want_dir {
                    "directory"
                } else {
                    "regular file"
                },
            });
        }
        if single_link && !want_dir && st.st_nlink > 1 {
            return Err(FsError::HardLinked {
                path: real,
                links: st.st_nlink,
            });
        }
        set_owner_mode(&fd, &real, uid, gid, mode)
    }

    fn set_owner_mode_by_name(
        &self,
        name: &OsStr,
        want_dir: bool,
        uid: Option<u32>,
        gid: Option<u32>,
        mode: Option<u32>,
    ) -> Result<(), FsError> {
        let real = self.real(name);
        let Some(st) = self.stat(name)? else {
            return Err(FsError::Io {
                op: format!("open {}", real.display()),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        };
        let t = FileType::from_raw_mode(st.st_mode);
        if t != (if want_dir {
            FileType::Directory
        } else {
            FileType::RegularFile
        }) {
            return Err(FsError::WrongType {
                path: real,
                found: kind_name(t),
                want: if want_dir {
                    "directory"
                } else {
                    "regular file"
                },
            });
        }
        if uid.is_some() || gid.is_some() {
            rustix::fs::chownat(
                &self.fd,
                name,
                uid.map(Uid::from_raw),
                gid.map(Gid::from_raw),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(io_err(format!("change owner of {}", real.display())))?;
        }
        if let Some(m) = mode {
            rustix::fs::chmodat(
                &self.fd,
                name,
                Mode::from_raw_mode(m & 0o7777),
                AtFlags::empty(),
            )
            .map_err(io_err(format!("change mode of {}", real.display())))?;
        }
        Ok(())
    }

    /// Opens (creating it 0600 if missing) the lock file `name` and takes
    /// a write lock on it (`fcntl F_SETLKW`, as `lckpwdf(3)` and
    /// systemd-sysusers do on `/etc/.pwd.lock`). Held until the returned
    /// file is dropped.
    pub fn lock(&self, name: &OsStr) -> Result<File, FsError> {
        let real = self.real(name);
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io_err(format!("open {}", real.display())))?;
        let file = File::from(fd);
        let lock = nix::libc::flock {
            l_type: nix::libc::F_WRLCK as nix::libc::c_short,
            l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            nix::fcntl::FcntlArg::F_SETLKW(&lock),
        )
        .map_err(|e| FsError::Io {
            op: format!("lock {}", real.display()),
            source: e.into(),
        })?;
        Ok(file)
    }

    /// Moves `name` to `to_name` in `to` (both below the root; the same
    /// file system, as rename(2) wants). A link at `name` is moved as a
    /// link, never followed.
    pub fn rename(&self, name: &OsStr, to: &Dir, to_name: &OsStr) -> Result<(), FsError> {
        rustix::fs::renameat(&self.fd, name, &to.fd, to_name).map_err(io_err(format!(
            "rename {} to {}",
            self.real(name).display(),
            to.real(to_name).display()
        )))?;
        self.sync()?;
        to.sync()
    }

    /// Removes the file (or link) `name`; nothing there is fine.
    pub fn remove(&self, name: &OsStr) -> Result<(), FsError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => self.sync(),
            Err(e) => Err(io_err(format!("remove {}", self.real(name).display()))(e)),
        }
    }

    /// fsyncs the directory, so that new entries and renames in it are
    /// durable.
    pub fn sync(&self) -> Result<(), FsError> {
        match rustix::fs::fsync(&self.fd) {
            // Some file systems (and some FUSE ones) cannot fsync a
            // directory; there is nothing better to do there.
            Ok(()) | Err(rustix::io::Errno::INVAL) => Ok(()),
            Err(e) => Err(io_err(format!("sync {}", self.real.display()))(e)),
        }
    }

    /// Creates `.<name>.dkimctl-XXXXXX` with `O_CREAT|O_EXCL|O_NOFOLLOW`
    /// and mode 0600: nobody can make us write through a link or into a
    /// file they opened beforehand.
    fn create_temp(&self, name: &OsStr) -> Result<(OsString, OwnedFd), FsError> {
        let mut last = rustix::io::Errno::EXIST;
        for _ in 0..NAME_ATTEMPTS {
            let mut tmp = OsString::from(".");
            tmp.push(name);
            tmp.push(format!(".dkimctl-{}", random_suffix()));
            match rustix::fs::openat(
                &self.fd,
                tmp.as_os_str(),
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => return Ok((tmp, fd)),
                Err(rustix::io::Errno::EXIST) => last = rustix::io::Errno::EXIST,
                Err(e) => {
                    return Err(io_err(format!(
                        "create temporary file {}",
                        self.real(&tmp).display()
                    ))(e));
                }
            }
        }
        Err(io_err(format!(
            "create a temporary file in {}",
            self.real.display()
        ))(last))
    }

    /// Owner and mode first, then the bytes, then fsync.
    fn fill(
        &self,
        tmp: &OsStr,
        fd: OwnedFd,
        bytes: &[u8],
        uid: Option<u32>,
        gid: Option<u32>,
        mode: u32,
    ) -> Result<(), FsError> {
        let real = self.real(tmp);
        set_owner_mode(&fd, &real, uid, gid, Some(mode))?;
        let mut file = File::from(fd);
        file.write_all(bytes).map_err(|source| FsError::Io {
            op: format!("write {}", real.display()),
            source,
        })?;
        file.sync_all().map_err(|source| FsError::Io {
            op: format!("sync {}", real.display()),
            source,
        })
    }
}

/// A directory a link may be followed in: owned by root or by us, and
/// writable by nobody else.
fn trusted(st: &Stat, euid: u32) -> bool {
    (st.st_uid == 0 || st.st_uid == euid) && st.st_mode & 0o022 == 0
}

fn open_dir_at(dir: &OwnedFd, name: &OsStr, real: &Path) -> Result<OwnedFd, FsError> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        // Swapped for a link since it was looked at.
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => FsError::WrongType {
            path: real.to_path_buf(),
            found: "symbolic link or file",
            want: "directory",
        },
        e => io_err(format!("open {}", real.display()))(e),
    })
}

/// `fchown` (only ids that differ) then `fchmod` on an open descriptor.
fn set_owner_mode(
    fd: &impl AsFd,
    real: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: Option<u32>,
) -> Result<(), FsError> {
    if uid.is_some() || gid.is_some() {
        let st = rustix::fs::fstat(fd).map_err(io_err(format!("inspect {}", real.display())))?;
        let uid = uid.filter(|&u| u != st.st_uid);
        let gid = gid.filter(|&g| g != st.st_gid);
        if uid.is_some() || gid.is_some() {
            rustix::fs::fchown(fd, uid.map(Uid::from_raw), gid.map(Gid::from_raw))
                .map_err(io_err(format!("change owner of {}", real.display())))?;
        }
    }
    if let Some(m) = mode {
        rustix::fs::fchmod(fd, Mode::from_raw_mode(m & 0o7777))
            .map_err(io_err(format!("change mode of {}", real.display())))?;
    }
    Ok(())
}

/// The normal components of a path, `..` kept (resolved by the walk),
/// `/` and `.` dropped.
fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Six lower-case hex digits, different on every call. Unpredictability
/// is a courtesy, not a defence: O_EXCL is what makes the name safe.
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:06x}", h.finish() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use super::*;

    fn root() -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().unwrap();
        let r = Root::new(d.path());
        (d, r)
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn writes_and_creates_parents_inside_the_root() {
        let (d, r) = root();
        let spec = |_: &Path| DirSpec {
            mode: 0o750,
            uid: None,
            gid: None,
        };
        let (dir, name, created) =
            Dir::parent_of(&r, Path::new("/etc/x/y/f.conf"), Some(&spec)).unwrap();
        assert_eq!(
            created,
            [
                PathBuf::from("/etc"),
                PathBuf::from("/etc/x"),
                PathBuf::from("/etc/x/y")
            ]
        );
        dir.write_atomic(&name, b"one", None, None, 0o640).unwrap();
        dir.write_atomic(&name, b"two", None, None, 0o644).unwrap();
        let f = d.path().join("etc/x/y/f.conf");
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(mode_of(&f), 0o644);
        assert_eq!(mode_of(&d.path().join("etc/x")), 0o750);
        // No temporary file left behind.
        assert_eq!(
            std::fs::read_dir(d.path().join("etc/x/y")).unwrap().count(),
            1
        );
    }

    #[test]
    fn links_in_trusted_directories_resolve_inside_the_root() {
        let (d, r) = root();
        std::fs::create_dir_all(d.path().join("usr/lib/systemd")).unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        // An image's absolute link: /etc/systemd -> /usr/lib/systemd.
        symlink("/usr/lib/systemd", d.path().join("etc/systemd")).unwrap();
        let (dir, name, _) = Dir::parent_of(&r, Path::new("/etc/systemd/x.service"), None).unwrap();
        dir.write_atomic(&name, b"[Unit]\n", None, None, 0o644)
            .unwrap();
        assert!(d.path().join("usr/lib/systemd/x.service").is_file());
        // `..` cannot climb out of the root either.
        symlink("../../../../../../tmp", d.path().join("etc/up")).unwrap();
        let (dir, _, _) =
            Dir::parent_of(&r, Path::new("/etc/up/z"), Some(&|_| DirSpec::PARENT)).unwrap();
        assert_eq!(dir.real, d.path().join("tmp"));
        assert!(d.path().join("tmp").is_dir());
    }

    #[test]
    fn links_in_directories_others_can_write_are_refused() {
        let (d, r) = root();
        let keys = d.path().join("etc/dkimctl/keys");
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::create_dir_all(d.path().join("elsewhere")).unwrap();
        // A directory the service user could write (group-writable here).
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o770)).unwrap();
        symlink(d.path().join("elsewhere"), keys.join("example.com")).unwrap();
        let err = Dir::parent_of(
            &r,
            Path::new("/etc/dkimctl/keys/example.com/s1.private"),
            Some(&|_| DirSpec::PARENT),
        )
        .unwrap_err();
        assert!(matches!(err, FsError::UntrustedLink { .. }), "{err}");
        assert!(err.to_string().contains("refusing to follow"), "{err}");
        assert_eq!(
            std::fs::read_dir(d.path().join("elsewhere"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn owner_and_mode_never_follow_a_link() {
        let (d, r) = root();
        let target = d.path().join("victim");
        std::fs::write(&target, "x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::create_dir_all(d.path().join("k")).unwrap();
        symlink(&target, d.path().join("k/key")).unwrap();
        let (dir, name, _) = Dir::parent_of(&r, Path::new("/k/key"), None).unwrap();
        let err = dir
            .set_owner_mode(&name, false, None, None, Some(0o644), true)
            .unwrap_err();
        assert!(matches!(err, FsError::WrongType { .. }), "{err}");
        assert_eq!(mode_of(&target), 0o600);
        // A hard link in place of a key is refused as well.
        std::fs::remove_file(d.path().join("k/key")).unwrap();
        std::fs::hard_link(&target, d.path().join("k/key")).unwrap();
        let err = dir
            .set_owner_mode(&name, false, None, None, Some(0o644), true)
            .unwrap_err();
        assert!(matches!(err, FsError::HardLinked { links: 2, .. }), "{err}");
        assert_eq!(mode_of(&target), 0o600);
    }

    #[test]
    fn create_file_never_replaces_without_being_asked() {
        let (d, r) = root();
        std::fs::create_dir_all(d.path().join("k")).unwrap();
        let (dir, _) = Dir::open(&r, Path::new("/k"), None).unwrap();
        let n = OsStr::new("s1.private");
        dir.create_file(n, b"first", None, None, 0o600, false)
            .unwrap();
        let err = dir
            .create_file(n, b"second", None, None, 0o600, false)
            .unwrap_err();
        assert!(matches!(err, FsError::Exists { .. }));
        assert_eq!(
            std::fs::read(d.path().join("k/s1.private")).unwrap(),
            b"first"
        );
        dir.create_file(n, b"third", None, None, 0o600, true)
            .unwrap();
        assert_eq!(
            std::fs::read(d.path().join("k/s1.private")).unwrap(),
            b"third"
        );
        assert_eq!(std::fs::read_dir(d.path().join("k")).unwrap().count(), 1);
        // A planted link at the name is not written through.
        symlink(d.path().join("outside"), d.path().join("k/s2.private")).unwrap();
        let err = dir
            .create_file(OsStr::new("s2.private"), b"k", None, None, 0o600, false)
            .unwrap_err();
        assert!(matches!(err, FsError::Exists { .. }));
        assert!(!d.path().join("outside").exists());
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".dkimctl-"))
            .collect()
    }

    #[test]
    fn chowns_to_the_given_ids() {
        let (d, r) = root();
        let (dir, _) = Dir::open(&r, Path::new("/"), None).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let my_gid = nix::unistd::getegid().as_raw();
        dir.write_atomic(OsStr::new("f"), b"x", Some(me), Some(my_gid), 0o600)
            .unwrap();
        let m = std::fs::metadata(d.path().join("f")).unwrap();
        assert_eq!((m.uid(), m.gid()), (me, my_gid));
    }

    #[test]
    fn failed_rename_removes_the_temporary_file_and_keeps_the_old() {
        let (d, r) = root();
        std::fs::create_dir(d.path().join("dir")).unwrap();
        std::fs::write(d.path().join("dir/inside"), "x").unwrap();
        let (dir, _) = Dir::open(&r, Path::new("/"), None).unwrap();
        let e = dir
            .write_atomic(OsStr::new("dir"), b"new", None, None, 0o644)
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("failed to rename "), "{msg}");
        assert!(
            msg.ends_with(&format!("to {}", d.path().join("dir").display())),
            "{msg}"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert!(leftovers(d.path()).is_empty());
        assert_eq!(std::fs::read(d.path().join("dir/inside")).unwrap(), b"x");
    }

    #[test]
    fn missing_directory_is_an_error_naming_it() {
        let (_d, r) = root();
        let e = Dir::parent_of(&r, Path::new("/nope/f"), None).unwrap_err();
        assert!(e.to_string().starts_with("failed to open "), "{e}");
        assert!(e.to_string().ends_with("/nope"), "{e}");
    }

    #[test]
    fn read_only_directory_fails_cleanly_when_not_root() {
        if nix::unistd::geteuid().is_root() {
            // Root ignores directory permissions; the rename-onto-a-
            // directory test covers the failure path.
            return;
        }
        let (d, r) = root();
        std::fs::write(d.path().join("f"), "old").unwrap();
        let (dir, _) = Dir::open(&r, Path::new("/"), None).unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        let res = dir.write_atomic(OsStr::new("f"), b"new", None, None, 0o644);
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(res.is_err());
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"old");
        assert!(leftovers(d.path()).is_empty());
    }
}
