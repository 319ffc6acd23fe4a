//! Carrying out a [`Plan`]: accounts, directories, files, keys, owners and
//! modes, then reloads. The only module that writes to the system.
//!
//! Order matters, and each step prepares the next:
//!
//! 1. **Accounts** from the sysusers.d artifact, so that the milter's user
//!    and group exist before anything is chowned to them.
//! 2. **Directories**, parents first, born with mode 0700 and then given
//!    their final owner and mode: never wider than the final mode.
//! 3. **Files**, each replaced atomically ([`tree::Dir::write_atomic`]) after
//!    the old content is saved under `/var/backups/dkimctl/`.
//! 4. **Private keys** that are missing, generated and written by
//!    [`crate::keys`] with their final owner and mode from the first byte.
//!    Existing keys are never touched here, beyond owner and mode.
//! 5. **Owner and mode fixes** of paths whose content is right, without
//!    following symbolic links.
//! 6. **Reloads**, on the live system with `reload` set; otherwise the
//!    report says what the admin must run.
//!
//! An error in steps 1-5 stops the apply (every file written so far is
//! complete, old or new). A failing reload does not stop the other
//! reloads; it makes the result an error once all of them ran.

pub mod accounts;
pub mod keys;
mod reload;
pub mod rotation;
pub mod tree;

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::host::Root;
use crate::host::accounts::{Accounts, LoadError};
use crate::plan::accounts::SysusersError;
use crate::plan::{self, Action, Change, Plan, mode_string};
use crate::render::artifact::{Artifact, ArtifactKind, Reload};
use tree::{Dir, DirSpec};

/// How [`apply`] runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Run the reload commands (only ever on the live root `/`).
    pub reload: bool,
    /// The milter's units, restarted or reloaded in this order (e.g.
    /// `["dkimctl.service"]` or `["opendkim.service"]`).
    pub engine_units: Vec<String>,
    /// Postfix configuration directory for `postfix -c DIR reload`.
    pub postfix_config_dir: Option<PathBuf>,
    /// The milter's address as the MTA reaches it (`unix:/real/path`,
    /// `inet:HOST:PORT`): apply waits until it answers before pointing the
    /// MTA at it.
    pub probe: Option<String>,
    /// Never restart the engine, reload it (`rotate --auto`: a new key is
    /// read from its file; a changed unit takes effect at the next
    /// restart).
    pub reload_only: bool,
}

/// Why an apply failed.
#[derive(Debug)]
pub enum ApplyError {
    /// Users or groups could not be read.
    Accounts(LoadError),
    /// The accounts the sysusers.d artifact asks for cannot be created.
    Sysusers(SysusersError),
    /// An owner or group does not exist (and no sysusers.d file made it).
    UnknownAccount {
        /// `user` or `group`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The host path that needs it.
        path: PathBuf,
    },
    /// A file-system step failed (or was refused: a planted link, a
    /// hard-linked key).
    Fs(tree::FsError),
    /// A private key would be written with a mode that exposes it.
    UnsafeKeyMode {
        /// Host path of the key.
        path: PathBuf,
        /// The mode asked for.
        mode: u32,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A private key could not be generated or written.
    Key {
        /// The host path of the key.
        path: PathBuf,
        /// The cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Everything was written, but reload commands failed; the report
    /// says which.
    Reloads(Box<ApplyReport>),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Accounts(e) => write!(f, "{e}"),
            ApplyError::Sysusers(e) => write!(f, "{e}"),
            ApplyError::UnknownAccount { kind, name, path } => write!(
                f,
                "{kind} {name} (owner of {}) does not exist",
                path.display()
            ),
            ApplyError::Fs(e) => write!(f, "{e}"),
            ApplyError::UnsafeKeyMode {
                path,
                mode,
                problem,
            } => write!(
                f,
                "refusing to write {} with mode {mode:04o}: the key would be {problem}",
                path.display()
            ),
            ApplyError::Key { path, .. } => {
                write!(f, "failed to create private key {}", path.display())
            }
            ApplyError::Reloads(report) => {
                let failed: Vec<&str> = report
                    .reloads
                    .iter()
                    .filter(|r| !r.ok)
                    .map(|r| r.command.as_str())
                    .collect();
                write!(
                    f,
                    "changes were written but {} reload command{} failed: {}",
                    failed.len(),
                    if failed.len() == 1 { "" } else { "s" },
                    failed.join("; ")
                )
            }
        }
    }
}

