//! `dkimctl dns publish`: making DNS match dkim.toml, and checking that it
//! does.
//!
//! The flow is prepare -> (send) -> verify:
//!
//! 1. [`prepare`]: the record every configured key needs (pending, active
//!    and retiring keys: their public key; retired keys: the revoked form,
//!    `p=` empty), grouped by zone (`[dns] zone`, or an SOA lookup), and
//!    what the zone's primary serves now at each of those names. A name
//!    whose one TXT record already has the value is left alone; every
//!    other is "create" or "replace". Only `SELECTOR._domainkey.DOMAIN`
//!    names of configured selectors are ever looked at, so another host's
//!    selectors (a fleet sharing one zone) are never touched.
//! 2. [`send`] (`update = "rfc2136"`): one TSIG-signed update per zone with
//!    changes ([`super::update`]). With `update = "zonefile"` the file is
//!    written and the reload command run by [`crate::apply::rotation`];
//!    with `update = "manual"` the records are printed for the admin.
//! 3. [`verify`]: each record looked up again at every authoritative
//!    server (`[dns] authoritative`, or the zone's NS) and at the
//!    recursive resolver (`--nameserver`, `[engine] nameservers` or the
//!    system's), and reported per record.
//!
//! Nothing here writes a file.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::lookup::{LookupError, TxtAnswer, TxtResolver, shown};
use super::records::{RecordsError, records};
use super::tsig::TsigLoadError;
use super::update::{Update, UpdateError};
use super::{DnsError, Live};
use crate::config::Config;
use crate::config::model::{DnsUpdate, KeyState};
use crate::formats::tsig::TsigKey;
use crate::host::Root;
use crate::keys;

/// How much of a record found in DNS is quoted.
const QUOTE_MAX: usize = 60;

/// Why publishing could not be done (nothing was sent unless the message
/// says otherwise).
#[derive(Debug)]
pub enum PublishError {
    /// A record cannot be made (a missing private key).
    Records(RecordsError),
    /// No resolver could be set up.
    Resolver(DnsError),
    /// The TSIG key cannot be used.
    Key(TsigLoadError),
    /// The zone of a domain could not be found.
    NoZone {
        /// The domain.
        domain: String,
        /// The last lookup's failure, if one failed.
        why: Option<LookupError>,
    },
    /// The primary server could not be found.
    NoServer {
        /// The zone.
        zone: String,
        /// Why.
        why: String,
    },
    /// What a server serves now could not be read.
    Current {
        /// The server.
        server: String,
        /// Why.
        source: LookupError,
    },
    /// An update was not accepted.
    Update(Box<UpdateError>),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Records(e) => write!(f, "{e}"),
            PublishError::Resolver(e) => write!(f, "{e}"),
            PublishError::Key(e) => write!(f, "{e}"),
            PublishError::NoZone { domain, why } => {
                write!(f, "cannot find the DNS zone of _domainkey.{domain}")?;
                if why.is_none() {
                    write!(f, " (no SOA record above it); set [dns] zone")?;
                }
                Ok(())
            }
            PublishError::NoServer { zone, why } => write!(
                f,
                "cannot find the primary server of zone {zone} ({why}); set [dns] server"
            ),
            PublishError::Current { server, .. } => write!(
                f,
                "cannot read the current records from {server}; nothing was sent"
            ),
            PublishError::Update(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PublishError::Records(e) => e.source(),
            PublishError::Resolver(e) => e.source(),
            PublishError::Key(e) => e.source(),
            PublishError::NoZone { why, .. } => why.as_ref().map(|e| e as _),
            PublishError::Current { source, .. } => Some(source),
            PublishError::Update(e) => e.source(),
            PublishError::NoServer { .. } => None,
        }
    }
}

/// One record dkim.toml asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `SELECTOR._domainkey.DOMAIN`.
    pub name: String,
    /// The signing domain.
    pub domain: String,
    /// The selector.
    pub selector: String,
    /// The key's state.
    pub state: KeyState,
    /// The TXT value (joined).
    pub value: String,
    /// The zone it lies in.
    pub zone: String,
}

/// What a target needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The name serves exactly this record.
    Unchanged,
    /// Nothing is there.
    Create,
    /// Something else is there (shown, quoted safely).
    Replace(String),
}

impl Action {
    /// The word in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Unchanged => "unchanged",
            Action::Create => "create",
            Action::Replace(_) => "replace",
        }
    }
}

