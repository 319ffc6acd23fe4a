//! Rotation steps against a temporary root, with DNS answers from a table.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::dns::{Fixed, TxtAnswer};

const SINGLE: &str = r#"# Signing for example.com.
[service]
engine = "bundled"

[[domain]]
name = "example.com"
# the first key
selector = "first"   # do not rename

[rotation]
grace = "7d"
"#;

const DUAL: &str = include_str!("../../tests/fixtures/configs/dual-shared-key.toml");

/// Decides a step, has apply carry it out and prints the report: what
/// the CLI does. Errors are rendered.
fn run_step(
    source: &Source,
    root: &Root,
    domain: &str,
    cont: bool,
    today: &str,
    dns: &Fixed,
) -> Result<(i32, String), String> {
    let mut factory =
        |_: Duration| -> Result<Box<dyn TxtResolver>, DnsError> { Ok(Box::new(dns.clone())) };
    let step = decide_with(
        source,
        root,
        domain,
        cont,
        Date::parse(today).unwrap(),
        &mut factory,
    )
    .map_err(|e| crate::report::chain(&e))?;
    let retired = crate::apply::rotation::carry_out(root, source, &step)
        .map_err(|e| crate::report::chain(&e))?;
    let mut out = Vec::new();
    step.print(&retired, &mut out).unwrap();
    Ok((step.code, String::from_utf8(out).unwrap()))
}

struct Fixture {
    dir: tempfile::TempDir,
    source: Source,
}

impl Fixture {
    /// A root holding `text` as dkim.toml and a key for every active key.
    fn new(text: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let source = Source::resolve(&root, None);
        fs::create_dir_all(source.real.parent().unwrap()).unwrap();
        fs::write(&source.real, text).unwrap();
        fs::set_permissions(&source.real, fs::Permissions::from_mode(0o640)).unwrap();
        let config = valid_config(text, &source).unwrap();
        for d in config.domains.iter().filter(|d| d.key_from.is_none()) {
            for k in &d.keys {
                let pair = keys::generate(k.algorithm, 2048).unwrap();
                let path = root.join(&k.path);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, pair.private_pem.expose()).unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
        Fixture { dir, source }
    }

    fn root(&self) -> Root {
        Root::new(self.dir.path())
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.source.real).unwrap()
    }

    fn config(&self) -> Config {
        valid_config(&self.text(), &self.source).unwrap()
    }

    /// One `dkimctl rotate` run: decide, carry out, print.
    fn run(&self, cont: bool, today: &str, dns: &Fixed) -> (Result<i32, String>, String) {
        let r = run_step(&self.source, &self.root(), "example.com", cont, today, dns);
        match r {
            Ok((code, out)) => (Ok(code), out),
            Err(e) => (Err(e), String::new()),
        }
    }

    fn state(&self, selector: &str) -> (KeyState, Option<String>) {
        let config = self.config();
        let k = config.domains[0]
            .keys
            .iter()
            .find(|k| k.selector == selector)
            .unwrap();
        (k.state, k.retire_after.map(|d| d.to_string()))
    }

    /// DNS serving the correct record of every non-retired key, under
    /// every domain.
    fn published(&self) -> Fixed {
        let config = self.config();
        let mut fixed = Fixed::new();
        for d in &config.domains {
            for k in &d.keys {
                if k.state == KeyState::Retired {
                    continue;
                }
                let loaded = keys::load_private_key(&self.root().join(&k.path)).unwrap();
                let value = keys::record_value(k.algorithm, &loaded.public, d.record);
                fixed = fixed.record(
                    &keys::record_name(&k.selector, &d.name),
                    &keys::character_strings(&value),
                );
            }
        }
        fixed
    }
}

