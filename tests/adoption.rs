//! Adopting real OpenDKIM setups: `audit`, `import`, `apply` on every case
//! of `tests/fixtures/adopt/` (a public project's setup, see its
//! PROVENANCE), judged by the real OpenDKIM against what the original
//! setup does.
//!
//! For each case, in a copy of its tree (keys generated, owners and modes
//! from MODES set):
//!
//! 1. `audit` raises exactly the errors EXPECT.toml lists: no false error.
//! 2. The original setup, started as its unit (or supervisor) starts the
//!    real OpenDKIM, signs each probe of EXPECT.toml with exactly the
//!    listed d=/s= pairs; this proves the expectations. (Cases whose keys
//!    live in a database have no database here and skip this step; a setup
//!    OpenDKIM refuses to start signs nothing.)
//! 3. `import` refuses with the listed reason and exit 1, or writes a
//!    dkim.toml that `check` accepts; `apply` puts it in place in the same
//!    tree; a second `plan` is empty.
//! 4. The adopted setup, started as its rendered unit starts OpenDKIM,
//!    signs the same probes the same way, and no milter list of the MTA
//!    (as the real `postconf -x` expands it) reaches OpenDKIM twice.
//!
//! A probe travels as mail does: the milter list of its service (main.cf
//! `smtpd_milters` or the service's `-o smtpd_milters=` override, from
//! `postconf -x`/`-P`; sendmail.mc's filters, included files followed) is
//! resolved as the MTA resolves it (relative unix paths from the queue
//! directory, absolute ones inside the chroot of a chrooted service), and
//! miltertest talks to every entry that accepts a connection, with the
//! probe's client address, client name, daemon name and SMTP AUTH.
//!
//! OpenDKIM runs with the tree as / (a chroot in a private mount
//! namespace, the host's /usr bound read-only inside) and in a private
//! network namespace: the TCP ports the setups name (8891, 12301, ...) are
//! bound there, never on the host's loopback, so parallel runs never meet.
//! It is stopped by its PID.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dkimctl::config::model::Algorithm;
use dkimctl::keys;
use serde_json::Value;

use crate::support::proc::{run_bounded, stop_child, wait_until};
use crate::support::{self, Run};

macro_rules! cases {
    ($($test:ident => $dir:literal,)*) => {
        $(
            #[test]
            fn $test() {
                adopt($dir);
            }
        )*
        /// Every case directory with a test of its own.
        const CASES: &[&str] = &[$($dir),*];
    };
}

cases! {
    adopt_ansible_pydis => "ansible-pydis",
    adopt_debian_sendmail => "debian-sendmail",
    adopt_debops => "debops",
    adopt_docker_mailserver => "docker-mailserver",
    adopt_emailwiz => "emailwiz",
    adopt_fedora_default => "fedora-default",
    adopt_juju_opendkim_charm => "juju-opendkim-charm",
    adopt_mailinabox => "mailinabox",
    adopt_mailserver_ansible => "mailserver-ansible",
    adopt_modoboa_mysql => "modoboa-mysql",
    adopt_modoboa_pgsql => "modoboa-pgsql",
    adopt_modoboa_rhel => "modoboa-rhel",
    adopt_salt_formula => "salt-formula",
    adopt_sovereign => "sovereign",
    adopt_vpstoolbox => "vpstoolbox",
}

fn fixtures() -> PathBuf {
    support::repo().join("tests/fixtures/adopt")
}

#[test]
fn every_case_has_a_test() {
    let mut dirs: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs, CASES,
        "add the new case to cases! in tests/adoption.rs"
    );
}

/// EXPECT.toml of a case.
#[derive(Debug)]
struct Expect {
    /// `None` when import must succeed; the words of the refusal otherwise.
    refuse: Option<String>,
    probes: Vec<Probe>,
    errors: BTreeSet<String>,
    not_errors: BTreeSet<String>,
}

/// One `[[sign]]` of EXPECT.toml.
#[derive(Debug, Clone)]
struct Probe {
    client: String,
    auth: bool,
    service: Option<String>,
    client_name: Option<String>,
    daemon: Option<String>,
    from: String,
    signatures: BTreeSet<(String, String)>,
    note: String,
}

