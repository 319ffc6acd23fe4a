//! The administrator's side: the README's `--help` block, man pages and
//! completions judged by groff and the shells, the JSON Schema judged by
//! taplo, the Ansible example run by ansible-playbook, and the Debian
//! package built by cargo-deb and taken apart by dpkg-deb and systemd.
//!
//! ansible-core and taplo come from PyPI, installed once into a virtual
//! environment under target/tmp (reused by later runs); cargo-deb is
//! installed by scripts/test.sh. A missing tool (or PyPI out of reach)
//! fails under CI and skips elsewhere, as everywhere in this suite.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use clap::CommandFactory;

use crate::support::*;

fn command() -> clap::Command {
    dkimctl::cli::Cli::command()
}

fn bless() -> bool {
    std::env::var_os("BLESS").is_some()
}

fn diff(want: &str, got: &str) -> String {
    similar::TextDiff::from_lines(want, got)
        .unified_diff()
        .header("expected", "got")
        .to_string()
}

// ---- README ----

const HELP_START: &str = "<!-- help:start -->\n";
const HELP_END: &str = "<!-- help:end -->";

/// The README quotes `dkimctl --help` verbatim between the markers;
/// BLESS=1 rewrites the quoted block.
#[test]
fn readme_quotes_the_current_help() {
    let help = run(Command::new(bin()).arg("--help").env_remove("COLUMNS"))
        .expect(0)
        .stdout();
    // Trailing blanks (clap pads some blank lines) are dropped: editors
    // strip them from README.md.
    let help: String = help
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    let block = format!("```text\n$ dkimctl --help\n{help}```\n");
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(start), Some(end)) = (readme.find(HELP_START), readme.find(HELP_END)) else {
        panic!(
            "README.md has no {HELP_START:?} ... {HELP_END:?} block; paste this:\n\
             {HELP_START}{block}{HELP_END}"
        );
    };
    let start = start + HELP_START.len();
    let quoted = &readme[start..end];
    if bless() {
        let text = format!("{}{block}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, text).unwrap();
        return;
    }
    assert!(
        quoted == block,
        "README.md's help block is stale (BLESS=1 to rewrite it):\n{}",
        diff(quoted, &block)
    );
}

// ---- man pages and completions ----

#[test]
fn man_pages_are_valid_roff() {
    if !require_tool("groff") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pages = dkimctl::cli::docs::write_man_pages(&command(), dir.path()).unwrap();
    assert!(pages.len() > 5, "{pages:?}");
    for page in pages {
        // -ww: every warning; -z: parse and format, print nothing.
        let r = run(Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page));
        assert!(
            r.code() == 0 && r.stderr().trim().is_empty(),
            "groff complains about {}:\n{}",
            page.display(),
            r.stderr()
        );
        // The rendered page names itself in its header.
        let r = run(Command::new("groff")
            .args(["-man", "-Tutf8"])
            .arg(&page)
            .env("LC_ALL", "C.UTF-8"));
        let name = page.file_stem().unwrap().to_string_lossy().to_string();
        let title = name.to_uppercase();
        let out = r.stdout();
        assert!(
            out.contains(&format!("{name}(")) || out.contains(&format!("{title}(")),
            "{}: header missing:\n{out}",
            page.display()
        );
    }
}

/// Every visible subcommand path: ["plan"], ["keys", "generate"], ...
fn subcommands(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    for s in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if s.get_name() == "help" {
            continue;
        }
        let mut p = prefix.to_vec();
        p.push(s.get_name().to_string());
        out.push(p.clone());
        subcommands(s, &p, out);
    }
}

