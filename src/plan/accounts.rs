//! Which users and groups apply must create, worked out from the
//! sysusers.d artifact the way systemd-sysusers would, without writing.

use std::collections::BTreeSet;
use std::fmt;

use crate::formats::passwd::{Accounts, Group, User};
use crate::formats::sysusers::SysusersEntry;

/// Highest id given to a system account; ids are allocated downward from
/// here, as systemd-sysusers does (`SYSTEM_UID_MAX`).
const SYSTEM_ID_MAX: u32 = 999;
/// Lowest id given to a system account.
const SYSTEM_ID_MIN: u32 = 1;
/// Shell of created users that have none in the sysusers.d line.
const DEFAULT_SHELL: &str = "/usr/sbin/nologin";
/// Home of created users that have none in the sysusers.d line.
const DEFAULT_HOME: &str = "/";

/// Why the accounts a sysusers.d file asks for cannot be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysusersError {
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

impl fmt::Display for SysusersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysusersError::NoFreeId { name } => {
                write!(
                    f,
                    "no free system id between {SYSTEM_ID_MIN} and {SYSTEM_ID_MAX} for {name}"
                )
            }
            SysusersError::UnknownGroup { user, group } => write!(
                f,
                "user {user} names primary group {group}, which does not exist"
            ),
        }
    }
}

impl std::error::Error for SysusersError {}

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

/// Works out what creating `entries` would add, without writing.
///
/// Follows systemd-sysusers: groups first (`g` lines, then the group
/// of each `u` line), then users; ids are allocated downward from 999,
/// skipping every id in use as a uid or a gid; a user takes the id of
/// its same-named group when that uid is free. `m` lines create a
/// missing user or group implicitly. Existing accounts are never
/// changed, except for added memberships.
pub fn resolve_sysusers(
    accounts: &Accounts,
    entries: &[SysusersEntry],
) -> Result<SysusersChanges, SysusersError> {
    let mut work = accounts.clone();
    let mut changes = SysusersChanges::default();
    let mut used: BTreeSet<u32> = accounts
        .users()
        .iter()
        .map(|u| u.uid)
        .chain(accounts.groups().iter().map(|g| g.gid))
        .collect();
    let entries = with_implicit_entries(entries);

    // Groups, in file order: `g` lines and the same-named group of
    // each `u` line; groups implied by `m` lines come last.
    for e in &entries {
        match e {
            SysusersEntry::Group { name, gid } if work.group(name).is_none() => {
                let gid = pick_id(*gid, |id| work.gid_name(id).is_none(), &mut used, name)?;
                add_group(&mut work, &mut changes, name, gid);
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
                add_group(&mut work, &mut changes, name, gid);
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
            return Err(SysusersError::UnknownGroup {
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
        work.push_user(user.clone());
        changes.users.push(user);
    }

    // Memberships.
    for e in &entries {
        let SysusersEntry::Member { user, group } = e else {
            continue;
        };
        let Some(g) = work.group_mut(group) else {
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

fn add_group(work: &mut Accounts, changes: &mut SysusersChanges, name: &str, gid: u32) {
    let g = Group {
        name: name.to_string(),
        gid,
        members: Vec::new(),
    };
    work.push_group(g.clone());
    changes.groups.push(g);
}

/// Picks an id: `preferred` when it is free (in `used` and per `free`),
/// else the highest free system id. The id is marked used.
fn pick_id(
    preferred: Option<u32>,
    free: impl Fn(u32) -> bool,
    used: &mut BTreeSet<u32>,
    name: &str,
) -> Result<u32, SysusersError> {
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
        .ok_or_else(|| SysusersError::NoFreeId {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::sysusers::parse_sysusers;

    #[test]
    fn user_takes_the_id_of_its_existing_group() {
        let a = Accounts::parse(
            b"root:x:0:0::/root:/bin/sh\n",
            b"root:x:0:\nmilter:x:500:\n",
        );
        let c = resolve_sysusers(&a, &parse_sysusers("u milter -\n")).expect("resolve");
        assert!(c.groups.is_empty());
        assert_eq!(c.users.len(), 1);
        assert_eq!((c.users[0].uid, c.users[0].gid), (500, 500));
    }

    #[test]
    fn missing_primary_group_is_an_error() {
        let a = Accounts::default();
        let e = resolve_sysusers(&a, &parse_sysusers("u x 100:nosuch\n")).expect_err("no group");
        assert_eq!(
            e.to_string(),
            "user x names primary group nosuch, which does not exist"
        );
    }
}