impl Expect {
    fn read(case: &Path) -> Expect {
        let text = std::fs::read_to_string(case.join("EXPECT.toml")).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        let s = |t: &toml::Table, k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let ids = |k: &str| -> BTreeSet<String> {
            doc["audit"][k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let import = doc["import"].as_table().unwrap();
        let refuse = match s(import, "outcome").as_deref() {
            Some("ok") => None,
            Some("refuse") => Some(s(import, "reason").unwrap()),
            other => panic!("unknown import outcome {other:?}"),
        };
        let probes = doc["sign"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let p = p.as_table().unwrap();
                Probe {
                    client: s(p, "client").unwrap(),
                    auth: p["auth"].as_bool().unwrap(),
                    service: s(p, "service"),
                    client_name: s(p, "client_name"),
                    daemon: s(p, "daemon"),
                    from: s(p, "from").unwrap(),
                    signatures: p["signatures"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|sig| {
                            let t = sig.as_table().unwrap();
                            (s(t, "d").unwrap(), s(t, "s").unwrap())
                        })
                        .collect(),
                    note: s(p, "note").unwrap_or_default(),
                }
            })
            .collect();
        Expect {
            refuse,
            probes,
            errors: ids("errors"),
            not_errors: ids("not_errors"),
        }
    }
}

/// Whether the tools the whole flow needs are here (under CI their
/// absence fails).
fn tools() -> bool {
    support::require_root("OpenDKIM runs chrooted in private mount and network namespaces")
        && [
            "opendkim",
            "miltertest",
            "postconf",
            "unshare",
            "nsenter",
            "ip",
            "chroot",
        ]
        .iter()
        .all(|t| support::require_tool(t))
}

/// The whole flow for one case.
fn adopt(case: &str) {
    if !tools() {
        return;
    }
    let src = fixtures().join(case);
    let expect = Expect::read(&src);
    let tree = Tree::new(&src);

    // 1. No false error.
    audit_finds(&tree, &expect);

    // 2. The original setup does what EXPECT.toml says.
    if src.join("DATASETS").exists() {
        eprintln!("{case}: keys in a database (see DATASETS): the original is not run");
    } else {
        let launch = Launch::of(&tree, &tree.original_conf());
        tree.expect_signing(&launch, &expect, "the original setup");
    }

    // 3. import refuses with the reason, or 4. the adopted setup signs as
    // the original did.
    match &expect.refuse {
        Some(reason) => {
            let import = tree.dkimctl(&["import"]);
            assert_eq!(
                import.code(),
                1,
                "{case}: import must refuse ({reason}):\n--- stdout\n{}\n--- stderr\n{}",
                import.stdout(),
                import.stderr()
            );
            assert!(
                import.stderr().contains(reason.as_str()),
                "{case}: the refusal does not name {reason}:\n{}",
                import.stderr()
            );
            assert!(
                import.stdout().is_empty(),
                "{case}: a refusing import writes no dkim.toml"
            );
        }
        None => {
            adopt_and_sign(&tree, &expect);
        }
    }
}

/// audit raises exactly the errors EXPECT.toml lists.
fn audit_finds(tree: &Tree, expect: &Expect) {
    let case = &tree.name;
    let audit = tree.dkimctl(&["audit", "--json", "--fail-on", "error"]);
    let json: Value = serde_json::from_str(&audit.stdout())
        .unwrap_or_else(|e| panic!("{case}: audit is not JSON ({e}):\n{}", audit.stderr()));
    let errors: BTreeSet<String> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    let show = || serde_json::to_string_pretty(&json["findings"]).unwrap();
    assert_eq!(
        errors,
        expect.errors,
        "{case}: audit errors differ from EXPECT.toml\n{}",
        show()
    );
    for id in &expect.not_errors {
        assert!(!errors.contains(id), "{case}: false error {id}\n{}", show());
    }
}

/// import, check, plan (which names what import left out), apply, plan
/// again (empty); then the adopted setup, started as its rendered unit
/// starts OpenDKIM, must sign every probe as EXPECT.toml says. Returns the
/// dkim.toml.
fn adopt_and_sign(tree: &Tree, expect: &Expect) -> String {
    let case = &tree.name;
    let import = tree.dkimctl(&["import"]).expect(0);
    let toml = import.stdout();
    tree.write("etc/dkimctl/dkim.toml", &toml);
    tree.dkimctl(&["check"]).expect(0);
    let plan = tree.dkimctl(&["plan"]).expect(1);
    assert!(
        !plan.stdout().contains("breaking: "),
        "{case}: the adopted dkim.toml would break the setup:\n{}",
        plan.stdout()
    );
    for note in import.stderr().lines() {
        if let Some(what) = note.strip_prefix("dkimctl: not carried over: ") {
            assert!(
                plan.stdout().contains(what),
                "{case}: plan does not show what import did not carry over ({what}):\n{}",
                plan.stdout()
            );
        }
    }
    tree.dkimctl(&["apply", "--yes"]).expect(0);
    let again = tree.dkimctl(&["plan"]);
    assert_eq!(
        again.code(),
        0,
        "{case}: a second plan is not empty:\n{}\n--- dkim.toml\n{toml}",
        again.stdout()
    );
    let launch = Launch::of(tree, Path::new("/etc/opendkim/opendkim.conf"));
    assert!(
        launch.user.is_some(),
        "{case}: the rendered unit names no User="
    );
    tree.expect_signing(
        &launch,
        expect,
        &format!("the adopted setup\n--- dkim.toml\n{toml}"),
    );
    toml
}

/// Mail-in-a-Box's keys live below /home/user-data, which its storage
/// user owns: OpenDKIM refuses them with RequireSafeKeys, which is why the
/// box turns it off and import keeps it off. Turning it back on in
/// dkim.toml is shown by plan as a breaking change, with the fix.
// See: issue 13, defect 4.
#[test]
fn safe_keys_on_mailinabox_is_a_breaking_change() {
    if !support::require_root("the fixture's owners are set with chown") {
        return;
    }
    let tree = Tree::new(&fixtures().join("mailinabox"));
    let toml = tree.dkimctl(&["import"]).expect(0).stdout();
    assert!(toml.contains("require_safe_keys = false"), "{toml}");
    tree.write(
        "etc/dkimctl/dkim.toml",
        &toml.replace("require_safe_keys = false", "require_safe_keys = true"),
    );
    let plan = tree.dkimctl(&["plan"]);
    assert!(
        plan.stdout().contains(
            "breaking: RequireSafeKeys yes: OpenDKIM will refuse /home/user-data/mail/dkim/mail.private \
             (/home/user-data is writable by its owner user-data)"
        ),
        "{}",
        plan.stdout()
    );
    assert!(
        plan.stdout()
            .contains("fix: keep require_safe_keys = false")
    );
}

/// The mailserver Ansible role with its MySQL rows (DATASETS) moved into
/// files: OpenDKIM is attached to submission and smtps only, through
/// relative socket paths in a socket directory it shares with clamav,
/// spamass and sqlgrey (postfix:milter 0775). Adopted, port 25 still does
/// not call it, and the shared directory keeps its owner and mode.
// See: issue 13, defects 5 and 6.
#[test]
fn adopt_service_scoped_milter_in_a_shared_socket_directory() {
    if !tools() {
        return;
    }
    let src = fixtures().join("mailserver-ansible");
    let expect = Expect::read(&src);
    let tree = Tree::new(&src);
    let conf = std::fs::read_to_string(tree.host("etc/opendkim.conf")).unwrap();
    let conf: String = conf
        .lines()
        .map(|l| match l.split_whitespace().next() {
            Some("KeyTable") => "KeyTable           /etc/opendkim/KeyTable".to_string(),
            Some("SigningTable") => "SigningTable       /etc/opendkim/SigningTable".to_string(),
            _ => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect();
    tree.write("etc/opendkim.conf", &conf);
    tree.write(
        "etc/opendkim/KeyTable",
        "example.com example.com:my-selector:/etc/opendkim/keys/example.com.private\n",
    );
    // The role's SigningTable is keyed by domain (keycol=domain), looked up
    // as OpenDKIM looks up a plain table.
    tree.write("etc/opendkim/SigningTable", "example.com example.com\n");
    let key = tree.host("etc/opendkim/keys/example.com.private");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let pair = keys::generate(Algorithm::RsaSha256, 2048).unwrap();
    std::fs::write(&key, pair.private_pem.expose()).unwrap();
    std::fs::set_permissions(&key, mode_of("600")).unwrap();
    let (uid, gid) = tree.user("opendkim").unwrap();
    std::os::unix::fs::chown(&key, Some(uid), Some(gid)).unwrap();
    let shared = tree.host("var/spool/postfix/milters");
    let before = std::fs::metadata(&shared).unwrap();
    let main_before = std::fs::read_to_string(tree.host("etc/postfix/main.cf")).unwrap();

    let launch = Launch::of(&tree, &tree.original_conf());
    tree.expect_signing(&launch, &expect, "the original setup, keys in files");
    let toml = adopt_and_sign(&tree, &expect);

    use std::os::unix::fs::MetadataExt;
    let after = std::fs::metadata(&shared).unwrap();
    assert_eq!(
        (after.uid(), after.gid(), after.mode()),
        (before.uid(), before.gid(), before.mode()),
        "apply took over the shared socket directory\n--- dkim.toml\n{toml}"
    );
    let tmpfiles =
        std::fs::read_to_string(tree.host("etc/tmpfiles.d/dkimctl.conf")).unwrap_or_default();
    assert!(
        !tmpfiles.contains("/var/spool/postfix/milters "),
        "tmpfiles.d would take over the shared directory at boot:\n{tmpfiles}"
    );
    let main_after = std::fs::read_to_string(tree.host("etc/postfix/main.cf")).unwrap();
    let milters = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("smtpd_milters") || l.starts_with("non_smtpd_milters"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        milters(&main_after),
        milters(&main_before),
        "plan gave port 25 or local mail the DKIM milter"
    );
}

/// A case's tree in a temporary directory.
struct Tree {
    dir: tempfile::TempDir,
    /// The case's name (for messages).
    name: String,
}

impl Tree {
    /// Copies the case, generates its keys (KEYS) and sets the owners and
    /// modes MODES lists.
    fn new(src: &Path) -> Tree {
        let dir = tempfile::Builder::new().prefix("adopt-").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        copy(src, dir.path(), true);
        let tree = Tree {
            dir,
            name: src.file_name().unwrap().to_string_lossy().into_owned(),
        };
        for f in lines_of(&src.join("KEYS")) {
            let (path, mode, owner, alg) = (f[0].as_str(), &f[1], &f[2], &f[3]);
            let real = tree.host(path);
            std::fs::create_dir_all(real.parent().unwrap()).unwrap();
            let algorithm = match alg.as_str() {
                "ed25519" => Algorithm::Ed25519Sha256,
                _ => Algorithm::RsaSha256,
            };
            let pair = keys::generate(algorithm, 2048).unwrap();
            std::fs::write(&real, pair.private_pem.expose()).unwrap();
            std::fs::set_permissions(&real, mode_of(mode)).unwrap();
            let (uid, gid) = tree.user(owner).expect("KEYS owner in etc/passwd");
            std::os::unix::fs::chown(&real, Some(uid), Some(gid)).unwrap();
        }
        for f in lines_of(&src.join("MODES")) {
            let real = tree.host(&f[0]);
            if !real.exists() {
                std::fs::create_dir_all(&real).unwrap();
            }
            let uid = tree.user(&f[2]).map(|u| u.0).unwrap_or(0);
            let gid = tree.group(&f[3]).unwrap_or(0);
            std::os::unix::fs::chown(&real, Some(uid), Some(gid)).unwrap();
            std::fs::set_permissions(&real, mode_of(&f[1])).unwrap();
        }
        tree
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The real path of a host path.
    fn host(&self, p: &str) -> PathBuf {
        self.path().join(p.trim_start_matches('/'))
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.host(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn dkimctl(&self, args: &[&str]) -> Run {
        let root = self.path().display().to_string();
        let mut all = vec!["--root", root.as_str()];
        all.extend_from_slice(args);
        support::dkimctl(&all)
    }

    /// uid and primary gid of a user of the tree's etc/passwd.
    fn user(&self, name: &str) -> Option<(u32, u32)> {
        if name == "root" {
            return Some((0, 0));
        }
        let text = std::fs::read_to_string(self.host("etc/passwd")).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[0] == name {
                Some((f[2].parse().ok()?, f[3].parse().ok()?))
            } else {
                None
            }
        })
    }

    /// gid of a group of the tree's etc/group.
    fn group(&self, name: &str) -> Option<u32> {
        if name == "root" {
            return Some(0);
        }
        let text = std::fs::read_to_string(self.host("etc/group")).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == name).then(|| f[2].parse().ok())?
        })
    }

    /// The configuration file OpenDKIM reads when no `-x` says otherwise:
    /// the packages' compiled-in default.
    fn original_conf(&self) -> PathBuf {
        PathBuf::from("/etc/opendkim.conf")
    }

    /// Starts OpenDKIM as `launch` says, sends every probe and compares
    /// what it signs with EXPECT.toml.
    fn expect_signing(&self, launch: &Launch, expect: &Expect, what: &str) {
        let case = &self.name;
        let mta = Mta::read(self);
        let od = match OpenDkim::start(self, launch) {
            Ok(od) => od,
            Err(log) => {
                // A setup OpenDKIM refuses to start signs nothing.
                for p in &expect.probes {
                    assert!(
                        p.signatures.is_empty(),
                        "{case}: OpenDKIM does not start from {what}, yet EXPECT.toml has {} sign {:?}:\n{log}",
                        p.from,
                        p.signatures
                    );
                }
                return;
            }
        };
        let mut conversations: Vec<Conversation> = Vec::new();
        for (i, p) in expect.probes.iter().enumerate() {
            let route = mta.route(self, p, &od);
            for (j, milter) in route.entries.iter().enumerate() {
                conversations.push(Conversation {
                    name: format!("p{i}e{j}"),
                    milter: milter.clone(),
                    probe: p.clone(),
                    daemon: route.daemon.clone(),
                });
            }
        }
        // Every list the MTA has, to see that none reaches OpenDKIM twice.
        let lists = mta.lists(self, &od);
        for (k, (_, entries)) in lists.iter().enumerate() {
            for (j, milter) in entries.iter().enumerate() {
                conversations.push(Conversation {
                    name: format!("l{k}e{j}"),
                    milter: milter.clone(),
                    probe: Probe {
                        client: "127.0.0.1".into(),
                        auth: false,
                        service: None,
                        client_name: None,
                        daemon: None,
                        from: "nobody@invalid.example".into(),
                        signatures: BTreeSet::new(),
                        note: String::new(),
                    },
                    daemon: "smtpd".into(),
                });
            }
        }
        let results = od.talk(&conversations, &mta.identity(self));
        for (k, (list, entries)) in lists.iter().enumerate() {
            let reached: Vec<&String> = entries
                .iter()
                .enumerate()
                .filter(|(j, _)| results.get(&format!("l{k}e{j}")).is_some_and(|r| r.reached))
                .map(|(_, e)| e)
                .collect();
            assert!(
                reached.len() <= 1,
                "{case}: {list} reaches OpenDKIM {} times ({reached:?}) in {what}",
                reached.len()
            );
        }
        for (i, p) in expect.probes.iter().enumerate() {
            let mut got: BTreeSet<(String, String)> = BTreeSet::new();
            let mut transcript = String::new();
            for (name, r) in results
                .iter()
                .filter(|(n, _)| n.starts_with(&format!("p{i}e")))
            {
                transcript.push_str(&format!(
                    "{name} {}: {}{}\n",
                    r.milter,
                    if r.reached {
                        format!("reply {:?}, signatures {:?}", r.reply, r.signatures)
                    } else {
                        "no milter there".into()
                    },
                    r.error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ));
                if !r.reached {
                    continue;
                }
                assert!(
                    matches!(r.reply, Some('a' | 'c')),
                    "{case}: OpenDKIM did not accept the probe from {} ({}) in {what}: {r:?}\n{}",
                    p.client,
                    p.from,
                    od.log()
                );
                got.extend(r.signatures.iter().cloned());
            }
            assert_eq!(
                got,
                p.signatures,
                "{case}: mail from {} by {}{}{} is signed differently by {what}\n\
                 expected: {}\n{transcript}--- OpenDKIM\n{}",
                p.from,
                p.client,
                if p.auth { " (authenticated)" } else { "" },
                p.service
                    .as_deref()
                    .map(|s| format!(" on {s}"))
                    .unwrap_or_default(),
                p.note,
                od.log()
            );
        }
    }
}

fn mode_of(s: &str) -> std::fs::Permissions {
    std::fs::Permissions::from_mode(u32::from_str_radix(s, 8).unwrap())
}

/// The lines of a KEYS or MODES file, as fields (comments skipped).
fn lines_of(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|f| !f.is_empty() && !f[0].starts_with('#'))
        .collect()
}

