//! Shared helpers: run the binary, temporary roots, golden comparison, and
//! the rule for missing tools (a test whose tool is missing fails under
//! CI=true and is skipped with a printed reason elsewhere).
//!
//! The harnesses live in one file per concern:
//!
//! | module | what |
//! | --- | --- |
//! | [`proc`] | processes with deadlines: `run_bounded`, `wait_until`, `stop_child`; free ports |
//! | [`configs`] | dkim.toml fixtures from `tests/fixtures/configs/`, roots with generated keys |
//! | [`knot`] | a private Knot DNS server; the records `dkimctl dns records` prints |
//! | [`engine`] | the bundled engine in this process |
//! | [`serve`] | `dkimctl serve` as a child process |
//! | [`client`] | the MTA side through dkimctl's own milter client |
//! | [`message`] | the test message and its parts (`Msg`) |
//! | [`miltertest`] | conversations driven by Debian's `miltertest` |
//! | [`verifiers`] | dkimpy, Mail::DKIM and OpenDKIM as verifiers |
//! | [`opendkim`] | the real OpenDKIM started from a rendered tree |
//! | [`postfix`] | a private Postfix instance |

#![allow(dead_code)]

pub mod client;
pub mod configs;
pub mod container;
pub mod engine;
pub mod knot;
pub mod message;
pub mod miltertest;
pub mod opendkim;
pub mod postfix;
pub mod proc;
pub mod serve;
pub mod verifiers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dkimctl"))
}

/// The repository's top directory.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True under CI, where missing tools are failures.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// True when running as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether `tool` is on PATH; under CI its absence fails the test.
pub fn require_tool(tool: &str) -> bool {
    let found = which(tool).is_some();
    if !found {
        assert!(
            !ci(),
            "{tool} is required under CI but was not found (the README's test command installs it)"
        );
        eprintln!("skipped: {tool} not found");
    }
    found
}

/// Whether we run as root; under CI its absence fails the test.
pub fn require_root(why: &str) -> bool {
    if !is_root() {
        assert!(!ci(), "root is required under CI: {why}");
        eprintln!("skipped: not root ({why})");
    }
    is_root()
}

/// Finds a program on PATH (also in the sbin directories).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// A command's result with everything needed to understand a failure.
pub struct Run {
    pub cmd: String,
    pub out: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    /// Asserts the exit code, printing the command and its output if not.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code(),
            code,
            "command: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.cmd,
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// Runs the binary with arguments.
pub fn dkimctl(args: &[&str]) -> Run {
    run(Command::new(bin()).args(args))
}

/// Runs any command, capturing its output.
pub fn run(cmd: &mut Command) -> Run {
    let text = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {text}: {e}"));
    Run { cmd: text, out }
}

/// A temporary root with a dkim.toml in etc/dkimctl.
pub struct TempRoot {
    pub dir: tempfile::TempDir,
}

impl TempRoot {
    pub fn new(config: &str) -> TempRoot {
        let r = TempRoot::empty();
        r.write("etc/dkimctl/dkim.toml", config);
        r
    }
    /// A root without any file (for `bootstrap` and `import`).
    pub fn empty() -> TempRoot {
        TempRoot {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn root_arg(&self) -> String {
        self.path().display().to_string()
    }
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path().join(rel.trim_start_matches('/'))
    }
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
    /// Runs dkimctl with `--root` set to this root.
    pub fn dkimctl(&self, args: &[&str]) -> Run {
        let root = self.root_arg();
        let mut all = vec!["--root", root.as_str()];
        all.extend_from_slice(args);
        dkimctl(&all)
    }
}

/// Every regular file under `dir`, as (relative path, bytes), sorted.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(base, &p, out);
        } else {
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            out.push((rel, std::fs::read(&p).unwrap()));
        }
    }
}

/// Compares a produced tree with an expected one; with BLESS=1 the
/// expected tree is replaced instead. Failures show a unified diff.
pub fn assert_tree(got: &Path, expected: &Path) {
    if std::env::var_os("BLESS").is_some() {
        let _ = std::fs::remove_dir_all(expected);
        for (rel, bytes) in tree(got) {
            let p = expected.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        return;
    }
    let got_tree = tree(got);
    let want_tree = tree(expected);
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&got_tree),
        names(&want_tree),
        "file lists differ (BLESS=1 to re-bless {})",
        expected.display()
    );
    for ((name, g), (_, w)) in got_tree.iter().zip(want_tree.iter()) {
        if g != w {
            let g = String::from_utf8_lossy(g);
            let w = String::from_utf8_lossy(w);
            let diff = similar::TextDiff::from_lines(w.as_ref(), g.as_ref())
                .unified_diff()
                .header("expected", "got")
                .to_string();
            panic!(
                "{name} differs from {} (BLESS=1 to re-bless):\n{diff}",
                expected.display()
            );
        }
    }
}
