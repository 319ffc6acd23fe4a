//! Artifacts + what is on disk under the root -> a [`Plan`] of changes.
//!
//! For every artifact `plan` looks at its real path (never following a
//! symbolic link), computes the content it must have (whole files as
//! rendered; for main.cf, master.cf and sendmail.mc the admin's file with
//! our settings merged in) and compares content, owner, group and mode.
//! It never writes: `plan` is the dry run, and [`crate::apply`] carries
//! the result out.
//!
//! Private keys are never read: a key that exists is compared by owner and
//! mode only, and no diff of a secret is ever made.
//!
//! Ownership is compared only when running as root, since nobody else can
//! chown; the plan then says so once.

pub mod accounts;
mod change;
mod diff;
pub mod live;

use self::accounts as accounts_plan;

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

pub use crate::formats::postfix::MARKER_PREFIX;
pub use crate::host::inspect::Current;
pub use change::{Action, Change, ModeChange, OwnerChange, mode_string, reload_name};

use crate::formats::sysusers::{SysusersEntry, parse_sysusers};
use crate::formats::{postfix, sendmail};
use crate::host::Root;
use crate::host::accounts::{Accounts, LoadError};
use crate::host::inspect::{self, InspectError, Want};
use crate::render::artifact::{Artifact, ArtifactKind, Reload};
use accounts_plan::{SysusersChanges, SysusersError, resolve_sysusers};

/// Why a plan could not be made.
#[derive(Debug)]
pub enum PlanError {
    /// A managed path could not be inspected or read, or holds a link or
    /// the wrong type of file.
    Host(InspectError),
    /// master.cf lacks a service the configuration names.
    MissingService {
        /// master.cf's real path.
        path: PathBuf,
        /// The service.
        service: String,
    },
    /// A file that dkimctl edits (but does not create) is missing.
    MissingFile {
        /// The real path.
        path: PathBuf,
        /// Which file it is (`master.cf`, `sendmail.mc`).
        what: &'static str,
    },
    /// Two artifacts have the same path.
    DuplicatePath {
        /// The host path.
        path: PathBuf,
    },
    /// A user or group that neither exists nor is created by the
    /// sysusers.d artifact.
    UnknownAccount {
        /// `user` or `group`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The artifact that names it (host path).
        path: PathBuf,
    },
    /// Reading users and groups failed.
    Accounts(LoadError),
    /// The accounts the sysusers.d artifact asks for cannot be created.
    Sysusers(SysusersError),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Host(e) => write!(f, "{e}"),
            PlanError::MissingService { path, service } => write!(
                f,
                "{} has no service `{service}`; enable it (uncomment it) in master.cf first",
                path.display()
            ),
            PlanError::MissingFile { path, what } => write!(
                f,
                "{} does not exist; dkimctl edits the {what} of an installed MTA and does not create it",
                path.display()
            ),
            PlanError::DuplicatePath { path } => {
                write!(f, "{} is rendered twice", path.display())
            }
            PlanError::UnknownAccount { kind, name, path } => write!(
                f,
                "{kind} {name} (owner of {}) does not exist and no sysusers.d file creates it",
                path.display()
            ),
            PlanError::Accounts(e) => write!(f, "{e}"),
            PlanError::Sysusers(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PlanError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PlanError::Host(e) => e.source(),
            PlanError::Accounts(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SysusersError> for PlanError {
    fn from(e: SysusersError) -> Self {
        PlanError::Sysusers(e)
    }
}

impl From<LoadError> for PlanError {
    fn from(e: LoadError) -> Self {
        PlanError::Accounts(e)
    }
}

/// Counts of changes by action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Artifacts to create.
    pub create: usize,
    /// Artifacts whose content changes.
    pub update: usize,
    /// Artifacts whose owner, group or mode only change.
    pub metadata: usize,
    /// Artifacts already as wanted.
    pub unchanged: usize,
    /// Files of a replaced engine to remove.
    pub remove: usize,
}

/// How [`Plan::print_with`] prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrintOptions {
    /// ANSI colours in diffs.
    pub color: bool,
    /// List unchanged artifacts too.
    pub verbose: bool,
}

/// Every change `apply` would make, in path order (directories before
/// their contents).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// One entry per artifact, unchanged ones included.
    pub changes: Vec<Change>,
    /// False when not running as root: owners were not compared.
    pub ownership_checked: bool,
    /// Users, groups and memberships apply creates first (from the
    /// sysusers.d artifact), one line each.
    pub accounts: Vec<String>,
    /// What the running services need ([`live`]); empty unless observed.
    pub pending: Vec<live::Pending>,
    /// Directories dkim.toml names that other services share (a socket
    /// directory with clamav's and spamass's sockets in it): their owner
    /// and mode are left alone, each with the reason.
    pub kept: Vec<(PathBuf, String)>,
}

/// Makes the plan for `artifacts` against the tree under `root`. Never
/// writes.
pub fn plan(artifacts: &[Artifact], root: &Root) -> Result<Plan, PlanError> {
    plan_as(artifacts, root, nix::unistd::geteuid().is_root())
}

/// True for a sysusers.d file among the artifacts.
pub(crate) fn is_sysusers(a: &Artifact) -> bool {
    let in_dir = a.path.parent().is_some_and(|p| {
        p == Path::new("/etc/sysusers.d") || p == Path::new("/usr/lib/sysusers.d")
    });
    in_dir
        && a.path.extension().is_some_and(|e| e == "conf")
        && matches!(a.kind, ArtifactKind::File(_))
}

