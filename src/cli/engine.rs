//! `dkimctl serve`, `dkimctl sign` and `dkimctl verify`: the bundled
//! engine, as a milter and one-shot on a message file.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;

use super::Error;
use crate::config::{Config, Source};
use crate::dkim::verify::DkimStatus;
use crate::engine;
use crate::host::Root;

/// `dkimctl serve`: runs until SIGTERM.
pub fn serve(
    root: &Root,
    source: &Source,
    socket: Option<String>,
    allow_root: bool,
) -> Result<i32, Error> {
    engine::serve(engine::ServeOptions {
        root: root.clone(),
        source: source.clone(),
        socket_override: socket,
        allow_root,
    })?;
    Ok(0)
}

/// `dkimctl sign FILE`: the signed message on stdout.
pub fn sign(config: &Config, root: &Root, file: &Path) -> Result<i32, Error> {
    let message = read_input(file)?;
    let signed = engine::sign_file(config, root, &message, engine::unix_now())?;
    std::io::stdout().lock().write_all(&signed)?;
    Ok(0)
}

/// `dkimctl verify FILE`: one result per signature; 0 when all pass.
pub fn verify(
    mut config: Config,
    file: &Path,
    nameserver: Option<SocketAddr>,
) -> Result<i32, Error> {
    if let Some(ns) = nameserver {
        config.engine.nameservers = vec![ns];
    }
    let message = read_input(file)?;
    let results = engine::verify_message_blocking(&config, &message, engine::unix_now())?;
    let mut out = std::io::stdout().lock();
    let mut all_pass = !results.is_empty();
    for r in &results {
        writeln!(out, "{r}")?;
        all_pass &= r.status == DkimStatus::Pass;
    }
    if results.is_empty() {
        writeln!(out, "dkim=none (no signature)")?;
    }
    Ok(i32::from(!all_pass))
}

/// Reads a message file, or standard input for `-`.
fn read_input(file: &Path) -> Result<Vec<u8>, Error> {
    if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        return Ok(buf);
    }
    std::fs::read(file).map_err(|e| format!("failed to read {}: {e}", file.display()).into())
}
