//! Private key files: the one place that writes them.
//!
//! A key is never, not even for an instant, readable by anyone but its
//! owner (and, with mode 0640, its group), and never written through a
//! link: [`Dir::create_file`] fills a temporary file created
//! `O_CREAT|O_EXCL|O_NOFOLLOW` at mode 0600 (the umask can only narrow
//! that), gives it its owner and final mode by descriptor before any byte
//! of the key exists in it, writes and fsyncs it, and only then gives it
//! its name — with `linkat`, which refuses an existing name, or, when
//! replacing, with `renameat`. Writing first and chmod-ing afterwards
//! (`umask 022; cat > key; chmod 600 key`) leaves a window in which the
//! key is world-readable; linking only a complete file means a crash never
//! leaves a partial key that later runs would keep as "exists".
//!
//! The key directory belongs to the milter's user, who may be
//! compromised: every directory on the way is walked with [`Dir`], which
//! refuses links that user could have planted.

use std::path::{Path, PathBuf};

use super::ApplyError;
use super::tree::{Dir, DirSpec, FsError};
use crate::config::model::{Algorithm, Config, Domain, Key};
use crate::host::Root;
use crate::keys::{self, KeyPair, Secret, check_key_file_mode};

/// Mode of new private key files.
pub const KEY_MODE: u32 = 0o600;
/// Mode of key directories dkimctl creates.
const KEY_DIR_MODE: u32 = 0o750;

/// The owner ids a key file gets: the service user and group under the
/// root when they exist and we may chown (root); otherwise ours, and
/// `dkimctl apply` fixes the owner once the user exists.
pub fn key_owner(config: &Config, root: &Root) -> (Option<u32>, Option<u32>) {
    if !nix::unistd::geteuid().is_root() {
        return (None, None);
    }
    let Ok(acc) = crate::host::accounts::load(root) else {
        return (None, None);
    };
    let uid = acc.user(&config.service.user).map(|u| u.uid);
    let gid = acc.group(&config.service.group).map(|g| g.gid);
    (uid, gid)
}

/// Every key whose private half must exist, with the domain that owns it
/// (shared keys appear once).
pub fn owned_keys(config: &Config) -> impl Iterator<Item = (&Domain, &Key)> {
    config
        .domains
        .iter()
        .filter(|d| d.key_from.is_none())
        .flat_map(|d| d.keys.iter().map(move |k| (d, k)))
        .filter(|(_, k)| k.state.needs_private_key())
}

/// Reads the private key at host path `host` (never through a link the
/// walk does not trust, never a non-regular file) to copy it under another
/// name: the same selector's key where the other engine keeps it. It must
/// parse and be an `algorithm` key; anything else is an error rather than
/// a silently new key DNS does not know.
pub fn read_key(root: &Root, host: &Path, algorithm: Algorithm) -> Result<Secret, ApplyError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| ApplyError::Key {
        path: host.to_path_buf(),
        source: e,
    };
    let (dir, name, _) = Dir::parent_of(root, host, None)?;
    let Some((bytes, _)) = dir.read(&name)? else {
        return Err(failed("it disappeared since the plan".into()));
    };
    let pem = Secret::new(bytes);
    let loaded = keys::parse_private_key(pem.expose(), host).map_err(|e| failed(Box::new(e)))?;
    if loaded.algorithm != algorithm {
        return Err(failed(
            format!(
                "it is a {} key, dkim.toml says {}",
                loaded.algorithm, algorithm
            )
            .into(),
        ));
    }
    Ok(pem)
}

/// What writing a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The key was written.
    Created,
    /// A file was already there (and was not to be replaced): untouched.
    Exists,
}

/// Writes a private key at host path `host` under `root` (see the module
/// docs). Missing directories below `key_dir` are created 0750 and owned
/// by `uid`/`gid`; others 0755 like `mkdir -p`. Without `replace`, an
/// existing file is left untouched ([`Written::Exists`]).
pub fn write_key(
    root: &Root,
    host: &Path,
    key_dir: &Path,
    pem: &Secret,
    (uid, gid): (Option<u32>, Option<u32>),
    mode: u32,
    replace: bool,
) -> Result<Written, ApplyError> {
    let problem = check_key_file_mode(mode)
        .or((mode & !0o740 != 0)
            .then_some("given mode bits beyond owner read/write and group read"));
    if let Some(problem) = problem {
        return Err(ApplyError::UnsafeKeyMode {
            path: host.to_path_buf(),
            mode,
            problem,
        });
    }
    let spec = |dir: &Path| {
        if dir.starts_with(key_dir) {
            DirSpec {
                mode: KEY_DIR_MODE,
                uid,
                gid,
            }
        } else {
            DirSpec::PARENT
        }
    };
    let (dir, name, _) = Dir::parent_of(root, host, Some(&spec))?;
    match dir.create_file(&name, pem.expose(), uid, gid, mode, replace) {
        Ok(()) => Ok(Written::Created),
        Err(FsError::Exists { .. }) => Ok(Written::Exists),
        Err(e) => Err(e.into()),
    }
}