/// The entries of every sysusers.d artifact.
pub(crate) fn sysusers_entries<'a>(
    artifacts: impl Iterator<Item = &'a Artifact>,
) -> Vec<SysusersEntry> {
    artifacts
        .filter(|a| is_sysusers(a))
        .filter_map(|a| match &a.kind {
            ArtifactKind::File(b) => Some(parse_sysusers(&String::from_utf8_lossy(b))),
            _ => None,
        })
        .flatten()
        .collect()
}

/// An owner or group name resolved against the accounts.
enum Id {
    Known(u32),
    Pending,
}

/// What every artifact's plan needs to know.
struct Context<'a> {
    root: &'a Root,
    accounts: &'a Accounts,
    pending: &'a SysusersChanges,
    as_root: bool,
    artifacts: &'a [&'a Artifact],
    /// Directories other services share: never re-owned.
    kept: &'a [(PathBuf, String)],
}

impl Context<'_> {
    fn user(&self, name: &str, path: &Path) -> Result<Id, PlanError> {
        if let Some(u) = self.accounts.user(name) {
            return Ok(Id::Known(u.uid));
        }
        if name == "root" {
            return Ok(Id::Known(0));
        }
        if self.pending.users.iter().any(|u| u.name == name) {
            return Ok(Id::Pending);
        }
        Err(PlanError::UnknownAccount {
            kind: "user",
            name: name.to_string(),
            path: path.to_path_buf(),
        })
    }

    fn group(&self, name: &str, path: &Path) -> Result<Id, PlanError> {
        if let Some(g) = self.accounts.group(name) {
            return Ok(Id::Known(g.gid));
        }
        if name == "root" {
            return Ok(Id::Known(0));
        }
        if self.pending.groups.iter().any(|g| g.name == name) {
            return Ok(Id::Pending);
        }
        Err(PlanError::UnknownAccount {
            kind: "group",
            name: name.to_string(),
            path: path.to_path_buf(),
        })
    }

    fn owner_name(&self, uid: u32, gid: u32) -> String {
        let user = match self.accounts.uid_name(uid) {
            Some(n) => n.to_string(),
            None if uid == 0 => "root".to_string(),
            None => uid.to_string(),
        };
        let group = match self.accounts.gid_name(gid) {
            Some(n) => n.to_string(),
            None if gid == 0 => "root".to_string(),
            None => gid.to_string(),
        };
        format!("{user}:{group}")
    }

    /// The owner change for `a` given what is there (`None`: nothing).
    fn owner_change(
        &self,
        a: &Artifact,
        current: Option<&Current>,
    ) -> Result<Option<OwnerChange>, PlanError> {
        if !self.as_root {
            return Ok(None);
        }
        let user = self.user(&a.owner, &a.path)?;
        let group = self.group(&a.group, &a.path)?;
        let pending = matches!(user, Id::Pending) || matches!(group, Id::Pending);
        let to = format!("{}:{}", a.owner, a.group);
        let Some(cur) = current else {
            return Ok(Some(OwnerChange {
                from: None,
                to,
                pending,
            }));
        };
        let differs = |id: &Id, have: u32| match id {
            Id::Known(want) => *want != have,
            Id::Pending => true,
        };
        if differs(&user, cur.uid) || differs(&group, cur.gid) {
            Ok(Some(OwnerChange {
                from: Some(self.owner_name(cur.uid, cur.gid)),
                to,
                pending,
            }))
        } else {
            Ok(None)
        }
    }

    /// The filters of the files sendmail.mc includes that exist under the
    /// root (plan must not add a second definition of a milter an included
    /// file already calls).
    fn included_filters(&self, mc: &[u8]) -> Result<Vec<sendmail::Filter>, PlanError> {
        let mut out = Vec::new();
        for (inc, _) in sendmail::includes(mc) {
            if !inc.starts_with('/') {
                continue;
            }
            let real = self.root.join(Path::new(&inc));
            if inspect::inspect(&real, Want::File)
                .map_err(PlanError::Host)?
                .is_some()
            {
                out.extend(sendmail::parse_filters(
                    &inspect::read_file(&real).map_err(PlanError::Host)?,
                ));
            }
        }
        Ok(out)
    }

    /// main.cf next to `master` as it will be after this plan: the file
    /// on disk with the main.cf artifact's edit merged in (master.cf's
    /// `$name` references expand with its values).
    fn merged_main(&self, master: &Path) -> Result<postfix::MainCf, PlanError> {
        let host = master.with_file_name("main.cf");
        let real = real_path(self.root, &host);
        let old = match inspect::inspect(&real, Want::File).map_err(PlanError::Host)? {
            Some(_) => inspect::read_file(&real).map_err(PlanError::Host)?,
            None => Vec::new(),
        };
        let edit = self.artifacts.iter().find_map(|a| match &a.kind {
            ArtifactKind::PostfixMain(e) if a.path == host => Some(e),
            _ => None,
        });
        Ok(postfix::MainCf::parse(&match edit {
            Some(e) => postfix::merge_main(&old, e),
            None => old,
        }))
    }
}

