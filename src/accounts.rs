//! System users and groups under a root: reading `/etc/passwd` and
//! `/etc/group`, and creating accounts from a sysusers.d file the way
//! `systemd-sysusers` would.
//!
//! `plan` uses [`Accounts`] to turn owner and group names into ids and to
//! show which accounts `apply` is going to create; `apply` calls
//! [`Accounts::apply_sysusers`] before it sets any ownership, so that the
//! milter's user exists by the time its files are chowned. Working on the
//! files directly (instead of calling `systemd-sysusers --root`) lets the
//! tool run in a sandbox root without systemd installed, and keeps every
//! existing line byte for byte.
//!
//! What this module does not do: modify existing users or groups (beyond
//! adding a missing group membership), remove anything, or support the
//! sysusers.d types other than `u`, `g` and `m` (`r` ranges and the rest
//! are ignored).

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::apply::ApplyError;
use crate::apply::atomic::write_atomic;
use crate::root::Root;

/// Highest id given to a system account; ids are allocated downward from
/// here, as systemd-sysusers does (`SYSTEM_UID_MAX`).
const SYSTEM_ID_MAX: u32 = 999;
/// Lowest id given to a system account.
const SYSTEM_ID_MIN: u32 = 1;
/// Shell of created users that have none in the sysusers.d line.
const DEFAULT_SHELL: &str = "/usr/sbin/nologin";
/// Home of created users that have none in the sysusers.d line.
const DEFAULT_HOME: &str = "/";

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Comment field (GECOS).
    pub gecos: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Supplementary members (user names).
    pub members: Vec<String>,
}

/// The users and groups defined under a root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    users: Vec<User>,
    groups: Vec<Group>,
}

/// Why accounts could not be read or created.
#[derive(Debug)]
pub enum AccountsError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A directory could not be created.
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file could not be written.
    Write(Box<ApplyError>),
    /// The account files' lock (`/etc/.pwd.lock`) could not be taken.
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Every system id is taken.
    NoFreeId {
        /// The user or group that needed one.
        name: String,
    },
    /// A `u name uid:group` line names a group that does not exist.
    UnknownGroup {
        /// The user.
        user: String,
        /// The missing group.
        group: String,
    },
}

impl fmt::Display for AccountsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountsError::Read { path, .. } => write!(f, "failed to read {}", path.display()),
            AccountsError::CreateDir { path, .. } => {
                write!(f, "failed to create directory {}", path.display())
            }
            AccountsError::Write(e) => write!(f, "{e}"),
            AccountsError::Lock { path, .. } => write!(f, "failed to lock {}", path.display()),
            AccountsError::NoFreeId { name } => write!(
                f,
                "no free system id between {SYSTEM_ID_MIN} and {SYSTEM_ID_MAX} for {name}"
            ),
            AccountsError::UnknownGroup { user, group } => {
                write!(
                    f,
                    "user {user} names primary group {group}, which does not exist"
                )
            }
        }
    }
}

impl std::error::Error for AccountsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AccountsError::Read { source, .. }
            | AccountsError::CreateDir { source, .. }
            | AccountsError::Lock { source, .. } => Some(source),
            AccountsError::Write(e) => std::error::Error::source(e.as_ref()),
            AccountsError::NoFreeId { .. } | AccountsError::UnknownGroup { .. } => None,
        }
    }
}

/// One supported line of a sysusers.d file (see sysusers.d(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysusersEntry {
    /// `u name id "gecos" home shell`: a system user, and a group of the
    /// same name unless `id` is `uid:group`.
    User {
        /// User name.
        name: String,
        /// Fixed uid, or `None` (`-`) to allocate one.
        uid: Option<u32>,
        /// Primary group from the `uid:group` form (a name or a number).
        group: Option<String>,
        /// GECOS; `None` for `-`.
        gecos: Option<String>,
        /// Home directory; `None` for `-` (then `/`).
        home: Option<String>,
        /// Shell; `None` for `-` (then nologin).
        shell: Option<String>,
    },
    /// `g name id`: a system group.
    Group {
        /// Group name.
        name: String,
        /// Fixed gid, or `None` (`-`) to allocate one.
        gid: Option<u32>,
    },
    /// `m user group`: membership of a user in a group.
    Member {
        /// The user.
        user: String,
        /// The group.
        group: String,
    },
}

