//! `dkimctl dns check`: what the world sees of each key.
//!
//! `check` looks up every configured selector's TXT record and compares it
//! with the private key on disk: one finding per selector, with a stable id
//! (`ok`, `missing`, `several-records`, `syntax`, `mismatch`, `revoked`,
//! ...), a message and a fix. Each domain's SPF and DMARC records are
//! reported for information. A lookup that fails is never reported as
//! "ok" or "missing": the run is "could not check" (exit 2).
//!
//! The flow is lookup -> judge -> report:
//!
//! - [`lookup`]: the [`TxtResolver`] seam, TXT answers that keep each
//!   record and each character-string apart, and [`Fixed`] for tests.
//! - [`live`]: [`Live`], hickory-resolver against the system's resolvers or
//!   one `IP:PORT`.
//! - [`judge`]: answer + key -> finding; pure.
//! - [`report`]: [`DnsReport`] with `print`, `to_json` and `exit_code`.
//!
//! `dkimctl dns publish` is [`publish`]: the records dkim.toml asks for,
//! sent as RFC 2136 updates signed with TSIG ([`update`], the key loaded by
//! [`tsig`]), and checked afterwards; [`state`] is what it remembers
//! between runs (written by [`crate::apply`]).
//!
//! Nothing here writes a file; the only change made is the DNS update
//! itself. `rotate` reuses the same judgement to decide whether a new
//! key's record is visible before switching to it.

pub mod judge;
pub mod live;
pub mod lookup;
pub mod publish;
pub mod records;
pub mod report;
pub mod resolver;
pub mod state;
pub mod tsig;
pub mod update;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::config::model::{Domain, Key};
use crate::host::Root;
use crate::keys;

pub use judge::{PrivateState, judge_domain, judge_selector};
pub use live::Live;
pub use lookup::{Fixed, LookupError, LookupErrorKind, TxtAnswer, TxtRecord, TxtResolver};
pub use report::{
    DnsReport, DomainFinding, PolicyRecord, PolicyStatus, SelectorFinding, Severity, Status,
};

/// Why no lookup could be made at all (each failed lookup is a finding,
/// not this error).
#[derive(Debug)]
pub enum DnsError {
    /// The system resolver configuration could not be read.
    SystemConfig(String),
    /// The async runtime for the resolver could not be started.
    Runtime(std::io::Error),
    /// Called from inside an async runtime, where the blocking resolver
    /// cannot run.
    InsideRuntime,
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::SystemConfig(why) => write!(
                f,
                "failed to set up the system resolver ({why}); name a server with --nameserver IP:PORT"
            ),
            DnsError::Runtime(_) => write!(f, "failed to start the resolver's runtime"),
            DnsError::InsideRuntime => {
                write!(f, "the DNS check cannot run inside an async runtime")
            }
        }
    }
}

impl std::error::Error for DnsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DnsError::Runtime(e) => Some(e),
            _ => None,
        }
    }
}

/// `dkimctl dns check`: looks up every selector of every domain
/// (`nameserver` alone, else `[engine] nameservers`, else the system's
/// resolvers: the report names who was asked), judges each record against
/// the private key under `root`, and reports SPF and DMARC. `timeout`
/// bounds each query. Print the result with [`DnsReport::print`] or
/// [`DnsReport::to_json`]; exit with [`DnsReport::exit_code`].
pub fn check(
    config: &Config,
    root: &Root,
    nameserver: Option<SocketAddr>,
    timeout: Duration,
) -> Result<DnsReport, DnsError> {
    let servers: Vec<SocketAddr> = match nameserver {
        Some(ns) => vec![ns],
        None => config.engine.nameservers.clone(),
    };
    let resolver = Live::with_servers(&servers, timeout)?;
    let mut report = check_with(config, root, &resolver);
    report.asked = Some(resolver.describe());
    Ok(report)
}

/// [`check`] with any resolver.
pub fn check_with(config: &Config, root: &Root, resolver: &dyn TxtResolver) -> DnsReport {
    let mut private = PrivateKeys::new(root);
    let mut report = DnsReport::default();
    let progress = crate::report::progress::Progress::new("checking DNS", config.domains.len());
    for (i, d) in config.domains.iter().enumerate() {
        progress.step(i, &d.name);
        for k in &d.keys {
            report
                .selectors
                .push(check_key(resolver, &mut private, d, k));
        }
        let spf = resolver.lookup_txt(&d.name);
        let dmarc = resolver.lookup_txt(&format!("_dmarc.{}", d.name));
        report.domains.push(judge_domain(&d.name, &spf, &dmarc));
    }
    progress.finish();
    report
}

/// Looks up and judges one key's record under `domain`.
pub fn check_key(
    resolver: &dyn TxtResolver,
    private: &mut PrivateKeys,
    domain: &Domain,
    key: &Key,
) -> SelectorFinding {
    let answer = resolver.lookup_txt(&keys::record_name(&key.selector, &domain.name));
    let state = private.get(key);
    judge_selector(domain, key, &answer, state)
}

