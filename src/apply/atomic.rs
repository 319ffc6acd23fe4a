//! Replacing a file atomically: readers see the old content or the new
//! content, never a mix, never an empty file, and never the new content
//! under the wrong owner or mode.
//!
//! The recipe (the same as cargo's `paths.rs`, systemd's
//! `write_string_file_atomic` and every careful package manager):
//!
//! 1. Create a temporary file **in the target's own directory**, named
//!    `.<name>.dkimctl-XXXXXX`, with `O_CREAT|O_EXCL` and mode 0600.
//! 2. `fchown` and `fchmod` it to the final owner and mode.
//! 3. Write the bytes and `fsync` the file.
//! 4. `rename` it over the target.
//! 5. `fsync` the directory.
//!
//! On any error the temporary file is removed and the target is left as
//! it was. The error names the path and the operation, with the
//! `io::Error` as its `source()`.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::ApplyError;

/// How many names are tried before giving up on finding a free one.
const NAME_ATTEMPTS: usize = 64;

/// Writes `bytes` to `real_path` atomically, owned by `uid`/`gid` (`None`
/// keeps the caller's) with permission bits `mode`.
pub fn write_atomic(
    real_path: &Path,
    bytes: &[u8],
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
) -> Result<(), ApplyError> {
    let (dir, name) = match (real_path.parent(), real_path.file_name()) {
        (Some(d), Some(n)) => (d, n.to_string_lossy()),
        _ => {
            return Err(ApplyError::io(
                format!("write {}: not a file path", real_path.display()),
                io::Error::from(io::ErrorKind::InvalidInput),
            ));
        }
    };
    // Why the same directory: rename(2) is atomic only within one
    // filesystem. A temporary file in $TMPDIR may live on another mount
    // (tmpfs), where rename fails with EXDEV and a fallback copy would
    // expose a half-written target. A sibling also inherits the target
    // directory's SELinux/ACL context and quota.
    let (tmp_path, mut file) = create_temp(dir, &name)?;

    match fill_and_rename(&mut file, &tmp_path, real_path, bytes, uid, gid, mode) {
        Ok(()) => {}
        Err(e) => {
            drop(file);
            // Best effort: the original error is what matters, and a
            // temporary file that cannot be removed is named in it.
            let _ = fs::remove_file(&tmp_path);
            return Err(e);
        }
    }
    drop(file);

    // Why fsync the directory: rename(2) changes the directory, not the
    // file. Until the directory's block reaches the disk, a crash can
    // bring back the old name (or, on some filesystems, neither name).
    // The file's own fsync above made sure that whichever name survives
    // points at complete content.
    sync_dir(dir)
}

/// Steps 2-4 on an open temporary file.
fn fill_and_rename(
    file: &mut File,
    tmp_path: &Path,
    real_path: &Path,
    bytes: &[u8],
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
) -> Result<(), ApplyError> {
    let tmp = tmp_path.display();
    // Why owner and mode before content: the file is 0600 and ours right
    // now; if the bytes came first, a private key or a credential would
    // sit for a moment under whatever owner and mode the process happens
    // to give new files. Also, fchown clears set-id bits, so chown first
    // and chmod second leaves the mode exactly as asked. And if fchown is
    // refused (not root), nothing has been written yet.
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::fchown(&*file, uid, gid)
            .map_err(|e| ApplyError::io(format!("change owner of {tmp}"), e))?;
    }
    file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| ApplyError::io(format!("change mode of {tmp}"), e))?;
    file.write_all(bytes)
        .map_err(|e| ApplyError::io(format!("write {tmp}"), e))?;
    // Why fsync before rename: without it, the rename can reach the disk
    // before the data does, and a crash leaves an empty or partial file
    // under the real name (the classic ext4 zero-length-file problem).
    file.sync_all()
        .map_err(|e| ApplyError::io(format!("sync {tmp}"), e))?;
    // rename(2) replaces the target in one step: a reader opening the path
    // gets either the old inode or the new one. A symbolic link at the
    // target is replaced, not followed.
    fs::rename(tmp_path, real_path)
        .map_err(|e| ApplyError::io(format!("rename {tmp} to {}", real_path.display()), e))
}

