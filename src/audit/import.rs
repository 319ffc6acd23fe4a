//! `dkimctl import`: the installed OpenDKIM setup written as `dkim.toml`.
//!
//! The same snapshot the audit reads ([`super::inventory`]) is mapped onto
//! the dkim.toml model: the service (user, group, socket, umask, mode),
//! signing defaults, trusted hosts, one `[[domain]]` per signing domain
//! with its selector and key file, and the Postfix services that call the
//! milter.
//!
//! # The adoption invariant
//!
//! After `import` and `apply`, the same messages from the same clients are
//! signed with the same `d=` and `s=` as before, or import refuses:
//!
//! - A setup OpenDKIM would not start with (an unknown parameter, a bad
//!   value, a file it names missing), and data dkim.toml cannot hold
//!   (keys or rules in a database, LDAP or a Lua script), are refused
//!   ([`ImportError::Refused`]), whatever the flags.
//! - Every line that is not carried over is named, as a `# not carried
//!   over:` comment in the text, on standard error, and in `dkimctl plan`'s
//!   summary (which reads the comments back, [`not_carried_over`]). When
//!   leaving it out changes what is signed, the note says how ("signing
//!   for mail from 10.0.0.0/8 stops") and import refuses
//!   ([`ImportError::Lossy`]) unless `--lossy` is given.
//!
//! The output always passes `dkimctl check` without errors: a value that
//! dkim.toml would refuse (a root user, a socket a chrooted Postfix cannot
//! see) is left out with a note, and dkimctl's hardened default takes its
//! place.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::checks::{Reach, reach, run_as};
use super::findings::id;
use super::inventory::{OpenDkim, Places, System};
use super::mta::{self, Chroot};
use crate::config::model::{Algorithm, Canon, HostPattern, Socket};
use crate::config::types::is_account_name;
use crate::config::validate::{
    DEFAULT_SIGN_HEADERS, default_key_path, is_selector, normalize_domain, parse_canonicalization,
    parse_host_pattern, parse_socket,
};
use crate::formats::opendkim::{self, Dataset, Host, KeySource};
use crate::formats::postfix::{entry_parts, milter_entries};
use crate::host::Root;

/// A `dkim.toml` describing the installed setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportResult {
    /// The file's text.
    pub toml: String,
    /// Every setting that was not carried over, and why (also in the text
    /// as `# not carried over:` comments).
    pub notes: Vec<Note>,
}

/// A line of the old setup that is not carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// What it is, where, and why it is left out.
    pub text: String,
    /// How leaving it out changes what is signed ("signing for mail from
    /// 10.0.0.0/8 stops"); `None` when it does not.
    pub effect: Option<String>,
}

impl Note {
    /// True when leaving the line out changes what is signed.
    pub fn is_loss(&self) -> bool {
        self.effect.is_some()
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.effect {
            Some(e) => write!(f, "{} ({e})", self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// The comment that marks a line of the old setup left out.
pub const NOT_CARRIED_OVER: &str = "# not carried over: ";

/// The notes an imported dkim.toml still carries (its `# not carried
/// over:` comments), for `dkimctl plan`'s summary.
pub fn not_carried_over(toml: &str) -> Vec<String> {
    toml.lines()
        .filter_map(|l| l.trim_start().strip_prefix(NOT_CARRIED_OVER))
        .map(|n| n.trim().to_string())
        .collect()
}

/// Why nothing was imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// No OpenDKIM configuration under the root.
    NotFound {
        /// The root searched.
        root: PathBuf,
    },
    /// The configuration exists but cannot be read.
    Unreadable {
        /// What went wrong (names the file).
        message: String,
    },
    /// The setup cannot be adopted: OpenDKIM would not start with it, or
    /// it keeps keys or rules where dkim.toml cannot follow.
    Refused {
        /// Each reason, with the place it comes from.
        reasons: Vec<String>,
    },
    /// Adopting the setup would change what is signed; `--lossy` writes
    /// the dkim.toml anyway.
    Lossy {
        /// Each line left out that changes signing.
        losses: Vec<Note>,
    },
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::NotFound { root } => write!(
                f,
                "no OpenDKIM configuration under {} (looked for the -x file of opendkim.service, /etc/opendkim.conf and /etc/opendkim/opendkim.conf)",
                root.display()
            ),
            ImportError::Unreadable { message } => write!(f, "{message}"),
            ImportError::Refused { reasons } => {
                write!(f, "this setup cannot be adopted: {}", reasons.join("; "))
            }
            ImportError::Lossy { losses } => {
                let l: Vec<String> = losses.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "adopting this setup would change what is signed (--lossy writes it anyway): {}",
                    l.join("; ")
                )
            }
        }
    }
}

impl std::error::Error for ImportError {}

/// Settings dkimctl's rendered opendkim.conf sets itself; they are listed
/// in one note rather than one each.
const RENDERED: &[&str] = &[
    "Syslog",
    "SyslogSuccess",
    "LogWhy",
    "Background",
    "BaseDirectory",
    "TemporaryDirectory",
    "PidFile",
    "MultipleSignatures",
];

/// Settings that decide whether or how a message is signed and that
/// dkim.toml has no form for: leaving them out changes what is signed.
const DECIDES_SIGNING: &[(&str, &str)] = &[
    (
        "DontSignMailTo",
        "mail to these recipients is signed from now on",
    ),
    (
        "MacroList",
        "signing for mail selected by these MTA macros stops",
    ),
    (
        "PeerList",
        "mail from these peers is signed or verified from now on",
    ),
    (
        "SenderHeaders",
        "another header decides the signing domain from now on",
    ),
];

/// Policy scripts that decide signing in Lua: refused, like databases.
const LUA_SCRIPTS: &[&str] = &[
    "SetupPolicyScript",
    "ScreenPolicyScript",
    "StatisticsPolicyScript",
    "FinalPolicyScript",
];

/// Settings the import carries into dkim.toml.
const CARRIED: &[&str] = &[
    "Socket",
    "UMask",
    "Mode",
    "Canonicalization",
    "SignHeaders",
    "OversignHeaders",
    "KeyTable",
    "SigningTable",
    "InternalHosts",
    "ExternalIgnoreList",
    "Domain",
    "Selector",
    "KeyFile",
    "SubDomains",
    "AuthservID",
    "SignatureTTL",
    "SignatureAlgorithm",
    "Nameservers",
    "MTA",
    "UserID",
    "RequireSafeKeys",
];

/// `dkimctl import`: reads the OpenDKIM setup under `root` and writes the
/// equivalent dkim.toml, or refuses (see the module docs); with `lossy`,
/// lines whose loss changes signing are left out with a note instead.
/// Never writes to the filesystem.
pub fn import(root: &Root, lossy: bool) -> Result<ImportResult, ImportError> {
    let sys = System::gather(root, &Places::default());
    let Some(od) = &sys.opendkim else {
        if let Some(f) = sys
            .findings
            .iter()
            .find(|f| f.id == id::UNREADABLE_FILE || f.id == id::MISSING_FILE)
        {
            return Err(ImportError::Unreadable {
                message: f.message.clone(),
            });
        }
        return Err(ImportError::NotFound {
            root: root.dir().to_path_buf(),
        });
    };
    let mut w = Writer::default();
    w.import(&sys, od);
    if !w.refusals.is_empty() {
        return Err(ImportError::Refused {
            reasons: w.refusals,
        });
    }
    let result = w.finish(od);
    // The promise is a dkim.toml that passes `dkimctl check`: a value the
    // writer carried over that the rendered files cannot hold is refused
    // here, named, rather than written (found by the opendkim_conf fuzz
    // target).
    let invalid = invalid_output(&result.toml);
    if !invalid.is_empty() {
        return Err(ImportError::Refused { reasons: invalid });
    }
    let losses: Vec<Note> = result
        .notes
        .iter()
        .filter(|n| n.is_loss())
        .cloned()
        .collect();
    if !losses.is_empty() && !lossy {
        return Err(ImportError::Lossy { losses });
    }
    Ok(result)
}

