//! `dkimctl dns records` and `dkimctl dns check`.

use std::io::Write;
use std::time::Duration;

use super::Error;
use crate::config::Config;
use crate::config::model::KeyState;
use crate::dns::records::records;
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
