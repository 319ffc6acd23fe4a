//! Validation: raw values -> the checked [`Config`] model.
//!
//! Every rule that can be judged from the file alone lives here; rules that
//! need the system (users, groups, key files) live in
//! [`super::environment`]. Problems are collected, never returned early:
//! a bad value is reported and replaced by its default so the rest of the
//! file is still checked. The model is only handed out when no error was
//! found.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diag::Diagnostics;
use super::model::*;
use super::raw::{IntOrStr, RawConfig, RawDomain, RawRecord, Sp};
use super::types::{Date, is_account_name, parse_nameserver};
pub use crate::formats::names::{is_selector, normalize_domain, parse_host_pattern};
use crate::report::did_you_mean;

/// Header fields signed by default: RFC 6376 §5.4.1's recommendation, as
/// OpenDKIM signs them.
pub const DEFAULT_SIGN_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Resent-Date",
    "Resent-From",
    "Resent-To",
    "Resent-Cc",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Help",
    "List-Unsubscribe",
    "List-Subscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Default place of `dkim.toml`.
pub const DEFAULT_CONFIG: &str = "/etc/dkimctl/dkim.toml";

/// Validates raw values into the model. `source` is the host path of the
/// file, named in rendered headers. Returns `None` when any error was
/// found (all of them are in `diags`).
pub fn validate(raw: &RawConfig, source: &Path, diags: &mut Diagnostics) -> Option<Config> {
    let errors_before = diags.count(crate::report::Severity::Error);
    let mut v = Validator { d: diags };

    let mta = v.mta(raw);
    let service = v.service(raw, &mta);
    let signing = v.signing(raw);
    let trusted = v.trusted(raw);
    let domains = v.domains(&raw.domains, &service, &signing);
    let engine = v.engine(raw, service.engine, &mta);
    let rotation = v.rotation(raw);
    let dns = v.dns(raw, &domains);

    if service.mode.signs() && raw.domains.is_empty() {
        v.d.error_help(
            None,
            format!(
                "the service is set to {} but no [[domain]] is configured",
                service.mode.as_str()
            ),
            "add a [[domain]] table with a name and a selector, or set service.mode = \"verify\"",
        );
    }
    if service.socket_activation && service.engine == EngineKind::OpenDkim {
        let at = raw.service.socket_activation.as_ref().and_then(Sp::at);
        v.d.error_help(
            at,
            "socket activation needs the bundled engine",
            "OpenDKIM opens its own socket; remove socket_activation or set engine = \"bundled\"",
        );
    }
    if service.engine == EngineKind::OpenDkim && service.mode.signs() {
        v.opendkim_algorithms(raw, &signing, &domains);
    }
    if service.engine == EngineKind::OpenDkim
        && let Some(list) = &raw.engine.nameservers
    {
        // OpenDKIM's Nameservers takes addresses only: a port would be
        // dropped without a word, and OpenDKIM would ask port 53.
        for ns in &list.value {
            let Ok(addr) = parse_nameserver(&ns.value) else {
                continue;
            };
            if addr.port() != 53 {
                v.d.error_help(
                    ns.at(),
                    format!(
                        "OpenDKIM cannot ask a name server on port {} (its Nameservers setting takes addresses only)",
                        addr.port()
                    ),
                    format!(
                        "serve DNS on port 53 and write \"{}\", or use engine = \"bundled\"",
                        addr.ip()
                    ),
                );
            }
        }
    }
    v.rendered_values(raw, source, &service, &mta);
    if diags.count(crate::report::Severity::Error) > errors_before {
        return None;
    }
    Some(Config {
        source: source.to_path_buf(),
        service,
        signing,
        trusted,
        domains,
        mta,
        engine,
        rotation,
        dns,
    })
}

struct Validator<'d> {
    d: &'d mut Diagnostics,
}

