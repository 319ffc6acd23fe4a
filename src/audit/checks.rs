//! The checks: the gathered [`System`] (and dkim.toml, when given) in,
//! findings out. Each check reads the snapshot only; none of them touches
//! the filesystem except through the snapshot's [`Reader`](crate::host::Reader) (metadata and
//! key files), and none writes.
//!
//! The checks follow the ArchWiki OpenDKIM page's advice and the failure
//! modes it documents: a daemon that keeps root, a TCP socket where a
//! unix socket and file permissions would do, temporary files in `/tmp`,
//! a socket Postfix cannot reach (wrong notation, chroot, umask, group),
//! `milter_protocol` ("milter-reject: END-OF-MESSAGE"), unsafe keys
//! (OpenDKIM's "key data is not secure"), tables that do not match up.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::AuditOptions;
use super::findings::{Finding, Origin, id};
use super::inventory::{OpenDkim, System, owner_mode, read_finding};
use super::mta::{self, Chroot};
use super::systemd::{self, Unit};
use crate::config::Config;
use crate::config::model::{Canon, EngineKind, HostPattern, Socket};
use crate::config::validate::{parse_canonicalization, parse_socket};
use crate::formats::opendkim::{self, Dataset, Host, KeySource};
use crate::formats::postfix::{Endpoint, View, endpoint, entry_parts, milter_entries};
use crate::host::ReadError;
use crate::host::accounts::Accounts;
use crate::keys;
use crate::report::Severity;

/// Runs every check and returns the findings (unsorted).
pub fn run(sys: &System, config: Option<&Config>, opts: &AuditOptions) -> Vec<Finding> {
    let mut c = Checks {
        sys,
        config,
        opts,
        out: sys.findings.clone(),
    };
    let milter = c.milter();
    if let Some(od) = &sys.opendkim {
        let unit = sys.unit("opendkim.service");
        c.identity(od, unit);
        c.directories(od, unit);
        c.tables(od);
        c.trusted(od);
        c.signing_settings(od);
        c.settings_that_weaken(od);
        c.readable_secrets(od);
        if unit.is_none() {
            c.push(Finding::new(
                id::NO_UNIT,
                Severity::Info,
                Some(&Origin::file(&od.conf_path)),
                "no opendkim.service unit was found",
                "the unit's user and hardening could not be checked",
                "install the distribution's unit, or let dkimctl render a hardened one",
            ));
        }
    }
    if let Some(m) = &milter {
        c.socket_basics(m);
        let connected = c.postfix_links(m) | c.sendmail_links(m);
        // The defaults matter as soon as Postfix calls a milter, even one
        // it cannot reach.
        if connected || sys.postfix.as_ref().is_some_and(has_milter_lists) {
            c.postfix_params();
        }
        c.socket_access(m);
    }
    if let Some(side) = &sys.sendmail_side {
        let ours = milter
            .as_ref()
            .and_then(|m| m.socket.as_ref())
            .map(|s| &s.0);
        c.out
            .extend(super::sendmail::check(side, ours, &sys.reader, opts));
    }
    c.keys();
    c.key_algorithms();
    c.units();
    if sys.postfix.is_none() && sys.sendmail.is_none() {
        c.push(Finding::new(
            id::NO_MTA,
            Severity::Info,
            None,
            "no Postfix main.cf and no sendmail.mc were found",
            "whether the MTA reaches the milter was not checked",
            "nothing to do if this host runs no MTA",
        ));
    }
    c.out
}

/// The milter as the MTA sees it: its socket and who creates it.
struct Milter<'a> {
    /// "OpenDKIM" or "the bundled engine".
    what: &'static str,
    /// The socket, as parsed, as written, and where.
    socket: Option<(Socket, String, Origin)>,
    /// The user it runs as (`None`: root).
    user: Option<String>,
    /// Its group, when set explicitly (else the user's primary group).
    group: Option<String>,
    /// The umask applied to the socket, explicit or not, and where set.
    umask: (u32, Option<Origin>),
    /// Its unit, if any.
    unit: Option<&'a Unit>,
}

struct Checks<'a> {
    sys: &'a System,
    config: Option<&'a Config>,
    opts: &'a AuditOptions,
    out: Vec<Finding>,
}

/// The user (and group) OpenDKIM ends up running as, and where that is
/// set: `-u`, then `UserID`, then the unit's `User=`/`Group=`.
pub(crate) fn run_as(
    od: &OpenDkim,
    unit: Option<&Unit>,
) -> (Option<(String, Origin)>, Option<String>) {
    let from_conf = od
        .cmdline
        .user
        .clone()
        .or_else(|| od.get("UserID").map(|s| (s.value.clone(), s.at.clone())));
    if let Some((v, at)) = from_conf {
        let (user, group) = match v.split_once(':') {
            Some((u, g)) => (u.to_string(), Some(g.to_string())),
            None => (v.clone(), None),
        };
        let group = group.or_else(|| {
            unit.and_then(|u| u.get("Service", "Group"))
                .map(|d| d.value.clone())
        });
        return (Some((user, at)), group);
    }
    if let Some(u) = unit.and_then(|u| u.get("Service", "User")) {
        let group = unit
            .and_then(|u| u.get("Service", "Group"))
            .map(|d| d.value.clone());
        return (Some((u.value.clone(), u.at.clone())), group);
    }
    (None, None)
}

fn is_root_name(name: &str) -> bool {
    name == "root" || name == "0"
}

/// Every group id a user has: its primary group and its memberships.
fn group_ids(accounts: &Accounts, user: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    if let Some(u) = accounts.user(user) {
        out.insert(u.gid);
    }
    for g in accounts.groups() {
        if g.members.iter().any(|m| m == user) {
            out.insert(g.gid);
        }
    }
    out
}

/// A group's gid by name (or numeric).
fn gid_of(accounts: &Accounts, group: &str) -> Option<u32> {
    accounts
        .group(group)
        .map(|g| g.gid)
        .or_else(|| group.parse().ok())
}

/// True for addresses that belong to no one on the Internet: loopback,
/// RFC 1918, shared (RFC 6598), link-local, unique-local IPv6.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// True when a whole network lies in private space.
fn is_private_net(ip: IpAddr, len: u8) -> bool {
    let min = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            match o[0] {
                127 | 10 => 8,
                172 if (16..32).contains(&o[1]) => 12,
                192 if o[1] == 168 => 16,
                169 if o[1] == 254 => 16,
                100 if (64..128).contains(&o[1]) => 10,
                _ => return false,
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if (s[0] & 0xfe00) == 0xfc00 {
                7
            } else if (s[0] & 0xffc0) == 0xfe80 {
                10
            } else if v6.is_loopback() {
                128
            } else {
                return false;
            }
        }
    };
    len >= min
}

/// The line of `/etc/group` that defines `group`.
fn group_line(sys: &System, group: &str) -> Origin {
    let path = Path::new("/etc/group");
    let line = sys.reader.read(path).ok().and_then(|t| {
        t.split('\n')
            .position(|l| l.split(':').next() == Some(group))
            .map(|i| i + 1)
    });
    Origin {
        file: path.to_path_buf(),
        line,
    }
}

/// Who reads the private keys.
struct KeyReader {
    name: String,
    uid: u32,
    groups: BTreeSet<u32>,
    /// OpenDKIM, with its dkimf_securefile() rules.
    opendkim: bool,
}

/// Another user in group `gid` besides the key reader and root: one whose
/// primary group it is, or a listed member (dkimf_checkfsnode's test).
fn shares_group(acc: &Accounts, gid: u32, r: &KeyReader) -> Option<String> {
    let primary = acc
        .users()
        .iter()
        .find(|u| u.gid == gid && u.uid != r.uid && u.uid != 0)
        .map(|u| u.name.clone());
    primary.or_else(|| {
        acc.groups()
            .iter()
            .find(|g| g.gid == gid)?
            .members
            .iter()
            .find(|m| **m != r.name && *m != "root")
            .cloned()
    })
}

/// Where a socket directory's owner and mode come from.
struct DirInfo {
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    at: Origin,
    what: String,
}

impl<'a> Checks<'a> {
    fn push(&mut self, f: Finding) {
        self.out.push(f);
    }

