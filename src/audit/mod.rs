//! `dkimctl audit` and `dkimctl import`: the installed DKIM setup as it
//! is, judged (audit) or turned into a `dkim.toml` (import).
//!
//! Both start from the same read-only snapshot of the tree under the root
//! ([`inventory`]): OpenDKIM's configuration (`/etc/opendkim.conf` or
//! `/etc/opendkim/opendkim.conf`, or the `-x` file of its unit) and the
//! KeyTable, SigningTable and host lists it names ([`opendkim`]); the
//! `opendkim.service`/`dkimctl.service` units with their drop-ins
//! ([`systemd`]); Postfix's main.cf and master.cf and sendmail.mc
//! ([`mta`]), sendmail.cf and the files sendmail.mc includes
//! ([`sendmail`](mod@sendmail)); `/etc/passwd` and `/etc/group`; the key
//! files. With a dkim.toml, only the MTA it names is read.
//!
//! - [`audit`] runs the [`checks`] over the snapshot. With a `dkim.toml`
//!   it also renders and plans it ([`crate::render`], [`crate::plan`]) and
//!   reports every pending change as `drift`; with `--dns` it looks up
//!   every selector found as `dkimctl dns check` does ([`crate::dns`]).
//! - [`import()`] writes the `dkim.toml` that describes the same setup
//!   ([`import`](mod@import)).
//!
//! Nothing here writes to the filesystem, starts or stops anything; the
//! processes run are `systemd-analyze security --offline=true`, which
//! reads unit files, and on the live root `systemctl show` (the running
//! system is looked at as [`crate::plan::live`] does, unless
//! `--offline`); unless `--offline`, the milters sendmail.cf calls with
//! `F=T` are asked whether they answer (a milter negotiation, then quit).
//! A file that cannot be read or parsed is a finding at
//! its place, never a crash, and the rest of the audit still runs.
//!
//! # Findings
//!
//! Every finding has a stable id (kebab-case, like `dns check`'s), a
//! severity, the host path and line where it applies, what is wrong, why
//! it matters and how to fix it.
//!
//! A fix says, where it can, exactly what to write, one step a line, in
//! the file that is configured (the one OpenDKIM, Postfix or the unit
//! actually reads): `in FILE: NAME VALUE` (opendkim.conf), `in FILE: NAME =
//! VALUE` (main.cf), `in FILE, service S: -o NAME=VALUE` (master.cf), `in
//! FILE, line N: TEXT` (a table line), or a `chmod`/`chown` command; a
//! remark in parentheses follows. A milter list it writes keeps every
//! other milter in its place, and a chrooted Postfix is never given a path
//! outside its chroot. `fixes/tests.rs` applies each such fix as written
//! and audits again: the finding is gone and no other appears.
//!
//! The ids, with their severities:
//!
//! | id | severity | meaning |
//! |---|---|---|
//! | `unreadable-file` | error | a file the setup names exists but cannot be read (permissions, a directory, not a regular file) |
//! | `missing-file` | error | a file or directory the setup names does not exist (table, include, BaseDirectory, `-x` file) |
//! | `unknown-option` | error | opendkim.conf names a parameter OpenDKIM 2.11 does not know: it refuses to start |
//! | `option-value` | error | a parameter without value, a bad boolean or integer, an unreadable Socket or Canonicalization, Include nested too deep |
//! | `dataset-not-checked` | info | a dataset kept in a database or script (`db:`, `dsn:`, `ldap:`, `lua:` ...) the audit cannot read |
//! | `table-syntax` | error | a KeyTable, SigningTable or host list line that does not parse (e.g. a `<server_ip>` placeholder) |
//! | `runs-as-root` | error | neither UserID (`-u`) nor the unit's User= drops root, or either names root |
//! | `unknown-user` | error | UserID or User= names a user missing from `/etc/passwd` |
//! | `temporary-directory` | warning | TemporaryDirectory unset (so `/tmp`) or world-writable; info when the unit has PrivateTmp=yes |
//! | `base-directory` | info | BaseDirectory is not set |
//! | `no-socket` | error | no Socket (and no `-p`): OpenDKIM does not start |
//! | `tcp-socket` | warning | a TCP socket while the MTA runs on the same host (a unix socket is advised) |
//! | `remote-socket` | error | a TCP socket on a non-loopback address (`inet:PORT` means every address) |
//! | `socket-mismatch` | error | a Postfix milter list (main.cf or master.cf `-o`), a sendmail.mc `S=` or a DKIM filter's `S=` in sendmail.cf does not reach the milter's socket; notations are normalised first |
//! | `mta-not-connected` | error | Postfix has no `smtpd_milters` (or sendmail.mc no filter line); info when only `non_smtpd_milters` is empty |
//! | `socket-outside-chroot` | error | a unix socket outside the queue directory while the Postfix service runs chrooted; warning when master.cf says `-` on a system not shaped like Debian ("may be chrooted") |
//! | `socket-chroot-path` | error | a chrooted Postfix is given the socket's host path instead of the path relative to its queue directory; warning for `-` as above |
//! | `socket-umask` | error | the umask takes group write off the socket, so the MTA cannot connect; warning when it leaves the socket writable by everyone |
//! | `socket-directory` | error | the MTA's user cannot enter the socket's directory (on disk, RuntimeDirectory=, tmpfiles.d) |
//! | `mta-not-in-group` | error | the MTA's user (postfix) is not in the group of the milter's socket |
//! | `milter-protocol` | error | `milter_protocol` below 6 ("milter-reject: END-OF-MESSAGE"); info when unset |
//! | `milter-default-action` | warning | `milter_default_action = accept` (or a per-milter `default_action`, or a sendmail filter without `F=T`): mail leaves unsigned while the milter is down; info when unset (Postfix's default is tempfail) |
//! | `key-permissions` | error | a private key (or a KeyTable with an inline key) readable or writable by others, or group-writable |
//! | `key-unsafe-directory` | error | a directory above a key is writable by its group or by everyone (OpenDKIM: "key data is not secure") |
//! | `key-owner` | error | the milter's user cannot read its key |
//! | `key-missing` | error | a KeyTable entry, KeyFile or dkim.toml key names a file that does not exist |
//! | `key-invalid` | error | a key file that does not parse as a PEM RSA or Ed25519 private key |
//! | `key-weak` | warning | an RSA key below 2048 bits; error below 1024 |
//! | `key-algorithm-mismatch` | error | a KeyTable key of another type than OpenDKIM's one `SignatureAlgorithm` (an Ed25519 key under the default rsa-sha256): every message signed with it is deferred |
//! | `signing-table-unknown-key` | error | a SigningTable line names a key absent from the KeyTable |
//! | `signing-table-catch-all` | warning | a `*` or `*@*` pattern signs mail from every domain with one key |
//! | `signing-table-not-refile` | error | wildcard patterns in a SigningTable not read as `refile:`: they never match |
//! | `key-table-refile` | warning | the KeyTable is given as `refile:` |
//! | `key-table-unused` | info | a KeyTable entry no SigningTable line uses |
//! | `single-key-ignored` | warning | Domain, Selector or KeyFile set along with a KeyTable (they are ignored) |
//! | `signing-incomplete` | error | signing is half configured: Domain/Selector/KeyFile not all set, a KeyTable without SigningTable or the reverse |
//! | `no-signing-keys` | info | Mode signs but no key is configured (Debian's stock file) |
//! | `internal-hosts-public` | warning | InternalHosts includes a public range; info for a single public address |
//! | `internal-hosts-everyone` | error | InternalHosts includes `0.0.0.0/0` or `::/0` |
//! | `trusted-lists-differ` | info | InternalHosts and ExternalIgnoreList differ |
//! | `canonicalization` | warning | Canonicalization unset (OpenDKIM's default simple/simple) or simple/simple |
//! | `oversign-from` | warning | OversignHeaders does not include From |
//! | `mode-verify-only` | warning | `Mode v` while a KeyTable or KeyFile is configured: nothing is signed |
//! | `unsafe-keys-allowed` | warning | `RequireSafeKeys false`: keys others can read or replace are used (key-permissions and key-unsafe-directory are then warnings where OpenDKIM still loads the key) |
//! | `secret-readable` | error | opendkim.conf (or an included file) holds a database or LDAP password and every user can read it |
//! | `unit-exposure` | warning | `systemd-analyze security` scores the milter's unit above 5.0 |
//! | `unit-exposure-unchecked` | info | systemd-analyze is missing or failed; exposure not scored |
//! | `unit-hardening` | warning | the milter's unit lacks hardening directives (listed by name) |
//! | `unit-file-permissions` | error | the milter's unit file or a drop-in is writable by its group or by everyone |
//! | `key-orphaned` | warning | a private key below `key_dir` that no key of dkim.toml names (a leftover; rotation's `retired/` excepted) |
//! | `credential-missing` | error | the milter's unit loads a credential (`LoadCredential=NAME:PATH`, a key) from a file that does not exist: its next start fails (243/CREDENTIALS) |
//! | `no-unit` | info | OpenDKIM is configured but no opendkim.service was found, or the unit is masked |
//! | `no-mta` | info | no Postfix main.cf and no sendmail.mc: the MTA side was not checked |
//! | `sendmail-cf-stale` | error | sendmail.cf calls other filters than sendmail.mc (and its includes) define: it was not rebuilt; warning when it is only older than them |
//! | `two-dkim-milters` | error | sendmail.mc or sendmail.cf calls two DKIM milters (by name, or reaching the milter's socket): both sign, and with F=T mail is refused when either is down |
//! | `sendmail-filter-down` | error | live: a filter sendmail.cf calls with `F=T` or `F=R` does not answer on its socket, so sendmail refuses every message |
//! | `drift` | warning | with dkim.toml: `dkimctl apply` would create, update or change the owner or mode of this file, or create an account |
//! | `key-overdue` | warning | with dkim.toml and `[rotation] every`: an active key is older than `every` (`rotate --auto` has not rotated it) |
//! | `dns-record` | error | `--dns`: a selector's record is missing, wrong, weak or in testing mode; the severity is `dns check`'s |
//! | `dns-unavailable` | info | `--dns`: the resolver could not be set up, or a lookup failed (the audit is then incomplete) |
//! | `engine-not-running` | error | live, with dkim.toml: the engine's unit is installed but not active, or does not start at boot |
//! | `milter-not-answering` | error | live: the engine's unit is active but nothing negotiates the milter protocol on its socket |
//! | `socket-taken` | error | live: another process (named, with its unit) listens on the engine's socket |
//! | `engine-stale` | warning | live: the bundled engine serves other settings than dkim.toml's (a reload failed or never ran), or OpenDKIM's files changed after it started |
//! | `engine-replaced` | warning | live: the engine dkim.toml does not name (OpenDKIM or dkimctl) still runs or starts at boot |
//! | `reload-failed` | warning | live: a Postfix, sendmail or systemd reload failed at the last apply (apply retries it) |
//!
//! # Exit codes
//!
//! [`AuditReport::exit_code`]: 0 when no finding is at or above
//! `--fail-on` (default `error`), 1 when one is, 2 when the audit could
//! not be done (nothing to audit under the root, dkim.toml could not be
//! rendered or planned, DNS lookups failed).

