//! sysusers.d(5) files: the `u`, `g` and `m` lines dkimctl renders and
//! reads back (other line types are skipped).

use super::passwd::valid_name;
use super::systemd::split_words;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
