//! Checks of a valid configuration against the system under the root:
//! users and groups (looked up in ROOT/etc/passwd and ROOT/etc/group, not
//! the host's), key files (present, parseable, of the configured algorithm
//! and size, not readable by others), and the resolver the hardened unit
//! will allow. Read-only.

use std::net::IpAddr;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;

use super::Diagnostics;
use super::model::{Algorithm, Canon, Config, DnsUpdate, EngineKind, Key};
use super::raw::{RawConfig, RawDomain, Sp};
use super::validate::normalize_domain;
use crate::host::Root;
use crate::host::accounts;

/// Adds findings about the system under `root` to `diags`.
///
/// With `for_apply`, problems that `apply` itself fixes (a key's mode) are
/// left to the plan, which shows them as changes, instead of stopping it.
pub fn check(
    config: &Config,
    raw: &RawConfig,
    root: &Root,
    for_apply: bool,
    diags: &mut Diagnostics,
) {
    accounts(config, raw, root, diags);
    // Each [[domain]] table by its normalized name, made once: looking it
    // up anew for every key made 10,000 domains cost 10^8 name checks.
    let mut tables: std::collections::HashMap<String, &RawDomain> =
        std::collections::HashMap::new();
    for rd in &raw.domains {
        if let Some(name) = rd
            .name
            .as_ref()
            .and_then(|n| normalize_domain(&n.value).ok())
        {
            tables.entry(name).or_insert(rd);
        }
    }
    for d in config.domains.iter().filter(|d| d.key_from.is_none()) {
        for k in d.keys.iter().filter(|k| k.state.needs_private_key()) {
            let span = tables
                .get(d.name.as_str())
                .and_then(|rd| key_span(rd, &k.selector));
            key_file(config, k, span, root, for_apply, diags);
        }
    }
    resolver(config, root, diags);
    tsig_key(config, raw, root, diags);
    if config.service.engine == EngineKind::OpenDkim
        && config.signing.header_canon == Canon::Simple
        && config
            .domains
            .iter()
            .any(|d| d.algorithms.contains(&Algorithm::Ed25519Sha256))
    {
        diags.warning(
            raw.defaults.canonicalization.as_ref().and_then(Sp::at),
            "OpenDKIM 2.11 makes Ed25519 signatures that fail with simple header canonicalization",
            "use relaxed header canonicalization, or the bundled engine",
        );
    }
}

/// The span of a key's selector in its domain's table (or of the
/// domain's name).
fn key_span(rd: &RawDomain, selector: &str) -> Option<Range<usize>> {
    rd.keys
        .iter()
        .filter_map(|k| k.selector.as_ref())
        .find(|s| s.value.eq_ignore_ascii_case(selector))
        .or(rd.selector.as_ref())
        .or(rd.name.as_ref())
        .and_then(Sp::at)
}

fn accounts(config: &Config, raw: &RawConfig, root: &Root, diags: &mut Diagnostics) {
    let accounts = match accounts::load(root) {
        Ok(a) => a,
        Err(e) => {
            diags.warning(
                None,
                format!(
                    "cannot read the accounts under {}: {e}",
                    root.dir().display()
                ),
                "check the root",
            );
            return;
        }
    };
    let s = &config.service;
    let at = |sp: &Option<Sp<String>>| sp.as_ref().and_then(Sp::at);
    if accounts.user(&s.user).is_none() {
        diags.info(
            at(&raw.service.user),
            format!(
                "user {} does not exist under {}; apply will create it",
                s.user,
                root.dir().display()
            ),
        );
    }
    if accounts.group(&s.group).is_none() && s.group != s.user {
        diags.info(
            at(&raw.service.group),
            format!(
                "group {} does not exist under {}; apply will create it",
                s.group,
                root.dir().display()
            ),
        );
    }
    if let Some(mta_group) = config.mta.group() {
        if accounts.group(&s.socket_group).is_none() {
            diags.info(
                at(&raw.service.socket_group),
                format!(
                    "group {} does not exist under {}; is the MTA installed? apply will create it",
                    s.socket_group,
                    root.dir().display()
                ),
            );
        } else if let Some(g) = accounts.group(&s.group) {
            let member = g.members.iter().any(|m| m == mta_group)
                || accounts.user(mta_group).is_some_and(|u| u.gid == g.gid);
            if !member {
                diags.info(
                    None,
                    format!("user {mta_group} is not in group {}; apply will add it so the MTA can reach the socket", s.group),
                );
            }
        }
    }
}