/// The errors `dkimctl check` would report for the imported dkim.toml, as
/// reasons (the file's own checks only: accounts and key files are the
/// host's, and apply creates what is missing).
fn invalid_output(toml: &str) -> Vec<String> {
    let source = crate::config::Source {
        real: PathBuf::from("/etc/dkimctl/dkim.toml"),
        host: PathBuf::from("/etc/dkimctl/dkim.toml"),
        display: "dkim.toml".into(),
    };
    crate::config::parse(toml, &source)
        .diags
        .iter()
        .filter(|d| d.severity == crate::report::Severity::Error)
        .map(|d| match d.line {
            0 => format!(
                "the dkim.toml it would write does not pass check: {}",
                d.message
            ),
            line => format!(
                "the dkim.toml it would write does not pass check ({line}:{}): {}",
                d.col, d.message
            ),
        })
        .collect()
}

/// One key of a domain being built.
#[derive(Debug, Clone)]
struct ImportedKey {
    selector: String,
    path: PathBuf,
    algorithm: Algorithm,
    pending: bool,
}

/// One domain being built.
#[derive(Debug, Clone, Default)]
struct ImportedDomain {
    name: String,
    subdomains: bool,
    keys: Vec<ImportedKey>,
    key_from: Option<String>,
    notes: Vec<Note>,
}

#[derive(Default)]
struct Writer {
    service: Vec<String>,
    defaults: Vec<String>,
    trusted: Vec<String>,
    engine: Vec<String>,
    mta: Vec<String>,
    general: Vec<String>,
    domains: Vec<ImportedDomain>,
    notes: Vec<Note>,
    /// Why the setup cannot be adopted at all.
    refusals: Vec<String>,
}

/// A TOML basic string.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", parts.join(", "))
}

/// A setting's value as notes show it: not a password, not a database
/// address (which holds one).
fn shown(s: &opendkim::Setting) -> String {
    if s.name.to_ascii_lowercase().contains("password") || s.value.contains("://") {
        "(value not shown)".into()
    } else {
        s.value.clone()
    }
}

/// A value from the admin's files, quoted and cut to its first 50
/// characters when longer.
fn cut(s: &str) -> String {
    let n = s.chars().count();
    if n <= 60 {
        format!("\"{s}\"")
    } else {
        let head: String = s.chars().take(50).collect();
        format!("\"{head}…\" ({n} characters)")
    }
}