/// Copies a case's host tree (the files beside it and `.empty` placeholders
/// left out).
fn copy(from: &Path, to: &Path, top: bool) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if (top
            && (n
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '.' || c == '_')
                || n.ends_with(".toml")))
            || n == ".empty"
        {
            continue;
        }
        let dst = to.join(&name);
        if e.path().is_dir() {
            copy(&e.path(), &dst, false);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// How OpenDKIM is started: from the unit (with its drop-ins and
/// EnvironmentFile), a supervisor program, or nothing (the defaults).
#[derive(Debug)]
struct Launch {
    /// `-x`: the configuration file (host path).
    conf: PathBuf,
    /// Further arguments that matter: `-p SOCKET`, `-u USER`.
    args: Vec<String>,
    /// The unit's `User=` and `Group=`, if any (else root).
    user: Option<String>,
    group: Option<String>,
    /// The unit's `ProtectHome=` and `BindReadOnlyPaths=`: what of /home
    /// and /root the service sees.
    protect_home: Option<String>,
    bind_read_only: Vec<String>,
}

impl Launch {
    fn of(tree: &Tree, default_conf: &Path) -> Launch {
        let mut exec: Option<String> = None;
        let mut user = None;
        let mut group = None;
        let mut protect_home = None;
        let mut bind_read_only = Vec::new();
        let mut env: Vec<(String, String)> = Vec::new();
        // The unit: the first of /etc, /lib, /usr/lib, then its drop-ins.
        let mut files: Vec<PathBuf> = [
            "etc/systemd/system",
            "lib/systemd/system",
            "usr/lib/systemd/system",
        ]
        .iter()
        .map(|d| tree.host(&format!("{d}/opendkim.service")))
        .filter(|p| p.is_file())
        .take(1)
        .collect();
        let dropins = tree.host("etc/systemd/system/opendkim.service.d");
        let mut extra: Vec<PathBuf> = std::fs::read_dir(&dropins)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        extra.sort();
        files.extend(
            extra
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "conf")),
        );
        for f in &files {
            for line in std::fs::read_to_string(f).unwrap().lines() {
                let Some((k, v)) = line.split_once('=') else {
                    continue;
                };
                let v = v.trim().to_string();
                match k.trim() {
                    "ExecStart" => exec = (!v.is_empty()).then_some(v),
                    "User" => user = Some(v),
                    "Group" => group = Some(v),
                    "ProtectHome" => protect_home = Some(v),
                    "BindReadOnlyPaths" => {
                        bind_read_only.extend(v.split_whitespace().map(str::to_string))
                    }
                    "EnvironmentFile" => {
                        let p = v.trim_start_matches('-');
                        for l in std::fs::read_to_string(tree.host(p))
                            .unwrap_or_default()
                            .lines()
                        {
                            if let Some((n, val)) = l.split_once('=') {
                                env.push((n.trim().into(), val.trim().trim_matches('"').into()));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if files.is_empty() {
            // A supervisor program (docker-mailserver, modoboa).
            let conf_d = tree.host("etc/supervisor/conf.d");
            for e in std::fs::read_dir(conf_d)
                .map(|d| d.flatten().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let mut in_opendkim = false;
                for l in text.lines() {
                    if l.starts_with('[') {
                        in_opendkim = l.trim() == "[program:opendkim]";
                    } else if in_opendkim && let Some(c) = l.strip_prefix("command=") {
                        exec = Some(c.to_string());
                    }
                }
            }
        }
        let mut words: Vec<String> = Vec::new();
        for w in exec.unwrap_or_default().split_whitespace().skip(1) {
            let w = w.trim_matches('"');
            if let Some(name) = w.strip_prefix('$') {
                let name = name.trim_start_matches('{').trim_end_matches('}');
                if let Some((_, v)) = env.iter().find(|(n, _)| n == name) {
                    words.extend(v.split_whitespace().map(str::to_string));
                }
            } else {
                words.push(w.to_string());
            }
        }
        let mut conf = default_conf.to_path_buf();
        let mut args = Vec::new();
        let mut it = words.into_iter();
        while let Some(w) = it.next() {
            match w.as_str() {
                "-x" => conf = PathBuf::from(it.next().unwrap_or_default()),
                "-p" | "-u" => {
                    args.push(w);
                    args.push(it.next().unwrap_or_default());
                }
                _ => {}
            }
        }
        Launch {
            conf,
            args,
            user,
            group,
            protect_home,
            bind_read_only,
        }
    }

    /// The milter socket: `-p`, else the last Socket line (OpenDKIM keeps
    /// the last value of a repeated parameter).
    fn socket(&self, tree: &Tree) -> Option<String> {
        if let Some(i) = self.args.iter().position(|a| a == "-p") {
            return self.args.get(i + 1).cloned();
        }
        let text = std::fs::read_to_string(tree.host(&self.conf.display().to_string())).ok()?;
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next()?.eq_ignore_ascii_case("socket")).then(|| w.next().map(str::to_string))?
            })
            .next_back()
    }
}

/// OpenDKIM running from a tree.
struct OpenDkim {
    child: Child,
    log: PathBuf,
    /// The socket it was started with, as written.
    socket: Option<String>,
}

impl OpenDkim {
    /// Starts OpenDKIM and waits until its milter socket listens; `Err`
    /// with its output when it exits first.
    fn start(tree: &Tree, launch: &Launch) -> Result<OpenDkim, String> {
        let t = tree.path();
        for d in ["usr", "dev", "run/opendkim", "var/lib/opendkim"] {
            std::fs::create_dir_all(t.join(d)).unwrap();
        }
        for (link, target) in [
            ("lib64", "usr/lib64"),
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
        ] {
            if std::fs::symlink_metadata(t.join(link)).is_err() {
                std::os::unix::fs::symlink(target, t.join(link)).unwrap();
            }
        }
        // The fixture may hold a /lib of its own (units): the host's
        // libraries are bound over it.
        let bind_lib = if t.join("lib").is_dir() && !t.join("lib").is_symlink() {
            format!(" && mount --bind /usr/lib {}/lib", t.display())
        } else {
            if std::fs::symlink_metadata(t.join("lib")).is_err() {
                std::os::unix::fs::symlink("usr/lib", t.join("lib")).unwrap();
            }
            String::new()
        };
        for f in ["etc/ld.so.cache", "etc/nsswitch.conf"] {
            std::fs::copy(Path::new("/").join(f), t.join(f)).unwrap();
        }
        // `localhost` in Socket and milter lists resolves through it.
        if !t.join("etc/hosts").exists() {
            std::fs::write(t.join("etc/hosts"), "127.0.0.1 localhost\n::1 localhost\n").unwrap();
        }
        // What RuntimeDirectory= and StateDirectory= give a unit's user.
        let ids = launch.user.as_deref().map(|u| {
            let (uid, primary) = tree.user(u).expect("the unit's User= exists");
            let gid = launch
                .group
                .as_deref()
                .and_then(|g| tree.group(g))
                .unwrap_or(primary);
            (uid, gid)
        });
        if let Some((uid, gid)) = ids {
            for d in ["run/opendkim", "var/lib/opendkim"] {
                std::os::unix::fs::chown(t.join(d), Some(uid), Some(gid)).unwrap();
                std::fs::set_permissions(t.join(d), mode_of("750")).unwrap();
            }
        }
        let userspec = ids.map_or(String::new(), |(u, g)| format!("--userspec={u}:{g} "));
        let home = home_sandbox(t, launch);
        let args: Vec<String> = launch.args.iter().map(|a| shell_quote(a)).collect();
        let script = format!(
            "ip link set lo up && mount --bind /usr {t}/usr && mount -o remount,bind,ro {t}/usr{bind_lib}{home} && \
             exec chroot {userspec}{t} /usr/sbin/opendkim -f -x {conf} {args}",
            t = t.display(),
            conf = shell_quote(&launch.conf.display().to_string()),
            args = args.join(" ")
        );
        let log = t.join("opendkim.log");
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .stdout(File::create(&log).unwrap())
        .stderr(File::create(&log).unwrap());
        let child = cmd.spawn().expect("start opendkim");
        let mut od = OpenDkim {
            child,
            log,
            socket: launch.socket(tree),
        };
        let pid = od.child.id();
        // A zombie's /proc/PID/net is not its namespace's: the child must
        // still run when its sockets are read.
        let mut up = false;
        wait_until(Duration::from_secs(20), || {
            let running = matches!(od.child.try_wait(), Ok(None));
            up = running && listens(pid);
            up || !running
        });
        if up {
            Ok(od)
        } else {
            stop_child(&mut od.child, Duration::from_secs(5));
            Err(od.log())
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs every conversation through one miltertest, inside OpenDKIM's
    /// network namespace.
    fn talk(
        &self,
        conversations: &[Conversation],
        mta: &Identity,
    ) -> std::collections::BTreeMap<String, Talked> {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(mta.uid), Some(mta.gid)).unwrap();
        let mut script = String::from(LUA_PRELUDE);
        let out = lua_str(&dir.path().display().to_string());
        script.push_str(&format!("local out = {out}\n"));
        for c in conversations {
            script.push_str(&c.lua());
        }
        let path = dir.path().join("probes.lua");
        std::fs::write(&path, &script).unwrap();
        let run = run_bounded(
            Command::new("nsenter")
                .arg(format!("--net=/proc/{}/ns/net", self.child.id()))
                .arg("setpriv")
                .arg(format!("--reuid={}", mta.uid))
                .arg(format!("--regid={}", mta.gid))
                .arg(match mta.groups.is_empty() {
                    true => "--clear-groups".to_string(),
                    false => format!("--groups={}", mta.groups.join(",")),
                })
                .arg(support::which("miltertest").unwrap())
                .arg("-s")
                .arg(&path),
            None,
            Duration::from_secs(120),
        );
        assert_eq!(
            run.code(),
            0,
            "miltertest failed:\n{}{}\n--- OpenDKIM\n{}\n--- script\n{script}",
            run.stdout(),
            run.stderr(),
            self.log()
        );
        let read = |n: &str| std::fs::read(dir.path().join(n)).ok();
        conversations
            .iter()
            .map(|c| {
                let reached = read(&format!("{}.connected", c.name)).is_some();
                let reply = read(&format!("{}.reply", c.name))
                    .and_then(|r| r.first().copied())
                    .map(char::from);
                let mut signatures = Vec::new();
                let mut i = 0;
                while let Some(v) = read(&format!("{}.sig{i}", c.name)) {
                    let tags = crate::support::message::tags(&String::from_utf8_lossy(&v));
                    signatures.push((
                        tags.get("d").cloned().unwrap_or_default(),
                        tags.get("s").cloned().unwrap_or_default(),
                    ));
                    i += 1;
                }
                let error = read(&format!("{}.error", c.name))
                    .or_else(|| read(&format!("{}.refused", c.name)))
                    .map(|e| String::from_utf8_lossy(&e).into_owned());
                (
                    c.name.clone(),
                    Talked {
                        milter: c.milter.clone(),
                        reached,
                        reply,
                        signatures,
                        error,
                    },
                )
            })
            .collect()
    }
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(10));
    }
}

/// Shell commands (each after ` && `) giving the tree's /home and /root
/// the unit's `ProtectHome=`: `yes` makes them inaccessible, `read-only`
/// read-only, `tmpfs` empty but for the `BindReadOnlyPaths=` below them,
/// as systemd does (the paths are first bound aside, then back).
fn home_sandbox(t: &Path, launch: &Launch) -> String {
    let Some(mode) = launch.protect_home.as_deref() else {
        return String::new();
    };
    let mut sh = String::new();
    let held: Vec<(usize, &String)> = launch
        .bind_read_only
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            ["/home", "/root"]
                .iter()
                .any(|h| Path::new(p).starts_with(h))
        })
        .collect();
    let hold = t.join(".held");
    for (i, p) in &held {
        sh.push_str(&format!(
            " && mkdir -p {h}/{i} && mount --bind {src} {h}/{i}",
            h = hold.display(),
            src = shell_quote(&t.join(p.trim_start_matches('/')).display().to_string())
        ));
    }
    for dir in ["home", "root"] {
        let d = t.join(dir);
        if !d.is_dir() {
            continue;
        }
        let d = shell_quote(&d.display().to_string());
        match mode {
            "yes" | "true" => sh.push_str(&format!(" && mount -t tmpfs -o mode=000 tmpfs {d}")),
            "tmpfs" => sh.push_str(&format!(" && mount -t tmpfs -o mode=755 tmpfs {d}")),
            "read-only" => sh.push_str(&format!(
                " && mount --bind {d} {d} && mount -o remount,bind,ro {d}"
            )),
            _ => {}
        }
    }
    for (i, p) in &held {
        let dst = shell_quote(&t.join(p.trim_start_matches('/')).display().to_string());
        sh.push_str(&format!(
            " && mkdir -p {dst} && mount --bind {h}/{i} {dst} && mount -o remount,bind,ro {dst}",
            h = hold.display()
        ));
    }
    sh
}

