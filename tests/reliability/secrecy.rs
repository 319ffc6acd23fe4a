//! Key secrecy: keys are never readable by others, not even for a moment,
//! their material shows in no output, and the engine refuses an unsafe
//! key.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{BODY, HEADERS, ed1_key, serve_refusing, signing};
use crate::support::client::{LOCAL, one_message, runtime, signatures};
use crate::support::configs::{Keyed, config};
use crate::support::serve::Serve;
use crate::support::{Run, TempRoot, bin, run, tree};

/// `keys generate` and `apply` under umask 000, watched by a thread that
/// stats every file and directory in the key directory as fast as it can:
/// no key file is ever seen with a group or other permission bit (they are
/// born 0600 and stay so), and no key directory is ever writable by group
/// or others.
#[test]
fn key_creation_under_umask_000_is_never_readable_by_others() {
    let toml = config("dual-two-domains").text();
    for command in ["keys generate", "apply --yes --no-reload"] {
        let root = TempRoot::new(&toml);
        let keys = root.join("etc/dkimctl/keys");
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (keys, done) = (keys.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut seen: BTreeMap<(PathBuf, bool), BTreeSet<u32>> = BTreeMap::new();
                let mut polls = 0u64;
                while !done.load(Ordering::SeqCst) && polls < 50_000_000 {
                    polls += 1;
                    let mut stack = vec![keys.clone()];
                    while let Some(dir) = stack.pop() {
                        let Ok(entries) = std::fs::read_dir(&dir) else {
                            continue;
                        };
                        if let Ok(m) = std::fs::symlink_metadata(&dir) {
                            seen.entry((dir.clone(), true))
                                .or_default()
                                .insert(m.mode() & 0o7777);
                        }
                        for e in entries.flatten() {
                            let p = e.path();
                            let Ok(m) = std::fs::symlink_metadata(&p) else {
                                continue;
                            };
                            if m.is_dir() {
                                stack.push(p);
                            } else {
                                seen.entry((p, false))
                                    .or_default()
                                    .insert(m.mode() & 0o7777);
                            }
                        }
                    }
                }
                (seen, polls)
            })
        };
        let script = format!(
            "umask 000; exec {} --root {} {command}",
            bin().display(),
            root.root_arg()
        );
        let r = run(Command::new("sh").args(["-c", &script]));
        done.store(true, Ordering::SeqCst);
        let (seen, polls) = watcher.join().unwrap();
        assert_eq!(r.code(), 0, "{command}: {}{}", r.stdout(), r.stderr());
        let files: Vec<_> = seen.iter().filter(|((_, dir), _)| !dir).collect();
        eprintln!(
            "key_creation_under_umask_000 ({command}): {polls} polls, {} files seen, modes {:?}",
            files.len(),
            seen.iter()
                .map(|((p, _), m)| (
                    p.strip_prefix(root.path()).unwrap().display().to_string(),
                    m
                ))
                .collect::<Vec<_>>()
        );
        assert!(
            files.iter().any(|((p, _), _)| p.ends_with("r1.private")),
            "the watcher saw no key"
        );
        for ((path, is_dir), modes) in &seen {
            for &m in modes {
                if *is_dir {
                    assert_eq!(
                        m & 0o022,
                        0,
                        "{command}: key directory {} was mode {m:04o}",
                        path.display()
                    );
                } else {
                    assert_eq!(
                        m & 0o077,
                        0,
                        "{command}: {} was mode {m:04o} at some moment",
                        path.display()
                    );
                }
            }
        }
        for key in [
            "example.com/r1",
            "example.com/e1",
            "example.org/r2",
            "example.org/e2",
        ] {
            let m = std::fs::metadata(keys.join(format!("{key}.private")))
                .unwrap()
                .mode()
                & 0o7777;
            assert_eq!(m, 0o600, "{command}: {key}");
        }
    }
}

/// 32-character windows of the private keys under `root` that do not also
/// occur in their public keys (an RSA private key embeds the modulus, and
/// the DNS record legitimately shows it).
fn secret_windows(root: &Path) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (rel, bytes) in tree(root) {
        if !rel.ends_with(".private") {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let public = dkimctl::keys::parse_private_key(&bytes, Path::new(&rel))
            .map(|k| k.public.record_base64())
            .unwrap_or_default();
        let chars: Vec<char> = body.chars().collect();
        for w in chars.windows(32) {
            let w: String = w.iter().collect();
            if !public.contains(&w) {
                out.insert(w);
            }
        }
    }
    out.into_iter().collect()
}

