//! The command line: every flag in one place (clap derive), and the
//! dispatch from a parsed command to the library.
//!
//! Exit codes follow diff(1) and ripgrep: 0 done or nothing to change, 1 the
//! answer is "no" (invalid configuration, pending changes, findings), 2 the
//! job could not be done (usage, I/O, permissions).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod bootstrap;
pub mod docs;
pub mod progress;
pub mod selftest;

use crate::config::types::parse_nameserver;
use crate::config::{self, Config, Source};
use crate::host::Root;
use crate::render::{self, templates::Templates};
use crate::report::Severity;

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
    /// Key generation.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// DNS records: what to publish, and whether it is published right.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// From nothing to a signing host: write dkim.toml (unless it exists),
    /// generate keys, show and apply the plan, print the DNS records.
    Bootstrap {
        /// A domain to sign for (repeatable).
        #[arg(long, value_name = "DOMAIN")]
        domain: Vec<String>,
        /// Configure OpenDKIM instead of the bundled engine.
        #[arg(long)]
        opendkim: bool,
        /// The MTA on this host.
        #[arg(long, value_enum, default_value_t = MtaChoice::Postfix)]
        mta: MtaChoice,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
        /// Do not run reloads.
        #[arg(long)]
        no_reload: bool,
    },
    /// Key rotation without a window where mail is signed by a key
    /// receivers cannot find: new key (pending) -> switch once published ->
    /// retire after the grace period. Each step is idempotent.
    Rotate {
        /// The domain whose keys rotate.
        domain: String,
        /// Take the next step (switch, or retire) when DNS allows it.
        #[arg(long = "continue")]
        cont: bool,
        /// Ask this name server (IP[:PORT]) instead of the system resolver.
        #[arg(long, value_name = "IP[:PORT]", value_parser = parse_nameserver)]
        nameserver: Option<std::net::SocketAddr>,
        /// Pretend today is this date (YYYY-MM-DD).
        #[arg(long, hide = true)]
        today: Option<String>,
    },
    /// Run the bundled signing and verifying milter.
    Serve {
        /// Listen here instead of the configured socket (unix:/path,
        /// inet:HOST:PORT, inet:PORT@HOST).
        #[arg(long, value_name = "SPEC")]
        socket: Option<String>,
        /// Keep running as root when the service user cannot be switched to.
        #[arg(long)]
        allow_root: bool,
    },
    /// Sign a message file with the engine's code; print the signed message.
    Sign {
        /// The message (RFC 5322, as delivered), or - for standard input.
        file: PathBuf,
    },
    /// Verify every DKIM signature of a message file; print one result per
    /// signature. Exit 0 when all pass, 1 otherwise.
    Verify {
        /// The message, or - for standard input.
        file: PathBuf,
        /// Ask this name server (IP[:PORT]) instead of the configured one.
        #[arg(long, value_name = "IP[:PORT]", value_parser = parse_nameserver)]
        nameserver: Option<std::net::SocketAddr>,
    },
    /// Connect to the live milter as the MTA does, have a probe message
    /// signed for every domain and verify it against DNS.
    Selftest {
        /// Connect here instead of the configured socket.
        #[arg(long, value_name = "SPEC")]
        socket: Option<String>,
        /// Verify against the records the local keys imply, not DNS.
        #[arg(long)]
        local_keys: bool,
        /// Ask this name server (IP[:PORT]).
        #[arg(long, value_name = "IP[:PORT]", value_parser = parse_nameserver)]
        nameserver: Option<std::net::SocketAddr>,
    },
    /// Inspect the live DKIM setup read-only (OpenDKIM, Postfix, Sendmail,
    /// units, keys; with dkim.toml also drift from the plan) and report
    /// findings. Exit 0 none at or above --fail-on, 1 findings, 2 could not
    /// audit.
    Audit {
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
        /// The least severity that makes the exit code 1.
        #[arg(long, value_enum, default_value_t = FailOn::Error)]
        fail_on: FailOn,
        /// Also check every selector's published DNS record.
        #[arg(long)]
        dns: bool,
        /// Ask this name server (IP[:PORT]) for --dns.
        #[arg(long, value_name = "IP[:PORT]", value_parser = parse_nameserver)]
        nameserver: Option<std::net::SocketAddr>,
    },
    /// Write the dkim.toml equivalent to an existing OpenDKIM setup (its
    /// opendkim.conf, tables, TrustedHosts, Postfix milter settings) to
    /// standard output, with a comment on whatever could not be carried
    /// over.
    Import,
    /// Print the JSON Schema of dkim.toml (for editors: taplo, Even Better
    /// TOML).
    Schema,
    /// Print a shell completion script.
    Completions {
        /// bash, zsh or fish.
        shell: String,
    },
    /// Write the man pages (dkimctl(8), one per subcommand, dkim.toml(5))
    /// into a directory.
    Man {
        /// The directory to write into.
        dir: PathBuf,
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

/// `dkimctl keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create every key dkim.toml names that does not exist yet (0600,
    /// owned by the service user, PKCS#8 PEM as opendkim-genkey writes).
    Generate {
        /// Replace existing keys (their DNS records must be republished).
        #[arg(long)]
        force: bool,
    },
}

