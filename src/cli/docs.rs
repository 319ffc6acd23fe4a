//! Man pages and shell completions, generated from the clap command, plus
//! the hand-written dkim.toml(5) embedded at build time.
//!
//! `dkimctl man DIR` writes dkimctl(8), one page per subcommand
//! (dkimctl-plan(8), dkimctl-keys-generate(8), ...) and dkim.toml(5);
//! `dkimctl completions bash|zsh|fish` prints a completion script. The
//! committed copies under `man/` and `completions/` (which the Debian
//! package ships) are this module's output; tests fail when they are stale
//! (`BLESS=1` rewrites them).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Command;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

/// `dkimctl schema`: the JSON Schema of dkim.toml on stdout.
pub fn print_schema() -> Result<i32, super::Error> {
    print!("{}", crate::config::schema::schema_text());
    Ok(0)
}

/// `dkimctl completions SHELL`.
pub fn print_completions(shell: &str) -> Result<i32, super::Error> {
    let mut cmd = <super::Cli as clap::CommandFactory>::command();
    write_completions(shell, &mut cmd, &mut std::io::stdout().lock())
        .map_err(|e| format!("cannot write {shell} completions: {e}"))?;
    Ok(0)
}

/// `dkimctl man DIR`: the pages written into DIR (the admin's directory,
/// like `render --out`), their paths printed.
pub fn man(dir: &Path) -> Result<i32, super::Error> {
    let cmd = <super::Cli as clap::CommandFactory>::command();
    std::fs::create_dir_all(dir).map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
    let pages = write_man_pages(&cmd, dir)
        .map_err(|e| format!("failed to write man pages into {}: {e}", dir.display()))?;
    for p in pages {
        println!("{}", p.display());
    }
    Ok(0)
}

/// The hand-written file-format page, dkim.toml(5).
pub const DKIM_TOML_5: &str = include_str!("../../man/dkim.toml.5");

/// The file name of the file-format page.
pub const DKIM_TOML_5_NAME: &str = "dkim.toml.5";

/// The section of the generated command pages (system administration).
pub const SECTION: &str = "8";

/// The shells `write_completions` knows.
pub const SHELLS: &[&str] = &["bash", "zsh", "fish"];

/// The file a completion script is installed as, per shell (bash-completion
/// and zsh's vendor-completions want these names).
pub fn completion_file_name(shell: &str) -> Option<&'static str> {
    match shell {
        "bash" => Some("dkimctl.bash"),
        "zsh" => Some("_dkimctl"),
        "fish" => Some("dkimctl.fish"),
        _ => None,
    }
}

/// Writes the completion script of `shell` (bash, zsh or fish) for `cmd`.
pub fn write_completions(shell: &str, cmd: &mut Command, out: &mut dyn Write) -> io::Result<()> {
    let generator = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown shell {other:?}: choose bash, zsh or fish"),
            ));
        }
    };
    // clap_complete panics on a failed write; generate into memory first.
    let mut buf = Vec::new();
    let name = cmd.get_name().to_string();
    clap_complete::generate(generator, cmd, name, &mut buf);
    let text = String::from_utf8_lossy(&buf);
    out.write_all(without_hidden(&text, shell, &hidden_longs(cmd)).as_bytes())
}

/// The long names of every hidden option at any depth (`--today`, for
/// tests only).
fn hidden_longs(cmd: &Command) -> Vec<String> {
    let mut out: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_hide_set())
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    for sub in cmd.get_subcommands() {
        for l in hidden_longs(sub) {
            if !out.contains(&l) {
                out.push(l);
            }
        }
    }
    out
}

/// A completion script without the hidden options clap_complete writes
/// into it anyway: bash's `opts` words and `--x)` cases, zsh's `'--x=`
/// specs, fish's `-l x` lines.
fn without_hidden(text: &str, shell: &str, hidden: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut skipping_case = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if skipping_case {
            skipping_case = t != ";;";
            continue;
        }
        let mut line = line.to_string();
        let mut drop = false;
        for h in hidden {
            match shell {
                "bash" if t == format!("--{h})") => {
                    skipping_case = true;
                    drop = true;
                }
                "bash" if t.starts_with("opts=") => {
                    line = line
                        .replace(&format!(" --{h} "), " ")
                        .replace(&format!(" --{h}\""), "\"");
                }
                "zsh" => {
                    drop |= t.starts_with(&format!("'--{h}=")) || t.starts_with(&format!("'--{h}["))
                }
                "fish" => {
                    drop |= line.contains(&format!(" -l {h} "))
                        || line.trim_end().ends_with(&format!(" -l {h}"))
                }
                _ => {}
            }
        }
        if !drop {
            out.push_str(&line);
        }
    }
    out
}