/// What creating accounts from sysusers.d entries would add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysusersChanges {
    /// Groups to create (with their members already filled in).
    pub groups: Vec<Group>,
    /// Users to create.
    pub users: Vec<User>,
    /// Memberships of users in groups that already exist: (user, group).
    pub memberships: Vec<(String, String)>,
}

impl SysusersChanges {
    /// True when nothing needs to be created.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.users.is_empty() && self.memberships.is_empty()
    }

    /// One line per action, in present tense (`create user dkimctl (uid
    /// 999, gid 999)`) or, with `done`, in past tense.
    pub fn describe(&self, done: bool) -> Vec<String> {
        let (create, add) = if done {
            ("created", "added")
        } else {
            ("create", "add")
        };
        let mut out = Vec::new();
        for g in &self.groups {
            out.push(format!("{create} group {} (gid {})", g.name, g.gid));
        }
        for u in &self.users {
            out.push(format!(
                "{create} user {} (uid {}, gid {})",
                u.name, u.uid, u.gid
            ));
        }
        for g in &self.groups {
            for m in &g.members {
                out.push(format!("{add} user {m} to group {}", g.name));
            }
        }
        for (u, g) in &self.memberships {
            out.push(format!("{add} user {u} to group {g}"));
        }
        out
    }
}

impl Accounts {
    /// Reads `ROOT/etc/passwd` and `ROOT/etc/group`; a missing file holds
    /// no accounts. Malformed lines are skipped.
    pub fn load(root: &Root) -> Result<Accounts, AccountsError> {
        let passwd = read_optional(&root.join(Path::new("/etc/passwd")))?.unwrap_or_default();
        let group = read_optional(&root.join(Path::new("/etc/group")))?.unwrap_or_default();
        Ok(Accounts::parse(&passwd, &group))
    }

