//! `apply` interrupted: `kill -9` at random moments and a full disk; every
//! managed file is always the old or the new version.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::AUTHSERV_ID;
use crate::support::proc::private_mounts;
use crate::support::{TempRoot, bin, require_root, require_tool, run, tree};

/// The configuration the `apply` tests write: the OpenDKIM engine (so that
/// several files change together) with `internal` as trusted hosts and
/// `extra` more signing domains (each with a key to create).
fn apply_toml(internal: &str, extra: usize) -> String {
    let mut more = String::new();
    for i in 0..extra {
        more.push_str(&format!(
            "\n[[domain]]\nname = \"example-{i}.org\"\nselector = \"ed2\"\n"
        ));
    }
    format!(
        r#"[service]
engine = "opendkim"
authserv_id = "{AUTHSERV_ID}"
[defaults]
algorithms = ["ed25519-sha256"]
[trusted]
internal_hosts = [{internal}]
[[domain]]
name = "example.com"
selector = "ed1"
{more}
[mta]
kind = "none"
"#
    )
}

/// A long trusted-hosts list (TrustedHosts of several pages).
fn many_hosts(n: u32) -> String {
    (0..n)
        .map(|i| format!("\"10.{}.{}.1\"", i / 256, i % 256))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `dkimctl render` of `toml`: host path -> content.
fn rendered(toml: &str) -> BTreeMap<String, Vec<u8>> {
    let root = TempRoot::new(toml);
    let out = root.join("out");
    root.dkimctl(&["render", "--out", out.to_str().unwrap()])
        .expect(0);
    tree(&out).into_iter().collect()
}

/// True for a file whose whole content is a loadable private key.
fn complete_key(bytes: &[u8]) -> bool {
    dkimctl::keys::parse_private_key(bytes, Path::new("k")).is_ok()
}

/// Temporary files apply and the key writer create next to their targets.
fn is_temp(rel: &str) -> bool {
    rel.rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with('.') && n.contains(".dkimctl-"))
}

/// Every file of `old` ∪ `new` under `root` is absent (only if it was not
/// in `old`), or byte for byte the old or the new version; keys are whole.
fn check_old_or_new(
    root: &Path,
    old: &BTreeMap<String, Vec<u8>>,
    new: &BTreeMap<String, Vec<u8>>,
) -> Result<(), String> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let got = std::fs::read(root.join(name)).ok();
        let ok = match &got {
            None => !old.contains_key(name),
            Some(g) if name.ends_with(".private") => complete_key(g),
            Some(g) => Some(g) == old.get(name) || Some(g) == new.get(name),
        };
        if !ok {
            return Err(format!(
                "{name} is neither the old nor the new version: {:?}",
                got.map(|g| String::from_utf8_lossy(&g).into_owned())
            ));
        }
    }
    for (rel, bytes) in tree(root) {
        if rel.ends_with(".private") && !complete_key(&bytes) {
            return Err(format!("{rel} is a partial key"));
        }
    }
    Ok(())
}