/// Creates `.<name>.dkimctl-XXXXXX` in `dir` with `O_CREAT|O_EXCL` and
/// mode 0600.
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, File), ApplyError> {
    let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
    for _ in 0..NAME_ATTEMPTS {
        let path = dir.join(format!(".{name}.dkimctl-{}", random_suffix()));
        // O_EXCL (create_new) refuses an existing name and a symbolic
        // link planted at it, so nobody can make us write through a link
        // or into a file they opened beforehand. 0600 keeps the content
        // private until the final mode is set.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => {
                return Err(ApplyError::io(
                    format!("create temporary file {}", path.display()),
                    e,
                ));
            }
        }
    }
    Err(ApplyError::io(
        format!("create a temporary file in {}", dir.display()),
        last,
    ))
}

/// Six lower-case hex digits, different on every call. Unpredictability
/// is a courtesy, not a defence: O_EXCL is what makes the name safe.
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS once per process and varies per
    // instance; the counter and pid make repeated calls differ anyway.
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:06x}", h.finish() & 0xff_ffff)
}

/// fsyncs a directory so that renames and new entries in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ApplyError> {
    let d = File::open(dir).map_err(|e| ApplyError::io(format!("open {}", dir.display()), e))?;
    match d.sync_all() {
        Ok(()) => Ok(()),
        // Some filesystems (and some FUSE ones) cannot fsync a directory;
        // there is nothing better to do there.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        Err(e) => Err(ApplyError::io(format!("sync {}", dir.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".dkimctl-"))
            .collect()
    }

    #[test]
    fn replaces_content_and_sets_mode() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("opendkim.conf");
        fs::write(&p, "old\n").expect("w");
        write_atomic(&p, b"new\n", None, None, 0o640).expect("write");
        assert_eq!(fs::read(&p).expect("r"), b"new\n");
        assert_eq!(fs::metadata(&p).expect("m").mode() & 0o7777, 0o640);
        assert!(leftovers(d.path()).is_empty());
    }

    #[test]
    fn chowns_to_the_given_ids() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("f");
        let me = nix::unistd::geteuid().as_raw();
        let my_gid = nix::unistd::getegid().as_raw();
        write_atomic(&p, b"x", Some(me), Some(my_gid), 0o600).expect("write");
        let m = fs::metadata(&p).expect("m");
        assert_eq!((m.uid(), m.gid()), (me, my_gid));
    }

    #[test]
    fn failed_rename_removes_the_temporary_file() {
        let d = tempfile::tempdir().expect("tmp");
        let target = d.path().join("dir");
        fs::create_dir(&target).expect("mkdir");
        fs::write(target.join("inside"), "x").expect("w");
        let e = write_atomic(&target, b"new", None, None, 0o644).expect_err("rename onto dir");
        let msg = e.to_string();
        assert!(msg.starts_with("failed to rename "), "{msg}");
        assert!(msg.ends_with(&format!("to {}", target.display())), "{msg}");
        assert!(std::error::Error::source(&e).is_some());
        assert!(leftovers(d.path()).is_empty());
        // The old content is untouched.
        assert_eq!(fs::read(target.join("inside")).expect("r"), b"x");
    }

    #[test]
    fn missing_directory_is_an_error_naming_it() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("nope/f");
        let e = write_atomic(&p, b"x", None, None, 0o644).expect_err("no dir");
        assert!(
            e.to_string()
                .starts_with("failed to create temporary file ")
        );
        assert!(e.to_string().contains("/nope/.f.dkimctl-"));
    }

    #[test]
    fn read_only_directory_fails_cleanly_when_not_root() {
        if nix::unistd::geteuid().is_root() {
            // Root ignores directory permissions; the rename-onto-a-
            // directory test covers the failure path.
            return;
        }
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("f");
        fs::write(&p, "old").expect("w");
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o555)).expect("chmod");
        let r = write_atomic(&p, b"new", None, None, 0o644);
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(r.is_err());
        assert_eq!(fs::read(&p).expect("r"), b"old");
        assert!(leftovers(d.path()).is_empty());
    }
}