/// Text from the admin's files, safe inside a `#` comment line.
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Writer {
    /// Records a line left out that does not change signing.
    fn note(&mut self, section: Section, text: String) {
        self.record(section, text, None);
    }

    /// Records a line left out whose loss changes signing (`effect`).
    fn loss(&mut self, section: Section, text: String, effect: String) {
        self.record(section, text, Some(effect));
    }

    fn record(&mut self, section: Section, text: String, effect: Option<String>) {
        let note = Note {
            text: comment_text(&text),
            effect: effect.map(|e| comment_text(&e)),
        };
        let line = format!("{NOT_CARRIED_OVER}{note}");
        match section {
            Section::Service => self.service.push(line),
            Section::Defaults => self.defaults.push(line),
            Section::Trusted => self.trusted.push(line),
            Section::Engine => self.engine.push(line),
            Section::Mta => self.mta.push(line),
            Section::General => self.general.push(line),
        }
        self.notes.push(note);
    }

    /// Records why the setup cannot be adopted.
    fn refuse(&mut self, reason: String) {
        let reason = comment_text(&reason);
        if !self.refusals.contains(&reason) {
            self.refusals.push(reason);
        }
    }

    fn import(&mut self, sys: &System, od: &OpenDkim) {
        if let Some(u) = sys.unit("opendkim.service") {
            self.general.push(format!(
                "# {} is replaced by the hardened unit dkimctl renders in /etc/systemd/system",
                comment_text(&u.fragment.display().to_string())
            ));
        }
        self.unparsed(sys, od);
        let chroot = self.mta(sys, od);
        self.service(sys, od, chroot);
        self.defaults(sys, od);
        self.trusted(od);
        self.domains(sys, od);
        self.other_settings(od);
        // Judged from the mode actually written: an unknown Mode falls back
        // to sign+verify, which also needs a domain.
        let _ = od;
        let signs = self
            .service
            .iter()
            .any(|l| l == "mode = \"sign+verify\"" || l == "mode = \"sign\"");
        if signs && self.domains.is_empty() {
            // dkim.toml refuses a signing service without domains.
            let at = self.service.iter().position(|l| l.starts_with("mode ="));
            if let Some(i) = at {
                self.service[i] = "mode = \"verify\"".into();
            }
            self.note(
                Section::Service,
                "OpenDKIM may sign (Mode s) but no domain with a usable key was found: imported as mode = \"verify\"".into(),
            );
        }
    }

    /// Lines OpenDKIM would reject (it does not start: refused), table
    /// lines that did not parse (OpenDKIM does not use them: noted), and
    /// datasets kept where dkim.toml cannot follow.
    fn unparsed(&mut self, sys: &System, od: &OpenDkim) {
        let mut conf_files: Vec<&Path> = od.settings.iter().map(|s| s.at.file.as_path()).collect();
        conf_files.push(&od.conf_path);
        for f in &sys.findings {
            let place = f.place().unwrap_or_default();
            let in_conf = f.file.as_deref().is_some_and(|p| conf_files.contains(&p));
            match f.id {
                id::UNKNOWN_OPTION | id::OPTION_VALUE => self.refuse(format!(
                    "OpenDKIM does not start with this configuration: {place}: {}",
                    f.message
                )),
                id::UNREADABLE_FILE | id::MISSING_FILE if in_conf => self.refuse(format!(
                    "OpenDKIM does not start with this configuration: {place}: {}",
                    f.message
                )),
                // A host entry that never matches is noted by the host list
                // itself; lines that do not parse are noted here.
                id::TABLE_SYNTAX if f.severity < crate::report::Severity::Error => {}
                id::TABLE_SYNTAX | id::UNREADABLE_FILE | id::MISSING_FILE => {
                    self.note(Section::General, format!("{place}: {}", f.message))
                }
                _ => {}
            }
        }
        for s in &od.settings {
            if LUA_SCRIPTS.contains(&s.name) {
                self.refuse(format!(
                    "{} ({}) decides signing in a Lua script, which dkim.toml cannot follow; keep this OpenDKIM setup as it is",
                    s.name, s.at
                ));
                continue;
            }
            let Some((Dataset::Other(kind), at)) = od.dataset(s.name).filter(|_| {
                opendkim::known_option(s.name).is_some_and(|(_, k)| k == opendkim::Kind::Dataset)
            }) else {
                continue;
            };
            if at != s.at {
                continue;
            }
            let holds = match s.name {
                "KeyTable" => "the keys",
                "SigningTable" => "the signing rules",
                "InternalHosts" | "ExternalIgnoreList" | "PeerList" => "the hosts",
                "Domain" | "MTA" | "MacroList" | "DontSignMailTo" => "who is signed for",
                _ => {
                    self.note(
                        Section::General,
                        format!(
                            "{} ({at}) is a {kind}: dataset, which dkim.toml has no form for",
                            s.name
                        ),
                    );
                    continue;
                }
            };
            // The value is not repeated: a dsn: holds a database password.
            self.refuse(format!(
                "{} ({at}) keeps {holds} in a {kind}: dataset (a database, LDAP or script), which dkim.toml cannot hold; keep this OpenDKIM setup as it is, or move them into files (KeyTable file:, SigningTable refile:) and import again",
                s.name
            ));
        }
    }

    /// `[mta]`; returns whether Postfix runs the milter's services
    /// chrooted.
    fn mta(&mut self, sys: &System, od: &OpenDkim) -> bool {
        let ours = od.socket().and_then(|(t, _)| parse_socket(&t).ok());
        if let Some(pf) = &sys.postfix {
            self.mta.push("kind = \"postfix\"".into());
            let queue = pf.queue_directory();
            if queue != Path::new(mta::DEFAULT_QUEUE_DIRECTORY) {
                self.mta.push(format!(
                    "queue_directory = {}",
                    q(&queue.display().to_string())
                ));
            }
            let smtpds = pf.services_running("smtpd");
            let chroots: Vec<Chroot> = smtpds.iter().map(|s| pf.chroot_of(s, sys.debian)).collect();
            let chroot = if pf.master.is_none() {
                sys.debian || pf.looks_debian()
            } else {
                chroots.contains(&Chroot::Yes)
            };
            if !chroot && chroots.contains(&Chroot::Default) {
                self.mta.push(
                    "# master.cf says `-` (the compiled-in default): `n` upstream since Postfix 3.0"
                        .into(),
                );
            }
            self.mta.push(format!("chroot = {chroot}"));
            let c = if chroot { Chroot::Yes } else { Chroot::No };
            let reaches = |value: &str| {
                let Some(ours) = &ours else { return false };
                milter_entries(&pf.expand(value)).iter().any(|e| {
                    let (addr, _) = entry_parts(e);
                    matches!(
                        reach(ours, &addr, c, &queue),
                        Reach::Yes | Reach::OutsideChroot | Reach::ChrootPath
                    )
                })
            };
            let mut services: Vec<String> = Vec::new();
            if pf.param("smtpd_milters").is_some_and(|p| reaches(&p.value)) {
                services.push("smtpd".into());
            }
            if pf
                .param("non_smtpd_milters")
                .is_some_and(|p| reaches(&p.value))
            {
                services.push("non_smtpd".into());
            }
            for svc in pf.master.iter().flatten() {
                let valid = svc
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:[]".contains(&b));
                if svc
                    .overrides
                    .iter()
                    .any(|o| o.name == "smtpd_milters" && reaches(&o.value))
                    && valid
                    && !services.contains(&svc.name)
                {
                    services.push(svc.name.clone());
                }
            }
            if services.is_empty() {
                self.note(
                    Section::Mta,
                    "Postfix's milter lists do not reach the milter's socket: dkimctl will add it to smtpd_milters and non_smtpd_milters".into(),
                );
            } else {
                self.mta.push(format!("services = {}", list(&services)));
            }
            if let Some(p) = pf.param("milter_default_action") {
                let v = pf.expand(&p.value);
                match v.trim() {
                    a @ ("accept" | "tempfail" | "reject") => {
                        self.mta.push(format!("default_action = {}", q(a)))
                    }
                    other => self.note(
                        Section::Mta,
                        format!(
                            "milter_default_action = {other} ({}): dkimctl takes accept, tempfail or reject",
                            pf.main_at(p)
                        ),
                    ),
                }
            }
            return chroot;
        }
        if sys.sendmail.is_some() {
            self.mta.push("kind = \"sendmail\"".into());
            return false;
        }
        self.mta.push("kind = \"none\"".into());
        false
    }

    fn service(&mut self, sys: &System, od: &OpenDkim, chroot: bool) {
        self.service.push("engine = \"opendkim\"".into());
        let unit = sys.unit("opendkim.service");
        let (user, group) = run_as(od, unit);
        match user {
            Some((u, _)) if u != "root" && u != "0" && is_account_name(&u) => {
                self.service.push(format!("user = {}", q(&u)))
            }
            Some((u, at)) => self.note(
                Section::Service,
                format!(
                    "the user {u} ({at}): dkimctl runs OpenDKIM as its own system user, opendkim"
                ),
            ),
            None => self.note(
                Section::Service,
                "OpenDKIM ran as root (no UserID, no User=): dkimctl runs it as opendkim".into(),
            ),
        }
        if let Some(g) = group {
            if is_account_name(&g) && g != "root" {
                self.service.push(format!("group = {}", q(&g)));
            } else {
                self.note(Section::Service, format!("the group {g}"));
            }
        }
        match od.socket() {
            None => self.note(
                Section::Service,
                "no Socket was configured: dkimctl's default is used".into(),
            ),
            Some((text, at)) => match parse_socket(&text) {
                Err(why) => self.note(Section::Service, format!("Socket {text} ({at}): {why}")),
                Ok(Socket::Inet { host, .. }) => {
                    self.service.push(format!("socket = {}", q(&text)));
                    let loopback = host.eq_ignore_ascii_case("localhost")
                        || host
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback());
                    if !loopback {
                        self.service.push(
                            "# OpenDKIM listened on a non-loopback address; dkimctl asks for this to be explicit"
                                .into(),
                        );
                        self.service.push("allow_remote_socket = true".into());
                    }
                }
                Ok(Socket::Unix(path)) => {
                    let queue = sys
                        .postfix
                        .as_ref()
                        .map(|p| p.queue_directory())
                        .unwrap_or_else(|| PathBuf::from(mta::DEFAULT_QUEUE_DIRECTORY));
                    let bad = if path.as_os_str().len() >= 108 {
                        Some("the path is longer than a socket address holds".to_string())
                    } else if path.starts_with("/tmp") || path.starts_with("/var/tmp") {
                        Some("it lies in a world-writable directory".to_string())
                    } else if path.parent().is_none_or(|p| p == Path::new("/")) {
                        Some("the socket needs a directory of its own".to_string())
                    } else if chroot && sys.postfix.is_some() && !path.starts_with(&queue) {
                        Some(format!(
                            "Postfix runs chrooted in {} and cannot see it; dkimctl's default socket under the queue directory is used",
                            queue.display()
                        ))
                    } else {
                        None
                    };
                    match bad {
                        Some(why) => {
                            self.note(Section::Service, format!("Socket {text} ({at}): {why}"))
                        }
                        None => self.service.push(format!("socket = {}", q(&text))),
                    }
                }
            },
        }
        if let Some(s) = od.get("UMask") {
            match opendkim::parse_c_int(&s.value) {
                Some(u) if (0..=0o777).contains(&u) && u & 0o600 == 0 => self
                    .service
                    .push(format!("umask = {}", q(&format!("{u:03o}")))),
                _ => self.note(
                    Section::Service,
                    format!(
                        "UMask {} ({}): it would keep OpenDKIM from its own socket",
                        s.value, s.at
                    ),
                ),
            }
        }
        let mode = od.get("Mode").map(|m| m.value.to_ascii_lowercase());
        let word = match mode.as_deref() {
            None => Some("sign+verify"),
            Some(m) if m.chars().all(|c| c == 's' || c == 'v') => {
                match (m.contains('s'), m.contains('v')) {
                    (true, true) => Some("sign+verify"),
                    (true, false) => Some("sign"),
                    (false, true) => Some("verify"),
                    (false, false) => None,
                }
            }
            Some(_) => None,
        };
        match word {
            Some(w) => self.service.push(format!("mode = {}", q(w))),
            None => {
                let s = od.get("Mode").map(|s| s.at.to_string()).unwrap_or_default();
                self.note(
                    Section::Service,
                    format!(
                        "Mode {} ({s}): only s and v are understood",
                        mode.unwrap_or_default()
                    ),
                );
                self.service.push("mode = \"sign+verify\"".into());
            }
        }
        if let Some(s) = od.get("AuthservID") {
            let ok = s.value != "HOSTNAME"
                && s.value.len() <= 255
                && s.value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
            if ok {
                self.service.push(format!("authserv_id = {}", q(&s.value)));
            } else {
                self.note(
                    Section::Service,
                    format!(
                        "AuthservID {} ({}): dkimctl uses the host name when unset",
                        s.value, s.at
                    ),
                );
            }
        }
    }

    fn defaults(&mut self, sys: &System, od: &OpenDkim) {
        match od.get("Canonicalization") {
            None => {
                self.defaults.push(
                    "# OpenDKIM's default when Canonicalization is unset; relaxed/relaxed survives reformatting in transit"
                        .into(),
                );
                self.defaults
                    .push("canonicalization = \"simple/simple\"".into());
            }
            Some(s) => match parse_canonicalization(&s.value) {
                Some((h, b)) => self.defaults.push(format!(
                    "canonicalization = {}",
                    q(&format!("{}/{}", canon(h), canon(b)))
                )),
                None => self.note(
                    Section::Defaults,
                    format!(
                        "Canonicalization {} ({}): not simple or relaxed",
                        s.value, s.at
                    ),
                ),
            },
        }
        if let Some(s) = od.get("SignatureAlgorithm") {
            match s.value.to_ascii_lowercase().as_str() {
                "rsa-sha256" | "ed25519-sha256" => {}
                other => self.note(
                    Section::Defaults,
                    format!(
                        "SignatureAlgorithm {other} ({}): dkimctl signs with rsa-sha256 or ed25519-sha256 by key type",
                        s.at
                    ),
                ),
            }
        }
        let header_list = |name: &str, sys: &System| -> Option<Result<Vec<String>, String>> {
            let (ds, at) = od.dataset(name)?;
            Some(match ds {
                Dataset::List(items) => Ok(items),
                Dataset::File(p) | Dataset::Refile(p) => sys
                    .reader
                    .read(&p)
                    .map(|t| {
                        opendkim::parse_table(&t, &p)
                            .into_iter()
                            .map(|l| l.key)
                            .collect()
                    })
                    .map_err(|_| format!("{name} ({at}): {} cannot be read", p.display())),
                Dataset::Other(kind) => Err(format!("{name} ({at}): a {kind}: dataset")),
            })
        };
        let valid_header =
            |h: &str| !h.is_empty() && h.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        let mut signed: Vec<String> = DEFAULT_SIGN_HEADERS.iter().map(|s| s.to_string()).collect();
        match header_list("SignHeaders", sys) {
            None => {}
            Some(Err(why)) => self.note(Section::Defaults, why),
            Some(Ok(items)) => {
                let mut v: Vec<String> = Vec::new();
                for h in items {
                    if valid_header(&h) && !v.iter().any(|o| o.eq_ignore_ascii_case(&h)) {
                        v.push(h);
                    }
                }
                if v.iter().any(|h| h.eq_ignore_ascii_case("from")) {
                    self.defaults.push(format!("sign_headers = {}", list(&v)));
                    signed = v;
                } else {
                    self.note(
                        Section::Defaults,
                        "SignHeaders without From: RFC 6376 requires From to be signed; dkimctl's default list is used".into(),
                    );
                }
            }
        }
        match header_list("OversignHeaders", sys) {
            None => self.note(
                Section::Defaults,
                "OpenDKIM oversigned no header; dkimctl oversigns From".into(),
            ),
            Some(Err(why)) => self.note(Section::Defaults, why),
            Some(Ok(items)) => {
                let mut v: Vec<String> = Vec::new();
                for h in items {
                    if !valid_header(&h) || v.iter().any(|o| o.eq_ignore_ascii_case(&h)) {
                        continue;
                    }
                    if signed.iter().any(|s| s.eq_ignore_ascii_case(&h)) {
                        v.push(h);
                    } else {
                        self.note(
                            Section::Defaults,
                            format!("OversignHeaders {h}: it is not among the signed headers"),
                        );
                    }
                }
                if !v.iter().any(|h| h.eq_ignore_ascii_case("from")) {
                    v.insert(0, "From".into());
                    self.defaults
                        .push("# From added: dkimctl always oversigns it".into());
                }
                self.defaults
                    .push(format!("oversign_headers = {}", list(&v)));
            }
        }
        if let Some(s) = od.get("SignatureTTL") {
            match opendkim::parse_c_int(&s.value) {
                Some(n) if n > 0 => self
                    .defaults
                    .push(format!("expire = {}", q(&format!("{n}s")))),
                _ => {}
            }
        }
    }

    /// The entries of a host list dkim.toml can hold; every other entry
    /// is noted, as a loss when it matched some client. `signs`: the list
    /// decides who is signed for (InternalHosts), else who is not verified.
    fn host_list(
        &mut self,
        entries: &[opendkim::HostEntry],
        what: &str,
        signs: bool,
    ) -> Vec<String> {
        let stops = |who: &str| {
            if signs {
                format!("signing for mail from {who} stops")
            } else {
                format!("mail from {who} is verified from now on")
            }
        };
        let mut out: Vec<String> = Vec::new();
        for h in entries {
            if h.negated {
                let effect = if signs {
                    format!(
                        "mail from {} is signed from now on",
                        h.text.trim_start_matches('!')
                    )
                } else {
                    format!(
                        "mail from {} is no longer verified",
                        h.text.trim_start_matches('!')
                    )
                };
                self.loss(
                    Section::Trusted,
                    format!(
                        "{what} {} ({}): exclusions have no dkim.toml form",
                        h.text, h.at
                    ),
                    effect,
                );
                continue;
            }
            match &h.host {
                Host::Pattern(HostPattern::Net(ip, len))
                    if *len < 8 && !HostPattern::Net(*ip, *len).is_loopback() =>
                {
                    self.loss(
                        Section::Trusted,
                        format!(
                            "{what} {} ({}): dkimctl refuses ranges wider than /8 (anyone in it could sign as your domains)",
                            h.text, h.at
                        ),
                        stops(&h.text),
                    );
                }
                Host::Pattern(p) => {
                    let s = p.to_string();
                    if parse_host_pattern(&s).is_ok() && !out.contains(&s) {
                        out.push(s);
                    }
                }
                Host::Domain(d) => self.loss(
                    Section::Trusted,
                    format!(
                        "{what} {} ({}): dkim.toml takes addresses, ranges and fully qualified host names, not every host of a domain",
                        h.text, h.at
                    ),
                    stops(&format!("hosts named *.{d}")),
                ),
                Host::Name(n) => self.loss(
                    Section::Trusted,
                    format!(
                        "{what} {} ({}): dkim.toml takes fully qualified host names",
                        h.text, h.at
                    ),
                    stops(&format!("the host {n}")),
                ),
                Host::Literal(_) => self.note(
                    Section::Trusted,
                    format!(
                        "{what} {} ({}): it never matched (the list is compared literally, without wildcards)",
                        h.text, h.at
                    ),
                ),
            }
        }
        out
    }

    fn trusted(&mut self, od: &OpenDkim) {
        // OpenDKIM's InternalHosts default (and dkim.toml's).
        let default = vec!["127.0.0.1".to_string(), "::1".to_string()];
        let internal = match (&od.internal_hosts, od.get("InternalHosts")) {
            (Some(entries), _) => Some(self.host_list(entries, "InternalHosts", true)),
            (None, Some(s)) => {
                self.loss(
                    Section::Trusted,
                    format!("InternalHosts ({}) could not be read: dkimctl's default (127.0.0.1, ::1) is used", s.at),
                    "signing for the hosts it lists stops".into(),
                );
                None
            }
            (None, None) => {
                self.trusted.push(
                    "# OpenDKIM's default when InternalHosts is unset (dkim.toml's too)".into(),
                );
                Some(default)
            }
        };
        if let Some(i) = &internal {
            self.trusted.push(format!("internal_hosts = {}", list(i)));
        }
        let external = match (&od.external_ignore, od.get("ExternalIgnoreList")) {
            (Some(entries), _) => Some(self.host_list(entries, "ExternalIgnoreList", false)),
            (None, Some(s)) => {
                self.note(
                    Section::Trusted,
                    format!("ExternalIgnoreList ({}) could not be read", s.at),
                );
                None
            }
            (None, None) => {
                self.trusted
                    .push("# OpenDKIM's default when ExternalIgnoreList is unset".into());
                Some(Vec::new())
            }
        };
        if let Some(e) = external
            && Some(&e) != internal.as_ref()
        {
            self.trusted.push(format!("external_ignore = {}", list(&e)));
        }
    }

    /// Domains from the SigningTable + KeyTable, or from Domain/Selector/
    /// KeyFile.
    fn domains(&mut self, sys: &System, od: &OpenDkim) {
        let mut algorithms: BTreeMap<PathBuf, Algorithm> = BTreeMap::new();
        let mut algorithm_of = |path: &Path, w: &mut Writer| -> Algorithm {
            if let Some(a) = algorithms.get(path) {
                return *a;
            }
            let a = match sys
                .reader
                .resolve(path)
                .ok()
                .map(|r| crate::keys::load_private_key(&r))
            {
                Some(Ok(k)) => k.algorithm,
                _ => {
                    w.general.push(comment_text(&format!(
                        "# the key {} could not be read: taken as RSA",
                        path.display()
                    )));
                    Algorithm::RsaSha256
                }
            };
            algorithms.insert(path.to_path_buf(), a);
            a
        };
        // (sender domain, subdomain pattern, key entry index, signs): without
        // MultipleSignatures only the first matching line signs.
        let multiple = od
            .get("MultipleSignatures")
            .is_some_and(|s| opendkim::parse_bool(&s.value) == Some(true));
        let mut uses: Vec<(String, bool, usize, bool)> = Vec::new();
        // Indexes instead of searches, here and below: an 87,000-line
        // KeyTable is imported in linear time.
        let mut signed: std::collections::HashSet<(String, bool)> =
            std::collections::HashSet::new();
        if od.key_table {
            let refile = matches!(od.dataset("SigningTable"), Some((Dataset::Refile(_), _)));
            let mut by_name: std::collections::HashMap<&str, usize> =
                std::collections::HashMap::new();
            for (i, k) in od.keys.iter().enumerate() {
                by_name.entry(k.name.as_str()).or_insert(i);
            }
            for e in &od.signing {
                let Some(&ki) = by_name.get(e.key_name.as_str()) else {
                    self.note(
                        Section::General,
                        format!(
                            "SigningTable {} {} ({}): the key is not in the KeyTable, so OpenDKIM never signed with it",
                            e.pattern, e.key_name, e.at
                        ),
                    );
                    continue;
                };
                let p = e.pattern.to_ascii_lowercase();
                let parsed = if refile {
                    match p.strip_prefix("*@") {
                        Some(rest) => match rest.strip_prefix("*.") {
                            Some(d) => Some((d.to_string(), true)),
                            None => Some((rest.to_string(), false)),
                        },
                        None => None,
                    }
                } else if p.contains('*') {
                    // See: issue 13, defect 9.
                    self.note(
                        Section::General,
                        format!(
                            "SigningTable {} ({}): it never signed: without refile: OpenDKIM looks this line up literally (as user@domain, domain, .parent), and no sender is `{}`",
                            e.pattern, e.at, e.pattern
                        ),
                    );
                    continue;
                } else {
                    match p.strip_prefix('.') {
                        Some(d) => Some((d.to_string(), true)),
                        None if !p.contains('@') => Some((p.clone(), false)),
                        None => None,
                    }
                };
                let Some((d, sub)) = parsed.filter(|(d, _)| !d.contains(['*', '@'])) else {
                    self.loss(
                        Section::General,
                        format!(
                            "SigningTable {} ({}): dkim.toml signs whole domains (and their subdomains), not single senders or other patterns",
                            e.pattern, e.at
                        ),
                        format!("signing for {} stops", e.pattern),
                    );
                    continue;
                };
                let Ok(d) = normalize_domain(&d) else {
                    self.loss(
                        Section::General,
                        format!("SigningTable {} ({}): not a domain", e.pattern, e.at),
                        format!("signing for {} stops", e.pattern),
                    );
                    continue;
                };
                let k = &od.keys[ki];
                if k.domain != "%" && k.domain != d {
                    let who = if sub {
                        format!("subdomains of {d}")
                    } else {
                        d.clone()
                    };
                    self.loss(
                        Section::General,
                        format!(
                            "SigningTable {} ({}): mail from {who} signed as d={}, which dkim.toml cannot express",
                            e.pattern, e.at, k.domain
                        ),
                        format!("signing for {who} stops"),
                    );
                    continue;
                }
                let signs = signed.insert((d.clone(), sub)) || multiple;
                uses.push((d, sub, ki, signs));
            }
        } else {
            let sub = od
                .get("SubDomains")
                .is_some_and(|s| opendkim::parse_bool(&s.value) == Some(true));
            for (ki, k) in od.keys.iter().enumerate() {
                match normalize_domain(&k.domain) {
                    Ok(d) => {
                        uses.push((d.clone(), false, ki, true));
                        if sub {
                            uses.push((d, true, ki, true));
                        }
                    }
                    Err(why) => self.loss(
                        Section::General,
                        format!("Domain {} ({}): {why}", k.domain, k.at),
                        format!("signing for {} stops", k.domain),
                    ),
                }
            }
        }
        let mut exact: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut domain_index: std::collections::HashMap<String, usize> = self
            .domains
            .iter()
            .enumerate()
            .map(|(i, x)| (x.name.clone(), i))
            .collect();
        for (d, sub, ki, signs) in &uses {
            let k = &od.keys[*ki];
            let KeySource::File(path) = &k.key else {
                self.loss(
                    Section::General,
                    format!(
                        "the key {} ({}) is written inline in the KeyTable: move it into a file (mode 0600) and import again",
                        k.name, k.at
                    ),
                    format!("signing for {d} with selector {} stops", k.selector),
                );
                continue;
            };
            if !is_selector(&k.selector) {
                self.loss(
                    Section::General,
                    format!(
                        "the key {} ({}): {} is not a selector",
                        k.name, k.at, k.selector
                    ),
                    format!("signing for {d} stops"),
                );
                continue;
            }
            if !sub {
                exact.insert(d.clone());
            }
            let algorithm = algorithm_of(path, self);
            let idx = match domain_index.get(d) {
                Some(&i) => i,
                None => {
                    self.domains.push(ImportedDomain {
                        name: d.clone(),
                        ..ImportedDomain::default()
                    });
                    domain_index.insert(d.clone(), self.domains.len() - 1);
                    self.domains.len() - 1
                }
            };
            let dom = &mut self.domains[idx];
            if *sub {
                dom.subdomains = true;
            }
            if dom.keys.iter().any(|x| x.selector == k.selector) {
                continue;
            }
            let pending = !signs
                || dom
                    .keys
                    .iter()
                    .any(|x| x.algorithm == algorithm && !x.pending);
            if !signs {
                dom.notes.push(Note {
                    text: format!(
                        "the key {} ({}) never signed: an earlier SigningTable line matches first and MultipleSignatures is off; kept as pending",
                        k.selector, k.at
                    ),
                    effect: None,
                });
            } else if pending {
                dom.notes.push(Note {
                    text: format!(
                        "the key {} also signed {d}; dkimctl signs with one key per algorithm, so it is kept as pending",
                        k.selector
                    ),
                    effect: Some(format!("signing for {d} with selector {} stops", k.selector)),
                });
            }
            dom.keys.push(ImportedKey {
                selector: k.selector.clone(),
                path: path.clone(),
                algorithm,
                pending,
            });
        }
        for dom in &mut self.domains {
            if dom.subdomains && !exact.contains(&dom.name) {
                dom.notes.push(Note {
                    text: format!(
                        "only subdomains of {} were signed; dkimctl signs the domain itself too",
                        dom.name
                    ),
                    effect: Some(format!(
                        "mail from {} itself is signed from now on",
                        dom.name
                    )),
                });
            }
        }
        // Domains sharing one key file: key_from when the selector matches,
        // naming the first domain with that one key.
        let mut owners: std::collections::HashMap<(PathBuf, String), String> =
            std::collections::HashMap::new();
        for dom in &mut self.domains {
            if dom.keys.len() != 1 || dom.key_from.is_some() {
                continue;
            }
            let k = &dom.keys[0];
            match owners.get(&(k.path.clone(), k.selector.clone())) {
                Some(owner) => dom.key_from = Some(owner.clone()),
                None => {
                    owners.insert((k.path.clone(), k.selector.clone()), dom.name.clone());
                }
            }
        }
        let notes: Vec<Note> = self.domains.iter().flat_map(|d| d.notes.clone()).collect();
        self.notes.extend(notes.into_iter().map(|n| Note {
            text: comment_text(&n.text),
            effect: n.effect.map(|e| comment_text(&e)),
        }));
    }

    fn other_settings(&mut self, od: &OpenDkim) {
        if let Some(s) = od.get("Nameservers") {
            let servers: Vec<String> = s
                .value
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect();
            if servers
                .iter()
                .all(|x| x.parse::<std::net::IpAddr>().is_ok())
            {
                self.engine
                    .push(format!("nameservers = {}", list(&servers)));
            } else {
                self.note(
                    Section::Engine,
                    format!("Nameservers {} ({})", s.value, s.at),
                );
            }
        }
        if let Some((ds, at)) = od.dataset("MTA") {
            match ds {
                Dataset::List(items) if !items.is_empty() => {
                    // A name the rendered opendkim.conf cannot carry (a
                    // space, a `#`, a control byte) is left out, named.
                    let (fit, unfit): (Vec<String>, Vec<String>) =
                        items.into_iter().partition(|i| {
                            crate::formats::values::check(
                                i,
                                crate::formats::values::Format::OpenDkimList,
                            )
                            .is_ok()
                        });
                    for name in &unfit {
                        self.loss(
                            Section::Engine,
                            format!(
                                "MTA {} ({at}): a daemon name dkimctl cannot write",
                                cut(name)
                            ),
                            format!(
                                "signing for mail the MTA hands over as daemon {} stops",
                                cut(name)
                            ),
                        );
                    }
                    if !fit.is_empty() {
                        self.engine
                            .push(format!("sign_daemon_names = {}", list(&fit)));
                    }
                }
                _ => self.note(Section::Engine, format!("MTA ({at}): not a plain list")),
            }
        }
        if let Some(s) = od.get("RequireSafeKeys")
            && opendkim::parse_bool(&s.value) == Some(false)
        {
            self.engine.push(format!(
                "# RequireSafeKeys false ({}): OpenDKIM took keys others could reach; kept, or the keys stop loading",
                s.at
            ));
            self.engine.push("require_safe_keys = false".into());
        }
        let single_unused = !od.key_table && od.get("Domain").is_none();
        let mut rendered = Vec::new();
        let mut seen = Vec::new();
        for s in &od.settings {
            if seen.contains(&s.name) {
                continue;
            }
            seen.push(s.name);
            if single_unused && ["Selector", "KeyFile", "SubDomains"].contains(&s.name) {
                // Fedora's stock file names a key but no Domain.
                // See: issue 13, defect 9.
                self.note(
                    Section::General,
                    format!(
                        "{} {} ({}): without Domain (or a KeyTable) OpenDKIM never signed with it",
                        s.name,
                        shown(s),
                        s.at
                    ),
                );
                continue;
            }
            if od.key_table && ["Domain", "Selector", "KeyFile", "SubDomains"].contains(&s.name) {
                self.note(
                    Section::General,
                    format!(
                        "{} {} ({}): also given with a KeyTable, which OpenDKIM uses instead",
                        s.name, s.value, s.at
                    ),
                );
                continue;
            }
            if CARRIED.contains(&s.name) {
                continue;
            }
            if RENDERED.contains(&s.name) {
                rendered.push(s.name);
                continue;
            }
            if LUA_SCRIPTS.contains(&s.name) {
                continue;
            }
            let text = format!(
                "{} {} ({}): dkim.toml has no such setting",
                s.name,
                shown(s),
                s.at
            );
            match DECIDES_SIGNING.iter().find(|(n, _)| *n == s.name) {
                Some((_, effect)) => self.loss(Section::General, text, effect.to_string()),
                None => self.note(Section::General, text),
            }
        }
        if !rendered.is_empty() {
            self.general.push(format!(
                "# dkimctl's rendered opendkim.conf sets these itself: {}",
                rendered.join(", ")
            ));
        }
    }

    fn finish(mut self, od: &OpenDkim) -> ImportResult {
        let mut out = String::new();
        out.push_str(&format!(
            "# dkim.toml written by `dkimctl import` from {}.\n\
             # Review it, then `dkimctl check` and `dkimctl plan` show what dkimctl would change.\n",
            comment_text(&od.conf_path.display().to_string())
        ));
        for l in &self.general {
            out.push_str(l);
            out.push('\n');
        }
        let section = |out: &mut String, name: &str, lines: &[String]| {
            if lines.is_empty() {
                return;
            }
            out.push_str(&format!("\n[{name}]\n"));
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
        };
        section(&mut out, "service", &self.service);
        section(&mut out, "defaults", &self.defaults);
        section(&mut out, "trusted", &self.trusted);
        for d in &self.domains {
            out.push_str("\n[[domain]]\n");
            for n in &d.notes {
                out.push_str(&format!("{NOT_CARRIED_OVER}{n}\n"));
            }
            out.push_str(&format!("name = {}\n", q(&d.name)));
            if d.subdomains {
                out.push_str("subdomains = true\n");
            }
            if let Some(from) = &d.key_from {
                out.push_str(&format!("key_from = {}\n", q(from)));
                continue;
            }
            // The algorithms it signs with: those of its active keys.
            let mut algs: Vec<Algorithm> = Vec::new();
            for k in d.keys.iter().filter(|k| !k.pending) {
                if !algs.contains(&k.algorithm) {
                    algs.push(k.algorithm);
                }
            }
            algs.sort();
            if algs != [Algorithm::RsaSha256] && !algs.is_empty() {
                let names: Vec<String> = algs.iter().map(|a| a.as_str().to_string()).collect();
                out.push_str(&format!("algorithms = {}\n", list(&names)));
            }
            for k in &d.keys {
                out.push_str("\n[[domain.key]]\n");
                out.push_str(&format!("selector = {}\n", q(&k.selector)));
                let implied = if algs.is_empty() {
                    Algorithm::RsaSha256
                } else {
                    algs[0]
                };
                if algs.len() > 1 || k.algorithm != implied {
                    out.push_str(&format!("algorithm = {}\n", q(k.algorithm.as_str())));
                }
                let default =
                    default_key_path(Path::new("/etc/opendkim/keys"), &d.name, &k.selector);
                if k.path != default {
                    out.push_str(&format!("path = {}\n", q(&k.path.display().to_string())));
                    if !k.path.starts_with("/etc/opendkim/keys") {
                        // The setup keeps it there, and names it as its key.
                        out.push_str("outside_key_dir = true\n");
                    }
                }
                if k.pending {
                    out.push_str("state = \"pending\"\n");
                }
            }
        }
        section(&mut out, "mta", &self.mta);
        section(&mut out, "engine", &self.engine);
        self.notes.dedup();
        ImportResult {
            toml: out,
            notes: self.notes,
        }
    }
}

