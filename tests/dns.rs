//! `dns check` and `rotate` against a real DNS server: Knot on loopback,
//! serving records that `dkimctl dns records` and `dkimctl rotate` print.
//! Independent tools judge the same records: opendkim-testkey (OpenDKIM's
//! own key test) and dkimpy (signing and verifying a message).
//!
//! [`Knot`] runs one private `knotd` per test on a free loopback port; it
//! is killed by PID when the test ends.
//!
//! How the independent tools reach the loopback server:
//! - opendkim-testkey has no name server flag, but Debian's libopendkim
//!   resolves through libunbound, and `-x FILE` reads the opendkim.conf
//!   option `Nameservers`, which takes `127.0.0.1@PORT`. No network
//!   namespace or resolv.conf bind mount is needed.
//! - dkimpy takes a `dnsfunc`; ours asks Knot with dnspython (or kdig when
//!   dnspython is missing) and returns the one TXT record's strings joined.
//!
//! Every dkimctl command runs as the real binary (`--root` a temporary
//! directory, `--nameserver` the Knot server, `--today` a fixed date).

use std::process::Command;

use serde_json::Value;

use crate::support::configs::config;
use crate::support::knot::{Knot, Published, ZONE, published};
use crate::support::proc::free_port;
use crate::support::verifiers::python_with_dkimpy;
use crate::support::{self, Run, TempRoot};

// ---- running dkimctl -------------------------------------------------------

/// Seconds `dns check` waits for each answer in these tests.
const TIMEOUT: &str = "1";

/// `dkimctl --root ROOT dns check --nameserver NS [--json]`.
fn dns_check(root: &TempRoot, ns: &str, json: bool) -> Run {
    let mut args = vec!["dns", "check", "--nameserver", ns, "--timeout", TIMEOUT];
    if json {
        args.push("--json");
    }
    root.dkimctl(&args)
}

/// `dkimctl --root ROOT rotate example.com [--continue] --nameserver NS
/// --today DAY`.
fn rotate(root: &TempRoot, cont: bool, ns: &str, today: &str) -> Run {
    let mut args = vec!["rotate", ZONE, "--nameserver", ns, "--today", today];
    if cont {
        args.push("--continue");
    }
    root.dkimctl(&args)
}

/// Generates the configured keys and returns their records.
fn generate_and_list(root: &TempRoot) -> Vec<Published> {
    root.dkimctl(&["keys", "generate"]).expect(0);
    published(root)
}

fn find<'a>(records: &'a [Published], name: &str) -> &'a Published {
    records
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no record {name}"))
}

/// The same strings published as separate TXT records: the ArchWiki
/// page's broken setup.
fn as_separate_records(name: &str, strings: &[String]) -> String {
    strings
        .iter()
        .map(|s| format!("{name}. IN TXT \"{s}\"\n"))
        .collect()
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

fn status_of<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["selectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no finding for {name} in {json}"))
}

const ONE_DOMAIN: &str = r#"[service]
engine = "bundled"

[[domain]]
name = "example.com"
selector = "sel"
"#;

// ---- dns check ---------------------------------------------------------------

#[test]
fn dns_check_passes_the_record_dns_records_prints() {
    let root = TempRoot::new(ONE_DOMAIN);
    let recs = generate_and_list(&root);
    // `dns records` output pasted into the zone file as it is.
    let printed = root
        .dkimctl(&["dns", "records", "--format", "zone"])
        .expect(0)
        .stdout();
    assert!(printed.contains(&recs[0].zone), "{printed}");
    let plain = root
        .dkimctl(&["dns", "records", "--format", "plain"])
        .expect(0)
        .stdout();
    assert!(plain.contains(&recs[0].value), "{plain}");
    let zone = format!(
        "{printed}\n@ IN TXT \"v=spf1 mx -all\"\n\
         _dmarc IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@example.com\"\n"
    );
    let Some(knot) = Knot::start(&zone) else {
        return;
    };

    let run = dns_check(&root, &knot.ns(), false).expect(0);
    let out = run.stdout();
    assert!(
        out.contains("ok       sel._domainkey.example.com (rsa 2048)\n"),
        "{out}"
    );
    assert!(
        out.contains("info     example.com DMARC: present, p=reject"),
        "{out}"
    );

    let json = json_of(&dns_check(&root, &knot.ns(), true).expect(0));
    assert_eq!(json["exit"], 0);
    assert_eq!(
        status_of(&json, "sel._domainkey.example.com")["status"],
        "ok"
    );
    assert_eq!(json["domains"][0]["spf"]["status"], "present");
    assert_eq!(json["domains"][0]["dmarc"]["policy"], "reject");
    assert_eq!(json["asked"], knot.ns());

    // Without --nameserver, `[engine] nameservers` is asked (the server
    // the engine verifies with), and the report says so.
    let with_engine_ns = format!(
        "{ONE_DOMAIN}\n[engine]\nnameservers = [\"{}\"]\n",
        knot.ns()
    );
    root.write("etc/dkimctl/dkim.toml", &with_engine_ns);
    let run = root
        .dkimctl(&["dns", "check", "--timeout", TIMEOUT])
        .expect(0);
    assert!(
        run.stdout().contains(&format!("(asked {})", knot.ns())),
        "{}",
        run.stdout()
    );
}