    fn accounts(&self) -> Option<&'a Accounts> {
        self.sys.accounts.as_ref()
    }

    /// The milter the MTA should reach: OpenDKIM when its configuration
    /// was found (and dkim.toml does not say bundled), else the bundled
    /// engine of dkim.toml.
    fn milter(&self) -> Option<Milter<'a>> {
        let bundled = self
            .config
            .filter(|c| c.service.engine == EngineKind::Bundled || self.sys.opendkim.is_none());
        if let (Some(od), None) = (&self.sys.opendkim, bundled) {
            let unit = self.sys.unit("opendkim.service");
            let (user, group) = run_as(od, unit);
            let socket = od
                .socket()
                .and_then(|(text, at)| parse_socket(&text).ok().map(|s| (s, text, at)));
            let umask = match od.get("UMask") {
                Some(s) => (
                    opendkim::parse_c_int(&s.value).unwrap_or(0o022) as u32 & 0o777,
                    Some(s.at.clone()),
                ),
                None => match unit.and_then(|u| u.get("Service", "UMask")) {
                    Some(d) => (
                        u32::from_str_radix(&d.value, 8).unwrap_or(0o022) & 0o777,
                        Some(d.at.clone()),
                    ),
                    None => (0o022, None),
                },
            };
            return Some(Milter {
                what: "OpenDKIM",
                socket,
                user: user.map(|(u, _)| u).filter(|u| !is_root_name(u)),
                group,
                umask,
                unit,
            });
        }
        let c = bundled?;
        let at = Origin::file(&c.source);
        Some(Milter {
            what: match c.service.engine {
                EngineKind::Bundled => "the bundled engine",
                EngineKind::OpenDkim => "OpenDKIM",
            },
            socket: Some((
                c.service.socket.clone(),
                c.service.socket.to_string(),
                at.clone(),
            )),
            user: Some(c.service.user.clone()),
            group: Some(c.service.group.clone()),
            umask: (c.service.umask, Some(at)),
            unit: self.sys.unit(match c.service.engine {
                EngineKind::Bundled => "dkimctl.service",
                EngineKind::OpenDkim => "opendkim.service",
            }),
        })
    }

    /// Who OpenDKIM runs as.
    fn identity(&mut self, od: &OpenDkim, unit: Option<&Unit>) {
        let (user, _) = run_as(od, unit);
        match user {
            None => self.push(Finding::new(
                id::RUNS_AS_ROOT,
                Severity::Error,
                Some(&Origin::file(&od.conf_path)),
                format!(
                    "OpenDKIM runs as root: no UserID in {} and no User= in its unit",
                    od.conf_path.display()
                ),
                "a milter parses untrusted mail; as root, any flaw in it owns the host",
                "set User=opendkim in the unit (the ArchWiki page's Security section) or UserID opendkim",
            )),
            Some((name, at)) if is_root_name(&name) => self.push(Finding::new(
                id::RUNS_AS_ROOT,
                Severity::Error,
                Some(&at),
                format!("OpenDKIM is told to run as {name}"),
                "a milter parses untrusted mail; as root, any flaw in it owns the host",
                "run it as a system user of its own, e.g. opendkim",
            )),
            Some((name, at)) => {
                if let Some(acc) = self.accounts()
                    && acc.user(&name).is_none()
                    && name.parse::<u32>().is_err()
                {
                    self.push(Finding::new(
                        id::UNKNOWN_USER,
                        Severity::Error,
                        Some(&at),
                        format!("user {name} does not exist in /etc/passwd"),
                        "OpenDKIM (or systemd) cannot switch to it and does not start",
                        format!("create the system user {name} (e.g. with sysusers.d) or name an existing one"),
                    ));
                }
            }
        }
    }

    /// TemporaryDirectory and BaseDirectory.
    fn directories(&mut self, od: &OpenDkim, unit: Option<&Unit>) {
        let private_tmp = unit
            .and_then(|u| u.get("Service", "PrivateTmp"))
            .is_some_and(|d| systemd::is_true(&d.value));
        let in_tmp = |p: &Path| {
            p.starts_with("/tmp") || p.starts_with("/var/tmp") || p.starts_with("/dev/shm")
        };
        match od.get("TemporaryDirectory") {
            None => self.push(Finding::new(
                id::TEMPORARY_DIRECTORY,
                if private_tmp { Severity::Info } else { Severity::Warning },
                Some(&Origin::file(&od.conf_path)),
                "TemporaryDirectory is not set: OpenDKIM writes message copies to /tmp",
                if private_tmp {
                    "the unit's PrivateTmp=yes keeps them private; a directory of its own is still clearer"
                } else {
                    "/tmp is shared with every user on the host (ArchWiki OpenDKIM, Security)"
                },
                "TemporaryDirectory /run/opendkim (with RuntimeDirectory=opendkim in the unit)",
            )),
            Some(s) => {
                let p = PathBuf::from(&s.value);
                let world_writable = self
                    .sys
                    .reader
                    .metadata(&p)
                    .is_ok_and(|m| m.mode() & 0o002 != 0);
                if (in_tmp(&p) && !private_tmp) || world_writable {
                    self.push(Finding::new(
                        id::TEMPORARY_DIRECTORY,
                        Severity::Warning,
                        Some(&s.at),
                        format!("TemporaryDirectory {} is writable by every user", s.value),
                        "others can watch or tamper with message copies being signed",
                        "TemporaryDirectory /run/opendkim (with RuntimeDirectory=opendkim in the unit)",
                    ));
                }
            }
        }
        match od.get("BaseDirectory") {
            None => self.push(Finding::new(
                id::BASE_DIRECTORY,
                Severity::Info,
                Some(&Origin::file(&od.conf_path)),
                "BaseDirectory is not set: OpenDKIM keeps the working directory it was started in",
                "relative paths and core dumps end up wherever that is",
                "BaseDirectory /var/lib/opendkim (with StateDirectory=opendkim in the unit)",
            )),
            Some(s) => {
                let p = PathBuf::from(&s.value);
                let managed = unit.is_some_and(|u| {
                    ["StateDirectory", "RuntimeDirectory"].iter().any(|k| {
                        let prefix = if *k == "StateDirectory" {
                            "/var/lib"
                        } else {
                            "/run"
                        };
                        u.all("Service", k).iter().any(|d| {
                            d.value
                                .split_whitespace()
                                .any(|n| Path::new(prefix).join(n) == p)
                        })
                    })
                });
                if !managed && let Err(ReadError::Missing) = self.sys.reader.metadata(&p) {
                    self.push(Finding::new(
                        id::MISSING_FILE,
                        Severity::Error,
                        Some(&s.at),
                        format!("BaseDirectory {} does not exist", s.value),
                        "OpenDKIM cannot change into it and stops",
                        format!("create {} (or StateDirectory= in the unit)", s.value),
                    ));
                }
            }
        }
    }

    /// A socket at all, and TCP only on loopback.
    fn socket_basics(&mut self, m: &Milter<'_>) {
        let Some((socket, text, at)) = &m.socket else {
            if let Some(od) = &self.sys.opendkim {
                match od.socket() {
                    None => self.push(Finding::new(
                        id::NO_SOCKET,
                        Severity::Error,
                        Some(&Origin::file(&od.conf_path)),
                        "no Socket is configured",
                        "OpenDKIM refuses to start without one (\"milter socket must be specified\")",
                        "Socket local:/run/opendkim/opendkim.sock, or under Postfix's queue directory when it is chrooted",
                    )),
                    Some((text, at)) => {
                        let why = parse_socket(&text).err().unwrap_or_default();
                        self.push(Finding::new(
                            id::OPTION_VALUE,
                            Severity::Error,
                            Some(&at),
                            format!("Socket {text} cannot be read: {why}"),
                            "OpenDKIM cannot listen, and no MTA can reach it",
                            "write local:/path or inet:PORT@HOST (a numeric address or localhost)",
                        ));
                    }
                }
            }
            return;
        };
        if let Socket::Inet { host, .. } = socket {
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                self.push(Finding::new(
                    id::REMOTE_SOCKET,
                    Severity::Error,
                    Some(at),
                    format!(
                        "{} listens on TCP {text}, which is not a loopback address",
                        m.what
                    ),
                    "anyone who can reach the port can have mail signed with your keys",
                    "use a unix socket, or inet:PORT@localhost",
                ));
            } else if self.sys.postfix.is_some() || self.sys.sendmail.is_some() {
                self.push(Finding::new(
                    id::TCP_SOCKET,
                    Severity::Warning,
                    Some(at),
                    format!("{} listens on TCP {text} while the MTA runs on this host", m.what),
                    "every local user and process can connect to a TCP port; a unix socket lets file permissions decide (ArchWiki OpenDKIM, Security)",
                    "Socket local:/run/opendkim/opendkim.sock (under /var/spool/postfix with a chrooted Postfix) and point the MTA at it",
                ));
            }
        }
    }

    /// Postfix's milter lists against the socket. Returns true when some
    /// list reaches the milter.
    fn postfix_links(&mut self, m: &Milter<'_>) -> bool {
        let Some(pf) = &self.sys.postfix else {
            return false;
        };
        let Some((ours, ours_text, ours_at)) = &m.socket else {
            return false;
        };
        let debian = self.sys.debian || pf.looks_debian();
        let queue = pf.queue_directory();
        let aggregate = |svcs: Vec<&mta::Service>| {
            let cs: Vec<Chroot> = svcs.iter().map(|s| pf.chroot_of(s, debian)).collect();
            if pf.master.is_none() {
                if debian { Chroot::Yes } else { Chroot::Default }
            } else if cs.contains(&Chroot::Yes) {
                Chroot::Yes
            } else if cs.contains(&Chroot::Default) {
                Chroot::Default
            } else {
                Chroot::No
            }
        };
        // (what, expanded value, where, chroot, smtpd side)
        let mut lists: Vec<(String, String, Origin, Chroot, bool)> = Vec::new();
        if let Some(p) = pf.param("smtpd_milters") {
            let smtpds: Vec<&mta::Service> = pf
                .services_running("smtpd")
                .into_iter()
                .filter(|s| !s.overrides.iter().any(|o| o.name == "smtpd_milters"))
                .collect();
            lists.push((
                "smtpd_milters".into(),
                pf.expand(&p.value),
                pf.main_at(p),
                aggregate(smtpds),
                true,
            ));
        }
        if let Some(p) = pf.param("non_smtpd_milters") {
            lists.push((
                "non_smtpd_milters".into(),
                pf.expand(&p.value),
                pf.main_at(p),
                aggregate(pf.services_running("cleanup")),
                false,
            ));
        }
        for svc in pf.master.iter().flatten() {
            for o in &svc.overrides {
                if o.name == "smtpd_milters" || o.name == "non_smtpd_milters" {
                    lists.push((
                        format!("{} -o {}", svc.name, o.name),
                        pf.expand(&o.value),
                        pf.master_at(o.line),
                        pf.chroot_of(svc, debian),
                        o.name == "smtpd_milters",
                    ));
                }
            }
        }
        // How far each list gets: the entry that comes closest to the
        // milter, with its per-milter settings.
        // (how far, the entry's per-milter settings, the entry's index)
        type Closest = (Reach, Vec<(String, String)>, usize);
        let reached: Vec<Closest> = lists
            .iter()
            .map(|(_, value, _, chroot, _)| {
                let mut best = (Reach::No, Vec::new(), 0);
                for (i, e) in milter_entries(value).iter().enumerate() {
                    let (addr, settings) = entry_parts(e);
                    let r = reach(ours, &addr, *chroot, &queue);
                    if r > best.0 {
                        best = (r, settings, i);
                    }
                }
                best
            })
            .collect();
        // The master.cf services whose own list reaches the milter: a
        // main.cf list without it is then a choice (mailserver's Ansible
        // role signs on submission and smtps only), not a mistake.
        let scoped: Vec<String> = lists
            .iter()
            .zip(&reached)
            .filter(|((what, ..), (r, ..))| what.contains(" -o ") && *r != Reach::No)
            .filter_map(|((what, ..), _)| what.split(' ').next().map(str::to_string))
            .collect();
        let mut connected = false;
        let mut smtpd_side = false;
        let mut non_smtpd_side = false;
        // Where our socket would have to be for a chrooted service, and
        // the fix line that puts it there (issue 13, defect 7: never
        // suggest a path the chroot hides).
        let inside = |chroot: Chroot| -> Option<(Socket, String)> {
            let p = ours.unix_path()?;
            if chroot == Chroot::No || p.starts_with(&queue) {
                return None;
            }
            let moved = Socket::Unix(queue.join("opendkim").join("opendkim.sock"));
            Some((moved.clone(), socket_fix(ours_at, &moved)))
        };
        for ((what, value, at, chroot, smtpd), (best, best_settings, best_at)) in
            lists.iter().zip(reached)
        {
            if milter_entries(value).is_empty() {
                continue;
            }
            if *smtpd {
                smtpd_side = true;
            } else {
                non_smtpd_side = true;
            }
            let maybe = *chroot == Chroot::Default;
            let sev = if maybe {
                Severity::Warning
            } else {
                Severity::Error
            };
            let chroot_note = if maybe {
                "may run chrooted (master.cf chroot column `-`: `y` in Debian's build, `n` upstream)"
            } else {
                "runs chrooted"
            };
            match best {
                Reach::Yes => {
                    connected = true;
                    if let Some((_, v)) = best_settings.iter().find(|(k, _)| k == "default_action")
                        && v == "accept"
                    {
                        self.push(accept_finding(at, &format!("{what} sets default_action = accept for the DKIM milter")));
                    }
                }
                Reach::OutsideChroot => {
                    connected = true;
                    self.push(Finding::new(
                        id::SOCKET_OUTSIDE_CHROOT,
                        sev,
                        Some(at),
                        format!(
                            "{what} names {ours_text}, but the Postfix service {chroot_note} in {} and cannot see paths outside it",
                            queue.display()
                        ),
                        "smtpd and cleanup fail to connect (\"No such file or directory\") and apply milter_default_action to every message",
                        match inside(Chroot::Yes) {
                            Some((moved, line)) => format!(
                                "put the socket under {}, where the chrooted service sees it:\n{line}\n{}",
                                queue.display(),
                                list_fix(pf, what, &replace_entry(value, best_at, &moved.postfix(Some(&queue))))
                            ),
                            None => "give the socket a path under the queue directory".to_string(),
                        },
                    ));
                }
                Reach::ChrootPath => {
                    connected = true;
                    self.push(Finding::new(
                        id::SOCKET_CHROOT_PATH,
                        sev,
                        Some(at),
                        format!(
                            "{what} names the socket by its host path {ours_text}, but the service {chroot_note} in {}",
                            queue.display()
                        ),
                        "inside the chroot the path is looked up relative to the queue directory, so Postfix looks for the socket twice as deep and does not find it",
                        list_fix(pf, what, &replace_entry(value, best_at, &ours.postfix(Some(&queue)))),
                    ));
                }
                Reach::No if !what.contains(" -o ") && !scoped.is_empty() => self.push(Finding::new(
                    id::MTA_NOT_CONNECTED,
                    Severity::Info,
                    Some(at),
                    format!(
                        "{what} does not call the DKIM milter; only the master.cf services {} do",
                        scoped.join(", ")
                    ),
                    "mail through the other services is not signed; right when the milter is meant for submission only",
                    format!(
                        "nothing, if intended; otherwise add {} to {what}, keeping the milters it lists",
                        ours.postfix((*chroot != Chroot::No).then_some(queue.as_path()))
                    ),
                )),
                Reach::No => self.push(Finding::new(
                    id::SOCKET_MISMATCH,
                    Severity::Error,
                    Some(at),
                    format!(
                        "{what} = {} does not reach the DKIM milter, which listens on {ours_text} ({})",
                        value.trim(),
                        ours_at
                    ),
                    "Postfix connects elsewhere; mail through it is not signed, or is deferred by milter_default_action",
                    match inside(*chroot) {
                        // The socket must move into the chroot first.
                        Some((moved, line)) => format!(
                            "{line}\n{}\n(and remove the entry meant for the DKIM milter, unless it is another milter)",
                            list_fix(pf, what, &prepend_entry(value, &moved.postfix(Some(&queue))))
                        ),
                        None => format!(
                            "{}\n(and remove the entry meant for the DKIM milter, unless it is another milter)",
                            list_fix(
                                pf,
                                what,
                                &prepend_entry(
                                    value,
                                    &ours.postfix((*chroot != Chroot::No).then_some(queue.as_path()))
                                )
                            )
                        ),
                    },
                )),
            }
        }
        if !smtpd_side {
            self.push(Finding::new(
                id::MTA_NOT_CONNECTED,
                Severity::Error,
                Some(&Origin::file(&pf.main_path)),
                "Postfix passes no mail received by smtpd to any milter (no smtpd_milters)",
                "mail sent through the SMTP and submission services leaves unsigned",
                {
                    let chroot = aggregate(pf.services_running("smtpd"));
                    let main = pf.main_path.display();
                    let mut fix = match inside(chroot) {
                        Some((moved, line)) => format!(
                            "{line}\nin {main}: smtpd_milters = {}",
                            moved.postfix(Some(&queue))
                        ),
                        None => format!(
                            "in {main}: smtpd_milters = {}",
                            ours.postfix((chroot != Chroot::No).then_some(queue.as_path()))
                        ),
                    };
                    if !non_smtpd_side {
                        fix.push_str(&format!("\nin {main}: non_smtpd_milters = $smtpd_milters"));
                    }
                    fix
                },
            ));
        } else if !non_smtpd_side {
            self.push(Finding::new(
                id::MTA_NOT_CONNECTED,
                Severity::Info,
                Some(&Origin::file(&pf.main_path)),
                "non_smtpd_milters is empty",
                "mail submitted on this host with the sendmail command is not signed",
                format!(
                    "in {}: non_smtpd_milters = $smtpd_milters (as the ArchWiki page sets it)",
                    pf.main_path.display()
                ),
            ));
        }
        connected
    }

    /// sendmail.mc's filter lines against the socket.
    fn sendmail_links(&mut self, m: &Milter<'_>) -> bool {
        let Some((mc, filters)) = &self.sys.sendmail else {
            return false;
        };
        let Some((ours, ours_text, _)) = &m.socket else {
            return false;
        };
        let mut matched = false;
        for f in filters {
            let Some(theirs) = f.socket.as_deref() else {
                continue;
            };
            // Sendmail does not chroot; its S= uses OpenDKIM's notation.
            if reach(ours, theirs, Chroot::No, Path::new("/")) == Reach::Yes {
                matched = true;
                let tempfail = f
                    .flags
                    .as_deref()
                    .is_some_and(|fl| fl.contains('T') || fl.contains('R'));
                if !tempfail {
                    self.push(Finding::new(
                        id::MILTER_DEFAULT_ACTION,
                        Severity::Warning,
                        Some(&f.at),
                        format!("the filter {} has no F=T", f.name),
                        "when the milter is down sendmail passes mail on unsigned",
                        "add F=T to the INPUT_MAIL_FILTER line (tempfail while the milter is unreachable)",
                    ));
                }
            }
        }
        if matched {
            return true;
        }
        if filters.is_empty() {
            if self.sys.postfix.is_none() {
                self.push(Finding::new(
                    id::MTA_NOT_CONNECTED,
                    Severity::Error,
                    Some(&Origin::file(mc)),
                    "sendmail.mc has no INPUT_MAIL_FILTER line",
                    "sendmail passes no mail to the DKIM milter",
                    format!(
                        "add INPUT_MAIL_FILTER(`opendkim', `S={}, F=T') after the last FEATURE line, then rebuild sendmail.cf",
                        ours.opendkim()
                    ),
                ));
            }
            return false;
        }
        for f in filters {
            self.push(Finding::new(
                id::SOCKET_MISMATCH,
                Severity::Error,
                Some(&f.at),
                format!(
                    "the filter {} uses S={}, not the DKIM milter's {ours_text}",
                    f.name,
                    f.socket.as_deref().unwrap_or("(none)")
                ),
                "sendmail connects elsewhere; mail is not signed",
                format!("S={}", ours.opendkim()),
            ));
        }
        false
    }

    /// milter_protocol and milter_default_action.
    fn postfix_params(&mut self) {
        let Some(pf) = &self.sys.postfix else { return };
        let main = Origin::file(&pf.main_path);
        match pf.param("milter_protocol") {
            None => self.push(Finding::new(
                id::MILTER_PROTOCOL,
                Severity::Info,
                Some(&main),
                "milter_protocol is not set (Postfix 2.6 and later default to 6)",
                "an older Postfix or a lower setting causes \"milter-reject: END-OF-MESSAGE\" (ArchWiki OpenDKIM, Troubleshooting)",
                format!("in {}: milter_protocol = 6", pf.main_path.display()),
            )),
            Some(p) => {
                let v = pf.expand(&p.value);
                if v.trim().parse::<u32>().is_ok_and(|n| n < 6) {
                    self.push(Finding::new(
                        id::MILTER_PROTOCOL,
                        Severity::Error,
                        Some(&pf.main_at(p)),
                        format!("milter_protocol = {}", v.trim()),
                        "OpenDKIM needs protocol 6 features; Postfix then rejects or defers mail with \"milter-reject: END-OF-MESSAGE\"",
                        format!("in {}: milter_protocol = 6", pf.main_path.display()),
                    ));
                }
            }
        }
        match pf.param("milter_default_action") {
            None => self.push(Finding::new(
                id::MILTER_DEFAULT_ACTION,
                Severity::Info,
                Some(&main),
                "milter_default_action is not set (Postfix defaults to tempfail)",
                "tempfail is right: mail waits while the milter is down instead of leaving unsigned",
                format!(
                    "in {}: milter_default_action = tempfail (to make the choice visible)",
                    pf.main_path.display()
                ),
            )),
            Some(p) => {
                let v = pf.expand(&p.value);
                if v.trim() == "accept" {
                    let mut f = accept_finding(&pf.main_at(p), "milter_default_action = accept");
                    f.fix = format!(
                        "in {}: milter_default_action = tempfail (mail waits until the milter is back)",
                        pf.main_path.display()
                    );
                    self.push(f);
                }
            }
        }
    }

    /// Socket permissions: umask, directory, group membership.
    fn socket_access(&mut self, m: &Milter<'_>) {
        let Some((Socket::Unix(path), _, _)) = &m.socket else {
            return;
        };
        let Some(acc) = self.accounts() else { return };
        let (mta_user, mta_name) = if let Some(pf) = &self.sys.postfix {
            let owner = pf
                .param("mail_owner")
                .map(|p| pf.expand(&p.value))
                .unwrap_or_else(|| "postfix".into());
            (owner, "Postfix")
        } else {
            return;
        };
        let milter_user = m.user.clone().unwrap_or_else(|| "root".into());
        if milter_user == mta_user {
            return;
        }
        let mta_groups = group_ids(acc, &mta_user);
        // A socket created in a set-group-ID directory takes the
        // directory's group (debops gives it to postfix that way).
        let setgid_dir = path
            .parent()
            .and_then(|d| self.sys.reader.metadata(d).ok())
            .filter(|m| m.is_dir() && m.mode() & 0o2000 != 0)
            .map(|m| m.gid());
        let milter_gid = match (&m.group, setgid_dir) {
            (_, Some(gid)) => Some(gid),
            (Some(g), None) => gid_of(acc, g),
            (None, None) => acc
                .user(&milter_user)
                .map(|u| u.gid)
                .or((milter_user == "root").then_some(0)),
        };
        let (umask, umask_at) = &m.umask;
        let mode = 0o777 & !umask;
        let conf_file = self
            .sys
            .opendkim
            .as_ref()
            .map(|o| Origin::file(&o.conf_path));
        let umask_place = umask_at.clone().or(conf_file);
        if mode & 0o002 != 0 {
            self.push(Finding::new(
                id::SOCKET_UMASK,
                Severity::Warning,
                umask_place.as_ref(),
                format!("umask {umask:03o} leaves the socket writable by every user"),
                "any local process can connect and have mail signed with your keys",
                format!(
                    "{} (owner and group may connect, nobody else)",
                    umask_fix(umask_place.as_ref(), "007")
                ),
            ));
        } else if mode & 0o020 == 0 {
            let set = if umask_at.is_some() {
                ""
            } else {
                " (the inherited default)"
            };
            self.push(Finding::new(
                id::SOCKET_UMASK,
                Severity::Error,
                umask_place.as_ref(),
                format!(
                    "umask {umask:03o}{set} takes group write off the socket, so {mta_name} cannot connect"
                ),
                "connecting to a unix socket needs write permission on it",
                format!(
                    "{} (as Debian's opendkim.conf sets it)",
                    umask_fix(umask_place.as_ref(), "007")
                ),
            ));
        } else if let Some(gid) = milter_gid
            && !mta_groups.contains(&gid)
        {
            let gname = acc.gid_name(gid).unwrap_or("?").to_string();
            self.push(Finding::new(
                id::MTA_NOT_IN_GROUP,
                Severity::Error,
                Some(&group_line(self.sys, &gname)),
                format!(
                    "{mta_user} is not in group {gname}, the group of {}'s socket",
                    m.what
                ),
                format!("{mta_name} cannot connect to {}", path.display()),
                format!("add {mta_user} to group {gname} (usermod -aG {gname} {mta_user}), then restart {mta_name}"),
            ));
        }
        if let Some(dir) = path.parent()
            && let Some(info) = self.dir_info(dir, m, acc)
        {
            let uid_ok = info
                .uid
                .is_some_and(|u| acc.user(&mta_user).is_some_and(|mu| mu.uid == u));
            let ok = (uid_ok && info.mode & 0o100 != 0)
                || (info.gid.is_some_and(|g| mta_groups.contains(&g)) && info.mode & 0o010 != 0)
                || info.mode & 0o001 != 0;
            if !ok {
                let owner = info
                    .gid
                    .and_then(|g| acc.gid_name(g))
                    .unwrap_or("?")
                    .to_string();
                self.push(Finding::new(
                    id::SOCKET_DIRECTORY,
                    Severity::Error,
                    Some(&info.at),
                    format!(
                        "{mta_user} cannot enter {} ({}, mode {:04o}, group {owner})",
                        dir.display(),
                        info.what,
                        info.mode
                    ),
                    format!("{mta_name} cannot reach the socket inside it"),
                    format!(
                        "give the directory group {owner} search permission (0750) and add {mta_user} to {owner}, or make {mta_user}'s group own it"
                    ),
                ));
            }
        }
    }

    /// The socket directory's owner and mode: on disk, or from the unit's
    /// RuntimeDirectory=, or from tmpfiles.d.
    fn dir_info(&self, dir: &Path, m: &Milter<'_>, acc: &Accounts) -> Option<DirInfo> {
        if let Ok(meta) = self.sys.reader.metadata(dir)
            && meta.is_dir()
        {
            let (uid, gid, mode) = owner_mode(&meta);
            return Some(DirInfo {
                mode,
                uid: Some(uid),
                gid: Some(gid),
                at: Origin::file(dir),
                what: "on disk".into(),
            });
        }
        if let Some(unit) = m.unit
            && let Ok(rel) = dir.strip_prefix("/run")
        {
            let listed = unit
                .all("Service", "RuntimeDirectory")
                .into_iter()
                .find(|d| d.value.split_whitespace().any(|n| Path::new(n) == rel));
            if let Some(d) = listed {
                let mode_d = unit.get("Service", "RuntimeDirectoryMode");
                let mode = mode_d
                    .and_then(|d| u32::from_str_radix(&d.value, 8).ok())
                    .unwrap_or(0o755);
                let user = unit.get("Service", "User").map(|d| d.value.clone());
                let group = unit.get("Service", "Group").map(|d| d.value.clone());
                let uid = match &user {
                    Some(u) => acc.user(u).map(|u| u.uid),
                    None => Some(0),
                };
                let gid = match (&group, &user) {
                    (Some(g), _) => gid_of(acc, g),
                    (None, Some(u)) => acc.user(u).map(|u| u.gid),
                    (None, None) => Some(0),
                };
                return Some(DirInfo {
                    mode,
                    uid,
                    gid,
                    at: mode_d.map(|d| d.at.clone()).unwrap_or_else(|| d.at.clone()),
                    what: "RuntimeDirectory= of the unit".into(),
                });
            }
        }
        for tdir in [
            "/etc/tmpfiles.d",
            "/run/tmpfiles.d",
            "/usr/lib/tmpfiles.d",
            "/lib/tmpfiles.d",
        ] {
            for name in self.sys.reader.list_dir(Path::new(tdir)) {
                if !name.ends_with(".conf") {
                    continue;
                }
                let file = Path::new(tdir).join(&name);
                let Ok(text) = self.sys.reader.read(&file) else {
                    continue;
                };
                for (i, line) in text.split('\n').enumerate() {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if f.len() < 2 || !matches!(f[0], "d" | "D") || Path::new(f[1]) != dir {
                        continue;
                    }
                    let mode = f
                        .get(2)
                        .and_then(|m| u32::from_str_radix(m.trim_start_matches('~'), 8).ok())
                        .unwrap_or(0o755);
                    let user = f.get(3).filter(|u| **u != "-").copied().unwrap_or("root");
                    let group = f.get(4).filter(|g| **g != "-").copied().unwrap_or("root");
                    return Some(DirInfo {
                        mode,
                        uid: acc
                            .user(user)
                            .map(|u| u.uid)
                            .or((user == "root").then_some(0)),
                        gid: gid_of(acc, group).or((group == "root").then_some(0)),
                        at: Origin::line(&file, i + 1),
                        what: "tmpfiles.d".into(),
                    });
                }
            }
        }
        None
    }

    /// Every private key the setup names: present, safe, readable by the
    /// milter, parseable, strong.
    fn keys(&mut self) {
        let mut keys: Vec<(PathBuf, Origin, String)> = Vec::new();
        let mut inline: Vec<Origin> = Vec::new();
        if let Some(od) = &self.sys.opendkim {
            for k in &od.keys {
                let label = format!("{}._domainkey.{}", k.selector, k.domain);
                match &k.key {
                    KeySource::File(p) => keys.push((p.clone(), k.at.clone(), label)),
                    KeySource::Inline => inline.push(k.at.clone()),
                }
            }
        }
        if let Some(c) = self.config {
            for d in c.domains.iter().filter(|d| d.key_from.is_none()) {
                for k in d.keys.iter().filter(|k| k.state.needs_private_key()) {
                    keys.push((
                        k.path.clone(),
                        Origin::file(&c.source),
                        format!("{}._domainkey.{}", k.selector, d.name),
                    ));
                }
            }
        }
        // The identity that reads the keys, and whether it is OpenDKIM,
        // whose dkimf_securefile() rules are stricter than "not readable by
        // others" (opendkim/opendkim.c, dkimf_checkfsnode).
        let acc = self.accounts();
        let reader: Option<KeyReader> = self.milter().and_then(|m| {
            let acc = acc?;
            let user = m.user.as_deref()?;
            let u = acc.user(user)?;
            let mut groups = group_ids(acc, user);
            if let Some(g) = m.group.as_deref().and_then(|g| gid_of(acc, g)) {
                groups.insert(g);
            }
            Some(KeyReader {
                name: user.to_string(),
                uid: u.uid,
                groups,
                opendkim: m.what == "OpenDKIM",
            })
        });
        // RequireSafeKeys false: OpenDKIM loads what it would refuse; the
        // exposure remains, the outage does not.
        let lax = reader.as_ref().is_some_and(|r| r.opendkim)
            && self.sys.opendkim.as_ref().is_some_and(|od| {
                od.get("RequireSafeKeys")
                    .is_some_and(|r| opendkim::parse_bool(&r.value) == Some(false))
            });
        let mut seen = BTreeSet::new();
        let mut bad_dirs = BTreeSet::new();
        for (path, at, label) in keys {
            if !seen.insert(path.clone()) {
                continue;
            }
            let meta = match self.sys.reader.metadata(&path) {
                Ok(m) => m,
                Err(ReadError::Missing) => {
                    self.push(Finding::new(
                        id::KEY_MISSING,
                        Severity::Error,
                        Some(&at),
                        format!("the private key {} of {label} does not exist", path.display()),
                        "OpenDKIM cannot sign for the domain (\"key not found\") and, depending on On-KeyNotFound, passes or defers the mail",
                        "generate it (dkimctl keys generate, or opendkim-genkey) or correct the path",
                    ));
                    continue;
                }
                Err(e) => {
                    self.push(read_finding(&path, Some(&at), "private key", &e));
                    continue;
                }
            };
            let key_at = Origin::file(&path);
            let (uid, gid, mode) = owner_mode(&meta);
            if !meta.is_file() {
                self.push(Finding::new(
                    id::KEY_INVALID,
                    Severity::Error,
                    Some(&at),
                    format!(
                        "the private key {} of {label} is not a regular file",
                        path.display()
                    ),
                    "OpenDKIM cannot load it",
                    "put the PEM key file there",
                ));
                continue;
            }
            let name_of_uid = |u: u32| {
                acc.and_then(|a| a.uid_name(u))
                    .map(str::to_string)
                    .unwrap_or_else(|| u.to_string())
            };
            let name_of_gid = |g: u32| {
                acc.and_then(|a| a.gid_name(g))
                    .map(str::to_string)
                    .unwrap_or_else(|| g.to_string())
            };
            if let Some(problem) = keys::check_key_file_mode(mode) {
                self.push(Finding::new(
                    id::KEY_PERMISSIONS,
                    Severity::Error,
                    Some(&key_at),
                    format!("the private key of {label} is {problem} (mode {mode:04o})"),
                    "OpenDKIM's RequireSafeKeys (on by default) refuses it (\"key data is not secure\"), and others on the host can sign as the domain",
                    match &reader {
                        Some(r) => format!(
                            "chown {} {p}\nchmod 0600 {p}",
                            r.name,
                            p = path.display()
                        ),
                        None => format!("chmod 0600 {} (owned by the milter's user)", path.display()),
                    },
                ));
            } else if let (Some(r), Some(acc)) = (&reader, acc)
                && r.opendkim
                && mode & 0o060 != 0
                && let Some(other) = shares_group(acc, gid, r)
            {
                let g = name_of_gid(gid);
                self.push(Finding::new(
                    id::KEY_PERMISSIONS,
                    if lax { Severity::Warning } else { Severity::Error },
                    Some(&key_at),
                    format!(
                        "the private key of {label} is readable by group {g}, which also holds {other} (mode {mode:04o})"
                    ),
                    if lax {
                        format!("{other} can read the key and sign as the domain (RequireSafeKeys false lets OpenDKIM use it)")
                    } else {
                        format!(
                            "OpenDKIM's RequireSafeKeys refuses it (\"is in group {gid} which has multiple users\"); adding the MTA to the milter's group to reach the socket does exactly this"
                        )
                    },
                    format!("chown {} {p}\nchmod 0600 {p}", r.name, p = path.display()),
                ));
            }
            if let Some(r) = &reader {
                if r.opendkim && uid != 0 && uid != r.uid {
                    self.push(Finding::new(
                        id::KEY_OWNER,
                        Severity::Error,
                        Some(&key_at),
                        format!(
                            "the private key of {label} is owned by {}, not by {} or root",
                            name_of_uid(uid),
                            r.name
                        ),
                        "OpenDKIM refuses it (\"is not owned by the executing uid\"), so the domain's mail is not signed",
                        format!("chown {} {}", r.name, path.display()),
                    ));
                } else {
                    let readable = (uid == r.uid && mode & 0o400 != 0)
                        || (r.groups.contains(&gid) && mode & 0o040 != 0)
                        || mode & 0o004 != 0;
                    if !readable {
                        self.push(Finding::new(
                            id::KEY_OWNER,
                            Severity::Error,
                            Some(&key_at),
                            format!(
                                "{} cannot read the private key of {label} (owner {}, mode {mode:04o})",
                                r.name,
                                name_of_uid(uid)
                            ),
                            "the key does not load, so the domain's mail is not signed",
                            format!("chown {} {} (mode 0600)", r.name, path.display()),
                        ));
                    }
                }
            }
            // Every directory from the top down to the key's.
            let mut dirs: Vec<&Path> = path.ancestors().skip(1).collect();
            dirs.reverse();
            for dir in dirs {
                if dir == Path::new("/") && !self.sys.reader.root().is_live() {
                    continue;
                }
                let Ok(dm) = self.sys.reader.metadata(dir) else {
                    continue;
                };
                let (duid, dgid, dmode) = owner_mode(&dm);
                let problem = match (&reader, acc) {
                    (Some(r), Some(acc)) if r.opendkim => {
                        if dmode & 0o002 != 0 {
                            Some("writable by every user".to_string())
                        } else if dmode & 0o020 != 0
                            && let Some(other) = shares_group(acc, dgid, r)
                        {
                            Some(format!(
                                "writable by group {}, which also holds {other}",
                                name_of_gid(dgid)
                            ))
                        } else if dmode & 0o200 != 0 && duid != 0 && duid != r.uid {
                            Some(format!("writable by its owner {}", name_of_uid(duid)))
                        } else {
                            None
                        }
                    }
                    _ => {
                        if dmode & 0o002 != 0 {
                            Some("writable by every user".to_string())
                        } else if dmode & 0o020 != 0 {
                            Some("writable by its group".to_string())
                        } else {
                            None
                        }
                    }
                };
                if let Some(problem) = problem {
                    if bad_dirs.insert(dir.to_path_buf()) {
                        self.push(Finding::new(
                            id::KEY_UNSAFE_DIRECTORY,
                            if lax { Severity::Warning } else { Severity::Error },
                            Some(&Origin::file(dir)),
                            format!(
                                "{} (holding the key of {label}) is {problem} (mode {dmode:04o})",
                                dir.display()
                            ),
                            if lax {
                                "whoever can write there can swap the key (RequireSafeKeys false: OpenDKIM signs with it anyway)"
                            } else {
                                "whoever can write there can swap the key; OpenDKIM reports \"key data is not secure\" and refuses it"
                            },
                            format!(
                                "chmod go-w {}, or keep keys under /etc/opendkim/keys (0750, owned by the milter's user)",
                                dir.display()
                            ),
                        ));
                    }
                    break;
                }
                // OpenDKIM stops here: nobody else can reach below.
                if reader.as_ref().is_some_and(|r| r.opendkim) && dmode & 0o011 == 0 {
                    break;
                }
            }
            let real = match self.sys.reader.resolve(&path) {
                Ok(r) => r,
                Err(_) => continue,
            };
            match keys::load_private_key(&real) {
                Ok(k) => {
                    if k.algorithm == crate::config::model::Algorithm::RsaSha256 && k.bits < 2048 {
                        let sev = if k.bits < 1024 {
                            Severity::Error
                        } else {
                            Severity::Warning
                        };
                        self.push(Finding::new(
                            id::KEY_WEAK,
                            sev,
                            Some(&key_at),
                            format!("the RSA key of {label} has {} bits", k.bits),
                            if k.bits < 1024 {
                                "receivers must ignore signatures with keys below 1024 bits (RFC 8301)"
                            } else {
                                "RFC 8301 asks signers for at least 2048 bits; 1024-bit keys can be factored by a determined attacker"
                            },
                            "generate a 2048-bit key, publish it under a new selector, then switch (dkimctl rotate)",
                        ));
                    }
                }
                Err(e) => {
                    if let keys::LoadErrorKind::Read(io) = &e.kind {
                        self.push(read_finding(
                            &path,
                            Some(&at),
                            "private key",
                            &ReadError::Unreadable(io.to_string()),
                        ));
                    } else {
                        let msg = e
                            .to_string()
                            .replace(&real.display().to_string(), &path.display().to_string());
                        self.push(Finding::new(
                            id::KEY_INVALID,
                            Severity::Error,
                            Some(&key_at),
                            format!("the private key of {label} does not parse: {msg}"),
                            "OpenDKIM cannot sign with it",
                            "replace it with a PEM private key (RSA 2048 or Ed25519)",
                        ));
                    }
                }
            }
        }
        for at in inline {
            if let Ok(meta) = self.sys.reader.metadata(&at.file)
                && let Some(problem) = keys::check_key_file_mode(meta.mode())
            {
                self.push(Finding::new(
                    id::KEY_PERMISSIONS,
                    Severity::Error,
                    Some(&at),
                    format!(
                        "this KeyTable line holds a private key inline, and the table is {problem}"
                    ),
                    "anyone who can read the table can sign as the domain",
                    "move the key into a file of its own (mode 0600) and name the file here",
                ));
            }
        }
    }

    /// KeyTable / SigningTable consistency.
    fn tables(&mut self, od: &OpenDkim) {
        if !od.signs() {
            return;
        }
        let single: Vec<_> = ["Domain", "Selector", "KeyFile"]
            .iter()
            .filter_map(|n| od.get(n))
            .collect();
        if od.key_table {
            for s in &single {
                self.push(Finding::new(
                    id::SINGLE_KEY_IGNORED,
                    Severity::Warning,
                    Some(&s.at),
                    format!("{} is ignored because a KeyTable is set", s.name),
                    "opendkim.conf(5): Domain, Selector and KeyFile are ignored when KeyTable is defined",
                    format!("remove {} and put the key into the KeyTable", s.name),
                ));
            }
            if od.get("SigningTable").is_none() && od.get("SetupPolicyScript").is_none() {
                self.push(Finding::new(
                    id::SIGNING_INCOMPLETE,
                    Severity::Error,
                    od.get("KeyTable").map(|s| &s.at),
                    "a KeyTable is set but no SigningTable selects its keys",
                    "nothing is signed",
                    "SigningTable refile:/etc/opendkim/SigningTable with lines like `*@example.com sel._domainkey.example.com`",
                ));
            }
        } else if !single.is_empty() && single.len() < 3 {
            let missing: Vec<&str> = ["Domain", "Selector", "KeyFile"]
                .into_iter()
                .filter(|n| od.get(n).is_none())
                .collect();
            self.push(Finding::new(
                id::SIGNING_INCOMPLETE,
                Severity::Error,
                Some(&single[0].at),
                format!(
                    "signing with one key needs Domain, Selector and KeyFile; {} missing",
                    missing.join(" and ")
                ),
                "opendkim.conf(5), Mode: OpenDKIM does not sign without all three",
                format!("add {}", missing.join(", ")),
            ));
        } else if single.is_empty() {
            if let Some(s) = od.get("SigningTable") {
                self.push(Finding::new(
                    id::SIGNING_INCOMPLETE,
                    Severity::Error,
                    Some(&s.at),
                    "a SigningTable is set without a KeyTable",
                    "its key names refer to nothing; nothing is signed",
                    "add KeyTable /etc/opendkim/KeyTable",
                ));
            } else {
                self.push(Finding::new(
                    id::NO_SIGNING_KEYS,
                    Severity::Info,
                    Some(&Origin::file(&od.conf_path)),
                    "OpenDKIM may sign (Mode includes s) but has no key configured",
                    "it only verifies",
                    "add Domain, Selector and KeyFile, or a KeyTable and SigningTable; or Mode v",
                ));
            }
        }
        if let Some((Dataset::Refile(table), at)) = od.dataset("KeyTable") {
            self.push(Finding::new(
                id::KEY_TABLE_REFILE,
                Severity::Warning,
                Some(&at),
                "the KeyTable is read as refile: (wildcard patterns)",
                "key names are looked up exactly; as patterns, a `*` in a name can select the wrong key",
                format!(
                    "in {}: KeyTable file:{} (only the SigningTable takes refile:)",
                    at.file.display(),
                    table.display()
                ),
            ));
        }
        let st = od.dataset("SigningTable");
        let names: BTreeSet<&str> = od.keys.iter().map(|k| k.name.as_str()).collect();
        for e in &od.signing {
            if od.key_table_read && !names.contains(e.key_name.as_str()) && e.key_name != "%" {
                self.push(Finding::new(
                    id::SIGNING_TABLE_UNKNOWN_KEY,
                    Severity::Error,
                    Some(&e.at),
                    format!("{} selects the key {}, which is not in the KeyTable", e.pattern, e.key_name),
                    "OpenDKIM finds no key for these senders: the mail is not signed (or deferred, per On-KeyNotFound)",
                    format!("add a KeyTable line for {} or correct the name", e.key_name),
                ));
            }
            if e.pattern.chars().all(|c| c == '*' || c == '@') {
                self.push(Finding::new(
                    id::SIGNING_TABLE_CATCH_ALL,
                    Severity::Warning,
                    Some(&e.at),
                    format!("{} signs mail from every domain with {}", e.pattern, e.key_name),
                    "mail from any sender your host relays gets your domain's signature (d= differs from From, which DMARC does not credit) and your key's reputation",
                    "list the domains: *@example.com per line",
                ));
            }
            if let Some((Dataset::File(_), _)) = &st
                && e.pattern.contains('*')
                && e.pattern != "*"
                && !e.pattern.ends_with("@*")
            {
                self.push(Finding::new(
                    id::SIGNING_TABLE_NOT_REFILE,
                    Severity::Error,
                    Some(&e.at),
                    format!("{} is a wildcard pattern, but the SigningTable is not read as refile:", e.pattern),
                    "a file: table is looked up literally (user@host, host, .domain, ...), so this line never matches and the mail is not signed",
                    {
                        // The line in the form a plain table matches
                        // (switching the whole table to refile: would
                        // break its plain lines instead).
                        let p = e.pattern.to_ascii_lowercase();
                        let plain = p.strip_prefix("*@").map(|d| match d.strip_prefix("*.") {
                            Some(parent) => format!(".{parent}"),
                            None => d.to_string(),
                        });
                        match (plain.filter(|d| !d.contains('*')), e.at.line) {
                            (Some(d), Some(n)) => format!(
                                "in {}, line {n}: {d} {}",
                                e.at.file.display(),
                                e.key_name
                            ),
                            _ => match st.as_ref().and_then(|(ds, _)| ds.path().map(Path::to_path_buf)) {
                                Some(t) => format!(
                                    "SigningTable refile:{} in opendkim.conf, and every line of the table written as a pattern (*@example.com)",
                                    t.display()
                                ),
                                None => "read the SigningTable as refile:".to_string(),
                            },
                        }
                    },
                ));
            }
        }
        if od.key_table_read && od.signing_table_read {
            let used: BTreeSet<&str> = od.signing.iter().map(|e| e.key_name.as_str()).collect();
            for k in &od.keys {
                if !used.contains(k.name.as_str()) {
                    self.push(Finding::new(
                        id::KEY_TABLE_UNUSED,
                        Severity::Info,
                        Some(&k.at),
                        format!("no SigningTable line uses the key {}", k.name),
                        "it signs nothing",
                        "remove it, or add `*@DOMAIN NAME` to the SigningTable",
                    ));
                }
            }
        }
    }

    /// InternalHosts and ExternalIgnoreList.
    fn trusted(&mut self, od: &OpenDkim) {
        if let Some(hosts) = &od.internal_hosts {
            for h in hosts.iter().filter(|h| !h.negated) {
                let Host::Pattern(p) = &h.host else { continue };
                match p {
                    HostPattern::Net(_, 0) => self.push(Finding::new(
                        id::INTERNAL_HOSTS_EVERYONE,
                        Severity::Error,
                        Some(&h.at),
                        format!("InternalHosts includes {}: every address on the Internet", h.text),
                        "OpenDKIM signs mail from any client that reaches the MTA: an open signing relay for your domains",
                        "list only this host and your own relays",
                    )),
                    HostPattern::Net(ip, len) if !is_private_net(*ip, *len) => self.push(Finding::new(
                        id::INTERNAL_HOSTS_PUBLIC,
                        Severity::Warning,
                        Some(&h.at),
                        format!("InternalHosts includes the public range {}", h.text),
                        "every host in it can have mail signed with your keys",
                        "narrow it to the addresses of your own servers",
                    )),
                    HostPattern::Addr(ip) if !is_private(*ip) && !ip.is_unspecified() => {
                        self.push(Finding::new(
                            id::INTERNAL_HOSTS_PUBLIC,
                            Severity::Info,
                            Some(&h.at),
                            format!("InternalHosts includes the public address {}", h.text),
                            "mail from it is signed; right for this host's own address or your relay",
                            "make sure it is yours",
                        ))
                    }
                    _ => {}
                }
            }
        }
        let set = |v: &Option<Vec<opendkim::HostEntry>>| {
            v.as_ref().map(|l| {
                l.iter()
                    .map(|h| h.text.to_ascii_lowercase())
                    .collect::<BTreeSet<String>>()
            })
        };
        let (i, e) = (set(&od.internal_hosts), set(&od.external_ignore));
        let differ = match (&i, &e) {
            (Some(a), Some(b)) => a != b,
            (None, None) => false,
            _ => od.get("InternalHosts").is_some() != od.get("ExternalIgnoreList").is_some(),
        };
        if differ {
            let at = od
                .get("ExternalIgnoreList")
                .or_else(|| od.get("InternalHosts"))
                .map(|s| s.at.clone());
            self.push(Finding::new(
                id::TRUSTED_LISTS_DIFFER,
                Severity::Info,
                at.as_ref(),
                "InternalHosts and ExternalIgnoreList differ",
                "hosts that are signed for but not ignored (or the reverse) get \"external host tried to send mail as\" log lines; the ArchWiki page uses one TrustedHosts file for both",
                "point both at the same file unless the difference is intended",
            ));
        }
    }

    /// Canonicalization and OversignHeaders.
    fn signing_settings(&mut self, od: &OpenDkim) {
        if !od.signs() {
            return;
        }
        let conf = Origin::file(&od.conf_path);
        match od.get("Canonicalization") {
            None => self.push(Finding::new(
                id::CANONICALIZATION,
                Severity::Warning,
                Some(&conf),
                "Canonicalization is not set: OpenDKIM signs simple/simple",
                "simple/simple breaks on trivial reformatting in transit (ArchWiki OpenDKIM)",
                format!(
                    "in {}: Canonicalization relaxed/simple (or relaxed/relaxed)",
                    od.conf_path.display()
                ),
            )),
            Some(s) => match parse_canonicalization(&s.value) {
                None => self.push(Finding::new(
                    id::OPTION_VALUE,
                    Severity::Error,
                    Some(&s.at),
                    format!(
                        "Canonicalization {} is not HEADER/BODY with simple or relaxed",
                        s.value
                    ),
                    "OpenDKIM refuses the value",
                    "Canonicalization relaxed/simple",
                )),
                Some((Canon::Simple, Canon::Simple)) => self.push(Finding::new(
                    id::CANONICALIZATION,
                    Severity::Warning,
                    Some(&s.at),
                    format!("Canonicalization {} means simple/simple", s.value),
                    "simple/simple breaks on trivial reformatting in transit (ArchWiki OpenDKIM)",
                    format!(
                        "in {}: Canonicalization relaxed/simple (or relaxed/relaxed)",
                        s.at.file.display()
                    ),
                )),
                Some(_) => {}
            },
        }
        let oversigned = match od.dataset("OversignHeaders") {
            None => Some(false),
            Some((Dataset::List(items), _)) => {
                Some(items.iter().any(|h| h.eq_ignore_ascii_case("from")))
            }
            Some((Dataset::File(p) | Dataset::Refile(p), _)) => {
                self.sys.reader.read(&p).ok().map(|t| {
                    opendkim::parse_table(&t, &p)
                        .iter()
                        .any(|l| l.key.eq_ignore_ascii_case("from"))
                })
            }
            Some((Dataset::Other(_), _)) => None,
        };
        if oversigned == Some(false) {
            let at = od
                .get("OversignHeaders")
                .map(|s| s.at.clone())
                .unwrap_or(conf);
            self.push(Finding::new(
                id::OVERSIGN_FROM,
                Severity::Warning,
                Some(&at),
                "From is not oversigned",
                "a second From header can be added after signing and the signature still verifies (RFC 6376 §8.15)",
                match od.get("OversignHeaders") {
                    Some(o) if matches!(od.dataset("OversignHeaders"), Some((Dataset::List(_), _))) => {
                        format!("in {}: OversignHeaders From,{}", o.at.file.display(), o.value)
                    }
                    Some(o) => format!("add From to {} (named at {})", o.value, o.at),
                    None => format!("in {}: OversignHeaders From (Debian's default)", at.file.display()),
                },
            ));
        }
    }

    /// Settings that turn signing or key safety off: `Mode v` while keys
    /// are configured, `RequireSafeKeys false`.
    fn settings_that_weaken(&mut self, od: &OpenDkim) {
        let has_keys = od.get("KeyTable").is_some() || od.get("KeyFile").is_some();
        if let Some(m) = od.get("Mode")
            && !m.value.contains('s')
            && has_keys
        {
            self.push(Finding::new(
                id::MODE_VERIFY_ONLY,
                Severity::Warning,
                Some(&m.at),
                format!("Mode {} only verifies, though keys are configured", m.value),
                "nothing is signed: mail leaves without a DKIM signature",
                format!(
                    "in {}: Mode sv (or remove the keys if this host only receives)",
                    m.at.file.display()
                ),
            ));
        }
        if let Some(r) = od.get("RequireSafeKeys")
            && opendkim::parse_bool(&r.value) == Some(false)
        {
            self.push(Finding::new(
                id::UNSAFE_KEYS_ALLOWED,
                Severity::Warning,
                Some(&r.at),
                "RequireSafeKeys false: OpenDKIM signs with keys other users can read or replace",
                "a key readable by others lets them sign as your domains; one in a directory they can write can be swapped",
                format!(
                    "once every key is 0600 in directories only root and the milter's user write (no key-permissions or key-unsafe-directory finding left):\nin {}: RequireSafeKeys true",
                    r.at.file.display()
                ),
            ));
        }
    }

    /// opendkim.conf files (and the files they include) that hold a
    /// password (a `dsn:` with `user:password@`, `LDAPBindPassword`) and
    /// that every user can read.
    fn readable_secrets(&mut self, od: &OpenDkim) {
        let mut files: Vec<(PathBuf, Origin)> = Vec::new();
        for s in &od.settings {
            let secret = s.name == "LDAPBindPassword"
                || s.value.split("://").nth(1).is_some_and(|rest| {
                    rest.split_once('@')
                        .is_some_and(|(cred, _)| cred.contains(':'))
                });
            if secret && !files.iter().any(|(f, _)| *f == s.at.file) {
                files.push((s.at.file.clone(), s.at.clone()));
            }
        }
        for (file, at) in files {
            let Ok(meta) = self.sys.reader.metadata(&file) else {
                continue;
            };
            let mode = meta.mode() & 0o7777;
            if mode & 0o004 != 0 {
                self.push(Finding::new(
                    id::SECRET_READABLE,
                    Severity::Error,
                    Some(&at),
                    format!(
                        "{} holds a password and every user can read it (mode {mode:04o})",
                        file.display()
                    ),
                    "whoever reads it can log in to the database (or directory) that holds your keys and signing rules",
                    format!(
                        "chmod 0640 {} (owner root, group the milter's: OpenDKIM still reads it)",
                        file.display()
                    ),
                ));
            }
        }
    }

    /// Hardening of the milter's units.
    fn units(&mut self) {
        let names: Vec<&str> = self
            .sys
            .units
            .iter()
            .filter(|u| u.name.ends_with(".service"))
            .filter(|u| {
                u.name != "opendkim.service" || self.sys.opendkim.is_some() || self.config.is_some()
            })
            .map(|u| u.name.as_str())
            .collect();
        if names.is_empty() {
            return;
        }
        let binary = self.opts.systemd_analyze.binary();
        if binary.is_none() {
            self.push(Finding::new(
                id::UNIT_EXPOSURE_UNCHECKED,
                Severity::Info,
                None,
                "systemd-analyze was not found; unit exposure was not scored",
                "the missing hardening directives are still listed",
                "install systemd (systemd-analyze) to score units",
            ));
        }
        for name in names {
            let Some(unit) = self.sys.unit(name) else {
                continue;
            };
            let at = unit.origin();
            for file in std::iter::once(&unit.fragment).chain(&unit.dropins) {
                let Ok(meta) = self.sys.reader.metadata(file) else {
                    continue;
                };
                let mode = meta.mode() & 0o7777;
                if mode & 0o022 != 0 {
                    self.push(Finding::new(
                        id::UNIT_FILE_PERMISSIONS,
                        Severity::Error,
                        Some(&Origin::file(file)),
                        format!(
                            "{} is writable by {} (mode {mode:04o})",
                            file.display(),
                            if mode & 0o002 != 0 { "every user" } else { "its group" }
                        ),
                        "systemd runs what the unit says as root: whoever can write it can run anything as root",
                        format!("chmod 0644 {}", file.display()),
                    ));
                }
            }
            self.credentials(name, unit);
            let missing = systemd::missing_hardening(unit);
            if !missing.is_empty() {
                self.push(Finding::new(
                    id::UNIT_HARDENING,
                    Severity::Warning,
                    Some(&at),
                    format!("{name} lacks hardening: {}", missing.join(" ")),
                    "if the milter is compromised, these limit what it can reach",
                    "add them (a drop-in in /etc/systemd/system/NAME.d/ works), or let dkimctl render the unit",
                ));
            }
            if let Some(b) = &binary {
                match systemd::exposure(b, self.sys.reader.root(), name) {
                    Ok(x) if x > systemd::MAX_EXPOSURE => self.push(Finding::new(
                        id::UNIT_EXPOSURE,
                        Severity::Warning,
                        Some(&at),
                        format!(
                            "{name} has exposure {x:.1} (systemd-analyze security; above {:.1})",
                            systemd::MAX_EXPOSURE
                        ),
                        "the service runs with far more access than a milter needs",
                        format!(
                            "see `systemd-analyze security {name}`; dkimctl's units score about 1"
                        ),
                    )),
                    Ok(_) => {}
                    Err(e) => self.push(Finding::new(
                        id::UNIT_EXPOSURE_UNCHECKED,
                        Severity::Info,
                        Some(&at),
                        format!("the exposure of {name} could not be scored: {e}"),
                        "the missing hardening directives are still listed",
                        "run systemd-analyze security by hand",
                    )),
                }
            }
        }
    }
}