/// Every man page: (file name, roff text). dkimctl.8, one page per
/// visible subcommand at any depth (`dkimctl-keys-generate.8`), and
/// dkim.toml.5. Deterministic: no date, no host data.
pub fn man_pages(cmd: &Command) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = cmd.clone().disable_help_subcommand(true);
    // Building gives subcommands their display names (dkimctl-plan), which
    // name their pages and the cross references.
    cmd.build();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let mut out = Vec::new();
    page(&cmd, &version, true, &mut out)?;
    out.push((
        DKIM_TOML_5_NAME.to_string(),
        DKIM_TOML_5.as_bytes().to_vec(),
    ));
    Ok(out)
}

fn page(
    cmd: &Command,
    version: &str,
    top: bool,
    out: &mut Vec<(String, Vec<u8>)>,
) -> io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let mut text = Vec::new();
    // The section is also the one subcommand pages are referred to in.
    Man::new(cmd.clone()).section(SECTION).render(&mut text)?;
    // clap_mangen drops an empty date from .TH, which shifts the source
    // and manual into the wrong fields; subcommands have no version of
    // their own. Write the title line ourselves: no date (the pages are
    // committed and must not change with the calendar).
    let text = String::from_utf8(text).map_err(io::Error::other)?;
    let title = format!(".TH {name} {SECTION} \"\" \"dkimctl {version}\" \"dkimctl manual\"");
    let mut doc: String = text
        .lines()
        .map(|l| {
            if l.starts_with(".TH ") {
                title.as_str()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    doc.push('\n');
    let mut extra = Roff::default();
    if top {
        top_sections(cmd, &mut extra);
    } else {
        extra.control("SH", ["SEE ALSO"]);
        extra.text([
            bold("dkimctl"),
            roman("(8), "),
            bold("dkim.toml"),
            roman("(5)"),
        ]);
    }
    // Without the apostrophe preamble: the page already starts with it.
    let extra = extra.render();
    let body = extra.splitn(3, '\n').nth(2).unwrap_or_default();
    doc.push_str(body);
    out.push((format!("{name}.{SECTION}"), doc.into_bytes()));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(sub, version, false, out)?;
    }
    Ok(())
}

/// EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO of dkimctl(8).
fn top_sections(cmd: &Command, r: &mut Roff) {
    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        (
            "0",
            "Done; nothing to change (plan); valid (check); all records ok (dns check).",
        ),
        (
            "1",
            "The answer is \"no\": the file has errors (check), changes are pending (plan), \
             findings (dns check), apply declined at the prompt.",
        ),
        (
            "2",
            "The job could not be done: usage error, unreadable file, I/O or permission \
             error, DNS unreachable.",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(code)]);
        r.text([roman(meaning)]);
    }
    r.control("SH", ["ENVIRONMENT"]);
    r.control("TP", []);
    r.text([bold("NO_COLOR")]);
    r.text([roman(
        "When set and not empty, --color=auto does not colour output.",
    )]);
    r.control("SH", ["FILES"]);
    for (path, meaning) in [
        (
            "/etc/dkimctl/dkim.toml",
            "The declarative configuration (under --root); see dkim.toml(5).",
        ),
        (
            "/etc/dkimctl/keys/",
            "Private keys of the bundled engine, one folder per domain (0750, keys 0600).",
        ),
        (
            "/var/lib/dkimctl/applied.conf",
            "The settings the running engine was given.",
        ),
        (
            "/usr/share/dkimctl/dkim.schema.json",
            "JSON Schema of dkim.toml for editors (taplo, Even Better TOML).",
        ),
    ] {
        r.control("TP", []);
        r.text([italic(path)]);
        r.text([roman(meaning)]);
    }
    r.control("SH", ["SEE ALSO"]);
    let mut refs = vec![bold("dkim.toml"), roman("(5), ")];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_display_name().unwrap_or(sub.get_name());
        refs.push(bold(name.to_string()));
        refs.push(roman(format!("({SECTION}), ")));
    }
    for (page, section) in [
        ("opendkim", "8"),
        ("opendkim.conf", "5"),
        ("postconf", "5"),
        ("systemd.exec", "5"),
        ("sysusers.d", "5"),
        ("tmpfiles.d", "5"),
    ] {
        refs.push(bold(page));
        refs.push(roman(if page == "tmpfiles.d" {
            format!("({section})")
        } else {
            format!("({section}), ")
        }));
    }
    r.text(refs);
}