    /// Parses the text of a passwd and a group file.
    pub fn parse(passwd: &[u8], group: &[u8]) -> Accounts {
        let users = lines(passwd)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() < 7 || !valid_name(f[0]) {
                    return None;
                }
                Some(User {
                    name: f[0].to_string(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    gecos: f[4].to_string(),
                    home: f[5].to_string(),
                    shell: f[6..].join(":"),
                })
            })
            .collect();
        let groups = lines(group)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() < 3 || !valid_name(f[0]) {
                    return None;
                }
                Some(Group {
                    name: f[0].to_string(),
                    gid: f[2].parse().ok()?,
                    members: f
                        .get(3)
                        .map(|m| split_members(m).map(str::to_string).collect())
                        .unwrap_or_default(),
                })
            })
            .collect();
        Accounts { users, groups }
    }

    /// The user with this name (the first, if listed twice).
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The group with this name (the first, if listed twice).
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The name of the first user with this uid.
    pub fn uid_name(&self, uid: u32) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.uid == uid)
            .map(|u| u.name.as_str())
    }

    /// The name of the first group with this gid.
    pub fn gid_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.gid == gid)
            .map(|g| g.name.as_str())
    }

    /// Every user.
    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// Every group.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Works out what creating `entries` would add, without writing.
    ///
    /// Follows systemd-sysusers: groups first (`g` lines, then the group
    /// of each `u` line), then users; ids are allocated downward from 999,
    /// skipping every id in use as a uid or a gid; a user takes the id of
    /// its same-named group when that uid is free. `m` lines create a
    /// missing user or group implicitly. Existing accounts are never
    /// changed, except for added memberships.
    pub fn resolve_sysusers(
        &self,
        entries: &[SysusersEntry],
    ) -> Result<SysusersChanges, AccountsError> {
        let mut work = self.clone();
        let mut changes = SysusersChanges::default();
        let mut used: BTreeSet<u32> = self
            .users
            .iter()
            .map(|u| u.uid)
            .chain(self.groups.iter().map(|g| g.gid))
            .collect();
        let entries = with_implicit_entries(entries);

        // Groups, in file order: `g` lines and the same-named group of
        // each `u` line; groups implied by `m` lines come last.
        for e in &entries {
            match e {
                SysusersEntry::Group { name, gid } if work.group(name).is_none() => {
                    let gid = pick_id(*gid, |id| work.gid_name(id).is_none(), &mut used, name)?;
                    work.add_group(&mut changes, name, gid);
                }
                SysusersEntry::User {
                    name,
                    uid,
                    group: None,
                    ..
                } if work.group(name).is_none() => {
                    // The group takes the id the user will take: a fixed
                    // uid when it is free as a gid, otherwise an id free
                    // in both files.
                    let gid = pick_id(*uid, |id| work.gid_name(id).is_none(), &mut used, name)?;
                    work.add_group(&mut changes, name, gid);
                }
                _ => {}
            }
        }

        // Users.
        for e in &entries {
            let SysusersEntry::User {
                name,
                uid,
                group,
                gecos,
                home,
                shell,
            } = e
            else {
                continue;
            };
            if work.user(name).is_some() {
                continue;
            }
            let gid = match group {
                None => work.group(name).map(|g| g.gid),
                Some(g) => match g.parse::<u32>() {
                    Ok(n) => Some(n),
                    Err(_) => work.group(g).map(|g| g.gid),
                },
            };
            let Some(gid) = gid else {
                return Err(AccountsError::UnknownGroup {
                    user: name.clone(),
                    group: group.clone().unwrap_or_else(|| name.clone()),
                });
            };
            // Prefer the fixed uid, then the id of the same-named group.
            let preferred = uid.or(if group.is_none() { Some(gid) } else { None });
            let uid = pick_id(preferred, |id| work.uid_name(id).is_none(), &mut used, name)?;
            let user = User {
                name: name.clone(),
                uid,
                gid,
                gecos: gecos.clone().unwrap_or_default(),
                home: home.clone().unwrap_or_else(|| DEFAULT_HOME.to_string()),
                shell: shell.clone().unwrap_or_else(|| DEFAULT_SHELL.to_string()),
            };
            work.users.push(user.clone());
            changes.users.push(user);
        }

        // Memberships.
        for e in &entries {
            let SysusersEntry::Member { user, group } = e else {
                continue;
            };
            let Some(g) = work.groups.iter_mut().find(|g| &g.name == group) else {
                continue;
            };
            if g.members.iter().any(|m| m == user) {
                continue;
            }
            g.members.push(user.clone());
            if let Some(new) = changes.groups.iter_mut().find(|n| &n.name == group) {
                new.members.push(user.clone());
            } else {
                changes.memberships.push((user.clone(), group.clone()));
            }
        }
        Ok(changes)
    }

    fn add_group(&mut self, changes: &mut SysusersChanges, name: &str, gid: u32) {
        let g = Group {
            name: name.to_string(),
            gid,
            members: Vec::new(),
        };
        self.groups.push(g.clone());
        changes.groups.push(g);
    }

    /// Creates the accounts `entries` ask for under `root` and returns
    /// what it did, one line per action (nothing when all exist).
    ///
    /// `ROOT/etc/group` and `ROOT/etc/passwd` are written (created when
    /// missing, with mode 0644), and `ROOT/etc/gshadow` and
    /// `ROOT/etc/shadow` when they exist; every file is replaced
    /// atomically, keeping its existing lines byte for byte and its owner
    /// and mode.
    pub fn apply_sysusers(
        root: &Root,
        entries: &[SysusersEntry],
    ) -> Result<Vec<String>, AccountsError> {
        let as_root = nix::unistd::geteuid().is_root();
        apply_sysusers_as(root, entries, as_root)
    }
}