/// True when something is at host path `host` (a missing directory on
/// the way means no).
fn key_exists(root: &Root, host: &Path) -> Result<bool, FsError> {
    match Dir::parent_of(root, host, None) {
        Ok((dir, name, _)) => Ok(dir.stat(&name)?.is_some()),
        Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// A key `keys generate` (or bootstrap) looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOutcome {
    /// The owning domain.
    pub domain: String,
    /// The selector.
    pub selector: String,
    /// Host path of the private key.
    pub path: PathBuf,
    /// The key's algorithm.
    pub algorithm: Algorithm,
    /// `Some(bits)` when it was created now, `None` when it existed.
    pub created: Option<u32>,
}

/// Creates every missing private key the configuration names (every one
/// with `force`: their records must then be republished). `progress` is
/// told about each key before it is generated (RSA takes a moment).
pub fn generate_missing(
    config: &Config,
    root: &Root,
    force: bool,
    progress: &mut dyn FnMut(&Domain, &Key),
) -> Result<Vec<KeyOutcome>, ApplyError> {
    let owner = key_owner(config, root);
    let mut out = Vec::new();
    for (domain, key) in owned_keys(config) {
        let outcome = |created| KeyOutcome {
            domain: domain.name.clone(),
            selector: key.selector.clone(),
            path: key.path.clone(),
            algorithm: key.algorithm,
            created,
        };
        let exists = key_exists(root, &key.path)?;
        if exists && !force {
            out.push(outcome(None));
            continue;
        }
        progress(domain, key);
        let pair: KeyPair =
            keys::generate(key.algorithm, key.rsa_bits).map_err(|e| ApplyError::Key {
                path: key.path.clone(),
                source: Box::new(e),
            })?;
        write_key(
            root,
            &key.path,
            &config.service.key_dir,
            &pair.private_pem,
            owner,
            KEY_MODE,
            force,
        )?;
        out.push(outcome(Some(pair.bits)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn secret(text: &str) -> Secret {
        Secret::from(text.to_string())
    }

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("dkimctl-"))
            .collect()
    }

    /// A key at /k/NAME under a temporary root.
    fn write(
        dir: &tempfile::TempDir,
        name: &str,
        pem: &Secret,
        mode: u32,
        replace: bool,
    ) -> Result<Written, ApplyError> {
        let root = Root::new(dir.path());
        write_key(
            &root,
            &Path::new("/k").join(name),
            Path::new("/k"),
            pem,
            (None, None),
            mode,
            replace,
        )
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
                    "apply::keys::tests::write_under_umask_000",
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
        let ra = write(&dir, "a.private", &secret("A"), 0o600, false);
        let rb = write(&dir, "b.private", &secret("B"), 0o640, false);
        fs::write(dir.path().join("k/c.private"), "old").unwrap();
        let rc = write(&dir, "c.private", &secret("C"), 0o600, true);
        umask(old);
        assert_eq!(ra.unwrap(), Written::Created);
        rb.unwrap();
        rc.unwrap();
        let k = dir.path().join("k");
        assert_eq!(mode_of(&k.join("a.private")), 0o600);
        assert_eq!(mode_of(&k.join("b.private")), 0o640);
        assert_eq!(mode_of(&k.join("c.private")), 0o600);
        assert_eq!(mode_of(&k), KEY_DIR_MODE);
        assert_eq!(fs::read_to_string(k.join("c.private")).unwrap(), "C");
        assert!(leftovers(&k).is_empty());
    }

    #[test]
    fn an_existing_key_is_kept_unless_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/sel.private");
        assert_eq!(
            write(&dir, "sel.private", &secret("first"), 0o600, false).unwrap(),
            Written::Created
        );
        assert_eq!(
            write(&dir, "sel.private", &secret("second"), 0o600, false).unwrap(),
            Written::Exists
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");

        // Replacing keeps no temporary file and fixes a too-open old mode.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let before = fs::metadata(&path).unwrap().ino();
        write(&dir, "sel.private", &secret("third"), 0o640, true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "third");
        assert_eq!(mode_of(&path), 0o640);
        assert_ne!(fs::metadata(&path).unwrap().ino(), before, "renamed over");
        assert!(leftovers(&dir.path().join("k")).is_empty());
    }

    #[test]
    fn a_planted_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "keep").unwrap();
        fs::create_dir(dir.path().join("k")).unwrap();
        let link = dir.path().join("k/link.private");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(
            write(&dir, "link.private", &secret("k"), 0o600, false).unwrap(),
            Written::Exists
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
        // Replacing replaces the link itself, the target is left alone.
        write(&dir, "link.private", &secret("k"), 0o600, true).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
        assert!(
            !fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn unsafe_modes_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o604, 0o660, 0o601, 0o4600] {
            let err = write(&dir, "m", &secret("k"), mode, false).unwrap_err();
            assert!(matches!(err, ApplyError::UnsafeKeyMode { .. }), "{mode:o}");
        }
        assert!(!dir.path().join("k").exists());
    }
}
