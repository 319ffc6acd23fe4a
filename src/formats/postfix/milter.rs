//! Milter lists and milter addresses, and the one rule that says when two
//! addresses reach the same milter.
//!
//! A list (`smtpd_milters`, `non_smtpd_milters`, `-o smtpd_milters=`) holds
//! entries separated by commas and/or whitespace; an entry is an address,
//! a `{ address, name = value, ... }` group (per-milter settings, Postfix
//! 3.0), or a `$name` / `${name}` / `$(name)` reference to another main.cf
//! parameter.
//!
//! # When two addresses are the same milter
//!
//! [`endpoint`] turns an address into what it reaches from a Postfix
//! service ([`View`]: the queue directory and whether the service runs
//! chrooted), and [`Endpoint::same`] compares two of them:
//!
//! - `unix:PATH`, `local:PATH` and a bare `PATH` are unix sockets. An
//!   absolute path is a host path, or, in a chrooted service, a path under
//!   the queue directory. A relative path is always taken from the queue
//!   directory, where every Postfix daemon runs (so `unix:opendkim/x.sock`
//!   is `/var/spool/postfix/opendkim/x.sock` chrooted or not).
//! - `inet:HOST:PORT` (Postfix's notation) and `inet:PORT@HOST`
//!   (OpenDKIM's) are TCP sockets; `inet:PORT` alone listens everywhere.
//!   Hosts compare as addresses: `localhost` is both 127.0.0.1 and ::1,
//!   `[::1]` is `::1`, names compare without case, and a milter listening
//!   on every address (`0.0.0.0`, `::`, none) is reached at any host.
//!
//! audit uses this rule to tell whether Postfix reaches the milter, plan
//! to tell whether the milter is already in a list (spelled some other
//! way), so the two can never disagree.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::master_cf::Chroot;

/// The marker comment dkimctl keeps above the milter lists it manages, up
/// to the address: `# dkimctl: DKIM milter is ADDRESS`. It names our
/// entry, so that when the socket moves the next merge replaces it instead
/// of leaving a dead milter behind.
pub const MARKER_PREFIX: &str = "# dkimctl: DKIM milter is ";

/// Splits a milter list into its entries: separated by commas and/or
/// whitespace, with `{ ... }` groups and `${name}` references kept whole.
pub fn milter_entries(v: &str) -> Vec<String> {
    let b = v.as_bytes();
    let is_sep = |c: u8| c == b',' || c.is_ascii_whitespace();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if is_sep(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut depth = 0usize;
        while i < b.len() {
            let c = b[i];
            if c == b'{' {
                depth += 1;
            } else if c == b'}' {
                depth = depth.saturating_sub(1);
                if depth == 0 && b[start] == b'{' {
                    i += 1;
                    break;
                }
            } else if depth == 0 && is_sep(c) {
                break;
            }
            i += 1;
        }
        if let Some(entry) = v.get(start..i) {
            out.push(entry.trim().to_string());
        }
    }
    out
}

/// The address of a list entry and its per-milter settings (`{ address,
/// name = value, ... }`; a plain entry has none).
pub fn entry_parts(entry: &str) -> (String, Vec<(String, String)>) {
    let Some(inner) = entry.strip_prefix('{') else {
        return (entry.to_string(), Vec::new());
    };
    let inner = inner.strip_suffix('}').unwrap_or(inner);
    let mut parts = inner.split(',').map(str::trim).filter(|p| !p.is_empty());
    let address = parts.next().unwrap_or_default().to_string();
    let settings = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    (address, settings)
}

/// The parameter an entry refers to (`$name`, `${name}`, `$(name)`), if it
/// is a reference.
pub fn entry_reference(entry: &str) -> Option<&str> {
    let rest = entry.strip_prefix('$')?;
    let name = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')))
        .unwrap_or(rest);
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(name)
}

/// Where a Postfix service stands when it resolves a milter address.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// Postfix's queue directory (the chroot, and every daemon's working
    /// directory).
    pub queue_directory: &'a Path,
    /// Whether the service runs chrooted. [`Chroot::Default`] (master.cf
    /// says `-`) is taken as not chrooted; callers that know better
    /// resolve it first.
    pub chroot: Chroot,
}

/// What a milter address reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket at this host path.
    Unix(PathBuf),
    /// A TCP socket; `host` as written (compared by [`hosts_match`]).
    Inet {
        /// Host name or address; empty for "every address".
        host: String,
        /// Port.
        port: u16,
    },
}

impl Endpoint {
    /// True when both reach the same milter.
    pub fn same(&self, other: &Endpoint) -> bool {
        match (self, other) {
            (Endpoint::Unix(a), Endpoint::Unix(b)) => a == b,
            (Endpoint::Inet { host: h1, port: p1 }, Endpoint::Inet { host: h2, port: p2 }) => {
                p1 == p2 && hosts_match(h1, h2)
            }
            _ => false,
        }
    }
}

