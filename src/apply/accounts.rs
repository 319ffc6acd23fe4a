//! Creating the service's users and groups under a root, as
//! systemd-sysusers would, by editing `/etc/passwd`, `/etc/group` (and
//! `shadow`, `gshadow` when present) directly: the tool runs in a sandbox
//! root without systemd, and every existing line stays byte for byte.
//!
//! What is created is decided by [`crate::plan::accounts`]; this module
//! only writes it, under the lock shadow-utils and systemd-sysusers take.
//! Nothing existing is modified beyond added group memberships, and
//! nothing is removed.

use std::ffi::OsStr;
use std::path::Path;

use super::ApplyError;
use super::tree::{Dir, DirSpec};
use crate::formats::passwd;
use crate::formats::sysusers::SysusersEntry;
use crate::host::Root;
use crate::host::accounts::load;
use crate::plan::accounts::resolve_sysusers;

/// Creates the accounts `entries` ask for under `root` and returns what
/// it did, one line per action (nothing when all exist).
///
/// `ROOT/etc/group` and `ROOT/etc/passwd` are written (created when
/// missing, with mode 0644), and `ROOT/etc/gshadow` and `ROOT/etc/shadow`
/// when they exist; every file is replaced atomically, keeping its
/// existing lines byte for byte and its owner and mode.
pub fn apply_sysusers(root: &Root, entries: &[SysusersEntry]) -> Result<Vec<String>, ApplyError> {
    apply_sysusers_as(root, entries, nix::unistd::geteuid().is_root())
}

/// [`apply_sysusers`], with the effective user's rootness given (it
/// decides whether new files are chowned to root).
pub(crate) fn apply_sysusers_as(
    root: &Root,
    entries: &[SysusersEntry],
    as_root: bool,
) -> Result<Vec<String>, ApplyError> {
    // A first look without the lock, so that a run with nothing to do
    // does not even create the lock file.
    if resolve_sysusers(&load(root)?, entries)?.is_empty() {
        return Ok(Vec::new());
    }
    let (etc, _) = Dir::open(root, Path::new("/etc"), Some(&|_| DirSpec::PARENT))?;
    // The lock shadow-utils (`lckpwdf(3)`) and systemd-sysusers hold while
    // they change account files, so that a concurrent `useradd` cannot
    // slip its own edit in between our read and our rename.
    let _lock = etc.lock(OsStr::new(".pwd.lock"))?;
    // Under the lock, the files are read again: what counts is what is
    // there now.
    let changes = resolve_sysusers(&load(root)?, entries)?;
    if changes.is_empty() {
        return Ok(Vec::new());
    }

    // Groups before users, so a written passwd never names a gid that the
    // group file lacks.
    let group_lines: Vec<String> = changes.groups.iter().map(passwd::group_line).collect();
    edit_file(
        &etc,
        "group",
        true,
        as_root,
        &group_lines,
        &changes.memberships,
    )?;
    let gshadow_lines: Vec<String> = changes.groups.iter().map(passwd::gshadow_line).collect();
    edit_file(
        &etc,
        "gshadow",
        false,
        as_root,
        &gshadow_lines,
        &changes.memberships,
    )?;
    let passwd_lines: Vec<String> = changes.users.iter().map(passwd::passwd_line).collect();
    edit_file(&etc, "passwd", true, as_root, &passwd_lines, &[])?;
    let shadow_lines: Vec<String> = changes.users.iter().map(passwd::shadow_line).collect();
    edit_file(&etc, "shadow", false, as_root, &shadow_lines, &[])?;
    Ok(changes.describe(true))
}

/// Appends `new_lines` to a passwd-style file and adds `memberships` to
/// the fourth field of existing group lines ([`passwd::add_accounts`]);
/// other lines stay byte for byte. A missing file is created when
/// `create` is set (mode 0644, owned by root), otherwise left alone.
fn edit_file(
    etc: &Dir,
    name: &str,
    create: bool,
    as_root: bool,
    new_lines: &[String],
    memberships: &[(String, String)],
) -> Result<(), ApplyError> {
    let name = OsStr::new(name);
    let (old, st) = match etc.read(name)? {
        Some((old, st)) => (old, Some(st)),
        None if create => (Vec::new(), None),
        None => return Ok(()),
    };
    let Some(out) = passwd::add_accounts(&old, new_lines, memberships) else {
        return Ok(());
    };
    let (uid, gid, mode) = match &st {
        Some(st) => (Some(st.st_uid), Some(st.st_gid), st.st_mode & 0o7777),
        None => (Some(0), Some(0), 0o644),
    };
    let (uid, gid) = if as_root { (uid, gid) } else { (None, None) };
    etc.write_atomic(name, &out, uid, gid, mode)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::formats::sysusers::parse_sysusers;

    const SYSUSERS: &str = "# dkimctl\n\
        u dkimctl - \"DKIM signing milter\" /var/lib/dkimctl -\n\
        m dkimctl postfix\n";

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Root::new(dir.path());
        (dir, root)
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

        let accounts = load(&root).expect("load");
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
}