/// [`Accounts::apply_sysusers`], with the effective user's rootness given
/// (it decides whether new files are chowned to root).
pub(crate) fn apply_sysusers_as(
    root: &Root,
    entries: &[SysusersEntry],
    as_root: bool,
) -> Result<Vec<String>, AccountsError> {
    // A first look without the lock, so that a run with nothing to do
    // does not even create the lock file.
    if Accounts::load(root)?.resolve_sysusers(entries)?.is_empty() {
        return Ok(Vec::new());
    }
    let etc = root.join(Path::new("/etc"));
    if !etc.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&etc)
            .map_err(|source| AccountsError::CreateDir {
                path: etc.clone(),
                source,
            })?;
    }

    let _lock = lock_account_files(&etc)?;
    // Under the lock, the files are read again: what counts is what is
    // there now.
    let changes = Accounts::load(root)?.resolve_sysusers(entries)?;
    if changes.is_empty() {
        return Ok(Vec::new());
    }

    // Groups before users, so a written passwd never names a gid that the
    // group file lacks.
    let group_lines: Vec<String> = changes
        .groups
        .iter()
        .map(|g| format!("{}:x:{}:{}", g.name, g.gid, g.members.join(",")))
        .collect();
    edit_file(
        &etc.join("group"),
        true,
        as_root,
        &group_lines,
        &changes.memberships,
    )?;
    let gshadow_lines: Vec<String> = changes
        .groups
        .iter()
        .map(|g| format!("{}:!::{}", g.name, g.members.join(",")))
        .collect();
    edit_file(
        &etc.join("gshadow"),
        false,
        as_root,
        &gshadow_lines,
        &changes.memberships,
    )?;
    let passwd_lines: Vec<String> = changes
        .users
        .iter()
        .map(|u| {
            format!(
                "{}:x:{}:{}:{}:{}:{}",
                u.name, u.uid, u.gid, u.gecos, u.home, u.shell
            )
        })
        .collect();
    edit_file(&etc.join("passwd"), true, as_root, &passwd_lines, &[])?;
    let shadow_lines: Vec<String> = changes
        .users
        .iter()
        .map(|u| format!("{}:!*:::::::", u.name))
        .collect();
    edit_file(&etc.join("shadow"), false, as_root, &shadow_lines, &[])?;
    Ok(changes.describe(true))
}

/// Takes the lock that shadow-utils (`lckpwdf(3)`) and systemd-sysusers
/// hold while they change account files: a write lock (`fcntl F_SETLKW`)
/// on `/etc/.pwd.lock`, so that a concurrent `useradd` cannot slip its
/// own edit in between our read and our rename. Held until the returned
/// file is dropped.
fn lock_account_files(etc: &Path) -> Result<fs::File, AccountsError> {
    let path = etc.join(".pwd.lock");
    let err = |source| AccountsError::Lock {
        path: path.clone(),
        source,
    };
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(&path)
        .map_err(err)?;
    let lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_SETLKW(&lock))
        .map_err(|e| err(e.into()))?;
    Ok(file)
}