/// True when `pid` is OpenDKIM (no longer the shell that sets up its
/// namespaces, which starts in the host's) and its network namespace has a
/// listening socket (the namespace is OpenDKIM's alone).
fn listens(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != "opendkim" {
        return false;
    }
    let read =
        |f: &str| std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
    let tcp = |text: String| {
        text.lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(3) == Some("0A"))
    };
    // /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path;
    // flag 00010000 is __SO_ACCEPTCON (listening).
    let unix = read("unix")
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(3) == Some("00010000"));
    unix || tcp(read("tcp")) || tcp(read("tcp6"))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn lua_str(s: &str) -> String {
    crate::support::miltertest::lua_str(s.as_bytes())
}

/// One probe sent to one milter address.
struct Conversation {
    name: String,
    /// The address in miltertest's notation (`unix:/real/path`,
    /// `inet:PORT@HOST`).
    milter: String,
    probe: Probe,
    /// `{daemon_name}`.
    daemon: String,
}

/// What came of a conversation.
#[derive(Debug)]
struct Talked {
    milter: String,
    reached: bool,
    reply: Option<char>,
    signatures: Vec<(String, String)>,
    error: Option<String>,
}

/// The Lua every conversation uses: connect (an address that does not
/// answer is no milter of this MTA), negotiate as Postfix does, the
/// connect, MAIL and header stages with their macros, then the message;
/// an early final reply ends it as it ends a real one.
const LUA_PRELUDE: &str = r#"
local function put(out, name, text)
  local f = assert(io.open(out .. "/" .. name, "wb"))
  f:write(text)
  f:close()
