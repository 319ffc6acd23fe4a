//! `dkimctl audit` and `dkimctl import`: any installation judged, and an
//! OpenDKIM setup turned into dkim.toml.

use std::io::Write;

use super::Error;
use crate::audit::{self, AuditOptions, ImportError};
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

/// `dkimctl import`: dkim.toml on stdout, what was not carried over on
/// stderr. Exit 1, with the reasons on stderr and nothing on stdout, when
/// the setup cannot be adopted, or when adopting it would change what is
/// signed and `lossy` is not set.
pub fn import(root: &Root, lossy: bool) -> Result<i32, Error> {
    let result = match audit::import(root, lossy) {
        Ok(r) => r,
        Err(ImportError::Refused { reasons }) => {
            eprintln!("dkimctl: import refused: this setup cannot be adopted as it is:");
            for r in &reasons {
                eprintln!("    {r}");
            }
            return Ok(1);
        }
        Err(ImportError::Lossy { losses }) => {
            eprintln!(
                "dkimctl: import refused: adopting this setup would change what is signed; \
                 --lossy writes the dkim.toml anyway, with these lines left out:"
            );
            for n in &losses {
                eprintln!("    not carried over: {n}");
            }
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    std::io::stdout().lock().write_all(result.toml.as_bytes())?;
    for n in &result.notes {
        eprintln!("dkimctl: not carried over: {n}");
    }
    Ok(0)
}