/// Appends `new_lines` to a passwd-style file and adds `memberships` to
/// the fourth field of existing group lines; other lines stay byte for
/// byte. A missing file is created when `create` is set (mode 0644,
/// owned by root), otherwise left alone.
fn edit_file(
    path: &Path,
    create: bool,
    as_root: bool,
    new_lines: &[String],
    memberships: &[(String, String)],
) -> Result<(), AccountsError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(AccountsError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if meta.is_none() && !create {
        return Ok(());
    }
    let old = read_optional(path)?.unwrap_or_default();
    let mut out: Vec<u8> = Vec::with_capacity(old.len() + 64);
    for line in old.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let name = body.split(|&b| b == b':').next().unwrap_or_default();
        let adds: Vec<&str> = memberships
            .iter()
            .filter(|(_, g)| g.as_bytes() == name)
            .map(|(u, _)| u.as_str())
            .collect();
        if adds.is_empty() || name.is_empty() {
            out.extend_from_slice(line);
            continue;
        }
        out.extend_from_slice(&add_members(body, &adds));
        if line.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    if new_lines.is_empty() && out == old {
        return Ok(());
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    for l in new_lines {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    let (uid, gid, mode) = match &meta {
        Some(m) => (Some(m.uid()), Some(m.gid()), m.mode() & 0o7777),
        None => (Some(0), Some(0), 0o644),
    };
    let (uid, gid) = if as_root { (uid, gid) } else { (None, None) };
    write_atomic(path, &out, uid, gid, mode).map_err(|e| AccountsError::Write(Box::new(e)))
}

/// A group (or gshadow) line with users appended to its member field
/// (the fourth), which is added when the line has fewer fields.
fn add_members(body: &[u8], users: &[&str]) -> Vec<u8> {
    let mut out = body.to_vec();
    let fields = body.iter().filter(|&&b| b == b':').count() + 1;
    out.resize(out.len() + 4usize.saturating_sub(fields), b':');
    let existing: Vec<Vec<u8>> = out
        .split(|&b| b == b':')
        .nth(3)
        .map(|m| {
            m.split(|&b| b == b',')
                .filter(|s| !s.is_empty())
                .map(<[u8]>::to_vec)
                .collect()
        })
        .unwrap_or_default();
    let mut any = !existing.is_empty();
    for u in users {
        if existing.iter().any(|m| m == u.as_bytes()) {
            continue;
        }
        if any {
            out.push(b',');
        }
        out.extend_from_slice(u.as_bytes());
        any = true;
    }
    out
}

/// Picks an id: `preferred` when it is free (in `used` and per `free`),
/// else the highest free system id. The id is marked used.
fn pick_id(
    preferred: Option<u32>,
    free: impl Fn(u32) -> bool,
    used: &mut BTreeSet<u32>,
    name: &str,
) -> Result<u32, AccountsError> {
    if let Some(p) = preferred {
        // A preferred id may be in `used` only because it is the gid of
        // the same-named group this user is meant to share it with; the
        // `free` check looks at the right file.
        if free(p) {
            used.insert(p);
            return Ok(p);
        }
    }
    let id = (SYSTEM_ID_MIN..=SYSTEM_ID_MAX)
        .rev()
        .find(|id| !used.contains(id) && free(*id))
        .ok_or_else(|| AccountsError::NoFreeId {
            name: name.to_string(),
        })?;
    used.insert(id);
    Ok(id)
}

/// The entries, with a `u` line added for every `m` user and a `g` line
/// for every `m` group that no other line creates (sysusers creates them
/// implicitly).
fn with_implicit_entries(entries: &[SysusersEntry]) -> Vec<SysusersEntry> {
    let mut out = entries.to_vec();
    for e in entries {
        let SysusersEntry::Member { user, group } = e else {
            continue;
        };
        let user_listed = out
            .iter()
            .any(|e| matches!(e, SysusersEntry::User { name, .. } if name == user));
        if !user_listed {
            out.push(SysusersEntry::User {
                name: user.clone(),
                uid: None,
                group: None,
                gecos: None,
                home: None,
                shell: None,
            });
        }
        let group_listed = out.iter().any(|e| match e {
            SysusersEntry::Group { name, .. } => name == group,
            SysusersEntry::User {
                name, group: None, ..
            } => name == group,
            _ => false,
        });
        if !group_listed {
            out.push(SysusersEntry::Group {
                name: group.clone(),
                gid: None,
            });
        }
    }
    out
}

/// Parses a sysusers.d file: `u`, `g` and `m` lines; comments, blank
/// lines, other types and malformed lines are skipped.
pub fn parse_sysusers(text: &str) -> Vec<SysusersEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let words = split_words(line);
        let Some(kind) = words.first() else {
            continue;
        };
        if kind.starts_with('#') {
            continue;
        }
        let field = |i: usize| -> Option<String> {
            words
                .get(i)
                .filter(|w| w.as_str() != "-" && !w.is_empty())
                .cloned()
        };
        let Some(name) = field(1).filter(|n| valid_name(n)) else {
            continue;
        };
        match kind.as_str() {
            "u" | "u!" => {
                let (uid, group) = match field(2) {
                    None => (None, None),
                    Some(id) => match id.split_once(':') {
                        Some((u, g)) => (u.parse().ok(), Some(g.to_string())),
                        // A path (take the id of that file) is not
                        // supported: allocate instead.
                        None => (id.parse().ok(), None),
                    },
                };
                out.push(SysusersEntry::User {
                    name,
                    uid,
                    group,
                    gecos: field(3),
                    home: field(4),
                    shell: field(5),
                });
            }
            "g" => out.push(SysusersEntry::Group {
                name,
                gid: field(2).and_then(|id| id.parse().ok()),
            }),
            "m" => {
                if let Some(group) = field(2).filter(|g| valid_name(g)) {
                    out.push(SysusersEntry::Member { user: name, group });
                }
            }
            _ => {}
        }
    }
    out
}