#[test]
fn dns_check_names_each_broken_record() {
    // One domain per case, all inside the example.com zone.
    let cases = ["good", "split", "other", "revoked", "missing", "testing"];
    let config: String = std::iter::once("[service]\nengine = \"bundled\"\n".to_string())
        .chain(
            cases
                .iter()
                .map(|c| format!("\n[[domain]]\nname = \"{c}.example.com\"\nselector = \"sel\"\n")),
        )
        .collect();
    let root = TempRoot::new(&config);
    let recs = generate_and_list(&root);
    // Keys of a second host with the same names: "another key".
    let stranger = TempRoot::new(&config);
    let strange = generate_and_list(&stranger);

    let name = |c: &str| format!("sel._domainkey.{c}.example.com");
    let mut zone = String::new();
    zone.push_str(&find(&recs, &name("good")).zone);
    zone.push('\n');
    zone.push_str(&as_separate_records(
        &name("split"),
        &find(&recs, &name("split")).strings,
    ));
    zone.push_str(&find(&strange, &name("other")).zone);
    zone.push('\n');
    zone.push_str(&format!(
        "{}. IN TXT \"v=DKIM1; k=rsa; p=\"\n",
        name("revoked")
    ));
    let testing = find(&recs, &name("testing"))
        .value
        .replace("k=rsa; ", "k=rsa; t=y; ");
    zone.push_str(&dkimctl::keys::zone_form(&name("testing"), &testing));
    zone.push('\n');
    let Some(knot) = Knot::start(&zone) else {
        return;
    };

    let run = dns_check(&root, &knot.ns(), true).expect(1);
    let json = json_of(&run);
    let want = [
        ("good", "ok", "ok"),
        ("split", "several-records", "error"),
        ("other", "mismatch", "error"),
        ("revoked", "revoked", "error"),
        ("missing", "missing", "error"),
        ("testing", "testing", "warning"),
    ];
    for (case, status, severity) in want {
        let f = status_of(&json, &name(case));
        assert_eq!(
            (f["status"].as_str(), f["severity"].as_str()),
            (Some(status), Some(severity)),
            "{case}: {f}"
        );
    }
    let split = status_of(&json, &name("split"));
    let parts = find(&recs, &name("split")).strings.len();
    assert_eq!(
        split["message"],
        format!(
            "{parts} TXT records at {}; receivers join them in any order and fail with 'bad format' \
             (the ArchWiki page's case)",
            name("split")
        )
    );
    assert!(
        split["fix"]
            .as_str()
            .unwrap()
            .contains(&find(&recs, &name("split")).zone),
        "{split}"
    );

    // The human form: one line per selector, details indented.
    let text = dns_check(&root, &knot.ns(), false).expect(1).stdout();
    assert!(
        text.contains(&format!("error    several-records {}\n", name("split"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("warning  testing {}\n", name("testing"))),
        "{text}"
    );
}

#[test]
fn dns_check_with_the_server_down_exits_2() {
    let root = TempRoot::new(ONE_DOMAIN);
    root.dkimctl(&["keys", "generate"]).expect(0);
    // Nothing listens here.
    let ns = format!("127.0.0.1:{}", free_port());
    let run = dns_check(&root, &ns, true).expect(2);
    let json = json_of(&run);
    assert_eq!(
        status_of(&json, "sel._domainkey.example.com")["status"],
        "dns-error"
    );
    assert_eq!(json["exit"], 2);
    let text = dns_check(&root, &ns, false).expect(2).stdout();
    assert!(!text.contains("ok       "), "{text}");
    assert!(text.contains("the check is incomplete"), "{text}");
}

// ---- independent tools ---------------------------------------------------------

/// Runs opendkim-testkey against the Knot server (see the module docs).
fn opendkim_testkey(root: &TempRoot, knot: &Knot, selector: &str) -> Run {
    let conf = root.join("opendkim-testkey.conf");
    std::fs::write(&conf, format!("Nameservers 127.0.0.1@{}\n", knot.port())).unwrap();
    let key = root.join(&format!("etc/dkimctl/keys/example.com/{selector}.private"));
    support::run(
        Command::new(support::which("opendkim-testkey").expect("opendkim-testkey"))
            .arg("-x")
            .arg(&conf)
            .args(["-d", ZONE, "-s", selector, "-k"])
            .arg(&key)
            .arg("-vvv"),
    )
}

#[test]
fn opendkim_testkey_accepts_the_zone_form_record() {
    if !support::require_tool("opendkim-testkey") {
        return;
    }
    let root = TempRoot::new(ONE_DOMAIN);
    let recs = generate_and_list(&root);
    assert!(
        recs[0].strings.len() > 1,
        "a 2048-bit record needs several strings"
    );
    let Some(mut knot) = Knot::start(&recs[0].zone) else {
        return;
    };
    let run = opendkim_testkey(&root, &knot, "sel");
    let said = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        run.code() == 0 && said.contains("key OK"),
        "{}\n{said}",
        run.cmd
    );

    // Control: the same strings as separate records fail there too, as
    // `dns check` says they will.
    knot.reload(&as_separate_records(&recs[0].name, &recs[0].strings));
    let run = opendkim_testkey(&root, &knot, "sel");
    let said = format!("{}{}", run.stdout(), run.stderr());
    assert_ne!(
        run.code(),
        0,
        "opendkim-testkey accepted separate records:\n{said}"
    );
    dns_check(&root, &knot.ns(), false).expect(1);
}

/// Signs a message with the key file and verifies it, both with dkimpy;
/// the public key comes from Knot. Prints `pass` or `fail`.
const DKIMPY_SIGN_VERIFY: &str = r#"
import base64, subprocess, sys
import dkim
port, domain, selector, keyfile, alg = sys.argv[1:6]
pem = open(keyfile, 'rb').read()
if alg == 'ed25519-sha256':
    # dkimpy takes the raw 32-byte seed, base64: the end of the PKCS#8 v1 DER.
    der = base64.b64decode(b''.join(l for l in pem.splitlines() if not l.startswith(b'-----')))
    key = base64.b64encode(der[-32:])
else:
    key = pem
msg = (b'From: someone@' + domain.encode() + b'\r\nTo: b@example.org\r\nSubject: rotation test\r\n'
       b'Date: Sat, 28 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello.\r\n')
sig = dkim.sign(msg, selector.encode(), domain.encode(), key, signature_algorithm=alg.encode(),
                include_headers=[b'from', b'to', b'subject', b'date', b'message-id'])

def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    try:
        import dns.resolver
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = ['127.0.0.1']
        r.port = int(port)
        answer = r.resolve(name, 'TXT')
        if len(answer) != 1:
            return None
        return b''.join(answer[0].strings)
    except ImportError:
        out = subprocess.run(['kdig', '@127.0.0.1', '-p', port, '+short', 'TXT', name],
                             capture_output=True, check=True).stdout.decode().strip().splitlines()
        if len(out) != 1:
            return None
        # kdig prints one record as "string" "string" ...
        parts = out[0].strip()[1:-1].split('" "')
        return ''.join(parts).encode()

print('pass' if dkim.verify(sig + msg, dnsfunc=dnsfunc) else 'fail')
"#;

#[test]
fn dkimpy_verifies_mail_signed_with_generated_keys() {
    let Some(python) = python_with_dkimpy() else {
        return;
    };
    let root = config("sign-dual-example-com").root();
    let recs = generate_and_list(&root);
    let zone: String = recs.iter().map(|r| format!("{}\n", r.zone)).collect();
    let Some(knot) = Knot::start(&zone) else {
        return;
    };
    dns_check(&root, &knot.ns(), false).expect(0);
    for (selector, alg) in [("rsa1", "rsa-sha256"), ("ed1", "ed25519-sha256")] {
        let key = root.join(&format!("etc/dkimctl/keys/example.com/{selector}.private"));
        let run = support::run(
            Command::new(&python)
                .args([
                    "-c",
                    DKIMPY_SIGN_VERIFY,
                    &knot.port().to_string(),
                    ZONE,
                    selector,
                ])
                .arg(&key)
                .arg(alg),
        );
        assert_eq!(
            run.stdout().trim(),
            "pass",
            "{alg}: {}\n{}",
            run.cmd,
            run.stderr()
        );
    }
}

// ---- rotate ----------------------------------------------------------------------

const ROTATING: &str = r#"# Signing for example.com; rotated with `dkimctl rotate`.
[service]
engine = "bundled"

[[domain]]
name = "example.com"
# The key we started with.
selector = "first"   # keep me

[rotation]
grace = "7d"   # one week for mail in flight
"#;

/// The zone-form block for `name` in rotate's output.
fn printed_record(out: &str, name: &str) -> String {
    let start = out
        .find(&format!("{name}. IN TXT ("))
        .unwrap_or_else(|| panic!("no record for {name} in:\n{out}"));
    let rest = &out[start..];
    let end = rest.find(" )").expect("end of record") + 2;
    rest[..end].to_string()
}

#[test]
fn rotate_full_cycle_against_knot() {
    let root = TempRoot::new(ROTATING);
    let first = generate_and_list(&root).remove(0);
    let Some(mut knot) = Knot::start(&first.zone) else {
        return;
    };
    let ns = knot.ns();
    let conf = "etc/dkimctl/dkim.toml";

    // Step 1: a pending key and the record to publish.
    let run = rotate(&root, false, &ns, "2026-11-28").expect(0);
    let out = run.stdout();
    let new_record = printed_record(&out, "20261128._domainkey.example.com");
    assert!(out.contains("rotate example.com --continue"), "{out}");
    let text = root.read(conf);
    assert!(text.contains("selector = \"20261128\""), "{text}");
    assert!(text.contains("state = \"pending\""), "{text}");
    assert!(
        root.join("etc/dkimctl/keys/example.com/20261128.private")
            .exists()
    );

    // Step 2 before publishing: no switch, dkim.toml unchanged.
    let run = rotate(&root, true, &ns, "2026-11-28").expect(1);
    assert!(
        run.stdout()
            .contains("new record not yet published -> no switch"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout()
            .contains("missing 20261128._domainkey.example.com"),
        "{}",
        run.stdout()
    );
    assert_eq!(root.read(conf), text);

    // Publish what rotate printed; step 2 switches.
    knot.reload(&format!("{}\n{new_record}\n", first.zone));
    let run = rotate(&root, true, &ns, "2026-11-28").expect(0);
    assert!(run.stdout().contains("dkimctl apply"), "{}", run.stdout());
    let text = root.read(conf);
    for kept in [
        "# Signing for example.com; rotated with `dkimctl rotate`.\n",
        "# The key we started with.\n[[domain.key]]\nselector = \"first\"   # keep me\nstate = \"retiring\"\nretire_after = \"2026-12-05\"\n",
        "grace = \"7d\"   # one week for mail in flight\n",
        "selector = \"20261128\"\nalgorithm = \"rsa-sha256\"\nstate = \"active\"\ncreated = \"2026-11-28\"\n",
    ] {
        assert!(text.contains(kept), "missing {kept:?} in:\n{text}");
    }
    root.dkimctl(&["check"]).expect(0);
    // Both records are right: the new active key and the retiring one.
    dns_check(&root, &ns, false).expect(0);

    // Not due yet: nothing changes.
    let run = rotate(&root, true, &ns, "2026-12-04").expect(0);
    assert!(
        run.stdout().contains("first retires on 2026-12-05"),
        "{}",
        run.stdout()
    );
    assert_eq!(root.read(conf), text);

    // Step 3 after the grace period: retired, archived, revoked record.
    let run = rotate(&root, true, &ns, "2026-12-05").expect(0);
    let out = run.stdout();
    let revoked = printed_record(&out, "first._domainkey.example.com");
    assert_eq!(
        revoked,
        dkimctl::keys::zone_form("first._domainkey.example.com", "v=DKIM1; k=rsa; p=")
    );
    assert!(root.read(conf).contains("state = \"retired\""));
    assert!(
        !root
            .join("etc/dkimctl/keys/example.com/first.private")
            .exists()
    );
    assert!(
        root.join("etc/dkimctl/keys/example.com/retired/first.private")
            .exists()
    );

    // The revoked record published: the check is clean.
    knot.reload(&format!("{revoked}\n{new_record}\n"));
    let json = json_of(&dns_check(&root, &ns, true).expect(0));
    assert_eq!(
        status_of(&json, "first._domainkey.example.com")["state"],
        "retired"
    );

    // Again: nothing to do.
    let before = root.read(conf);
    let run = rotate(&root, true, &ns, "2026-12-06").expect(0);
    assert!(run.stdout().contains("nothing to do"), "{}", run.stdout());
    assert_eq!(root.read(conf), before);
}

/// The retire step leaves a key in place while the installed unit still
/// loads it (`LoadCredential=`): moving it would make the engine's next
/// start fail. Once `apply` rewrote the unit, the next `--continue` moves
/// it away.
#[test]
fn retire_keeps_a_key_the_installed_unit_still_loads() {
    let root = TempRoot::new(&format!("{ROTATING}\n[mta]\nkind = \"none\"\n"));
    root.dkimctl(&["apply", "--yes"]).expect(0);
    let unit = "etc/systemd/system/dkimctl.service";
    assert!(root.read(unit).contains("first.private"));
    let first = published(&root).remove(0);
    let Some(mut knot) = Knot::start(&first.zone) else {
        return;
    };
    let ns = knot.ns();
    let out = rotate(&root, false, &ns, "2026-11-28").expect(0).stdout();
    let new_record = printed_record(&out, "20261128._domainkey.example.com");
    knot.reload(&format!("{}\n{new_record}\n", first.zone));
    rotate(&root, true, &ns, "2026-11-28").expect(0);
    // No apply after the switch: the unit still names the old key.
    let out = rotate(&root, true, &ns, "2026-12-05").expect(0).stdout();
    assert!(out.contains("stays in place while"), "{out}");
    let key = "etc/dkimctl/keys/example.com/first.private";
    assert!(root.join(key).exists(), "the retired key was moved away");
    assert!(
        root.read("etc/dkimctl/dkim.toml")
            .contains("state = \"retired\"")
    );

    root.dkimctl(&["apply", "--yes"]).expect(0);
    assert!(
        !root.read(unit).contains("first.private"),
        "{}",
        root.read(unit)
    );
    rotate(&root, true, &ns, "2026-12-06").expect(0);
    assert!(!root.join(key).exists());
    assert!(
        root.join("etc/dkimctl/keys/example.com/retired/first.private")
            .exists()
    );
}

/// A domain added on day 2 can wait for its record: its key written
/// `state = "pending"` is generated and published (`dns records`) but signs
/// nothing (`check` says so), and `rotate --continue` makes it active once
/// DNS serves the record, the gate a rotation uses.
#[test]
fn a_new_domain_waits_pending_until_its_record_is_published() {
    let config = format!(
        "{ONE_DOMAIN}\n[[domain]]\nname = \"news.example.com\"\n\
         [[domain.key]]\nselector = \"n1\"\nalgorithm = \"rsa-sha256\"\nstate = \"pending\"\n"
    );
    let root = TempRoot::new(&config);
    let recs = generate_and_list(&root);
    let check = root.dkimctl(&["check"]).expect(0);
    assert!(
        check
            .stderr()
            .contains("news.example.com signs nothing with rsa-sha256 yet"),
        "{}",
        check.stderr()
    );
    let first = find(&recs, "sel._domainkey.example.com");
    let news = find(&recs, "n1._domainkey.news.example.com");
    let Some(mut knot) = Knot::start(&first.zone) else {
        return;
    };
    let ns = knot.ns();
    let args = [
        "rotate",
        "news.example.com",
        "--continue",
        "--nameserver",
        &ns,
    ];
    let waiting = root.dkimctl(&args).expect(1);
    assert!(
        waiting.stdout().contains("not yet published"),
        "{}",
        waiting.stdout()
    );
    knot.reload(&format!("{}\n{}\n", first.zone, news.zone));
    let run = root.dkimctl(&args).expect(0);
    assert!(
        run.stdout().contains("n1 (rsa-sha256) is now active"),
        "{}",
        run.stdout()
    );
    let text = root.read("etc/dkimctl/dkim.toml");
    assert!(
        text.contains("selector = \"n1\"\nalgorithm = \"rsa-sha256\"\nstate = \"active\""),
        "{text}"
    );
    let check = root.dkimctl(&["check"]).expect(0);
    assert!(
        !check.stderr().contains("signs nothing"),
        "{}",
        check.stderr()
    );
}

#[test]
fn rotate_refuses_a_corrupt_key_and_changes_nothing() {
    let root = TempRoot::new(ROTATING);
    root.dkimctl(&["keys", "generate"]).expect(0);
    let key = root.join("etc/dkimctl/keys/example.com/first.private");
    let corrupt = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
    std::fs::write(&key, corrupt).unwrap();
    let before = support::tree(root.path());
    // No DNS is asked in step 1; the address is never used.
    let run = rotate(&root, false, "127.0.0.1:9", "2026-11-28").expect(2);
    assert!(
        run.stderr().contains(&key.display().to_string()),
        "{}",
        run.stderr()
    );
    assert_eq!(support::tree(root.path()), before, "rotate changed files");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), corrupt);
}
