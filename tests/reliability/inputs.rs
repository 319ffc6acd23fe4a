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

/// A dkim.toml for `engine` and `mta` with `extra` lines under [service]
/// and `tail` appended (TOML basic strings: `\n` is a line break).
fn injected(engine: &str, mta: &str, service: &str, tail: &str) -> String {
    format!(
        "[service]\nengine = \"{engine}\"\nauthserv_id = \"mx.example.net\"\n{service}\n\
         [defaults]\nalgorithms = [\"rsa-sha256\"]\n\
         [[domain]]\nname = \"example.com\"\nselector = \"s1\"\n{tail}\n\
         [mta]\nkind = \"{mta}\"\n"
    )
}

/// Values built to smuggle lines or list entries into each rendered
/// format — the unit (`ExecStartPre=` after a newline in `binary`),
/// tmpfiles.d and `RuntimeDirectory=` (a space), opendkim.conf (a newline
/// in a daemon name, `#` in the socket), the KeyTable (a space in a key
/// path), main.cf (a comma adding a remote milter), sendmail.mc (a quote
/// closing the m4 string), a comma in a signed header name, the rotation
/// unit (a newline in the TSIG key's path) — are each
/// refused by `check` at their `file:line:col`, and `render` writes
/// nothing for them.
#[test]
fn values_that_would_smuggle_lines_into_rendered_files_are_refused() {
    let cases: &[(&str, String, &str)] = &[
        (
            "binary",
            injected(
                "bundled",
                "none",
                "binary = \"/usr/bin/dkimctl\\nExecStartPre=/bin/sh -c id\"",
                "",
            ),
            "a line break, which a systemd unit",
        ),
        (
            "socket",
            injected(
                "bundled",
                "none",
                "socket = \"unix:/run/dkimctl dir/dkimctl.sock\"",
                "",
            ),
            "a space, which a systemd unit",
        ),
        (
            "socket",
            injected(
                "bundled",
                "postfix",
                "socket = \"unix:/var/spool/postfix/dkimctl/d.sock,inet:203.0.113.9:25\"",
                "",
            ),
            "`,`, which main.cf or master.cf",
        ),
        (
            "socket",
            injected(
                "bundled",
                "sendmail",
                "socket = \"unix:/run/dkimctl/d')dnl\"",
                "",
            ),
            "`'`, which sendmail.mc",
        ),
        (
            "socket",
            injected(
                "opendkim",
                "none",
                "socket = \"unix:/run/opendkim/o#.sock\"",
                "",
            ),
            "`#`, which opendkim.conf",
        ),
        (
            "path",
            injected(
                "opendkim",
                "none",
                "",
                "[[domain]]\nname = \"example.org\"\n[[domain.key]]\nselector = \"s1\"\npath = \"/etc/opendkim/keys/a b.private\"",
            ),
            "a space, which OpenDKIM's KeyTable",
        ),
        (
            "key_dir",
            injected("bundled", "none", "key_dir = \"/etc/dkimctl/keys\\n\"", ""),
            "a line break, which a systemd unit",
        ),
        (
            "ORIGINATING",
            injected(
                "opendkim",
                "none",
                "",
                "[engine]\nsign_daemon_names = [\"ORIGINATING\\nKeyFile /etc/shadow\"]",
            ),
            "a line break, which opendkim.conf",
        ),
        (
            "sign_headers",
            injected("opendkim", "none", "", "[defaults.x]\n")
                .replace(
                    "[defaults]\n",
                    "[defaults]\nsign_headers = [\"From\", \"Subject,X-Evil\"]\n",
                )
                .replace("[defaults.x]\n", ""),
            "`,`, which opendkim.conf",
        ),
        (
            "tsig_key_file",
            injected(
                "opendkim",
                "none",
                "",
                "[rotation]\nevery = \"90d\"\n[dns]\nupdate = \"rfc2136\"\nzone = \"example.com\"\n\
                 tsig_key_file = \"/etc/dkimctl/tsig.key\\nExecStartPre=/bin/sh\"",
            ),
            "a line break, which a systemd unit",
        ),
    ];
    for (key, toml, want) in cases {
        let root = TempRoot::new(toml);
        let r = root.dkimctl(&["check"]);
        let err = r.stderr();
        let line = toml
            .lines()
            .position(|l| l.contains(key) && l.contains('='))
            .or_else(|| toml.lines().position(|l| l.contains(key)))
            .map_or(0, |i| i + 1);
        assert_eq!(r.code(), 1, "{key}: check accepted:\n{toml}\n{err}");
        assert!(
            err.contains(&format!("dkim.toml:{line}:")) && err.contains(want),
            "{key}: no error at line {line} saying {want:?}:\n{toml}\n{err}"
        );
        let out = root.join("out");
        let r = root.dkimctl(&["render", "--out", out.to_str().unwrap()]);
        assert_ne!(r.code(), 0, "{key}: render went ahead");
        assert!(!out.exists(), "{key}: render wrote files");
    }
}

