//! [`Live`]: TXT lookups against real name servers with hickory-resolver.
//!
//! Either the system's resolvers (`/etc/resolv.conf` of the host, not of
//! `--root`: the question is what the world sees) or exactly one server
//! given as `IP:PORT` (`--nameserver`, e.g. a test server on loopback or
//! the zone's primary to see a record before it has propagated).
//!
//! Each [`Live`] has its own resolver and no response cache, so a second
//! run (say `rotate --continue` right after publishing) never sees a stale
//! negative answer from the first. Names are queried fully qualified, so
//! no search domain is ever appended.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use super::DnsError;
use super::lookup::{LookupError, LookupErrorKind, TxtAnswer, TxtRecord, TxtResolver};

/// Tries per query; with UDP+TCP configured hickory may also fall back to
/// TCP within one try.
const ATTEMPTS: usize = 2;

/// A resolver that asks real name servers.
///
/// It owns a single-threaded tokio runtime and blocks on each lookup, so
/// the synchronous commands can use it; it refuses to be built inside an
/// async context, where blocking would panic.
pub struct Live {
    runtime: tokio::runtime::Runtime,
    resolver: TokioResolver,
    timeout: Duration,
    /// Set when a query got no answer at all: the server is down or
    /// unreachable, and every further query would wait out the same
    /// timeouts. Later lookups fail at once with this reason.
    unreachable: Cell<Option<String>>,
}

impl Live {
    /// A resolver for `nameserver` alone (UDP and TCP on its port), or for
    /// the system's resolvers when `None`. `timeout` bounds each query try.
    pub fn new(nameserver: Option<SocketAddr>, timeout: Duration) -> Result<Live, DnsError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(DnsError::InsideRuntime);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(DnsError::Runtime)?;
        let provider = TokioRuntimeProvider::default();
        let mut builder = match nameserver {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_name_servers(vec![server]);
                TokioResolver::builder_with_config(config, provider)
            }
            None => TokioResolver::builder(provider)
                .map_err(|e| DnsError::SystemConfig(e.to_string()))?,
        };
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = ATTEMPTS;
        // No cache: every run asks afresh (see the module docs).
        opts.cache_size = 0;
        opts.ndots = 0;
        let resolver = builder
            .build()
            .map_err(|e| DnsError::SystemConfig(e.to_string()))?;
        Ok(Live {
            runtime,
            resolver,
            timeout,
            unreachable: Cell::new(None),
        })
    }
}

impl Live {
    /// The error for a failed query; one that got no answer at all marks
    /// the server unreachable for the rest of the run.
    fn failed(&self, name: &str, kind: LookupErrorKind) -> LookupError {
        let error = LookupError {
            name: name.to_string(),
            kind,
        };
        if matches!(
            error.kind,
            LookupErrorKind::Timeout | LookupErrorKind::Transport(_)
        ) {
            self.unreachable.set(Some(error.to_string()));
        }
        error
    }
}

impl TxtResolver for Live {
    fn lookup_txt(&self, name: &str) -> Result<TxtAnswer, LookupError> {
        let err = |kind| LookupError {
            name: name.to_string(),
            kind,
        };
        let fqdn = Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
            .map_err(|e| err(LookupErrorKind::Transport(format!("invalid name: {e}"))))?;
        if let Some(why) = self.unreachable.take() {
            self.unreachable.set(Some(why.clone()));
            return Err(err(LookupErrorKind::Transport(format!(
                "not tried: an earlier query got no answer ({why})"
            ))));
        }
        // hickory enforces `timeout` per try; this outer bound only guards
        // against a resolver that never gives up.
        let bound = self.timeout * (ATTEMPTS as u32 + 1) + Duration::from_secs(1);
        let result = self.runtime.block_on(async {
            tokio::time::timeout(bound, self.resolver.lookup(fqdn, RecordType::TXT)).await
        });
        let lookup = match result {
            Ok(Ok(lookup)) => lookup,
            Ok(Err(e)) => return classify(e).map_err(|kind| self.failed(name, kind)),
            Err(_elapsed) => return Err(self.failed(name, LookupErrorKind::Timeout)),
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
            Ok(TxtAnswer::NoData)
        } else {
            Ok(TxtAnswer::Records(records))
        }
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