#[test]
fn full_cycle_single_key_with_short_form() {
    let f = Fixture::new(SINGLE);
    let nothing = Fixed::new();

    // Step 1: a pending key, the record to publish, comments kept.
    let (r, out) = f.run(false, "2026-11-28", &nothing);
    assert_eq!(r.unwrap(), 0, "{out}");
    let text = f.text();
    assert!(text.contains("# the first key\n[[domain.key]]\nselector = \"first\"   # do not rename\nstate = \"active\""), "{text}");
    assert!(text.contains("selector = \"20261128\"\nalgorithm = \"rsa-sha256\"\nstate = \"pending\"\ncreated = \"2026-11-28\""), "{text}");
    assert!(text.starts_with("# Signing for example.com.\n"));
    let key = f
        .root()
        .join(Path::new("/etc/dkimctl/keys/example.com/20261128.private"));
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&f.source.real).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(
        out.contains("20261128._domainkey.example.com. IN TXT ( \"v=DKIM1; k=rsa; \""),
        "{out}"
    );
    assert!(
        out.contains(
            "Next: publish it, wait for the TTL, then run `dkimctl rotate example.com --continue`."
        ),
        "{out}"
    );

    // Again: nothing changes.
    let before = f.text();
    let (r, out) = f.run(false, "2026-11-28", &nothing);
    assert_eq!(r.unwrap(), 0);
    assert!(out.contains("already under way"), "{out}");
    assert_eq!(f.text(), before);

    // Step 2 before publishing: no switch.
    let (r, out) = f.run(true, "2026-11-28", &nothing);
    assert_eq!(r.unwrap(), 1, "{out}");
    assert!(
        out.contains("new record not yet published -> no switch"),
        "{out}"
    );
    assert!(
        out.contains("missing 20261128._domainkey.example.com"),
        "{out}"
    );
    assert_eq!(f.text(), before);

    // Published as three records: still no switch.
    let published = f.published();
    let Ok(TxtAnswer::Records(recs)) = published.lookup_txt("20261128._domainkey.example.com")
    else {
        panic!()
    };
    let mut split = Fixed::new();
    for s in &recs[0].strings {
        split = split.record("20261128._domainkey.example.com", &[s]);
    }
    let (r, out) = f.run(true, "2026-11-28", &split);
    assert_eq!(r.unwrap(), 1, "{out}");
    assert!(out.contains("several-records"), "{out}");

    // Published: switch.
    let (r, out) = f.run(true, "2026-11-28", &published);
    assert_eq!(r.unwrap(), 0, "{out}");
    assert_eq!(f.state("20261128").0, KeyState::Active);
    assert_eq!(
        f.state("first"),
        (KeyState::Retiring, Some("2026-12-05".into()))
    );
    assert!(
        out.contains("run `dkimctl apply` so the engine signs with the new key"),
        "{out}"
    );
    assert!(f.text().contains("selector = \"first\"   # do not rename"));

    // Not yet due.
    let before = f.text();
    let (r, out) = f.run(true, "2026-12-04", &published);
    assert_eq!(r.unwrap(), 0);
    assert!(
        out.contains("first retires on 2026-12-05 (in 1 day(s))"),
        "{out}"
    );
    assert_eq!(f.text(), before);

    // Step 3: retired, archived, revoked record printed.
    let (r, out) = f.run(true, "2026-12-05", &published);
    assert_eq!(r.unwrap(), 0, "{out}");
    assert_eq!(f.state("first").0, KeyState::Retired);
    let old = f
        .root()
        .join(Path::new("/etc/dkimctl/keys/example.com/first.private"));
    let archived = f.root().join(Path::new(
        "/etc/dkimctl/keys/example.com/retired/first.private",
    ));
    assert!(!old.exists() && archived.exists());
    assert_eq!(
        fs::metadata(archived.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let revoked = keys::zone_form("first._domainkey.example.com", "v=DKIM1; k=rsa; p=");
    assert!(out.contains(&revoked), "{out}");

    // Done.
    let before = f.text();
    let (r, out) = f.run(true, "2026-12-06", &published);
    assert_eq!(r.unwrap(), 0);
    assert!(
        out.contains("nothing to do: no pending key, no retiring key"),
        "{out}"
    );
    assert_eq!(f.text(), before);
}

#[test]
fn dual_signing_names_and_shared_domains() {
    let f = Fixture::new(DUAL);
    let (r, out) = f.run(false, "2026-11-28", &Fixed::new());
    assert_eq!(r.unwrap(), 0, "{out}");
    let config = f.config();
    let pending: Vec<(&str, Algorithm)> = config.domains[0]
        .keys
        .iter()
        .filter(|k| k.state == KeyState::Pending)
        .map(|k| (k.selector.as_str(), k.algorithm))
        .collect();
    assert_eq!(
        pending,
        [
            ("20261128r", Algorithm::RsaSha256),
            ("20261128e", Algorithm::Ed25519Sha256)
        ]
    );
    // Both domains' records are printed: example.net shares the keys.
    assert!(
        out.contains("20261128e._domainkey.example.net. IN TXT"),
        "{out}"
    );

    // Publishing under example.com only is not enough.
    let mut only_com = Fixed::new();
    let all = f.published();
    for d in ["example.com"] {
        for sel in ["rsa1", "ed1", "20261128r", "20261128e"] {
            let name = format!("{sel}._domainkey.{d}");
            if let Ok(a) = all.lookup_txt(&name) {
                only_com = only_com.answer(&name, a);
            }
        }
    }
    let (r, out) = f.run(true, "2026-11-28", &only_com);
    assert_eq!(r.unwrap(), 1, "{out}");
    assert!(
        out.contains("missing 20261128r._domainkey.example.net"),
        "{out}"
    );

    let (r, out) = f.run(true, "2026-11-28", &all);
    assert_eq!(r.unwrap(), 0, "{out}");
    assert_eq!(f.state("rsa1").0, KeyState::Retiring);
    assert_eq!(f.state("ed1").0, KeyState::Retiring);
    assert_eq!(f.state("20261128r").0, KeyState::Active);
}

#[test]
fn a_taken_name_gets_a_letter() {
    let f = Fixture::new(SINGLE);
    let stray = f
        .root()
        .join(Path::new("/etc/dkimctl/keys/example.com/20261128.private"));
    fs::write(&stray, "not ours").unwrap();
    let (r, out) = f.run(false, "2026-11-28", &Fixed::new());
    assert_eq!(r.unwrap(), 0, "{out}");
    assert_eq!(f.state("20261128b").0, KeyState::Pending);
    assert_eq!(fs::read_to_string(&stray).unwrap(), "not ours");
}

#[test]
fn a_lookup_failure_is_exit_2_and_changes_nothing() {
    let f = Fixture::new(SINGLE);
    f.run(false, "2026-11-28", &Fixed::new()).0.unwrap();
    let before = f.text();
    let failing = Fixed::new().fail(
        "20261128._domainkey.example.com",
        crate::dns::LookupErrorKind::Timeout,
    );
    let (r, out) = f.run(true, "2026-11-28", &failing);
    assert_eq!(r.unwrap(), 2, "{out}");
    assert_eq!(f.text(), before);
}

#[test]
fn delete_instead_of_archive() {
    let f = Fixture::new(&SINGLE.replace(
        "grace = \"7d\"",
        "grace = \"1d\"\nretired_keys = \"delete\"",
    ));
    f.run(false, "2026-11-28", &Fixed::new()).0.unwrap();
    let published = f.published();
    f.run(true, "2026-11-28", &published).0.unwrap();
    assert_eq!(
        f.state("first"),
        (KeyState::Retiring, Some("2026-11-29".into()))
    );
    let (r, out) = f.run(true, "2026-11-29", &published);
    assert_eq!(r.unwrap(), 0, "{out}");
    assert!(out.contains("was deleted"), "{out}");
    assert!(
        !f.root()
            .join(Path::new("/etc/dkimctl/keys/example.com/first.private"))
            .exists()
    );
    assert!(
        !f.root()
            .join(Path::new("/etc/dkimctl/keys/example.com/retired"))
            .exists()
    );
}

#[test]
fn clear_errors_and_nothing_touched() {
    let f = Fixture::new(DUAL);
    let run_for = |domain: &str| {
        run_step(
            &f.source,
            &f.root(),
            domain,
            false,
            "2026-11-28",
            &Fixed::new(),
        )
    };
    let e = run_for("example.org").unwrap_err();
    assert_eq!(
        e,
        "example.org is not configured in dkim.toml (configured: example.com, example.net)"
    );
    let e = run_for("example.net").unwrap_err();
    assert!(
        e.starts_with("example.net takes its keys from example.com (key_from)"),
        "{e}"
    );

    // A corrupt active key: an error naming the file; nothing written.
    let rsa = f
        .root()
        .join(Path::new("/etc/dkimctl/keys/example.com/rsa1.private"));
    fs::write(
        &rsa,
        "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let before = f.text();
    let files_before = crate::rotate::tests::files(f.dir.path());
    let e = run_for("example.com").unwrap_err();
    assert!(e.contains(&rsa.display().to_string()), "{e}");
    assert_eq!(f.text(), before);
    assert_eq!(files(f.dir.path()), files_before);

    // No key file at all: suggest `keys generate`.
    fs::remove_file(&rsa).unwrap();
    let e = run_for("example.com").unwrap_err();
    assert!(
        e.contains("has no key yet") && e.contains("dkimctl keys"),
        "{e}"
    );
}

/// Every file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn selector_patterns_name_new_keys_per_host() {
    let f = Fixture::new(&SINGLE.replace(
        "grace = \"7d\"",
        "grace = \"7d\"\nselector = \"{host}-{date}\"",
    ));
    let (r, out) = f.run(false, "2026-11-28", &Fixed::new());
    assert_eq!(r.unwrap(), 0, "{out}");
    let name = format!("{}-20261128", host_label());
    assert_eq!(f.state(&name).0, KeyState::Pending, "{}", f.text());
    assert!(
        f.root()
            .join(Path::new(&format!(
                "/etc/dkimctl/keys/example.com/{name}.private"
            )))
            .exists()
    );
}

#[test]
fn auto_readiness_is_the_callers_and_retiring_still_happens_while_waiting() {
    let f = Fixture::new(&SINGLE.replace("grace = \"7d\"", "grace = \"1d\""));
    f.run(false, "2026-11-28", &Fixed::new()).0.unwrap();
    let advance = |today: &str, ready: Result<(), (i32, Vec<String>)>| {
        let step = decide_what(
            &f.source,
            &f.root(),
            "example.com",
            Date::parse(today).unwrap(),
            What::Advance(Readiness::Given(ready)),
        )
        .unwrap();
        crate::apply::rotation::carry_out(&f.root(), &f.source, &step).unwrap();
        step.code
    };
    // Not ready: nothing switches, and the code is the caller's.
    let before = f.text();
    assert_eq!(
        advance("2026-11-28", Err((1, vec!["not served".into()]))),
        1
    );
    assert_eq!(f.text(), before);
    // Ready: the switch, without looking anything up.
    assert_eq!(advance("2026-11-29", Ok(())), 0);
    assert_eq!(f.state("20261128").0, KeyState::Active);
    assert_eq!(f.state("first").0, KeyState::Retiring);
    // A later rotation waits, but the old key's retirement does not.
    f.run(false, "2026-11-30", &Fixed::new()).0.unwrap();
    assert_eq!(advance("2026-11-30", Err((0, vec![]))), 0);
    assert_eq!(f.state("first").0, KeyState::Retired);
    assert_eq!(f.state("20261130").0, KeyState::Pending);
}

#[test]
fn next_rotation_is_created_plus_every() {
    let text = "[service]\nengine = \"bundled\"\n\n[[domain]]\nname = \"example.com\"\n\
                [[domain.key]]\nselector = \"first\"\ncreated = \"2026-01-01\"\n\n\
                [rotation]\nevery = \"90d\"\n";
    let f = Fixture::new(text);
    let config = f.config();
    let due = next_rotation(&config, &f.root(), &config.domains[0]);
    assert_eq!(due, Date::parse("2026-04-01"));
    let mut no_every = config.clone();
    no_every.rotation.every = None;
    assert_eq!(
        next_rotation(&no_every, &f.root(), &no_every.domains[0]),
        None
    );
}
