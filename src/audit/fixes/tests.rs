//! Every fix text that names a line or a command is checked by doing what
//! it says: a clean Debian setup (chrooted Postfix, OpenDKIM with a
//! KeyTable, OpenDMARC beside it) is broken one way per finding id, the
//! finding's fix is applied as written, and the audit is run again. The
//! finding must be gone, and no finding may appear that the broken setup
//! did not already have.
//!
//! The fix lines applied here are the ones the module docs of
//! [`super`] describe: `in FILE: NAME VALUE` (opendkim.conf), `in FILE:
//! NAME = VALUE` (main.cf), `in FILE, line N: TEXT`, `chmod MODE PATH`,
//! `chown USER PATH`; a parenthesised remark after the line is not part of
//! it, and other lines are advice for people.
// See: issue 13, defect 7.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::findings::id;
use super::inventory::System;
use super::systemd::Analyzer;
use super::{AuditOptions, Finding, checks};
use crate::config::model::Algorithm;
use crate::host::Root;
use crate::report::Severity;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn chmod(root: &Path, rel: &str, mode: u32) {
    std::fs::set_permissions(
        root.join(rel.trim_start_matches('/')),
        std::fs::Permissions::from_mode(mode),
    )
    .unwrap();
}

/// A working Debian setup: the audit's user plays opendkim (so the key is
/// its own without root), postfix is in opendkim's group.
fn clean(root: &Path) {
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    write(root, "etc/debian_version", "12.0\n");
    write(
        root,
        "etc/passwd",
        &format!(
            "root:x:0:0::/root:/bin/sh\nopendkim:x:{uid}:{gid}::/run/opendkim:/bin/false\n\
             postfix:x:{}:7373::/var/spool/postfix:/bin/false\n",
            uid + 1
        ),
    );
    write(
        root,
        "etc/group",
        &format!("root:x:0:\nopendkim:x:{gid}:postfix\npostfix:x:7373:\n"),
    );
    write(
        root,
        "etc/opendkim.conf",
        "Syslog yes\nUMask 007\nUserID opendkim\nMode sv\n\
         Socket local:/var/spool/postfix/opendkim/opendkim.sock\n\
         Canonicalization relaxed/simple\nOversignHeaders From\n\
         TemporaryDirectory /run/opendkim\nBaseDirectory /var/lib/opendkim\n\
         KeyTable /etc/opendkim/KeyTable\nSigningTable refile:/etc/opendkim/SigningTable\n\
         InternalHosts 127.0.0.1\nExternalIgnoreList 127.0.0.1\n",
    );
    write(
        root,
        "etc/opendkim/KeyTable",
        "s1._domainkey.example.com example.com:s1:/etc/opendkim/keys/s1.private\n",
    );
    write(
        root,
        "etc/opendkim/SigningTable",
        "*@example.com s1._domainkey.example.com\n",
    );
    std::fs::create_dir_all(root.join("etc/opendkim/keys")).unwrap();
    chmod(root, "etc/opendkim/keys", 0o750);
    let pair = crate::keys::generate(Algorithm::RsaSha256, 2048).unwrap();
    crate::keys::tests::write_test_key(
        &root.join("etc/opendkim/keys/s1.private"),
        &pair.private_pem,
        0o600,
    );
    std::fs::create_dir_all(root.join("var/lib/opendkim")).unwrap();
    std::fs::create_dir_all(root.join("var/spool/postfix/opendkim")).unwrap();
    chmod(root, "var/spool/postfix/opendkim", 0o750);
    write(
        root,
        "etc/postfix/main.cf",
        "smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)\n\
         smtpd_milters = unix:/opendkim/opendkim.sock, unix:/opendmarc/opendmarc.sock\n\
         non_smtpd_milters = $smtpd_milters\nmilter_protocol = 6\n\
         milter_default_action = tempfail\n",
    );
    write(
        root,
        "etc/postfix/master.cf",
        "smtp      inet  n       -       y       -       -       smtpd\n\
         cleanup   unix  n       -       y       -       0       cleanup\n",
    );
}

fn audit(root: &Path) -> Vec<Finding> {
    let sys = System::gather(&Root::new(root), &Default::default());
    let opts = AuditOptions {
        systemd_analyze: Analyzer::Skip,
        ..AuditOptions::default()
    };
    checks::run(&sys, None, &opts)
}