#[derive(Clone, Copy)]
enum Section {
    Service,
    Defaults,
    Trusted,
    Engine,
    Mta,
    General,
}

fn canon(c: Canon) -> &'static str {
    c.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse};

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn check(toml: &str, root: &Root) -> crate::config::Config {
        let source = Source::resolve(root, None);
        let loaded = parse(toml, &source);
        assert!(
            !loaded.diags.has_errors(),
            "{toml}\n{:#?}",
            loaded.diags.sorted()
        );
        loaded.config.unwrap()
    }

    fn joined(notes: &[Note]) -> String {
        notes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn single_key_form_with_a_keytable_is_noted() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        write(
            dir.path(),
            "etc/opendkim/opendkim.conf",
            "Domain example.com\nSelector old\nKeyFile /etc/opendkim/old.private\n\
             KeyTable /etc/opendkim/KeyTable\nSigningTable refile:/etc/opendkim/SigningTable\n\
             Socket inet:8891@localhost\nTrustAnchorFile /usr/share/dns/root.key\n",
        );
        write(
            dir.path(),
            "etc/opendkim/KeyTable",
            "s1._domainkey.example.com example.com:s1:/etc/opendkim/keys/example.com/s1.private\n",
        );
        write(
            dir.path(),
            "etc/opendkim/SigningTable",
            "*@example.com s1._domainkey.example.com\n*@*.example.com s1._domainkey.example.com\nuser@example.org s1._domainkey.example.com\n",
        );
        // One sender's rule has no dkim.toml form: refused unless lossy.
        match import(&root, false) {
            Err(ImportError::Lossy { losses }) => {
                assert_eq!(losses.len(), 1, "{losses:?}");
                assert_eq!(
                    losses[0].effect.as_deref(),
                    Some("signing for user@example.org stops")
                );
            }
            other => panic!("{other:?}"),
        }
        let r = import(&root, true).unwrap();
        let c = check(&r.toml, &root);
        assert_eq!(c.domains.len(), 1);
        assert!(c.domains[0].subdomains);
        assert_eq!(c.domains[0].keys[0].selector, "s1");
        let all = joined(&r.notes);
        assert!(all.contains("TrustAnchorFile"), "{all}");
        assert!(
            all.contains("user@example.org (/etc/opendkim/SigningTable:3)"),
            "{all}"
        );
        assert!(
            all.contains(
                "Selector old (/etc/opendkim/opendkim.conf:2): also given with a KeyTable"
            ),
            "{all}"
        );
        assert!(all.contains("KeyFile /etc/opendkim/old.private"), "{all}");
        // Every note is in the text, where plan finds it again.
        let mut shown: Vec<String> = r.notes.iter().map(ToString::to_string).collect();
        let mut found = not_carried_over(&r.toml);
        shown.sort();
        found.sort();
        assert_eq!(found, shown, "{}", r.toml);
    }

    #[test]
    fn nothing_to_import() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            import(&Root::new(dir.path()), false),
            Err(ImportError::NotFound { .. })
        ));
    }

    #[test]
    fn wide_ranges_exclusions_and_domains_are_losses() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        write(
            dir.path(),
            "etc/opendkim/opendkim.conf",
            "UserID root\nSocket inet:8891\nInternalHosts 0.0.0.0/0, 10.0.0.0/8, !10.1.0.0/16, .mail-server.lab\nMode sv\nUMask 700\n",
        );
        let Err(ImportError::Lossy { losses }) = import(&root, false) else {
            panic!("not refused");
        };
        let effects: Vec<&str> = losses.iter().filter_map(|l| l.effect.as_deref()).collect();
        assert_eq!(
            effects,
            [
                "signing for mail from 0.0.0.0/0 stops",
                "mail from 10.1.0.0/16 is signed from now on",
                "signing for mail from hosts named *.mail-server.lab stops",
            ]
        );
        let r = import(&root, true).unwrap();
        let c = check(&r.toml, &root);
        assert_eq!(c.service.user, "opendkim");
        assert!(c.service.allow_remote_socket);
        assert_eq!(c.trusted.internal_hosts.len(), 1, "{}", r.toml);
        assert_eq!(c.service.mode, crate::config::model::OperatingMode::Verify);
        assert!(r.toml.contains("\"verify\""));
        assert!(
            r.toml.contains(
                "# not carried over: InternalHosts .mail-server.lab (/etc/opendkim/opendkim.conf:3)"
            ),
            "{}",
            r.toml
        );
    }

    #[test]
    fn a_daemon_name_dkimctl_cannot_write_is_a_loss() {
        // Found by the opendkim_conf fuzz target: `MTA` with a name holding
        // spaces was carried over, and check refused the dkim.toml.
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        write(
            dir.path(),
            "etc/opendkim/opendkim.conf",
            "Socket inet:8891@localhost\nMode sv\nMTA MSA, odd name  here, ORIGINATING\n",
        );
        let Err(ImportError::Lossy { losses }) = import(&root, false) else {
            panic!("not refused");
        };
        let effects: Vec<&str> = losses.iter().filter_map(|l| l.effect.as_deref()).collect();
        assert_eq!(
            effects,
            ["signing for mail the MTA hands over as daemon \"odd name  here\" stops"]
        );
        let r = import(&root, true).unwrap();
        assert!(
            r.toml
                .contains("sign_daemon_names = [\"MSA\", \"ORIGINATING\"]"),
            "{}",
            r.toml
        );
        assert!(invalid_output(&r.toml).is_empty());
    }

    #[test]
    fn an_output_check_refuses_is_never_written() {
        let reasons = invalid_output(
            "[service]\nengine = \"opendkim\"\nmode = \"verify\"\n[engine]\nsign_daemon_names = [\"a b\"]\n[mta]\nkind = \"none\"\n",
        );
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(
            reasons[0].starts_with("the dkim.toml it would write does not pass check (5:"),
            "{reasons:?}"
        );
    }

    #[test]
    fn what_opendkim_would_not_start_with_is_refused() {
        for (conf, words) in [
            (
                "Frobnicate yes\nSocket inet:8891@localhost\n",
                "unknown option Frobnicate",
            ),
            (
                "KeyTables /etc/opendkim/KeyTable\nSocket inet:8891@localhost\n",
                "unknown option KeyTables",
            ),
            (
                "KeyTable /etc/opendkim/KeyTable\nSigningTable refile:/etc/opendkim/SigningTable\nSocket inet:8891@localhost\n",
                "KeyTable /etc/opendkim/KeyTable does not exist",
            ),
            (
                "SetupPolicyScript /etc/opendkim/setup.lua\nSocket inet:8891@localhost\n",
                "Lua",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), "etc/opendkim/opendkim.conf", conf);
            write(dir.path(), "etc/opendkim/SigningTable", "");
            match import(&Root::new(dir.path()), true) {
                Err(ImportError::Refused { reasons }) => assert!(
                    reasons.iter().any(|r| r.contains(words)),
                    "{conf}: {reasons:?}"
                ),
                other => panic!("{conf}: {other:?}"),
            }
        }
    }

    // See: issue 13, defect 1.
    #[test]
    fn keys_in_a_database_are_refused_without_showing_the_password() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "etc/opendkim.conf",
            "KeyTable dsn:pgsql://opendkim:S3cret@5432+127.0.0.1/db/table=dkim?keycol=id?datacol=domain_name,selector,private_key_path\n\
             SigningTable dsn:pgsql://opendkim:S3cret@5432+127.0.0.1/db/table=dkim?keycol=domain_name?datacol=id\n\
             LDAPBindPassword Other5ecret\nSocket inet:12345@localhost\n",
        );
        let Err(e @ ImportError::Refused { .. }) = import(&Root::new(dir.path()), true) else {
            panic!("not refused");
        };
        let text = e.to_string();
        assert!(
            text.contains("KeyTable (/etc/opendkim.conf:1) keeps the keys in a dsn: dataset"),
            "{text}"
        );
        assert!(
            text.contains("SigningTable (/etc/opendkim.conf:2)"),
            "{text}"
        );
        assert!(
            !text.contains("S3cret") && !text.contains("Other5ecret"),
            "{text}"
        );
    }

    #[test]
    fn opendkims_defaults_and_kept_settings() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        write(
            dir.path(),
            "etc/opendkim.conf",
            "Domain example.com\nSelector s1\nKeyFile /home/data/s1.private\nSocket inet:8891@localhost\n\
             RequireSafeKeys false\nUserID opendkim\n",
        );
        let r = import(&root, false).unwrap();
        let c = check(&r.toml, &root);
        // InternalHosts unset: OpenDKIM's default, both loopback addresses.
        let hosts: Vec<String> = c
            .trusted
            .internal_hosts
            .iter()
            .map(|h| h.to_string())
            .collect();
        assert_eq!(hosts, ["127.0.0.1", "::1"], "{}", r.toml);
        // See: issue 13, defect 4.
        assert!(!c.engine.require_safe_keys, "{}", r.toml);
        assert_eq!(
            c.domains[0].keys[0].path,
            Path::new("/home/data/s1.private")
        );
    }

    // See: issue 13, defect 9.
    #[test]
    fn keys_and_rules_that_never_signed_are_named_with_the_true_reason() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        // Fedora's stock file: a key, a selector, no Domain, Mode v.
        write(
            dir.path(),
            "etc/opendkim.conf",
            "Mode v\nKeyFile /etc/opendkim/keys/default.private\nSelector default\nSocket inet:8891@localhost\n\
             KeyTable /etc/opendkim/KeyTable\nSigningTable /etc/opendkim/SigningTable\n",
        );
        write(
            dir.path(),
            "etc/opendkim/KeyTable",
            "k1 example.com:s1:/etc/opendkim/keys/s1.private\nk2 example.org:s1:/etc/opendkim/keys/s2.private\n",
        );
        write(
            dir.path(),
            "etc/opendkim/SigningTable",
            "example.com k1\n*@example.org k2\n",
        );
        let r = import(&root, false).unwrap();
        let c = check(&r.toml, &root);
        let all = joined(&r.notes);
        assert!(
            all.contains("SigningTable *@example.org (/etc/opendkim/SigningTable:2): it never signed: without refile:"),
            "{all}"
        );
        assert!(!all.contains("only `*@domain`"), "{all}");
        assert_eq!(c.domains.len(), 1);
        assert!(r.notes.iter().all(|n| !n.is_loss()), "{all}");

        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        write(
            dir.path(),
            "etc/opendkim.conf",
            "Mode v\nKeyFile /etc/opendkim/keys/default.private\nSelector default\nSocket inet:8891@localhost\n",
        );
        let r = import(&root, false).unwrap();
        let all = joined(&r.notes);
        for name in [
            "KeyFile /etc/opendkim/keys/default.private",
            "Selector default",
        ] {
            assert!(
                all.contains(&format!("{name} (/etc/opendkim.conf:"))
                    && all.contains("never signed"),
                "{name}: {all}"
            );
        }
    }
}
