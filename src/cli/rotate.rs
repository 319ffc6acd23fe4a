//! `dkimctl rotate DOMAIN [--continue]`: rotate decides, apply writes.

use std::net::SocketAddr;

use super::Error;
use crate::config::Source;
use crate::config::types::Date;
use crate::host::Root;

/// One rotation step: decided by [`crate::rotate`], carried out by
/// [`crate::apply::rotation`], reported. The exit code is the step's.
pub fn rotate(
    root: &Root,
    source: &Source,
    domain: &str,
    cont: bool,
    nameserver: Option<SocketAddr>,
    today: Option<&str>,
) -> Result<i32, Error> {
    let today = match today {
        Some(t) => Date::parse(t).ok_or_else(|| format!("invalid date {t}: write YYYY-MM-DD"))?,
        None => Date::today(),
    };
    let step = crate::rotate::decide(source, root, domain, cont, nameserver, today)?;
    let retired = crate::apply::rotation::carry_out(root, source, &step)?;
    step.print(&retired, &mut std::io::stdout().lock())?;
    Ok(step.code)
}