fn ids(found: &[Finding]) -> BTreeSet<(&'static str, Severity)> {
    found.iter().map(|f| (f.id, f.severity)).collect()
}

/// Sets `name value` (opendkim.conf) or `name = value` (main.cf): the
/// lines setting it are replaced by one, or it is appended.
fn set(root: &Path, file: &str, line: &str) {
    let real = root.join(file.trim_start_matches('/'));
    let text = std::fs::read_to_string(&real).unwrap_or_default();
    let postfix = line.contains(" = ");
    let name = if postfix {
        line.split(" = ").next().unwrap().trim()
    } else {
        line.split_whitespace().next().unwrap()
    };
    let same = |l: &str| {
        if postfix {
            l.split('=').next().is_some_and(|n| n.trim() == name)
        } else {
            l.split_whitespace()
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        }
    };
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| !same(l))
        .map(str::to_string)
        .collect();
    out.push(line.to_string());
    std::fs::write(real, out.join("\n") + "\n").unwrap();
}

/// Does what a fix says, line by line; returns how many lines were
/// machine-applicable.
fn apply_fix(root: &Path, fix: &str) -> usize {
    let mut applied = 0;
    for line in fix.lines() {
        // A remark in parentheses is not part of the line.
        let line = line.split(" (").next().unwrap().trim();
        if let Some(rest) = line.strip_prefix("in ") {
            let Some((place, what)) = rest.split_once(": ") else {
                continue;
            };
            match place.split_once(", line ") {
                Some((file, n)) => {
                    let real = root.join(file.trim_start_matches('/'));
                    let n: usize = n.parse().unwrap();
                    let text = std::fs::read_to_string(&real).unwrap();
                    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                    lines[n - 1] = what.to_string();
                    std::fs::write(real, lines.join("\n") + "\n").unwrap();
                }
                None if place.contains(", service ") => continue,
                None => set(root, place, what),
            }
            applied += 1;
        } else if let Some(rest) = line.strip_prefix("chmod ") {
            let (mode, path) = rest.split_once(' ').unwrap();
            chmod(root, path, u32::from_str_radix(mode, 8).unwrap());
            applied += 1;
        } else if let Some(rest) = line.strip_prefix("chown ") {
            // The fixture's users are the audit's own user (opendkim) and
            // root: the file is already the right user's.
            let (user, _) = rest.split_once(' ').unwrap();
            assert!(user == "opendkim" || user == "root", "{line}");
            applied += 1;
        }
    }
    applied
}

/// Each id, with what breaks the clean setup that way.
type Break = fn(&Path);

