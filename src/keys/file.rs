//! Writing private key files without ever exposing them, and judging the
//! mode of existing ones.

use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::secret::Secret;

/// Why a key file could not be written.
#[derive(Debug)]
pub enum KeyFileError {
    /// The file exists and `force` was not given; it was left untouched.
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// The requested mode would expose the key.
    UnsafeMode {
        /// The key file.
        path: PathBuf,
        /// The mode asked for.
        mode: u32,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A system call failed.
    Io {
        /// What was being done: "create", "change the owner of", ...
        op: &'static str,
        /// The file (or directory) it was done to.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Exists { path } => write!(
                f,
                "{} already exists (not overwritten; use --force to replace it)",
                path.display()
            ),
            KeyFileError::UnsafeMode {
                path,
                mode,
                problem,
            } => write!(
                f,
                "refusing to write {} with mode {mode:04o}: the key would be {problem}",
                path.display()
            ),
            KeyFileError::Io { op, path, source } => {
                write!(f, "failed to {op} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for KeyFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyFileError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The problem with a key file's permission bits, if any, in the spirit of
/// OpenDKIM's `RequireSafeKeys`: a private key must not be readable,
/// writable or otherwise accessible by others, nor writable by its group
/// (group read is fine: the milter may read it through its group).
pub fn check_key_file_mode(mode: u32) -> Option<&'static str> {
    let mode = mode & 0o7777;
    if mode & 0o002 != 0 {
        Some("writable by others")
    } else if mode & 0o004 != 0 {
        Some("readable by others")
    } else if mode & 0o001 != 0 {
        Some("accessible by others (o+x)")
    } else if mode & 0o020 != 0 {
        Some("writable by its group")
    } else {
        None
    }
}

/// Writes a private key file so that it is never, not even for an instant,
/// readable by anyone but its owner (and, with mode 0640, its group).
///
/// - `mode` must pass [`check_key_file_mode`] and have no bits beyond
///   0o740 (0600 or 0640 in practice).
/// - `uid`/`gid`: the owner to give the file (the milter's user or group),
///   when they differ from the creating process's.
/// - Without `force`, an existing file is [`KeyFileError::Exists`] and is
///   left untouched. With `force`, the new key replaces it atomically:
///   readers see the old key or the new one, never a mix or nothing.
///
/// The order of operations is the point:
///
/// 1. `open(O_CREAT|O_EXCL, 0600)`. The mode given to open is masked by the
///    umask, which can only remove bits, so the file is born at most 0600
///    whatever the umask (even 000), and `O_EXCL` refuses to follow a
///    symlink or reuse a file someone else created.
/// 2. `fchown` to the milter's user/group, on the open descriptor (no
///    path race).
/// 3. `fchmod` to the final mode. After chown, because chown may clear
///    mode bits; before any byte of the key exists in the file.
/// 4. Write the key, `fsync` the file, close it.
/// 5. (force) `rename` the temporary file over the old one, atomically.
/// 6. `fsync` the directory, so the new name survives a crash.
///
/// Writing first and chmod-ing afterwards (what `umask 022; cat > key;
/// chmod 600 key` does) leaves a window in which the key is world-readable.
///
/// On failure, a file this call created is removed again.
pub fn write_private_key(
    path: &Path,
    pem: &Secret,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    force: bool,
) -> Result<(), KeyFileError> {
    let problem = check_key_file_mode(mode)
        .or((mode & !0o740 != 0)
            .then_some("given mode bits beyond owner read/write and group read"));
    if let Some(problem) = problem {
        return Err(KeyFileError::UnsafeMode {
            path: path.to_path_buf(),
            mode,
            problem,
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };

    if !force {
        // Fill a temporary file completely, then link it to the final name:
        // link(2) fails when the name exists (no overwrite without
        // --force), and a crash can never leave a partial key under the
        // final name that later runs would keep as "exists".
        if fs::symlink_metadata(path).is_ok() {
            return Err(KeyFileError::Exists {
                path: path.to_path_buf(),
            });
        }
        let (tmp, file) = create_temp(dir, path)?;
        let result = fill(file, &tmp, pem, uid, gid, mode).and_then(|()| {
            fs::hard_link(&tmp, path).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    KeyFileError::Exists {
                        path: path.to_path_buf(),
                    }
                } else {
                    io_error("link a temporary file to", path, e)
                }
            })
        });
        let _ = fs::remove_file(&tmp);
        result?;
    } else {
        let (tmp, file) = create_temp(dir, path)?;
        let result = fill(file, &tmp, pem, uid, gid, mode).and_then(|()| {
            fs::rename(&tmp, path).map_err(|e| io_error("rename a temporary file onto", path, e))
        });
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("fsync the directory", dir, e))
}

/// Step 1: a new file, mode 0600 before the umask, never an existing one.
fn create_exclusive(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// A temporary file next to `path` (same directory, so `rename` is atomic),
/// created like the key file itself.
fn create_temp(dir: &Path, path: &Path) -> Result<(PathBuf, File), KeyFileError> {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".to_string());
    let pid = std::process::id();
    let mut last = None;
    for attempt in 0..100u32 {
        let tmp = dir.join(format!(".{base}.dkimctl-tmp.{pid}.{attempt}"));
        match create_exclusive(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            // Named after the key the caller asked for, not the temporary.
            Err(e) => return Err(io_error("create", path, e)),
        }
    }
    Err(io_error(
        "create a temporary file for",
        path,
        last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)),
    ))
}

/// Steps 2 to 4 on a freshly created, still empty file.
fn fill(
    mut file: File,
    path: &Path,
    pem: &Secret,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
) -> Result<(), KeyFileError> {
    let meta = file.metadata().map_err(|e| io_error("inspect", path, e))?;
    let uid = uid.filter(|&u| u != meta.uid());
    let gid = gid.filter(|&g| g != meta.gid());
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::fchown(&file, uid, gid)
            .map_err(|e| io_error("change the owner of", path, e))?;
    }
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| io_error("set the mode of", path, e))?;
    file.write_all(pem.expose())
        .map_err(|e| io_error("write", path, e))?;
    file.sync_all().map_err(|e| io_error("fsync", path, e))
}

