//! `dkimctl audit` and `dkimctl import`: any installation judged, and an
//! OpenDKIM setup turned into dkim.toml.

use std::io::Write;

use super::Error;
use crate::audit::{self, AuditOptions};
use crate::config::Config;
use crate::host::Root;
use crate::report::Severity;

/// `dkimctl audit`: 0 no finding at or above `fail_on`, 1 findings, 2
/// could not audit.
pub fn audit(
    root: &Root,
    config: Option<&Config>,
    opts: &AuditOptions,
    fail_on: Severity,
    json: bool,
    color: bool,
) -> Result<i32, Error> {
    let report = audit::audit(root, config, opts);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report.to_json())?;
        writeln!(out)?;
    } else {
        report.print(&mut out, color)?;
    }
    Ok(report.exit_code(fail_on))
}

/// `dkimctl import`: dkim.toml on stdout, notes on stderr.
pub fn import(root: &Root) -> Result<i32, Error> {
    let result = audit::import(root)?;
    std::io::stdout().lock().write_all(result.toml.as_bytes())?;
    for n in &result.notes {
        eprintln!("dkimctl: note: {n}");
    }
    Ok(0)
}