/// [`plan`] with the effective user's rootness given (tests plan both
/// ways).
pub(crate) fn plan_as(
    artifacts: &[Artifact],
    root: &Root,
    as_root: bool,
) -> Result<Plan, PlanError> {
    let accounts = crate::host::accounts::load(root)?;
    let mut sorted: Vec<&Artifact> = artifacts.iter().collect();
    // Path order compares component by component, so a directory sorts
    // right before its contents (`/a` < `/a/b` < `/a-b`).
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for pair in sorted.windows(2) {
        if root.join(&pair[0].path) == root.join(&pair[1].path) {
            return Err(PlanError::DuplicatePath {
                path: pair[1].path.clone(),
            });
        }
    }
    let pending = resolve_sysusers(&accounts, &sysusers_entries(sorted.iter().copied()))?;
    let kept = shared_directories(&sorted, root, &accounts)?;
    let owned: Vec<Artifact> = sorted.iter().map(|a| keep_shared(a, &kept)).collect();
    let sorted: Vec<&Artifact> = owned.iter().collect();
    let ctx = Context {
        root,
        accounts: &accounts,
        pending: &pending,
        as_root,
        artifacts: &sorted,
        kept: &kept,
    };
    let changes = sorted
        .iter()
        .map(|a| plan_one(a, &ctx))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        changes,
        ownership_checked: as_root,
        accounts: pending.describe(false),
        pending: Vec::new(),
        kept,
    })
}

/// How many entries of a directory are looked at to tell whether it is
/// shared.
const MAX_SHARED_SCAN: usize = 1000;

/// The directory artifacts whose directory exists and belongs to other
/// services too: owned by someone other than root and the artifact's
/// owner, or holding files such a user owns (files dkimctl renders there
/// do not count: apply replaces them). Their owner and mode are not
/// dkimctl's to change (issue 13: plan must not take over a socket
/// directory clamav and spamass share).
fn shared_directories(
    artifacts: &[&Artifact],
    root: &Root,
    accounts: &Accounts,
) -> Result<Vec<(PathBuf, String)>, PlanError> {
    let mut out = Vec::new();
    for a in artifacts
        .iter()
        .filter(|a| matches!(a.kind, ArtifactKind::Directory))
    {
        let real = root.join(&a.path);
        let Some(cur) = inspect::inspect(&real, Want::Directory).map_err(PlanError::Host)? else {
            continue;
        };
        let ours = accounts.user(&a.owner).map(|u| u.uid);
        let foreign = |uid: u32| uid != 0 && Some(uid) != ours;
        let name = |uid: u32| {
            accounts
                .uid_name(uid)
                .map_or_else(|| uid.to_string(), str::to_string)
        };
        let why = if foreign(cur.uid) {
            Some(format!(
                "owned by {} (mode {})",
                name(cur.uid),
                mode_string(cur.mode)
            ))
        } else {
            std::fs::read_dir(&real)
                .into_iter()
                .flatten()
                .flatten()
                .take(MAX_SHARED_SCAN)
                .filter(|e| {
                    !artifacts
                        .iter()
                        .any(|o| o.path == a.path.join(e.file_name()))
                })
                .filter_map(|e| e.metadata().ok().map(|m| (e.file_name(), m)))
                .find(|(_, m)| foreign(std::os::unix::fs::MetadataExt::uid(m)))
                .map(|(n, m)| {
                    format!(
                        "holding {} of {}",
                        n.to_string_lossy(),
                        name(std::os::unix::fs::MetadataExt::uid(&m))
                    )
                })
        };
        if let Some(why) = why {
            out.push((
                a.path.clone(),
                format!(
                    "shared with other services ({why}): its owner and mode stay as they are; give the milter a directory of its own to have dkimctl manage it"
                ),
            ));
        }
    }
    Ok(out)
}

/// `a` as planned when some directories are shared: such a directory
/// keeps its owner and mode (the artifact asks for what is there), and
/// a tmpfiles.d file does not claim it.
fn keep_shared(a: &Artifact, kept: &[(PathBuf, String)]) -> Artifact {
    let mut a = a.clone();
    let shared = |p: &Path| kept.iter().any(|(k, _)| k == p);
    match &mut a.kind {
        ArtifactKind::File(bytes)
            if a.path.parent() == Some(Path::new("/etc/tmpfiles.d")) && !kept.is_empty() =>
        {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let lines: Vec<&str> = text
                .split_inclusive('\n')
                .filter(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    !(f.len() >= 2 && !f[0].starts_with('#') && shared(Path::new(f[1])))
                })
                .collect();
            *bytes = lines.concat().into_bytes();
        }
        _ => {}
    }
    a
}

/// The text every file dkimctl renders carries (in its first lines).
pub const MANAGED_MARK: &str = "Managed by dkimctl";

/// Adds a [`Action::Remove`] change for every file among `replaced` (the
/// artifacts the other engine would have) that is not among the plan's
/// own, exists under `root`, and carries [`MANAGED_MARK`] in its first
/// lines: what dkimctl rendered for an engine dkim.toml no longer uses.
/// Files written by hand, keys, directories and the MTA's files are never
/// removed.
pub fn add_leftovers(plan: &mut Plan, replaced: &[Artifact], root: &Root) {
    let reader = crate::host::Reader::new(root);
    for a in replaced {
        if !matches!(a.kind, ArtifactKind::File(_))
            || plan.changes.iter().any(|c| c.host_path() == a.path)
        {
            continue;
        }
        let Ok(text) = reader.read(&a.path) else {
            continue;
        };
        if !text.lines().take(3).any(|l| l.contains(MANAGED_MARK)) {
            continue;
        }
        plan.changes.push(Change {
            artifact: a.clone(),
            path: root.join(&a.path),
            action: Action::Remove,
            content: None,
            diff: None,
            owner: None,
            mode: None,
            reload: a.reload,
            copy_from: None,
        });
    }
    plan.changes
        .sort_by(|x, y| x.host_path().cmp(y.host_path()));
}