/// `dkimctl dns ...`.
#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Print the TXT record to publish for every domain and selector.
    Records {
        /// zone: one record in zone-file syntax, split into strings of at
        /// most 255 bytes; plain: the joined value, for web DNS panels.
        #[arg(long, value_enum, default_value_t = RecordFormat::Zone)]
        format: RecordFormat,
        /// Print both forms as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Look every selector's record up and judge it; report SPF and DMARC.
    /// Exit 0 all ok, 1 findings, 2 could not check.
    Check {
        /// Ask this name server (IP[:PORT]) instead of the system resolver.
        #[arg(long, value_name = "IP[:PORT]", value_parser = parse_nameserver)]
        nameserver: Option<std::net::SocketAddr>,
        /// Seconds to wait for each answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The least severity that fails an audit.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailOn {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warning,
    /// Any finding.
    Info,
}

/// The MTA a new dkim.toml is written for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MtaChoice {
    /// Postfix (main.cf and master.cf are edited).
    Postfix,
    /// Sendmail (a sendmail.mc line).
    Sendmail,
    /// No MTA integration.
    None,
}

/// How `dns records` prints a record.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RecordFormat {
    /// Zone-file form: `name IN TXT ( "..." "..." )`.
    Zone,
    /// Name and joined value.
    Plain,
}

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
                println!(
                    "{:04o} {}:{} {}",
                    a.mode,
                    a.owner,
                    a.group,
                    a.path.display()
                );
            }
            Ok(0)
        }
        Command::Keys(KeysCommand::Generate { force }) => {
            let (config, _) = load_valid(&root, &source, &cli.global)?;
            crate::keys::cmd::generate_all(&config, &root, force, &mut std::io::stdout().lock())
        }
        Command::Dns(DnsCommand::Records { format, json }) => {
            let (config, _) = load_valid(&root, &source, &cli.global)?;
            let plain = matches!(format, RecordFormat::Plain);
            crate::keys::cmd::print_records(
                &config,
                &root,
                plain,
                json,
                &mut std::io::stdout().lock(),
            )
        }
        Command::Dns(DnsCommand::Check {
            nameserver,
            timeout,
            json,
        }) => {
            let (config, _) = load_valid(&root, &source, &cli.global)?;
            let report = crate::dns::check(
                &config,
                &root,
                nameserver,
                std::time::Duration::from_secs(timeout),
            )?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &report.to_json())?;
                writeln!(out)?;
            } else {
                report.print(&mut out, color)?;
            }
            Ok(report.exit_code())
        }
        Command::Rotate {
            domain,
            cont,
            nameserver,
            today,
        } => {
            let today = match today {
                Some(t) => crate::config::types::Date::parse(&t)
                    .ok_or_else(|| format!("invalid date {t}: write YYYY-MM-DD"))?,
                None => crate::config::types::Date::today(),
            };
            let code = crate::rotate::rotate(
                &source,
                &root,
                &domain,
                cont,
                nameserver,
                today,
                &mut std::io::stdout().lock(),
            )?;
            Ok(code)
        }
        Command::Serve { socket, allow_root } => {
            crate::engine::serve(crate::engine::ServeOptions {
                root: root.clone(),
                source: source.clone(),
                socket_override: socket,
                allow_root,
            })?;
            Ok(0)
        }
        Command::Sign { file } => {
            let (config, _) = load_valid(&root, &source, &cli.global)?;
            let message = read_input(&file)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let signed = crate::engine::sign_file(&config, &root, &message, now)?;
            std::io::stdout().lock().write_all(&signed)?;
            Ok(0)
        }
        Command::Verify { file, nameserver } => {
            let (mut config, _) = load_valid(&root, &source, &cli.global)?;
            if let Some(ns) = nameserver {
                config.engine.nameservers = vec![ns];
            }
            let message = read_input(&file)?;
            let results = crate::engine::verify_message_blocking(&config, &message)?;
            let mut out = std::io::stdout().lock();
            let mut all_pass = !results.is_empty();
            for r in &results {
                writeln!(out, "{r}")?;
                all_pass &= r.status == crate::dkim::verify::DkimStatus::Pass;
            }
            if results.is_empty() {
                writeln!(out, "dkim=none (no signature)")?;
            }
            Ok(i32::from(!all_pass))
        }
        Command::Selftest {
            socket,
            local_keys,
            nameserver,
        } => {
            let (config, _) = load_valid(&root, &source, &cli.global)?;
            let opts = crate::cli::selftest::SelftestOptions {
                socket,
                local_keys,
                nameserver,
            };
            crate::cli::selftest::selftest(&config, &root, &opts, &mut std::io::stdout().lock())
        }
        Command::Audit {
            json,
            fail_on,
            dns,
            nameserver,
        } => {
            // With --config (or a dkim.toml at the default place), drift from
            // the plan is reported too; the file must then be valid.
            let config = if cli.global.config.is_some() || source.real.exists() {
                Some(load_valid(&root, &source, &cli.global)?.0)
            } else {
                None
            };
            let opts = crate::audit::AuditOptions {
                dns,
                nameserver,
                ..Default::default()
            };
            let report = crate::audit::audit(&root, config.as_ref(), &opts);
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &report.to_json())?;
                writeln!(out)?;
            } else {
                report.print(&mut out, color)?;
            }
            let severity = match fail_on {
                FailOn::Error => Severity::Error,
                FailOn::Warning => Severity::Warning,
                FailOn::Info => Severity::Info,
            };
            Ok(report.exit_code(severity))
        }
        Command::Schema => {
            print!("{}", crate::config::schema::schema_text());
            Ok(0)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            crate::cli::docs::write_completions(&shell, &mut cmd, &mut std::io::stdout().lock())
                .map_err(|e| format!("cannot write {shell} completions: {e}"))?;
            Ok(0)
        }
        Command::Man { dir } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
            let pages = crate::cli::docs::write_man_pages(&cmd, &dir)
                .map_err(|e| format!("failed to write man pages into {}: {e}", dir.display()))?;
            for p in pages {
                println!("{}", p.display());
            }
            Ok(0)
        }
        Command::Import => {
            let result = crate::audit::import(&root)?;
            std::io::stdout().lock().write_all(result.toml.as_bytes())?;
            for n in &result.notes {
                eprintln!("dkimctl: note: {n}");
            }
            Ok(0)
        }
        Command::Plan { json, verbose } => {
            let (config, templates) = load_valid(&root, &source, &cli.global)?;
            let plan = make_plan(&config, &templates, &root)?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &plan.to_json())?;
                writeln!(out)?;
            } else {
                plan.print_with(&mut out, &crate::plan::PrintOptions { color, verbose })?;
            }
            Ok(i32::from(plan.has_changes()))
        }
        Command::Apply {
            yes,
            no_reload,
            json,
        } => {
            let (config, templates) = load_valid(&root, &source, &cli.global)?;
            apply_config(&config, &templates, &root, yes, no_reload, json, color)
        }
        Command::Bootstrap {
            domain,
            opendkim,
            mta,
            yes,
            no_reload,
        } => bootstrap(
            &root,
            &source,
            &cli.global,
            &domain,
            opendkim,
            mta,
            yes,
            no_reload,
            color,
        ),
    }
}