impl Checks<'_> {
    /// Every `LoadCredential=NAME:PATH` of the unit names a file that
    /// exists: systemd refuses to start a service whose credential is
    /// missing, so a key moved away while the installed unit still names
    /// it stops the next restart or boot.
    fn credentials(&mut self, name: &str, unit: &Unit) {
        for d in unit.all("Service", "LoadCredential") {
            let Some((cred, path)) = d.value.split_once(':') else {
                continue;
            };
            let path = Path::new(path.trim());
            // A relative source names the system's credential store; a `%`
            // specifier is systemd's to expand.
            if !path.is_absolute() || d.value.contains('%') {
                continue;
            }
            if let Err(ReadError::Missing) = self.sys.reader.metadata(path) {
                self.push(Finding::new(
                    id::CREDENTIAL_MISSING,
                    Severity::Error,
                    Some(&d.at),
                    format!(
                        "{name} loads the credential {cred} from {}, which does not exist",
                        path.display()
                    ),
                    "systemd refuses to start the service without it (243/CREDENTIALS): the next restart or reboot stops signing and mail is held",
                    format!(
                        "put the key back at {}, or run `dkimctl plan` and `dkimctl apply` so the unit names the keys dkim.toml has",
                        path.display()
                    ),
                ));
            }
        }
    }
}

