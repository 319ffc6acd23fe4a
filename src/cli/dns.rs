//! `dkimctl dns records`, `dkimctl dns publish` and `dkimctl dns check`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use super::Error;
use crate::config::Config;
use crate::config::model::{DnsUpdate, KeyState};
use crate::config::types::Date;
use crate::dns::publish::{self, Asked, Check, Prepared, PublishError, Report};
use crate::dns::records::records;
use crate::dns::state::{DnsState, PublishResult};
use crate::host::Root;
use crate::keys;

/// `dkimctl dns records`.
pub fn print_records(
    config: &Config,
    root: &Root,
    plain: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Error> {
    let recs = records(config, root)?;
    if json {
        let list: Vec<serde_json::Value> = recs
            .iter()
            .map(|(r, alg)| {
                serde_json::json!({
                    "name": r.name,
                    "domain": r.domain,
                    "selector": r.selector,
                    "algorithm": alg.as_str(),
                    "state": r.state.as_str(),
                    "value": r.value,
                    "strings": keys::character_strings(&r.value),
                    "zone": keys::zone_form(&format!("{}.", r.name), &r.value),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &serde_json::json!({ "records": list }))?;
        writeln!(out)?;
        return Ok(0);
    }
    for (r, _) in &recs {
        let note = match r.state {
            KeyState::Active => "signing",
            KeyState::Pending => "pending: publish before `dkimctl rotate --continue`",
            KeyState::Retiring => "retiring: keep published until the grace period ends",
            KeyState::Retired => "retired: revoked, publish the empty p=",
        };
        writeln!(out, "; {} selector {} ({note})", r.domain, r.selector)?;
        if plain {
            writeln!(out, "name:  {}", r.name)?;
            writeln!(out, "type:  TXT")?;
            writeln!(out, "value: {}", r.value)?;
        } else {
            writeln!(
                out,
                "{}",
                keys::zone_form(&format!("{}.", r.name), &r.value)
            )?;
        }
    }
    Ok(0)
}

/// `dkimctl dns check`: 0 all ok, 1 findings, 2 could not check.
pub fn check(
    config: &Config,
    root: &Root,
    nameserver: Option<std::net::SocketAddr>,
    timeout: u64,
    json: bool,
    color: bool,
) -> Result<i32, Error> {
    let report = crate::dns::check(config, root, nameserver, Duration::from_secs(timeout))?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report.to_json())?;
        writeln!(out)?;
    } else {
        report.print(&mut out, color)?;
    }
    Ok(report.exit_code())
}

/// What one publish run did (after [`run_publish`]).
pub struct Published {
    /// What was found and planned.
    pub prepared: Prepared,
    /// Updates sent.
    pub sent: usize,
    /// The zone file was rewritten.
    pub zonefile_written: bool,
    /// The checks afterwards, per target.
    pub checks: Vec<Vec<Check>>,
}

impl Published {
    /// The report of this run.
    pub fn report(&self, dry_run: bool) -> Report<'_> {
        Report {
            prepared: &self.prepared,
            sent: self.sent,
            zonefile_written: self.zonefile_written,
            checks: self.checks.clone(),
            dry_run,
        }
    }
}

/// Makes DNS match dkim.toml (see [`crate::dns::publish`]) and remembers
/// the result and the records found everywhere in `state`. A dry run
/// sends and writes nothing; with `update = "manual"` nothing is sent
/// either (the records are only compared).
pub fn run_publish(
    config: &Config,
    root: &Root,
    nameserver: Option<SocketAddr>,
    dry_run: bool,
    today: Date,
    state: &mut DnsState,
) -> Result<Published, Error> {
    let result = publish_and_check(config, root, nameserver, dry_run);
    let acting = !dry_run && config.dns.update != DnsUpdate::Manual;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match &result {
        Ok(p) => {
            for (t, checks) in p.prepared.targets.iter().zip(&p.checks) {
                if !checks.is_empty() && checks.iter().all(|c| c.ok) {
                    state.saw(&t.name, &t.value, today);
                }
            }
            if acting {
                let ok = p.report(false).exit_code() == 0;
                state.last_publish = Some(PublishResult {
                    time: now,
                    ok,
                    changed: p.prepared.changes(),
                    message: if ok {
                        format!(
                            "{} record(s) changed, {} unchanged",
                            p.prepared.changes(),
                            p.prepared.targets.len() - p.prepared.changes()
                        )
                    } else {
                        "a record is not served by every authoritative server".to_string()
                    },
                });
            }
        }
        Err(e) if acting => {
            state.last_publish = Some(PublishResult {
                time: now,
                ok: false,
                changed: 0,
                message: crate::report::chain(e.as_ref()).replace('\n', " "),
            });
        }
        Err(_) => {}
    }
    result
}

fn publish_and_check(
    config: &Config,
    root: &Root,
    nameserver: Option<SocketAddr>,
    dry_run: bool,
) -> Result<Published, Error> {
    let prepared = publish::prepare(config, root, nameserver)?;
    let mut sent = 0;
    let mut zonefile_written = false;
    if !dry_run {
        match &config.dns.update {
            DnsUpdate::Manual => {}
            DnsUpdate::Rfc2136 { tsig_key_file, .. } => {
                if !prepared.updates.is_empty() {
                    let key =
                        crate::dns::tsig::load(root, tsig_key_file).map_err(PublishError::Key)?;
                    sent = publish::send(&prepared, &key)?;
                }
            }
            DnsUpdate::Zonefile { .. } => {
                if let Some(zf) = &prepared.zonefile {
                    zonefile_written =
                        crate::apply::rotation::write_zone_file(root, zf, prepared.changes() > 0)?;
                }
            }
        }
    }
    let checks = if dry_run || config.dns.update == DnsUpdate::Manual {
        Vec::new()
    } else {
        publish::verify(&prepared)
    };
    Ok(Published {
        prepared,
        sent,
        zonefile_written,
        checks,
    })
}

/// `dkimctl dns publish`: 0 DNS matches dkim.toml, 1 changes pending
/// (`--dry-run`, manual) or a server does not serve a record yet, 2 could
/// not publish.
pub fn publish(
    config: &Config,
    root: &Root,
    dry_run: bool,
    json: bool,
    nameserver: Option<SocketAddr>,
    today: Date,
) -> Result<i32, Error> {
    let mut state = DnsState::read(root);
    let before = state.clone();
    let result = run_publish(config, root, nameserver, dry_run, today, &mut state);
    if state != before {
        crate::apply::rotation::write_state(root, &state)?;
    }
    let published = result?;
    let report = published.report(dry_run);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report.to_json())?;
        writeln!(out)?;
    } else {
        report.print(&mut out)?;
    }
    Ok(report.exit_code())
}

/// True when every check of a record (every authoritative server and the
/// resolver) found it.
pub fn served_everywhere(checks: &[Check]) -> bool {
    !checks.is_empty() && checks.iter().all(|c| c.ok)
}

/// True when no authoritative server serves it right.
pub fn authoritative_missing(checks: &[Check]) -> bool {
    checks
        .iter()
        .any(|c| c.asked == Asked::Authoritative && !c.ok)
}
