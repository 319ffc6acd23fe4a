//! `dkimctl check` reports every problem of a file in one run, each at
//! file:line:col, with the offending text and a hint.

use crate::support::*;

/// Each tests/check/<case>.toml against <case>.stderr (BLESS=1 re-blesses).
#[test]
fn check_cases_match_expected_output() {
    let dir = repo().join("tests/check");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for case in cases {
        let rel = case.strip_prefix(repo()).unwrap().display().to_string();
        let r = run(std::process::Command::new(bin()).current_dir(repo()).args([
            "--config",
            &rel,
            "--root",
            "/nonexistent-root",
            "check",
        ]));
        let expected_path = case.with_extension("stderr");
        let got = format!("exit {}\n{}", r.code(), r.stderr());
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        assert_eq!(got, want, "{rel}: output differs (BLESS=1 to re-bless)");
    }
}

#[test]
fn several_mistakes_are_all_reported_with_line_and_column() {
    let r = dkimctl(&[
        "--config",
        &repo()
            .join("tests/check/mistakes.toml")
            .display()
            .to_string(),
        "check",
    ])
    .expect(1);
    let err = r.stderr();
    // One line per mistake, each with its own place in the file.
    for want in [
        "mistakes.toml:2:10: error: unknown engine \"opendkm\"",
        "mistakes.toml:3:10: error: invalid socket \"inet:99999@localhost\": invalid port",
        "mistakes.toml:4:9: error: umask 777 denies the service access to its own socket",
        "mistakes.toml:7:29: error: unknown algorithm \"rsa-sha1\"",
        "mistakes.toml:8:20: error: invalid canonicalization",
        "mistakes.toml:9:20: error: oversign_headers must include From",
        "mistakes.toml:12:32: error: invalid host \"192.0.2.1/24\"",
        "mistakes.toml:12:48: error: invalid host \"not a host\"",
        "mistakes.toml:15:8: error: invalid domain \"exa mple.com\"",
        "mistakes.toml:16:1: error: unknown key `selectr` in [[domain]]",
        "mistakes.toml:20:12: error: invalid selector \"bad_selector\"",
        "mistakes.toml:24:1: error: unknown key `socket` in [mta]",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
}

#[test]
fn valid_examples_pass() {
    for ex in [
        "single-domain",
        "multi-domain",
        "hardened",
        "bundled-dual",
        "hands-off",
    ] {
        let path = repo().join(format!("examples/{ex}.toml"));
        dkimctl(&[
            "--root",
            "/nonexistent-root",
            "--config",
            &path.display().to_string(),
            "check",
        ])
        .expect(0);
    }
}