/// A zone and the servers that matter for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneInfo {
    /// The zone's apex.
    pub apex: String,
    /// Where updates go (`update = "rfc2136"` only).
    pub server: Option<SocketAddr>,
    /// The servers that must serve the records.
    pub authoritative: Vec<SocketAddr>,
}

/// Everything [`prepare`] found out.
#[derive(Debug)]
pub struct Prepared {
    /// `manual`, `rfc2136` or `zonefile`.
    pub method: &'static str,
    /// Every record, in dkim.toml's order.
    pub targets: Vec<Target>,
    /// What each target needs (same order).
    pub actions: Vec<Action>,
    /// The zones, by apex.
    pub zones: BTreeMap<String, ZoneInfo>,
    /// `update = "rfc2136"`: one update per zone with changes.
    pub updates: Vec<(SocketAddr, Update)>,
    /// `update = "zonefile"`: the file and the text it must hold.
    pub zonefile: Option<ZoneFile>,
    /// The recursive resolver asked (`None`: the system's).
    pub resolver: Option<SocketAddr>,
    /// Per-query timeout.
    pub timeout: Duration,
}

/// The zone file `update = "zonefile"` maintains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneFile {
    /// Host path.
    pub path: PathBuf,
    /// The whole text.
    pub text: String,
    /// The reload command (argv).
    pub reload: Vec<String>,
}

impl Prepared {
    /// Records that need creating or replacing.
    pub fn changes(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| **a != Action::Unchanged)
            .count()
    }
}

/// The records dkim.toml asks for, without their zones (for callers that
/// only compare).
pub fn targets(config: &Config, root: &Root) -> Result<Vec<Target>, PublishError> {
    Ok(records(config, root)
        .map_err(PublishError::Records)?
        .into_iter()
        .map(|(r, _)| Target {
            name: r.name,
            domain: r.domain,
            selector: r.selector,
            state: r.state,
            value: r.value,
            zone: String::new(),
        })
        .collect())
}

/// Finds zones and servers, and compares what the primary (rfc2136) or
/// the resolver (manual, zonefile) serves with what dkim.toml asks for.
/// `resolver` is the recursive resolver to use (`--nameserver`).
pub fn prepare(
    config: &Config,
    root: &Root,
    resolver: Option<SocketAddr>,
) -> Result<Prepared, PublishError> {
    let timeout = config.engine.dns_timeout;
    let resolver = resolver.or(config.engine.nameservers.first().copied());
    let recursive = Live::new(resolver, timeout).map_err(PublishError::Resolver)?;
    let mut targets = targets(config, root)?;

    // Zones: one per domain, found once.
    let mut zone_of: BTreeMap<String, String> = BTreeMap::new();
    for t in &mut targets {
        if !zone_of.contains_key(&t.domain) {
            let zone = match &config.dns.zone {
                Some(z) => z.clone(),
                None => find_zone(&recursive, &t.domain)?,
            };
            zone_of.insert(t.domain.clone(), zone);
        }
        t.zone = zone_of[&t.domain].clone();
    }
    let mut zones = BTreeMap::new();
    for apex in zone_of.values() {
        if zones.contains_key(apex) {
            continue;
        }
        let server = match &config.dns.update {
            DnsUpdate::Rfc2136 { server, .. } => Some(match server {
                Some(s) => *s,
                None => primary(&recursive, apex)?,
            }),
            _ => None,
        };
        let authoritative = if config.dns.authoritative.is_empty() {
            name_server_addresses(&recursive, apex)?
        } else {
            config.dns.authoritative.clone()
        };
        zones.insert(
            apex.clone(),
            ZoneInfo {
                apex: apex.clone(),
                server,
                authoritative,
            },
        );
    }

    // What is there now: at the primary when we update it ourselves,
    // else what the world sees.
    let mut at_server: BTreeMap<SocketAddr, Live> = BTreeMap::new();
    let mut actions = Vec::new();
    for t in &targets {
        let server = zones[&t.zone].server;
        let answer = match server {
            Some(s) => {
                if let std::collections::btree_map::Entry::Vacant(e) = at_server.entry(s) {
                    e.insert(Live::new(Some(s), timeout).map_err(PublishError::Resolver)?);
                }
                at_server[&s].lookup_txt(&t.name)
            }
            None => recursive.lookup_txt(&t.name),
        };
        let shown_at = server.map_or_else(|| resolver_label(resolver), |s| s.to_string());
        let answer = answer.map_err(|source| PublishError::Current {
            server: shown_at,
            source,
        })?;
        actions.push(action(&answer, &t.value));
    }

    let mut updates = Vec::new();
    if let DnsUpdate::Rfc2136 { .. } = &config.dns.update {
        for z in zones.values() {
            let records: Vec<(String, String)> = targets
                .iter()
                .zip(&actions)
                .filter(|(t, a)| t.zone == z.apex && **a != Action::Unchanged)
                .map(|(t, _)| (t.name.clone(), t.value.clone()))
                .collect();
            if let (false, Some(server)) = (records.is_empty(), z.server) {
                updates.push((
                    server,
                    Update {
                        zone: z.apex.clone(),
                        ttl: ttl_secs(config),
                        records,
                    },
                ));
            }
        }
    }
    let zonefile = match &config.dns.update {
        DnsUpdate::Zonefile { path, reload } => Some(ZoneFile {
            path: path.clone(),
            text: zone_file_text(config, &targets),
            reload: reload.clone(),
        }),
        _ => None,
    };
    Ok(Prepared {
        method: config.dns.update.as_str(),
        targets,
        actions,
        zones,
        updates,
        zonefile,
        resolver,
        timeout,
    })
}