impl Validator<'_> {
    /// Picks one of the allowed words, reporting anything else.
    fn word<T: Copy>(
        &mut self,
        value: &Option<Sp<String>>,
        what: &str,
        choices: &[(&'static str, T)],
        default: T,
    ) -> T {
        let Some(sp) = value else { return default };
        if let Some((_, t)) = choices.iter().find(|(w, _)| *w == sp.value) {
            return *t;
        }
        let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
        let help = match did_you_mean(&sp.value, &words) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => format!("choose one of: {}", words.join(", ")),
        };
        self.d
            .error_help(sp.at(), format!("unknown {what} \"{}\"", sp.value), help);
        default
    }

    /// Every value that is written verbatim into a rendered file, checked
    /// against the syntax of each file it goes into (see
    /// [`crate::formats::values`]): a newline in `binary` would add a
    /// line to the unit, a comma in the socket path another milter to
    /// main.cf.
    fn rendered_values(&mut self, raw: &RawConfig, source: &Path, service: &Service, mta: &Mta) {
        use crate::formats::values::Format;
        let bundled = service.engine == EngineKind::Bundled;
        // `[rotation] every` renders dkimctl-rotate.service: the binary,
        // dkim.toml, the key directories, the TSIG key and the zone file's
        // and published keys' directories go into it.
        let rotation_unit = raw.rotation.every.is_some();
        let engine_files: &[Format] = if bundled {
            &[Format::SystemdUnit, Format::Tmpfiles, Format::Applied]
        } else {
            &[Format::SystemdUnit, Format::Tmpfiles, Format::OpenDkimConf]
        };
        // The MTA's file first: its misreading is the one that matters.
        let mut socket_files = match mta {
            Mta::Postfix(_) => vec![Format::Postfix],
            Mta::Sendmail { .. } => vec![Format::SendmailMc],
            Mta::None => Vec::new(),
        };
        socket_files.extend_from_slice(engine_files);
        let key_files: &[Format] = match (bundled, rotation_unit) {
            (true, _) => &[Format::SystemdUnit, Format::Applied],
            (false, true) => &[Format::OpenDkimTable, Format::SystemdUnit],
            (false, false) => &[Format::OpenDkimTable],
        };
        let list_files: &[Format] = if bundled {
            &[Format::Applied]
        } else {
            &[Format::OpenDkimList]
        };
        let s = &raw.service;
        // The file's own path heads every rendered file and is in the unit.
        let own: &[Format] = if bundled || rotation_unit {
            &[Format::Applied, Format::SystemdUnit]
        } else {
            &[Format::Applied]
        };
        self.fits(
            &source.to_string_lossy(),
            None,
            "the path of dkim.toml",
            own,
        );
        if (bundled || rotation_unit)
            && let Some(b) = &s.binary
        {
            self.fits(&b.value, b.at(), "binary", &[Format::SystemdUnit]);
        }
        if rotation_unit {
            let d = &raw.dns;
            for (value, what) in [
                (&d.tsig_key_file, "tsig_key_file"),
                (&d.zonefile, "zonefile"),
                (&raw.rotation.publish_retired, "publish_retired"),
            ] {
                if let Some(v) = value {
                    self.fits(&v.value, v.at(), what, &[Format::SystemdUnit]);
                }
            }
        }
        if let Some(k) = &s.key_dir {
            self.fits(&k.value, k.at(), "key_dir", key_files);
        }
        for rd in &raw.domains {
            for k in &rd.keys {
                if let Some(p) = &k.path {
                    self.fits(&p.value, p.at(), "key path", key_files);
                }
            }
        }
        if service.socket.unix_path().is_some() {
            match &s.socket {
                Some(sp) => self.fits(&sp.value, sp.at(), "socket", &socket_files),
                // The default socket lies under Postfix's queue directory.
                None => {
                    if let Some(q) = &raw.mta.queue_directory {
                        self.fits(&q.value, q.at(), "queue_directory", &socket_files);
                    }
                }
            }
        }
        if let Some(list) = &raw.engine.sign_daemon_names {
            for n in &list.value {
                self.fits(&n.value, n.at(), "daemon name", list_files);
            }
        }
        for list in [&raw.defaults.sign_headers, &raw.defaults.oversign_headers]
            .into_iter()
            .flatten()
        {
            for h in &list.value {
                self.fits(&h.value, h.at(), "header name", list_files);
            }
        }
    }

    /// Reports `value` when one of `formats` cannot carry it.
    fn fits(
        &mut self,
        value: &str,
        at: Option<Range<usize>>,
        what: &str,
        formats: &[crate::formats::values::Format],
    ) {
        if let Err(unfit) = crate::formats::values::check_all(value, formats) {
            self.d.error_help(
                at,
                format!("{what} cannot be written into the rendered files: {unfit}"),
                "choose a value without it: letters, digits and `/ . _ - :` are safe in every file (a `%` is escaped where systemd needs it)",
            );
        }
    }

    fn abs_path(&mut self, value: &Option<Sp<String>>, what: &str, default: &str) -> PathBuf {
        let Some(sp) = value else {
            return PathBuf::from(default);
        };
        let p = PathBuf::from(&sp.value);
        if !p.is_absolute() {
            self.d.error_help(
                sp.at(),
                format!("{what} must be an absolute path"),
                format!("e.g. \"{default}\""),
            );
            return PathBuf::from(default);
        }
        if p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            self.d
                .error(sp.at(), format!("{what} must not contain `..`"));
            return PathBuf::from(default);
        }
        p
    }

    fn duration(&mut self, value: &Option<Sp<String>>, what: &str, default: Duration) -> Duration {
        let Some(sp) = value else { return default };
        match parse_duration(&sp.value) {
            Some(d) if !d.is_zero() => d,
            _ => {
                self.d.error_help(
                    sp.at(),
                    format!("invalid {what} \"{}\"", sp.value),
                    "write a number and a unit: \"30s\", \"5m\", \"12h\", \"7d\"",
                );
                default
            }
        }
    }

    fn size(&mut self, value: &Option<Sp<IntOrStr>>, what: &str, default: u64) -> u64 {
        let Some(sp) = value else { return default };
        let parsed = match &sp.value {
            IntOrStr::Int(i) => u64::try_from(*i).ok(),
            IntOrStr::Str(s) => parse_size(s),
        };
        match parsed {
            Some(n) if n > 0 => n,
            _ => {
                self.d.error_help(
                    sp.at(),
                    format!("invalid {what}"),
                    "write a number of bytes or a size: \"256K\", \"10M\"",
                );
                default
            }
        }
    }

    fn mta(&mut self, raw: &RawConfig) -> Mta {
        #[derive(Clone, Copy)]
        enum K {
            Postfix,
            Sendmail,
            None,
        }
        let m = &raw.mta;
        let kind = self.word(
            &m.kind,
            "MTA",
            &[
                ("postfix", K::Postfix),
                ("sendmail", K::Sendmail),
                ("none", K::None),
            ],
            K::Postfix,
        );
        let misplaced = |name: &str, v: bool, d: &mut Diagnostics, at: Option<Range<usize>>| {
            if v {
                d.error(
                    at,
                    format!("`{name}` only applies to mta.kind = \"postfix\""),
                );
            }
        };
        match kind {
            K::Postfix => {
                if let Some(sp) = &m.sendmail_mc {
                    self.d.error(
                        sp.at(),
                        "`sendmail_mc` only applies to mta.kind = \"sendmail\"",
                    );
                }
                let config_dir = self.abs_path(&m.config_dir, "config_dir", "/etc/postfix");
                let queue_directory =
                    self.abs_path(&m.queue_directory, "queue_directory", "/var/spool/postfix");
                let default_action = self.word(
                    &m.default_action,
                    "milter default action",
                    &[
                        ("tempfail", MilterDefault::Tempfail),
                        ("accept", MilterDefault::Accept),
                        ("reject", MilterDefault::Reject),
                    ],
                    MilterDefault::Tempfail,
                );
                if default_action == MilterDefault::Accept {
                    let at = m.default_action.as_ref().and_then(Sp::at);
                    self.d.warning(
                        at,
                        "milter_default_action = accept sends mail unsigned whenever the milter is down",
                        "\"tempfail\" keeps such mail queued until the milter is back",
                    );
                }
                let mut services = Vec::new();
                match &m.services {
                    None => services = vec![PostfixService::Smtpd, PostfixService::NonSmtpd],
                    Some(list) => {
                        if list.value.is_empty() {
                            self.d.error_help(
                                list.at(),
                                "mta.services is empty: no mail would reach the milter",
                                "e.g. [\"smtpd\", \"non_smtpd\"]",
                            );
                        }
                        for s in &list.value {
                            let svc = match s.value.as_str() {
                                "smtpd" => PostfixService::Smtpd,
                                "non_smtpd" => PostfixService::NonSmtpd,
                                name if is_master_service_name(name) => {
                                    PostfixService::Master(name.to_string())
                                }
                                _ => {
                                    self.d.error_help(
                                        s.at(),
                                        format!("invalid Postfix service name \"{}\"", s.value),
                                        "use smtpd, non_smtpd, or a master.cf service name such as submission",
                                    );
                                    continue;
                                }
                            };
                            if services.contains(&svc) {
                                self.d.error(
                                    s.at(),
                                    format!("service \"{}\" is listed twice", s.value),
                                );
                            } else {
                                services.push(svc);
                            }
                        }
                    }
                }
                Mta::Postfix(Postfix {
                    config_dir,
                    queue_directory,
                    chroot: m.chroot.as_ref().is_none_or(|c| c.value),
                    services,
                    default_action,
                })
            }
            K::Sendmail | K::None => {
                for (name, v) in [
                    ("config_dir", m.config_dir.as_ref().and_then(Sp::at)),
                    (
                        "queue_directory",
                        m.queue_directory.as_ref().and_then(Sp::at),
                    ),
                    ("chroot", m.chroot.as_ref().and_then(Sp::at)),
                    ("services", m.services.as_ref().and_then(Sp::at)),
                    ("default_action", m.default_action.as_ref().and_then(Sp::at)),
                ] {
                    misplaced(name, v.is_some(), self.d, v);
                }
                if matches!(kind, K::Sendmail) {
                    Mta::Sendmail {
                        mc_path: self.abs_path(
                            &m.sendmail_mc,
                            "sendmail_mc",
                            "/etc/mail/sendmail.mc",
                        ),
                    }
                } else {
                    if let Some(sp) = &m.sendmail_mc {
                        self.d.error(
                            sp.at(),
                            "`sendmail_mc` only applies to mta.kind = \"sendmail\"",
                        );
                    }
                    Mta::None
                }
            }
        }
    }

    fn service(&mut self, raw: &RawConfig, mta: &Mta) -> Service {
        let s = &raw.service;
        let engine = self.word(
            &s.engine,
            "engine",
            &[
                ("bundled", EngineKind::Bundled),
                ("opendkim", EngineKind::OpenDkim),
            ],
            EngineKind::Bundled,
        );
        let default_user = match engine {
            EngineKind::Bundled => "dkimctl",
            EngineKind::OpenDkim => "opendkim",
        };
        let user = self.account_name(&s.user, "user", default_user);
        let group = self.account_name(&s.group, "group", &user);
        let socket_group = self.account_name(
            &s.socket_group,
            "socket_group",
            mta.group().unwrap_or(&group),
        );
        if user == "root" {
            let at = s.user.as_ref().and_then(Sp::at);
            self.d.error_help(
                at,
                "the milter must not run as root",
                format!("use a system user of its own, e.g. \"{default_user}\""),
            );
        }
        let mode = self.word(
            &s.mode,
            "mode",
            &[
                ("sign+verify", OperatingMode::SignVerify),
                ("sign", OperatingMode::Sign),
                ("verify", OperatingMode::Verify),
            ],
            OperatingMode::SignVerify,
        );
        let umask = match &s.umask {
            None => 0o007,
            Some(sp) => {
                let parsed = match &sp.value {
                    IntOrStr::Int(i) => u32::try_from(*i).ok(),
                    IntOrStr::Str(t) => u32::from_str_radix(t.trim_start_matches("0o"), 8).ok(),
                };
                match parsed {
                    Some(u) if u <= 0o777 && u & 0o600 == 0 => {
                        if u & 0o060 != 0 {
                            self.d.warning(
                                sp.at(),
                                format!(
                                    "umask {u:03o} keeps the MTA's group from using the socket"
                                ),
                                "use 007 (owner and group may connect) as the reference setups do",
                            );
                        }
                        u
                    }
                    Some(u) if u <= 0o777 => {
                        self.d.error_help(
                            sp.at(),
                            format!("umask {u:03o} denies the service access to its own socket"),
                            "use 007",
                        );
                        0o007
                    }
                    _ => {
                        self.d.error_help(
                            sp.at(),
                            "invalid umask",
                            "write it in octal: umask = \"007\" or umask = 0o007",
                        );
                        0o007
                    }
                }
            }
        };
        let authserv_id = s.authserv_id.as_ref().and_then(|sp| {
            if is_authserv_id(&sp.value) {
                Some(sp.value.clone())
            } else {
                self.d.error_help(
                    sp.at(),
                    format!("invalid authserv-id \"{}\"", sp.value),
                    "use this host's name, e.g. \"mail.example.com\" (RFC 8601 §2.5)",
                );
                None
            }
        });
        let default_key_dir = engine.default_key_dir();
        let key_dir = self.abs_path(&s.key_dir, "key_dir", default_key_dir);
        if let Some(why) = unfit_for_keys(&key_dir) {
            let at = s.key_dir.as_ref().and_then(Sp::at);
            self.d.error_help(
                at,
                format!("keys must not live in {why}"),
                format!("use \"{default_key_dir}\""),
            );
        }
        let allow_remote_socket = s.allow_remote_socket.as_ref().is_some_and(|b| b.value);
        let socket = self.socket(s.socket.as_ref(), engine, mta, allow_remote_socket);
        let socket_activation = s.socket_activation.as_ref().is_some_and(|b| b.value);
        let binary = self.abs_path(&s.binary, "binary", "/usr/bin/dkimctl");
        Service {
            engine,
            user,
            group,
            socket,
            allow_remote_socket,
            socket_group,
            umask,
            mode,
            authserv_id,
            key_dir,
            socket_activation,
            binary,
        }
    }

    fn account_name(&mut self, value: &Option<Sp<String>>, what: &str, default: &str) -> String {
        let Some(sp) = value else {
            return default.to_string();
        };
        if is_account_name(&sp.value) {
            sp.value.clone()
        } else {
            self.d.error_help(
                sp.at(),
                format!("invalid {what} name \"{}\"", sp.value),
                "system user and group names are lower-case letters, digits, `_` and `-`, starting with a letter or `_`, at most 32 characters",
            );
            default.to_string()
        }
    }

    fn socket(
        &mut self,
        value: Option<&Sp<String>>,
        engine: EngineKind,
        mta: &Mta,
        allow_remote: bool,
    ) -> Socket {
        let name = match engine {
            EngineKind::Bundled => "dkimctl",
            EngineKind::OpenDkim => "opendkim",
        };
        let default = match mta {
            Mta::Postfix(p) if p.chroot => {
                Socket::Unix(p.queue_directory.join(format!("{name}/{name}.sock")))
            }
            _ => Socket::Unix(PathBuf::from(format!("/run/{name}/{name}.sock"))),
        };
        let Some(sp) = value else { return default };
        let socket = match parse_socket(&sp.value) {
            Ok(s) => s,
            Err(why) => {
                self.d.error_help(
                    sp.at(),
                    format!("invalid socket \"{}\": {why}", sp.value),
                    "write unix:/path, local:/path, inet:PORT@HOST (OpenDKIM) or inet:HOST:PORT (Postfix)",
                );
                return default;
            }
        };
        match &socket {
            Socket::Inet { host, .. } => {
                let loopback = host.eq_ignore_ascii_case("localhost")
                    || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
                if !loopback && !allow_remote {
                    self.d.error_help(
                        sp.at(),
                        format!("TCP socket on non-loopback address {host}"),
                        "anyone who reaches it can have mail signed with your keys; use a unix socket or 127.0.0.1, or set allow_remote_socket = true",
                    );
                } else if !matches!(mta, Mta::None) {
                    self.d.warning(
                        sp.at(),
                        "TCP socket while the MTA runs on this host",
                        "a unix socket lets file permissions decide who may connect (ArchWiki OpenDKIM, Security)",
                    );
                }
            }
            Socket::Unix(path) => {
                if path.as_os_str().len() >= 108 {
                    self.d.error(
                        sp.at(),
                        "unix socket path is longer than the 107 bytes a socket address holds",
                    );
                }
                if path.starts_with("/tmp") || path.starts_with("/var/tmp") {
                    self.d.error_help(
                        sp.at(),
                        "socket in a world-writable directory",
                        "anyone could replace it; use /run or Postfix's queue directory",
                    );
                }
                if let Mta::Postfix(p) = mta
                    && p.chroot
                    && !path.starts_with(&p.queue_directory)
                {
                    {
                        self.d.error_help(
                            sp.at(),
                            format!(
                                "Postfix's chrooted smtpd and cleanup cannot see {} outside {}",
                                path.display(),
                                p.queue_directory.display()
                            ),
                            format!(
                                "use e.g. \"unix:{}\", or set mta.chroot = false if your master.cf runs them unchrooted",
                                p.queue_directory.join(format!("{name}/{name}.sock")).display()
                            ),
                        );
                    }
                }
                if path.parent().is_none_or(|p| p == Path::new("/")) {
                    self.d.error_help(
                        sp.at(),
                        "the socket needs a directory of its own",
                        format!("e.g. unix:/run/{name}/{name}.sock"),
                    );
                }
            }
        }
        socket
    }

    fn algorithms(&mut self, list: &Sp<Vec<Sp<String>>>) -> Vec<Algorithm> {
        let mut out = Vec::new();
        for a in &list.value {
            match Algorithm::parse(&a.value) {
                Some(alg) if out.contains(&alg) => {
                    self.d
                        .error(a.at(), format!("algorithm \"{}\" is listed twice", a.value));
                }
                Some(alg) => out.push(alg),
                None => {
                    let help = if a.value == "rsa-sha1" {
                        "rsa-sha1 is obsolete (RFC 8301); use rsa-sha256".to_string()
                    } else {
                        "choose rsa-sha256, ed25519-sha256, or both for dual signing".to_string()
                    };
                    self.d
                        .error_help(a.at(), format!("unknown algorithm \"{}\"", a.value), help);
                }
            }
        }
        if out.is_empty() && list.value.is_empty() {
            self.d
                .error_help(list.at(), "no signing algorithm", "e.g. [\"rsa-sha256\"]");
        }
        out
    }

    fn rsa_bits(&mut self, v: &Sp<i64>) -> Option<u32> {
        match v.value {
            2048 | 3072 | 4096 => Some(v.value as u32),
            1024 => {
                self.d.error_help(
                    v.at(),
                    "new 1024-bit RSA keys are too weak",
                    "use 2048: dkimctl splits the longer DNS record correctly, so there is no reason for shorter keys",
                );
                None
            }
            _ => {
                self.d.error_help(
                    v.at(),
                    format!("unsupported RSA key size {}", v.value),
                    "choose 2048, 3072 or 4096",
                );
                None
            }
        }
    }

    fn header_list(&mut self, list: &Sp<Vec<Sp<String>>>, what: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for h in &list.value {
            if !is_header_name(&h.value) {
                self.d.error(
                    h.at(),
                    format!("invalid header field name \"{}\" in {what}", h.value),
                );
            } else if out.iter().any(|o| o.eq_ignore_ascii_case(&h.value)) {
                self.d.error(
                    h.at(),
                    format!("header \"{}\" is listed twice in {what}", h.value),
                );
            } else {
                out.push(h.value.clone());
            }
        }
        out
    }

    fn record(&mut self, raw: &RawRecord, base: RecordFlags) -> RecordFlags {
        RecordFlags {
            testing: raw.testing.as_ref().map_or(base.testing, |b| b.value),
            service_email: raw
                .service_email
                .as_ref()
                .map_or(base.service_email, |b| b.value),
            hash_sha256: raw
                .hash_sha256
                .as_ref()
                .map_or(base.hash_sha256, |b| b.value),
        }
    }

    fn signing(&mut self, raw: &RawConfig) -> Signing {
        let d = &raw.defaults;
        let (header_canon, body_canon) = match &d.canonicalization {
            None => (Canon::Relaxed, Canon::Relaxed),
            Some(sp) => match parse_canonicalization(&sp.value) {
                Some(c) => {
                    if c == (Canon::Simple, Canon::Simple) {
                        self.d.warning(
                            sp.at(),
                            "simple/simple breaks on trivial reformatting in transit",
                            "relaxed/relaxed, or relaxed/simple as on the ArchWiki page, survives it",
                        );
                    }
                    c
                }
                None => {
                    self.d.error_help(
                        sp.at(),
                        format!("invalid canonicalization \"{}\"", sp.value),
                        "write HEADER/BODY with simple or relaxed, e.g. \"relaxed/simple\"",
                    );
                    (Canon::Relaxed, Canon::Relaxed)
                }
            },
        };
        let algorithms = match &d.algorithms {
            None => vec![Algorithm::RsaSha256],
            Some(list) => self.algorithms(list),
        };
        let rsa_bits = d
            .rsa_bits
            .as_ref()
            .and_then(|b| self.rsa_bits(b))
            .unwrap_or(2048);
        let sign_headers = match &d.sign_headers {
            None => DEFAULT_SIGN_HEADERS.iter().map(|s| s.to_string()).collect(),
            Some(list) => {
                let v = self.header_list(list, "sign_headers");
                if !v.iter().any(|h| h.eq_ignore_ascii_case("from")) {
                    self.d.error_help(
                        list.at(),
                        "sign_headers must include From",
                        "RFC 6376 §5.4 requires the From header field to be signed",
                    );
                }
                v
            }
        };
        let oversign_headers = match &d.oversign_headers {
            None => vec!["From".to_string()],
            Some(list) => {
                let v = self.header_list(list, "oversign_headers");
                if !v.iter().any(|h| h.eq_ignore_ascii_case("from")) {
                    self.d.error_help(
                        list.at(),
                        "oversign_headers must include From",
                        "without it a second From can be added after signing (RFC 6376 §8.15)",
                    );
                }
                for h in &v {
                    if !sign_headers.iter().any(|s| s.eq_ignore_ascii_case(h)) {
                        self.d.error_help(
                            list.at(),
                            format!("\"{h}\" is oversigned but not signed"),
                            "add it to sign_headers too",
                        );
                    }
                }
                v
            }
        };
        let expire = d
            .expire
            .as_ref()
            .map(|_| self.duration(&d.expire, "expire", Duration::ZERO));
        let record = self.record(&d.record, RecordFlags::default());
        Signing {
            header_canon,
            body_canon,
            algorithms,
            rsa_bits,
            sign_headers,
            oversign_headers,
            expire,
            record,
        }
    }

    fn hosts(
        &mut self,
        list: &Sp<Vec<Sp<String>>>,
        what: &str,
        warn_remote: bool,
    ) -> Vec<HostPattern> {
        let mut out = Vec::new();
        // Each pattern's canonical text: a list of 200,000 hosts is
        // checked for repeats in linear time.
        let mut seen = std::collections::HashSet::new();
        for h in &list.value {
            match parse_host_pattern(&h.value) {
                Ok(p) => {
                    if warn_remote && !p.is_loopback() {
                        if let HostPattern::Net(_, len) = p
                            && len < 8
                        {
                            {
                                self.d.error_help(
                                    h.at(),
                                    format!("{} covers far more than a local network", h.value),
                                    "every host in it could send mail signed with your keys",
                                );
                                continue;
                            }
                        }
                        if matches!(p, HostPattern::Name(_)) {
                            // Names are the admin's own hosts by nature.
                        } else {
                            self.d.push(
                                crate::report::Severity::Info,
                                h.at(),
                                format!("{} is not loopback: mail from it will be signed", h.value),
                                Some(
                                    "fine for your own relays; make sure it is one of yours".into(),
                                ),
                            );
                        }
                    }
                    if !seen.insert(p.to_string()) {
                        self.d.warning(
                            h.at(),
                            format!("{} is listed twice in {what}", h.value),
                            "remove one",
                        );
                    } else {
                        out.push(p);
                    }
                }
                Err(why) => self.d.error_help(
                    h.at(),
                    format!("invalid host \"{}\" in {what}: {why}", h.value),
                    "write an IPv4 or IPv6 address, a CIDR range (192.0.2.0/24) or a host name",
                ),
            }
        }
        out
    }

    fn trusted(&mut self, raw: &RawConfig) -> Trusted {
        let t = &raw.trusted;
        let internal_hosts = match &t.internal_hosts {
            None => vec![
                HostPattern::Addr(IpAddr::from([127, 0, 0, 1])),
                HostPattern::Addr("::1".parse().expect("literal")),
            ],
            Some(list) => self.hosts(list, "internal_hosts", true),
        };
        let external_ignore = match &t.external_ignore {
            None => internal_hosts.clone(),
            Some(list) => self.hosts(list, "external_ignore", false),
        };
        Trusted {
            internal_hosts,
            external_ignore,
        }
    }

    fn domains(&mut self, raw: &[RawDomain], service: &Service, signing: &Signing) -> Vec<Domain> {
        let mut out: Vec<Domain> = Vec::new();
        let mut spans: Vec<Option<Range<usize>>> = Vec::new();
        let mut key_from: Vec<Option<Sp<String>>> = Vec::new();
        // Index of each domain in `out` by name: ten thousand domains are
        // checked in linear time.
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for rd in raw {
            let Some(name_sp) = &rd.name else {
                self.d.error_help(
                    rd.span.clone(),
                    "[[domain]] without a name",
                    "add name = \"example.com\"",
                );
                continue;
            };
            let name = match normalize_domain(&name_sp.value) {
                Ok(n) => n,
                Err(why) => {
                    self.d.error(
                        name_sp.at(),
                        format!("invalid domain \"{}\": {why}", name_sp.value),
                    );
                    continue;
                }
            };
            if let Some(why) = crate::formats::names::look_alike(&name) {
                self.d.warning(
                    name_sp.at(),
                    format!("domain {name} is a look-alike: {why}"),
                    "readers take mail signed for it for mail from the name it imitates; make sure this is the domain you mean",
                );
            }
            if index.contains_key(&name) {
                self.d.error_help(
                    name_sp.at(),
                    format!("domain {name} is configured twice"),
                    "merge the two [[domain]] tables",
                );
                continue;
            }
            let algorithms = match &rd.algorithms {
                None => signing.algorithms.clone(),
                Some(list) => self.algorithms(list),
            };
            let record = self.record(&rd.record, signing.record);
            let mut keys = Vec::new();
            if let Some(sel) = &rd.selector {
                if !rd.keys.is_empty() {
                    self.d.error_help(
                        sel.at(),
                        "both `selector` and [[domain.key]] tables",
                        "`selector` is a short form for one key; move it into a [[domain.key]] table",
                    );
                } else if algorithms.len() > 1 {
                    self.d.error_help(
                        sel.at(),
                        "one `selector` cannot serve two algorithms",
                        "dual signing needs a selector per algorithm: add one [[domain.key]] table per algorithm, each with its selector and algorithm",
                    );
                } else if let Some(sel_name) = self.selector(sel) {
                    let alg = algorithms.first().copied().unwrap_or(Algorithm::RsaSha256);
                    keys.push(Key {
                        path: default_key_path(&service.key_dir, &name, &sel_name),
                        selector: sel_name,
                        algorithm: alg,
                        rsa_bits: signing.rsa_bits,
                        state: KeyState::Active,
                        created: None,
                        retire_after: None,
                        owner_domain: name.clone(),
                    });
                }
            }
            for rk in &rd.keys {
                if let Some(k) = self.key(rk, &name, service, signing, &algorithms) {
                    if keys.iter().any(|o: &Key| o.selector == k.selector) {
                        let at = rk.selector.as_ref().and_then(Sp::at);
                        self.d.error(
                            at,
                            format!("selector {} is used twice in {name}", k.selector),
                        );
                    } else {
                        keys.push(k);
                    }
                }
            }
            if rd.key_from.is_some() && (!keys.is_empty() || rd.selector.is_some()) {
                let at = rd.key_from.as_ref().and_then(Sp::at);
                self.d.error_help(
                    at,
                    "a domain with key_from has no keys of its own",
                    "remove its selector and [[domain.key]] tables, or remove key_from",
                );
            }
            // An invalid selector was reported already; "no key" would repeat it.
            let reported = keys.is_empty() && (rd.selector.is_some() || !rd.keys.is_empty());
            if rd.key_from.is_none() && !reported {
                self.check_key_set(&keys, &algorithms, &name, rd);
            }
            index.insert(name.clone(), out.len());
            out.push(Domain {
                name,
                subdomains: rd.subdomains.as_ref().is_some_and(|b| b.value),
                algorithms,
                keys,
                key_from: None,
                record,
            });
            spans.push(name_sp.at());
            key_from.push(rd.key_from.clone());
        }

        // Resolve `key_from` once every domain is known.
        for i in 0..out.len() {
            let Some(from) = &key_from[i] else { continue };
            let target = match normalize_domain(&from.value) {
                Ok(t) => t,
                Err(why) => {
                    self.d.error(
                        from.at(),
                        format!("invalid domain \"{}\": {why}", from.value),
                    );
                    continue;
                }
            };
            let Some(&j) = index.get(&target) else {
                self.d.error_help(
                    from.at(),
                    format!("key_from names {target}, which is not configured"),
                    "add a [[domain]] for it, or name a configured domain",
                );
                continue;
            };
            if key_from[j].is_some() {
                self.d.error_help(
                    from.at(),
                    format!("{target} itself takes its keys from another domain"),
                    "name the domain that owns the key files",
                );
                continue;
            }
            if j == i {
                self.d
                    .error(from.at(), "a domain cannot take its keys from itself");
                continue;
            }
            let keys = out[j].keys.clone();
            let algs = out[j].algorithms.clone();
            out[i].keys = keys;
            out[i].algorithms = algs;
            out[i].key_from = Some(target);
        }

        // One key file must not be claimed by two keys of different kinds.
        let mut by_path: BTreeMap<&Path, (&str, &Key)> = BTreeMap::new();
        let mut clashes = Vec::new();
        for d in &out {
            if d.key_from.is_some() {
                continue;
            }
            for k in &d.keys {
                if let Some((other_domain, other)) = by_path.get(k.path.as_path()) {
                    if other.algorithm != k.algorithm {
                        clashes.push(format!(
                            "{} is used as {} key by {other_domain} and as {} key by {}",
                            k.path.display(),
                            other.algorithm,
                            k.algorithm,
                            d.name
                        ));
                    }
                } else {
                    by_path.insert(&k.path, (&d.name, k));
                }
            }
        }
        for c in clashes {
            self.d.error(None, c);
        }
        out
    }

    /// OpenDKIM 2.11 signs every key with its one global
    /// `SignatureAlgorithm`: measured with the real daemon, an Ed25519 key
    /// beside an RSA key makes it answer 451 to every message ("expecting
    /// an rsa key"), or label RSA signatures ed25519-sha256 when the global
    /// algorithm is Ed25519. Its Ed25519 signatures with simple header
    /// canonicalization fail at every verifier. Both are refused here, at
    /// the line that asks for them (issue 17, point 1).
    fn opendkim_algorithms(&mut self, raw: &RawConfig, signing: &Signing, domains: &[Domain]) {
        let mut used: Vec<Algorithm> = Vec::new();
        for d in domains {
            for a in &d.algorithms {
                if !used.contains(a) {
                    used.push(*a);
                }
            }
        }
        // Point at the list that asks for two algorithms, else at the
        // domain whose algorithm differs from the first domain's.
        let at = raw
            .defaults
            .algorithms
            .as_ref()
            .filter(|l| l.value.len() > 1)
            .and_then(Sp::at)
            .or_else(|| {
                raw.domains.iter().find_map(|rd| {
                    rd.algorithms
                        .as_ref()
                        .filter(|l| {
                            l.value.len() > 1
                                || l.value
                                    .iter()
                                    .any(|a| Algorithm::parse(&a.value) != used.first().copied())
                        })
                        .and_then(Sp::at)
                })
            });
        if used.len() > 1 {
            self.d.error_help(
                at,
                "OpenDKIM signs every key with one algorithm: with rsa-sha256 and ed25519-sha256 keys it answers 451 to every message",
                "sign with one algorithm (algorithms = [\"rsa-sha256\"]), or set engine = \"bundled\" for RSA + Ed25519 dual signing",
            );
        } else if used == [Algorithm::Ed25519Sha256] && signing.header_canon == Canon::Simple {
            let at = raw.defaults.canonicalization.as_ref().and_then(Sp::at);
            self.d.error_help(
                at,
                "OpenDKIM 2.11 makes Ed25519 signatures with simple header canonicalization that no verifier accepts",
                "use canonicalization = \"relaxed/relaxed\", or engine = \"bundled\"",
            );
        }
    }

    fn check_key_set(
        &mut self,
        keys: &[Key],
        algorithms: &[Algorithm],
        name: &str,
        rd: &RawDomain,
    ) {
        if keys.is_empty() {
            self.d.error_help(
                rd.name.as_ref().and_then(Sp::at),
                format!("domain {name} has no key"),
                "add selector = \"...\" (one key), [[domain.key]] tables, or key_from = \"other.domain\"",
            );
            return;
        }
        for alg in algorithms {
            let active = keys
                .iter()
                .filter(|k| k.algorithm == *alg && k.state == KeyState::Active)
                .count();
            let pending = keys
                .iter()
                .any(|k| k.algorithm == *alg && k.state == KeyState::Pending);
            if active == 0 && pending {
                // A new domain (or algorithm) waiting for its record: the
                // same gate as a rotation.
                self.d.warning(
                    rd.name.as_ref().and_then(Sp::at),
                    format!(
                        "domain {name} signs nothing with {alg} yet: its {alg} key is pending"
                    ),
                    format!(
                        "publish the record (`dkimctl dns records`), then `dkimctl rotate {name} --continue` (or `rotate --auto`) makes it active"
                    ),
                );
            } else if active == 0 {
                self.d.error_help(
                    rd.name.as_ref().and_then(Sp::at),
                    format!("domain {name} signs with {alg} but has no active {alg} key"),
                    "mark one key state = \"active\", or remove the algorithm",
                );
            } else if active > 1 {
                self.d.error_help(
                    rd.name.as_ref().and_then(Sp::at),
                    format!("domain {name} has {active} active {alg} keys"),
                    "one key per algorithm signs; mark the others \"pending\" or \"retiring\"",
                );
            }
        }
        for k in keys {
            if k.state == KeyState::Active && !algorithms.contains(&k.algorithm) {
                self.d.error_help(
                    rd.name.as_ref().and_then(Sp::at),
                    format!(
                        "key {} of {name} is active but {name} does not sign with {}",
                        k.selector, k.algorithm
                    ),
                    "add the algorithm to the domain's algorithms, or change the key's state",
                );
            }
        }
    }

    fn selector(&mut self, sp: &Sp<String>) -> Option<String> {
        let lower = sp.value.to_ascii_lowercase();
        if is_selector(&lower) {
            Some(lower)
        } else {
            self.d.error_help(
                sp.at(),
                format!("invalid selector \"{}\"", sp.value),
                "a selector is one or more DNS labels of letters, digits and `-` (RFC 6376 §3.1)",
            );
            None
        }
    }

    fn key(
        &mut self,
        rk: &super::raw::RawKey,
        domain: &str,
        service: &Service,
        signing: &Signing,
        algorithms: &[Algorithm],
    ) -> Option<Key> {
        let Some(sel_sp) = &rk.selector else {
            self.d.error_help(
                rk.span.clone(),
                "[[domain.key]] without a selector",
                "add selector = \"...\"",
            );
            return None;
        };
        let selector = self.selector(sel_sp)?;
        let algorithm = match &rk.algorithm {
            None if algorithms.len() == 1 => algorithms[0],
            None => {
                self.d.error_help(
                    sel_sp.at(),
                    format!("key {selector} of {domain} needs an algorithm"),
                    "the domain signs with two algorithms; add algorithm = \"rsa-sha256\" or \"ed25519-sha256\"",
                );
                return None;
            }
            Some(a) => match Algorithm::parse(&a.value) {
                Some(alg) => alg,
                None => {
                    self.d.error_help(
                        a.at(),
                        format!("unknown algorithm \"{}\"", a.value),
                        "choose rsa-sha256 or ed25519-sha256",
                    );
                    return None;
                }
            },
        };
        let path = match &rk.path {
            None => default_key_path(&service.key_dir, domain, &selector),
            Some(p) => {
                let default = default_key_path(&service.key_dir, domain, &selector);
                let path = self.abs_path(&rk.path, "key path", &default.to_string_lossy());
                let outside = rk.outside_key_dir.as_ref().is_some_and(|b| b.value);
                if let Some(why) = unfit_for_keys(&path) {
                    self.d.error(p.at(), format!("keys must not live in {why}"));
                } else if !path.starts_with(&service.key_dir) && !outside {
                    // apply gives a key file to the service user: a path
                    // naming, say, the TLS key would hand that over.
                    self.d.error_help(
                        p.at(),
                        format!(
                            "key path {} is outside key_dir {}",
                            path.display(),
                            service.key_dir.display()
                        ),
                        "apply makes a key file the service user's; move the key below key_dir, \
                         or set outside_key_dir = true if this file is a DKIM key and nothing else",
                    );
                }
                path
            }
        };
        let rsa_bits = match &rk.rsa_bits {
            None => signing.rsa_bits,
            Some(b) => {
                if algorithm != Algorithm::RsaSha256 {
                    self.d
                        .error(b.at(), "rsa_bits only applies to rsa-sha256 keys");
                }
                self.rsa_bits(b).unwrap_or(signing.rsa_bits)
            }
        };
        let state = self.word(
            &rk.state,
            "key state",
            &[
                ("active", KeyState::Active),
                ("pending", KeyState::Pending),
                ("retiring", KeyState::Retiring),
                ("retired", KeyState::Retired),
            ],
            KeyState::Active,
        );
        let created = rk.created.as_ref().and_then(|d| self.date(d));
        let retire_after = rk.retire_after.as_ref().and_then(|d| self.date(d));
        Some(Key {
            selector,
            algorithm,
            path,
            rsa_bits,
            state,
            created,
            retire_after,
            owner_domain: domain.to_string(),
        })
    }

    fn date(&mut self, sp: &Sp<String>) -> Option<Date> {
        let date = Date::parse(&sp.value);
        if date.is_none() {
            self.d.error_help(
                sp.at(),
                format!("invalid date \"{}\"", sp.value),
                "write YYYY-MM-DD, a day that exists",
            );
        }
        date
    }

    fn engine(&mut self, raw: &RawConfig, kind: EngineKind, mta: &Mta) -> Engine {
        let e = &raw.engine;
        let sign_daemon_names = match (&e.sign_daemon_names, kind) {
            // Sendmail names its daemons in DAEMON_OPTIONS (Debian:
            // MTA-v4/MTA-v6 on port 25, MSP-v4/MSP-v6 on the submission
            // port) and hands the name to milters as {daemon_name};
            // `sendmail -t` relays through MTA-v4 from 127.0.0.1, an
            // internal host. Signing what the submission daemons accept
            // is what ORIGINATING (master.cf's submission service) is to
            // Postfix.
            (None, EngineKind::Bundled) if matches!(mta, Mta::Sendmail { .. }) => {
                vec!["MSP-v4".to_string(), "MSP-v6".to_string()]
            }
            (None, EngineKind::Bundled) => vec!["ORIGINATING".to_string()],
            // OpenDKIM signs authenticated senders and internal hosts by
            // itself; its `MTA` setting would only log "no MTA name match"
            // for every other message.
            (None, EngineKind::OpenDkim) => Vec::new(),
            (Some(list), _) => list.value.iter().map(|s| s.value.clone()).collect(),
        };
        let max_connections = match &e.max_connections {
            None => 4096,
            Some(sp) if (1..=1_000_000).contains(&sp.value) => sp.value as usize,
            Some(sp) => {
                self.d.error_help(
                    sp.at(),
                    "max_connections must be between 1 and 1000000",
                    "e.g. 4096",
                );
                4096
            }
        };
        let idle_timeout = self.duration(&e.idle_timeout, "idle_timeout", Duration::from_secs(300));
        let dns_timeout = self.duration(&e.dns_timeout, "dns_timeout", Duration::from_secs(5));
        let mut nameservers = Vec::new();
        if let Some(list) = &e.nameservers {
            for ns in &list.value {
                match parse_nameserver(&ns.value).ok() {
                    Some(a) => nameservers.push(a),
                    None => self.d.error_help(
                        ns.at(),
                        format!("invalid name server \"{}\"", ns.value),
                        "write IP or IP:PORT, e.g. \"127.0.0.1:5353\" or \"[::1]:53\"",
                    ),
                }
            }
        }
        let verify_max_size = self.size(&e.verify_max_size, "verify_max_size", 32 << 20);
        let max_header_size = self.size(&e.max_header_size, "max_header_size", 1 << 20);
        let metrics = e
            .metrics
            .as_ref()
            .and_then(|sp| match sp.value.parse::<SocketAddr>() {
                Ok(a) if a.ip().is_loopback() => Some(a),
                Ok(_) => {
                    self.d.error_help(
                        sp.at(),
                        "the metrics endpoint must listen on loopback",
                        "e.g. \"127.0.0.1:9177\"",
                    );
                    None
                }
                Err(_) => {
                    self.d.error_help(
                        sp.at(),
                        format!("invalid metrics address \"{}\"", sp.value),
                        "e.g. \"127.0.0.1:9177\"",
                    );
                    None
                }
            });
        let f = &e.on_failure;
        let actions = [
            ("accept", Action::Accept),
            ("tempfail", Action::Tempfail),
            ("reject", Action::Reject),
        ];
        let on_failure = FailurePolicy {
            no_key: self.word(&f.no_key, "action", &actions, Action::Accept),
            key_unreadable: self.word(&f.key_unreadable, "action", &actions, Action::Tempfail),
            sign_error: self.word(&f.sign_error, "action", &actions, Action::Tempfail),
            dns_error: self.word(&f.dns_error, "action", &actions, Action::Accept),
            bad_signature: self.word(&f.bad_signature, "action", &actions, Action::Accept),
            no_signature: self.word(&f.no_signature, "action", &actions, Action::Accept),
            bad_from: self.word(&f.bad_from, "action", &actions, Action::Reject),
            oversized: self.word(&f.oversized, "action", &actions, Action::Accept),
        };
        for (sp, what) in [
            (&f.key_unreadable, "key_unreadable"),
            (&f.sign_error, "sign_error"),
        ] {
            if let Some(sp) = sp
                && sp.value == "accept"
            {
                {
                    self.d.warning(
                        sp.at(),
                        format!("{what} = \"accept\" sends mail unsigned when signing fails"),
                        "\"tempfail\" keeps it queued until the problem is fixed",
                    );
                }
            }
        }
        Engine {
            sign_daemon_names,
            max_connections,
            idle_timeout,
            dns_timeout,
            nameservers,
            verify_max_size,
            max_header_size,
            require_safe_keys: e.require_safe_keys.as_ref().is_none_or(|b| b.value),
            metrics,
            on_failure,
        }
    }

    fn rotation(&mut self, raw: &RawConfig) -> Rotation {
        let r = &raw.rotation;
        let grace = self.duration(&r.grace, "grace", Duration::from_secs(7 * 86400));
        let every = r.every.as_ref().map(|sp| {
            let every = self.duration(&r.every, "every", Duration::from_secs(90 * 86400));
            if every < Duration::from_secs(2 * 86400) {
                self.d.error_help(
                    sp.at(),
                    format!("every = \"{}\" is too short", sp.value),
                    "a rotation takes at least two days (one to publish, one to switch); \
                     M3AAWG recommends at most 6 months, e.g. \"90d\"",
                );
            } else if every <= grace {
                self.d.warning(
                    sp.at(),
                    format!(
                        "every = \"{}\" is not longer than grace: a new rotation starts before \
                         the old key is retired",
                        sp.value
                    ),
                    "make every longer than grace",
                );
            }
            every
        });
        let selector = match &r.selector {
            None => DEFAULT_SELECTOR_PATTERN.to_string(),
            Some(sp) => match check_selector_pattern(&sp.value) {
                Ok(()) => sp.value.to_ascii_lowercase(),
                Err(why) => {
                    self.d.error_help(
                        sp.at(),
                        format!("invalid selector pattern \"{}\": {why}", sp.value),
                        "use {date} (YYYYMMDD), {host} (the short host name), letters, digits \
                         and `-`, e.g. \"{host}-{date}\"",
                    );
                    DEFAULT_SELECTOR_PATTERN.to_string()
                }
            },
        };
        let publish_retired = match (&r.publish_retired, &r.publish_retired_url) {
            (None, None) => None,
            (Some(dir), None) => {
                self.d.error_help(
                    dir.at(),
                    "publish_retired needs publish_retired_url",
                    "the URL the web server publishes the directory at, e.g. \
                     \"https://example.com/dkim-retired/\"",
                );
                None
            }
            (None, Some(url)) => {
                self.d.error_help(
                    url.at(),
                    "publish_retired_url needs publish_retired",
                    "the directory the web server publishes, e.g. \"/var/www/dkim-retired\"",
                );
                None
            }
            (Some(_), Some(url)) => {
                let dir = self.abs_path(
                    &r.publish_retired,
                    "publish_retired",
                    "/var/www/dkim-retired",
                );
                match check_note_url(&url.value) {
                    Ok(()) => Some(PublishRetired {
                        dir,
                        url: if url.value.ends_with('/') {
                            url.value.clone()
                        } else {
                            format!("{}/", url.value)
                        },
                    }),
                    Err(why) => {
                        self.d.error_help(
                            url.at(),
                            format!("invalid publish_retired_url: {why}"),
                            "an http:// or https:// URL without spaces, `;` or `=`",
                        );
                        None
                    }
                }
            }
        };
        Rotation {
            grace,
            retired_keys: self.word(
                &r.retired_keys,
                "retired_keys choice",
                &[
                    ("archive", RetiredKeys::Archive),
                    ("delete", RetiredKeys::Delete),
                ],
                RetiredKeys::Archive,
            ),
            every,
            selector,
            publish_retired,
        }
    }

    fn dns(&mut self, raw: &RawConfig, domains: &[Domain]) -> Dns {
        #[derive(Clone, Copy, PartialEq)]
        enum U {
            Manual,
            Rfc2136,
            Zonefile,
        }
        let r = &raw.dns;
        let update = self.word(
            &r.update,
            "update method",
            &[
                ("manual", U::Manual),
                ("rfc2136", U::Rfc2136),
                ("zonefile", U::Zonefile),
            ],
            U::Manual,
        );
        // A missing key is reported at the `[dns]` header.
        let update_at = r.span.clone().or(r.update.as_ref().and_then(Sp::at));
        // Keys that belong to one method only.
        let only = |v: &mut Self, sp: Option<Range<usize>>, key: &str, method: &str| {
            v.d.error_help(
                sp,
                format!("`{key}` is only used with update = \"{method}\""),
                format!("remove it, or set update = \"{method}\""),
            );
        };
        let server = match &r.server {
            Some(sp) if update != U::Rfc2136 => {
                only(self, sp.at(), "server", "rfc2136");
                None
            }
            Some(sp) => match parse_nameserver(&sp.value) {
                Ok(a) => Some(a),
                Err(_) => {
                    self.d.error_help(
                        sp.at(),
                        format!("invalid server \"{}\"", sp.value),
                        "write IP or IP:PORT of the zone's primary, e.g. \"192.0.2.53\"",
                    );
                    None
                }
            },
            None => None,
        };
        if let Some(sp) = &r.tsig_key_file
            && update != U::Rfc2136
        {
            only(self, sp.at(), "tsig_key_file", "rfc2136");
        }
        for (sp, key) in [(&r.zonefile, "zonefile")] {
            if let Some(sp) = sp
                && update != U::Zonefile
            {
                only(self, sp.at(), key, "zonefile");
            }
        }
        if let Some(sp) = &r.reload
            && update != U::Zonefile
        {
            only(self, sp.at(), "reload", "zonefile");
        }
        let update = match update {
            U::Manual => DnsUpdate::Manual,
            U::Rfc2136 => {
                if r.tsig_key_file.is_none() {
                    self.d.error_help(
                        update_at.clone(),
                        "update = \"rfc2136\" needs tsig_key_file",
                        "create the key with `tsig-keygen -a hmac-sha256 dkimctl > \
                         /etc/dkimctl/tsig.key` (mode 0600), allow it to update the zone on the \
                         server, and set tsig_key_file = \"/etc/dkimctl/tsig.key\"",
                    );
                }
                DnsUpdate::Rfc2136 {
                    server,
                    tsig_key_file: self.abs_path(
                        &r.tsig_key_file,
                        "tsig_key_file",
                        "/etc/dkimctl/tsig.key",
                    ),
                }
            }
            U::Zonefile => {
                if r.zonefile.is_none() {
                    self.d.error_help(
                        update_at.clone(),
                        "update = \"zonefile\" needs zonefile",
                        "the file dkimctl writes the records into, e.g. \
                         zonefile = \"/var/lib/knot/dkim.example.com.zone\"",
                    );
                }
                let reload = match &r.reload {
                    None => Vec::new(),
                    Some(list) => {
                        let words: Vec<String> =
                            list.value.iter().map(|w| w.value.clone()).collect();
                        if words.first().is_none_or(|w| w.trim().is_empty()) {
                            self.d.error_help(
                                list.at(),
                                "reload must name a program",
                                "e.g. reload = [\"knotc\", \"zone-reload\", \"example.com\"]",
                            );
                        }
                        words
                    }
                };
                DnsUpdate::Zonefile {
                    path: self.abs_path(&r.zonefile, "zonefile", "/var/lib/dkimctl/dkim.zone"),
                    reload,
                }
            }
        };
        let zone = r
            .zone
            .as_ref()
            .and_then(|sp| match normalize_domain(&sp.value) {
                Ok(zone) => {
                    let outside: Vec<&str> = domains
                        .iter()
                        .map(|d| d.name.as_str())
                        .filter(|d| !in_zone(d, &zone))
                        .collect();
                    if !outside.is_empty() {
                        self.d.error_help(
                            sp.at(),
                            format!(
                                "{} {} not inside zone {zone}",
                                outside.join(", "),
                                if outside.len() == 1 { "is" } else { "are" }
                            ),
                            "remove `zone` to find each domain's zone by an SOA lookup",
                        );
                    }
                    Some(zone)
                }
                Err(_) => {
                    self.d.error_help(
                        sp.at(),
                        format!("invalid zone \"{}\"", sp.value),
                        "the zone's apex, e.g. \"example.com\"",
                    );
                    None
                }
            });
        let ttl = self.duration(&r.ttl, "ttl", Duration::from_secs(3600));
        if let Some(sp) = &r.ttl
            && ttl > Duration::from_secs(86400)
        {
            self.d.error_help(
                sp.at(),
                format!("ttl = \"{}\" is longer than a day", sp.value),
                "a DKIM record changes at every rotation; \"1h\" is usual",
            );
        }
        let mut authoritative = Vec::new();
        if let Some(list) = &r.authoritative {
            for ns in &list.value {
                match parse_nameserver(&ns.value) {
                    Ok(a) => authoritative.push(a),
                    Err(_) => self.d.error_help(
                        ns.at(),
                        format!("invalid name server \"{}\"", ns.value),
                        "write IP or IP:PORT, e.g. \"192.0.2.53\"",
                    ),
                }
            }
        }
        Dns {
            update,
            zone,
            ttl,
            authoritative,
        }
    }
}