/// True when main.cf or master.cf names any milter list.
fn has_milter_lists(pf: &mta::Postfix) -> bool {
    let named = |v: &str| !milter_entries(&pf.expand(v)).is_empty();
    ["smtpd_milters", "non_smtpd_milters"]
        .iter()
        .any(|n| pf.param(n).is_some_and(|p| named(&p.value)))
        || pf.master.iter().flatten().any(|s| {
            s.overrides
                .iter()
                .any(|o| o.name.ends_with("_milters") && named(&o.value))
        })
}

fn accept_finding(at: &Origin, what: &str) -> Finding {
    Finding::new(
        id::MILTER_DEFAULT_ACTION,
        Severity::Warning,
        Some(at),
        what.to_string(),
        "whenever the milter is down or unreachable, Postfix sends mail on unsigned",
        "milter_default_action = tempfail: mail waits until the milter is back",
    )
}

/// The fix line for a Postfix milter list: `in main.cf: NAME = LIST` or,
/// for a master.cf override (`what` is `SERVICE -o NAME`), `in master.cf,
/// service SERVICE: -o NAME=LIST`.
fn list_fix(pf: &mta::Postfix, what: &str, list: &[String]) -> String {
    match what.split_once(" -o ") {
        Some((svc, name)) => format!(
            "in {}, service {svc}: -o {name}={}",
            pf.master_path.display(),
            list.join(",")
        ),
        None => format!(
            "in {}: {what} = {}",
            pf.main_path.display(),
            list.join(", ")
        ),
    }
}