#[test]
fn every_fix_removes_its_finding_and_adds_none() {
    let cases: Vec<(&str, Break)> = vec![
        (id::SOCKET_MISMATCH, |r| {
            set(
                r,
                "/etc/postfix/main.cf",
                "smtpd_milters = unix:/wrong/x.sock, unix:/opendmarc/opendmarc.sock",
            )
        }),
        (id::SOCKET_OUTSIDE_CHROOT, |r| {
            set(
                r,
                "/etc/opendkim.conf",
                "Socket local:/run/opendkim/opendkim.sock",
            );
            set(
                r,
                "/etc/postfix/main.cf",
                "smtpd_milters = unix:/run/opendkim/opendkim.sock, unix:/opendmarc/opendmarc.sock",
            );
        }),
        (id::SOCKET_CHROOT_PATH, |r| {
            set(
                r,
                "/etc/postfix/main.cf",
                "smtpd_milters = unix:/var/spool/postfix/opendkim/opendkim.sock, unix:/opendmarc/opendmarc.sock",
            )
        }),
        (id::MTA_NOT_CONNECTED, |r| {
            set(
                r,
                "/etc/opendkim.conf",
                "Socket local:/run/opendkim/opendkim.sock",
            );
            write(
                r,
                "etc/postfix/main.cf",
                "smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)\n\
                 milter_protocol = 6\nmilter_default_action = tempfail\n",
            );
        }),
        (id::MILTER_PROTOCOL, |r| {
            set(r, "/etc/postfix/main.cf", "milter_protocol = 2")
        }),
        (id::MILTER_DEFAULT_ACTION, |r| {
            set(r, "/etc/postfix/main.cf", "milter_default_action = accept")
        }),
        (id::KEY_PERMISSIONS, |r| {
            chmod(r, "etc/opendkim/keys/s1.private", 0o644)
        }),
        (id::KEY_TABLE_REFILE, |r| {
            set(
                r,
                "/etc/opendkim.conf",
                "KeyTable refile:/etc/opendkim/KeyTable",
            )
        }),
        (id::SIGNING_TABLE_NOT_REFILE, |r| {
            set(
                r,
                "/etc/opendkim.conf",
                "SigningTable /etc/opendkim/SigningTable",
            )
        }),
        (id::CANONICALIZATION, |r| {
            set(r, "/etc/opendkim.conf", "Canonicalization simple")
        }),
        (id::OVERSIGN_FROM, |r| {
            set(r, "/etc/opendkim.conf", "OversignHeaders To")
        }),
        (id::SOCKET_UMASK, |r| {
            set(r, "/etc/opendkim.conf", "UMask 077")
        }),
        (id::MODE_VERIFY_ONLY, |r| {
            set(r, "/etc/opendkim.conf", "Mode v")
        }),
        (id::UNSAFE_KEYS_ALLOWED, |r| {
            set(r, "/etc/opendkim.conf", "RequireSafeKeys false")
        }),
        (id::SECRET_READABLE, |r| {
            set(r, "/etc/opendkim.conf", "LDAPBindPassword s3cret");
            chmod(r, "etc/opendkim.conf", 0o644);
        }),
        (id::UNIT_FILE_PERMISSIONS, |r| {
            write(
                r,
                "etc/systemd/system/opendkim.service",
                "[Service]\nUser=opendkim\nExecStart=/usr/sbin/opendkim -f\n",
            );
            chmod(r, "etc/systemd/system/opendkim.service", 0o666);
        }),
    ];
    let dir = tempfile::tempdir().unwrap();
    clean(dir.path());
    let baseline = audit(dir.path());
    for (target, _) in &cases {
        assert!(
            !baseline.iter().any(|f| f.id == *target),
            "the clean setup already has {target}: {baseline:#?}"
        );
    }
    for (target, break_it) in cases {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        clean(r);
        break_it(r);
        let broken = audit(r);
        let found: Vec<&Finding> = broken.iter().filter(|f| f.id == target).collect();
        assert!(!found.is_empty(), "{target} not raised: {broken:#?}");
        for f in &found {
            assert!(
                apply_fix(r, &f.fix) > 0,
                "{target}: the fix names no line to set:\n{}",
                f.fix
            );
        }
        let fixed = audit(r);
        assert!(
            !fixed.iter().any(|f| f.id == target),
            "{target}: still there after its fix\n{}\n{fixed:#?}",
            found[0].fix
        );
        let new: Vec<_> = ids(&fixed).difference(&ids(&broken)).copied().collect();
        assert!(
            new.is_empty(),
            "{target}: its fix creates {new:?}\n{}\n{fixed:#?}",
            found[0].fix
        );
    }
}

/// The list a fix writes keeps every other milter, in its place.
#[test]
fn list_fixes_keep_the_other_milters() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    clean(r);
    set(
        r,
        "/etc/postfix/main.cf",
        "smtpd_milters = unix:/var/spool/postfix/opendkim/opendkim.sock, unix:/opendmarc/opendmarc.sock",
    );
    let found = audit(r);
    let f = found
        .iter()
        .find(|f| f.id == id::SOCKET_CHROOT_PATH)
        .unwrap();
    assert_eq!(
        f.fix,
        "in /etc/postfix/main.cf: smtpd_milters = unix:/opendkim/opendkim.sock, unix:/opendmarc/opendmarc.sock"
    );
    // Chrooted Debian: no fix suggests a path the chroot hides.
    set(
        r,
        "/etc/opendkim.conf",
        "Socket local:/run/opendkim/opendkim.sock",
    );
    set(
        r,
        "/etc/postfix/main.cf",
        "smtpd_milters = unix:/wrong.sock",
    );
    for f in audit(r) {
        assert!(
            !f.fix.contains("unix:/run/"),
            "{}: {}\n{}",
            f.id,
            f.message,
            f.fix
        );
    }
}
