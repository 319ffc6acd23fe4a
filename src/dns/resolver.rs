//! [`Resolver`]: the one DNS resolver behind every question dkimctl asks:
//! the verifier's key lookups (engine and `dkimctl verify`), `dns check`,
//! `rotate` and `selftest`.
//!
//! - **Live**: hickory-resolver against the system's resolvers
//!   (`/etc/resolv.conf` of the host, not of `--root`: the question is what
//!   the world sees) or the given servers (`IP:PORT`: `[engine]
//!   nameservers`, `--nameserver`, a test server on loopback). Names are
//!   queried fully qualified, so no search domain is ever appended.
//! - **Fixed**: answers from a table ([`Fixed`]); nothing leaves the
//!   process (tests, `selftest --local-keys`).
//!
//! With `cached`, answers are kept until their TTL runs out (negative
//! answers for [`NEGATIVE_TTL`]), in a table of at most
//! [`CACHE_CAPACITY`] names; failures are never kept. The engine uses a
//! cached resolver; the commands use uncached ones, so a second run (say
//! `rotate --continue` right after publishing) never sees a stale negative
//! answer.
//!
//! Answers keep every TXT record and each record's character-strings
//! apart ([`TxtAnswer`]): a key split into several records is a broken
//! key, not a long one.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use super::DnsError;
use super::lookup::{Fixed, LookupError, LookupErrorKind, TxtAnswer, TxtRecord, TxtResolver};

/// Tries per query; with UDP+TCP configured hickory may also fall back to
/// TCP within one try.
const ATTEMPTS: usize = 2;

/// Most names kept by a cached resolver.
pub const CACHE_CAPACITY: usize = 10_000;

/// Largest answer a cached resolver keeps, in bytes of TXT data: a DKIM
/// key record is at most about 1.4 KB (RSA-8192). Larger answers are
/// used, not kept, so the cache stays within about
/// `CACHE_CAPACITY * CACHE_ENTRY_MAX` bytes whatever senders' name servers
/// return (issue 15, item 3: nothing per sender grows without bound).
pub const CACHE_ENTRY_MAX: usize = 4096;

/// How long "no such record" is kept by a cached resolver.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(60);

/// Where answers come from.
enum Source {
    Live(Box<TokioResolver>),
    Fixed(Fixed),
}

/// The resolver (see the module docs).
pub struct Resolver {
    source: Source,
    /// Answers until they expire, when caching.
    cache: Option<Mutex<HashMap<String, (TxtAnswer, Instant)>>>,
    /// The servers asked (empty: the system's), for [`Resolver::matches`]
    /// and messages.
    nameservers: Vec<SocketAddr>,
    /// Per-query timeout.
    timeout: Duration,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("live", &matches!(self.source, Source::Live(_)))
            .field("nameservers", &self.nameservers)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver asking `nameservers` (UDP and TCP on each port), or the
    /// system's resolvers when empty. `timeout` bounds each try.
    pub fn live(
        nameservers: &[SocketAddr],
        timeout: Duration,
        cached: bool,
    ) -> Result<Resolver, DnsError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| DnsError::SystemConfig(e.to_string()))?
        } else {
            let servers = nameservers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
        };
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = ATTEMPTS;
        // Our own cache (below) decides what is kept.
        opts.cache_size = 0;
        opts.ndots = 0;
        let resolver = builder
            .build()
            .map_err(|e| DnsError::SystemConfig(e.to_string()))?;
        Ok(Resolver {
            source: Source::Live(Box::new(resolver)),
            cache: cached.then(|| Mutex::new(HashMap::new())),
            nameservers: nameservers.to_vec(),
            timeout,
        })
    }

    /// A resolver answering from `table` only.
    pub fn fixed(table: Fixed) -> Resolver {
        Resolver {
            source: Source::Fixed(table),
            cache: None,
            nameservers: Vec::new(),
            timeout: Duration::from_secs(1),
        }
    }

    /// True when this resolver was built for exactly these settings (so a
    /// reload can keep it, with its warm cache).
    pub fn matches(&self, nameservers: &[SocketAddr], timeout: Duration) -> bool {
        match self.source {
            Source::Live(_) => self.nameservers == nameservers && self.timeout == timeout,
            Source::Fixed(_) => true,
        }
    }

    /// The servers asked (empty: the system's).
    pub fn nameservers(&self) -> &[SocketAddr] {
        &self.nameservers
    }

    /// The longest a lookup can take (every try timing out), plus a
    /// second.
    pub fn worst_case(&self) -> Duration {
        self.timeout * (ATTEMPTS as u32 + 1) + Duration::from_secs(1)
    }

    /// Looks up the TXT RRset at `name` (fully qualified, no final dot
    /// needed).
    pub async fn txt(&self, name: &str) -> Result<TxtAnswer, LookupError> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(cache) = &self.cache {
            let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some((answer, until)) if *until > Instant::now() => return Ok(answer.clone()),
                Some(_) => {
                    map.remove(&key);
                }
                None => {}
            }
        }
        let (answer, until) = match &self.source {
            Source::Fixed(table) => return table.lookup_txt(&key),
            Source::Live(resolver) => self.live_lookup(resolver, &key).await?,
        };
        if let Some(cache) = &self.cache
            && cacheable(&answer)
        {
            let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= CACHE_CAPACITY {
                let now = Instant::now();
                map.retain(|_, (_, until)| *until > now);
                if map.len() >= CACHE_CAPACITY {
                    map.clear();
                }
            }
            map.insert(key, (answer.clone(), until));
        }
        Ok(answer)
    }

    async fn live_lookup(
        &self,
        resolver: &TokioResolver,
        name: &str,
    ) -> Result<(TxtAnswer, Instant), LookupError> {
        let err = |kind| LookupError {
            name: name.to_string(),
            kind,
        };
        let fqdn = Name::from_ascii(format!("{name}."))
            .map_err(|e| err(LookupErrorKind::Transport(format!("invalid name: {e}"))))?;
        // hickory enforces `timeout` per try; this outer bound only guards
        // against a resolver that never gives up.
        let lookup =
            match tokio::time::timeout(self.worst_case(), resolver.lookup(fqdn, RecordType::TXT))
                .await
            {
                Ok(Ok(lookup)) => lookup,
                Ok(Err(e)) => {
                    let answer = classify(e).map_err(err)?;
                    return Ok((answer, Instant::now() + NEGATIVE_TTL));
                }
                Err(_elapsed) => return Err(err(LookupErrorKind::Timeout)),
            };
        // Only TXT data counts: a CNAME in the answer leads to the record,
        // it is not one.
        let records: Vec<TxtRecord> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(TxtRecord {
                    strings: txt.txt_data.iter().map(|s| s.to_vec()).collect(),
                }),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            Ok((TxtAnswer::NoData, Instant::now() + NEGATIVE_TTL))
        } else {
            Ok((TxtAnswer::Records(records), lookup.valid_until()))
        }
    }
}