/// A list's entries with entry `i` readdressed to `addr` (a `{ ... }`
/// group keeps its settings), every other milter kept in its place.
fn replace_entry(list: &str, i: usize, addr: &str) -> Vec<String> {
    milter_entries(list)
        .into_iter()
        .enumerate()
        .map(|(k, e)| {
            if k != i {
                return e;
            }
            let (old, _) = entry_parts(&e);
            if e.starts_with('{') {
                e.replacen(&old, addr, 1)
            } else {
                addr.to_string()
            }
        })
        .collect()
}

/// `addr` first, then every entry of the list.
fn prepend_entry(list: &str, addr: &str) -> Vec<String> {
    std::iter::once(addr.to_string())
        .chain(milter_entries(list))
        .collect()
}

/// The fix line that moves the socket to `to`, in the file that sets it:
/// opendkim.conf's `Socket`, dkim.toml's `socket`, or a unit's `-p`.
fn socket_fix(at: &Origin, to: &Socket) -> String {
    let file = at.file.display();
    let name = at
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    match name.as_deref() {
        Some(n) if n.ends_with(".toml") => {
            format!(
                "in {file}: socket = \"{}\" (under [service])",
                to.opendkim()
            )
        }
        Some(n)
            if n.ends_with(".service")
                || at.file.components().any(|c| c.as_os_str() == "systemd") =>
        {
            format!("in {file}: -p {} in ExecStart=", to.opendkim())
        }
        _ => format!("in {file}: Socket {}", to.opendkim()),
    }
}