end
local function conversation(out, name, milter, daemon, host, ip, auth, from)
  local ok, conn = pcall(mt.connect, milter)
  if not ok or conn == nil then
    put(out, name .. ".refused", tostring(conn))
    return
  end
  put(out, name .. ".connected", "1")
  local e = mt.negotiate(conn, nil, nil, nil)
  if e ~= nil then error("negotiate: " .. e) end
  local function final(r)
    put(out, name .. ".reply", string.char(r))
    mt.disconnect(conn)
  end
  local function step(err, body)
    if err ~= nil then error(err) end
    local r = mt.getreply(conn)
    if r == SMFIR_CONTINUE or (body and r == SMFIR_SKIP) then return true end
    final(r)
    return false
  end
  mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.com", "{daemon_name}", daemon)
  if not step(mt.conninfo(conn, host, ip)) then return end
  if auth then
    mt.macro(conn, SMFIC_MAIL, "i", "4ADOPT", "{auth_type}", "PLAIN", "{auth_authen}", "user")
  else
    mt.macro(conn, SMFIC_MAIL, "i", "4ADOPT")
  end
  if not step(mt.mailfrom(conn, "<" .. from .. ">")) then return end
  if not mt.test_option(conn, SMFIP_NORCPT) then
    if not step(mt.rcptto(conn, "<rcpt@example.net>")) then return end
  end
  local headers = {
    {"From", from}, {"To", "rcpt@example.net"}, {"Subject", "adoption probe"},
    {"Date", "Mon, 01 Jan 2024 10:00:00 +0000"}, {"Message-ID", "<probe@example.net>"},
  }
  for _, h in ipairs(headers) do
    if not step(mt.header(conn, h[1], h[2])) then return end
  end
  if not step(mt.eoh(conn)) then return end
  if not step(mt.bodystring(conn, "adoption probe\r\n"), true) then return end
  e = mt.eom(conn)
  if e ~= nil then error("eom: " .. e) end
  local i = 0
  while true do
    local h = mt.getheader(conn, "DKIM-Signature", i)
    if h == nil then break end
    put(out, name .. ".sig" .. i, h)
    i = i + 1
  end
  final(mt.getreply(conn))
