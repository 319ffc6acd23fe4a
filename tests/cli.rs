//! The command line itself: help, version, usage errors.

use crate::support::*;

#[test]
fn version_and_help() {
    let v = dkimctl(&["--version"]).expect(0);
    assert!(v.stdout().starts_with("dkimctl "), "{}", v.stdout());
    let h = dkimctl(&["--help"]).expect(0);
    for cmd in ["check", "render", "plan", "apply"] {
        assert!(
            h.stdout().contains(cmd),
            "help lacks {cmd}:\n{}",
            h.stdout()
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    dkimctl(&["no-such-command"]).expect(2);
    dkimctl(&["plan", "--no-such-flag"]).expect(2);
}

#[test]
fn unreadable_config_exits_2_naming_the_file() {
    let r = dkimctl(&["--config", "/nonexistent/dkim.toml", "check"]).expect(2);
    assert!(
        r.stderr()
            .contains("failed to read configuration from /nonexistent/dkim.toml"),
        "{}",
        r.stderr()
    );
}