fn completion(shell: &str) -> String {
    let mut out = Vec::new();
    dkimctl::cli::docs::write_completions(shell, &mut command(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Asks the bash completion what follows `words` (the last is the word
/// being completed).
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let words_q: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let line = words.join(" ");
    let program = format!(
        "source '{}'\n\
         COMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{line}'\nCOMP_POINT={}\n\
         _dkimctl dkimctl '{}' '{}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        words_q.join(" "),
        words.len() - 1,
        line.len(),
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let r = run(Command::new("bash").args(["--norc", "-c", &program])).expect(0);
    r.stdout().lines().map(String::from).collect()
}

#[test]
fn completion_scripts_parse_and_complete_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let mut subs = Vec::new();
    subcommands(&command(), &[], &mut subs);
    assert!(subs.len() > 5, "{subs:?}");
    for shell in ["bash", "zsh", "fish"] {
        let text = completion(shell);
        for sub in &subs {
            let last = sub.last().unwrap();
            assert!(text.contains(last.as_str()), "{shell}: {last} missing");
        }
        let script = dir.path().join(shell);
        std::fs::write(&script, &text).unwrap();
        // zsh and fish are optional: the package ships their scripts, but
        // the suite does not install the shells.
        let check: &[&str] = match shell {
            "bash" if require_tool("bash") => &["-n"],
            "zsh" if which("zsh").is_some() => &["-n"],
            "fish" if which("fish").is_some() => &["--no-execute"],
            _ => {
                eprintln!("skipped: {shell} not found, its script is not parsed");
                continue;
            }
        };
        run(Command::new(shell).args(check).arg(&script)).expect(0);
    }
    if which("bash").is_none() {
        return;
    }
    // Completion really works: top-level subcommands, nested ones, flags.
    let script = dir.path().join("bash");
    let top = bash_complete(&script, &["dkimctl", ""]);
    for sub in subs.iter().filter(|s| s.len() == 1) {
        assert!(
            top.contains(&sub[0]),
            "`dkimctl <TAB>` lacks {}: {top:?}",
            sub[0]
        );
    }
    assert_eq!(bash_complete(&script, &["dkimctl", "pla"]), ["plan"]);
    for sub in subs.iter().filter(|s| s.len() == 2) {
        let got = bash_complete(&script, &["dkimctl", &sub[0], ""]);
        assert!(
            got.contains(&sub[1]),
            "`dkimctl {} <TAB>` lacks {}: {got:?}",
            sub[0],
            sub[1]
        );
    }
    let got = bash_complete(&script, &["dkimctl", "plan", "--j"]);
    assert_eq!(got, ["--json"]);
}

/// `dkimctl schema`, `dkimctl completions SHELL` and `dkimctl man DIR`
/// print exactly the committed files the package ships.
#[test]
fn subcommands_print_the_committed_files() {
    let schema = dkimctl(&["schema"]).expect(0).stdout();
    let committed = std::fs::read_to_string(repo().join("dkim.schema.json")).unwrap();
    assert!(schema == committed, "{}", diff(&committed, &schema));
    let value: serde_json::Value = serde_json::from_str(&schema).unwrap();
    assert_eq!(value, dkimctl::config::schema::json_schema());

    for shell in ["bash", "zsh", "fish"] {
        let got = dkimctl(&["completions", shell]).expect(0).stdout();
        let name = dkimctl::cli::docs::completion_file_name(shell).unwrap();
        let want = std::fs::read_to_string(repo().join("completions").join(name)).unwrap();
        assert!(got == want, "completions {shell}:\n{}", diff(&want, &got));
    }
    let r = dkimctl(&["completions", "tcsh"]);
    assert_eq!(r.code(), 2, "{}", r.stderr());

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    dkimctl(&["man", &out.display().to_string()]).expect(0);
    let got = tree(&out);
    let want = tree(&repo().join("man"));
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want));
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        assert!(g == w, "man/{name} differs from `dkimctl man`");
    }
}

// ---- PyPI tools: ansible-core and taplo ----

/// What the virtual environment holds; a change reinstalls it.
const PY_REQUIREMENTS: &[&str] = &["ansible-core>=2.15,<2.20", "taplo>=0.9,<0.10"];

/// The bin directory of a virtual environment with ansible-core and taplo,
/// created once under target/tmp. None (and a printed reason) when Python
/// or PyPI is out of reach; under CI that fails the test instead.
fn py_tools() -> Option<PathBuf> {
    static TOOLS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = TOOLS.get_or_init(install_py_tools);
    match result {
        Ok(bin) => Some(bin.clone()),
        Err(why) => {
            assert!(
                !ci(),
                "{why} (under CI the test command must provide python3-venv and reach PyPI)"
            );
            eprintln!("skipped: {why}");
            None
        }
    }
}