fn ttl_secs(config: &Config) -> u32 {
    u32::try_from(config.dns.ttl.as_secs()).unwrap_or(86_400)
}

fn resolver_label(resolver: Option<SocketAddr>) -> String {
    resolver.map_or_else(|| "the system resolver".to_string(), |r| r.to_string())
}

/// What a target needs, given the answer at its name.
pub fn action(answer: &TxtAnswer, value: &str) -> Action {
    match answer {
        TxtAnswer::NxDomain | TxtAnswer::NoData => Action::Create,
        TxtAnswer::Records(list) if list.is_empty() => Action::Create,
        TxtAnswer::Records(list) if list.len() == 1 && list[0].joined() == value.as_bytes() => {
            Action::Unchanged
        }
        TxtAnswer::Records(list) => {
            let found: Vec<String> = list.iter().map(|r| r.shown(QUOTE_MAX)).collect();
            Action::Replace(if list.len() == 1 {
                found[0].clone()
            } else {
                format!("{} records: {}", list.len(), found.join(" | "))
            })
        }
    }
}

/// The zone that holds `_domainkey.DOMAIN`: the closest name at or above
/// it with an SOA record.
fn find_zone(resolver: &Live, domain: &str) -> Result<String, PublishError> {
    let start = format!("_domainkey.{domain}");
    let mut candidate = start.as_str();
    loop {
        match resolver.soa_mname(candidate) {
            Ok(Some(_)) => return Ok(candidate.to_string()),
            Ok(None) => {}
            Err(e) => {
                return Err(PublishError::NoZone {
                    domain: domain.to_string(),
                    why: Some(e),
                });
            }
        }
        match candidate.split_once('.') {
            Some((_, parent)) if parent.contains('.') => candidate = parent,
            _ => {
                return Err(PublishError::NoZone {
                    domain: domain.to_string(),
                    why: None,
                });
            }
        }
    }
}

/// The zone's primary: its SOA MNAME, port 53.
fn primary(resolver: &Live, zone: &str) -> Result<SocketAddr, PublishError> {
    let err = |why: String| PublishError::NoServer {
        zone: zone.to_string(),
        why,
    };
    let mname = resolver
        .soa_mname(zone)
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err("no SOA record".into()))?;
    let addrs = resolver.addresses(&mname).map_err(|e| err(e.to_string()))?;
    let ip = addrs
        .first()
        .ok_or_else(|| err(format!("{mname} has no address")))?;
    Ok(SocketAddr::new(*ip, 53))
}