/// A `%` in a path is a systemd specifier: rendered as `%%`, systemd
/// reads the path itself (`systemd-analyze verify` names the command
/// `/opt/100%h/dkimctl`, not the path with the home directory put in).
#[test]
fn a_percent_in_a_path_reaches_systemd_as_itself() {
    if !crate::support::require_tool("systemd-analyze") {
        return;
    }
    let root = TempRoot::new(&injected(
        "bundled",
        "none",
        "binary = \"/opt/100%h/dkimctl\"",
        "",
    ));
    let out = root.join("out");
    root.dkimctl(&["render", "--out", out.to_str().unwrap()])
        .expect(0);
    let unit = out.join("etc/systemd/system/dkimctl.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        text.contains("ExecStart=/opt/100%%h/dkimctl serve"),
        "{text}"
    );
    let r = crate::support::run(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&unit),
    );
    assert!(
        r.stderr().contains("/opt/100%h/dkimctl is not executable"),
        "{}",
        r.stderr()
    );
}

/// `n` distinct non-loopback addresses as a TOML list on one line.
fn many_hosts(n: u32) -> String {
    (0..n)
        .map(|i| format!("\"10.{}.{}.{}\"", i >> 16, (i >> 8) & 255, i & 255))
        .collect::<Vec<_>>()
        .join(", ")
}

/// 200,000 trusted hosts on one line, each drawing a note (and a second
/// copy of the line's first 1,000 drawing a warning): `check` reports them
/// all with bounded memory and in linear time (before, every diagnostic
/// copied the whole line, and the run reached 24 GB); `serve` starts with
/// 8,000 of them in a few MiB (840 MiB before).
#[test]
fn a_line_with_200000_hosts_costs_linear_memory() {
    if !require_tool("time") {
        return;
    }
    let hosts = many_hosts(200_000) + ", " + &many_hosts(1_000);
    let root = TempRoot::new(&format!(
        "[service]\nmode = \"sign\"\nauthserv_id = \"mx.example.net\"\n\
         socket = \"inet:127.0.0.1:8891\"\n[trusted]\ninternal_hosts = [{hosts}]\n\
         [[domain]]\nname = \"example.com\"\nselector = \"s1\"\n[mta]\nkind = \"none\"\n"
    ));
    let m = measured(&root, &["check"], Duration::from_secs(120));
    let stderr = m.run.stderr();
    eprintln!(
        "200,000 hosts on one line: check exit {} in {:.1}s, peak RSS {} KiB, {} bytes of diagnostics",
        m.run.code(),
        m.took.as_secs_f64(),
        m.max_rss,
        stderr.len()
    );
    assert!(
        stderr.contains("10.0.3.231 is listed twice"),
        "{}",
        &stderr[stderr.len().saturating_sub(2000)..]
    );
    assert!(
        m.max_rss < 512 * 1024,
        "check of one long line took {} KiB",
        m.max_rss
    );

    let root = TempRoot::new(&format!(
        "[service]\nmode = \"verify\"\nauthserv_id = \"mx.example.net\"\n\
         [trusted]\ninternal_hosts = [{}]\n[engine]\nnameservers = [\"127.0.0.1:9\"]\n\
         [mta]\nkind = \"none\"\n",
        many_hosts(8_000)
    ));
    let d = crate::support::serve::Serve::start_unix(&root);
    let peak: u64 = crate::support::proc::proc_status(d.pid(), "VmHWM:")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    eprintln!("8,000 hosts on one line: serve started with a peak RSS of {peak} KiB");
    assert!(peak > 0 && peak < 64 * 1024, "serve peaked at {peak} KiB");
    assert!(d.stop().success());
}