end
local function run(out, name, ...)
  local ok, err = pcall(conversation, out, name, ...)
  if not ok then put(out, name .. ".error", tostring(err)) end
end
"#;

impl Conversation {
    fn lua(&self) -> String {
        let p = &self.probe;
        let host = p
            .client_name
            .clone()
            .unwrap_or_else(|| format!("[{}]", p.client));
        format!(
            "run(out, {}, {}, {}, {}, {}, {}, {})\n",
            lua_str(&self.name),
            lua_str(&self.milter),
            lua_str(&self.daemon),
            lua_str(&host),
            lua_str(&p.client),
            p.auth,
            lua_str(&p.from)
        )
    }
}

/// The MTA side of a tree.
enum Mta {
    Postfix {
        /// The real path of its configuration directory.
        dir: PathBuf,
        /// The tree is a Debian system (master.cf's chroot `-` means y).
        debian: bool,
    },
    Sendmail {
        /// `S=` of every filter in sendmail.mc and the files it includes.
        filters: Vec<String>,
    },
    None,
}

/// Who the MTA's milter client runs as: Postfix's smtpd and cleanup as
/// `postfix` (with the groups the tree's /etc/group gives it), so a socket
/// Postfix may not open is not reached; Sendmail as root.
struct Identity {
    uid: u32,
    gid: u32,
    groups: Vec<String>,
}

