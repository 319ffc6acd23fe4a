//! Hardening that would break the setup: what `dkimctl plan` and `apply`
//! show as a breaking change, with its fix, before anything is applied.
//!
//! dkim.toml's OpenDKIM engine renders `RequireSafeKeys yes` unless
//! `engine.require_safe_keys = false` (which `import` keeps from a setup
//! that had it). OpenDKIM then checks each key when it signs, and refuses
//! one others can read, or one below a directory someone else can write
//! ("key data is not secure"): every message of that domain is deferred.
//! Keys that stay where they are (import keeps their paths) are judged
//! here by those rules, as the service's user, before the switch.
//!
//! Read only; the key's bytes are never opened.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::config::Config;
use crate::config::model::EngineKind;
use crate::host::{Reader, Root};

/// One line per key OpenDKIM would refuse under the configuration: what
/// breaks, why, and the fix. Empty when nothing breaks (or the keys do
/// not exist yet: apply creates them safe).
pub fn breaking(config: &Config, root: &Root) -> Vec<String> {
    if config.service.engine != EngineKind::OpenDkim || !config.engine.require_safe_keys {
        return Vec::new();
    }
    let reader = Reader::new(root);
    let accounts = crate::host::accounts::load(root).ok();
    let user = &config.service.user;
    let uid = accounts.as_ref().and_then(|a| a.user(user)).map(|u| u.uid);
    // Members of a group other than the milter's user (OpenDKIM refuses a
    // group-writable directory whose group has more than one user).
    let crowded = |gid: u32| -> bool {
        let Some(a) = &accounts else { return false };
        let mut users: BTreeSet<&str> = a
            .users()
            .iter()
            .filter(|u| u.gid == gid && u.uid != 0)
            .map(|u| u.name.as_str())
            .collect();
        if let Some(g) = a.groups().iter().find(|g| g.gid == gid) {
            users.extend(g.members.iter().map(String::as_str));
        }
        users.remove(user.as_str());
        !users.is_empty()
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for d in &config.domains {
        for k in d.keys.iter().filter(|k| k.state.needs_private_key()) {
            if !seen.insert(k.path.clone()) {
                continue;
            }
            let Ok(meta) = reader.metadata(&k.path) else {
                continue;
            };
            let mut problem =
                crate::keys::check_key_file_mode(meta.mode()).map(|p| format!("the key is {p}"));
            if problem.is_none() {
                let mut dirs: Vec<&Path> = k.path.ancestors().skip(1).collect();
                dirs.reverse();
                for dir in dirs {
                    if dir == Path::new("/") && !root.is_live() {
                        continue;
                    }
                    let Ok(m) = reader.metadata(dir) else {
                        continue;
                    };
                    let mode = m.mode() & 0o7777;
                    let owner_other = m.uid() != 0 && Some(m.uid()) != uid;
                    let why = if mode & 0o002 != 0 {
                        Some("writable by every user".to_string())
                    } else if mode & 0o020 != 0 && crowded(m.gid()) {
                        Some("writable by a group with other users".to_string())
                    } else if mode & 0o200 != 0 && owner_other {
                        let name = accounts
                            .as_ref()
                            .and_then(|a| a.uid_name(m.uid()))
                            .map_or_else(|| m.uid().to_string(), str::to_string);
                        Some(format!("writable by its owner {name}"))
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        problem = Some(format!("{} is {why}", dir.display()));
                        break;
                    }
                    // Nobody else can reach below (dkimf_checkfsnode stops).
                    if mode & 0o011 == 0 {
                        break;
                    }
                }
            }
            if let Some(problem) = problem {
                out.push(format!(
                    "RequireSafeKeys yes: OpenDKIM will refuse {} ({problem}) and defer the mail of {}; \
                     fix: keep require_safe_keys = false under [engine], or move the key into {} (dkimctl keeps it 0600 there)",
                    k.path.display(),
                    d.name,
                    config.service.key_dir.display()
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_key_below_a_directory_others_write_breaks_with_safe_keys() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        // The test's user plays opendkim, so the directories it creates are
        // the milter's own.
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(
            r.join("etc/passwd"),
            format!("root:x:0:0::/root:/bin/sh\nopendkim:x:{uid}:{gid}::/:/bin/false\n"),
        )
        .unwrap();
        std::fs::write(r.join("etc/group"), "root:x:0:\n").unwrap();
        let keydir = r.join("home/user-data/mail/dkim");
        std::fs::create_dir_all(&keydir).unwrap();
        std::fs::set_permissions(
            r.join("home/user-data"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let pair = crate::keys::generate(crate::config::model::Algorithm::RsaSha256, 2048).unwrap();
        crate::keys::tests::write_test_key(&keydir.join("mail.private"), &pair.private_pem, 0o600);
        let root = Root::new(r);
        let text = |safe: bool| {
            format!(
                "[service]\nengine = \"opendkim\"\n[engine]\nrequire_safe_keys = {safe}\n\
                 [[domain]]\nname = \"example.com\"\n[[domain.key]]\nselector = \"mail\"\n\
                 path = \"/home/user-data/mail/dkim/mail.private\"\noutside_key_dir = true\n[mta]\nkind = \"none\"\n"
            )
        };
        let config = |safe| {
            parse(&text(safe), &Source::resolve(&root, None))
                .config
                .expect("valid")
        };
        let lines = breaking(&config(true), &root);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("/home/user-data is writable by every user"),
            "{}",
            lines[0]
        );
        assert!(breaking(&config(false), &root).is_empty());
    }
}
