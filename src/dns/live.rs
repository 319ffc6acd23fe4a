//! [`Live`]: the blocking face of [`super::resolver::Resolver`] for the
//! synchronous commands (`dns check`, `rotate`, `audit --dns`): the
//! system's resolvers or exactly one server given as `IP:PORT`, no cache,
//! a runtime of its own.
//!
//! A server that does not answer at all is remembered for the rest of the
//! run: every later query would wait out the same timeouts, so they fail
//! at once with that reason.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::Duration;

use super::DnsError;
use super::lookup::{LookupError, LookupErrorKind, TxtAnswer, TxtResolver};
use super::resolver::Resolver;

/// A blocking resolver that asks real name servers.
pub struct Live {
    runtime: tokio::runtime::Runtime,
    resolver: Resolver,
    /// Set when a query got no answer at all.
    unreachable: Cell<Option<String>>,
}

impl Live {
    /// A resolver for `nameserver` alone (UDP and TCP on its port), or for
    /// the system's resolvers when `None`. `timeout` bounds each query try.
    /// It refuses to be built inside an async context, where blocking
    /// would panic.
    pub fn new(nameserver: Option<SocketAddr>, timeout: Duration) -> Result<Live, DnsError> {
        let servers: Vec<SocketAddr> = nameserver.into_iter().collect();
        Live::with_servers(&servers, timeout)
    }

    /// A resolver for `servers` (each on UDP and TCP), or the system's
    /// resolvers when empty.
    pub fn with_servers(servers: &[SocketAddr], timeout: Duration) -> Result<Live, DnsError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(DnsError::InsideRuntime);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(DnsError::Runtime)?;
        // hickory's resolver is built inside the runtime it will run on.
        let resolver = runtime.block_on(async { Resolver::live(servers, timeout, false) })?;
        Ok(Live {
            runtime,
            resolver,
            unreachable: Cell::new(None),
        })
    }

    /// The servers asked (empty: the system's).
    pub fn nameservers(&self) -> &[SocketAddr] {
        self.resolver.nameservers()
    }

    /// Who is asked, for reports: `127.0.0.1:5353`, or the system's
    /// resolvers.
    pub fn describe(&self) -> String {
        describe(self.nameservers())
    }
}

/// Who `servers` are, for reports (empty: the system's resolvers).
pub fn describe(servers: &[SocketAddr]) -> String {
    if servers.is_empty() {
        return "the system's resolvers (/etc/resolv.conf)".to_string();
    }
    servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Live {
    /// Runs one lookup to completion; once a server did not answer
    /// (time-out or transport error), later lookups fail at once, naming
    /// that first failure.
    fn blocking<T>(
        &self,
        name: &str,
        f: impl std::future::Future<Output = Result<T, LookupError>>,
    ) -> Result<T, LookupError> {
        if let Some(why) = self.unreachable.take() {
            self.unreachable.set(Some(why.clone()));
            return Err(LookupError {
                name: name.to_string(),
                kind: LookupErrorKind::Transport(format!(
                    "not tried: an earlier query got no answer ({why})"
                )),
            });
        }
        let result = self.runtime.block_on(f);
        if let Err(e) = &result
            && matches!(
                e.kind,
                LookupErrorKind::Timeout | LookupErrorKind::Transport(_)
            )
        {
            self.unreachable.set(Some(e.to_string()));
        }
        result
    }

    /// The SOA MNAME when `name` is a zone apex (see
    /// [`Resolver::soa_mname`]).
    pub fn soa_mname(&self, name: &str) -> Result<Option<String>, LookupError> {
        self.blocking(name, self.resolver.soa_mname(name))
    }

    /// The name servers of a zone.
    pub fn name_servers(&self, zone: &str) -> Result<Vec<String>, LookupError> {
        self.blocking(zone, self.resolver.name_servers(zone))
    }

    /// The addresses of a host.
    pub fn addresses(&self, host: &str) -> Result<Vec<std::net::IpAddr>, LookupError> {
        self.blocking(host, self.resolver.addresses(host))
    }
}

impl TxtResolver for Live {
    fn lookup_txt(&self, name: &str) -> Result<TxtAnswer, LookupError> {
        self.blocking(name, self.resolver.txt(name))
    }
}
