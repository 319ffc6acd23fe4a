//! `dkimctl dns publish` and `dkimctl rotate --auto` against a real Knot on
//! loopback that accepts RFC 2136 updates signed with a TSIG key, for TXT
//! records below `_domainkey` only; records checked with kdig, signatures
//! of the milter with dkimpy against Knot.
//!
//! Each test starts its own Knot on a port of [`UPDATE_PORTS`] and its own
//! engine on a unix socket in its root, and stops them by PID.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::Value;

use crate::support::knot::{Knot, TsigKey, UPDATE_PORTS, ZONE};
use crate::support::message::message;
use crate::support::miltertest::{have_miltertest, sign_with_miltertest};
use crate::support::serve::Serve;
use crate::support::verifiers::dkimpy;
use crate::support::*;

/// dkim.toml publishing to `knot` with the key at /etc/dkimctl/tsig.key:
/// `domain_keys` are the `[[domain.key]]` tables of example.com,
/// `rotation` the body of `[rotation]`.
fn config(knot: &Knot, domain_keys: &str, rotation: &str) -> String {
    let ns = knot.ns();
    format!(
        r#"[service]
mode = "sign"
socket = "unix:/run/dkimctl/dkimctl.sock"

[[domain]]
name = "example.com"
{domain_keys}

[mta]
kind = "none"

[engine]
nameservers = ["{ns}"]
dns_timeout = "2s"

[rotation]
{rotation}

[dns]
update = "rfc2136"
server = "{ns}"
zone = "example.com"
tsig_key_file = "/etc/dkimctl/tsig.key"
authoritative = ["{ns}"]
ttl = "5m"
"#
    )
}

/// A root with `text` as dkim.toml, `key` as its TSIG key and every key
/// generated.
fn root_with(text: &str, key: &TsigKey) -> TempRoot {
    let root = TempRoot::new(text);
    key.write_to(&root, "etc/dkimctl/tsig.key");
    root.dkimctl(&["keys", "generate"]).expect(0);
    root
}

/// `dkimctl dns records --json` of the root: name -> value.
fn records(root: &TempRoot) -> Vec<(String, String)> {
    crate::support::knot::published(root)
        .into_iter()
        .map(|r| (r.name, r.value))
        .collect()
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout()))
}

fn state(root: &TempRoot) -> Value {
    serde_json::from_str(&root.read("var/lib/dkimctl/dns-state.json")).unwrap()
}

