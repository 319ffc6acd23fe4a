//! `/etc/passwd` and `/etc/group`: parsing them into [`Accounts`], and
//! the pure edit that adds lines and group members while keeping every
//! existing byte ([`add_accounts`]).
//!
//! Reading the files under a root is [`crate::host::accounts`]; writing
//! them is [`crate::apply`].

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

impl Accounts {
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

    /// Adds a group (planning what apply will create).
    pub fn push_group(&mut self, group: Group) {
        self.groups.push(group);
    }

    /// Adds a user (planning what apply will create).
    pub fn push_user(&mut self, user: User) {
        self.users.push(user);
    }

    /// The group with this name, to change its members while planning.
    pub fn group_mut(&mut self, name: &str) -> Option<&mut Group> {
        self.groups.iter_mut().find(|g| g.name == name)
    }
}

/// The passwd line of a user.
pub fn passwd_line(u: &User) -> String {
    format!(
        "{}:x:{}:{}:{}:{}:{}",
        u.name, u.uid, u.gid, u.gecos, u.home, u.shell
    )
}

/// The shadow line of a new system user (no password, locked).
pub fn shadow_line(u: &User) -> String {
    format!("{}:!*:::::::", u.name)
}

/// The group line of a group.
pub fn group_line(g: &Group) -> String {
    format!("{}:x:{}:{}", g.name, g.gid, g.members.join(","))
}

/// The gshadow line of a new group.
pub fn gshadow_line(g: &Group) -> String {
    format!("{}:!::{}", g.name, g.members.join(","))
}

/// A passwd-style file with `new_lines` appended and `memberships` (user,
/// group) added to the fourth field of existing group lines; every other
/// byte stays. `None` when nothing changes.
pub fn add_accounts(
    old: &[u8],
    new_lines: &[String],
    memberships: &[(String, String)],
) -> Option<Vec<u8>> {
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
        return None;
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    for l in new_lines {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    Some(out)
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

/// True for names that can be written into passwd/group lines (and are
/// not NIS `+`/`-` entries).
pub fn valid_name(name: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