impl std::error::Error for ApplyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApplyError::Accounts(e) => Some(e),
            ApplyError::Fs(e) => e.source(),
            ApplyError::Key { source, .. } => Some(source.as_ref()),
            ApplyError::UnknownAccount { .. }
            | ApplyError::Sysusers(_)
            | ApplyError::UnsafeKeyMode { .. }
            | ApplyError::Reloads(_) => None,
        }
    }
}

impl From<tree::FsError> for ApplyError {
    fn from(e: tree::FsError) -> Self {
        ApplyError::Fs(e)
    }
}

impl From<SysusersError> for ApplyError {
    fn from(e: SysusersError) -> Self {
        ApplyError::Sysusers(e)
    }
}

impl From<LoadError> for ApplyError {
    fn from(e: LoadError) -> Self {
        ApplyError::Accounts(e)
    }
}

/// What apply did to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// Created a directory.
    CreateDir,
    /// Wrote a file (created or replaced).
    Write,
    /// Saved the previous content of a file.
    Backup,
    /// Generated a private key.
    CreateKey,
    /// Changed owner and/or mode.
    Metadata,
    /// Removed a file rendered for a replaced engine.
    Remove,
}

impl StepKind {
    /// The word in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::CreateDir => "mkdir",
            StepKind::Write => "write",
            StepKind::Backup => "backup",
            StepKind::CreateKey => "key",
            StepKind::Metadata => "fix",
            StepKind::Remove => "remove",
        }
    }
}

/// One thing apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What.
    pub kind: StepKind,
    /// Host path.
    pub path: PathBuf,
    /// Mode, owner or other detail.
    pub detail: String,
}

/// One reload command that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// The command line.
    pub command: String,
    /// It succeeded.
    pub ok: bool,
    /// Why it failed.
    pub message: Option<String>,
}

/// What apply did, and what is left for the admin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Accounts created, one line each.
    pub accounts: Vec<String>,
    /// Paths written, created or fixed, in order.
    pub steps: Vec<Step>,
    /// Reload commands that ran.
    pub reloads: Vec<ReloadOutcome>,
    /// Commands the admin must run (`run: systemctl daemon-reload && ...`)
    /// because reloads were not run here.
    pub needed: Vec<String>,
}

impl ApplyReport {
    /// True when every reload that ran succeeded.
    pub fn ok(&self) -> bool {
        self.reloads.iter().all(|r| r.ok)
    }

    /// True when apply changed nothing.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.steps.is_empty() && self.reloads.is_empty()
    }

    /// Prints the report for people, one line per action.
    pub fn print(&self, out: &mut dyn Write) -> io::Result<()> {
        for a in &self.accounts {
            writeln!(out, "{:<10}{a}", "account")?;
        }
        for s in &self.steps {
            if s.detail.is_empty() {
                writeln!(out, "{:<10}{}", s.kind.as_str(), s.path.display())?;
            } else {
                writeln!(
                    out,
                    "{:<10}{}  {}",
                    s.kind.as_str(),
                    s.path.display(),
                    s.detail
                )?;
            }
        }
        for r in &self.reloads {
            match &r.message {
                None => writeln!(out, "{:<10}{}", "ran", r.command)?,
                Some(m) => writeln!(out, "{:<10}{}: {m}", "failed", r.command)?,
            }
        }
        for n in &self.needed {
            writeln!(out, "{n}")?;
        }
        if self.is_empty() && self.needed.is_empty() {
            writeln!(out, "nothing to do")?;
        }
        Ok(())
    }

    /// The JSON form: `{"accounts": [...], "steps": [{"action", "path",
    /// "detail"}], "reloads": [{"command", "ok", "message"}], "needed":
    /// [...], "ok": bool}`.
    pub fn to_json(&self) -> Value {
        json!({
            "accounts": self.accounts,
            "steps": self.steps.iter().map(|s| json!({
                "action": s.kind.as_str(),
                "path": s.path.display().to_string(),
                "detail": s.detail,
            })).collect::<Vec<_>>(),
            "reloads": self.reloads.iter().map(ReloadOutcome::to_json).collect::<Vec<_>>(),
            "needed": self.needed,
            "ok": self.ok(),
        })
    }
}