impl Resolver {
    /// Records of type `rtype` at exactly `name` (no cache): `Ok(None)`
    /// when the name has none (NXDOMAIN or no data).
    async fn rdata(
        &self,
        name: &str,
        rtype: RecordType,
    ) -> Result<Option<Vec<RData>>, LookupError> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let err = |kind| LookupError {
            name: name.clone(),
            kind,
        };
        let Source::Live(resolver) = &self.source else {
            return Err(err(LookupErrorKind::Transport(format!(
                "a fixed table answers TXT queries only, not {rtype}"
            ))));
        };
        let fqdn = Name::from_ascii(format!("{name}."))
            .map_err(|e| err(LookupErrorKind::Transport(format!("invalid name: {e}"))))?;
        let lookup =
            match tokio::time::timeout(self.worst_case(), resolver.lookup(fqdn.clone(), rtype))
                .await
            {
                Ok(Ok(lookup)) => lookup,
                Ok(Err(e)) => {
                    classify(e).map_err(err)?;
                    return Ok(None);
                }
                Err(_elapsed) => return Err(err(LookupErrorKind::Timeout)),
            };
        let found: Vec<RData> = lookup
            .answers()
            .iter()
            .filter(|r| r.record_type() == rtype && r.name == fqdn)
            .map(|r| r.data.clone())
            .collect();
        Ok((!found.is_empty()).then_some(found))
    }

    /// The SOA MNAME (the primary server's name) when `name` is the apex
    /// of a zone; `None` when it is not.
    pub async fn soa_mname(&self, name: &str) -> Result<Option<String>, LookupError> {
        Ok(self.rdata(name, RecordType::SOA).await?.and_then(|list| {
            list.into_iter().find_map(|d| match d {
                RData::SOA(soa) => Some(soa.mname.to_ascii().trim_end_matches('.').to_string()),
                _ => None,
            })
        }))
    }

    /// The name servers (NS) of a zone.
    pub async fn name_servers(&self, zone: &str) -> Result<Vec<String>, LookupError> {
        let mut names: Vec<String> = self
            .rdata(zone, RecordType::NS)
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| match d {
                RData::NS(ns) => Some(ns.0.to_ascii().trim_end_matches('.').to_string()),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The IPv4 and IPv6 addresses of a host name.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        let mut out = Vec::new();
        for rtype in [RecordType::A, RecordType::AAAA] {
            for d in self.rdata(host, rtype).await?.unwrap_or_default() {
                match d {
                    RData::A(a) => out.push(IpAddr::V4(a.0)),
                    RData::AAAA(a) => out.push(IpAddr::V6(a.0)),
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

/// True when an answer is small enough to keep ([`CACHE_ENTRY_MAX`]).
fn cacheable(answer: &TxtAnswer) -> bool {
    match answer {
        TxtAnswer::Records(records) => {
            records
                .iter()
                .flat_map(|r| &r.strings)
                .map(Vec::len)
                .sum::<usize>()
                <= CACHE_ENTRY_MAX
        }
        TxtAnswer::NxDomain | TxtAnswer::NoData => true,
    }
}

/// Sorts a hickory error into "the name has no TXT record" (an answer) and
/// "the question got no answer" (an error).
fn classify(e: NetError) -> Result<TxtAnswer, LookupErrorKind> {
    if e.is_nx_domain() {
        return Ok(TxtAnswer::NxDomain);
    }
    if e.is_no_records_found() {
        return Ok(TxtAnswer::NoData);
    }
    Err(match e {
        NetError::Timeout => LookupErrorKind::Timeout,
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => LookupErrorKind::Timeout,
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => {
            LookupErrorKind::ServerError(code.to_string())
        }
        other => LookupErrorKind::Transport(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_of_key_record_size_are_cached() {
        let record = |n: usize| TxtRecord {
            strings: vec![vec![b'a'; 255]; n],
        };
        assert!(cacheable(&TxtAnswer::NxDomain));
        assert!(cacheable(&TxtAnswer::Records(vec![record(6)])));
        assert!(!cacheable(&TxtAnswer::Records(vec![record(17)])));
        assert!(!cacheable(&TxtAnswer::Records(vec![
            record(10),
            record(10)
        ])));
    }
}