/// The fix line setting the umask where it is set: a unit's `UMask=` or
/// opendkim.conf's `UMask`.
fn umask_fix(at: Option<&Origin>, umask: &str) -> String {
    match at {
        Some(at) if at.file.components().any(|c| c.as_os_str() == "systemd") => {
            format!("in {}: UMask=0{umask}", at.file.display())
        }
        Some(at) => format!("in {}: UMask {umask}", at.file.display()),
        None => format!("UMask {umask} in opendkim.conf"),
    }
}

/// How a Postfix milter address relates to the milter's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reach {
    /// Elsewhere.
    No,
    /// The host path, given to a chrooted service that cannot see it.
    OutsideChroot,
    /// The host path of a socket inside the chroot, given as if Postfix
    /// were not chrooted.
    ChrootPath,
    /// The same socket.
    Yes,
}

/// What our socket (OpenDKIM's or the engine's, a host path or a TCP
/// address) is, in the terms Postfix addresses are compared in.
fn socket_endpoint(s: &Socket) -> Endpoint {
    match s {
        Socket::Unix(p) => Endpoint::Unix(p.clone()),
        Socket::Inet { host, port } => Endpoint::Inet {
            host: host.clone(),
            port: *port,
        },
    }
}

/// Whether Postfix's address `theirs`, used by a service with the given
/// chroot, reaches the milter listening on `ours` (the one rule of
/// [`crate::formats::postfix::endpoint`]: aliases of a host, relative
/// paths from the queue directory, both socket notations).
pub(crate) fn reach(ours: &Socket, theirs: &str, chroot: Chroot, queue: &Path) -> Reach {
    let ours = socket_endpoint(ours);
    let seen = |chroot| {
        endpoint(
            theirs,
            &View {
                queue_directory: queue,
                chroot,
            },
        )
        .is_some_and(|e| e.same(&ours))
    };
    match chroot {
        Chroot::No => {
            if seen(Chroot::No) {
                Reach::Yes
            } else {
                Reach::No
            }
        }
        Chroot::Yes | Chroot::Default => {
            if seen(Chroot::Yes) {
                Reach::Yes
            } else if seen(Chroot::No) {
                match &ours {
                    Endpoint::Unix(p) if p.starts_with(queue) => Reach::ChrootPath,
                    _ => Reach::OutsideChroot,
                }
            } else {
                Reach::No
            }
        }
    }
}

