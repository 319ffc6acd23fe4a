//! The command line: every flag in one place (clap derive), the dispatch
//! from a parsed command to its function (one file per command), and what
//! the commands share (loading dkim.toml, printing diagnostics, colour,
//! the confirmation question).
//!
//! Exit codes follow diff(1) and ripgrep: 0 done or nothing to change, 1 the
//! answer is "no" (invalid configuration, pending changes, findings), 2 the
//! job could not be done (usage, I/O, permissions).

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod apply;
pub mod audit;
pub mod bootstrap;
pub mod check;
pub mod dns;
pub mod docs;
pub mod engine;
pub mod keys;
pub mod rotate;
pub mod selftest;

use crate::config::types::parse_nameserver;
use crate::config::{self, Config, Source};
use crate::host::Root;
use crate::render::templates::Templates;
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
    /// Render as if the configuration were installed at FILE (a path on
    /// the host): the file named in rendered headers and in the engine's
    /// unit. For config management that plans from a copy before
    /// installing it (`ansible --check`), so both render the same bytes.
    #[arg(long, global = true, value_name = "FILE")]
    pub installed_as: Option<PathBuf>,
    /// Take templates from DIR where a file of the same name exists there.
    #[arg(long, global = true, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// `--nameserver`, one definition for every command that asks DNS.
#[derive(Debug, Clone, Copy, Args)]
pub struct NameserverArg {
    /// Ask this name server, IP or IP:PORT, instead of the configured or the
    /// system's.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_nameserver)]
    pub nameserver: Option<SocketAddr>,
}

/// `--today`, hidden: the clock of the commands that act on dates
/// (`rotate`, `dns publish`), for tests only.
#[derive(Debug, Clone, Args)]
pub struct TodayArg {
    /// Pretend today is this date (YYYY-MM-DD). For tests only: rotation
    /// decisions then follow this clock instead of the system's.
    #[arg(long, hide = true, value_name = "YYYY-MM-DD")]
    pub today: Option<String>,
}

impl TodayArg {
    /// The date: `--today`, or the system clock's (UTC).
    pub fn date(&self) -> Result<crate::config::types::Date, Error> {
        match &self.today {
            Some(t) => crate::config::types::Date::parse(t)
                .ok_or_else(|| format!("invalid date {t}: write YYYY-MM-DD").into()),
            None => Ok(crate::config::types::Date::today()),
        }
    }
}

/// `--json`, for every command with a machine-readable report.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonArg {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--yes` and `--no-reload`, for the commands that change the system.
#[derive(Debug, Clone, Copy, Args)]
pub struct ChangeArgs {
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// Do not run reloads (they are printed instead).
    #[arg(long)]
    pub no_reload: bool,
}