/// Splits a sysusers.d line into words; double or single quotes group
/// words, a backslash takes the next character literally.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// True for names that can be written into passwd/group lines (and are
/// not NIS `+`/`-` entries).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['+', '-'])
        && !name
            .chars()
            .any(|c| c == ':' || c == ',' || c.is_whitespace() || c.is_control())
}

fn split_members(m: &str) -> impl Iterator<Item = &str> {
    m.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The lines of a file read lossily (names and ids are ASCII).
fn lines(text: &[u8]) -> impl Iterator<Item = String> + '_ {
    text.split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, AccountsError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AccountsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSUSERS: &str = "# dkimctl\n\
        u dkimctl - \"DKIM signing milter\" /var/lib/dkimctl -\n\
        m dkimctl postfix\n";

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Root::new(dir.path());
        (dir, root)
    }

    #[test]
    fn parses_sysusers_lines() {
        let e = parse_sysusers(
            "# comment\n\n\
             u opendkim - \"OpenDKIM, milter\" /run/opendkim /bin/false\n\
             u fixed 120:mail\n\
             g postfix 115\n\
             g 'spaced' -\n\
             m opendkim postfix\n\
             r - 500-900\n\
             u bad:name -\n",
        );
        assert_eq!(
            e,
            vec![
                SysusersEntry::User {
                    name: "opendkim".into(),
                    uid: None,
                    group: None,
                    gecos: Some("OpenDKIM, milter".into()),
                    home: Some("/run/opendkim".into()),
                    shell: Some("/bin/false".into()),
                },
                SysusersEntry::User {
                    name: "fixed".into(),
                    uid: Some(120),
                    group: Some("mail".into()),
                    gecos: None,
                    home: None,
                    shell: None,
                },
                SysusersEntry::Group {
                    name: "postfix".into(),
                    gid: Some(115),
                },
                SysusersEntry::Group {
                    name: "spaced".into(),
                    gid: None,
                },
                SysusersEntry::Member {
                    user: "opendkim".into(),
                    group: "postfix".into(),
                },
            ]
        );
    }

    #[test]
    fn sysusers_into_an_empty_root() {
        let (_d, root) = root();
        let did = apply_sysusers_as(&root, &parse_sysusers(SYSUSERS), false).expect("apply");
        assert_eq!(
            did,
            vec![
                "created group dkimctl (gid 999)",
                "created group postfix (gid 998)",
                "created user dkimctl (uid 999, gid 999)",
                "added user dkimctl to group postfix",
            ]
        );
        let passwd = fs::read_to_string(root.join(Path::new("/etc/passwd"))).expect("passwd");
        assert_eq!(
            passwd,
            "dkimctl:x:999:999:DKIM signing milter:/var/lib/dkimctl:/usr/sbin/nologin\n"
        );
        let group = fs::read_to_string(root.join(Path::new("/etc/group"))).expect("group");
        assert_eq!(group, "dkimctl:x:999:\npostfix:x:998:dkimctl\n");
        let mode = fs::metadata(root.join(Path::new("/etc/passwd")))
            .expect("stat")
            .mode();
        assert_eq!(mode & 0o7777, 0o644);
        assert!(!root.join(Path::new("/etc/shadow")).exists());

        let accounts = Accounts::load(&root).expect("load");
        assert_eq!(accounts.user("dkimctl").map(|u| u.uid), Some(999));
        assert_eq!(accounts.gid_name(998), Some("postfix"));
        assert_eq!(
            accounts.group("postfix").map(|g| g.members.clone()),
            Some(vec!["dkimctl".to_string()])
        );

        // Idempotent: nothing to do, nothing written.
        let again = apply_sysusers_as(&root, &parse_sysusers(SYSUSERS), false).expect("again");
        assert!(again.is_empty());
        assert_eq!(
            fs::read_to_string(root.join(Path::new("/etc/passwd"))).expect("passwd"),
            passwd
        );
    }

    #[test]
    fn existing_lines_stay_byte_identical() {
        let (_d, root) = root();
        let etc = root.join(Path::new("/etc"));
        fs::create_dir_all(&etc).expect("mkdir");
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # odd comment kept\n\
                      daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                      sys:x:999:3::/:/bin/sh";
        let group = "root:x:0:\npostfix:x:998:alice\nmail:x:8:\n";
        let shadow = "root:*:19000:0:99999:7:::\n";
        let gshadow = "root:*::\npostfix:!::alice\n";
        fs::write(etc.join("passwd"), passwd).expect("w");
        fs::write(etc.join("group"), group).expect("w");
        fs::write(etc.join("shadow"), shadow).expect("w");
        fs::write(etc.join("gshadow"), gshadow).expect("w");
        fs::set_permissions(
            etc.join("shadow"),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )
        .expect("chmod");

        let did = apply_sysusers_as(&root, &parse_sysusers(SYSUSERS), false).expect("apply");
        // 999 is taken as a uid and 998 as a gid: the first id free in
        // both files is 997.
        assert_eq!(
            did,
            vec![
                "created group dkimctl (gid 997)",
                "created user dkimctl (uid 997, gid 997)",
                "added user dkimctl to group postfix",
            ]
        );
        let read = |n: &str| fs::read_to_string(etc.join(n)).expect("read");
        assert_eq!(
            read("passwd"),
            format!(
                "{passwd}\ndkimctl:x:997:997:DKIM signing milter:/var/lib/dkimctl:/usr/sbin/nologin\n"
            )
        );
        assert_eq!(
            read("group"),
            "root:x:0:\npostfix:x:998:alice,dkimctl\nmail:x:8:\ndkimctl:x:997:\n"
        );
        assert_eq!(read("shadow"), format!("{shadow}dkimctl:!*:::::::\n"));
        assert_eq!(
            read("gshadow"),
            "root:*::\npostfix:!::alice,dkimctl\ndkimctl:!::\n"
        );
        let mode = fs::metadata(etc.join("shadow")).expect("stat").mode();
        assert_eq!(mode & 0o7777, 0o640);

        let again = apply_sysusers_as(&root, &parse_sysusers(SYSUSERS), false).expect("again");
        assert!(again.is_empty());
    }

    #[test]
    fn user_takes_the_id_of_its_existing_group() {
        let a = Accounts::parse(
            b"root:x:0:0::/root:/bin/sh\n",
            b"root:x:0:\nmilter:x:500:\n",
        );
        let c = a
            .resolve_sysusers(&parse_sysusers("u milter -\n"))
            .expect("resolve");
        assert!(c.groups.is_empty());
        assert_eq!(c.users.len(), 1);
        assert_eq!((c.users[0].uid, c.users[0].gid), (500, 500));
    }

    #[test]
    fn missing_primary_group_is_an_error() {
        let a = Accounts::default();
        let e = a
            .resolve_sysusers(&parse_sysusers("u x 100:nosuch\n"))
            .expect_err("no group");
        assert_eq!(
            e.to_string(),
            "user x names primary group nosuch, which does not exist"
        );
    }

    #[test]
    fn malformed_files_do_not_panic() {
        let a = Accounts::parse(
            b"::::\nx:y\n+nis::::::\n\xff\xfe:x:1:1:::\n",
            b":\n::::\ng:x:abc:\n",
        );
        assert!(a.users().iter().all(|u| !u.name.is_empty()));
        assert!(a.groups().is_empty());
    }
}