#[test]
fn publish_creates_sends_nothing_twice_repairs_a_hand_edit_and_refuses_a_wrong_key() {
    let key = TsigKey::random("dkimctl-test");
    // A selector of another host, published by hand: never touched.
    let foreign = "other._domainkey IN TXT \"v=DKIM1; k=rsa; p=FOREIGN\"\n";
    let Some(knot) = Knot::updatable(foreign, &key) else {
        return;
    };
    assert!(UPDATE_PORTS.contains(&knot.port()));
    let text = config(
        &knot,
        "[[domain.key]]\nselector = \"s1\"\n[[domain.key]]\nselector = \"s0\"\nstate = \"retired\"",
        "grace = \"2d\"",
    );
    let root = root_with(&text, &key);
    let want = records(&root);
    let s1 = "s1._domainkey.example.com";
    let s0 = "s0._domainkey.example.com";

    // --dry-run: the update as nsupdate would send it; nothing sent.
    let dry = root.dkimctl(&["dns", "publish", "--dry-run"]).expect(1);
    let out = dry.stdout();
    assert!(out.contains(&format!("update delete {s1}. TXT")), "{out}");
    assert!(
        out.contains(&format!(
            "update add {s0}. 300 TXT \"v=DKIM1; k=rsa; \" \"p=\""
        )),
        "{out}"
    );
    assert!(!out.contains(&key.secret), "the secret was printed:\n{out}");
    assert_eq!(knot.updates(), 0, "a dry run sent an update");
    assert!(knot.txt(s1).is_empty());

    // Publish: one update; kdig sees exactly the records dkim.toml implies,
    // the revoked one with an empty p=.
    let first = root.dkimctl(&["dns", "publish"]).expect(0);
    assert!(
        first
            .stdout()
            .contains(&format!("created    {s1} (active)")),
        "{}",
        first.stdout()
    );
    assert!(
        first
            .stdout()
            .contains(&format!("ok at authoritative {}", knot.ns())),
        "{}",
        first.stdout()
    );
    assert_eq!(knot.updates(), 1, "{}", knot.log_text());
    for (name, value) in &want {
        assert_eq!(&knot.txt_value(name), value, "{name}");
    }
    assert_eq!(knot.txt_value(s0), "v=DKIM1; k=rsa; p=");
    // Strings of at most 255 bytes, in one record.
    let line = &knot.txt(s1)[0];
    assert!(
        line.split("\" \"")
            .all(|p| p.trim_matches('"').len() <= 255),
        "{line}"
    );
    assert_eq!(knot.txt("other._domainkey.example.com").len(), 1);
    assert_eq!(state(&root)["last_publish"]["ok"], true);

    // Again: nothing to send.
    let second = root.dkimctl(&["dns", "publish", "--json"]).expect(0);
    let j = json(&second);
    assert_eq!(j["sent"], 0, "{j:#}");
    assert!(
        j["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "unchanged")
    );
    assert_eq!(knot.updates(), 1, "a second run sent an update");

    // Changed by hand: reported (with what was there) and repaired.
    knot.set_txt_by_hand("s1._domainkey", &["v=DKIM1; k=rsa; p=HANDMADE"]);
    let repair = root.dkimctl(&["dns", "publish", "--json"]).expect(0);
    let j = json(&repair);
    let rec = j["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == s1)
        .unwrap()
        .clone();
    assert_eq!(rec["action"], "replace", "{j:#}");
    assert_eq!(rec["found"], "v=DKIM1; k=rsa; p=HANDMADE");
    assert!(
        rec["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true),
        "{rec:#}"
    );
    assert_eq!(
        knot.txt_value(s1),
        want.iter().find(|(n, _)| n == s1).unwrap().1
    );
    assert_eq!(
        knot.txt("other._domainkey.example.com"),
        vec!["\"v=DKIM1; k=rsa; p=FOREIGN\"".to_string()],
        "another host's selector was touched"
    );

    // A wrong secret: the server's answer, exit 2, nothing changed.
    knot.set_txt_by_hand("s1._domainkey", &["v=DKIM1; k=rsa; p=HANDMADE"]);
    let wrong = TsigKey {
        secret: TsigKey::random("x").secret,
        ..key.clone()
    };
    wrong.write_to(&root, "etc/dkimctl/tsig.key");
    let r = root.dkimctl(&["dns", "publish"]).expect(2);
    assert!(
        r.stderr().contains(&format!(
            "the DNS server {} rejected the update of example.com: it answered NOTAUTH (TSIG error BADSIG)",
            knot.ns()
        )),
        "{}",
        r.stderr()
    );
    assert!(!r.stderr().contains(&wrong.secret) && !r.stdout().contains(&wrong.secret));
    assert_eq!(knot.txt_value(s1), "v=DKIM1; k=rsa; p=HANDMADE");
    assert_eq!(state(&root)["last_publish"]["ok"], false);
    // A key the server does not know.
    let unknown = TsigKey {
        name: "not-known".into(),
        ..key.clone()
    };
    unknown.write_to(&root, "etc/dkimctl/tsig.key");
    let r = root.dkimctl(&["dns", "publish"]).expect(2);
    assert!(
        r.stderr().contains("NOTAUTH (TSIG error BADKEY)"),
        "{}",
        r.stderr()
    );
    // A key file others may read is refused before anything is sent.
    key.write_to(&root, "etc/dkimctl/tsig.key");
    let path = root.join("etc/dkimctl/tsig.key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = root.dkimctl(&["dns", "publish"]).expect(2);
    assert!(r.stderr().contains("has mode 0644"), "{}", r.stderr());
}

/// The day `n` days after 2026-03-01, as `--today` takes it.
fn day(n: i64) -> String {
    let d = dkimctl::config::types::Date::parse("2026-03-01")
        .unwrap()
        .add_days(n);
    d.to_string()
}

/// Signs the test message through the engine and has dkimpy verify it
/// against Knot; returns the selector that signed.
fn signed_and_verified(serve: &Serve, knot: &Knot, when: &str) -> String {
    let signed = sign_with_miltertest(serve, &message(), None);
    let sigs = signed.signatures();
    assert_eq!(sigs.len(), 1, "{when}: {:?}\n{}", sigs, serve.log_text());
    let selector = sigs[0]["s"].clone();
    let verdicts = dkimpy(knot, &signed.to_bytes()).expect("dkimpy");
    assert_eq!(verdicts.len(), 1);
    assert_eq!(
        verdicts[0].result,
        "pass",
        "{when}: the signature by {selector} does not verify: {:?}\n{}",
        verdicts[0],
        knot.log_text()
    );
    selector
}

#[test]
fn a_whole_rotation_with_no_hand_signs_verifiably_every_day() {
    if !have_miltertest() {
        return;
    }
    let key = TsigKey::random("dkimctl-test");
    let Some(knot) = Knot::updatable("", &key) else {
        return;
    };
    // `first` was created 10 days before day 0: due on day 0.
    let text = config(
        &knot,
        "[[domain.key]]\nselector = \"first\"\ncreated = \"2026-02-19\"",
        "every = \"10d\"\ngrace = \"2d\"\npublish_retired = \"/srv/www/dkim\"\n\
         publish_retired_url = \"https://mail.example.com/dkim/\"",
    );
    // The engine's metrics endpoint, on a port of this suite's range.
    let metrics = crate::support::knot::free_port_in(UPDATE_PORTS);
    let text = text.replace(
        "dns_timeout = \"2s\"",
        &format!("dns_timeout = \"2s\"\nmetrics = \"127.0.0.1:{metrics}\""),
    );
    let root = root_with(&text, &key);
    root.dkimctl(&["apply", "--yes", "--no-reload"]).expect(0);
    root.dkimctl(&["dns", "publish", "--today", &day(-1)])
        .expect(0);
    let mut serve = Serve::start_unix(&root);
    let rotate = |n: i64| {
        root.dkimctl(&[
            "rotate",
            "--auto",
            "--today",
            &day(n),
            "--nameserver",
            &knot.ns(),
        ])
    };
    let mut signers = Vec::new();
    let mut reloads = 0;
    for n in 0..=12 {
        let before = root.read("etc/dkimctl/dkim.toml");
        let run = rotate(n).expect(0);
        let out = run.stdout();
        eprintln!("--- day {n} ({})\n{out}", day(n));
        assert!(!out.contains(&key.secret), "the TSIG secret was printed");
        if root.read("etc/dkimctl/dkim.toml") != before {
            // apply under a sandbox root names the reload to run: the
            // engine's own, never a restart.
            assert!(
                out.contains("systemctl reload dkimctl.service")
                    && !out.contains("restart dkimctl.service"),
                "day {n}:\n{out}"
            );
            serve.signal(nix::sys::signal::Signal::SIGHUP);
            reloads += 1;
            assert!(
                serve.wait_log("reloaded configuration", reloads),
                "{}",
                serve.log_text()
            );
        }
        assert!(serve.running(), "day {n}: the engine stopped");
        signers.push(signed_and_verified(&serve, &knot, &format!("day {n}")));
    }
    let new = day(0).replace('-', "");
    let next = day(10).replace('-', "");
    // Day 0 starts (first still signs), day 1 switches, day 10 starts the
    // next rotation, day 11 switches to it.
    assert_eq!(signers[0], "first", "{signers:?}");
    assert!(signers[1..=10].iter().all(|s| *s == new), "{signers:?}");
    assert!(signers[11..].iter().all(|s| *s == next), "{signers:?}");

    // `first` retired on day 3: revoked in DNS with n= its published URL,
    // its key published (0644) and archived.
    let url = "https://mail.example.com/dkim/first._domainkey.example.com.pem";
    assert_eq!(
        knot.txt_value("first._domainkey.example.com"),
        format!("v=DKIM1; k=rsa; n={url}; p=")
    );
    let published = root.join("srv/www/dkim/first._domainkey.example.com.pem");
    let meta = std::fs::metadata(&published).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    assert!(
        root.join("etc/dkimctl/keys/example.com/retired/first.private")
            .exists()
    );
    assert!(
        !root
            .join("etc/dkimctl/keys/example.com/first.private")
            .exists()
    );
    let toml = root.read("etc/dkimctl/dkim.toml");
    assert!(toml.contains("state = \"retired\""), "{toml}");
    // The second rotation's old key is retiring, its record still served.
    assert!(
        knot.txt_value(&format!("{new}._domainkey.example.com"))
            .contains("p=MII")
    );
    // A run with nothing due changes nothing and exits 0.
    let run = rotate(12).expect(0);
    assert!(!run.stdout().contains("advance"), "{}", run.stdout());
    assert_eq!(root.read("etc/dkimctl/dkim.toml"), toml);
    let json = json(
        &root
            .dkimctl(&[
                "rotate",
                "--auto",
                "--json",
                "--today",
                &day(12),
                "--nameserver",
                &knot.ns(),
            ])
            .expect(0),
    );
    assert_eq!(json["exit"], 0);
    assert_eq!(json["last_publish"]["ok"], true, "{json:#}");
    // The engine's metrics: the next rotation (the day-10 key is due on
    // day 20) and the last publish.
    let scraped = http_get(metrics, "/metrics");
    let due = dkimctl::config::types::Date::parse(&day(20))
        .unwrap()
        .days_since_epoch()
        * 86_400;
    assert!(
        scraped.contains(&format!(
            "dkimctl_key_next_rotation_timestamp_seconds{{domain=\"example.com\"}} {due}"
        )),
        "{scraped}"
    );
    assert!(scraped.contains("dkimctl_dns_publish_ok 1\n"), "{scraped}");
    assert!(
        scraped.contains("dkimctl_dns_publish_timestamp_seconds "),
        "{scraped}"
    );
    let _ = serve.stop();
}

#[test]
fn manual_publishing_waits_for_the_admin_then_switches() {
    // No TSIG, no updates: the admin publishes by hand with knotc.
    let Some(knot) = Knot::start_in("", UPDATE_PORTS) else {
        return;
    };
    let ns = knot.ns();
    let root = TempRoot::new(&format!(
        r#"[service]
mode = "sign"
[[domain]]
name = "example.com"
[[domain.key]]
selector = "first"
created = "2026-02-19"
[mta]
kind = "none"
[engine]
nameservers = ["{ns}"]
dns_timeout = "2s"
[rotation]
every = "10d"
grace = "1d"
[dns]
zone = "example.com"
authoritative = ["{ns}"]
"#
    ));
    root.dkimctl(&["keys", "generate"]).expect(0);
    root.dkimctl(&["apply", "--yes", "--no-reload"]).expect(0);
    let rotate =
        |n: i64| root.dkimctl(&["rotate", "--auto", "--today", &day(n), "--nameserver", &ns]);
    // `dns publish` in manual mode says what to publish, and exits 1.
    let r = root.dkimctl(&["dns", "publish"]).expect(1);
    assert!(
        r.stdout()
            .contains("to create  first._domainkey.example.com"),
        "{}",
        r.stdout()
    );
    assert!(
        r.stdout().contains("publish ONE TXT record:"),
        "{}",
        r.stdout()
    );
    // Day 0 starts; the new record is not published: exit 1, no switch.
    let r = rotate(0).expect(1);
    assert!(r.stdout().contains("not yet: publish "), "{}", r.stdout());
    let r = rotate(1).expect(1);
    assert!(!r.stdout().contains("is now active"), "{}", r.stdout());
    // The admin publishes what `dns records` prints.
    for (name, value) in records(&root) {
        let owner = name.trim_end_matches(".example.com");
        let strings: Vec<&str> = dkimctl::keys::character_strings(&value);
        knot.set_txt_by_hand(owner, &strings);
    }
    // Served from day 1 on: day 1 notes it, day 2 switches.
    let r = rotate(1).expect(0);
    assert!(
        r.stdout().contains("the switch follows on"),
        "{}",
        r.stdout()
    );
    let r = rotate(2).expect(0);
    assert!(r.stdout().contains("is now active"), "{}", r.stdout());
    // Retired on day 3; the revoked record is for the admin to publish.
    let r = rotate(3).expect(0);
    assert!(
        r.stdout().contains("first (rsa-sha256) is retired"),
        "{}",
        r.stdout()
    );
    let r = root.dkimctl(&["dns", "publish"]).expect(1);
    assert!(
        r.stdout()
            .contains("to replace first._domainkey.example.com (retired)"),
        "{}",
        r.stdout()
    );
}

/// `GET path` on 127.0.0.1:`port`: the response body.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).expect("read");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(out)
}

#[test]
fn a_fleet_of_two_hosts_rotates_into_one_zone_without_touching_each_other() {
    let key = TsigKey::random("fleet");
    let Some(knot) = Knot::updatable("", &key) else {
        return;
    };
    let host = |first: &str, pattern: &str| {
        let text = config(
            &knot,
            &format!("[[domain.key]]\nselector = \"{first}\"\ncreated = \"2026-02-19\""),
            &format!("every = \"10d\"\ngrace = \"1d\"\nselector = \"{pattern}\""),
        );
        let root = root_with(&text, &key);
        root.dkimctl(&["apply", "--yes", "--no-reload"]).expect(0);
        root
    };
    // One host names selectors after its host name, the other has its
    // prefix written out (what a config-management template fills in).
    let a = host("a1", "{host}-{date}");
    let b = host("b1", "mx2-{date}");
    let label = dkimctl::rotate::host_label();
    for n in 0..=3 {
        for r in [&a, &b] {
            r.dkimctl(&[
                "rotate",
                "--auto",
                "--today",
                &day(n),
                "--nameserver",
                &knot.ns(),
            ])
            .expect(0);
        }
    }
    let date = day(0).replace('-', "");
    let names = [
        format!("a1._domainkey.{ZONE}"),
        format!("{label}-{date}._domainkey.{ZONE}"),
        format!("b1._domainkey.{ZONE}"),
        format!("mx2-{date}._domainkey.{ZONE}"),
    ];
    for n in &names {
        assert_eq!(
            knot.txt(n).len(),
            1,
            "{n} is not served: {}",
            knot.log_text()
        );
    }
    // Each host's old key ended revoked, its new one active and served.
    assert_eq!(knot.txt_value(&names[0]), "v=DKIM1; k=rsa; p=");
    assert_eq!(knot.txt_value(&names[2]), "v=DKIM1; k=rsa; p=");
    for (root, name) in [(&a, &names[1]), (&b, &names[3])] {
        let want = records(root)
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1;
        assert_eq!(&knot.txt_value(name), &want);
    }
    // A's publish knows nothing of B's selectors and leaves them alone.
    let j = json(
        &a.dkimctl(&["dns", "publish", "--json", "--today", &day(4)])
            .expect(0),
    );
    let touched: Vec<&str> = j["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        touched
            .iter()
            .all(|n| !n.starts_with("b1.") && !n.starts_with("mx2-")),
        "{touched:?}"
    );
}

#[test]
fn zonefile_mode_writes_the_records_and_reloads_the_server() {
    let root = TempRoot::new("");
    let fragment = "var/lib/dkimctl/dkim.zone";
    root.write(fragment, "; filled in by dkimctl dns publish\n");
    let Some(knot) = Knot::start_in(
        &format!("$INCLUDE {}\n", root.join(fragment).display()),
        UPDATE_PORTS,
    ) else {
        return;
    };
    let reload: Vec<String> = knot
        .reload_command()
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect();
    let ns = knot.ns();
    root.write(
        "etc/dkimctl/dkim.toml",
        &format!(
            r#"[service]
mode = "sign"
[[domain]]
name = "example.com"
selector = "z1"
[mta]
kind = "none"
[engine]
nameservers = ["{ns}"]
[dns]
update = "zonefile"
zonefile = "/{fragment}"
reload = [{}]
authoritative = ["{ns}"]
"#,
            reload.join(", ")
        ),
    );
    root.dkimctl(&["keys", "generate"]).expect(0);
    let want = records(&root);
    let r = root.dkimctl(&["dns", "publish"]).expect(0);
    assert!(
        r.stdout().contains(&format!("/{fragment} written")),
        "{}",
        r.stdout()
    );
    assert_eq!(knot.txt_value(&want[0].0), want[0].1);
    let text = root.read(fragment);
    assert!(text.starts_with("; Managed by dkimctl"), "{text}");
    assert!(
        text.contains("z1._domainkey.example.com. 3600 IN TXT ( \"v=DKIM1; k=rsa; \" \"p="),
        "{text}"
    );
    let mode = std::fs::metadata(root.join(fragment))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    let r = root.dkimctl(&["dns", "publish"]).expect(0);
    assert!(
        r.stdout().contains(&format!("/{fragment} unchanged")),
        "{}",
        r.stdout()
    );
    // Edited by hand: rewritten and reloaded.
    root.write(
        fragment,
        "z1._domainkey.example.com. 60 IN TXT \"v=DKIM1; p=HAND\"\n",
    );
    knot.knotc(&["-b", "zone-reload", ZONE]);
    let r = root.dkimctl(&["dns", "publish", "--json"]).expect(0);
    assert_eq!(json(&r)["records"][0]["action"], "replace");
    assert_eq!(knot.txt_value(&want[0].0), want[0].1);
}

/// Renders a configuration with `[rotation] every` into a tree.
fn rendered_rotation_units(config: &str) -> tempfile::TempDir {
    let root = TempRoot::new(config);
    let out = tempfile::tempdir().unwrap();
    root.dkimctl(&["render", "--out", &out.path().display().to_string()])
        .expect(0);
    out
}

#[test]
fn the_rotation_timer_and_service_verify_and_are_hardened() {
    if !require_tool("systemd-analyze") {
        return;
    }
    let config = format!(
        r#"[service]
binary = "{}"
[[domain]]
name = "example.com"
selector = "s1"
[engine]
nameservers = ["192.0.2.53"]
[rotation]
every = "90d"
[dns]
update = "rfc2136"
server = "192.0.2.1"
tsig_key_file = "/etc/dkimctl/tsig.key"
authoritative = ["192.0.2.1", "198.51.100.1"]
"#,
        bin().display()
    );
    let tree = rendered_rotation_units(&config);
    let dir = tree.path().join("etc/systemd/system");
    let (timer, service) = (
        dir.join("dkimctl-rotate.timer"),
        dir.join("dkimctl-rotate.service"),
    );
    let text = std::fs::read_to_string(&service).unwrap();
    for want in [
        "Type=oneshot",
        "LoadCredential=tsig.key:/etc/dkimctl/tsig.key",
        "IPAddressDeny=any",
        "IPAddressAllow=localhost 192.0.2.53 192.0.2.1 198.51.100.1",
        "ProtectSystem=strict",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    let timer_text = std::fs::read_to_string(&timer).unwrap();
    for want in ["OnCalendar=daily", "RandomizedDelaySec=", "Persistent=true"] {
        assert!(timer_text.contains(want), "{want} missing:\n{timer_text}");
    }
    let r = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&timer)
        .arg(&service));
    let complaints: Vec<String> = r
        .stderr()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert!(
        r.code() == 0 && complaints.is_empty(),
        "systemd-analyze verify:\n{}",
        r.stderr()
    );
    let r = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&service));
    let out = r.stdout() + &r.stderr();
    let score: f64 = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure in:\n{out}"));
    eprintln!("dkimctl-rotate.service exposure: {score}");
    assert!(
        score <= 2.0,
        "dkimctl-rotate.service exposure {score} > 2.0:\n{out}"
    );

    // Without [rotation] every, no timer.
    let tree = rendered_rotation_units(&config.replace("every = \"90d\"\n", ""));
    assert!(
        !tree
            .path()
            .join("etc/systemd/system/dkimctl-rotate.timer")
            .exists()
    );
}