/// Private keys loaded once per file (a `key_from` domain shares its
/// owner's files).
#[derive(Debug)]
pub struct PrivateKeys {
    root: Root,
    loaded: BTreeMap<PathBuf, PrivateState>,
}

impl PrivateKeys {
    /// Loads keys from under `root` on demand.
    pub fn new(root: &Root) -> PrivateKeys {
        PrivateKeys {
            root: root.clone(),
            loaded: BTreeMap::new(),
        }
    }

    /// The public key of `key`'s private key file, or why it could not be
    /// loaded. Retired keys are not loaded (their files are archived).
    pub fn get(&mut self, key: &Key) -> &PrivateState {
        let root = &self.root;
        self.loaded.entry(key.path.clone()).or_insert_with(|| {
            if !key.state.needs_private_key() {
                return Err("the key is retired".to_string());
            }
            keys::load_private_key(&root.join(&key.path))
                .map(|k| k.public)
                .map_err(|e| crate::report::chain(&e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    /// A dkim.toml with one RSA and one Ed25519 key, its keys written
    /// under a temporary root.
    fn setup() -> (tempfile::TempDir, Config, Vec<(String, String)>) {
        let dir = tempfile::tempdir().unwrap();
        let text = include_str!("../../tests/fixtures/configs/dual-shared-key.toml");
        let root = Root::new(dir.path());
        let source = Source::resolve(&root, None);
        let loaded = crate::config::parse(text, &source);
        let config = loaded
            .config
            .unwrap_or_else(|| panic!("{:?}", loaded.diags));
        let mut values = Vec::new();
        for k in &config.domains[0].keys {
            let pair = keys::generate(k.algorithm, 2048).unwrap();
            let path = root.join(&k.path);
            keys::tests::write_test_key(&path, &pair.private_pem, 0o600);
            values.push((
                k.selector.clone(),
                keys::record_value(k.algorithm, &pair.public, Default::default()),
            ));
        }
        (dir, config, values)
    }

    #[test]
    fn checks_every_selector_of_every_domain() {
        let (dir, config, values) = setup();
        let mut fixed = Fixed::new().record("example.com", &["v=spf1 mx -all"]);
        for (sel, value) in &values {
            let strings = keys::character_strings(value);
            fixed = fixed.record(&format!("{sel}._domainkey.example.com"), &strings);
        }
        // example.net publishes only the RSA key, as three records.
        let (_, rsa) = &values[0];
        let pieces = keys::character_strings(rsa);
        for p in &pieces {
            fixed = fixed.record("rsa1._domainkey.example.net", &[p]);
        }
        let report = check_with(&config, &Root::new(dir.path()), &fixed);
        let status: Vec<(&str, &str)> = report
            .selectors
            .iter()
            .map(|s| (s.name.as_str(), s.status.as_str()))
            .collect();
        assert_eq!(
            status,
            [
                ("rsa1._domainkey.example.com", "ok"),
                ("ed1._domainkey.example.com", "ok"),
                ("rsa1._domainkey.example.net", "several-records"),
                ("ed1._domainkey.example.net", "missing"),
            ]
        );
        assert_eq!(report.selectors[0].message, "rsa 2048");
        assert_eq!(report.domains[0].spf.status, PolicyStatus::Present);
        assert_eq!(report.domains[0].dmarc.status, PolicyStatus::Missing);
        assert_eq!(report.exit_code(), 1);
    }

    #[test]
    fn a_missing_private_key_is_not_ok() {
        let (dir, config, values) = setup();
        std::fs::remove_file(Root::new(dir.path()).join(&config.domains[0].keys[1].path)).unwrap();
        let mut fixed = Fixed::new();
        for (sel, value) in &values {
            fixed = fixed.record(
                &format!("{sel}._domainkey.example.com"),
                &keys::character_strings(value),
            );
        }
        let report = check_with(&config, &Root::new(dir.path()), &fixed);
        let ed = report.selector("ed1._domainkey.example.com").unwrap();
        assert_eq!(ed.status, Status::NoPrivateKey, "{}", ed.message);
        assert!(ed.message.contains("ed1.private"), "{}", ed.message);
    }

    #[test]
    fn a_failed_lookup_makes_the_check_incomplete() {
        let (dir, config, _) = setup();
        let fixed = Fixed::new().fail(
            "_dmarc.example.com",
            LookupErrorKind::ServerError("SERVFAIL".into()),
        );
        let report = check_with(&config, &Root::new(dir.path()), &fixed);
        assert_eq!(report.exit_code(), 2);
        let json = report.to_json();
        assert_eq!(json["domains"][0]["dmarc"]["status"], "dns-error");
        assert_eq!(json["exit"], 2);
    }
}
