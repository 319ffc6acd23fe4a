//! Carrying out a rotation step that [`crate::rotate`] decided, and
//! writing dkim.toml (rotation edits, a new file from bootstrap).
//!
//! Order is what keeps mail verifiable at every moment:
//!
//! 1. new private keys (mode 0600, owned by the service user), so that
//!    dkim.toml never names a key file that does not exist;
//! 2. dkim.toml, atomically, keeping its owner and mode; if it cannot be
//!    written the new key files are removed again and nothing changed;
//! 3. the private keys of retired keys archived to `retired/` (0700) or
//!    deleted, only once dkim.toml says they are retired; with `[rotation]
//!    publish_retired`, first copied (0644) into the published directory.
//!
//! It also writes what `dkimctl dns publish` and `rotate --auto` keep
//! between runs ([`write_state`]), and the zone file of `[dns] update =
//! "zonefile"` ([`write_zone_file`], then its reload command).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use super::ApplyError;
use super::keys::{KEY_MODE, Written, write_key};
use super::tree::{Dir, DirSpec};
use crate::config::Source;
use crate::config::model::{Key, PublishRetired, RetiredKeys};
use crate::dns::publish::ZoneFile;
use crate::dns::records::retired_key_file_name;
use crate::dns::state::{DnsState, STATE_PATH};
use crate::host::Root;
use crate::rotate::Step;

/// Mode of the `retired/` archive directory.
const ARCHIVE_DIR_MODE: u32 = 0o700;

/// Why a rotation step was not carried out completely.
#[derive(Debug)]
pub enum RotationError {
    /// Writing the new keys or dkim.toml failed; the new key files were
    /// removed again and nothing changed.
    NothingChanged(ApplyError),
    /// dkim.toml marks the key retired, but its key file could not be
    /// archived or deleted.
    Retire {
        /// Host path of the key file.
        path: PathBuf,
        /// Why.
        source: ApplyError,
    },
}

impl fmt::Display for RotationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotationError::NothingChanged(e) => write!(f, "{e}; nothing was changed"),
            RotationError::Retire { path, .. } => write!(
                f,
                "dkim.toml marks the key retired, but its file {} could not be moved away; fix \
                 the cause and run `--continue` again",
                path.display()
            ),
        }
    }
}

impl std::error::Error for RotationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RotationError::NothingChanged(e) => e.source(),
            RotationError::Retire { source, .. } => Some(source),
        }
    }
}

/// Carries out `step` under `root`; returns, per retired key, what was
/// done with its private key file.
pub fn carry_out(root: &Root, source: &Source, step: &Step) -> Result<Vec<String>, RotationError> {
    let mut written: Vec<&Path> = Vec::new();
    let undo = |written: &[&Path]| {
        for p in written {
            if let Ok((dir, name, _)) = Dir::parent_of(root, p, None) {
                let _ = dir.remove(&name);
            }
        }
    };
    for k in &step.new_keys {
        let result = write_key(
            root,
            &k.path,
            &step.key_dir,
            &k.pair.private_pem,
            step.owner,
            KEY_MODE,
            false,
        )
        .and_then(|w| match w {
            Written::Created => Ok(()),
            Written::Exists => Err(ApplyError::Fs(super::tree::FsError::Exists {
                path: root.join(&k.path),
            })),
        });
        if let Err(e) = result {
            undo(&written);
            return Err(RotationError::NothingChanged(e));
        }
        written.push(&k.path);
    }
    if let Some(text) = &step.config_text
        && let Err(e) = write_config(source, text, false)
    {
        undo(&written);
        return Err(RotationError::NothingChanged(e));
    }
    step.retire
        .iter()
        .map(|k| {
            let err = |source| RotationError::Retire {
                path: k.path.clone(),
                source,
            };
            let published = match &step.publish_retired {
                Some(p) => publish_retired_key(root, k, p).map_err(err)?,
                None => None,
            };
            let done = match still_named(root, &k.path) {
                Some(by) => format!(
                    "its private key {} stays in place while {} still names it (a restart \
                     would fail without it); run `dkimctl apply`, then `dkimctl rotate \
                     --continue` (or the next `rotate --auto`) moves it away",
                    k.path.display(),
                    by.display()
                ),
                None => retire_key_file(root, &k.path, step.retired_keys).map_err(err)?,
            };
            Ok(match published {
                Some(url) => format!("published at {url}; {done}"),
                None => done,
            })
        })
        .collect()
}

