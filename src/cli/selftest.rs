//! `dkimctl selftest`: the end-to-end check the ArchWiki page leaves to
//! "DKIM key checkers on the web". It connects to the live milter socket
//! the way the MTA does, has a probe message signed for every domain, and
//! verifies each signature against the published DNS record (or, with
//! `--local-keys`, against the records the private keys imply). Works for
//! both engines: it only speaks the milter protocol.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::config::model::{Config, KeyState};
use crate::dkim::DkimStatus;
use crate::dns::Fixed;
use crate::dns::resolver::Resolver;
use crate::host::Root;
use crate::milter::client::{MilterClient, apply_replies};

/// A failure that stops the self-test (exit 2).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How the self-test runs.
pub struct SelftestOptions {
    /// The socket to connect to (any notation); the configured one when
    /// `None`.
    pub socket: Option<String>,
    /// Verify against the records the local private keys imply instead of
    /// DNS.
    pub local_keys: bool,
    /// Name server to ask instead of the configured or system resolver.
    pub nameserver: Option<SocketAddr>,
}

/// Runs the self-test; returns 0 when every expected signature was made
/// and verifies, 1 otherwise.
pub fn selftest(
    config: &Config,
    root: &Root,
    opts: &SelftestOptions,
    out: &mut dyn Write,
) -> Result<i32, Error> {
    let socket = match &opts.socket {
        Some(s) => crate::config::validate::parse_socket(s)
            .map_err(|e| format!("invalid socket {s}: {e}"))?,
        None => config.service.socket.clone(),
    };
    let address = match &socket {
        crate::config::model::Socket::Unix(p) => format!("unix:{}", root.join(p).display()),
        other => other.to_string(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let resolver = if opts.local_keys {
        let mut table = Fixed::new();
        for (record, _) in crate::dns::records::records(config, root)? {
            table = table.record(&record.name, &crate::keys::character_strings(&record.value));
        }
        Resolver::fixed(table)
    } else {
        let ns: Vec<SocketAddr> = opts
            .nameserver
            .map_or_else(|| config.engine.nameservers.clone(), |n| vec![n]);
        // hickory's resolver is built inside the runtime it runs on.
        runtime.block_on(async { Resolver::live(&ns, config.engine.dns_timeout, false) })?
    };
    let resolver = Arc::new(resolver);
    let mut failures = 0;
    for domain in &config.domains {
        let expected: Vec<_> = domain
            .keys
            .iter()
            .filter(|k| k.state == KeyState::Active)
            .collect();
        if expected.is_empty() {
            continue;
        }
        let from = format!("<dkimctl-selftest@{}>", domain.name);
        let message_id = format!("<selftest.{}@{}>", std::process::id(), domain.name);
        let headers: Vec<(&[u8], Vec<u8>)> = vec![
            (b"From", format!(" {from}").into_bytes()),
            (b"To", format!(" <postmaster@{}>", domain.name).into_bytes()),
            (b"Subject", b" dkimctl selftest".to_vec()),
            (b"Date", b" Thu, 01 Jan 2026 00:00:00 +0000".to_vec()),
            (b"Message-ID", format!(" {message_id}").into_bytes()),
        ];
        let header_refs: Vec<(&[u8], &[u8])> =
            headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let body = b"This message was signed by the milter under test.\r\n";
        let signed = runtime.block_on(async {
            let mut client =
                tokio::time::timeout(Duration::from_secs(10), MilterClient::connect(&address))
                    .await
                    .map_err(|_| format!("timed out connecting to {address}"))?
                    .map_err(|e| format!("cannot connect to the milter at {address}: {e}"))?;
            client
                .negotiate()
                .await
                .map_err(|e| format!("option negotiation with {address} failed: {e}"))?;
            // Authenticated, as a submission client is: the milter signs.
            let macros = [
                ("{auth_authen}", "dkimctl-selftest"),
                ("{auth_type}", "PLAIN"),
                ("i", "SELFTEST"),
            ];
            let replies = client
                .send_message(&macros, IpAddr::from([127, 0, 0, 1]), &header_refs, body)
                .await
                .map_err(|e| format!("milter conversation failed: {e}"))?;
            let leading = client.leading_space();
            let _ = client.quit().await;
            Ok::<_, Error>(apply_replies(&header_refs, body, &replies, leading))
        })?;
        let results = runtime.block_on(crate::dkim::verify(
            &resolver,
            &signed,
            crate::engine::unix_now(),
        ));
        for key in &expected {
            let found = results.iter().find(|r| {
                r.domain.as_deref() == Some(domain.name.as_str())
                    && r.selector.as_deref() == Some(key.selector.as_str())
            });
            match found {
                Some(r) if r.status == DkimStatus::Pass => {
                    writeln!(
                        out,
                        "ok       {}._domainkey.{} ({}) signed and verified",
                        key.selector, domain.name, key.algorithm
                    )?;
                }
                Some(r) => {
                    failures += 1;
                    writeln!(
                        out,
                        "FAIL     {}._domainkey.{} ({}): {r}",
                        key.selector, domain.name, key.algorithm
                    )?;
                }
                None => {
                    failures += 1;
                    writeln!(
                        out,
                        "FAIL     {}._domainkey.{} ({}): the milter added no such signature",
                        key.selector, domain.name, key.algorithm
                    )?;
                }
            }
        }
    }
    if failures == 0 {
        writeln!(out, "selftest passed: every domain is signed and verifies")?;
        Ok(0)
    } else {
        writeln!(
            out,
            "selftest failed: {failures} signature(s) missing or not verifying"
        )?;
        Ok(1)
    }
}
