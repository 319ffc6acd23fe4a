//! Sendmail, and each engine with each MTA, proven by real mail.
//!
//! In temporary roots (no service manager needed): a switch of engine
//! leaves one filter in sendmail.mc, which keeps its owner, group and
//! mode, and smmsp joins no group; audit's Sendmail findings, each
//! asserted by id; `bootstrap --opendkim --mta sendmail` without
//! sendmail.mc fails before it makes anything.
//!
//! Booted, one container per MTA (systemd-nspawn, `support/container.rs`):
//! Debian's Postfix, or Debian's sendmail installed into the container's
//! overlay from `target/sendmail-debs` (`scripts/sendmail-debs.sh`:
//! sendmail conflicts with Postfix, so the host never gets it). Inside,
//! `fixtures/sendmail/scenario.sh` sets the bundled engine up with
//! bootstrap's defaults, switches to what `bootstrap --opendkim` writes and
//! back (and, on Sendmail, stops the engine by hand for audit to name and
//! apply to repair) while `fixtures/day2/mailloop.py` sends a message every
//! ~50 ms by SMTP and `sendmail -t`. On the host every delivered message
//! is judged by dkimpy, Mail::DKIM, OpenDKIM (verify mode, through
//! miltertest) and mail-auth, against knotd serving the records
//! `dkimctl dns records --json` printed during the scenario.

use std::collections::BTreeMap;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::conformance::judges::{self, Judgement};
use crate::support::container::{Boot, POSTFIX_MAIN_CF, boot, can_boot};
use crate::support::knot::{Knot, Published, published_from, zone_text};
use crate::support::message::{Msg, crlf, tags};
use crate::support::proc::run_bounded;
use crate::support::*;

/// The loopback ports of this module (knotd for the verifiers).
const PORTS: Range<u16> = 15800..15900;

/// Debian 12's /etc/mail/sendmail.mc (fixtures/sendmail/PROVENANCE).
const DEBIAN_MC: &str = include_str!("fixtures/sendmail/sendmail.mc");

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
    smmta:x:102:105:Mail Transfer Agent,,,:/var/lib/sendmail:/usr/sbin/nologin\n\
    smmsp:x:106:106:Mail Submission Program,,,:/var/lib/sendmail:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nsmmta:x:105:\nsmmsp:x:106:\n";
const SMMSP_GID: u32 = 106;

/// dkim.toml for `engine` (RSA, one selector) with Sendmail.
fn config(engine: &str) -> String {
    format!(
        "[service]\nengine = \"{engine}\"\n\n[defaults]\nalgorithms = [\"rsa-sha256\"]\n\n\
         [[domain]]\nname = \"example.com\"\n\n[[domain.key]]\nselector = \"s1\"\n\n\
         [mta]\nkind = \"sendmail\"\n"
    )
}

/// A root with Debian's sendmail.mc (root:smmsp 0644 when run as root)
/// and its accounts.
fn sendmail_root() -> TempRoot {
    let root = TempRoot::new(&config("bundled"));
    root.write("etc/mail/sendmail.mc", DEBIAN_MC);
    root.write("etc/passwd", PASSWD);
    root.write("etc/group", GROUP);
    let mc = root.join("etc/mail/sendmail.mc");
    std::fs::set_permissions(&mc, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&mc, Some(0), Some(SMMSP_GID)).unwrap();
    }
    root
}

/// The filters of a sendmail.mc, as (name, S=).
fn filters(mc: &str) -> Vec<(String, String)> {
    mc.lines()
        .filter(|l| l.starts_with("INPUT_MAIL_FILTER(") || l.starts_with("MAIL_FILTER("))
        .map(|l| {
            let name = l.split('`').nth(1).unwrap_or("").trim_end_matches("',");
            let name = name.split('\'').next().unwrap_or("").to_string();
            let socket = l
                .split("S=")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .unwrap_or("")
                .to_string();
            (name, socket)
        })
        .collect()
}