/// The files through which a running engine reaches its keys, as
/// rendered: the bundled engine's unit (`LoadCredential=NAME:PATH`) and
/// OpenDKIM's KeyTable (`NAME DOMAIN:SELECTOR:PATH`).
const KEY_NAMING_FILES: &[&str] = &[
    "/etc/systemd/system/dkimctl.service",
    "/etc/opendkim/KeyTable",
];

/// The installed file that still names the key file `key`, if one does:
/// the key must stay until `apply` rewrote it (and restarted or reloaded
/// the engine), or the engine's next start fails (a credential that does
/// not exist) or OpenDKIM tempfails every message for the key.
fn still_named(root: &Root, key: &Path) -> Option<PathBuf> {
    let reader = crate::host::Reader::new(root);
    let wanted = key.to_str()?;
    KEY_NAMING_FILES.iter().map(PathBuf::from).find(|f| {
        reader.read(f).is_ok_and(|text| {
            text.lines().any(|l| {
                let l = l.trim();
                !l.starts_with('#')
                    && l.strip_suffix(wanted)
                        .is_some_and(|before| before.ends_with(':'))
            })
        })
    })
}

/// Copies a retired private key into the published directory (0644: it
/// is meant to be public now, so that old signatures prove nothing).
/// Returns its URL; `None` when the key file is already gone.
fn publish_retired_key(
    root: &Root,
    key: &Key,
    publish: &PublishRetired,
) -> Result<Option<String>, ApplyError> {
    let found = match Dir::parent_of(root, &key.path, None) {
        Ok((dir, name, _)) => dir.read(&name)?,
        Err(super::tree::FsError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            None
        }
        Err(e) => return Err(e.into()),
    };
    let Some((pem, _)) = found else {
        return Ok(None);
    };
    let file = retired_key_file_name(key);
    let dest = publish.dir.join(&file);
    let parents = |_: &Path| DirSpec::PARENT;
    let (dir, name, _) = Dir::parent_of(root, &dest, Some(&parents))?;
    dir.write_atomic(&name, &pem, None, None, 0o644)?;
    Ok(Some(format!("{}{file}", publish.url)))
}

/// Writes the DNS state file (`/var/lib/dkimctl/dns-state.json`, 0644:
/// it holds record values and dates, nothing secret).
pub fn write_state(root: &Root, state: &DnsState) -> Result<(), ApplyError> {
    let parents = |_: &Path| DirSpec::PARENT;
    let (dir, name, _) = Dir::parent_of(root, Path::new(STATE_PATH), Some(&parents))?;
    dir.write_atomic(&name, state.to_text().as_bytes(), None, None, 0o644)?;
    Ok(())
}

/// Why the zone file was not published.
#[derive(Debug)]
pub enum ZoneFileError {
    /// Writing the file failed; the old file is unchanged.
    Write(ApplyError),
    /// The file was written but the reload command failed.
    Reload {
        /// The command line.
        command: String,
        /// Its last line of output and exit status.
        why: String,
    },
}

impl fmt::Display for ZoneFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZoneFileError::Write(e) => write!(f, "{e}"),
            ZoneFileError::Reload { command, why } => {
                write!(f, "the zone file was written but `{command}` failed: {why}")
            }
        }
    }
}

impl std::error::Error for ZoneFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ZoneFileError::Write(e) => e.source(),
            ZoneFileError::Reload { .. } => None,
        }
    }
}