/// Every stdout and stderr of a representative run (bootstrap, plan, plan
/// --json, apply --json, dns records --json, check and plan with a broken
/// key, keys generate --force, serve's log while signing, sign, an unsafe
/// key refused) is free of private key material: no PEM header line and no
/// 32-character window of any key's base64 body that is not also public.
#[test]
fn no_key_material_in_outputs() {
    let root = TempRoot::empty();
    let mut outputs: Vec<(String, String)> = Vec::new();
    fn keep_in(outputs: &mut Vec<(String, String)>, name: &str, r: Run) {
        outputs.push((format!("{name} stdout"), r.stdout()));
        outputs.push((format!("{name} stderr"), r.stderr()));
    }
    macro_rules! keep {
        ($name:expr, $run:expr $(,)?) => {
            keep_in(&mut outputs, $name, $run)
        };
    }
    keep!(
        "bootstrap",
        root.dkimctl(&[
            "bootstrap",
            "--domain",
            "example.com",
            "--mta",
            "none",
            "--yes",
            "--no-reload",
        ]),
    );
    let mut windows = secret_windows(root.path());
    assert!(!windows.is_empty(), "bootstrap made no key");
    keep!("plan", root.dkimctl(&["plan", "--verbose"]));
    keep!(
        "plan --json",
        root.dkimctl(&["plan", "--json", "--verbose"]),
    );
    keep!(
        "dns records --json",
        root.dkimctl(&["dns", "records", "--json"]),
    );
    keep!("dns records", root.dkimctl(&["dns", "records"]));
    keep!(
        "keys generate --force",
        root.dkimctl(&["keys", "generate", "--force"]),
    );
    windows.extend(secret_windows(root.path()));
    keep!(
        "apply --json",
        root.dkimctl(&["apply", "--yes", "--no-reload", "--json"]),
    );
    // serve: sign a message, then stop; the log is an output too.
    {
        let d = Serve::start(&root);
        let rt = runtime();
        let (r, _) = rt.block_on(one_message(d.addr(), None, LOCAL, HEADERS, BODY));
        assert!(signatures(&r) >= 1, "{r:?}");
        let log = d.log_path().to_path_buf();
        d.stop();
        outputs.push(("serve log".into(), std::fs::read_to_string(log).unwrap()));
    }
    let msg = root.join("msg.eml");
    std::fs::write(&msg, "From: a@example.com\nSubject: x\n\nbody\n").unwrap();
    keep!("sign", root.dkimctl(&["sign", msg.to_str().unwrap()]));
    // A key made world-readable: refused, and the message names the file.
    let key = tree(root.path())
        .into_iter()
        .map(|(r, _)| r)
        .find(|r| r.ends_with(".private"))
        .expect("a key");
    let key = root.join(&key);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    keep!("plan (unsafe key)", root.dkimctl(&["plan", "--json"]));
    keep!("check (unsafe key)", root.dkimctl(&["check"]));
    keep!(
        "sign (unsafe key)",
        root.dkimctl(&["sign", msg.to_str().unwrap()]),
    );
    // A truncated key: the loaders' error messages.
    let pem = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, &pem[..pem.len() / 2]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    keep!("check (broken key)", root.dkimctl(&["check"]));
    keep!("plan (broken key)", root.dkimctl(&["plan"]));
    keep!(
        "dns records (broken key)",
        root.dkimctl(&["dns", "records", "--json"]),
    );
    keep!(
        "sign (broken key)",
        root.dkimctl(&["sign", msg.to_str().unwrap()]),
    );
    let total: usize = outputs.iter().map(|(_, o)| o.len()).sum();
    for (name, text) in &outputs {
        let flat: String = text
            .replace("\\n", "")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        assert!(
            !text.contains("PRIVATE KEY-----"),
            "{name} shows a PEM header:\n{text}"
        );
        for w in &windows {
            assert!(
                !flat.contains(w.as_str()),
                "{name} contains private key material ({w}):\n{text}"
            );
        }
    }
    eprintln!(
        "no_key_material_in_outputs: {} outputs, {total} bytes, {} secret windows checked: none found",
        outputs.len(),
        windows.len()
    );
}

/// A key readable by others: `dkimctl serve` refuses to start, naming the
/// file; `[engine] require_safe_keys = false` is the documented override.
#[test]
fn engine_refuses_a_key_readable_by_others() {
    let root = Keyed::new(&signing("sign")).root;
    std::fs::set_permissions(ed1_key(&root), std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = serve_refusing(&root, true);
    let err = r.stderr();
    assert!(!r.out.status.success(), "{err}");
    assert!(err.contains(&ed1_key(&root).display().to_string()), "{err}");
    assert!(err.contains("readable by others"), "{err}");

    signing("sign")
        .set("engine.require_safe_keys", false)
        .write_to(&root);
    let d = Serve::start(&root);
    assert!(d.stop().success());
}