pub mod breaking;
pub mod checks;
pub mod findings;
// Every fix text applied as written, then audited again (a test file, as
// engine/session/tests.rs).
#[cfg(test)]
#[path = "fixes/tests.rs"]
mod fixes;
pub mod import;
pub mod inventory;
pub mod mta;
pub mod opendkim;
pub mod sendmail;
pub mod systemd;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

pub use findings::{Finding, Origin};
pub use import::{ImportError, ImportResult, import};
pub use systemd::Analyzer;

use crate::config::Config;
use crate::config::model::{Algorithm, Domain, Key, KeyState, Mta, RecordFlags};
use crate::dns::{self, TxtResolver};
use crate::formats::opendkim::KeySource;
use crate::host::Root;
use crate::plan::{self, Action, mode_string};
use crate::render::{self, templates::Templates};
use crate::report::Severity;
use findings::id;
use inventory::{Places, System};

/// What `dkimctl audit` was asked to do beyond the checks.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// `--dns`: look up every selector found.
    pub dns: bool,
    /// `--nameserver`: ask this server instead of the system's resolvers.
    pub nameserver: Option<SocketAddr>,
    /// Timeout of each DNS query.
    pub dns_timeout: Duration,
    /// Where `systemd-analyze` is (tests pass [`Analyzer::Skip`]).
    pub systemd_analyze: Analyzer,
    /// With dkim.toml on the live root: look at the running services too
    /// ([`crate::plan::live`]; not with `--offline`).
    pub live: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            dns: false,
            nameserver: None,
            dns_timeout: Duration::from_secs(5),
            systemd_analyze: Analyzer::Auto,
            live: false,
        }
    }
}