/// OpenDKIM's one algorithm against its keys.
impl Checks<'_> {
    /// OpenDKIM 2.11 signs every key with its one global
    /// `SignatureAlgorithm` (default rsa-sha256): a KeyTable key of the
    /// other type fails at signing ("expecting an rsa key",
    /// `EVP_PKEY_get1_RSA() failed`) and OpenDKIM answers 451 for every
    /// message signed with it.
    fn key_algorithms(&mut self) {
        use crate::config::model::Algorithm;
        let Some(od) = &self.sys.opendkim else {
            return;
        };
        if !od.signs() {
            return;
        }
        let (setting, at) = match od.get("SignatureAlgorithm") {
            Some(s) => (s.value.trim().to_ascii_lowercase(), Some(s.at.clone())),
            None => ("rsa-sha256".to_string(), None),
        };
        let want = if setting.starts_with("ed25519") {
            Algorithm::Ed25519Sha256
        } else {
            Algorithm::RsaSha256
        };
        let mut seen = BTreeSet::new();
        for k in &od.keys {
            let KeySource::File(path) = &k.key else {
                continue;
            };
            if !seen.insert(path.clone()) {
                continue;
            }
            let Ok(real) = self.sys.reader.resolve(path) else {
                continue;
            };
            let Ok(key) = keys::load_private_key(&real) else {
                continue;
            };
            if key.algorithm != want {
                let set = match &at {
                    Some(_) => format!("SignatureAlgorithm {setting}"),
                    None => "SignatureAlgorithm (unset: rsa-sha256)".to_string(),
                };
                self.push(Finding::new(
                    id::KEY_ALGORITHM_MISMATCH,
                    Severity::Error,
                    Some(&k.at),
                    format!(
                        "the key of {}._domainkey.{} is {} but OpenDKIM signs with {set}",
                        k.selector, k.domain, key.algorithm
                    ),
                    "OpenDKIM uses one algorithm for every key: signing with this key fails (\"expecting an rsa key\") and each message is deferred (451)",
                    format!(
                        "sign with one algorithm only: drop the {} key from the KeyTable and SigningTable, or use engine = \"bundled\" to sign with both",
                        key.algorithm
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// audit's half of the vectors plan also runs over: whether
    /// smtpd_milters reaches the socket.
    #[test]
    fn shared_postfix_vectors() {
        for v in crate::formats::postfix::vectors::postfix_vectors() {
            let pf = mta::Postfix {
                main_path: "/etc/postfix/main.cf".into(),
                main: crate::formats::postfix::MainCf::parse(v.main_cf.as_bytes()),
                master_path: "/etc/postfix/master.cf".into(),
                master: None,
            };
            let queue = pf.queue_directory();
            let chroot = if v.chroot { Chroot::Yes } else { Chroot::No };
            let list = pf
                .param("smtpd_milters")
                .map(|p| pf.expand(&p.value))
                .unwrap_or_default();
            let reached = milter_entries(&list)
                .iter()
                .any(|e| reach(&v.socket, &entry_parts(e).0, chroot, &queue) == Reach::Yes);
            assert_eq!(reached, v.reaches, "{}", v.name);
        }
    }

    fn s(t: &str) -> Socket {
        parse_socket(t).unwrap()
    }

    #[test]
    fn notations_compare_by_meaning() {
        let q = Path::new("/var/spool/postfix");
        let cases = [
            (
                "inet:8891@localhost",
                "inet:localhost:8891",
                Chroot::No,
                Reach::Yes,
            ),
            (
                "inet:8891@localhost",
                "inet:127.0.0.1:8891",
                Chroot::Yes,
                Reach::Yes,
            ),
            (
                "inet:8892@localhost",
                "inet:localhost:8891",
                Chroot::No,
                Reach::No,
            ),
            (
                "local:/run/opendkim/opendkim.sock",
                "unix:/run/opendkim/opendkim.sock",
                Chroot::No,
                Reach::Yes,
            ),
            (
                "local:/run/opendkim/opendkim.sock",
                "unix:/run/opendkim/opendkim.sock",
                Chroot::Yes,
                Reach::OutsideChroot,
            ),
            (
                "local:/var/spool/postfix/opendkim/opendkim.sock",
                "unix:/opendkim/opendkim.sock",
                Chroot::Yes,
                Reach::Yes,
            ),
            (
                "local:/var/spool/postfix/opendkim/opendkim.sock",
                "unix:/var/spool/postfix/opendkim/opendkim.sock",
                Chroot::Yes,
                Reach::ChrootPath,
            ),
            (
                "local:/var/spool/postfix/opendkim/opendkim.sock",
                "unix:/opendkim/opendkim.sock",
                Chroot::No,
                Reach::No,
            ),
            (
                "local:/run/opendkim/opendkim.sock",
                "inet:localhost:8891",
                Chroot::No,
                Reach::No,
            ),
        ];
        for (ours, theirs, chroot, want) in cases {
            assert_eq!(
                reach(&s(ours), theirs, chroot, q),
                want,
                "{ours} vs {theirs} ({chroot:?})"
            );
        }
    }

    #[test]
    fn keys_are_judged_by_opendkims_own_rules() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let write = |rel: &str, text: &str| {
            let p = r.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        // The audit's user owns the files, so the fixture's opendkim is us;
        // postfix shares opendkim's group, as the ArchWiki page sets it up.
        write(
            "etc/passwd",
            &format!(
                "opendkim:x:{uid}:{gid}::/:/bin/false\npostfix:x:{}:7373::/:/bin/false\n",
                uid + 1
            ),
        );
        write(
            "etc/group",
            &format!("opendkim:x:{gid}:postfix\npostfix:x:7373:\n"),
        );
        write(
            "etc/opendkim/opendkim.conf",
            "UserID opendkim\nDomain example.com\nSelector s\nKeyFile /keys/s.private\n\
             Socket local:/run/opendkim/opendkim.sock\n",
        );
        let pair = crate::keys::generate(crate::config::model::Algorithm::RsaSha256, 2048).unwrap();
        std::fs::create_dir_all(r.join("keys")).unwrap();
        crate::keys::tests::write_test_key(&r.join("keys/s.private"), &pair.private_pem, 0o640);
        std::fs::set_permissions(r.join("keys"), std::fs::Permissions::from_mode(0o775)).unwrap();
        let sys = System::gather(&crate::host::Root::new(r), &Default::default());
        let opts = AuditOptions {
            systemd_analyze: systemd::Analyzer::Skip,
            ..AuditOptions::default()
        };
        let found = run(&sys, None, &opts);
        let key = found
            .iter()
            .find(|f| f.id == id::KEY_PERMISSIONS)
            .unwrap_or_else(|| panic!("{found:#?}"));
        assert!(
            key.message.contains("also holds postfix"),
            "{}",
            key.message
        );
        let d = found
            .iter()
            .find(|f| f.id == id::KEY_UNSAFE_DIRECTORY)
            .unwrap_or_else(|| panic!("{found:#?}"));
        assert_eq!(d.file.as_deref(), Some(Path::new("/keys")));
        assert!(!found.iter().any(|f| f.id == id::KEY_OWNER), "{found:#?}");
    }

    #[test]
    fn private_and_public_ranges() {
        assert!(is_private("10.1.2.3".parse().unwrap()));
        assert!(is_private("::1".parse().unwrap()));
        assert!(is_private("fd00::1".parse().unwrap()));
        assert!(!is_private("192.0.2.10".parse().unwrap()));
        assert!(is_private_net("192.168.0.0".parse().unwrap(), 16));
        assert!(!is_private_net("192.0.0.0".parse().unwrap(), 8));
        assert!(!is_private_net("203.0.113.0".parse().unwrap(), 24));
        assert!(is_private_net("172.16.0.0".parse().unwrap(), 12));
    }
}
