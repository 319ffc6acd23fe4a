//! Real tools judge rendered files: OpenDKIM's own parser (`opendkim -n`)
//! and systemd's (`systemd-analyze verify` and `security`).

use std::path::Path;
use std::process::Command;

use crate::support::opendkim::{opendkim_in_chroot, prepare_chroot};
use crate::support::*;

/// Renders a configuration text into a fresh tree; returns the tree dir.
fn render(config: &str) -> tempfile::TempDir {
    let root = TempRoot::new(config);
    let out = tempfile::tempdir().unwrap();
    root.dkimctl(&["render", "--out", &out.path().display().to_string()])
        .expect(0);
    out
}

fn example(name: &str) -> String {
    std::fs::read_to_string(repo().join(format!("examples/{name}.toml"))).unwrap()
}

/// Runs `opendkim -n -x /etc/opendkim/opendkim.conf` with the rendered
/// tree standing in for / (see [`crate::support::opendkim`]), with the
/// host's accounts.
fn opendkim_check(tree: &Path) -> Run {
    prepare_chroot(
        tree,
        &[
            "etc/ld.so.cache",
            "etc/passwd",
            "etc/group",
            "etc/nsswitch.conf",
        ],
    );
    run(&mut opendkim_in_chroot(
        tree,
        None,
        "-n -x /etc/opendkim/opendkim.conf",
    ))
}

#[test]
fn opendkim_accepts_every_rendered_configuration() {
    if !require_tool("opendkim") || !require_root("chroot and mount namespaces for opendkim -n") {
        return;
    }
    for ex in ["single-domain", "multi-domain", "hardened"] {
        let tree = render(&example(ex));
        let r = opendkim_check(tree.path());
        assert_eq!(
            r.code(),
            0,
            "{ex}: opendkim -n refused the rendered file:\n{}{}",
            r.stdout(),
            r.stderr()
        );
    }
    // Dual RSA + Ed25519 signing is refused for OpenDKIM by `check`,
    // although `opendkim -n` accepts the file: OpenDKIM then answers 451
    // to every message (issue 17, point 1).
    let dual = example("bundled-dual").replace("engine = \"bundled\"", "engine = \"opendkim\"");
    let root = TempRoot::new(&dual);
    let r = root.dkimctl(&["check"]).expect(1);
    assert!(
        r.stderr()
            .contains("OpenDKIM signs every key with one algorithm"),
        "{}",
        r.stderr()
    );
}

#[test]
fn opendkim_rejects_a_broken_configuration_with_exit_78() {
    if !require_tool("opendkim") || !require_root("chroot and mount namespaces for opendkim -n") {
        return;
    }
    let tree = render(&example("multi-domain"));
    let conf = tree.path().join("etc/opendkim/opendkim.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("NoSuchOption yes\n");
    std::fs::write(&conf, text).unwrap();
    let r = opendkim_check(tree.path());
    assert_eq!(r.code(), 78, "{}", r.stderr());
    // A table the configuration names but that does not exist: also 78.
    let tree = render(&example("multi-domain"));
    std::fs::remove_file(tree.path().join("etc/opendkim/KeyTable")).unwrap();
    assert_eq!(opendkim_check(tree.path()).code(), 78);
}

/// `systemd-analyze security --offline=true` exposure of a unit file.
fn exposure(unit: &Path) -> f64 {
    let r = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit));
    let out = r.stdout() + &r.stderr();
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure in:\n{out}"));
    let value = line
        .split(':')
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .unwrap();
    value.parse().unwrap()
}

fn verify_units(units: &[&Path]) {
    let r = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(units));
    let stderr = r.stderr();
    let complaints: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        r.code() == 0 && complaints.is_empty(),
        "systemd-analyze verify {units:?}:\n{}",
        r.stderr()
    );
}

fn with_binary(config: &str) -> String {
    config.replacen(
        "[service]",
        &format!("[service]\nbinary = \"{}\"", bin().display()),
        1,
    )
}

#[test]
fn units_verify_and_reach_their_exposure_targets() {
    if !require_tool("systemd-analyze") {
        return;
    }
    // Bundled engine, sign+verify: <= 1.0.
    let tree = render(&with_binary(&example("bundled-dual")));
    let unit = tree.path().join("etc/systemd/system/dkimctl.service");
    verify_units(&[&unit]);
    let score = exposure(&unit);
    assert!(score <= 1.0, "sign+verify unit exposure {score} > 1.0");

    // Bundled engine, sign only, socket-activated: <= 0.3.
    let config = with_binary(
        "[service]\nmode = \"sign\"\nsocket_activation = true\n[[domain]]\nname = \"example.com\"\nselector = \"s1\"\n",
    );
    let tree = render(&config);
    let dir = tree.path().join("etc/systemd/system");
    verify_units(&[&dir.join("dkimctl.socket"), &dir.join("dkimctl.service")]);
    let score = exposure(&dir.join("dkimctl.service"));
    assert!(
        score <= 0.3,
        "sign-only socket-activated unit exposure {score} > 0.3"
    );

    // OpenDKIM's hardened unit (the ArchWiki unit scores 9.2, Debian's 9.6).
    if require_tool("opendkim") {
        for ex in ["multi-domain", "hardened"] {
            let tree = render(&example(ex));
            let unit = tree.path().join("etc/systemd/system/opendkim.service");
            verify_units(&[&unit]);
            let score = exposure(&unit);
            assert!(score <= 1.0, "{ex}: opendkim unit exposure {score} > 1.0");
        }
    }
}