/// The result of an audit.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditReport {
    /// Every finding, sorted by file and line.
    pub findings: Vec<Finding>,
    /// Why the audit is incomplete, if it is (exit code 2).
    pub could_not_audit: Option<String>,
}

/// `dkimctl audit`: judges the setup installed under `root`, and with a
/// `config`, how it differs from it. Never writes.
pub fn audit(root: &Root, config: Option<&Config>, opts: &AuditOptions) -> AuditReport {
    audit_with(root, config, opts, None)
}

/// [`audit`] with a resolver for `--dns` (tests pass
/// [`crate::dns::Fixed`]); `None` uses the system's or `opts.nameserver`.
pub fn audit_with(
    root: &Root,
    config: Option<&Config>,
    opts: &AuditOptions,
    resolver: Option<&dyn TxtResolver>,
) -> AuditReport {
    let places = places(config);
    let sys = System::gather(root, &places);
    let mut findings = checks::run(&sys, config, opts);
    let mut incomplete: Vec<String> = Vec::new();
    let found_something = sys.opendkim.is_some()
        || sys.unit("dkimctl.service").is_some()
        || sys.unit("opendkim.service").is_some();
    if config.is_none() && !found_something {
        incomplete.push(format!(
            "nothing to audit under {}: no readable /etc/opendkim.conf or /etc/opendkim/opendkim.conf, no opendkim.service or dkimctl.service, and no dkim.toml",
            root.dir().display()
        ));
    }
    if let Some(c) = config {
        drift(c, root, opts.live, &mut findings, &mut incomplete);
        overdue(c, root, crate::config::types::Date::today(), &mut findings);
        orphaned_keys(c, root, &mut findings);
    }
    if opts.dns {
        check_dns(&sys, config, opts, resolver, &mut findings, &mut incomplete);
    }
    findings.sort_by(|a, b| {
        (
            a.file.is_none(),
            &a.file,
            a.line,
            b.severity,
            a.id,
            &a.message,
        )
            .cmp(&(
                b.file.is_none(),
                &b.file,
                b.line,
                a.severity,
                b.id,
                &b.message,
            ))
    });
    findings.dedup();
    AuditReport {
        findings,
        could_not_audit: (!incomplete.is_empty()).then(|| incomplete.join("; ")),
    }
}