/// Renders and plans.
fn make_plan(
    config: &Config,
    templates: &Templates,
    root: &Root,
) -> Result<crate::plan::Plan, Error> {
    let artifacts = render::render(config, templates)?;
    Ok(crate::plan::plan(&artifacts, root)?)
}

/// Plans, shows, asks (on a terminal, unless `yes`), applies, reloads.
/// Exit 0 when applied or nothing to do, 1 when declined.
fn apply_config(
    config: &Config,
    templates: &Templates,
    root: &Root,
    yes: bool,
    no_reload: bool,
    json: bool,
    color: bool,
) -> Result<i32, Error> {
    let plan = make_plan(config, templates, root)?;
    let mut out = std::io::stdout().lock();
    if !plan.has_changes() {
        if json {
            serde_json::to_writer_pretty(&mut out, &plan.to_json())?;
            writeln!(out)?;
        } else {
            writeln!(out, "Nothing to change.")?;
        }
        return Ok(0);
    }
    if !json {
        plan.print_with(
            &mut out,
            &crate::plan::PrintOptions {
                color,
                verbose: false,
            },
        )?;
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if !yes && interactive && !confirm("Apply these changes?")? {
        writeln!(out, "Nothing was changed.")?;
        return Ok(1);
    }
    let opts = crate::apply::ApplyOptions {
        reload: !no_reload && root.is_live(),
        engine_units: render::engine_units(config),
        postfix_config_dir: match &config.mta {
            crate::config::model::Mta::Postfix(p)
                if p.config_dir != std::path::Path::new("/etc/postfix") =>
            {
                Some(p.config_dir.clone())
            }
            _ => None,
        },
    };
    let report = crate::apply::apply(&plan, root, &opts)?;
    if json {
        serde_json::to_writer_pretty(&mut out, &report.to_json())?;
        writeln!(out)?;
    } else {
        report.print(&mut out)?;
    }
    Ok(if report.ok() { 0 } else { 2 })
}

/// `dkimctl bootstrap`.
#[allow(clippy::too_many_arguments)]
fn bootstrap(
    root: &Root,
    source: &Source,
    global: &Global,
    domains: &[String],
    opendkim: bool,
    mta: MtaChoice,
    yes: bool,
    no_reload: bool,
    color: bool,
) -> Result<i32, Error> {
    let mut out = std::io::stdout().lock();
    if source.real.exists() {
        writeln!(out, "Using the existing {}.", source.real.display())?;
    } else {
        if domains.is_empty() {
            return Err("bootstrap needs at least one --domain to write a new dkim.toml".into());
        }
        let mut names = Vec::new();
        for d in domains {
            names.push(
                crate::config::validate::normalize_domain(d)
                    .map_err(|e| format!("invalid domain {d}: {e}"))?,
            );
        }
        let choices = crate::cli::bootstrap::Choices {
            opendkim,
            mta: match mta {
                MtaChoice::Postfix => "postfix",
                MtaChoice::Sendmail => "sendmail",
                MtaChoice::None => "none",
            },
        };
        let text = crate::cli::bootstrap::initial_config(
            &names,
            &crate::config::types::Date::today().to_string(),
            choices,
        );
        if let Some(dir) = source.real.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
        }
        crate::apply::atomic::write_atomic(&source.real, text.as_bytes(), None, None, 0o644)?;
        writeln!(
            out,
            "Wrote {} for {}.",
            source.real.display(),
            names.join(", ")
        )?;
    }
    let (config, templates) = load_valid(root, source, global)?;
    crate::keys::cmd::generate_all(&config, root, false, &mut out)?;
    drop(out);
    let code = apply_config(&config, &templates, root, yes, no_reload, false, color)?;
    if code != 0 {
        return Ok(code);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nPublish these DNS records (one TXT record per selector):\n"
    )?;
    crate::keys::cmd::print_records(&config, root, false, false, &mut out)?;
    writeln!(
        out,
        "\nNext: once published, run `dkimctl dns check` to confirm receivers will find them."
    )?;
    Ok(0)
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
        config::environment::check(c, raw, root, false, &mut loaded.diags);
    }
    print_diagnostics(&loaded.diags);
    let errors = loaded.diags.count(Severity::Error);
    let warnings = loaded.diags.count(Severity::Warning);
    if errors > 0 {
        eprintln!(
            "{}: {errors} error(s), {warnings} warning(s)",
            source.display
        );
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
        write!(
            f,
            "{} has {} error(s); nothing was done (run `dkimctl check`)",
            self.file, self.errors
        )
    }
}

impl std::error::Error for InvalidConfig {}

/// Loads and validates, printing diagnostics; errors stop the command
/// before anything is rendered or written.
pub fn load_valid(
    root: &Root,
    source: &Source,
    global: &Global,
) -> Result<(Config, Templates), Error> {
    let mut loaded = config::load(source)?;
    if let (Some(c), Some(raw)) = (&loaded.config, &loaded.raw) {
        config::environment::check(c, raw, root, true, &mut loaded.diags);
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

/// Reads a message file, or standard input for `-`.
fn read_input(file: &std::path::Path) -> Result<Vec<u8>, Error> {
    if file == std::path::Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        return Ok(buf);
    }
    std::fs::read(file).map_err(|e| format!("failed to read {}: {e}", file.display()).into())
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