fn io_error(op: &'static str, path: &Path, source: io::Error) -> KeyFileError {
    KeyFileError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret {
        Secret::from(text.to_string())
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("dkimctl-tmp"))
            .collect()
    }

    /// Env var that marks the child process of `write_under_umask_000`.
    const CHILD: &str = "DKIMCTL_KEYS_UMASK_CHILD";

    /// Under umask 000 the key file still ends up 0600 (and 0640 when
    /// asked). The umask is process-wide and the test harness runs tests on
    /// several threads, so the test re-runs itself alone in a child process
    /// and changes the umask only there: no other test sees umask 000.
    #[test]
    fn write_under_umask_000() {
        if std::env::var_os(CHILD).is_none() {
            let exe = std::env::current_exe().unwrap();
            let out = std::process::Command::new(exe)
                .args([
                    "--exact",
                    "keys::file::tests::write_under_umask_000",
                    "--nocapture",
                ])
                .args(["--test-threads", "1"])
                .env(CHILD, "1")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "child failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        use nix::sys::stat::{Mode, umask};
        let old = umask(Mode::empty());
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.private");
        let b = dir.path().join("b.private");
        let c = dir.path().join("c.private");
        let ra = write_private_key(&a, &secret("A"), None, None, 0o600, false);
        let rb = write_private_key(&b, &secret("B"), None, None, 0o640, false);
        fs::write(&c, "old").unwrap();
        let rc = write_private_key(&c, &secret("C"), None, None, 0o600, true);
        umask(old);
        ra.unwrap();
        rb.unwrap();
        rc.unwrap();
        assert_eq!(mode_of(&a), 0o600);
        assert_eq!(mode_of(&b), 0o640);
        assert_eq!(mode_of(&c), 0o600);
        assert_eq!(fs::read_to_string(&c).unwrap(), "C");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn existing_file_needs_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sel.private");
        write_private_key(&path, &secret("first"), None, None, 0o600, false).unwrap();
        assert_eq!(mode_of(&path), 0o600);

        let err =
            write_private_key(&path, &secret("second"), None, None, 0o600, false).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err:?}");
        assert!(err.to_string().contains(path.to_str().unwrap()));
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");

        // Replacing keeps no temporary file and fixes a too-open old mode.
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        let before = fs::metadata(&path).unwrap().ino();
        write_private_key(&path, &secret("third"), None, None, 0o640, true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "third");
        assert_eq!(mode_of(&path), 0o640);
        assert_ne!(fs::metadata(&path).unwrap().ino(), before, "renamed over");
        assert!(leftovers(dir.path()).is_empty());

        // force also works when there is nothing to replace.
        let fresh = dir.path().join("fresh.private");
        write_private_key(&fresh, &secret("x"), None, None, 0o600, true).unwrap();
        assert_eq!(mode_of(&fresh), 0o600);
    }

    #[test]
    fn symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link.private");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_private_key(&link, &secret("k"), None, None, 0o600, false).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }));
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
        // With force the link itself is replaced, the target left alone.
        write_private_key(&link, &secret("k"), None, None, 0o600, true).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
        assert!(
            !fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn ownership_to_current_ids_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        write_private_key(&path, &secret("k"), Some(uid), Some(gid), 0o640, false).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid));
    }

    #[test]
    fn errors_name_path_and_operation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("k");
        let err = write_private_key(&path, &secret("k"), None, None, 0o600, false).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("failed to create "), "{msg}");
        assert!(msg.contains(path.to_str().unwrap()), "{msg}");
        assert!(std::error::Error::source(&err).is_some());

        for mode in [0o644, 0o604, 0o660, 0o601, 0o4600] {
            let err =
                write_private_key(&dir.path().join("m"), &secret("k"), None, None, mode, false)
                    .unwrap_err();
            assert!(matches!(err, KeyFileError::UnsafeMode { .. }), "{mode:o}");
        }
        assert!(!dir.path().join("m").exists());
    }

    #[test]
    fn safe_modes() {
        assert_eq!(check_key_file_mode(0o600), None);
        assert_eq!(check_key_file_mode(0o640), None);
        assert_eq!(check_key_file_mode(0o400), None);
        assert_eq!(check_key_file_mode(0o100600), None); // with file-type bits
        assert_eq!(check_key_file_mode(0o644), Some("readable by others"));
        assert_eq!(check_key_file_mode(0o602), Some("writable by others"));
        assert_eq!(
            check_key_file_mode(0o601),
            Some("accessible by others (o+x)")
        );
        assert_eq!(check_key_file_mode(0o660), Some("writable by its group"));
    }
}