/// Writes the zone file of `[dns] update = "zonefile"` when its text
/// differs (0644, atomically) and runs the reload command when it changed
/// or `reload` asks for it (the server does not serve it yet: an earlier
/// reload failed). The command runs under a sandbox root too: the DNS
/// server is not part of the managed tree. Returns whether the file
/// changed.
pub fn write_zone_file(root: &Root, zone: &ZoneFile, reload: bool) -> Result<bool, ZoneFileError> {
    let parents = |_: &Path| DirSpec::PARENT;
    let write = || -> Result<bool, ApplyError> {
        let (dir, name, _) = Dir::parent_of(root, &zone.path, Some(&parents))?;
        if let Some((old, _)) = dir.read(&name)?
            && old == zone.text.as_bytes()
        {
            return Ok(false);
        }
        dir.write_atomic(&name, zone.text.as_bytes(), None, None, 0o644)?;
        Ok(true)
    };
    let changed = write().map_err(ZoneFileError::Write)?;
    if (changed || reload) && !zone.reload.is_empty() {
        super::reload::run_command(&zone.reload).map_err(|why| ZoneFileError::Reload {
            command: zone.reload.join(" "),
            why,
        })?;
    }
    Ok(changed)
}

/// Archives or deletes a retired key's private key file; says what was
/// done.
fn retire_key_file(root: &Root, key: &Path, how: RetiredKeys) -> Result<String, ApplyError> {
    let (dir, name, _) = match Dir::parent_of(root, key, None) {
        Ok(found) => found,
        Err(super::tree::FsError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(format!("its private key {} is already gone", key.display()));
        }
        Err(e) => return Err(e.into()),
    };
    if dir.stat(&name)?.is_none() {
        return Ok(format!("its private key {} is already gone", key.display()));
    }
    match how {
        RetiredKeys::Delete => {
            dir.remove(&name)?;
            Ok(format!("its private key {} was deleted", key.display()))
        }
        RetiredKeys::Archive => {
            let archive = key.with_file_name("retired");
            let (archive_dir, _) = Dir::open(
                root,
                &archive,
                Some(&|_| DirSpec {
                    mode: ARCHIVE_DIR_MODE,
                    uid: None,
                    gid: None,
                }),
            )?;
            // An existing archive is tightened too (it holds old keys).
            dir.set_owner_mode(
                std::ffi::OsStr::new("retired"),
                true,
                None,
                None,
                Some(ARCHIVE_DIR_MODE),
                false,
            )?;
            let mut dest = name.clone();
            let mut n = 1;
            while archive_dir.stat(&dest)?.is_some() {
                let mut next = OsString::from(&name);
                next.push(format!(".{n}"));
                dest = next;
                n += 1;
            }
            dir.rename(&name, &archive_dir, &dest)?;
            Ok(format!(
                "its private key was archived to {}",
                archive.join(&dest).display()
            ))
        }
    }
}

/// Writes dkim.toml atomically: an existing file keeps its owner and mode;
/// a new one (`create`, bootstrap) is 0644. The file is reached from `/`
/// (it may lie outside `--root` when named with `--config`), through
/// [`Dir`] like every other write.
pub fn write_config(source: &Source, text: &str, create: bool) -> Result<(), ApplyError> {
    let real = std::path::absolute(&source.real).unwrap_or_else(|_| source.real.clone());
    let slash = Root::new("/");
    let parents = |_: &Path| DirSpec::PARENT;
    let (dir, name, _) = Dir::parent_of(&slash, &real, create.then_some(&parents as _))?;
    let (uid, gid, mode) = match dir.stat(&name)? {
        Some(st) => {
            // Only ask for an owner change when it is one: an unprivileged
            // user editing their own file cannot chown, and need not.
            let uid = (st.st_uid != nix::unistd::geteuid().as_raw()).then_some(st.st_uid);
            let gid = (st.st_gid != nix::unistd::getegid().as_raw()).then_some(st.st_gid);
            (uid, gid, st.st_mode & 0o7777)
        }
        None if create => (None, None, 0o644),
        None => {
            return Err(ApplyError::Fs(super::tree::FsError::Io {
                op: format!("write {}", real.display()),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }));
        }
    };
    dir.write_atomic(&name, text.as_bytes(), uid, gid, mode)?;
    Ok(())
}