fn install_py_tools() -> Result<PathBuf, String> {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-venv");
    // Written last: without it (an interrupted install) the environment
    // is made again.
    let stamp = venv.join("dkimctl-requirements");
    let want = PY_REQUIREMENTS.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        return Ok(venv.join("bin"));
    }
    if which("python3").is_none() {
        return Err("python3 not found".into());
    }
    let _ = std::fs::remove_dir_all(&venv);
    let r = run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    if r.code() != 0 {
        return Err(format!(
            "python3 -m venv failed (Debian: install python3-venv): {}",
            r.stderr()
        ));
    }
    let r = run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PY_REQUIREMENTS)
        .env("PIP_DEFAULT_TIMEOUT", "30"));
    if r.code() != 0 {
        return Err(format!(
            "pip could not install {PY_REQUIREMENTS:?} from PyPI: {}",
            r.stderr()
        ));
    }
    std::fs::write(&stamp, &want).unwrap();
    Ok(venv.join("bin"))
}

// ---- the schema, judged by taplo ----

#[test]
fn taplo_validates_the_examples_against_the_schema() {
    let Some(bin) = py_tools() else { return };
    let taplo = bin.join("taplo");
    let schema = format!("file://{}", repo().join("dkim.schema.json").display());
    let mut examples = Vec::new();
    for dir in ["examples", "examples/ansible", "debian"] {
        for e in std::fs::read_dir(repo().join(dir)).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "toml") {
                examples.push(e.path());
            }
        }
    }
    for ex in &examples {
        // As an editor would: the file's own `#:schema` line...
        run(Command::new(&taplo)
            .arg("lint")
            .arg(ex)
            .env("RUST_LOG", "warn"))
        .expect(0);
        // ...and the schema named explicitly.
        run(Command::new(&taplo)
            .args(["lint", "--schema", &schema])
            .arg(ex)
            .env("RUST_LOG", "warn"))
        .expect(0);
    }
    // A mistake dkimctl rejects is flagged, through a `#:schema` line.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("dkim.toml");
    std::fs::write(
        &bad,
        format!("#:schema {schema}\n[service]\nengine = \"postfix\"\nsocket_mode = 1\n"),
    )
    .unwrap();
    let r = run(Command::new(&taplo)
        .arg("lint")
        .arg(&bad)
        .env("RUST_LOG", "warn"));
    let out = r.stdout() + &r.stderr();
    assert_ne!(r.code(), 0, "{out}");
    assert!(out.contains("not one of"), "{out}");
    assert!(out.contains("socket_mode"), "{out}");
}

// ---- the Ansible example ----

/// Files, directories and modes under `dir`, for before/after comparison.
fn snapshot(dir: &Path) -> Vec<(String, u32, Option<Vec<u8>>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                out.push((rel, mode, None));
                stack.push(p);
            } else {
                out.push((rel, mode, Some(std::fs::read(&p).unwrap_or_default())));
            }
        }
    }
    out.sort();
    out
}

/// A sandbox root with an (empty) Postfix configuration, as on a host
/// where Postfix is installed.
fn postfix_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/postfix")).unwrap();
    std::fs::write(dir.path().join("etc/postfix/main.cf"), "").unwrap();
    std::fs::write(dir.path().join("etc/postfix/master.cf"), "").unwrap();
    dir
}

struct Recap {
    changed: u32,
    failed: u32,
    output: String,
}