/// The default `[rotation] selector`.
pub const DEFAULT_SELECTOR_PATTERN: &str = "{date}";

/// True when `name` is `zone` or below it.
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// Checks a `[rotation] selector` pattern: `{date}` once, `{host}` at
/// most once, and selector characters around them.
fn check_selector_pattern(p: &str) -> Result<(), String> {
    if p.matches("{date}").count() != 1 {
        return Err("it must contain {date} once".into());
    }
    if p.matches("{host}").count() > 1 {
        return Err("{host} may appear once".into());
    }
    let sample = p
        .to_ascii_lowercase()
        .replace("{date}", "20260101")
        .replace("{host}", "mx1");
    if sample.contains(['{', '}']) {
        return Err("the only placeholders are {date} and {host}".into());
    }
    // Room for the `r`/`e` and `b`..`z` suffixes within one DNS label.
    if !is_selector(&sample) || sample.contains('.') || sample.len() > 40 {
        return Err("the selector must be one short DNS label: letters, digits and `-`".into());
    }
    Ok(())
}

/// A URL fit for a DKIM key record's `n=` note (RFC 6376 §3.6.1: a
/// qp-section, so no `;` and no white space).
fn check_note_url(u: &str) -> Result<(), String> {
    if !(u.starts_with("https://") || u.starts_with("http://")) {
        return Err("it must start with https:// or http://".into());
    }
    if u.bytes()
        .any(|b| !(0x21..=0x7e).contains(&b) || b == b';' || b == b'=')
    {
        return Err("it must not contain spaces, `;`, `=` or non-ASCII characters".into());
    }
    Ok(())
}