/// `--offline`, for the commands that look at the running system.
#[derive(Debug, Clone, Copy, Args)]
pub struct OfflineArg {
    /// Look at files only: do not ask systemd about the units, talk to the
    /// milter socket or look at running processes (on the live root these
    /// are part of the plan and of the audit by default).
    #[arg(long)]
    pub offline: bool,
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
        #[command(flatten)]
        json: JsonArg,
        /// List unchanged files too.
        #[arg(long, short)]
        verbose: bool,
        #[command(flatten)]
        live: OfflineArg,
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
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        live: OfflineArg,
    },
    /// Key rotation without a window where mail is signed by a key
    /// receivers cannot find: new key (pending) -> switch once published ->
    /// retire after the grace period. Each step is idempotent.
    Rotate {
        /// The domain whose keys rotate (with --auto: any number, default
        /// every domain).
        #[arg(value_name = "DOMAIN")]
        domains: Vec<String>,
        /// Take the next step (switch, or retire) when DNS allows it.
        #[arg(long = "continue", conflicts_with = "auto")]
        cont: bool,
        /// Take every step that is due, unattended: start a rotation when
        /// the active key is older than the rotation interval (every),
        /// publish, switch once every server serves the new record for a
        /// TTL, retire after the grace period, apply (reloading, never
        /// restarting the engine). Safe to run hourly. Exit 0 done or
        /// nothing due, 1 waiting for a record that is not published, 2 a
        /// step failed.
        #[arg(long)]
        auto: bool,
        /// Print the result as JSON (with --auto).
        #[arg(long, requires = "auto")]
        json: bool,
        #[command(flatten)]
        ns: NameserverArg,
        #[command(flatten)]
        today: TodayArg,
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
        #[command(flatten)]
        ns: NameserverArg,
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
        #[command(flatten)]
        ns: NameserverArg,
    },
    /// Inspect the live DKIM setup read-only (OpenDKIM, Postfix, Sendmail,
    /// units, keys; with dkim.toml also drift from the plan) and report
    /// findings. Exit 0 none at or above --fail-on, 1 findings, 2 could not
    /// audit.
    Audit {
        #[command(flatten)]
        json: JsonArg,
        /// The least severity that makes the exit code 1.
        #[arg(long, value_enum, default_value_t = FailOn::Error)]
        fail_on: FailOn,
        /// Also check every selector's published DNS record.
        #[arg(long)]
        dns: bool,
        #[command(flatten)]
        ns: NameserverArg,
        #[command(flatten)]
        live: OfflineArg,
    },
    /// Write the dkim.toml equivalent to an existing OpenDKIM setup (its
    /// opendkim.conf, tables, TrustedHosts, Postfix milter settings) to
    /// standard output, naming whatever is not carried over. Exit 1 when the
    /// setup cannot be adopted, or would be signed differently afterwards
    /// (unless --lossy).
    Import {
        /// Write the dkim.toml even where leaving a line out changes what
        /// is signed (each such line is named, also in `plan`).
        #[arg(long)]
        lossy: bool,
    },
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
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        json: JsonArg,
        #[command(flatten)]
        live: OfflineArg,
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
    /// Make DNS match dkim.toml (as its dns table says): publish the record of every
    /// pending, active and retiring key and the revoked form of retired
    /// keys, touching only configured selectors; then check them at every
    /// authoritative server and the resolver. Exit 0 DNS matches, 1
    /// changes pending (--dry-run, manual) or not served yet, 2 failed.
    Publish {
        /// Show what would change and the update that would be sent;
        /// change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        json: JsonArg,
        #[command(flatten)]
        ns: NameserverArg,
        #[command(flatten)]
        today: TodayArg,
    },
    /// Look every selector's record up and judge it; report SPF and DMARC.
    /// Exit 0 all ok, 1 findings, 2 could not check.
    Check {
        #[command(flatten)]
        ns: NameserverArg,
        /// Seconds to wait for each answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
        #[command(flatten)]
        json: JsonArg,
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

impl FailOn {
    fn severity(self) -> Severity {
        match self {
            FailOn::Error => Severity::Error,
            FailOn::Warning => Severity::Warning,
            FailOn::Info => Severity::Info,
        }
    }
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

/// Runs a parsed command; returns the exit code. First of all, key
/// material is kept out of core dumps ([`crate::keys::protect_process`]).
pub fn run(cli: Cli) -> Result<i32, Error> {
    crate::keys::protect_process();
    let g = &cli.global;
    let root = Root::new(&g.root);
    let mut source = Source::resolve(&root, g.config.as_deref());
    if let Some(host) = &g.installed_as {
        source.host = host.clone();
    }
    let color = use_color(g.color);
    let valid = || load_valid(&root, &source, g);
    let stdout = || std::io::stdout().lock();
    match cli.command {
        Command::Check => check::check(&root, &source),
        Command::Render { out } => check::render(&root, &source, g, &out),
        Command::Plan {
            json,
            verbose,
            live,
        } => {
            let (config, templates) = valid()?;
            let live = !live.offline;
            let notes = crate::config::read_text(&source)
                .map(|t| crate::audit::import::not_carried_over(&t))
                .unwrap_or_default();
            let print = crate::plan::PrintOptions { color, verbose };
            apply::plan(&config, &templates, &root, live, &notes, json.json, print)
        }
        Command::Apply { change, json, live } => {
            let (config, templates) = valid()?;
            let flags = flags(change, json.json, color, live);
            apply::apply_config(&config, &templates, &root, flags)
        }
        Command::Bootstrap {
            domain,
            opendkim,
            mta,
            change,
            live,
        } => {
            let new = bootstrap::NewConfig {
                domains: &domain,
                opendkim,
                mta,
            };
            bootstrap::bootstrap(&root, &source, g, &new, flags(change, false, color, live))
        }
        Command::Keys(KeysCommand::Generate { force }) => {
            keys::generate(&valid()?.0, &root, force, &mut stdout())
        }
        Command::Dns(DnsCommand::Records { format, json }) => {
            let plain = matches!(format, RecordFormat::Plain);
            dns::print_records(&valid()?.0, &root, plain, json, &mut stdout())
        }
        Command::Dns(DnsCommand::Publish {
            dry_run,
            json,
            ns,
            today,
        }) => dns::publish(
            &valid()?.0,
            &root,
            dry_run,
            json.json,
            ns.nameserver,
            today.date()?,
        ),
        Command::Dns(DnsCommand::Check { ns, timeout, json }) => {
            dns::check(&valid()?.0, &root, ns.nameserver, timeout, json.json, color)
        }
        Command::Rotate {
            domains,
            cont,
            auto,
            json,
            ns,
            today,
        } => {
            if auto {
                let (config, templates) = valid()?;
                let run = rotate::AutoRun {
                    root: &root,
                    source: &source,
                    templates: &templates,
                    domains: &domains,
                    nameserver: ns.nameserver,
                    today: today.date()?,
                    json,
                };
                rotate::auto(&config, &run)
            } else {
                let [domain] = domains.as_slice() else {
                    return Err(
                        "name one domain to rotate (or use --auto for every domain that is due)"
                            .into(),
                    );
                };
                rotate::rotate(&root, &source, domain, cont, ns.nameserver, today.date()?)
            }
        }
        Command::Serve { socket, allow_root } => engine::serve(&root, &source, socket, allow_root),
        Command::Sign { file } => engine::sign(&valid()?.0, &root, &file),
        Command::Verify { file, ns } => engine::verify(valid()?.0, &file, ns.nameserver),
        Command::Selftest {
            socket,
            local_keys,
            ns,
        } => {
            let opts = selftest::SelftestOptions {
                socket,
                local_keys,
                nameserver: ns.nameserver,
            };
            selftest::selftest(&valid()?.0, &root, &opts, &mut stdout())
        }
        Command::Audit {
            json,
            fail_on,
            dns,
            ns,
            live,
        } => {
            // With --config (or a dkim.toml at the default place), drift
            // from the plan is reported too; the file must then be valid.
            let config = if g.config.is_some() || source.real.exists() {
                Some(valid()?.0)
            } else {
                None
            };
            let (json, fail_on) = (json.json, fail_on.severity());
            let opts = crate::audit::AuditOptions {
                dns,
                nameserver: ns.nameserver,
                live: !live.offline,
                ..Default::default()
            };
            audit::audit(&root, config.as_ref(), &opts, fail_on, json, color)
        }
        Command::Import { lossy } => audit::import(&root, lossy),
        Command::Schema => docs::print_schema(),
        Command::Completions { shell } => docs::print_completions(&shell),
        Command::Man { dir } => docs::man(&dir),
    }
}

fn flags(change: ChangeArgs, json: bool, color: bool, live: OfflineArg) -> apply::ApplyFlags {
    apply::ApplyFlags {
        yes: change.yes,
        no_reload: change.no_reload,
        json,
        color,
        live: !live.offline,
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

/// Asks a yes/no question on the terminal; no is the default.
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
    valid_config(&config::read_text(source)?, root, source, global, false)
}

/// [`load_valid`] on text already read (or not written yet: bootstrap).
/// With `warnings`, warnings are printed too (bootstrap: its admin has not
/// run `check` on a file they have not seen yet).
fn valid_config(
    text: &str,
    root: &Root,
    source: &Source,
    global: &Global,
    warnings: bool,
) -> Result<(Config, Templates), Error> {
    let mut loaded = config::parse(text, source);
    if let (Some(c), Some(raw)) = (&loaded.config, &loaded.raw) {
        config::environment::check(c, raw, root, true, &mut loaded.diags);
    }
    // Warnings and notes belong to `check`; errors stop every command.
    if loaded.diags.has_errors() {
        print_diagnostics(&loaded.diags);
    } else if warnings {
        let mut err = std::io::stderr().lock();
        for d in loaded.diags.sorted() {
            if d.severity == Severity::Warning {
                let _ = writeln!(err, "{d}");
            }
        }
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
