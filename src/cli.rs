//! The command line: every flag in one place (clap derive), and the
//! dispatch from a parsed command to the library.
//!
//! Exit codes follow diff(1) and ripgrep: 0 done or nothing to change, 1 the
//! answer is "no" (invalid configuration, pending changes, findings), 2 the
//! job could not be done (usage, I/O, permissions).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, Config, Severity, Source};
use crate::render::{self, templates::Templates};
use crate::root::Root;

/// A correct, hardened DKIM setup from one declarative file, and a bundled
/// signing milter.
#[derive(Debug, Parser)]
#[command(name = "dkimctl", version, about, max_term_width = 100)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Work on the system under DIR instead of / (a sandbox, an image being
    /// built); every path in dkim.toml is resolved under it.
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// The declarative file [default: ROOT/etc/dkimctl/dkim.toml].
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Take templates from DIR where a file of the same name exists there.
    #[arg(long, global = true, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate dkim.toml and report every problem at file:line:col.
    Check,
    /// Write every artifact into a directory (a tree mirroring /).
    Render {
        /// The directory to write into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Show what apply would change; exit 0 nothing to do, 1 changes pending.
    Plan {
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// List unchanged files too.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Carry out the plan: atomic writes, owners, modes, then reloads.
    Apply {
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
        /// Do not run reloads (they are printed instead).
        #[arg(long)]
        no_reload: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A failure that ends the command with exit code 2; the message and its
/// causes are printed by `main`.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs a parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<i32, Error> {
    let root = Root::new(&cli.global.root);
    let source = Source::resolve(&root, cli.global.config.as_deref());
    let color = use_color(cli.global.color);
    match cli.command {
        Command::Check => check(&root, &source),
        Command::Render { out } => {
            let (config, templates) = load_valid(&root, &source, &cli.global)?;
            let artifacts = render::render(&config, &templates)?;
            write_tree(&out, &artifacts)?;
            // The owners and modes apply would set, one artifact a line.
            for a in &artifacts {
                println!("{:04o} {}:{} {}", a.mode, a.owner, a.group, a.path.display());
            }
            Ok(0)
        }
        Command::Plan { .. } | Command::Apply { .. } => {
            let _ = (color, load_valid(&root, &source, &cli.global)?);
            Err("plan/apply are being wired".into())
        }
    }
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}

fn confirm(question: &str) -> Result<bool, Error> {
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Prints diagnostics to stderr, worst first within each place.
fn print_diagnostics(diags: &config::Diagnostics) {
    let mut err = std::io::stderr().lock();
    for d in diags.sorted() {
        let _ = writeln!(err, "{d}");
    }
}

/// `dkimctl check`: 0 valid (warnings allowed), 1 errors found.
fn check(root: &Root, source: &Source) -> Result<i32, Error> {
    let mut loaded = config::load(source)?;
    if let (Some(c), Some(raw)) = (&loaded.config, &loaded.raw) {
        config::environment::check(c, raw, root, &mut loaded.diags);
    }
    print_diagnostics(&loaded.diags);
    let errors = loaded.diags.count(Severity::Error);
    let warnings = loaded.diags.count(Severity::Warning);
    if errors > 0 {
        eprintln!("{}: {errors} error(s), {warnings} warning(s)", source.display);
        Ok(1)
    } else {
        println!("{}: valid ({warnings} warning(s))", source.display);
        Ok(0)
    }
}

/// A configuration invalid enough to stop a command that needs a model.
#[derive(Debug)]
pub struct InvalidConfig {
    /// The file.
    pub file: String,
    /// Number of errors.
    pub errors: usize,
}

impl std::fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} has {} error(s); nothing was done (run `dkimctl check`)", self.file, self.errors)
    }
}

impl std::error::Error for InvalidConfig {}

/// Loads and validates, printing diagnostics; errors stop the command
/// before anything is rendered or written.
pub fn load_valid(root: &Root, source: &Source, global: &Global) -> Result<(Config, Templates), Error> {
    let mut loaded = config::load(source)?;
    if let (Some(c), Some(raw)) = (&loaded.config, &loaded.raw) {
        config::environment::check(c, raw, root, &mut loaded.diags);
    }
    // Warnings and notes belong to `check`; errors stop every command.
    if loaded.diags.has_errors() {
        print_diagnostics(&loaded.diags);
    }
    match loaded.config {
        Some(c) if !loaded.diags.has_errors() => {
            let templates = Templates::with_overrides(global.templates.as_deref())?;
            Ok((c, templates))
        }
        _ => Err(Box::new(InvalidConfig {
            file: source.display.clone(),
            errors: loaded.diags.count(Severity::Error),
        })),
    }
}

/// Writes artifacts into a directory mirroring their host paths.
fn write_tree(out: &std::path::Path, artifacts: &[render::Artifact]) -> Result<(), Error> {
    let tree = Root::new(out);
    for a in artifacts {
        let path = tree.join(&a.path);
        match a.fragment() {
            Some(bytes) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("failed to create {}: {e}", parent.display()))?;
                }
                std::fs::write(&path, bytes)
                    .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
            }
            None if matches!(a.kind, render::ArtifactKind::Directory) => {
                std::fs::create_dir_all(&path)
                    .map_err(|e| format!("failed to create {}: {e}", path.display()))?;
            }
            None => {}
        }
    }
    Ok(())
}