/// A key `path` naming a file outside `key_dir` (here the host's TLS key)
/// is refused at its line, and apply leaves the file alone, unless the key
/// says `outside_key_dir = true`; a key directory in /dev/shm is refused
/// like one in /tmp.
#[test]
fn keys_live_below_key_dir_unless_the_key_says_otherwise() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tls = "[[domain]]\nname = \"example.org\"\n[[domain.key]]\nselector = \"s1\"\n\
               path = \"/etc/ssl/private/mail.key\"";
    let root = TempRoot::new(&injected("bundled", "none", "", tls));
    root.write("etc/ssl/private/mail.key", "the TLS key\n");
    let key = root.join("etc/ssl/private/mail.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = std::fs::metadata(&key).unwrap();
    let r = root.dkimctl(&["check"]).expect(1);
    assert!(
        r.stderr().contains("dkim.toml:14:8: error: key path /etc/ssl/private/mail.key is outside key_dir /etc/dkimctl/keys"),
        "{}",
        r.stderr()
    );
    root.dkimctl(&["apply", "--yes", "--no-reload"]).expect(2);
    let after = std::fs::metadata(&key).unwrap();
    assert_eq!(
        (after.uid(), after.gid(), after.mode()),
        (before.uid(), before.gid(), before.mode())
    );
    assert_eq!(root.read("etc/ssl/private/mail.key"), "the TLS key\n");

    let root = TempRoot::new(&injected(
        "bundled",
        "none",
        "",
        &format!("{tls}\noutside_key_dir = true"),
    ));
    root.dkimctl(&["check"]).expect(0);

    for (service, tail) in [
        ("key_dir = \"/dev/shm/keys\"", ""),
        (
            "",
            "[[domain]]\nname = \"example.org\"\n[[domain.key]]\nselector = \"s1\"\n\
             path = \"/dev/shm/s1.private\"\noutside_key_dir = true",
        ),
    ] {
        let root = TempRoot::new(&injected("bundled", "none", service, tail));
        let r = root.dkimctl(&["check"]).expect(1);
        assert!(
            r.stderr()
                .contains("keys must not live in a world-writable directory"),
            "{}",
            r.stderr()
        );
    }
}