fn playbook(bin: &Path, home: &Path, root: &Path, extra: &[&str]) -> Recap {
    let python = bin.join("python");
    let r = run(Command::new(bin.join("ansible-playbook"))
        .args(["-i", "localhost,", "-c", "local"])
        .arg(repo().join("examples/ansible/playbook.yml"))
        .arg("-e")
        .arg(format!("dkimctl_bin={}", crate::support::bin().display()))
        .arg("-e")
        .arg(format!("dkimctl_root={}", root.display()))
        .arg("-e")
        .arg(format!("ansible_python_interpreter={}", python.display()))
        .args(extra)
        .current_dir(home)
        .env("LC_ALL", "C.UTF-8")
        .env("ANSIBLE_HOME", home.join("ansible"))
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_REMOTE_TEMP", home.join("tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_LOCALHOST_WARNING", "0")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "0")
        .env("ANSIBLE_STDOUT_CALLBACK", "default")
        .env_remove("ANSIBLE_CONFIG"));
    let output = r.stdout() + &r.stderr();
    let line = output
        .lines()
        .find(|l| l.starts_with("localhost") && l.contains("changed="))
        .unwrap_or_else(|| panic!("no PLAY RECAP in:\n{output}"));
    let field = |name: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
    };
    let recap = Recap {
        changed: field("changed"),
        failed: field("failed"),
        output,
    };
    assert!(
        r.code() == 0 && recap.failed == 0,
        "ansible-playbook failed:\n{}",
        recap.output
    );
    recap
}

#[test]
fn ansible_playbook_applies_once_then_changes_nothing_and_checks_without_writing() {
    let Some(bin) = py_tools() else { return };
    let home = tempfile::tempdir().unwrap();

    // First run: installs dkim.toml, plans (changes pending), applies.
    let root = postfix_root();
    let first = playbook(&bin, home.path(), root.path(), &[]);
    assert!(
        first.changed >= 1,
        "first run changed nothing:\n{}",
        first.output
    );
    assert!(root.path().join("etc/dkimctl/dkim.toml").is_file());
    assert!(
        root.path()
            .join("etc/dkimctl/keys/example.com/rsa2026.private")
            .is_file(),
        "{}",
        first.output
    );
    let r = run(Command::new(crate::support::bin())
        .arg("--root")
        .arg(root.path())
        .args(["plan", "--json"]));
    assert_eq!(r.code(), 0, "apply left changes:\n{}", r.stdout());

    // Second run: nothing to change, nothing reported changed.
    let second = playbook(&bin, home.path(), root.path(), &[]);
    assert_eq!(second.changed, 0, "second run changed:\n{}", second.output);

    // --check --diff on the converged root, planning from a copy of
    // dkim.toml kept inside the root (on a real host every path is): the
    // copy's path must not change a byte of what is rendered.
    let copy = root.path().join("srv/playbook/dkim.toml");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(repo().join("examples/ansible/dkim.toml"), &copy).unwrap();
    let config_var = format!("dkimctl_config={}", copy.display());
    let converged = playbook(
        &bin,
        home.path(),
        root.path(),
        &["--check", "--diff", "-e", &config_var],
    );
    assert_eq!(
        converged.changed, 0,
        "--check on a converged host reported changes:\n{}",
        converged.output
    );

    // --check --diff on a fresh root: reports changes, shows the plan's
    // diffs, writes nothing.
    let fresh = postfix_root();
    let before = snapshot(fresh.path());
    let check = playbook(&bin, home.path(), fresh.path(), &["--check", "--diff"]);
    assert!(
        check.changed >= 1,
        "--check reported nothing:\n{}",
        check.output
    );
    assert!(
        check.output.contains("+milter_default_action = tempfail"),
        "--diff did not show the plan's diff:\n{}",
        check.output
    );
    assert_eq!(snapshot(fresh.path()), before, "--check wrote to the root");
}

// ---- Debian package ----

/// The files debian/ ships, and where `dkimctl render` puts them.
const DEBIAN_FILES: &[(&str, &str)] = &[
    ("dkimctl.service", "etc/systemd/system/dkimctl.service"),
    ("dkimctl.socket", "etc/systemd/system/dkimctl.socket"),
    ("sysusers.conf", "etc/sysusers.d/dkimctl.conf"),
    ("tmpfiles.conf", "etc/tmpfiles.d/dkimctl.conf"),
];