/// The real path of a host path: its parent directories resolved inside
/// the root, as apply's walk resolves them (an image's `/etc/systemd` may
/// be an absolute link, which means a path in the image, not on the
/// host); a link at the final name is left for [`inspect`] to report.
fn real_path(root: &Root, host: &Path) -> PathBuf {
    let reader = crate::host::Reader::new(root);
    match (host.parent(), host.file_name()) {
        (Some(parent), Some(name)) => match reader.resolve(parent) {
            Ok(dir) => dir.join(name),
            Err(_) => root.join(host),
        },
        _ => root.join(host),
    }
}

/// The plan for one artifact.
fn plan_one(a: &Artifact, ctx: &Context<'_>) -> Result<Change, PlanError> {
    let real = real_path(ctx.root, &a.path);
    let want = match a.kind {
        ArtifactKind::Directory => Want::Directory,
        _ => Want::File,
    };
    let current = inspect::inspect(&real, want).map_err(PlanError::Host)?;
    // sendmail.mc belongs to the MTA's package, which chose its owner,
    // group and mode (Debian: root:smmsp 0644): the edit keeps them.
    let kept;
    let a = match (&a.kind, &current) {
        (ArtifactKind::SendmailMc(_), Some(cur)) => {
            kept = Artifact {
                owner: ctx
                    .accounts
                    .uid_name(cur.uid)
                    .map_or_else(|| a.owner.clone(), str::to_string),
                group: ctx
                    .accounts
                    .gid_name(cur.gid)
                    .map_or_else(|| a.group.clone(), str::to_string),
                mode: cur.mode,
                ..a.clone()
            };
            &kept
        }
        _ => a,
    };
    let read_old = || -> Result<Option<Vec<u8>>, PlanError> {
        match current {
            Some(_) => inspect::read_file(&real).map(Some).map_err(PlanError::Host),
            None => Ok(None),
        }
    };
    let must_exist = |what| PlanError::MissingFile {
        path: real.clone(),
        what,
    };
    // (old content, new content); `None` where content is not compared.
    let (old, new): (Option<Vec<u8>>, Option<Vec<u8>>) = match &a.kind {
        // A key's bytes are never read here: existing keys are never
        // replaced, so there is nothing to compare them with.
        ArtifactKind::Directory | ArtifactKind::PrivateKey { .. } => (None, None),
        ArtifactKind::File(bytes) => (read_old()?, Some(bytes.clone())),
        ArtifactKind::PostfixMain(edit) => {
            let old = read_old()?;
            let new = postfix::merge_main(old.as_deref().unwrap_or_default(), edit);
            (old, Some(new))
        }
        ArtifactKind::PostfixMaster(edit) => {
            let old = read_old()?.ok_or_else(|| must_exist("master.cf"))?;
            let main = ctx.merged_main(&a.path)?;
            let new = postfix::merge_master(&old, edit, &main).map_err(
                |postfix::MissingService(service)| PlanError::MissingService {
                    path: real.clone(),
                    service,
                },
            )?;
            (Some(old), Some(new))
        }
        ArtifactKind::SendmailMc(edit) => {
            let old = read_old()?.ok_or_else(|| must_exist("sendmail.mc"))?;
            let new = sendmail::merge_mc(&old, edit, &ctx.included_filters(&old)?);
            (Some(old), Some(new))
        }
    };

    let shared = current.is_some() && ctx.kept.iter().any(|(p, _)| *p == a.path);
    let owner = match shared {
        true => None,
        false => ctx.owner_change(a, current.as_ref())?,
    };
    let wanted_mode = a.mode & 0o7777;
    let mode = match &current {
        _ if shared => None,
        None => Some(ModeChange {
            from: None,
            to: wanted_mode,
        }),
        Some(cur) if cur.mode != wanted_mode => Some(ModeChange {
            from: Some(cur.mode),
            to: wanted_mode,
        }),
        Some(_) => None,
    };
    let secret = a.is_secret();
    let (action, content, diff) = match (&current, &new) {
        (None, new) => {
            let diff = match new {
                Some(n) if !secret => Some(diff::unified(&a.path, None, n)),
                _ => None,
            };
            (Action::Create, new.clone(), diff)
        }
        (Some(_), Some(n)) if old.as_ref() != Some(n) => {
            let diff = (!secret).then(|| diff::unified(&a.path, old.as_deref(), n));
            (Action::Update, Some(n.clone()), diff)
        }
        _ if owner.is_some() || mode.is_some() => (Action::Metadata, None, None),
        _ => (Action::Unchanged, None, None),
    };
    let reload = match (action, &new) {
        (Action::Create | Action::Update, Some(n)) => {
            effective_reload(a.reload, old.as_deref().unwrap_or_default(), n)
        }
        (Action::Create | Action::Update, None) | (Action::Unchanged | Action::Remove, _) => {
            a.reload
        }
        // New owner or mode only: the engine re-reads (a key it could not
        // read may be readable now); nothing else needs to know.
        (Action::Metadata, _) => match a.reload {
            Reload::Engine | Reload::RestartEngine => Reload::Engine,
            _ => Reload::None,
        },
    };
    let copy_from = match &a.kind {
        ArtifactKind::PrivateKey { reuse, .. } if action == Action::Create => {
            reuse.iter().find_map(|p| {
                let real = real_path(ctx.root, p);
                matches!(inspect::inspect(&real, Want::File), Ok(Some(_))).then(|| p.clone())
            })
        }
        _ => None,
    };
    Ok(Change {
        artifact: a.clone(),
        path: real,
        action,
        content,
        diff,
        owner,
        mode,
        reload,
        copy_from,
    })
}