fn key_file(
    config: &Config,
    key: &Key,
    span: Option<Range<usize>>,
    root: &Root,
    for_apply: bool,
    diags: &mut Diagnostics,
) {
    let real = root.join(&key.path);
    let meta = match std::fs::symlink_metadata(&real) {
        Ok(m) => m,
        // A missing key is what apply (and bootstrap) create: worth a
        // warning from `check` only.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !for_apply {
                diags.warning(
                    span.clone(),
                    format!("key {} does not exist yet", key.path.display()),
                    "`dkimctl keys generate` creates it (`dkimctl apply` does too)",
                );
            }
            return;
        }
        Err(e) => {
            diags.error(
                span.clone(),
                format!("cannot inspect key {}: {e}", key.path.display()),
            );
            return;
        }
    };
    if !meta.file_type().is_file() {
        diags.error_help(
            span.clone(),
            format!("key {} is not a regular file", key.path.display()),
            "keys must not be symbolic links or directories",
        );
        return;
    }
    if let Some(why) =
        crate::keys::check_key_file_mode(meta.permissions().mode()).filter(|_| !for_apply)
    {
        diags.error_help(
            span.clone(),
            format!(
                "key {} is {why} (mode {:04o})",
                key.path.display(),
                meta.permissions().mode() & 0o7777
            ),
            format!("chmod 600 {}; `dkimctl apply` fixes it", key.path.display()),
        );
    }
    let loaded = match crate::keys::load_private_key(&real) {
        Ok(k) => k,
        Err(e) => {
            diags.error_help(
                span.clone(),
                format!("key cannot be used: {}", crate::report::chain(&e)),
                "replace it with `dkimctl keys generate --force` (then publish the new record)",
            );
            return;
        }
    };
    if loaded.algorithm != key.algorithm {
        diags.error_help(
            span.clone(),
            format!(
                "key {} is an {} key but selector {} is configured for {}",
                key.path.display(),
                loaded.algorithm.key_type(),
                key.selector,
                key.algorithm
            ),
            "fix the algorithm in dkim.toml, or generate a new key",
        );
    }
    if loaded.algorithm == Algorithm::RsaSha256 {
        if loaded.bits < 1024 {
            diags.error_help(
                span.clone(),
                format!("key {} has only {} bits", key.path.display(), loaded.bits),
                "RFC 8301 requires at least 1024; generate a 2048-bit key",
            );
        } else if loaded.bits < 2048 {
            let help = match config.service.engine {
                EngineKind::Bundled => {
                    "the bundled engine (aws-lc) signs only with 2048 bits or more; rotate to a 2048-bit key (`dkimctl rotate`)"
                }
                EngineKind::OpenDkim => {
                    "receivers increasingly distrust short keys; rotate to a 2048-bit key (`dkimctl rotate`)"
                }
            };
            if config.service.engine == EngineKind::Bundled {
                diags.error_help(
                    span.clone(),
                    format!("key {} has only {} bits", key.path.display(), loaded.bits),
                    help,
                );
            } else {
                diags.warning(
                    span.clone(),
                    format!("key {} has only {} bits", key.path.display(), loaded.bits),
                    help,
                );
            }
        }
    }
}

/// The rendered unit allows DNS only to localhost and the configured name
/// servers: a remote resolver in resolv.conf would make every verification
/// a temperror.
fn resolver(config: &Config, root: &Root, diags: &mut Diagnostics) {
    if !config.service.mode.verifies() || !config.engine.nameservers.is_empty() {
        return;
    }
    let Ok(text) = std::fs::read_to_string(root.join(std::path::Path::new("/etc/resolv.conf")))
    else {
        return;
    };
    let remote: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .filter(|ns| ns.parse::<IpAddr>().is_ok_and(|ip| !ip.is_loopback()))
        .collect();
    if !remote.is_empty() {
        diags.warning(
            None,
            format!("resolv.conf names remote name servers ({}) but the hardened unit allows DNS only to localhost", remote.join(", ")),
            format!("list them in [engine] nameservers = [\"{}\"], or run a local resolver", remote[0]),
        );
    }
}

/// `[dns] tsig_key_file`: a regular file (not a link), readable by its
/// owner only, holding one key. Missing is a warning (publishing then
/// fails, nothing else does); the secret never appears in a message.
fn tsig_key(config: &Config, raw: &RawConfig, root: &Root, diags: &mut Diagnostics) {
    let DnsUpdate::Rfc2136 { tsig_key_file, .. } = &config.dns.update else {
        return;
    };
    let at = raw.dns.tsig_key_file.as_ref().and_then(Sp::at);
    let real = root.join(tsig_key_file);
    let shown = tsig_key_file.display();
    let meta = match std::fs::symlink_metadata(&real) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            diags.warning(
                at,
                format!("the TSIG key {shown} does not exist; `dkimctl dns publish` will fail"),
                format!(
                    "create it: tsig-keygen -a hmac-sha256 dkimctl > {shown} && chmod 0600 {shown}"
                ),
            );
            return;
        }
        Err(e) => {
            diags.error(at, format!("cannot read the TSIG key {shown}: {e}"));
            return;
        }
    };
    if !meta.file_type().is_file() {
        diags.error_help(
            at,
            format!("the TSIG key {shown} is not a regular file"),
            "symbolic links are not followed for keys; name the file itself",
        );
        return;
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        diags.error_help(
            at,
            format!("the TSIG key {shown} has mode {mode:04o}"),
            format!("it must be readable by its owner only: chmod 0600 {shown}"),
        );
        return;
    }
    let text = match std::fs::read(&real) {
        Ok(t) => crate::keys::Secret::new(t),
        // Only root reads it (mode 0600): `dkimctl check` run by the
        // engine's unit (ExecReload) or another user cannot, and that is
        // as it should be; `dns publish` reads it as root.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return,
        Err(e) => {
            diags.error(at, format!("cannot read the TSIG key {shown}: {e}"));
            return;
        }
    };
    let parsed = text
        .expose_str()
        .ok_or_else(|| "the file is not text".to_string())
        .and_then(|t| crate::formats::tsig::parse(t).map_err(|e| e.to_string()));
    if let Err(why) = parsed {
        diags.error_help(
            at,
            format!("the TSIG key {shown} cannot be used: {why}"),
            "write it with `tsig-keygen -a hmac-sha256 NAME` (hmac-sha256 or hmac-sha512)",
        );
    }
}