/// What `addr` (Postfix's or OpenDKIM's notation) reaches from `view`;
/// `None` for something that is not a milter address.
pub fn endpoint(addr: &str, view: &View<'_>) -> Option<Endpoint> {
    let addr = addr.trim();
    let (scheme, rest) = match addr.split_once(':') {
        Some((s, r)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            (s.to_ascii_lowercase(), r)
        }
        _ => (String::new(), addr),
    };
    match scheme.as_str() {
        "" | "unix" | "local" => {
            if rest.is_empty() {
                return None;
            }
            let p = Path::new(rest);
            let host_path = if p.is_absolute() {
                match view.chroot {
                    Chroot::Yes => view.queue_directory.join(p.strip_prefix("/").unwrap_or(p)),
                    Chroot::No | Chroot::Default => p.to_path_buf(),
                }
            } else {
                view.queue_directory.join(p)
            };
            Some(Endpoint::Unix(normalize(&host_path)))
        }
        "inet" | "inet6" => {
            // OpenDKIM: PORT@HOST, PORT@[HOST] or PORT; Postfix: HOST:PORT
            // or [HOST]:PORT.
            if let Some((port, host)) = rest.split_once('@') {
                let port = port.parse().ok()?;
                Some(Endpoint::Inet {
                    host: unbracket(host).to_string(),
                    port,
                })
            } else if let Ok(port) = rest.parse() {
                Some(Endpoint::Inet {
                    host: String::new(),
                    port,
                })
            } else {
                let (host, port) = rest.rsplit_once(':')?;
                Some(Endpoint::Inet {
                    host: unbracket(host).to_string(),
                    port: port.parse().ok()?,
                })
            }
        }
        _ => None,
    }
}

fn unbracket(h: &str) -> &str {
    h.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h)
}

/// `.` and `..` resolved lexically (a socket path is compared, not
/// opened).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// True when a client connecting to `a` reaches a milter listening on `b`
/// (or the other way round): the same address, `localhost` against either
/// loopback address, or a wildcard listener.
pub fn hosts_match(a: &str, b: &str) -> bool {
    let wildcard = |h: &str| {
        h.is_empty() || h == "*" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
    };
    if wildcard(a) || wildcard(b) {
        return true;
    }
    let addrs = |h: &str| -> Vec<IpAddr> {
        if h.eq_ignore_ascii_case("localhost") {
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
        } else {
            h.parse::<IpAddr>().map(|ip| vec![ip]).unwrap_or_default()
        }
    };
    let (aa, ba) = (addrs(a), addrs(b));
    if aa.is_empty() || ba.is_empty() {
        return a.eq_ignore_ascii_case(b);
    }
    aa.iter().any(|x| ba.contains(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parsing() {
        assert_eq!(
            milter_entries("a, b c,,{ inet:x:1, y=2 } ${smtpd_milters},$(x)"),
            vec![
                "a",
                "b",
                "c",
                "{ inet:x:1, y=2 }",
                "${smtpd_milters}",
                "$(x)"
            ]
        );
        let (addr, settings) = entry_parts("{ inet:localhost:8891, default_action = accept }");
        assert_eq!(addr, "inet:localhost:8891");
        assert_eq!(settings, [("default_action".into(), "accept".into())]);
        assert_eq!(entry_reference("$dkim_milter"), Some("dkim_milter"));
        assert_eq!(entry_reference("${smtpd_milters}"), Some("smtpd_milters"));
        assert_eq!(entry_reference("$(x)"), Some("x"));
        assert_eq!(entry_reference("inet:x:1"), None);
    }

    #[test]
    fn endpoints_compare_by_meaning() {
        let q = Path::new("/var/spool/postfix");
        let chrooted = View {
            queue_directory: q,
            chroot: Chroot::Yes,
        };
        let plain = View {
            queue_directory: q,
            chroot: Chroot::No,
        };
        let same = |a: &str, b: &str, v: &View<'_>| {
            endpoint(a, v)
                .zip(endpoint(b, v))
                .is_some_and(|(x, y)| x.same(&y))
        };
        for (a, b) in [
            ("inet:localhost:8891", "inet:127.0.0.1:8891"),
            ("inet:localhost:8891", "inet:8891@localhost"),
            ("inet:127.0.0.1:8891", "inet:8891@127.0.0.1"),
            ("inet:[::1]:8891", "inet:8891@localhost"),
            ("inet:127.0.0.1:8891", "inet:8891"),
            ("INET:LOCALHOST:8891", "inet:localhost:8891"),
            ("unix:/x.sock", "/x.sock"),
            ("local:/x.sock", "unix:/x.sock"),
            (
                "unix:opendkim/o.sock",
                "unix:/var/spool/postfix/opendkim/o.sock",
            ),
        ] {
            assert!(same(a, b, &plain), "{a} = {b}");
        }
        assert!(same(
            "unix:/opendkim/o.sock",
            "local:opendkim/o.sock",
            &chrooted
        ));
        assert!(!same(
            "unix:/opendkim/o.sock",
            "local:opendkim/o.sock",
            &plain
        ));
        for (a, b) in [
            ("inet:127.0.0.1:8891", "inet:[::1]:8891"),
            ("inet:localhost:8891", "inet:localhost:8892"),
            ("inet:localhost:8891", "unix:/x"),
            ("inet:mail.example:8891", "inet:127.0.0.1:8891"),
        ] {
            assert!(!same(a, b, &plain), "{a} != {b}");
        }
        assert_eq!(endpoint("tcp:x", &plain), None);
        assert_eq!(endpoint("inet:nope", &plain), None);
    }
}