/// A 50 MB domain name: `check` answers with a few lines, the value cut
/// in the message and the excerpt (it was echoed three times whole); a
/// domain whose Cyrillic letters imitate Latin ones (`pаypal.com`, `рау`)
/// gets a warning at its line.
#[test]
fn huge_values_are_cut_and_look_alike_domains_are_named() {
    if !require_tool("time") {
        return;
    }
    let huge = "a".repeat(50 << 20);
    let root = TempRoot::new(&injected(
        "bundled",
        "none",
        "",
        &format!("[[domain]]\nname = \"{huge}.com\"\nselector = \"s1\""),
    ));
    drop(huge);
    let m = measured(&root, &["check"], Duration::from_secs(120));
    let err = m.run.stderr();
    eprintln!(
        "50 MB domain: check exit {} in {:.1}s, peak RSS {} KiB, {} bytes on stderr",
        m.run.code(),
        m.took.as_secs_f64(),
        m.max_rss,
        err.len()
    );
    assert_eq!(m.run.code(), 1, "{}", &err[..err.len().min(2000)]);
    assert!(
        err.contains("dkim.toml:11:8: error: invalid domain \"aaaa")
            && err.contains("(52428807 characters)"),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(err.len() < 4096, "{} bytes of error output", err.len());

    let root = TempRoot::new(&injected(
        "bundled",
        "none",
        "",
        "[[domain]]\nname = \"pаypal.com\"\nselector = \"s1\"\n[[domain]]\nname = \"рау.example\"\nselector = \"s1\"",
    ));
    let r = root.dkimctl(&["check"]).expect(0);
    let err = r.stderr();
    let text = root.read("etc/dkimctl/dkim.toml");
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let (paypal, pay) = (line_of("pаypal"), line_of("рау"));
    assert!(
        err.contains(&format!(
            "dkim.toml:{paypal}:8: warning: domain xn--pypal-4ve.com is a look-alike"
        )) && err.contains("mixes Latin and Cyrillic letters"),
        "{err}"
    );
    assert!(
        err.contains(&format!("dkim.toml:{pay}:8: warning: domain"))
            && err.contains("is drawn like the Latin \"pay\""),
        "{err}"
    );
}

/// A dkim.toml with `n` domains, each with its own Ed25519 key, or (with
/// `shared`) all signing with the first one's.
fn many_domains(n: usize, shared: bool) -> String {
    let mut t = String::from(
        "[service]\nengine = \"bundled\"\nauthserv_id = \"mx.example.net\"\n\
         [defaults]\nalgorithms = [\"ed25519-sha256\"]\n[mta]\nkind = \"none\"\n",
    );
    for i in 0..n {
        if shared && i > 0 {
            t.push_str(&format!(
                "[[domain]]\nname = \"d{i}.example.com\"\nkey_from = \"d0.example.com\"\n"
            ));
        } else {
            t.push_str(&format!(
                "[[domain]]\nname = \"d{i}.example.com\"\nselector = \"s1\"\n"
            ));
        }
    }
    t
}

/// 10,000 domains: `check` and `plan` (10,000 keys to create), then
/// `apply` and `plan` with one shared key, each finish within a bound that
/// only a quadratic path breaks (in a debug build they took 143 s and
/// 219 s before; a release build is far faster, see the README). Key
/// creation itself is left out of the bound: it is a file, a directory
/// and their fsyncs per key, whose cost is the file system's.
#[test]
fn ten_thousand_domains_take_linear_time() {
    const N: usize = 10_000;
    const BOUND: Duration = Duration::from_secs(60);
    if !require_tool("time") {
        return;
    }
    let mut report = Vec::new();
    let root = TempRoot::new(&many_domains(N, false));
    for args in [&["check"][..], &["plan"][..]] {
        let m = measured(&root, args, Duration::from_secs(600));
        report.push(format!("{} {:.1}s", args[0], m.took.as_secs_f64()));
        assert!(matches!(m.run.code(), 0 | 1), "{}", m.run.stderr());
        assert!(m.took < BOUND, "`{}` took {:?}", args[0], m.took);
    }
    let root = TempRoot::new(&many_domains(N, true));
    for args in [&["apply", "--yes", "--no-reload"][..], &["plan"][..]] {
        let m = measured(&root, args, Duration::from_secs(600));
        report.push(format!(
            "{} (one key) {:.1}s",
            args[0],
            m.took.as_secs_f64()
        ));
        assert_eq!(m.run.code(), 0, "{}", m.run.stderr());
        assert!(m.took < BOUND, "`{}` took {:?}", args[0], m.took);
    }
    eprintln!("10,000 domains: {}", report.join(", "));
}

/// `import` of an 87,000-line KeyTable (with its SigningTable), and
/// `audit` of an opendkim.conf with 20,000 unknown options, each within a
/// bound only a quadratic path breaks (the import did not finish in 60 s;
/// the audit took 26 s, a did-you-mean search per option).
#[test]
fn big_opendkim_setups_are_read_in_linear_time() {
    // About 20 s for the import in a debug build; quadratic was hours.
    const BOUND: Duration = Duration::from_secs(180);
    if !require_tool("time") {
        return;
    }
    let root = TempRoot::empty();
    let (mut keys, mut signing) = (String::new(), String::new());
    for i in 0..87_000 {
        // Short lines, so that the table stays below the 8 MiB a
        // configuration file may have.
        keys.push_str(&format!(
            "k{i} d{i}.example:s1:/etc/opendkim/keys/{i}.private\n"
        ));
        signing.push_str(&format!("*@d{i}.example k{i}\n"));
    }
    root.write("etc/opendkim/KeyTable", &keys);
    root.write("etc/opendkim/SigningTable", &signing);
    root.write(
        "etc/opendkim/opendkim.conf",
        "Syslog yes\nMode sv\nSocket local:/run/opendkim/opendkim.sock\n\
         KeyTable /etc/opendkim/KeyTable\nSigningTable refile:/etc/opendkim/SigningTable\n",
    );
    let import = measured(&root, &["import"], Duration::from_secs(600));
    assert!(
        matches!(import.run.code(), 0..=2),
        "{}",
        import.run.stderr()
    );
    assert!(
        import.run.stdout().contains("name = \"d86999.example\""),
        "the last KeyTable line was not imported"
    );

    let root = TempRoot::empty();
    let unknown: String = (0..20_000)
        .map(|i| format!("UnknownOption{i} yes\n"))
        .collect();
    root.write(
        "etc/opendkim/opendkim.conf",
        &format!("Syslog yes\n{unknown}"),
    );
    let audit = measured(&root, &["audit", "--json"], Duration::from_secs(600));
    assert!(matches!(audit.run.code(), 0..=2), "{}", audit.run.stderr());
    assert!(audit.run.stdout().contains("UnknownOption19999"));
    eprintln!(
        "import of an 87,000-line KeyTable: {:.1}s, {} KiB; audit of 20,000 unknown options: {:.1}s, {} KiB",
        import.took.as_secs_f64(),
        import.max_rss,
        audit.took.as_secs_f64(),
        audit.max_rss
    );
    assert!(import.took < BOUND && audit.took < BOUND);
}