/// A switch of engine on Sendmail (issue 17, point 3): sendmail.mc ends up
/// with the current engine's filter only, never the old one beside it; the
/// published key moves with the selector; sendmail.mc keeps its group and
/// mode; smmsp joins no group (point 5).
#[test]
fn switching_engines_on_sendmail_leaves_one_filter() {
    let root = sendmail_root();
    let apply = |engine: &str| {
        root.write("etc/dkimctl/dkim.toml", &config(engine));
        root.dkimctl(&["apply", "--yes"]).expect(0);
        let plan = root.dkimctl(&["plan"]);
        assert_eq!(plan.code(), 0, "plan after apply:\n{}", plan.stdout());
        root.read("etc/mail/sendmail.mc")
    };
    let mc = apply("bundled");
    assert_eq!(
        filters(&mc),
        [(
            "dkimctl".to_string(),
            "local:/run/dkimctl/dkimctl.sock".to_string()
        )]
    );
    let key = root.read("etc/dkimctl/keys/example.com/s1.private");

    let mc = apply("opendkim");
    assert_eq!(
        filters(&mc),
        [(
            "opendkim".to_string(),
            "local:/run/opendkim/opendkim.sock".to_string()
        )],
        "{mc}"
    );
    assert_eq!(
        root.read("etc/opendkim/keys/example.com/s1.private"),
        key,
        "the selector's key was not carried over"
    );
    let mc = apply("bundled");
    assert_eq!(filters(&mc).len(), 1, "{mc}");
    assert_eq!(filters(&mc)[0].0, "dkimctl");
    // Every other line is Debian's, byte for byte.
    let ours = mc
        .lines()
        .find(|l| l.starts_with("INPUT_MAIL_FILTER("))
        .unwrap();
    assert_eq!(mc.replace(&format!("{ours}\n"), ""), DEBIAN_MC);

    let meta = std::fs::metadata(root.join("etc/mail/sendmail.mc")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644);
    if is_root() {
        assert_eq!(
            (meta.uid(), meta.gid()),
            (0, SMMSP_GID),
            "sendmail.mc lost its group"
        );
    }
    let sysusers = root.read("etc/sysusers.d/dkimctl.conf");
    assert!(!sysusers.contains("smmsp"), "{sysusers}");
    assert!(
        !root.read("etc/group").contains("smmsp,"),
        "{}",
        root.read("etc/group")
    );
    let group = root.read("etc/group");
    let dkimctl_group = group.lines().find(|l| l.starts_with("dkimctl:")).unwrap();
    assert!(!dkimctl_group.contains("smmsp"), "{group}");
}