/// Settings whose change a milter only picks up on restart (OpenDKIM:
/// `Socket`, `UserID`, `UMask`; the bundled engine's summary file:
/// `socket`, `user`, `group`, `umask`).
const RESTART_KEYS: [&str; 5] = ["socket", "userid", "umask", "user", "group"];

/// `Engine` raised to `RestartEngine` when a restart-only setting differs
/// between the old and the new content.
fn effective_reload(reload: Reload, old: &[u8], new: &[u8]) -> Reload {
    if reload == Reload::Engine && restart_lines(old) != restart_lines(new) {
        Reload::RestartEngine
    } else {
        reload
    }
}

/// The restart-only setting lines of a file, whitespace-normalised.
fn restart_lines(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| {
            let first = l
                .trim_start()
                .split(|c: char| c.is_whitespace() || c == '=')
                .next()
                .unwrap_or_default();
            RESTART_KEYS.iter().any(|k| first.eq_ignore_ascii_case(k))
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Width of the action word column.
const WORD: usize = 10;

impl Plan {
    /// True when apply would change anything (accounts included).
    pub fn has_changes(&self) -> bool {
        !self.accounts.is_empty()
            || !self.pending.is_empty()
            || self.changes.iter().any(Change::is_change)
    }

    /// Counts by action.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Metadata => s.metadata += 1,
                Action::Unchanged => s.unchanged += 1,
                Action::Remove => s.remove += 1,
            }
        }
        s
    }

    /// The reloads the changed artifacts need (without `Reload::None`).
    pub fn reloads(&self) -> BTreeSet<Reload> {
        self.changes
            .iter()
            .filter(|c| c.is_change() && c.action != Action::Remove && c.reload != Reload::None)
            .map(|c| c.reload)
            .collect()
    }

    /// What the file changes ask of the running services, in words
    /// (`restart the engine (its unit changed), reload Postfix`): a
    /// restart holds mail for a moment, a reload does not.
    pub fn then_line(&self) -> Option<String> {
        let r = self.reloads();
        let mut parts: Vec<&str> = Vec::new();
        if r.contains(&Reload::Units) {
            parts.push("reload systemd units");
            parts.push("restart the engine (its unit changed; mail is held for a moment)");
        } else if r.contains(&Reload::RestartEngine) {
            parts.push("restart the engine (socket, user, group or umask changed; mail is held for a moment)");
        } else if r.contains(&Reload::Engine) {
            parts.push("reload the engine (no mail is held)");
        }
        if r.contains(&Reload::Postfix) {
            parts.push("reload Postfix");
        }
        if r.contains(&Reload::Sendmail) {
            parts.push("rebuild sendmail.cf and have sendmail read it");
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// Prints the plan for people: one line per change, diffs after
    /// created and updated files, then the summary line.
    pub fn print(&self, out: &mut dyn Write, color: bool) -> io::Result<()> {
        self.print_with(
            out,
            &PrintOptions {
                color,
                verbose: false,
            },
        )
    }

    /// [`Plan::print`] with all options.
    pub fn print_with(&self, out: &mut dyn Write, opts: &PrintOptions) -> io::Result<()> {
        if !self.ownership_checked && !self.changes.is_empty() {
            writeln!(out, "ownership not checked: not running as root")?;
        }
        for line in &self.accounts {
            writeln!(out, "{:<WORD$}{line}", "account")?;
        }
        for (path, why) in &self.kept {
            writeln!(out, "{:<WORD$}{}  {why}", "kept", path.display())?;
        }
        for c in &self.changes {
            let path = c.host_path().display();
            let details = details(c);
            match c.action {
                Action::Unchanged => {
                    if opts.verbose {
                        writeln!(out, "{:<WORD$}{path}", "unchanged")?;
                    }
                    continue;
                }
                Action::Create => writeln!(out, "{:<WORD$}{path}  {details}", "create")?,
                Action::Update if details.is_empty() => writeln!(out, "{:<WORD$}{path}", "update")?,
                Action::Update => writeln!(out, "{:<WORD$}{path}  {details}", "update")?,
                Action::Remove => writeln!(
                    out,
                    "{:<WORD$}{path}  (rendered by dkimctl for the engine dkim.toml no longer uses)",
                    "remove"
                )?,
                Action::Metadata => {
                    let word = if c.owner.is_some() { "owner" } else { "mode" };
                    writeln!(out, "{:<WORD$}{path}  {details}", word)?
                }
            }
            if c.secret() {
                if c.action == Action::Update {
                    writeln!(out, "content differs (secret)")?;
                }
            } else if let Some(d) = &c.diff {
                diff::write_diff(out, d, opts.color)?;
            }
        }
        for p in &self.pending {
            writeln!(
                out,
                "{:<WORD$}{}  ({}: {})",
                "service", p.service, p.id, p.reason
            )?;
        }
        if let Some(then) = self.then_line() {
            writeln!(out, "{:<WORD$}{then}", "then")?;
        }
        let s = self.summary();
        write!(
            out,
            "Plan: {} to create, {} to update, {} to change owner/mode, {} unchanged",
            s.create, s.update, s.metadata, s.unchanged
        )?;
        if s.remove > 0 {
            write!(out, ", {} to remove", s.remove)?;
        }
        match self.pending.len() {
            0 => writeln!(out, "."),
            1 => writeln!(out, "; 1 service action."),
            n => writeln!(out, "; {n} service actions."),
        }
    }

    /// The JSON form: `{"changes": [...], "summary": {...}, "reloads":
    /// [...], "changed": bool, "accounts": [...], "ownership_checked":
    /// bool}`.
    pub fn to_json(&self) -> Value {
        let s = self.summary();
        let reloads: Vec<&str> = self.reloads().into_iter().map(reload_name).collect();
        json!({
            "changes": self.changes.iter().map(Change::to_json).collect::<Vec<_>>(),
            "summary": {
                "create": s.create,
                "update": s.update,
                "metadata": s.metadata,
                "unchanged": s.unchanged,
                "remove": s.remove,
            },
            "reloads": reloads,
            "changed": self.has_changes(),
            "accounts": self.accounts,
            "ownership_checked": self.ownership_checked,
            "pending": self.pending.iter().map(live::Pending::to_json).collect::<Vec<_>>(),
            "kept": self.kept.iter().map(|(p, why)| json!({"path": p, "why": why})).collect::<Vec<_>>(),
        })
    }
}

/// The text after the path: kind, mode and owner on create; from -> to on
/// other changes.
fn details(c: &Change) -> String {
    let mut parts: Vec<String> = Vec::new();
    if c.action == Action::Create {
        if matches!(c.artifact.kind, ArtifactKind::Directory) {
            parts.push("directory".into());
        }
        if c.secret() {
            parts.push("secret".into());
        }
        if let Some(from) = &c.copy_from {
            parts.push(format!("copied from {}", from.display()));
        }
        if let Some(m) = c.mode {
            parts.push(format!("mode {}", mode_string(m.to)));
        }
        if let Some(o) = &c.owner {
            parts.push(format!("owner {}", o.target()));
        }
    } else {
        if let Some(o) = &c.owner {
            parts.push(format!(
                "owner {} -> {}",
                o.from.as_deref().unwrap_or("-"),
                o.target()
            ));
        }
        if let Some(ModeChange { from: Some(f), to }) = c.mode {
            parts.push(format!("mode {} -> {}", mode_string(f), mode_string(to)));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    /// plan's half of the vectors audit also runs over: a list that
    /// reaches the socket already is left as it is (nothing added twice);
    /// one that does not gets our entry first.
    #[test]
    fn shared_postfix_vectors() {
        for v in crate::formats::postfix::vectors::postfix_vectors() {
            let main = postfix::MainCf::parse(v.main_cf.as_bytes());
            let queue = main.queue_directory();
            let ours = v.socket.postfix(v.chroot.then_some(queue.as_path()));
            let edit = PostfixMainEdit {
                set: Vec::new(),
                milter_lists: vec!["smtpd_milters".into()],
                milter: ours.clone(),
                queue_directory: queue,
                chroot: v.chroot,
            };
            let merged = postfix::MainCf::parse(&postfix::merge_main(v.main_cf.as_bytes(), &edit));
            let before = main.param("smtpd_milters").map(|p| p.value.clone());
            let after = merged.param("smtpd_milters").map(|p| p.value.clone());
            if v.reaches {
                assert_eq!(after, before, "{}: the list was changed", v.name);
            } else {
                let after = after.unwrap_or_default();
                assert!(
                    postfix::milter_entries(&after).first() == Some(&ours),
                    "{}: ours is not first in {after}",
                    v.name
                );
            }
        }
    }

    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;
    use crate::config::model::Algorithm;
    use crate::render::artifact::{PostfixMainEdit, PostfixMasterEdit};

    fn art(path: &str, kind: ArtifactKind, mode: u32, reload: Reload) -> Artifact {
        Artifact {
            path: PathBuf::from(path),
            kind,
            owner: "root".into(),
            group: "root".into(),
            mode,
            reload,
        }
    }

    fn file(path: &str, text: &str) -> Artifact {
        art(
            path,
            ArtifactKind::File(text.as_bytes().to_vec()),
            0o644,
            Reload::None,
        )
    }

    fn root() -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().expect("tmp");
        let r = Root::new(d.path());
        (d, r)
    }

    #[test]
    fn empty_root_is_all_create_and_sorted() {
        let (_d, root) = root();
        let arts = vec![
            file("/etc/dkimctl/b.conf", "b\n"),
            art("/etc/dkimctl", ArtifactKind::Directory, 0o755, Reload::None),
            art(
                "/etc/dkimctl/keys/k.private",
                ArtifactKind::PrivateKey {
                    algorithm: Algorithm::Ed25519Sha256,
                    rsa_bits: 2048,
                    reuse: Vec::new(),
                },
                0o600,
                Reload::Engine,
            ),
            file("/etc/dkimctl-x", "x\n"),
        ];
        let p = plan_as(&arts, &root, false).expect("plan");
        let paths: Vec<_> = p
            .changes
            .iter()
            .map(|c| c.host_path().to_path_buf())
            .collect();
        assert_eq!(
            paths,
            vec![
                PathBuf::from("/etc/dkimctl"),
                PathBuf::from("/etc/dkimctl/b.conf"),
                PathBuf::from("/etc/dkimctl/keys/k.private"),
                PathBuf::from("/etc/dkimctl-x"),
            ]
        );
        assert!(p.changes.iter().all(|c| c.action == Action::Create));
        assert!(p.has_changes());
        let key = &p.changes[2];
        assert!(key.diff.is_none() && key.content.is_none());

        let mut out = Vec::new();
        p.print(&mut out, false).expect("print");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "ownership not checked: not running as root\n\
             create    /etc/dkimctl  directory, mode 0755\n\
             create    /etc/dkimctl/b.conf  mode 0644\n\
             --- /dev/null\n+++ b/etc/dkimctl/b.conf\n@@ -0,0 +1 @@\n+b\n\
             create    /etc/dkimctl/keys/k.private  secret, mode 0600\n\
             create    /etc/dkimctl-x  mode 0644\n\
             --- /dev/null\n+++ b/etc/dkimctl-x\n@@ -0,0 +1 @@\n+x\n\
             then      reload the engine (no mail is held)\n\
             Plan: 4 to create, 0 to update, 0 to change owner/mode, 0 unchanged.\n"
        );
        let j = p.to_json();
        assert_eq!(j["summary"]["create"], 4);
        assert_eq!(j["changes"][2]["kind"], "key");
        assert_eq!(j["changes"][2]["secret"], true);
        assert_eq!(j["changes"][2]["diff"], Value::Null);
        assert_eq!(j["changes"][2]["mode"]["to"], "0600");
        assert_eq!(j["changed"], true);
    }

    #[test]
    fn existing_key_is_never_read() {
        let (_d, root) = root();
        let real = root.join(Path::new("/k.pem"));
        fs::write(&real, "-----BEGIN PRIVATE KEY-----\nSECRET\n").expect("w");
        fs::set_permissions(&real, fs::Permissions::from_mode(0o644)).expect("chmod");
        let a = art(
            "/k.pem",
            ArtifactKind::PrivateKey {
                algorithm: Algorithm::RsaSha256,
                rsa_bits: 2048,
                reuse: Vec::new(),
            },
            0o600,
            Reload::Engine,
        );
        let p = plan_as(&[a], &root, false).expect("plan");
        assert_eq!(p.changes[0].action, Action::Metadata);
        assert_eq!(p.reloads(), BTreeSet::from([Reload::Engine]));
        let mut out = Vec::new();
        p.print(&mut out, true).expect("print");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("mode      /k.pem  mode 0644 -> 0600\n"),
            "{text}"
        );
        assert!(!text.contains("SECRET"));
        assert!(!p.to_json().to_string().contains("SECRET"));
    }

    #[test]
    fn symlink_and_wrong_type_are_errors() {
        let (_d, root) = root();
        let etc = root.join(Path::new("/etc"));
        fs::create_dir_all(&etc).expect("mkdir");
        symlink("/etc/passwd", etc.join("link.conf")).expect("symlink");
        let e = plan_as(&[file("/etc/link.conf", "x")], &root, false).expect_err("symlink");
        assert!(matches!(e, PlanError::Host(InspectError::Symlink { .. })));
        assert!(e.to_string().ends_with(
            "/etc/link.conf is a symbolic link; dkimctl does not follow links at paths it manages"
        ));

        let e = plan_as(
            &[art(
                "/etc/link.conf",
                ArtifactKind::Directory,
                0o755,
                Reload::None,
            )],
            &root,
            false,
        )
        .expect_err("symlink dir");
        assert!(matches!(e, PlanError::Host(InspectError::Symlink { .. })));

        fs::create_dir(etc.join("d.conf")).expect("mkdir");
        let e = plan_as(&[file("/etc/d.conf", "x")], &root, false).expect_err("dir");
        assert!(
            e.to_string()
                .ends_with("/etc/d.conf is a directory, not a regular file")
        );
    }

    #[test]
    fn duplicate_paths_are_an_error() {
        let (_d, root) = root();
        let e = plan_as(&[file("/a", "1"), file("/a", "2")], &root, false).expect_err("dup");
        assert_eq!(e.to_string(), "/a is rendered twice");
    }

    #[test]
    fn owners_are_compared_as_root_and_pending_accounts_shown() {
        let (_d, root) = root();
        let mut a = file("/etc/x.conf", "x\n");
        a.owner = "dkimctl".into();
        a.group = "dkimctl".into();
        let sysusers = file("/etc/sysusers.d/dkimctl.conf", "u dkimctl -\n");
        let p = plan_as(&[a.clone(), sysusers.clone()], &root, true).expect("plan");
        assert_eq!(
            p.accounts,
            vec![
                "create group dkimctl (gid 999)",
                "create user dkimctl (uid 999, gid 999)"
            ]
        );
        let x = p
            .changes
            .iter()
            .find(|c| c.host_path() == Path::new("/etc/x.conf"))
            .expect("x");
        assert_eq!(
            x.owner,
            Some(OwnerChange {
                from: None,
                to: "dkimctl:dkimctl".into(),
                pending: true
            })
        );
        let mut out = Vec::new();
        p.print(&mut out, false).expect("print");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.starts_with("account   create group dkimctl (gid 999)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "create    /etc/x.conf  mode 0644, owner dkimctl:dkimctl (created by apply)\n"
            ),
            "{text}"
        );

        // Unknown user without a sysusers.d file that creates it.
        let e = plan_as(&[a], &root, true).expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "user dkimctl (owner of /etc/x.conf) does not exist and no sysusers.d file creates it"
        );
    }

    #[test]
    fn existing_file_with_another_owner() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to give the file to root");
            return;
        }
        let (_d, root) = root();
        let etc = root.join(Path::new("/etc"));
        fs::create_dir_all(&etc).expect("mkdir");
        fs::write(
            etc.join("passwd"),
            "root:x:0:0::/root:/bin/sh\nmilter:x:120:130::/:/bin/false\n",
        )
        .expect("w");
        fs::write(etc.join("group"), "root:x:0:\nmilter:x:130:\n").expect("w");
        fs::write(etc.join("x.conf"), "x\n").expect("w");
        fs::set_permissions(etc.join("x.conf"), fs::Permissions::from_mode(0o644)).expect("chmod");
        std::os::unix::fs::chown(etc.join("x.conf"), Some(0), Some(0)).expect("chown");
        let mut a = file("/etc/x.conf", "x\n");
        a.owner = "milter".into();
        a.group = "milter".into();
        let p = plan_as(&[a], &root, true).expect("plan");
        assert_eq!(p.changes[0].action, Action::Metadata);
        let mut out = Vec::new();
        p.print(&mut out, false).expect("print");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "owner     /etc/x.conf  owner root:root -> milter:milter\n\
             Plan: 0 to create, 0 to update, 1 to change owner/mode, 0 unchanged.\n"
        );
    }

    #[test]
    fn engine_reload_becomes_restart_on_socket_change() {
        assert_eq!(
            effective_reload(
                Reload::Engine,
                b"Mode sv\nSocket inet:8891@localhost\n",
                b"Mode s\nSocket inet:8891@localhost\n"
            ),
            Reload::Engine
        );
        assert_eq!(
            effective_reload(
                Reload::Engine,
                b"Socket inet:8891@localhost\n",
                b"Socket local:/run/x\n"
            ),
            Reload::RestartEngine
        );
        assert_eq!(
            effective_reload(Reload::Engine, b"umask = 0o007\n", b"umask = 0o002\n"),
            Reload::RestartEngine
        );
        assert_eq!(
            effective_reload(Reload::Postfix, b"Socket a\n", b"Socket b\n"),
            Reload::Postfix
        );
    }

    #[test]
    fn postfix_artifacts() {
        let (_d, root) = root();
        let pdir = root.join(Path::new("/etc/postfix"));
        fs::create_dir_all(&pdir).expect("mkdir");
        fs::write(pdir.join("master.cf"), "smtp inet n - y - - smtpd\n").expect("w");
        let main = art(
            "/etc/postfix/main.cf",
            ArtifactKind::PostfixMain(PostfixMainEdit {
                set: vec![("milter_protocol".into(), "6".into())],
                milter_lists: vec!["smtpd_milters".into()],
                milter: "unix:/dkimctl/milter.sock".into(),
                queue_directory: "/var/spool/postfix".into(),
                chroot: true,
            }),
            0o644,
            Reload::Postfix,
        );
        let master = |svc: &str| {
            art(
                "/etc/postfix/master.cf",
                ArtifactKind::PostfixMaster(PostfixMasterEdit {
                    services: vec![(
                        svc.into(),
                        vec![("smtpd_milters".into(), "$smtpd_milters".into())],
                    )],
                    milter: "unix:/dkimctl/milter.sock".into(),
                    queue_directory: "/var/spool/postfix".into(),
                    chroot: true,
                }),
                0o644,
                Reload::Postfix,
            )
        };
        fs::set_permissions(pdir.join("master.cf"), fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let p = plan_as(&[main.clone(), master("smtp")], &root, false).expect("plan");
        assert_eq!(p.changes[0].action, Action::Create);
        assert_eq!(p.changes[1].action, Action::Update);
        assert_eq!(
            p.changes[1].content.as_deref(),
            Some(
                &b"# dkimctl: DKIM milter is unix:/dkimctl/milter.sock\n\
                   smtp inet n - y - - smtpd\n  -o smtpd_milters=$smtpd_milters\n"[..]
            )
        );
        assert_eq!(p.reloads(), BTreeSet::from([Reload::Postfix]));

        let e = plan_as(&[main.clone(), master("submission")], &root, false).expect_err("svc");
        assert!(e.to_string().ends_with(
            "/etc/postfix/master.cf has no service `submission`; enable it (uncomment it) in master.cf first"
        ));
        fs::remove_file(pdir.join("master.cf")).expect("rm");
        let e = plan_as(&[main, master("smtp")], &root, false).expect_err("missing");
        assert!(matches!(
            e,
            PlanError::MissingFile {
                what: "master.cf",
                ..
            }
        ));
    }
}