/// Writes every man page into `dir` (created if missing); returns the
/// paths written.
pub fn write_man_pages(cmd: &Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, bytes) in man_pages(cmd)? {
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::CommandFactory;

    fn command() -> Command {
        crate::cli::Cli::command()
    }

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn bless() -> bool {
        std::env::var_os("BLESS").is_some()
    }

    fn compare(path: &Path, want: &[u8]) {
        let got = std::fs::read(path).unwrap_or_default();
        if got != want {
            let diff = similar::TextDiff::from_lines(
                String::from_utf8_lossy(&got).as_ref(),
                String::from_utf8_lossy(want).as_ref(),
            )
            .unified_diff()
            .header("committed", "generated")
            .to_string();
            panic!(
                "{} is stale (BLESS=1 cargo test --lib docs:: to rewrite it):\n{diff}",
                path.display()
            );
        }
    }

    /// Every visible subcommand path: ["plan"], ["keys", "generate"], ...
    fn subcommands(cmd: &Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
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

    fn all_subcommands() -> Vec<Vec<String>> {
        let mut out = Vec::new();
        subcommands(&command(), &[], &mut out);
        out
    }

    #[test]
    fn one_page_per_subcommand_and_the_file_format() {
        let pages = man_pages(&command()).unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "dkimctl.8");
        assert!(names.contains(&"dkim.toml.5"));
        for sub in all_subcommands() {
            let want = format!("dkimctl-{}.8", sub.join("-"));
            assert!(names.contains(&want.as_str()), "{want} missing: {names:?}");
        }
        assert_eq!(names.len(), all_subcommands().len() + 2, "{names:?}");
        let top = String::from_utf8(pages[0].1.clone()).unwrap();
        for want in [
            ".TH dkimctl 8 \"\" \"dkimctl 0.",
            "EXIT STATUS",
            "\\fBdkim.toml\\fR(5)",
            "SEE ALSO",
            // Subcommand pages are installed in section 8, and named so.
            "dkimctl\\-plan(8)",
        ] {
            assert!(top.contains(want), "dkimctl.8 lacks {want:?}");
        }
        assert!(!top.contains("(1)"), "dkimctl.8 refers to section 1");
        let plan = &pages.iter().find(|(n, _)| n == "dkimctl-plan.8").unwrap().1;
        let plan = String::from_utf8_lossy(plan);
        assert!(
            plan.contains(".TH dkimctl-plan 8 \"\" \"dkimctl 0."),
            "{plan}"
        );
        assert!(plan.contains("\\-\\-json"), "{plan}");
    }

    #[test]
    fn write_man_pages_writes_every_page() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(&command(), &dir.path().join("man")).unwrap();
        assert_eq!(written.len(), man_pages(&command()).unwrap().len());
        let page = std::fs::read_to_string(dir.path().join("man/dkim.toml.5")).unwrap();
        assert_eq!(page, DKIM_TOML_5);
    }

    #[test]
    fn completions_leave_out_hidden_options() {
        let hidden = hidden_longs(&command());
        assert_eq!(hidden, ["today"]);
        for shell in ["bash", "zsh", "fish"] {
            let mut buf = Vec::new();
            write_completions(shell, &mut command(), &mut buf).unwrap();
            let text = String::from_utf8(buf).unwrap();
            assert!(
                !text.contains("today"),
                "{shell} completes --today:\n{text}"
            );
            assert!(text.contains("nameserver"), "{shell}: too much was removed");
        }
    }

    #[test]
    fn completions_cover_every_subcommand() {
        for shell in SHELLS {
            let mut out = Vec::new();
            write_completions(shell, &mut command(), &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            for sub in all_subcommands() {
                let last = sub.last().unwrap();
                assert!(text.contains(last.as_str()), "{shell}: {last} missing");
            }
            assert!(text.contains("root"), "{shell}: --root missing");
        }
        let err = write_completions("tcsh", &mut command(), &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    /// man/ holds exactly the generated pages; BLESS=1 rewrites them.
    #[test]
    fn committed_man_pages_are_current() {
        let dir = repo().join("man");
        let pages = man_pages(&command()).unwrap();
        let mut committed: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        committed.sort();
        let mut generated: Vec<String> = pages.iter().map(|(n, _)| n.clone()).collect();
        generated.sort();
        if bless() {
            for stale in committed.iter().filter(|c| !generated.contains(c)) {
                std::fs::remove_file(dir.join(stale)).unwrap();
            }
            for (name, bytes) in &pages {
                if name != DKIM_TOML_5_NAME {
                    std::fs::write(dir.join(name), bytes).unwrap();
                }
            }
            return;
        }
        assert_eq!(
            committed, generated,
            "man/ differs from the generated pages (BLESS=1 cargo test --lib docs:: to rewrite)"
        );
        for (name, bytes) in &pages {
            compare(&dir.join(name), bytes);
        }
    }

    /// completions/ holds the generated scripts; BLESS=1 rewrites them.
    #[test]
    fn committed_completions_are_current() {
        let dir = repo().join("completions");
        for shell in SHELLS {
            let mut out = Vec::new();
            write_completions(shell, &mut command(), &mut out).unwrap();
            let path = dir.join(completion_file_name(shell).unwrap());
            if bless() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &out).unwrap();
            } else {
                compare(&path, &out);
            }
        }
    }

    /// The sections of dkim.toml(5): heading -> body.
    fn file_format_sections() -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in DKIM_TOML_5.lines() {
            if let Some(h) = line.strip_prefix(".SS ") {
                out.push((h.to_string(), String::new()));
            } else if line.starts_with(".SH ") {
                out.push((String::new(), String::new()));
            } else if let Some((_, body)) = out.last_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        out
    }

    /// Every table and key of the JSON Schema (which the tests in
    /// `schema` tie to the reader) has its entry in dkim.toml(5).
    #[test]
    fn file_format_page_documents_every_table_and_key() {
        fn walk(s: &serde_json::Value, path: &mut Vec<String>) {
            let (s, is_array) = match s.get("items") {
                Some(items) if items.get("properties").is_some() => (items, true),
                _ => (s, false),
            };
            let Some(props) = s.get("properties").and_then(|p| p.as_object()) else {
                return;
            };
            if !path.is_empty() {
                let heading = if is_array {
                    format!("[[{}]]", path.join("."))
                } else {
                    format!("[{}]", path.join("."))
                };
                let sections = file_format_sections();
                // A domain's `record` has the keys of [defaults.record].
                let body = sections
                    .iter()
                    .find(|(h, _)| h.split_whitespace().next() == Some(heading.as_str()))
                    .or_else(|| {
                        (path.last().map(String::as_str) == Some("record"))
                            .then(|| {
                                sections
                                    .iter()
                                    .find(|(h, _)| h.starts_with("[defaults.record]"))
                            })
                            .flatten()
                    })
                    .map(|(_, b)| b.clone())
                    .unwrap_or_else(|| panic!("dkim.toml.5 has no .SS {heading}"));
                for key in props.keys() {
                    assert!(
                        body.contains(&format!(".TP\n.B {key}\n")),
                        "dkim.toml.5: {heading} does not document {key}"
                    );
                }
            }
            for (k, v) in props {
                path.push(k.clone());
                walk(v, path);
                path.pop();
            }
        }
        walk(&crate::config::schema::json_schema(), &mut Vec::new());
    }

    /// The EXAMPLES of dkim.toml(5) are valid configurations.
    #[test]
    fn file_format_page_examples_are_valid() {
        let mut examples = Vec::new();
        let mut current: Option<String> = None;
        for line in DKIM_TOML_5.lines() {
            match (line, &mut current) {
                (".EX", _) => current = Some(String::new()),
                (".EE", Some(text)) => {
                    examples.push(text.clone());
                    current = None;
                }
                (l, Some(text)) => {
                    text.push_str(&l.replace("\\-", "-"));
                    text.push('\n');
                }
                _ => {}
            }
        }
        let examples: Vec<&String> = examples
            .iter()
            .filter(|e| e.contains("[[domain]]"))
            .collect();
        assert_eq!(examples.len(), 4, "{examples:#?}");
        let root = crate::host::Root::new("/nonexistent");
        let source = crate::config::Source::resolve(&root, None);
        for text in examples {
            let loaded = crate::config::parse(text, &source);
            assert!(
                !loaded.diags.has_errors(),
                "{text}\n{:#?}",
                loaded.diags.sorted()
            );
        }
    }
}