/// Why keys must not live at or below `p`, if they must not: directories
/// anyone may create files in (a sticky bit keeps others from removing
/// yours, not from planting names before you), shared memory, and kernel
/// file systems.
fn unfit_for_keys(p: &Path) -> Option<&'static str> {
    const WORLD_WRITABLE: &[&str] = &[
        "/tmp",
        "/var/tmp",
        "/dev/shm",
        "/run/shm",
        "/run/lock",
        "/var/lock",
    ];
    if WORLD_WRITABLE.iter().any(|d| p.starts_with(d)) {
        return Some("a world-writable directory");
    }
    if ["/dev", "/proc", "/sys"].iter().any(|d| p.starts_with(d)) {
        return Some("a kernel file system");
    }
    None
}

/// `{key_dir}/{domain}/{selector}.private`, opendkim-genkey's naming, one
/// folder per domain as the ArchWiki page advises.
pub fn default_key_path(key_dir: &Path, domain: &str, selector: &str) -> PathBuf {
    key_dir.join(domain).join(format!("{selector}.private"))
}

/// Parses a socket in any of the notations admins meet:
/// `unix:/p`, `local:/p`, `/p`, `inet:PORT@HOST`, `inet6:PORT@[HOST]`
/// (OpenDKIM, Sendmail) and `inet:HOST:PORT`, `inet:[HOST]:PORT` (Postfix).
pub fn parse_socket(s: &str) -> Result<Socket, String> {
    let s = s.trim();
    let unix = s.strip_prefix("unix:").or_else(|| s.strip_prefix("local:"));
    if let Some(p) = unix.or_else(|| s.starts_with('/').then_some(s)) {
        let path = PathBuf::from(p);
        if !path.is_absolute() {
            return Err("a unix socket path must be absolute".into());
        }
        return Ok(Socket::Unix(path));
    }
    let rest = s
        .strip_prefix("inet6:")
        .or_else(|| s.strip_prefix("inet:"))
        .ok_or_else(|| "unknown socket type".to_string())?;
    let (host, port) = if let Some((port, host)) = rest.split_once('@') {
        (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
        )
    } else if let Some(stripped) = rest.strip_prefix('[') {
        let (host, port) = stripped
            .split_once("]:")
            .ok_or_else(|| "expected [HOST]:PORT".to_string())?;
        (host.to_string(), port)
    } else if let Some((host, port)) = rest.rsplit_once(':') {
        (host.to_string(), port)
    } else {
        // OpenDKIM's `inet:PORT` listens on every interface.
        ("0.0.0.0".to_string(), rest)
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid port \"{port}\""))?;
    if port == 0 {
        return Err("port 0 is not a port".into());
    }
    if host.is_empty() {
        return Err("missing host".into());
    }
    if !host.eq_ignore_ascii_case("localhost") && host.parse::<IpAddr>().is_err() {
        return Err(format!("\"{host}\" is not an IP address or localhost"));
    }
    let host = if host.eq_ignore_ascii_case("localhost") {
        "localhost".to_string()
    } else {
        host
    };
    Ok(Socket::Inet { host, port })
}