/// Where dkim.toml says the MTA's files are.
fn places(config: Option<&Config>) -> Places {
    let mut p = Places::default();
    if let Some(c) = config {
        match &c.mta {
            Mta::Postfix(pf) => {
                p.postfix_dir = Some(pf.config_dir.clone());
                p.only_mta = Some(inventory::MtaKind::Postfix);
            }
            Mta::Sendmail { mc_path } => {
                p.sendmail_mc = Some(mc_path.clone());
                p.only_mta = Some(inventory::MtaKind::Sendmail);
            }
            Mta::None => {}
        }
        p.opendkim_conf = Some(PathBuf::from("/etc/opendkim/opendkim.conf"));
    }
    p
}

/// Every change `dkimctl apply` would make, as `drift` findings.
fn drift(
    c: &Config,
    root: &Root,
    live: bool,
    findings: &mut Vec<Finding>,
    incomplete: &mut Vec<String>,
) {
    let artifacts = match render::render(c, &Templates::embedded()) {
        Ok(a) => a,
        Err(e) => {
            incomplete.push(format!("could not render dkim.toml: {e}"));
            return;
        }
    };
    let plan = match plan::plan(&artifacts, root) {
        Ok(mut p) => {
            let replaced = render::replaced_engine_artifacts(c, &Templates::embedded());
            plan::add_leftovers(&mut p, &replaced, root);
            p
        }
        Err(e) => {
            incomplete.push(format!("could not compare dkim.toml with the system: {e}"));
            return;
        }
    };
    let source = c.source.display().to_string();
    if live && root.is_live() {
        let seen = plan::live::observe(c, root, &artifacts);
        for p in plan::live::pending(c, &seen) {
            let severity = match p.id {
                plan::live::id::ENGINE_STALE
                | plan::live::id::ENGINE_REPLACED
                | plan::live::id::RELOAD_FAILED => Severity::Warning,
                _ => Severity::Error,
            };
            findings.push(Finding::new(
                p.id,
                severity,
                None,
                p.reason.clone(),
                "mail is not signed as dkim.toml says while this lasts",
                format!("dkimctl apply ({})", p.service),
            ));
        }
    }
    for line in &plan.accounts {
        findings.push(Finding::new(
            id::DRIFT,
            Severity::Warning,
            Some(&Origin::file(Path::new("/etc/passwd"))),
            format!("account missing: {line}"),
            format!("{source} asks for it"),
            "dkimctl apply",
        ));
    }
    for ch in plan.changes.iter().filter(|c| c.is_change()) {
        let path = ch.host_path();
        let what = match ch.action {
            Action::Remove => {
                "left over: rendered for the engine dkim.toml no longer uses".to_string()
            }
            Action::Create if ch.secret() => "the private key does not exist".to_string(),
            Action::Create => "does not exist".to_string(),
            Action::Update if ch.secret() => "content differs (secret)".to_string(),
            Action::Update => "content differs from what dkim.toml renders".to_string(),
            Action::Metadata | Action::Unchanged => {
                let mut parts = Vec::new();
                if let Some(o) = &ch.owner {
                    parts.push(format!(
                        "owner {} instead of {}",
                        o.from.as_deref().unwrap_or("-"),
                        o.to
                    ));
                }
                if let Some(m) = &ch.mode {
                    parts.push(format!(
                        "mode {} instead of {}",
                        m.from.map(mode_string).unwrap_or_else(|| "-".into()),
                        mode_string(m.to)
                    ));
                }
                parts.join(", ")
            }
        };
        let verb = match ch.action {
            Action::Remove => "remove it",
            Action::Create => "create it",
            Action::Update => "replace it",
            _ => "fix its owner and mode",
        };
        findings.push(Finding::new(
            id::DRIFT,
            Severity::Warning,
            Some(&Origin::file(path)),
            format!("{}: {what}", ch.action.as_str()),
            format!("the system differs from {source}"),
            format!("dkimctl plan shows the change; dkimctl apply would {verb}"),
        ));
    }
}