/// The addresses of the zone's name servers, port 53.
fn name_server_addresses(resolver: &Live, zone: &str) -> Result<Vec<SocketAddr>, PublishError> {
    let err = |why: String| PublishError::NoServer {
        zone: zone.to_string(),
        why,
    };
    let mut out: Vec<SocketAddr> = Vec::new();
    for ns in resolver
        .name_servers(zone)
        .map_err(|e| err(e.to_string()))?
    {
        for ip in resolver.addresses(&ns).map_err(|e| err(e.to_string()))? {
            let a = SocketAddr::new(ip, 53);
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    if out.is_empty() {
        return Err(err("its NS records name no reachable address".into()));
    }
    out.sort_by_key(|a| (matches!(a.ip(), IpAddr::V6(_)), *a));
    Ok(out)
}

/// The zone file text for `update = "zonefile"`: every record with its
/// absolute name, so the file works as a zone of its own (a delegated
/// `_domainkey` zone, with the SOA and NS kept by the admin in the main
/// file) or as an `$INCLUDE` fragment.
pub fn zone_file_text(config: &Config, targets: &[Target]) -> String {
    let mut s = format!(
        "; Managed by dkimctl from {}; local edits will be overwritten.\n\
         ; DKIM records (one TXT record each); `dkimctl dns publish` rewrites this file.\n",
        config.source.display()
    );
    let ttl = ttl_secs(config);
    for t in targets {
        s.push_str(&format!(
            "; {} selector {} ({})\n",
            t.domain,
            t.selector,
            t.state.as_str()
        ));
        let strings: Vec<String> = keys::character_strings(&t.value)
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect();
        s.push_str(&format!(
            "{}. {ttl} IN TXT ( {} )\n",
            t.name,
            strings.join(" ")
        ));
    }
    s
}

/// Sends every planned update; stops at the first rejection (the updates
/// of earlier zones stay done: each is complete on its own).
pub fn send(prepared: &Prepared, key: &TsigKey) -> Result<usize, PublishError> {
    let mut sent = 0;
    for (server, update) in &prepared.updates {
        super::update::send(*server, update, key, prepared.timeout)
            .map_err(|e| PublishError::Update(Box::new(e)))?;
        sent += 1;
    }
    Ok(sent)
}

/// Who was asked in a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// An authoritative server of the zone.
    Authoritative,
    /// The recursive resolver.
    Resolver,
}

/// One lookup of one record after publishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Who answered.
    pub asked: Asked,
    /// `IP:PORT`, or "the system resolver".
    pub server: String,
    /// It serves exactly the record.
    pub ok: bool,
    /// What it serves instead, or why the lookup failed.
    pub detail: String,
}

/// Every target looked up at every authoritative server of its zone and at
/// the resolver; one list of checks per target.
pub fn verify(prepared: &Prepared) -> Vec<Vec<Check>> {
    let mut servers: BTreeMap<SocketAddr, Result<Live, String>> = BTreeMap::new();
    let resolver = Live::new(prepared.resolver, prepared.timeout).map_err(|e| e.to_string());
    let mut out = Vec::new();
    for t in &prepared.targets {
        let mut checks = Vec::new();
        let zone = &prepared.zones[&t.zone];
        let mut asked: Vec<SocketAddr> = zone.authoritative.clone();
        if let Some(s) = zone.server
            && !asked.contains(&s)
        {
            asked.insert(0, s);
        }
        for s in asked {
            let live = servers
                .entry(s)
                .or_insert_with(|| Live::new(Some(s), prepared.timeout).map_err(|e| e.to_string()));
            checks.push(check(Asked::Authoritative, s.to_string(), live.as_ref(), t));
        }
        checks.push(check(
            Asked::Resolver,
            resolver_label(prepared.resolver),
            resolver.as_ref(),
            t,
        ));
        out.push(checks);
    }
    out
}

fn check(asked: Asked, server: String, live: Result<&Live, &String>, t: &Target) -> Check {
    let (ok, detail) = match live {
        Err(why) => (false, why.clone()),
        Ok(live) => match live.lookup_txt(&t.name) {
            Err(e) => (false, e.to_string()),
            Ok(answer) => match action(&answer, &t.value) {
                Action::Unchanged => (true, String::new()),
                Action::Create => (false, "no record".to_string()),
                Action::Replace(found) => (false, format!("serves {found}")),
            },
        },
    };
    Check {
        asked,
        server,
        ok,
        detail,
    }
}

/// The report of a publish run.
#[derive(Debug)]
pub struct Report<'a> {
    /// What was prepared.
    pub prepared: &'a Prepared,
    /// Updates sent (0 in a dry run).
    pub sent: usize,
    /// The zone file was rewritten.
    pub zonefile_written: bool,
    /// The checks after publishing, per target (empty in a dry run).
    pub checks: Vec<Vec<Check>>,
    /// `--dry-run`.
    pub dry_run: bool,
}