/// debian/'s units and sysusers/tmpfiles entries are `dkimctl render` of
/// debian/dkim.toml; BLESS=1 re-renders them.
#[test]
fn debian_files_are_the_rendered_default_configuration() {
    let config = std::fs::read_to_string(repo().join("debian/dkim.toml")).unwrap();
    let root = TempRoot::new(&config);
    let out = tempfile::tempdir().unwrap();
    root.dkimctl(&["render", "--out", &out.path().display().to_string()])
        .expect(0);
    for (name, rendered) in DEBIAN_FILES {
        let got = std::fs::read_to_string(out.path().join(rendered))
            .unwrap_or_else(|e| panic!("render wrote no {rendered}: {e}"));
        let path = repo().join("debian").join(name);
        if bless() {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            got == want,
            "debian/{name} is stale (BLESS=1 to re-render):\n{}",
            diff(&want, &got)
        );
    }
}

fn deb_paths(deb: &Path) -> Vec<(String, String)> {
    let r = run(Command::new("dpkg-deb").arg("-c").arg(deb)).expect(0);
    // drwxr-xr-x 0/0  0 2026-01-01 00:00 ./usr/bin/dkimctl
    r.stdout()
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let path = cols.last()?.trim_start_matches("./").trim_end_matches('/');
            Some((path.to_string(), format!("{} {}", cols[0], cols[1])))
        })
        .filter(|(p, _)| !p.is_empty())
        .collect()
}