/// Parses `HEADER/BODY` canonicalization; a lone word applies to the
/// header with a simple body, as OpenDKIM reads it.
pub fn parse_canonicalization(s: &str) -> Option<(Canon, Canon)> {
    let word = |w: &str| match w.trim().to_ascii_lowercase().as_str() {
        "simple" => Some(Canon::Simple),
        "relaxed" => Some(Canon::Relaxed),
        _ => None,
    };
    match s.split_once('/') {
        Some((h, b)) => Some((word(h)?, word(b)?)),
        None => Some((word(s)?, Canon::Simple)),
    }
}

fn is_authserv_id(s: &str) -> bool {
    // A name of dots only would match no header once the final dot is
    // ignored, so forged results claiming it would be kept.
    s.bytes().any(|b| b.is_ascii_alphanumeric())
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// RFC 5322 field name: printable ASCII except colon.
fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

fn is_master_service_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:[]".contains(&b))
}

/// Parses `30s`, `5m`, `12h`, `7d`, `2w` (a bare number means seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return None,
    };
    n.checked_mul(mult).map(Duration::from_secs)
}

/// Parses `1048576`, `256K`, `10M`, `1G` (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon names signed by default are the MTA's own: Postfix's
    /// submission service announces ORIGINATING, Debian's sendmail.mc
    /// names its submission daemons MSP-v4 and MSP-v6 (the names the
    /// milter receives as {daemon_name}; tests/sendmail.rs sees MTA-v4
    /// arrive for port 25). OpenDKIM gets none; a list in the file wins.
    #[test]
    fn sign_daemon_names_fit_the_mta() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            ("bundled", "postfix", "", &["ORIGINATING"]),
            ("bundled", "sendmail", "", &["MSP-v4", "MSP-v6"]),
            ("bundled", "none", "", &["ORIGINATING"]),
            ("opendkim", "sendmail", "", &[]),
            (
                "bundled",
                "sendmail",
                "[engine]\nsign_daemon_names = [\"MSA\"]\n",
                &["MSA"],
            ),
        ];
        for (engine, mta, extra, want) in cases {
            let text = format!(
                "[service]\nengine = \"{engine}\"\n[defaults]\nalgorithms = [\"rsa-sha256\"]\n\
                 [[domain]]\nname = \"example.com\"\n[[domain.key]]\nselector = \"s1\"\n\
                 [mta]\nkind = \"{mta}\"\n{extra}"
            );
            let source = crate::config::Source {
                real: PathBuf::from("/etc/dkimctl/dkim.toml"),
                host: PathBuf::from("/etc/dkimctl/dkim.toml"),
                display: "dkim.toml".into(),
            };
            let loaded = crate::config::parse(&text, &source);
            let c = loaded.config.unwrap_or_else(|| panic!("{text}"));
            assert_eq!(c.engine.sign_daemon_names, *want, "{engine} with {mta}");
        }
    }

    #[test]
    fn socket_notations_normalise() {
        let tcp = |h: &str, p| Socket::Inet {
            host: h.into(),
            port: p,
        };
        let cases: &[(&str, Socket)] = &[
            ("inet:8891@localhost", tcp("localhost", 8891)),
            ("inet:localhost:8891", tcp("localhost", 8891)),
            ("inet:127.0.0.1:8891", tcp("127.0.0.1", 8891)),
            ("inet:8891@127.0.0.1", tcp("127.0.0.1", 8891)),
            ("inet6:8891@[::1]", tcp("::1", 8891)),
            ("inet:[::1]:8891", tcp("::1", 8891)),
            (
                "local:/run/opendkim/opendkim.sock",
                Socket::Unix("/run/opendkim/opendkim.sock".into()),
            ),
            ("unix:/run/x/y.sock", Socket::Unix("/run/x/y.sock".into())),
            ("/run/x/y.sock", Socket::Unix("/run/x/y.sock".into())),
        ];
        for (text, want) in cases {
            assert_eq!(&parse_socket(text).unwrap(), want, "{text}");
        }
        assert!(parse_socket("inet:99999@localhost").is_err());
        assert!(parse_socket("inet:8891@mail.example.com").is_err());
        assert!(parse_socket("unix:relative").is_err());
        assert_eq!(tcp("localhost", 8891).opendkim(), "inet:8891@localhost");
        assert_eq!(tcp("localhost", 8891).postfix(None), "inet:localhost:8891");
        assert_eq!(tcp("::1", 8891).opendkim(), "inet6:8891@[::1]");
        let chrooted = Socket::Unix("/var/spool/postfix/dkimctl/dkimctl.sock".into());
        assert_eq!(
            chrooted.postfix(Some(Path::new("/var/spool/postfix"))),
            "unix:/dkimctl/dkimctl.sock"
        );
    }

    #[test]
    fn host_patterns() {
        assert_eq!(
            parse_host_pattern("192.0.2.0/24").unwrap(),
            HostPattern::Net([192, 0, 2, 0].into(), 24)
        );
        assert!(parse_host_pattern("192.0.2.1/24").is_err());
        assert!(parse_host_pattern("::1").unwrap().is_loopback());
        assert_eq!(
            parse_host_pattern("Example1.COM").unwrap(),
            HostPattern::Name("example1.com".into())
        );
        assert_eq!(
            parse_host_pattern("localhost").unwrap(),
            HostPattern::Name("localhost".into())
        );
        let net = parse_host_pattern("2001:db8::/32").unwrap();
        assert!(net.contains("2001:db8::5".parse().unwrap()));
        assert!(!net.contains("2001:db9::5".parse().unwrap()));
        let v4 = parse_host_pattern("10.1.0.0/16").unwrap();
        assert!(v4.contains("::ffff:10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn domains_and_selectors() {
        assert_eq!(
            normalize_domain("Bücher.Example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert!(normalize_domain("example").is_err());
        assert!(normalize_domain("-a.example").is_err());
        assert!(is_selector("2026a.rsa"));
        assert!(!is_selector("a_b"));
        assert!(!is_selector(""));
    }

    #[test]
    fn durations_sizes_canonicalization() {
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604800)));
        assert_eq!(parse_duration("5 m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_size("10M"), Some(10 << 20));
        assert_eq!(
            parse_canonicalization("relaxed/simple"),
            Some((Canon::Relaxed, Canon::Simple))
        );
        assert_eq!(
            parse_canonicalization("relaxed"),
            Some((Canon::Relaxed, Canon::Simple))
        );
        assert_eq!(parse_canonicalization("loose/simple"), None);
    }

    #[test]
    fn authserv_ids() {
        assert!(is_authserv_id("mx.example.net"));
        assert!(is_authserv_id("mx.example.net."));
        assert!(is_authserv_id("mail_1"));
        // Dots only: no header would match it once its final dot is
        // ignored (found by the auth_results fuzz target).
        assert!(!is_authserv_id("."));
        assert!(!is_authserv_id("..."));
        assert!(!is_authserv_id(""));
        assert!(!is_authserv_id("mx example"));
        assert!(!is_authserv_id(&"a".repeat(256)));
    }
}