/// Active keys older than `[rotation] every` (the timer is not running,
/// or its runs fail).
fn overdue(
    c: &Config,
    root: &Root,
    today: crate::config::types::Date,
    findings: &mut Vec<Finding>,
) {
    let Some(every) = c.rotation.every else {
        return;
    };
    for d in c.domains.iter().filter(|d| d.key_from.is_none()) {
        for k in d.signing_keys() {
            let Some(created) = crate::rotate::key_created(root, k) else {
                continue;
            };
            let due = created.after(every);
            if due < today {
                findings.push(Finding::new(
                    id::KEY_OVERDUE,
                    Severity::Warning,
                    Some(&Origin::file(&k.path)),
                    format!(
                        "{} key {} of {} was created {created}: due for rotation since {due}",
                        k.algorithm, k.selector, d.name
                    ),
                    "[rotation] every says keys are replaced sooner; a long-lived key makes every \
                     mail it signed provable for longer",
                    "systemctl status dkimctl-rotate.timer; journalctl -u dkimctl-rotate.service; \
                     or run `dkimctl rotate --auto`",
                ));
            }
        }
    }
}

/// Private keys below key_dir that no key of dkim.toml names (in any
/// state): leftovers of an earlier setup or of a selector taken out by
/// hand. Retired keys, which rotation moves into `retired/`, are not
/// leftovers.
fn orphaned_keys(c: &Config, root: &Root, findings: &mut Vec<Finding>) {
    let named: std::collections::HashSet<&Path> = c
        .domains
        .iter()
        .flat_map(|d| d.keys.iter().map(|k| k.path.as_path()))
        .collect();
    let reader = crate::host::Reader::new(root);
    // key_dir/DOMAIN/SELECTOR.private, and keys named by path one level up
    // or down from there.
    let mut dirs = vec![(c.service.key_dir.clone(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        for name in reader.list_dir(&dir) {
            let path = dir.join(&name);
            let Ok(meta) = reader.metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth < 2 && name != "retired" {
                    dirs.push((path, depth + 1));
                }
            } else if meta.is_file()
                && name.ends_with(".private")
                && !named.contains(path.as_path())
            {
                findings.push(Finding::new(
                    id::KEY_ORPHANED,
                    Severity::Warning,
                    Some(&Origin::file(&path)),
                    format!("{} is a private key that no key of dkim.toml names", path.display()),
                    "a secret kept for nothing, left by an earlier setup or a selector taken out                      by hand; while its record is published, it can still sign for the domain",
                    format!(
                        "if its selector should sign, add it to dkim.toml; otherwise revoke its                          record (p=) and delete it: shred -u {}",
                        path.display()
                    ),
                ));
            }
        }
    }
}

/// `--dns`: every selector of dkim.toml, or of the KeyTable, looked up
/// and judged as `dkimctl dns check` does.
fn check_dns(
    sys: &System,
    config: Option<&Config>,
    opts: &AuditOptions,
    resolver: Option<&dyn TxtResolver>,
    findings: &mut Vec<Finding>,
    incomplete: &mut Vec<String>,
) {
    let live;
    let resolver: &dyn TxtResolver = match resolver {
        Some(r) => r,
        None => match dns::Live::new(opts.nameserver, opts.dns_timeout) {
            Ok(l) => {
                live = l;
                &live
            }
            Err(e) => {
                findings.push(Finding::new(
                    id::DNS_UNAVAILABLE,
                    Severity::Info,
                    None,
                    format!("the DNS check could not start: {e}"),
                    "no selector was looked up",
                    "name a server with --nameserver IP:PORT",
                ));
                incomplete.push(format!("DNS check could not start: {e}"));
                return;
            }
        },
    };
    let root = sys.reader.root();
    let mut private = dns::PrivateKeys::new(root);
    let mut checked: Vec<(dns::SelectorFinding, Option<Origin>)> = Vec::new();
    if let Some(c) = config {
        for d in &c.domains {
            for k in &d.keys {
                let f = dns::check_key(resolver, &mut private, d, k);
                checked.push((f, Some(Origin::file(&c.source))));
            }
        }
    } else if let Some(od) = &sys.opendkim {
        for k in &od.keys {
            let KeySource::File(path) = &k.key else {
                continue;
            };
            if k.domain == "%" {
                continue;
            }
            let algorithm = sys
                .reader
                .resolve(path)
                .ok()
                .and_then(|real| crate::keys::load_private_key(&real).ok())
                .map(|l| l.algorithm)
                .unwrap_or(Algorithm::RsaSha256);
            let key = Key {
                selector: k.selector.clone(),
                algorithm,
                path: path.clone(),
                rsa_bits: 2048,
                state: KeyState::Active,
                created: None,
                retire_after: None,
                owner_domain: k.domain.clone(),
            };
            let domain = Domain {
                name: k.domain.clone(),
                subdomains: false,
                algorithms: vec![algorithm],
                keys: vec![key.clone()],
                key_from: None,
                record: RecordFlags::default(),
            };
            let f = dns::check_key(resolver, &mut private, &domain, &key);
            checked.push((f, Some(k.at.clone())));
        }
    }
    let mut failed = Vec::new();
    for (f, at) in checked {
        let severity = match f.severity {
            dns::Severity::Ok => continue,
            dns::Severity::Info => Severity::Info,
            dns::Severity::Warning => Severity::Warning,
            dns::Severity::Error => Severity::Error,
        };
        if f.status == dns::Status::DnsError {
            failed.push(f.name.clone());
            findings.push(Finding::new(
                id::DNS_UNAVAILABLE,
                Severity::Info,
                at.as_ref(),
                format!("{}: {}", f.name, f.message),
                "the record could not be checked",
                f.fix.clone().unwrap_or_default(),
            ));
            continue;
        }
        let mut why = f.detail.join("; ");
        if why.is_empty() {
            why = "receivers look the key up under this name".into();
        }
        findings.push(Finding::new(
            id::DNS_RECORD,
            severity,
            at.as_ref(),
            format!("{}: {}: {}", f.name, f.status.as_str(), f.message),
            why,
            f.fix.clone().unwrap_or_default(),
        ));
    }
    if !failed.is_empty() {
        incomplete.push(format!("DNS lookups failed for {}", failed.join(", ")));
    }
}

impl AuditReport {
    /// Number of findings of a severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The ids of the findings, in report order (tests assert on them).
    pub fn ids(&self) -> Vec<&'static str> {
        self.findings.iter().map(|f| f.id).collect()
    }

    /// 2 when the audit could not be done, 1 when a finding is at or
    /// above `fail_on`, else 0.
    pub fn exit_code(&self, fail_on: Severity) -> i32 {
        let worst = self.findings.iter().map(|f| f.severity).max();
        crate::report::exit_code(self.could_not_audit.is_some(), worst, fail_on)
    }

    /// Human output: `FILE:LINE: SEVERITY [ID]: message`, then `why` and
    /// `fix` indented, then a summary line.
    pub fn print(&self, out: &mut dyn Write, color: bool) -> io::Result<()> {
        for f in &self.findings {
            let sev = f.severity.colored(color);
            match f.place() {
                Some(p) => writeln!(out, "{p}: {sev} [{}]: {}", f.id, f.message)?,
                None => writeln!(out, "{sev} [{}]: {}", f.id, f.message)?,
            }
            if !f.why.is_empty() {
                writeln!(out, "    why: {}", f.why)?;
            }
            if !f.fix.is_empty() {
                for (i, l) in f.fix.lines().enumerate() {
                    let lead = if i == 0 { "    fix: " } else { "         " };
                    writeln!(out, "{lead}{l}")?;
                }
            }
        }
        let plural = |n: usize, w: &str| {
            if n == 1 {
                format!("{n} {w}")
            } else {
                format!("{n} {w}s")
            }
        };
        writeln!(
            out,
            "Audit: {}, {}, {}.",
            plural(self.count(Severity::Error), "error"),
            plural(self.count(Severity::Warning), "warning"),
            plural(self.count(Severity::Info), "info")
        )?;
        if let Some(why) = &self.could_not_audit {
            writeln!(out, "audit incomplete: {why}")?;
        }
        Ok(())
    }

    /// The JSON form: `{"findings": [{id, severity, file, line, message,
    /// why, fix}], "summary": {"error", "warning", "info"},
    /// "could_not_audit": null | "reason"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "findings": self.findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
            "summary": {
                "error": self.count(Severity::Error),
                "warning": self.count(Severity::Warning),
                "info": self.count(Severity::Info),
            },
            "could_not_audit": self.could_not_audit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use crate::dns::{Fixed, LookupErrorKind};

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// A root with an OpenDKIM KeyTable of two domains; returns the TXT
    /// value of example.com's key.
    fn two_domains(dir: &Path) -> String {
        write(
            dir,
            "etc/opendkim/opendkim.conf",
            "UserID opendkim\nSocket local:/run/opendkim/opendkim.sock\n\
             KeyTable /etc/opendkim/KeyTable\nSigningTable refile:/etc/opendkim/SigningTable\n",
        );
        write(
            dir,
            "etc/opendkim/KeyTable",
            "s1._domainkey.example.com example.com:s1:/etc/opendkim/keys/s1.private\n\
             s1._domainkey.example.net example.net:s1:/etc/opendkim/keys/s1.private\n",
        );
        write(
            dir,
            "etc/opendkim/SigningTable",
            "*@example.com s1._domainkey.example.com\n*@example.net s1._domainkey.example.net\n",
        );
        let pair = crate::keys::generate(Algorithm::RsaSha256, 2048).unwrap();
        std::fs::create_dir_all(dir.join("etc/opendkim/keys")).unwrap();
        crate::keys::tests::write_test_key(
            &dir.join("etc/opendkim/keys/s1.private"),
            &pair.private_pem,
            0o600,
        );
        crate::keys::record_value(Algorithm::RsaSha256, &pair.public, RecordFlags::default())
    }

    fn opts(dns: bool) -> AuditOptions {
        AuditOptions {
            dns,
            systemd_analyze: Analyzer::Skip,
            ..AuditOptions::default()
        }
    }

    #[test]
    fn dns_checks_every_keytable_selector() {
        let dir = tempfile::tempdir().unwrap();
        let value = two_domains(dir.path());
        let fixed = Fixed::new().record(
            "s1._domainkey.example.com",
            &crate::keys::character_strings(&value),
        );
        let root = Root::new(dir.path());
        let report = audit_with(&root, None, &opts(true), Some(&fixed));
        let dns: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.id == id::DNS_RECORD)
            .collect();
        assert_eq!(dns.len(), 1, "{:#?}", report.findings);
        assert!(
            dns[0]
                .message
                .starts_with("s1._domainkey.example.net: missing")
        );
        assert_eq!(
            dns[0].file.as_deref(),
            Some(Path::new("/etc/opendkim/KeyTable"))
        );
        assert_eq!(dns[0].line, Some(2));
        assert_eq!(dns[0].severity, Severity::Error);
        assert!(report.could_not_audit.is_none());

        // Without --dns, nothing is looked up.
        let report = audit_with(&root, None, &opts(false), Some(&fixed));
        assert!(!report.ids().contains(&id::DNS_RECORD));
    }

    #[test]
    fn a_failed_lookup_makes_the_audit_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        two_domains(dir.path());
        let fixed = Fixed::new()
            .fail("s1._domainkey.example.com", LookupErrorKind::Timeout)
            .fail("s1._domainkey.example.net", LookupErrorKind::Timeout);
        let report = audit_with(&Root::new(dir.path()), None, &opts(true), Some(&fixed));
        assert!(report.ids().contains(&id::DNS_UNAVAILABLE));
        assert_eq!(report.exit_code(Severity::Error), 2);
        assert!(
            report
                .could_not_audit
                .as_deref()
                .unwrap()
                .contains("s1._domainkey.example.com")
        );
    }

    #[test]
    fn a_key_no_key_of_dkim_toml_names_is_orphaned() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\nopendkim:x:971:971::/:/bin/false\n",
        );
        write(dir.path(), "etc/group", "root:x:0:\nopendkim:x:971:\n");
        for key in [
            "etc/opendkim/keys/example.com/s1.private",
            "etc/opendkim/keys/example.com/old.private",
            "etc/opendkim/keys/example.com/retired/s0.private",
            "etc/opendkim/keys/stray.private",
        ] {
            write(dir.path(), key, "not read");
        }
        let root = Root::new(dir.path());
        let text = "[service]\nengine = \"opendkim\"\n[[domain]]\nname = \"example.com\"\nselector = \"s1\"\n[mta]\nkind = \"none\"\n";
        let config = crate::config::parse(text, &Source::resolve(&root, None))
            .config
            .expect("valid");
        let report = audit(&root, Some(&config), &opts(false));
        let mut orphaned: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.id == id::KEY_ORPHANED)
            .map(|f| f.file.as_ref().unwrap().display().to_string())
            .collect();
        orphaned.sort();
        assert_eq!(
            orphaned,
            [
                "/etc/opendkim/keys/example.com/old.private",
                "/etc/opendkim/keys/stray.private"
            ]
        );
    }

    #[test]
    fn drift_names_every_pending_change() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\nopendkim:x:971:971::/:/bin/false\n",
        );
        write(dir.path(), "etc/group", "root:x:0:\nopendkim:x:971:\n");
        let root = Root::new(dir.path());
        let text = "[service]\nengine = \"opendkim\"\n[[domain]]\nname = \"example.com\"\nselector = \"s1\"\n[mta]\nkind = \"none\"\n";
        let loaded = crate::config::parse(text, &Source::resolve(&root, None));
        let config = loaded.config.expect("valid");
        let report = audit(&root, Some(&config), &opts(false));
        let drift: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.id == id::DRIFT)
            .collect();
        let files: Vec<String> = drift
            .iter()
            .filter_map(|f| f.file.as_ref().map(|p| p.display().to_string()))
            .collect();
        assert!(
            files.contains(&"/etc/opendkim/opendkim.conf".to_string()),
            "{files:?}"
        );
        assert!(
            files.contains(&"/etc/opendkim/keys/example.com/s1.private".to_string()),
            "{files:?}"
        );
        let key = drift
            .iter()
            .find(|f| {
                f.file.as_deref() == Some(Path::new("/etc/opendkim/keys/example.com/s1.private"))
            })
            .unwrap();
        assert!(
            key.message.contains("private key does not exist"),
            "{}",
            key.message
        );
        assert!(
            report.could_not_audit.is_none(),
            "{:?}",
            report.could_not_audit
        );
        assert_eq!(report.exit_code(Severity::Warning), 1);
    }

    #[test]
    fn nothing_under_the_root_cannot_be_audited() {
        let dir = tempfile::tempdir().unwrap();
        let report = audit(&Root::new(dir.path()), None, &opts(false));
        assert_eq!(report.exit_code(Severity::Error), 2);
        let mut out = Vec::new();
        report.print(&mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("audit incomplete: nothing to audit"),
            "{text}"
        );
        assert_eq!(
            report.to_json()["could_not_audit"],
            report.could_not_audit.clone().unwrap()
        );
    }

    #[test]
    fn an_unreadable_configuration_is_a_finding_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/opendkim/opendkim.conf")).unwrap();
        let report = audit(&Root::new(dir.path()), None, &opts(false));
        let f = report
            .findings
            .iter()
            .find(|f| f.id == id::UNREADABLE_FILE)
            .expect("finding");
        assert_eq!(
            f.file.as_deref(),
            Some(Path::new("/etc/opendkim/opendkim.conf"))
        );
        assert_eq!(report.exit_code(Severity::Error), 2);
    }

    // See: issue 13, defect 10: the docs said `warning`.
    #[test]
    fn fail_on_defaults_to_error_in_the_code_the_help_and_the_docs() {
        use clap::{CommandFactory, Parser};
        let cli = crate::cli::Cli::try_parse_from(["dkimctl", "audit"]).unwrap();
        let crate::cli::Command::Audit { fail_on, .. } = cli.command else {
            panic!("not audit");
        };
        assert!(matches!(fail_on, crate::cli::FailOn::Error));
        let mut cmd = crate::cli::Cli::command();
        let help = cmd
            .find_subcommand_mut("audit")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(help.contains("[default: error]"), "{help}");
        assert!(include_str!("mod.rs").contains("`--fail-on` (default `error`)"));
    }

    #[test]
    fn printed_findings_lead_with_file_and_line() {
        let report = AuditReport {
            findings: vec![Finding::new(
                id::TCP_SOCKET,
                Severity::Warning,
                Some(&Origin::line(Path::new("/etc/opendkim.conf"), 4)),
                "a",
                "b",
                "c\nd",
            )],
            could_not_audit: None,
        };
        let mut out = Vec::new();
        report.print(&mut out, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "/etc/opendkim.conf:4: warning [tcp-socket]: a\n    why: b\n    fix: c\n         d\n\
             Audit: 0 errors, 1 warning, 0 infos.\n"
        );
        assert_eq!(report.exit_code(Severity::Error), 0);
        assert_eq!(report.exit_code(Severity::Warning), 1);
    }
}