/// Where a probe goes: the addresses of its service's milter list and
/// the daemon name the MTA passes.
struct Route {
    entries: Vec<String>,
    daemon: String,
}

impl Mta {
    fn read(tree: &Tree) -> Mta {
        let dir = tree.host("etc/postfix");
        if dir.join("main.cf").is_file() {
            return Mta::Postfix {
                dir,
                debian: tree.host("etc/debian_version").exists(),
            };
        }
        let mc = tree.host("etc/mail/sendmail.mc");
        if mc.is_file() {
            let mut filters = Vec::new();
            sendmail_filters(tree, &mc, &mut filters, 0);
            return Mta::Sendmail { filters };
        }
        Mta::None
    }

    fn identity(&self, tree: &Tree) -> Identity {
        let root = Identity {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
        };
        let Mta::Postfix { dir, .. } = self else {
            return root;
        };
        let owner = postconf(dir, &["-h", "mail_owner"]).trim().to_string();
        let Some((uid, gid)) = tree.user(&owner) else {
            return root;
        };
        let groups = std::fs::read_to_string(tree.host("etc/group"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && f[3].split(',').any(|m| m == owner)).then(|| f[2].to_string())
            })
            .chain(std::iter::once(gid.to_string()))
            .collect();
        Identity { uid, gid, groups }
    }

    fn route(&self, tree: &Tree, p: &Probe, od: &OpenDkim) -> Route {
        match self {
            Mta::Postfix { dir, debian } => {
                let service = match &p.service {
                    Some(s) => (s.clone(), "inet".to_string()),
                    None if postconf(dir, &["-F", "-h", "smtp/inet/command"]).trim()
                        == "postscreen" =>
                    {
                        ("smtpd".into(), "pass".into())
                    }
                    None => ("smtp".into(), "inet".into()),
                };
                let list = postfix_list(dir, &service);
                let chroot = match postconf(
                    dir,
                    &["-F", "-h", &format!("{}/{}/chroot", service.0, service.1)],
                )
                .trim()
                {
                    "y" => true,
                    "n" => false,
                    _ => *debian,
                };
                Route {
                    entries: resolve_postfix(tree, dir, &list, chroot),
                    daemon: postconf(dir, &["-h", "-x", "milter_macro_daemon_name"])
                        .trim()
                        .to_string(),
                }
            }
            Mta::Sendmail { filters } => Route {
                entries: filters.iter().map(|f| milter_in_tree(tree, f)).collect(),
                daemon: p.daemon.clone().unwrap_or_else(|| "MTA".into()),
            },
            Mta::None => Route {
                entries: od.socket.iter().map(|s| milter_in_tree(tree, s)).collect(),
                daemon: p.daemon.clone().unwrap_or_default(),
            },
        }
    }

    /// Every milter list, by name, with its entries resolved.
    fn lists(&self, tree: &Tree, od: &OpenDkim) -> Vec<(String, Vec<String>)> {
        match self {
            Mta::Postfix { dir, debian } => {
                let mut out = Vec::new();
                for name in ["smtpd_milters", "non_smtpd_milters"] {
                    let v = postconf(dir, &["-h", "-x", name]);
                    out.push((name.to_string(), resolve_postfix(tree, dir, &v, *debian)));
                }
                for line in postconf(dir, &["-P", "-x"]).lines() {
                    let Some((key, value)) = line
                        .split_once(" = ")
                        .or_else(|| line.strip_suffix(" =").map(|k| (k, "")))
                    else {
                        continue;
                    };
                    if !key.ends_with("_milters") {
                        continue;
                    }
                    let svc: Vec<&str> = key.split('/').collect();
                    let chroot = match postconf(
                        dir,
                        &["-F", "-h", &format!("{}/{}/chroot", svc[0], svc[1])],
                    )
                    .trim()
                    {
                        "y" => true,
                        "n" => false,
                        _ => *debian,
                    };
                    out.push((key.to_string(), resolve_postfix(tree, dir, value, chroot)));
                }
                out
            }
            Mta::Sendmail { filters } => vec![(
                "sendmail.mc filters".into(),
                filters.iter().map(|f| milter_in_tree(tree, f)).collect(),
            )],
            Mta::None => vec![(
                "OpenDKIM's socket".into(),
                od.socket.iter().map(|s| milter_in_tree(tree, s)).collect(),
            )],
        }
    }
}