/// `kill -9` of `dkimctl apply` at random moments (xorshift, 0-30 ms), 200
/// times, alternating between two configurations whose rendered files
/// differ, half of them also creating a key: after every kill each
/// managed file is the old or the new version (keys whole or absent),
/// never partial; then a final apply completes and plan is clean.
/// Temporary files a kill leaves behind are counted and must not disturb
/// the next apply or plan.
#[test]
fn apply_kill9_loop_never_leaves_a_partial_file() {
    const ITERATIONS: u32 = 200;
    let a = apply_toml("\"127.0.0.1\", \"::1\"", 0);
    let b = apply_toml(
        "\"127.0.0.1\", \"::1\", \"192.0.2.0/24\", \"mail.example.com\"",
        1,
    );
    let (ra, rb) = (rendered(&a), rendered(&b));
    assert_ne!(ra, rb);
    let root = TempRoot::new(&a);
    root.dkimctl(&["apply", "--yes", "--no-reload"]).expect(0);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut killed_mid_run = 0;
    let mut leftovers_seen = 0;
    for i in 0..ITERATIONS {
        let (toml, old, new) = if i % 2 == 0 {
            (&b, &ra, &rb)
        } else {
            (&a, &rb, &ra)
        };
        if i % 2 == 0 {
            // A fresh key to create on this run.
            let _ = std::fs::remove_file(root.join("etc/opendkim/keys/example-0.org/ed2.private"));
        }
        root.write("etc/dkimctl/dkim.toml", toml);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_micros(rng % 30_000);
        let mut child = Command::new(bin())
            .args(["--root", &root.root_arg(), "apply", "--yes", "--no-reload"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn apply");
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().expect("wait");
        if status.code().is_none() {
            killed_mid_run += 1;
        }
        // The config file itself is ours, not apply's: leave it out.
        let mut old = old.clone();
        let mut new = new.clone();
        old.remove("etc/dkimctl/dkim.toml");
        new.remove("etc/dkimctl/dkim.toml");
        if let Err(e) = check_old_or_new(root.path(), &old, &new) {
            panic!("iteration {i}, killed after {delay:?}: {e}");
        }
        leftovers_seen += tree(root.path()).iter().filter(|(r, _)| is_temp(r)).count();
    }
    let final_apply = root.dkimctl(&["apply", "--yes", "--no-reload"]);
    let plan = root.dkimctl(&["plan"]);
    let leftovers: Vec<String> = tree(root.path())
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| is_temp(r))
        .collect();
    eprintln!(
        "apply_kill9_loop: {ITERATIONS} iterations, {killed_mid_run} killed before apply finished, \
         0 partial files; temporary files left by kills (summed over iterations): {leftovers_seen}; \
         after the final apply: {leftovers:?}"
    );
    assert!(
        killed_mid_run > ITERATIONS / 4,
        "too few kills hit a running apply: {killed_mid_run}"
    );
    final_apply.expect(0);
    plan.expect(0);
}

/// A full disk (a small tmpfs as the root's /etc, in a private mount
/// namespace) during `apply`, at every amount of free space from none to
/// enough: each managed file is the old or the new version, never
/// truncated, keys are whole or absent, no temporary file is left, and a
/// failed apply exits 2 naming the file and the cause.
#[test]
fn apply_disk_full_leaves_old_or_new_files() {
    if !require_root("mounts a tmpfs in a private mount namespace") || !require_tool("unshare") {
        return;
    }
    let a = apply_toml("\"127.0.0.1\", \"::1\"", 0);
    let b = apply_toml(&many_hosts(600), 24);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::write(w.join("a.toml"), &a).unwrap();
    std::fs::write(w.join("b.toml"), &b).unwrap();
    // Free space left before apply, in 4 KiB pages (tmpfs counts pages).
    let pages: Vec<u32> = (0..=40).collect();
    let script = format!(
        r#"set -e
W={w}
R=$W/root
mkdir -p $R/etc
mount -t tmpfs -o size=512k,mode=0755 tmpfs $R/etc
mkdir -p $R/etc/dkimctl
cp $W/a.toml $R/etc/dkimctl/dkim.toml
{bin} --root $R apply --yes --no-reload > $W/a.out 2>&1
mkdir -p $W/old && cp -a $R/etc/. $W/old/
for p in {pages}; do
  rm -rf $R/etc/* && cp -a $W/old/. $R/etc/
  cp $W/b.toml $R/etc/dkimctl/dkim.toml
  avail=$(df --output=avail -B4096 $R/etc | tail -1)
  fill=$(( (avail - p) * 4096 ))
  [ $fill -gt 0 ] && head -c $fill /dev/zero > $R/etc/filler 2>/dev/null || true
  set +e
  {bin} --root $R apply --yes --no-reload > $W/out.$p 2> $W/err.$p
  echo $? > $W/rc.$p
  set -e
  rm -f $R/etc/filler
  mkdir -p $W/after.$p && cp -a $R/etc/. $W/after.$p/
done
"#,
        w = w.display(),
        bin = bin().display(),
        pages = pages
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let r = run(&mut private_mounts(&script));
    assert_eq!(r.code(), 0, "setup failed:\n{}{}", r.stdout(), r.stderr());
    let under_etc = |t: BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
        t.into_iter()
            .filter_map(|(k, v)| k.strip_prefix("etc/").map(|k| (k.to_string(), v)))
            .filter(|(k, _)| k != "dkimctl/dkim.toml")
            .collect()
    };
    let old: BTreeMap<String, Vec<u8>> = tree(&w.join("old"))
        .into_iter()
        .filter(|(k, _)| k != "dkimctl/dkim.toml")
        .collect();
    let new = under_etc(rendered(&b));
    let mut failed = 0;
    let mut succeeded = 0;
    let mut mid_way = 0;
    for p in &pages {
        let after = w.join(format!("after.{p}"));
        let rc: i32 = std::fs::read_to_string(w.join(format!("rc.{p}")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let err = std::fs::read_to_string(w.join(format!("err.{p}"))).unwrap();
        if let Err(e) = check_old_or_new(&after, &old, &new) {
            panic!("{p} free pages, apply exit {rc}: {e}\n{err}");
        }
        let temps: Vec<String> = tree(&after)
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| is_temp(r))
            .collect();
        assert!(
            temps.is_empty(),
            "{p} free pages: temporary files left: {temps:?}\n{err}"
        );
        match rc {
            0 => succeeded += 1,
            2 => {
                failed += 1;
                let changed = tree(&after).iter().any(|(k, v)| {
                    k.ends_with(".private") && !old.contains_key(k)
                        || (new.get(k) == Some(v) && old.get(k) != Some(v))
                });
                mid_way += usize::from(changed);
                assert!(
                    err.contains("No space left on device") && err.contains("/etc/"),
                    "{p} free pages: apply failed without naming the file and cause:\n{err}"
                );
            }
            other => panic!("{p} free pages: apply exit {other}:\n{err}"),
        }
    }
    eprintln!(
        "apply_disk_full: {} cases (0..=40 free pages), {failed} failed with ENOSPC ({mid_way} after changing some files), {succeeded} completed, \
         every file old or new",
        pages.len()
    );
    assert!(
        failed > 0 && succeeded > 0,
        "no case ran out of space, or none had enough"
    );
    assert!(
        mid_way > 0,
        "no case ran out of space in the middle of an apply"
    );
}