#[test]
fn debian_package_ships_every_asset_and_its_units_verify() {
    if !require_tool("cargo-deb") || !require_tool("dpkg-deb") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Builds the release binary (minutes, once; incremental afterwards).
    run(Command::new(cargo)
        .arg("deb")
        .arg("--manifest-path")
        .arg(repo().join("Cargo.toml"))
        .arg("--output")
        .arg(out.path())
        .arg("--strip")
        .args(["--", "--locked"]))
    .expect(0);
    let deb = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("a .deb");

    // Every asset, at its place, with its mode.
    let listed = deb_paths(&deb);
    let mode_of = |path: &str| -> String {
        listed
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| {
                panic!(
                    "{path} is not in the package:\n{}",
                    listed
                        .iter()
                        .map(|(p, _)| p.as_str())
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })
    };
    assert_eq!(mode_of("usr/bin/dkimctl"), "-rwxr-xr-x 0/0");
    // Stripped: the release profile keeps line tables for profiling, the
    // package does not ship them.
    let size = std::fs::metadata(&deb).unwrap().len();
    assert!(
        size < 12 << 20,
        "the package is {size} bytes: not stripped?"
    );
    let mut expected: Vec<String> = [
        "lib/systemd/system/dkimctl.service",
        "lib/systemd/system/dkimctl.socket",
        "usr/lib/sysusers.d/dkimctl.conf",
        "usr/lib/tmpfiles.d/dkimctl.conf",
        "usr/share/man/man5/dkim.toml.5.gz",
        "usr/share/bash-completion/completions/dkimctl",
        "usr/share/zsh/vendor-completions/_dkimctl",
        "usr/share/fish/vendor_completions.d/dkimctl.fish",
        "usr/share/dkimctl/dkim.schema.json",
        // The examples' `#:schema ../dkim.schema.json` resolves.
        "usr/share/doc/dkimctl/dkim.schema.json",
        "usr/share/doc/dkimctl/README.md",
        "usr/share/doc/dkimctl/copyright",
        "usr/share/doc/dkimctl/examples/ansible/playbook.yml",
        "usr/share/doc/dkimctl/examples/ansible/README.md",
        "usr/share/doc/dkimctl/examples/ansible/dkim.toml",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for e in std::fs::read_dir(repo().join("man")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".8") {
            expected.push(format!("usr/share/man/man8/{name}.gz"));
        }
    }
    for e in std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") {
            expected.push(format!("usr/share/doc/dkimctl/examples/{name}"));
        }
    }
    for path in &expected {
        assert_eq!(mode_of(path), "-rw-r--r-- 0/0", "{path}");
    }

    // Control fields.
    let field = |name: &str| {
        run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name))
            .expect(0)
            .stdout()
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "dkimctl");
    assert_eq!(field("Section"), "mail");
    assert_eq!(field("Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    assert!(field("Depends").contains("libc6"), "{}", field("Depends"));

    // Unpacked: the binary runs, the files are the committed ones.
    let x = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(x.path())).expect(0);
    let version = run(Command::new(x.path().join("usr/bin/dkimctl")).arg("--version"))
        .expect(0)
        .stdout();
    assert_eq!(
        version.trim(),
        format!("dkimctl {}", env!("CARGO_PKG_VERSION"))
    );
    let units = x.path().join("lib/systemd/system");
    for (packaged, committed) in [
        (units.join("dkimctl.service"), "debian/dkimctl.service"),
        (units.join("dkimctl.socket"), "debian/dkimctl.socket"),
        (
            x.path().join("usr/lib/sysusers.d/dkimctl.conf"),
            "debian/sysusers.conf",
        ),
        (
            x.path().join("usr/lib/tmpfiles.d/dkimctl.conf"),
            "debian/tmpfiles.conf",
        ),
        (
            x.path().join("usr/share/dkimctl/dkim.schema.json"),
            "dkim.schema.json",
        ),
    ] {
        assert_eq!(
            std::fs::read(&packaged).unwrap(),
            std::fs::read(repo().join(committed)).unwrap(),
            "{committed}"
        );
    }
    if which("gzip").is_some() {
        let page = run(Command::new("gzip")
            .arg("-dc")
            .arg(x.path().join("usr/share/man/man5/dkim.toml.5.gz")))
        .expect(0)
        .stdout();
        assert_eq!(page, dkimctl::cli::docs::DKIM_TOML_5);
    }

    // The units verify. ExecStart names /usr/bin/dkimctl, which need not
    // exist on the test machine (and `--root=` makes systemd-analyze miss
    // /bin/kill and sysinit.target instead), so the copies verified point
    // at the unpacked binary; every other line is checked as shipped.
    if require_tool("systemd-analyze") {
        let v = tempfile::tempdir().unwrap();
        let binary = x.path().join("usr/bin/dkimctl").display().to_string();
        let mut paths = Vec::new();
        for unit in ["dkimctl.socket", "dkimctl.service"] {
            let text = std::fs::read_to_string(units.join(unit)).unwrap();
            assert!(
                !unit.ends_with(".service") || text.contains("ExecStart=/usr/bin/dkimctl serve")
            );
            let p = v.path().join(unit);
            std::fs::write(&p, text.replace("/usr/bin/dkimctl", &binary)).unwrap();
            paths.push(p);
        }
        let r = run(Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(&paths));
        assert!(
            r.code() == 0 && r.stderr().trim().is_empty(),
            "systemd-analyze verify:\n{}",
            r.stderr()
        );
    }
    // sysusers.d and tmpfiles.d parse them, into a scratch root.
    if require_tool("systemd-sysusers") {
        let scratch = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(scratch.path().join("etc")).unwrap();
        let r = run(Command::new("systemd-sysusers")
            .arg(format!("--root={}", scratch.path().display()))
            .arg(x.path().join("usr/lib/sysusers.d/dkimctl.conf")));
        let complaints: Vec<&str> = r
            .out
            .stderr
            .split(|b| *b == b'\n')
            .filter_map(|l| std::str::from_utf8(l).ok())
            .filter(|l| !l.trim().is_empty() && !l.starts_with("Creating "))
            .collect();
        assert!(
            r.code() == 0 && complaints.is_empty(),
            "systemd-sysusers: {complaints:?}"
        );
        let passwd = std::fs::read_to_string(scratch.path().join("etc/passwd")).unwrap();
        assert!(passwd.contains("dkimctl:x:"), "{passwd}");
        // Creating the directory needs its owner: root only.
        if is_root() && which("systemd-tmpfiles").is_some() {
            let r = run(Command::new("systemd-tmpfiles")
                .arg(format!("--root={}", scratch.path().display()))
                .arg("--create")
                .arg(x.path().join("usr/lib/tmpfiles.d/dkimctl.conf")));
            assert!(
                r.code() == 0 && r.stderr().trim().is_empty(),
                "{}",
                r.stderr()
            );
            assert!(scratch.path().join("var/spool/postfix/dkimctl").is_dir());
        }
    }
}
