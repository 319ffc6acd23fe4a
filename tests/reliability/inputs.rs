//! Hostile inputs to the configuration side: files that are valid enough
//! to be read but built to blow up time or memory, or to smuggle lines
//! into the files dkimctl renders. Every command runs as the real binary
//! with a time limit, under GNU time (`/usr/bin/time`), which reports its
//! peak RSS.
//!
//! See: issue 15, items 7, 9, 10, 13, 15 and 16.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::proc::run_bounded;
use crate::support::{Run, TempRoot, bin, require_tool, which};

/// What one measured run gave.
struct Measured {
    run: Run,
    took: Duration,
    /// Peak RSS in KiB.
    max_rss: u64,
}

/// `dkimctl --root ROOT ARGS` under GNU time, failing after `limit`.
fn measured(root: &TempRoot, args: &[&str], limit: Duration) -> Measured {
    let time = which("time").expect("GNU time");
    let mut cmd = Command::new(time);
    cmd.args(["-f", "dkimctl-max-rss-kib=%M"])
        .arg(bin())
        .args(["--root", &root.root_arg()])
        .args(args);
    let started = Instant::now();
    let run = run_bounded(&mut cmd, None, limit);
    let took = started.elapsed();
    let max_rss = run
        .stderr()
        .lines()
        .find_map(|l| l.strip_prefix("dkimctl-max-rss-kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Measured { run, took, max_rss }
}

/// `audit` and `import` of an opendkim.conf that includes itself and a
/// second file 16 times, the second file doing the same: each file is read
/// once (16^5 reads before, which hit a 6 GB memory cap), the loop is
/// reported, and both commands finish within seconds.
#[test]
fn an_include_bomb_is_read_once_per_file() {
    if !require_tool("time") {
        return;
    }
    let root = TempRoot::empty();
    let a = "Syslog yes\nMode sv\nSocket local:/run/opendkim/opendkim.sock\n".to_string()
        + &"Include /etc/opendkim/opendkim.conf\nInclude /etc/opendkim/b.conf\n".repeat(16);
    let b = "SyslogSuccess yes\n".to_string()
        + &"Include /etc/opendkim/b.conf\nInclude /etc/opendkim/opendkim.conf\n".repeat(16);
    root.write("etc/opendkim/opendkim.conf", &a);
    root.write("etc/opendkim/b.conf", &b);
    for args in [&["audit", "--json"][..], &["import"][..]] {
        let m = measured(&root, args, Duration::from_secs(60));
        eprintln!(
            "include bomb: `{}` exit {} in {:.2}s, peak RSS {} KiB",
            args.join(" "),
            m.run.code(),
            m.took.as_secs_f64(),
            m.max_rss
        );
        assert!(
            matches!(m.run.code(), 0..=2),
            "{} died: {}\n{}",
            m.run.cmd,
            m.run.code(),
            m.run.stderr()
        );
        assert!(
            m.max_rss < 256 * 1024,
            "peak RSS {} KiB: the includes were multiplied",
            m.max_rss
        );
        if args[0] == "audit" {
            assert!(
                m.run
                    .stdout()
                    .contains("includes a file that is including it"),
                "{}",
                m.run.stdout()
            );
        }
    }
}