/// Real postconf on a configuration directory; its output.
fn postconf(dir: &Path, args: &[&str]) -> String {
    let run = run_bounded(
        Command::new("postconf").arg("-c").arg(dir).args(args),
        None,
        Duration::from_secs(30),
    );
    run.stdout()
}

/// The smtpd_milters a master.cf service uses: its `-o` override, else
/// main.cf's (both expanded by postconf).
fn postfix_list(dir: &Path, (name, kind): &(String, String)) -> String {
    let key = format!("{name}/{kind}/smtpd_milters");
    for line in postconf(dir, &["-P", "-x", &key]).lines() {
        if let Some(v) = line.strip_prefix(&format!("{key} =")) {
            return v.trim().to_string();
        }
    }
    postconf(dir, &["-h", "-x", "smtpd_milters"])
        .trim()
        .to_string()
}

/// The entries of a Postfix milter list as miltertest addresses, resolved
/// as Postfix does: `inet:HOST:PORT`, unix paths relative to the queue
/// directory, absolute ones under it when the service is chrooted.
fn resolve_postfix(tree: &Tree, dir: &Path, list: &str, chroot: bool) -> Vec<String> {
    let queue = postconf(dir, &["-h", "-x", "queue_directory"])
        .trim()
        .to_string();
    let mut out = Vec::new();
    let mut entries = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in list.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' | ' ' | '\t' | '\n' if depth == 0 => {
                if !cur.trim().is_empty() {
                    entries.push(std::mem::take(&mut cur));
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        entries.push(cur);
    }
    for e in entries {
        let e = e.trim();
        let addr = match e.strip_prefix('{') {
            Some(inner) => inner
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
            None => e.to_string(),
        };
        let (scheme, rest) = match addr.split_once(':') {
            Some((s, r)) if s == "inet" || s == "unix" || s == "local" => (s, r),
            _ => ("unix", addr.as_str()),
        };
        if scheme == "inet" {
            let Some((host, port)) = rest.rsplit_once(':') else {
                continue;
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let family = if host.contains(':') { "inet6" } else { "inet" };
            out.push(format!("{family}:{port}@{host}"));
        } else {
            let p = Path::new(rest);
            let host_path = if p.is_relative() {
                Path::new(&queue).join(p)
            } else if chroot {
                Path::new(&queue).join(p.strip_prefix("/").unwrap())
            } else {
                p.to_path_buf()
            };
            out.push(format!(
                "unix:{}",
                tree.host(&host_path.display().to_string()).display()
            ));
        }
    }
    out
}

/// An OpenDKIM/libmilter address (`local:/path`, `inet:PORT@HOST`,
/// `inet:PORT`) in miltertest's notation, unix paths inside the tree.
fn milter_in_tree(tree: &Tree, s: &str) -> String {
    let s = s.trim();
    if let Some(p) = s.strip_prefix("local:").or_else(|| s.strip_prefix("unix:")) {
        return format!("unix:{}", tree.host(p).display());
    }
    if s.starts_with('/') {
        return format!("unix:{}", tree.host(s).display());
    }
    match s.split_once('@') {
        Some(_) => s.to_string(),
        // inet:PORT listens on every address.
        None => format!("{s}@127.0.0.1"),
    }
}

/// `S=` of the INPUT_MAIL_FILTER lines of a .mc/.m4 file and of the files
/// it includes (inside the tree).
fn sendmail_filters(tree: &Tree, file: &Path, out: &mut Vec<String>, depth: usize) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("INPUT_MAIL_FILTER(") {
        let after = &rest[i..];
        let end = after.find(')').unwrap_or(after.len());
        let call = &after[..end];
        if let Some(s) = call.split("S=").nth(1) {
            let addr: String = s
                .chars()
                .take_while(|c| !matches!(c, ',' | '\'' | ')'))
                .collect();
            out.push(addr.trim().to_string());
        }
        rest = &after[end..];
    }
    if depth > 3 {
        return;
    }
    for line in text.lines() {
        if let Some(arg) = line.trim().strip_prefix("include(`") {
            let path: String = arg.chars().take_while(|c| *c != '\'').collect();
            let real = tree.host(&path);
            if real.is_file() {
                sendmail_filters(tree, &real, out, depth + 1);
            }
        }
    }
}