/// Applies `plan` to the tree under `root`.
pub fn apply(plan: &Plan, root: &Root, opts: &ApplyOptions) -> Result<ApplyReport, ApplyError> {
    apply_as(plan, root, opts, nix::unistd::geteuid().is_root())
}

/// Where old versions of replaced files go.
const BACKUP_DIR: &str = "/var/backups/dkimctl";

/// [`apply`] with the effective user's rootness given: only root chowns.
pub(crate) fn apply_as(
    plan: &Plan,
    root: &Root,
    opts: &ApplyOptions,
    as_root: bool,
) -> Result<ApplyReport, ApplyError> {
    let mut report = ApplyReport::default();
    if !plan.has_changes() {
        return Ok(report);
    }

    // (1) Accounts.
    let entries = plan::sysusers_entries(plan.changes.iter().map(|c| &c.artifact));
    if !entries.is_empty() {
        report.accounts = accounts::apply_sysusers_as(root, &entries, as_root)?;
    }
    let ids = Ids {
        accounts: crate::host::accounts::load(root)?,
        as_root,
    };

    // (2) Directories, parents first (the plan is in path order).
    for c in &plan.changes {
        if c.action == Action::Create && matches!(c.artifact.kind, ArtifactKind::Directory) {
            let (dir, name) = parent(root, c, &mut report)?;
            let (uid, gid) = ids.of(&c.artifact)?;
            dir.make_dir(
                &name,
                DirSpec {
                    mode: c.artifact.mode,
                    uid,
                    gid,
                },
            )?;
            report.steps.push(step(StepKind::CreateDir, c, as_root));
        }
    }

    // (3) Files, except the MTA's: it is pointed at the engine only once
    // the engine answers (below).
    let live = opts.reload && root.is_live();
    let mta_file = |c: &Change| matches!(c.artifact.reload, Reload::Postfix | Reload::Sendmail);
    write_files(plan, root, &ids, &mut report, |c| !(live && mta_file(c)))?;

    // (4) Missing private keys.
    for c in &plan.changes {
        if c.action == Action::Create && c.secret() {
            let (dir, _) = parent(root, c, &mut report)?;
            drop(dir);
            let (uid, gid) = ids.of(&c.artifact)?;
            let mut s = step(StepKind::CreateKey, c, as_root);
            if let Some(from) = &c.copy_from {
                s.detail = format!("copied from {}, {}", from.display(), s.detail);
            }
            if !create_key(root, c, uid, gid)? {
                s.detail = "already exists; left as it is".into();
            }
            report.steps.push(s);
        }
    }

    // (5) Owner and mode of paths whose content stays.
    for c in &plan.changes {
        if c.action != Action::Metadata {
            continue;
        }
        let (uid, gid) = if c.owner.is_some() {
            ids.of(&c.artifact)?
        } else {
            (None, None)
        };
        let mode = c.mode.map(|m| m.to);
        let is_dir = matches!(c.artifact.kind, ArtifactKind::Directory);
        let (dir, name) = parent(root, c, &mut report)?;
        dir.set_owner_mode(&name, is_dir, uid, gid, mode, c.secret())?;
        let mut detail = Vec::new();
        if let Some(o) = &c.owner {
            detail.push(format!("owner {}", o.to));
        }
        if let Some(m) = mode {
            detail.push(format!("mode {}", mode_string(m)));
        }
        report.steps.push(Step {
            kind: StepKind::Metadata,
            path: c.host_path().to_path_buf(),
            detail: detail.join(", "),
        });
    }

    // (6) Services, make before break: the engine (re)started and
    // answering, then the MTA's files and reload, then the replaced engine
    // stopped.
    let created_units: BTreeSet<String> = plan
        .changes
        .iter()
        .filter(|c| {
            c.action == Action::Create
                && matches!(c.artifact.reload, Reload::Units | Reload::Timers)
        })
        .filter_map(|c| c.host_path().file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let sendmail_mc = plan
        .changes
        .iter()
        .find(|c| matches!(c.artifact.kind, ArtifactKind::SendmailMc(_)))
        .map(|c| c.host_path());
    let sendmail = reload::Sendmail::on(root, sendmail_mc);
    let mut seq = reload::sequence(
        &plan.reloads(),
        &created_units,
        &plan.pending,
        opts,
        &sendmail,
    );
    let removes_units = plan
        .changes
        .iter()
        .any(|c| c.action == Action::Remove && c.artifact.reload == Reload::Units);
    if removes_units {
        seq.after.push(reload::Step::Run(vec![
            "systemctl".into(),
            "daemon-reload".into(),
        ]));
    }
    if !live {
        remove_files(plan, root, &mut report)?;
        if let Some(line) = reload::needed_line(&seq) {
            report.needed.push(line);
        }
        return Ok(report);
    }
    report.reloads = reload::execute(&seq.engine, root);
    if report.ok() {
        write_files(plan, root, &ids, &mut report, mta_file)?;
        report.reloads.extend(reload::execute(&seq.mta, root));
        // The replaced engine stops first, then its files go.
        let (stop, reload_units): (Vec<_>, Vec<_>) = seq
            .after
            .iter()
            .cloned()
            .partition(|s| s.display() != "systemctl daemon-reload");
        report.reloads.extend(reload::execute(&stop, root));
        remove_files(plan, root, &mut report)?;
        report.reloads.extend(reload::execute(&reload_units, root));
    } else {
        let why = "skipped: the engine does not answer, so the MTA keeps its current milter";
        for step in seq.mta.iter().chain(&seq.after) {
            report.reloads.push(ReloadOutcome {
                command: step.display(),
                ok: false,
                message: Some(why.to_string()),
            });
        }
    }
    remember_failures(root, &seq, &report);
    if !report.ok() {
        return Err(ApplyError::Reloads(Box::new(report)));
    }
    Ok(report)
}

/// Writes the files among the plan's changes that `which` selects, each
/// replaced atomically after its old content is saved.
fn write_files(
    plan: &Plan,
    root: &Root,
    ids: &Ids,
    report: &mut ApplyReport,
    which: impl Fn(&Change) -> bool,
) -> Result<(), ApplyError> {
    for c in plan.changes.iter().filter(|c| which(c)) {
        let Some(content) = &c.content else {
            continue;
        };
        let (dir, name) = parent(root, c, report)?;
        if c.action == Action::Update {
            backup(root, c, &dir, &name, report)?;
        }
        let (uid, gid) = ids.of(&c.artifact)?;
        dir.write_atomic(&name, content, uid, gid, c.artifact.mode)?;
        report.steps.push(step(StepKind::Write, c, ids.as_root));
    }
    Ok(())
}

/// Removes the files of a replaced engine ([`Action::Remove`]), each saved
/// under the backup directory first.
fn remove_files(plan: &Plan, root: &Root, report: &mut ApplyReport) -> Result<(), ApplyError> {
    for c in plan.changes.iter().filter(|c| c.action == Action::Remove) {
        let (dir, name) = parent(root, c, report)?;
        backup(root, c, &dir, &name, report)?;
        dir.remove(&name)?;
        report.steps.push(Step {
            kind: StepKind::Remove,
            path: c.host_path().to_path_buf(),
            detail: "rendered for the engine dkim.toml no longer uses".into(),
        });
    }
    Ok(())
}

/// Records the MTA and unit reloads that failed (or were skipped) in
/// [`plan::live::FAILED_RELOADS`], so the next plan retries them; removes
/// the record when nothing failed. Best effort: the report already says
/// what failed.
fn remember_failures(root: &Root, seq: &reload::Sequence, report: &ApplyReport) {
    let failed: BTreeSet<&str> = seq
        .all()
        .filter(|s| {
            report
                .reloads
                .iter()
                .any(|r| r.command == s.display() && !r.ok)
        })
        .filter_map(reload::Step::reload_kind)
        .map(plan::reload_name)
        .collect();
    let path = Path::new(plan::live::FAILED_RELOADS);
    let Ok((dir, name, _)) = Dir::parent_of(root, path, None) else {
        return;
    };
    let result = if failed.is_empty() {
        dir.remove(&name)
    } else {
        let text: String = failed.iter().map(|f| format!("{f}\n")).collect();
        dir.write_atomic(&name, text.as_bytes(), None, None, 0o644)
    };
    if let Err(e) = result {
        tracing::warn!("cannot record the failed reloads: {e}");
    }
}

/// Owner and group names resolved after accounts were created.
struct Ids {
    accounts: Accounts,
    as_root: bool,
}

impl Ids {
    /// The uid and gid for an artifact; `(None, None)` when not root (the
    /// files then belong to whoever runs dkimctl, as the plan said).
    fn of(&self, a: &Artifact) -> Result<(Option<u32>, Option<u32>), ApplyError> {
        if !self.as_root {
            return Ok((None, None));
        }
        let unknown = |kind, name: &str| ApplyError::UnknownAccount {
            kind,
            name: name.to_string(),
            path: a.path.clone(),
        };
        let uid = match self.accounts.user(&a.owner) {
            Some(u) => u.uid,
            None if a.owner == "root" => 0,
            None => return Err(unknown("user", &a.owner)),
        };
        let gid = match self.accounts.group(&a.group) {
            Some(g) => g.gid,
            None if a.group == "root" => 0,
            None => return Err(unknown("group", &a.group)),
        };
        Ok((Some(uid), Some(gid)))
    }
}

fn step(kind: StepKind, c: &Change, as_root: bool) -> Step {
    let mut detail = format!("mode {}", mode_string(c.artifact.mode));
    if as_root {
        detail.push_str(&format!(
            ", owner {}:{}",
            c.artifact.owner, c.artifact.group
        ));
    }
    Step {
        kind,
        path: c.host_path().to_path_buf(),
        detail,
    }
}

/// The directory that holds a change's path, opened below the root with
/// [`Dir`] (no planted link followed); missing parents are created 0755,
/// as `mkdir -p` would, and reported. Directories that are artifacts
/// themselves were created with their own mode in step 2.
fn parent(
    root: &Root,
    c: &Change,
    report: &mut ApplyReport,
) -> Result<(Dir, std::ffi::OsString), ApplyError> {
    let (dir, name, created) = Dir::parent_of(root, c.host_path(), Some(&|_| DirSpec::PARENT))?;
    for path in created {
        report.steps.push(Step {
            kind: StepKind::CreateDir,
            path,
            detail: "mode 0755 (parent)".into(),
        });
    }
    Ok((dir, name))
}

/// Saves the current content of a file about to be replaced as
/// `ROOT/var/backups/dkimctl/<host path>` (directories 0700 below
/// /var/backups, the file with its old mode), atomically. Keys are never
/// backed up (they are never replaced).
fn backup(
    root: &Root,
    c: &Change,
    dir: &Dir,
    name: &std::ffi::OsStr,
    report: &mut ApplyReport,
) -> Result<(), ApplyError> {
    if c.secret() {
        return Ok(());
    }
    // Gone since the plan: nothing to save.
    let Some((old, st)) = dir.read(name)? else {
        return Ok(());
    };
    let target =
        Path::new(BACKUP_DIR).join(c.host_path().strip_prefix("/").unwrap_or(c.host_path()));
    let backups = Path::new(BACKUP_DIR);
    // /var and /var/backups as usual; our own tree private to root.
    let spec = |p: &Path| {
        if p.starts_with(backups) {
            DirSpec {
                mode: 0o700,
                uid: None,
                gid: None,
            }
        } else {
            DirSpec::PARENT
        }
    };
    let (bdir, bname, created) = Dir::parent_of(root, &target, Some(&spec))?;
    for path in created.into_iter().filter(|p| !p.starts_with(backups)) {
        report.steps.push(Step {
            kind: StepKind::CreateDir,
            path,
            detail: "mode 0755 (parent)".into(),
        });
    }
    bdir.write_atomic(&bname, &old, None, None, st.st_mode & 0o7777)?;
    report.steps.push(Step {
        kind: StepKind::Backup,
        path: c.host_path().to_path_buf(),
        detail: format!("to {BACKUP_DIR}{}", c.host_path().display()),
    });
    Ok(())
}

/// Generates and writes a missing private key with its final owner and
/// mode. Returns false when a key appeared there since the plan (it is
/// left as it is: keys are never overwritten).
fn create_key(
    root: &Root,
    c: &Change,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<bool, ApplyError> {
    let ArtifactKind::PrivateKey {
        algorithm,
        rsa_bits,
        ..
    } = c.artifact.kind
    else {
        return Ok(true);
    };
    let pem = match &c.copy_from {
        Some(from) => keys::read_key(root, from, algorithm)?,
        None => {
            crate::keys::generate(algorithm, rsa_bits)
                .map_err(|e| ApplyError::Key {
                    path: c.host_path().to_path_buf(),
                    source: Box::new(e),
                })?
                .private_pem
        }
    };
    let key_dir = c.host_path().parent().unwrap_or(Path::new("/"));
    let written = keys::write_key(
        root,
        c.host_path(),
        key_dir,
        &pem,
        (uid, gid),
        c.artifact.mode,
        false,
    )?;
    Ok(written == keys::Written::Created)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use super::*;
    use crate::config::model::Algorithm;
    use crate::plan::plan_as;
    use crate::render::artifact::PostfixMainEdit;

    fn art(path: &str, kind: ArtifactKind, owner: &str, mode: u32, reload: Reload) -> Artifact {
        Artifact {
            path: PathBuf::from(path),
            kind,
            owner: owner.into(),
            group: owner.into(),
            mode,
            reload,
        }
    }

    fn artifacts() -> Vec<Artifact> {
        vec![
            art(
                "/etc/sysusers.d/dkimctl.conf",
                ArtifactKind::File(b"u dkimctl - \"DKIM milter\" /var/lib/dkimctl -\n".to_vec()),
                "root",
                0o644,
                Reload::None,
            ),
            art(
                "/etc/dkimctl",
                ArtifactKind::Directory,
                "root",
                0o755,
                Reload::None,
            ),
            art(
                "/etc/dkimctl/keys",
                ArtifactKind::Directory,
                "dkimctl",
                0o750,
                Reload::None,
            ),
            art(
                "/etc/dkimctl/keys/sel.private",
                ArtifactKind::PrivateKey {
                    algorithm: Algorithm::Ed25519Sha256,
                    rsa_bits: 2048,
                    reuse: Vec::new(),
                },
                "dkimctl",
                0o600,
                Reload::Engine,
            ),
            art(
                "/etc/dkimctl/engine.conf",
                ArtifactKind::File(b"socket = unix:/run/dkimctl/milter.sock\nmode = sv\n".to_vec()),
                "root",
                0o644,
                Reload::Engine,
            ),
            art(
                "/etc/systemd/system/dkimctl.service",
                ArtifactKind::File(b"[Service]\nExecStart=/usr/bin/dkimctl serve\n".to_vec()),
                "root",
                0o644,
                Reload::Units,
            ),
            art(
                "/etc/postfix/main.cf",
                ArtifactKind::PostfixMain(PostfixMainEdit {
                    set: vec![("milter_protocol".into(), "6".into())],
                    milter_lists: vec!["smtpd_milters".into(), "non_smtpd_milters".into()],
                    milter: "unix:/dkimctl/milter.sock".into(),
                    queue_directory: "/var/spool/postfix".into(),
                    chroot: true,
                }),
                "root",
                0o644,
                Reload::Postfix,
            ),
        ]
    }

    fn opts() -> ApplyOptions {
        ApplyOptions {
            reload: true,
            engine_units: vec!["dkimctl.service".into()],
            postfix_config_dir: None,
            probe: None,
            reload_only: false,
        }
    }

    fn root() -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().expect("tmp");
        let r = Root::new(d.path());
        (d, r)
    }

    fn read(path: &Path) -> Vec<u8> {
        fs::read(path).expect("read")
    }

    fn mode_of(p: &Path) -> u32 {
        fs::symlink_metadata(p).expect("stat").mode() & 0o7777
    }

    /// Plan, apply, plan again, as root and as a normal user would.
    fn round_trip(as_root: bool) {
        let (_d, root) = root();
        let arts = artifacts();
        let p = plan_as(&arts, &root, as_root).expect("plan");
        assert!(p.changes.iter().all(|c| c.action == Action::Create));
        let report = apply_as(&p, &root, &opts(), as_root).expect("apply");
        assert_eq!(
            report.needed,
            vec![
                "run: systemctl daemon-reload && systemctl enable dkimctl.service && systemctl restart dkimctl.service && postfix reload"
            ]
        );
        assert!(report.reloads.is_empty(), "sandbox roots never reload");
        assert_eq!(report.accounts.len(), 2, "{:?}", report.accounts);

        let j = |h: &str| root.join(Path::new(h));
        assert_eq!(mode_of(&j("/etc/dkimctl/keys")), 0o750);
        assert_eq!(mode_of(&j("/etc/dkimctl/keys/sel.private")), 0o600);
        assert_eq!(mode_of(&j("/etc/dkimctl/engine.conf")), 0o644);
        let key = read(&j("/etc/dkimctl/keys/sel.private"));
        assert!(key.starts_with(b"-----BEGIN PRIVATE KEY-----"));
        assert_eq!(
            read(&j("/etc/postfix/main.cf")),
            b"milter_protocol = 6\n\
              # dkimctl: DKIM milter is unix:/dkimctl/milter.sock\n\
              smtpd_milters = unix:/dkimctl/milter.sock\n\
              non_smtpd_milters = unix:/dkimctl/milter.sock\n"
        );
        if as_root {
            let m = fs::metadata(j("/etc/dkimctl/keys/sel.private")).expect("stat");
            assert_eq!((m.uid(), m.gid()), (999, 999));
            let m = fs::metadata(j("/etc/dkimctl/keys")).expect("stat");
            assert_eq!((m.uid(), m.gid()), (999, 999));
        }

        // Nothing left to do; the key is untouched.
        let again = plan_as(&arts, &root, as_root).expect("plan again");
        assert!(!again.has_changes(), "{:#?}", again.to_json());
        assert_eq!(again.summary().unchanged, arts.len());
        let report = apply_as(&again, &root, &opts(), as_root).expect("apply again");
        assert!(report.is_empty() && report.needed.is_empty());
        assert_eq!(read(&j("/etc/dkimctl/keys/sel.private")), key);

        // A hand-made mode change shows up, and apply fixes only that.
        fs::set_permissions(
            j("/etc/dkimctl/engine.conf"),
            fs::Permissions::from_mode(0o666),
        )
        .expect("chmod");
        let drift = plan_as(&arts, &root, as_root).expect("plan drift");
        let c = drift
            .changes
            .iter()
            .find(|c| c.host_path() == Path::new("/etc/dkimctl/engine.conf"))
            .expect("engine.conf");
        assert_eq!(c.action, Action::Metadata);
        let mut out = Vec::new();
        drift.print(&mut out, false).expect("print");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("mode      /etc/dkimctl/engine.conf  mode 0666 -> 0644\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "Plan: 0 to create, 0 to update, 1 to change owner/mode, 6 unchanged.\n"
            )
        );
        let report = apply_as(&drift, &root, &opts(), as_root).expect("fix");
        assert_eq!(report.steps.len(), 1);
        assert_eq!(report.needed, vec!["run: systemctl reload dkimctl.service"]);
        assert_eq!(mode_of(&j("/etc/dkimctl/engine.conf")), 0o644);

        // A content change is backed up first; a socket change restarts.
        let mut arts2 = arts.clone();
        arts2[4].kind = ArtifactKind::File(b"socket = inet:127.0.0.1:8891\nmode = sv\n".to_vec());
        let upd = plan_as(&arts2, &root, as_root).expect("plan update");
        assert_eq!(upd.reloads(), BTreeSet::from([Reload::RestartEngine]));
        let report = apply_as(&upd, &root, &opts(), as_root).expect("update");
        assert_eq!(
            report.needed,
            vec!["run: systemctl restart dkimctl.service"]
        );
        assert_eq!(
            read(&j("/var/backups/dkimctl/etc/dkimctl/engine.conf")),
            b"socket = unix:/run/dkimctl/milter.sock\nmode = sv\n"
        );
        assert_eq!(mode_of(&j("/var/backups/dkimctl")), 0o700);
        assert_eq!(
            mode_of(&j("/var/backups/dkimctl/etc/dkimctl/engine.conf")),
            0o644
        );
        let json = report.to_json();
        let actions: Vec<&str> = json["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| s["action"].as_str())
            .collect();
        // /var and /var/backups are made for the backup, then the file is
        // saved and replaced.
        assert_eq!(actions, vec!["mkdir", "mkdir", "backup", "write"]);
        assert_eq!(
            json["steps"][2]["detail"],
            "to /var/backups/dkimctl/etc/dkimctl/engine.conf"
        );
        assert_eq!(json["ok"], true);
    }

    #[test]
    fn plan_apply_plan_as_root() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to chown");
            return;
        }
        round_trip(true);
    }

    #[test]
    fn plan_apply_plan_unprivileged() {
        round_trip(false);
    }

    #[test]
    fn symlink_in_place_of_a_file_is_refused_and_nothing_written() {
        let (_d, root) = root();
        let etc = root.join(Path::new("/etc/dkimctl"));
        fs::create_dir_all(&etc).expect("mkdir");
        let outside = root.dir().join("outside");
        fs::write(&outside, "precious\n").expect("w");
        symlink(&outside, etc.join("engine.conf")).expect("symlink");
        let e = plan_as(&artifacts(), &root, false).expect_err("symlink");
        assert!(
            e.to_string().contains("engine.conf is a symbolic link"),
            "{e}"
        );
        assert_eq!(read(&outside), b"precious\n");
        assert!(!root.join(Path::new("/etc/passwd")).exists());
        assert!(!root.join(Path::new("/etc/dkimctl/keys")).exists());
    }

    #[test]
    fn metadata_fix_does_not_follow_a_swapped_in_symlink() {
        let (_d, root) = root();
        let target = root.dir().join("target");
        fs::write(&target, "x").expect("w");
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).expect("chmod");
        let link = root.dir().join("link");
        symlink(&target, &link).expect("symlink");
        let (dir, name, _) = Dir::parent_of(&root, Path::new("/link"), None).expect("dir");
        let e = dir
            .set_owner_mode(&name, false, None, None, Some(0o666), true)
            .expect_err("link");
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(mode_of(&target), 0o600);
    }

    #[test]
    fn reload_failure_report_message() {
        let report = ApplyReport {
            reloads: vec![
                ReloadOutcome {
                    command: "systemctl daemon-reload".into(),
                    ok: true,
                    message: None,
                },
                ReloadOutcome {
                    command: "postfix reload".into(),
                    ok: false,
                    message: Some("postfix: fatal (exit status: 1)".into()),
                },
            ],
            ..ApplyReport::default()
        };
        let e = ApplyError::Reloads(Box::new(report.clone()));
        assert_eq!(
            e.to_string(),
            "changes were written but 1 reload command failed: postfix reload"
        );
        let mut out = Vec::new();
        report.print(&mut out).expect("print");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "ran       systemctl daemon-reload\nfailed    postfix reload: postfix: fatal (exit status: 1)\n"
        );
    }
}