/// Issue 17, point 5: into a root without sendmail.mc,
/// `bootstrap --opendkim --mta sendmail` fails before it writes anything
/// (no dkim.toml, no key).
#[test]
fn bootstrap_without_sendmail_mc_changes_nothing() {
    let root = TempRoot::empty();
    let run = root.dkimctl(&[
        "bootstrap",
        "--opendkim",
        "--mta",
        "sendmail",
        "--domain",
        "example.com",
        "--yes",
    ]);
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    assert!(
        run.stderr().contains("sendmail.mc does not exist"),
        "{}",
        run.stderr()
    );
    assert!(
        tree(root.path()).is_empty(),
        "bootstrap left files behind: {:?}",
        tree(root.path()).iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
}

/// sendmail.cf as m4 makes it from a sendmail.mc with these filters (only
/// the lines audit reads).
fn cf(filters: &[(&str, &str)]) -> String {
    let names: Vec<&str> = filters.iter().map(|(n, _)| *n).collect();
    let mut s = String::from("# sendmail.cf (milter lines)\n#O InputMailFilters\n");
    if !names.is_empty() {
        s.push_str(&format!("O InputMailFilters={}\n", names.join(", ")));
    }
    for (name, socket) in filters {
        s.push_str(&format!("X{name}, S={socket}, F=T, T=S:4m;R:4m;E:10m\n"));
    }
    s
}

const OURS: (&str, &str) = ("dkimctl", "local:/run/dkimctl/dkimctl.sock");

/// `dkimctl audit --json` of a root: (id, severity, file) of each finding.
fn audit_ids(root: &TempRoot, extra: &[&str]) -> Vec<(String, String, String)> {
    let mut args = vec!["audit", "--json"];
    args.extend_from_slice(extra);
    let run = root.dkimctl(&args);
    assert!(
        run.code() <= 1,
        "audit failed:\n{}{}",
        run.stdout(),
        run.stderr()
    );
    let json: Value = serde_json::from_str(&run.stdout()).expect("audit --json");
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or("").to_string(),
                f["severity"].as_str().unwrap_or("").to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn has(found: &[(String, String, String)], id: &str, severity: &str, file: &str) -> bool {
    found
        .iter()
        .any(|(i, s, f)| i == id && s == severity && f.ends_with(file))
}

/// The ids this module is about.
const SENDMAIL_IDS: [&str; 5] = [
    "sendmail-cf-stale",
    "two-dkim-milters",
    "sendmail-filter-down",
    "socket-mismatch",
    "mta-not-connected",
];

/// Issue 17, point 6: audit on a Sendmail host, each finding by id.
#[test]
fn audit_judges_what_sendmail_runs() {
    let root = sendmail_root();
    root.dkimctl(&["apply", "--yes"]).expect(0);
    let cf_path = root.join("etc/mail/sendmail.cf");
    let set_cf = |text: &str, age: Duration| {
        std::fs::write(&cf_path, text).unwrap();
        let when = std::time::SystemTime::now() + Duration::from_secs(60) - age;
        let f = std::fs::File::options().write(true).open(&cf_path).unwrap();
        f.set_modified(when).unwrap();
    };
    let ids = |extra: &[&str]| audit_ids(&root, extra);
    let ours_only = |found: &[(String, String, String)]| {
        found
            .iter()
            .filter(|(i, _, _)| SENDMAIL_IDS.contains(&i.as_str()))
            .cloned()
            .collect::<Vec<_>>()
    };

    // Built from sendmail.mc: nothing to say.
    set_cf(&cf(&[OURS]), Duration::ZERO);
    let clean = ids(&[]);
    assert_eq!(ours_only(&clean), [], "{clean:?}");

    // A leftover main.cf of a removed Postfix is not read when dkim.toml
    // says Sendmail: no false socket-mismatch.
    root.write(
        "etc/postfix/main.cf",
        "smtpd_milters = inet:localhost:8891\nnon_smtpd_milters = $smtpd_milters\n",
    );
    let found = ids(&[]);
    assert_eq!(ours_only(&found), [], "{found:?}");

    // sendmail.cf older than sendmail.mc, same filters: a warning.
    set_cf(&cf(&[OURS]), Duration::from_secs(3600));
    let found = ids(&[]);
    assert!(
        has(
            &found,
            "sendmail-cf-stale",
            "warning",
            "/etc/mail/sendmail.cf"
        ),
        "{found:?}"
    );

    // sendmail.cf never rebuilt: it calls no filter at all.
    set_cf(&cf(&[]), Duration::ZERO);
    let found = ids(&[]);
    assert!(
        has(
            &found,
            "sendmail-cf-stale",
            "error",
            "/etc/mail/sendmail.cf"
        ),
        "{found:?}"
    );

    // Its filter line points at another socket.
    set_cf(
        &cf(&[("dkimctl", "local:/run/other/other.sock")]),
        Duration::ZERO,
    );
    let found = ids(&[]);
    assert!(
        has(&found, "socket-mismatch", "error", "/etc/mail/sendmail.cf"),
        "{found:?}"
    );
    assert!(has(
        &found,
        "sendmail-cf-stale",
        "error",
        "/etc/mail/sendmail.cf"
    ));

    // Two DKIM milters, as a switch of engine by hand leaves them.
    set_cf(
        &cf(&[("opendkim", "local:/run/opendkim/opendkim.sock"), OURS]),
        Duration::ZERO,
    );
    let found = ids(&[]);
    assert!(
        has(&found, "two-dkim-milters", "error", "/etc/mail/sendmail.cf"),
        "{found:?}"
    );

    // The milter stopped while the filter has F=T: its socket file is
    // there, nobody answers; sendmail refuses every message. Not looked at
    // with --offline.
    set_cf(&cf(&[OURS]), Duration::ZERO);
    let sock = root.join("run/dkimctl/dkimctl.sock");
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let found = ids(&[]);
    assert!(
        has(
            &found,
            "sendmail-filter-down",
            "error",
            "/etc/mail/sendmail.cf"
        ),
        "{found:?}"
    );
    let offline = ids(&["--offline"]);
    assert_eq!(ours_only(&offline), [], "{offline:?}");
}

/// Issue 17, point 6: an RSA SignatureAlgorithm (OpenDKIM's default)
/// paired with an Ed25519 key in the KeyTable.
#[test]
fn audit_names_an_ed25519_key_under_an_rsa_signature_algorithm() {
    let root = TempRoot::empty();
    root.write(
        "etc/opendkim.conf",
        "Mode sv\nSocket local:/run/opendkim/opendkim.sock\nUserID opendkim\n\
         KeyTable /etc/opendkim/KeyTable\nSigningTable refile:/etc/opendkim/SigningTable\n",
    );
    root.write(
        "etc/opendkim/KeyTable",
        "e1._domainkey.example.com example.com:e1:/etc/opendkim/keys/e1.private\n",
    );
    root.write(
        "etc/opendkim/SigningTable",
        "*@example.com e1._domainkey.example.com\n",
    );
    root.write(
        "etc/opendkim/keys/e1.private",
        include_str!("../src/dkim/testdata/test-only-ed25519.pem"),
    );
    let found = audit_ids(&root, &["--offline"]);
    assert!(
        has(
            &found,
            "key-algorithm-mismatch",
            "error",
            "/etc/opendkim/KeyTable"
        ),
        "{found:?}"
    );
    root.write(
        "etc/opendkim.conf",
        &(root.read("etc/opendkim.conf") + "SignatureAlgorithm ed25519-sha256\n"),
    );
    let found = audit_ids(&root, &["--offline"]);
    assert!(
        !found.iter().any(|(i, _, _)| i == "key-algorithm-mismatch"),
        "{found:?}"
    );
}

// ---- booted: real mail through each engine and MTA ----

/// The shell both setups start with (on the host, `$M` the container's
/// root): no dkim.toml (bootstrap writes it), names that resolve without
/// DNS (sendmail canonifies its host name and checks sender domains; the
/// host's own name too, for the install), dkimctl where bootstrap's unit
/// looks for it, and a recipient whose mail lands in ~/Maildir (Postfix:
/// home_mailbox; Sendmail: procmail through sensible-mda).
const COMMON_SETUP: &str = r#"
rm -f $M/etc/dkimctl/dkim.toml
printf '127.0.0.1 localhost\n127.0.1.1 mail.example.com mail %s\n127.0.1.2 example.com\n127.0.1.3 example.org\n' "$(hostname)" > $M/etc/hosts
echo mail > $M/etc/hostname
ln -sf /usr/local/bin/dkimctl $M/usr/bin/dkimctl
chroot $M useradd -m rcpt
printf 'MAILDIR=$HOME/Maildir/\nDEFAULT=$HOME/Maildir/\n' > $M/home/rcpt/.procmailrc
chroot $M chown rcpt:rcpt /home/rcpt/.procmailrc
"#;

/// Postfix: the container's own, with main.cf from the test.
const POSTFIX_SETUP: &str = r#"
[ -f $M/etc/postfix/master.cf ] || cp $M/usr/share/postfix/master.cf.dist $M/etc/postfix/master.cf
cp $W/results/main.cf $M/etc/postfix/main.cf
"#;

/// Sendmail: Debian's packages installed into the overlay (Postfix purged
/// there first: they conflict), with no daemon started during the
/// install. `@DEBS@` is the download cache.
const SENDMAIL_SETUP: &str = r#"
start=$(date +%s.%N)
mkdir -p $M/tmp/debs
cp @DEBS@/*.deb $M/tmp/debs/
printf '#!/bin/sh\nexit 101\n' > $M/usr/sbin/policy-rc.d
chmod 755 $M/usr/sbin/policy-rc.d
rm -f $M/var/lib/man-db/auto-update
mount -t proc proc $M/proc
chroot $M sh -c 'export DEBIAN_FRONTEND=noninteractive; dpkg --purge postfix && dpkg -i /tmp/debs/*.deb'
umount $M/proc
rm -rf $M/usr/sbin/policy-rc.d $M/tmp/debs
echo "sendmail installed in $(awk "BEGIN { print $(date +%s.%N) - $start }") s"
"#;

/// The download cache of Debian's sendmail packages (made or checked by
/// scripts/sendmail-debs.sh); `None` outside CI when it cannot be made.
fn sendmail_debs() -> Option<PathBuf> {
    if !require_tool("apt-get") || !require_tool("flock") {
        return None;
    }
    let run = run_bounded(
        Command::new("bash")
            .arg(repo().join("scripts/sendmail-debs.sh"))
            .current_dir(repo()),
        None,
        Duration::from_secs(600),
    );
    if run.code() != 0 {
        assert!(
            !ci(),
            "scripts/sendmail-debs.sh failed:\n{}{}",
            run.stdout(),
            run.stderr()
        );
        eprintln!(
            "skipped: Debian's sendmail packages could not be downloaded: {}",
            run.stderr()
        );
        return None;
    }
    Some(repo().join("target/sendmail-debs"))
}

/// Everything the scenario needs on the host.
fn tools_ready() -> bool {
    can_boot()
        && require_tool("opendkim")
        && crate::support::verifiers::python_with_dkimpy().is_some()
}

/// Boots `mta`'s container, runs the scenario, returns /results.
fn run_scenario(mta: &str, setup: &str) -> BTreeMap<String, String> {
    let started = Instant::now();
    let files: Vec<(&str, &str)> = vec![
        ("mta", mta),
        ("main.cf", POSTFIX_MAIN_CF),
        ("mailloop.py", include_str!("fixtures/day2/mailloop.py")),
    ];
    let r = boot(&Boot {
        name: mta,
        config: "",
        setup,
        probe: include_str!("fixtures/sendmail/scenario.sh"),
        files: &files,
        private_network: true,
        timeout_secs: 600,
    });
    println!(
        "{mta}: container booted, scenario run and powered off in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Kept for a look after a failure.
    let keep = repo().join("target/sendmail-results").join(mta);
    let _ = std::fs::remove_dir_all(&keep);
    if std::fs::create_dir_all(&keep).is_ok() {
        for (name, text) in &r {
            let _ = std::fs::write(keep.join(name), text);
        }
    }
    r
}

/// The engine a step leaves running, by its filter's (and unit's) name.
fn engine_of(step: &str) -> &'static str {
    match step {
        "to-opendkim" => "opendkim",
        _ => "dkimctl",
    }
}

/// What every step left: apply, plan and audit agree; the MTA calls the
/// current engine only; the old engine is stopped and disabled.
fn check_steps(mta: &str, r: &BTreeMap<String, String>, steps: &[&str]) {
    let get = |name: &str| r.get(name).map(String::as_str).unwrap_or("");
    let dump = || {
        format!(
            "log:\n{}\njournal:\n{}\nmta:\n{}",
            get("log"),
            get("journal"),
            get("mta.log")
        )
    };
    assert!(
        r.contains_key("mail.json"),
        "the scenario did not finish (all of /results is in target/sendmail-results/{mta}):\n{}\nconsole:\n{}\nsetup:\n{}",
        dump(),
        get("console"),
        get("setup.log")
    );
    assert_eq!(
        get("bootstrap-opendkim.rc").trim(),
        "0",
        "{}",
        get("bootstrap-opendkim.out")
    );
    // Both bootstraps name the RSA key alike, so the switch must carry the
    // published key over (and does: copied, not generated).
    let rsa_selector = |toml: &str| {
        let text = get(toml);
        let at = text
            .find("algorithm = \"rsa-sha256\"")
            .unwrap_or_else(|| panic!("no RSA key in {toml}:\n{text}"));
        text[..at]
            .rsplit("selector = \"")
            .next()
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(rsa_selector("bundled.toml"), rsa_selector("opendkim.toml"));
    let switched = get("apply.to-opendkim");
    assert!(
        switched.contains(&format!(
            "copied from /etc/dkimctl/keys/example.com/{}.private",
            rsa_selector("bundled.toml")
        )),
        "{switched}"
    );
    for step in steps {
        for what in ["apply", "plan", "audit"] {
            let rc = get(&format!("{what}.{step}.rc")).trim().to_string();
            assert_eq!(
                rc,
                "0",
                "{mta}: {what} after {step} exited {rc}:\n{}\n{}",
                get(&format!("{what}.{step}")),
                dump()
            );
        }
        let engine = engine_of(step);
        let other = if engine == "dkimctl" {
            "opendkim"
        } else {
            "dkimctl"
        };
        let milters = get(&format!("milters.{step}"));
        if mta == "sendmail" {
            // sendmail.cf calls the current engine's filter and only it.
            let lines: Vec<&str> = milters.lines().collect();
            assert_eq!(lines.len(), 2, "{step}: sendmail.cf:\n{milters}");
            assert_eq!(lines[0], format!("O InputMailFilters={engine}"), "{step}");
            assert!(
                lines[1].starts_with(&format!("X{engine}, S=local:/run/{engine}/"))
                    && lines[1].contains("F=T"),
                "{step}: {milters}"
            );
            assert_eq!(
                get(&format!("mc.{step}")).lines().count(),
                1,
                "{step}: sendmail.mc:\n{}",
                get(&format!("mc.{step}"))
            );
            assert_eq!(
                get(&format!("mc-meta.{step}")).trim(),
                "root:smmsp 644",
                "{step}: sendmail.mc's owner or mode changed"
            );
        } else {
            for list in milters.lines() {
                assert!(
                    list.contains(engine) && !list.contains(other) && !list.contains(','),
                    "{step}: Postfix's milter lists:\n{milters}"
                );
            }
        }
        let units = get(&format!("units.{step}"));
        let unit = |name: &str| {
            units
                .lines()
                .find(|l| l.starts_with(&format!("{name}.service ")))
                .unwrap_or("")
                .to_string()
        };
        assert!(unit(engine).ends_with(" active enabled"), "{step}: {units}");
        let old = unit(other);
        assert!(
            !old.contains(" active") && !old.ends_with(" enabled"),
            "{step}: the replaced engine runs or starts at boot: {units}"
        );
    }
    // The switches went the make-before-break way, the distribution's way.
    assert!(
        switched.contains("systemctl disable --now dkimctl.service"),
        "{switched}"
    );
    if mta == "sendmail" {
        // In this order: the new engine up and answering, then sendmail.cf
        // rebuilt and sendmail reloaded, then the old engine stopped (the
        // report lists the commands run in their order).
        let order = [
            "ran       systemctl restart opendkim.service",
            "ran       wait until the milter answers on unix:/run/opendkim/opendkim.sock",
            "ran       make -C /etc/mail",
            "ran       /etc/init.d/sendmail reload",
            "ran       systemctl disable --now dkimctl.service",
        ];
        let at: Vec<usize> = order
            .iter()
            .map(|line| {
                switched
                    .find(line)
                    .unwrap_or_else(|| panic!("{line:?} missing:\n{switched}"))
            })
            .collect();
        assert!(at.is_sorted(), "out of order:\n{switched}");
        assert!(!get("smmsp").contains("dkimctl"), "{}", get("smmsp"));
    } else {
        assert!(switched.contains("postfix reload"), "{switched}");
    }
}

/// Every record printed during the scenario, by name; a selector's record
/// never changes from one step to the next (the published keys stay
/// valid across the switches).
fn records(r: &BTreeMap<String, String>) -> Vec<Published> {
    let mut by_name: BTreeMap<String, Published> = BTreeMap::new();
    for (file, text) in r.iter().filter(|(f, _)| f.starts_with("records.")) {
        for p in published_from(text) {
            if let Some(seen) = by_name.get(&p.name) {
                assert_eq!(
                    seen.value, p.value,
                    "the record {} changed ({file}): the published key was replaced",
                    p.name
                );
            } else {
                by_name.insert(p.name.clone(), p);
            }
        }
    }
    by_name.into_values().collect()
}

/// One delivered message in wire form, with what the judges said.
struct Delivered {
    wire: Vec<u8>,
    seq: Option<String>,
    probe: Option<String>,
    /// (selector, algorithm) of each d=example.com signature, top first.
    sigs: Vec<(String, String)>,
}

fn delivered(r: &BTreeMap<String, String>) -> Vec<Delivered> {
    let texts: Vec<String> =
        serde_json::from_str(r.get("mail.json").map(String::as_str).unwrap_or("[]"))
            .expect("mail.json");
    texts
        .iter()
        .map(|t| {
            // The scenario decoded each file as Latin-1: one char per byte.
            let bytes: Vec<u8> = t.chars().map(|c| c as u32 as u8).collect();
            let wire = crlf(&bytes);
            let msg = Msg::parse(&wire);
            let one = |name: &str| msg.values(name).first().map(|v| v.trim().to_string());
            let sigs = msg
                .values("DKIM-Signature")
                .iter()
                .map(|v| tags(v))
                .filter(|t| t.get("d").map(String::as_str) == Some("example.com"))
                .map(|t| {
                    (
                        t.get("s").cloned().unwrap_or_default(),
                        t.get("a").cloned().unwrap_or_default(),
                    )
                })
                .collect();
            Delivered {
                wire,
                seq: one("X-Seq"),
                probe: one("X-Probe"),
                sigs,
            }
        })
        .collect()
}

/// Has dkimpy, Mail::DKIM, OpenDKIM and mail-auth judge every message
/// against knotd serving `records`; returns, per verifier, the judgements
/// in message order.
fn judge_all(mail: &[Delivered], records: &[Published]) -> Vec<(&'static str, Vec<Judgement>)> {
    let zone = zone_text(records);
    let Some(knot) = Knot::start_in(&zone, PORTS) else {
        return Vec::new();
    };
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = mail
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let p = dir.path().join(format!("{i}.eml"));
            std::fs::write(&p, &m.wire).unwrap();
            p
        })
        .collect();
    let port = knot.port();
    let mut out = Vec::new();
    if let Some(j) = judges::dkimpy(port, &files) {
        out.push(("dkimpy", j));
    }
    if let Some(j) = judges::mail_dkim(port, &files) {
        out.push(("Mail::DKIM", j));
    }
    if let Some(od) = judges::OpenDkim::start(port) {
        out.push(("OpenDKIM", od.judge(&files)));
    }
    out.push(("mail-auth", judges::mail_auth(port, &files)));
    out
}

/// True when `who` accepts the signature (s=, a=): pass, or for
/// Mail::DKIM on Ed25519 the "invalid" of a version without RFC 8463.
fn accepted(who: &str, verdicts: &[judges::Verdict], selector: &str, algorithm: &str) -> bool {
    let words: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.selector == selector)
        .map(|v| v.word.as_str())
        .collect();
    match words.as_slice() {
        ["pass"] => true,
        ["invalid"] => who == "Mail::DKIM" && algorithm == "ed25519-sha256",
        _ => false,
    }
}

/// Every message sent was delivered, signed for example.com with RSA at
/// least, and every signature passes every verifier; prints the table.
fn check_mail(mta: &str, r: &BTreeMap<String, String>) {
    let get = |name: &str| r.get(name).map(String::as_str).unwrap_or("");
    let mail = delivered(r);
    let records = records(r);
    let started = Instant::now();
    let judged = judge_all(&mail, &records);
    println!(
        "{mta}: {} messages judged by {} verifiers in {:.1} s",
        mail.len(),
        judged.len(),
        started.elapsed().as_secs_f64()
    );
    if ci() {
        assert_eq!(judged.len(), 4, "a verifier is missing");
    }
    let sent: Value = serde_json::from_str(get("sent.json")).expect("sent.json");
    let mut phases: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, m) in mail.iter().enumerate() {
        let Some(seq) = &m.seq else { continue };
        let Some(info) = sent["sent"].get(seq.as_str()) else {
            continue;
        };
        if !seen.insert(seq.clone()) {
            continue;
        }
        let phase = info["phase"].as_str().unwrap_or("?").to_string();
        let row = phases.entry(phase.clone()).or_default();
        row[1] += 1;
        let context = || {
            format!(
                "{mta}: message {seq} ({phase}, {}):\n{}\nverdicts: {:?}",
                info["path"],
                String::from_utf8_lossy(&m.wire),
                judged.iter().map(|(w, j)| (w, &j[i])).collect::<Vec<_>>()
            )
        };
        assert!(
            m.sigs.iter().any(|(_, a)| a == "rsa-sha256"),
            "delivered without an RSA signature of example.com: {}",
            context()
        );
        for (who, judgements) in &judged {
            let verdicts = judgements[i]
                .as_ref()
                .unwrap_or_else(|e| panic!("{who}: {e}\n{}", context()));
            for (s, a) in &m.sigs {
                assert!(
                    accepted(who, verdicts, s, a),
                    "{who} on s={s}: {}",
                    context()
                );
            }
        }
        row[2] += 1;
    }
    let mut table = format!("{mta}: step          sent delivered verified tempfailed\n");
    let mut total = 0;
    for (phase, stats) in sent["stats"].as_object().expect("stats") {
        let row = phases.entry(phase.clone()).or_default();
        row[3] = stats["tempfail"].as_u64().unwrap_or(0);
        assert_eq!(
            stats["failed"].as_u64().unwrap_or(0),
            0,
            "{mta}, {phase}: mail refused: {stats}"
        );
    }
    for (seq, info) in sent["sent"].as_object().expect("sent") {
        let phase = info["phase"].as_str().unwrap_or("?").to_string();
        phases.entry(phase).or_default()[0] += 1;
        assert!(
            seen.contains(seq),
            "{mta}: message {seq} ({info}) was never delivered"
        );
        total += 1;
    }
    for (phase, [s, d, v, t]) in &phases {
        table.push_str(&format!("{phase:<20}{s:>5} {d:>9} {v:>8} {t:>10}\n"));
    }
    println!("{table}");
    assert!(total >= 150, "too little mail went through:\n{table}");
}

/// The scenario's timeline (phase starts, bootstrap's duration, the end
/// of the loop and of the queues), relative to its first entry.
fn print_timeline(mta: &str, r: &BTreeMap<String, String>) {
    let text = r.get("timeline").map(String::as_str).unwrap_or("");
    let mut first = None;
    let mut out = String::new();
    for l in text.lines() {
        let mut w = l.split_whitespace();
        let (Some(name), Some(t), rest) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        if name == "bootstrap" {
            out.push_str(&format!("  {l}\n"));
            continue;
        }
        let t: f64 = rest.unwrap_or(t).parse().unwrap_or(0.0);
        let base = *first.get_or_insert(t);
        out.push_str(&format!("  {name:<16} +{:.1} s\n", t - base));
    }
    if let Some(install) = r
        .get("setup.log")
        .and_then(|s| s.lines().find(|l| l.starts_with("sendmail installed")))
    {
        out.push_str(&format!("  {install}\n"));
    }
    println!("{mta}: timeline\n{out}");
}

/// bundled/Postfix and OpenDKIM/Postfix with bootstrap's defaults, and
/// the switches between them, under a mail loop.
#[test]
fn postfix_signs_with_each_engine_from_bootstrap_defaults() {
    if !tools_ready() || !require_tool("postfix") {
        return;
    }
    let setup = format!("{COMMON_SETUP}{POSTFIX_SETUP}");
    let r = run_scenario("postfix", &setup);
    print_timeline("postfix", &r);
    check_steps("postfix", &r, &["bundled", "to-opendkim", "to-bundled"]);
    check_mail("postfix", &r);
}

/// bundled/Sendmail and OpenDKIM/Sendmail with bootstrap's defaults, the
/// switches between them under a mail loop, the engine stopped by hand
/// (audit names the F=T filter that refuses mail, apply repairs it), and
/// the {daemon_name} Sendmail hands the milter.
#[test]
fn sendmail_signs_with_each_engine_from_bootstrap_defaults() {
    if !tools_ready() {
        return;
    }
    let Some(debs) = sendmail_debs() else {
        return;
    };
    let setup = format!(
        "{COMMON_SETUP}{}",
        SENDMAIL_SETUP.replace("@DEBS@", &debs.display().to_string())
    );
    let r = run_scenario("sendmail", &setup);
    print_timeline("sendmail", &r);
    let get = |name: &str| r.get(name).map(String::as_str).unwrap_or("");
    check_steps(
        "sendmail",
        &r,
        &[
            "bundled",
            "to-opendkim",
            "to-bundled",
            "engine-stopped",
            "restored",
        ],
    );
    // The engine stopped by hand: the F=T filter now refuses all mail, and
    // audit says so by id before apply repairs it.
    let before = get("audit.engine-stopped.before");
    assert_eq!(
        get("audit.engine-stopped.before.rc").trim(),
        "1",
        "{before}"
    );
    for id in ["sendmail-filter-down", "engine-not-running"] {
        assert!(
            before.contains(&format!("[{id}]")),
            "{id} missing:\n{before}"
        );
    }
    for step in ["no-internal", "mta-v4"] {
        assert_eq!(
            get(&format!("apply.{step}.rc")).trim(),
            "0",
            "{}",
            get(&format!("apply.{step}"))
        );
    }
    check_mail("sendmail", &r);
    // With no internal hosts, mail arriving on port 25 is signed only when
    // its daemon is named: sendmail hands the milter {daemon_name} MTA-v4
    // (the default names, MSP-v4 and MSP-v6, are the submission daemons).
    let mail = delivered(&r);
    let probe = |name: &str| {
        mail.iter()
            .find(|m| m.probe.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("probe {name} was not delivered:\n{}", get("log")))
    };
    assert!(
        probe("default-names").sigs.is_empty(),
        "signed by default names"
    );
    let signed = probe("mta-v4");
    assert!(
        signed.sigs.iter().any(|(_, a)| a == "rsa-sha256"),
        "not signed with sign_daemon_names = [\"MTA-v4\"]"
    );
    let judged = judge_all(std::slice::from_ref(signed), &records(&r));
    for (who, j) in &judged {
        let v = j[0].as_ref().unwrap_or_else(|e| panic!("{who}: {e}"));
        for (s, a) in &signed.sigs {
            assert!(accepted(who, v, s, a), "{who} on the MTA-v4 probe: {v:?}");
        }
    }
}