impl Report<'_> {
    /// 0: DNS matches dkim.toml at every authoritative server; 1: it does
    /// not (a dry run or manual mode with changes, or a server that does
    /// not serve a record yet).
    pub fn exit_code(&self) -> i32 {
        if self.dry_run || self.prepared.method == "manual" {
            return i32::from(self.prepared.changes() > 0);
        }
        let missing = self
            .checks
            .iter()
            .flatten()
            .any(|c| c.asked == Asked::Authoritative && !c.ok);
        i32::from(missing)
    }

    /// For people: one line per record, then what was sent.
    pub fn print(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let p = self.prepared;
        for (i, t) in p.targets.iter().enumerate() {
            let a = &p.actions[i];
            let verb = match (a, self.dry_run || p.method == "manual") {
                (Action::Unchanged, _) => "unchanged",
                (Action::Create, true) => "to create",
                (Action::Replace(_), true) => "to replace",
                (Action::Create, false) => "created",
                (Action::Replace(_), false) => "replaced",
            };
            writeln!(out, "{verb:<11}{} ({})", t.name, t.state.as_str())?;
            if let Action::Replace(found) = a {
                writeln!(out, "           was: {found}")?;
            }
            if p.method == "manual" && *a != Action::Unchanged {
                writeln!(out, "           publish ONE TXT record:")?;
                writeln!(
                    out,
                    "           {}",
                    keys::zone_form(&format!("{}.", t.name), &t.value)
                )?;
            }
            for c in self.checks.get(i).into_iter().flatten() {
                let who = match c.asked {
                    Asked::Authoritative => "authoritative",
                    Asked::Resolver => "resolver",
                };
                if c.ok {
                    writeln!(out, "           ok at {who} {}", c.server)?;
                } else if c.asked == Asked::Resolver {
                    writeln!(
                        out,
                        "           not yet at {who} {} ({}; it may still hold an old answer for \
                         up to its TTL)",
                        c.server, c.detail
                    )?;
                } else {
                    writeln!(out, "           NOT at {who} {}: {}", c.server, c.detail)?;
                }
            }
        }
        if self.dry_run {
            for (server, u) in &p.updates {
                writeln!(out)?;
                writeln!(
                    out,
                    "The update that would be sent (nsupdate syntax, unsigned):"
                )?;
                out.write_all(u.describe(*server).as_bytes())?;
            }
        }
        match p.method {
            "rfc2136" if !self.dry_run => writeln!(
                out,
                "{} update(s) sent; {} record(s) changed, {} unchanged",
                self.sent,
                p.changes(),
                p.targets.len() - p.changes()
            )?,
            "zonefile" if !self.dry_run => {
                let f = p.zonefile.as_ref().map(|z| z.path.display().to_string());
                writeln!(
                    out,
                    "{} {}",
                    f.unwrap_or_default(),
                    if self.zonefile_written {
                        "written"
                    } else {
                        "unchanged"
                    }
                )?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let p = self.prepared;
        let records: Vec<Value> = p
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let a = &p.actions[i];
                json!({
                    "name": t.name,
                    "domain": t.domain,
                    "selector": t.selector,
                    "state": t.state.as_str(),
                    "zone": t.zone,
                    "action": a.as_str(),
                    "found": match a { Action::Replace(f) => Some(f.clone()), _ => None },
                    "checks": self.checks.get(i).into_iter().flatten().map(|c| json!({
                        "server": c.server,
                        "kind": match c.asked { Asked::Authoritative => "authoritative", Asked::Resolver => "resolver" },
                        "ok": c.ok,
                        "detail": c.detail,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "method": p.method,
            "dry_run": self.dry_run,
            "records": records,
            "updates": p.updates.iter().map(|(s, u)| json!({
                "server": s.to_string(),
                "zone": u.zone,
                "records": u.records.len(),
                "text": u.describe(*s),
            })).collect::<Vec<_>>(),
            "sent": self.sent,
            "exit": self.exit_code(),
        })
    }
}

/// A found value, quoted safely (for callers reporting answers).
pub fn quote(bytes: &[u8]) -> String {
    shown(bytes, QUOTE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::lookup::TxtRecord;

    #[test]
    fn actions_compare_the_joined_value_of_one_record() {
        let v = "v=DKIM1; k=rsa; p=AB";
        let one = |parts: &[&str]| TxtAnswer::Records(vec![TxtRecord::new(parts)]);
        assert_eq!(action(&TxtAnswer::NxDomain, v), Action::Create);
        assert_eq!(action(&TxtAnswer::NoData, v), Action::Create);
        // String boundaries do not matter to verifiers.
        assert_eq!(
            action(&one(&["v=DKIM1; k=rsa; ", "p=AB"]), v),
            Action::Unchanged
        );
        assert_eq!(
            action(&one(&["v=DKIM1; k=rsa; p=XY"]), v),
            Action::Replace("v=DKIM1; k=rsa; p=XY".into())
        );
        let split = TxtAnswer::Records(vec![
            TxtRecord::new(&["v=DKIM1; k=rsa; "]),
            TxtRecord::new(&["p=AB"]),
        ]);
        assert_eq!(
            action(&split, v),
            Action::Replace("2 records: v=DKIM1; k=rsa;  | p=AB".into())
        );
    }
}
