//! Day 2 on a real system: a booted Debian (systemd-nspawn) with real
//! Postfix, OpenDKIM and dkimctl, a message every ~50 ms through smtpd and
//! `sendmail -t` while an admin changes the setup the way admins do:
//! OpenDKIM to the bundled engine, a new domain, a new key, a moved
//! socket, a full key rotation (publish, switch, retire, restart), the
//! engine stopped by hand, its socket directory deleted, and back to
//! OpenDKIM. The scenario and its judges are in
//! `fixtures/day2/` (scenario.sh runs inside, mailloop.py sends,
//! check.py verifies every delivered message with dkimpy).
//!
//! After each step: `plan` has nothing left and `audit` no error; before
//! the repairs, `plan` names the broken service. Over the whole run: no
//! message is delivered unsigned or with a signature that fails, none is
//! lost; temporary failures (mail held while a milter restarts) are
//! counted and printed.

use serde_json::Value;

use crate::support::container::{Boot, POSTFIX_MAIN_CF, boot, can_boot};
use crate::support::*;

const SCENARIO: &str = include_str!("fixtures/day2/scenario.sh");

/// Run on the host with `$M` the container's root: a Postfix that
/// delivers to ~rcpt/Maildir and listens on the container's loopback.
const SETUP: &str = "
chroot $M useradd -m rcpt
[ -f $M/etc/postfix/master.cf ] || cp $M/usr/share/postfix/master.cf.dist $M/etc/postfix/master.cf
cp $W/results/main.cf $M/etc/postfix/main.cf
";

const FILES: &[(&str, &str)] = &[
    ("main.cf", POSTFIX_MAIN_CF),
    ("mailloop.py", include_str!("fixtures/day2/mailloop.py")),
    ("check.py", include_str!("fixtures/day2/check.py")),
    ("opendkim.toml", include_str!("fixtures/day2/opendkim.toml")),
    ("bundled.toml", include_str!("fixtures/day2/bundled.toml")),
    (
        "two-domains.toml",
        include_str!("fixtures/day2/two-domains.toml"),
    ),
    ("dual.toml", include_str!("fixtures/day2/dual.toml")),
    ("moved.toml", include_str!("fixtures/day2/moved.toml")),
    (
        "back-to-opendkim.toml",
        include_str!("fixtures/day2/back-to-opendkim.toml"),
    ),
];

/// The steps, in order, as scenario.sh names them.
const STEPS: &[&str] = &[
    "opendkim",
    "to-bundled",
    "add-domain",
    "change-key",
    "move-socket",
    "rotate-switch",
    "rotate-retire",
    "engine-stopped",
    "socket-dir-deleted",
    "to-opendkim",
];

#[test]
fn day_two_changes_never_deliver_mail_unsigned() {
    if !can_boot()
        || !require_tool("postfix")
        || !require_tool("opendkim")
        || crate::support::verifiers::python_with_dkimpy().is_none()
    {
        return;
    }
    let r = boot(&Boot {
        name: "day2",
        config: include_str!("fixtures/day2/opendkim.toml"),
        setup: SETUP,
        probe: SCENARIO,
        files: FILES,
        private_network: true,
        timeout_secs: 600,
    });
    let get = |name: &str| r.get(name).map(String::as_str).unwrap_or("");
    let dump = || {
        format!(
            "log:\n{}\njournal:\n{}\npostfix:\n{}",
            get("log"),
            get("journal"),
            get("postfix.log")
        )
    };
    assert!(
        r.contains_key("delivery.json"),
        "the scenario did not finish:\n{}\nconsole:\n{}",
        dump(),
        get("console")
    );

    for step in STEPS {
        for what in ["apply", "plan", "audit"] {
            let rc = get(&format!("{what}.{step}.rc")).trim().to_string();
            assert_eq!(
                rc,
                "0",
                "{what} after {step} exited {rc}:\n{}\n{}",
                get(&format!("{what}.{step}")),
                dump()
            );
        }
    }
    // Before the repairs, plan saw what was broken and said what it does.
    for (step, id) in [
        ("engine-stopped", "engine-not-running"),
        ("socket-dir-deleted", "milter-not-answering"),
    ] {
        let before = get(&format!("plan.{step}.before"));
        assert_eq!(
            get(&format!("plan.{step}.before.rc")).trim(),
            "1",
            "plan after {step} saw nothing to do:\n{before}"
        );
        assert!(
            before.contains(id),
            "plan after {step} did not say {id}:\n{before}"
        );
    }
    // The rotation took each step, and the engine restarted after the
    // retire step (its unit names only keys that exist).
    for (file, want) in [
        ("rotate.start", "pending"),
        ("rotate.switch", "active"),
        ("rotate.retire", "retired"),
    ] {
        assert_eq!(
            get(&format!("{file}.rc")).trim(),
            "0",
            "{file}:\n{}\nknot.log:\n{}\n{}",
            get(file),
            get("knot.log"),
            dump()
        );
        assert!(
            get(file).contains(want),
            "{file} does not say {want}:\n{}",
            get(file)
        );
    }
    for restart in ["restart.rotate-retire", "restart.after-retire"] {
        assert_eq!(
            get(&format!("{restart}.rc")).trim(),
            "0",
            "{restart}: the engine did not restart after the rotation:\n{}",
            dump()
        );
    }
    // The engine switch left no old engine behind.
    assert!(
        get("apply.to-bundled").contains("systemctl disable --now opendkim.service"),
        "{}",
        get("apply.to-bundled")
    );

    let delivery: Value = serde_json::from_str(get("delivery.json")).unwrap();
    let sent: Value = serde_json::from_str(get("sent.json")).unwrap();
    let mut table = String::from("step                sent delivered signed tempfailed\n");
    let mut total = 0;
    for (phase, d) in delivery.as_object().unwrap() {
        let stats = &sent["stats"][phase];
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        table.push_str(&format!(
            "{phase:<20}{:>4} {:>9} {:>6} {:>10}\n",
            n(&d["sent"]),
            n(&d["delivered"]),
            n(&d["signed"]),
            n(&stats["tempfail"])
        ));
        total += d["sent"].as_u64().unwrap_or(0);
        assert_eq!(
            d["unsigned"],
            0,
            "{phase}: mail delivered unsigned: {d}\n{}",
            dump()
        );
        assert_eq!(
            d["bad"],
            0,
            "{phase}: mail with a failing signature: {d}\n{}",
            dump()
        );
        assert_eq!(
            d["lost"],
            serde_json::json!([]),
            "{phase}: mail lost: {d}\n{}",
            dump()
        );
        assert_eq!(
            stats["failed"].as_u64().unwrap_or(0),
            0,
            "{phase}: mail refused: {stats}\n{}",
            dump()
        );
    }
    println!("day-2 mail, per step:\n{table}");
    assert!(
        total >= 200,
        "too little mail went through the scenario:\n{table}"
    );
}
