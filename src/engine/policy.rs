//! Policy: whether a message is signed, verified or let through, and with
//! which domain's keys.
//!
//! - [`direction`]: sign when the service signs and the client is trusted
//!   (an internal host, an authenticated sender, or an MTA daemon named in
//!   `engine.sign_daemon_names`); else verify when the service verifies and
//!   the client is not in `trusted.external_ignore`; else nothing.
//! - [`from_domain`]: the domain of the From header's address, parsed from
//!   raw bytes (RFC 5322 §3.4, with comments, quoted strings and groups).
//! - [`signing_domain`]: the configured domain for it: an exact match
//!   first, then the nearest parent domain that has `subdomains = true`.
//!
//! Pure functions over the [`Config`]; the session applies the
//! `on_failure` actions.

use std::net::IpAddr;

use crate::config::Config;
use crate::config::model::Domain;

/// What the engine does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sign it (outgoing mail from a trusted client).
    Sign,
    /// Verify its signatures (incoming mail).
    Verify,
    /// Neither: pass it on untouched.
    Pass,
}

/// What the session knows about the client when a message starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// The client address from `SMFIC_CONNECT`, if it was an IP.
    pub ip: Option<IpAddr>,
    /// The client's name from `SMFIC_CONNECT` ([`client_name`]).
    pub hostname: Option<Vec<u8>>,
    /// `{daemon_name}`: the MTA service that received the message.
    pub daemon_name: Option<Vec<u8>>,
    /// `{auth_authen}`: the SASL login name, if the sender authenticated.
    pub auth_authen: Option<Vec<u8>>,
}

impl Client {
    /// True when the client is trusted to have its mail signed, with the
    /// reason (for the log).
    pub fn trusted(&self, config: &Config) -> Option<&'static str> {
        if self.auth_authen.as_ref().is_some_and(|a| !a.is_empty()) {
            return Some("authenticated");
        }
        if self.ip.is_some_and(|ip| config.trusted.is_internal(ip)) {
            return Some("internal host");
        }
        if self
            .hostname
            .as_deref()
            .is_some_and(|n| config.trusted.internal_hosts.iter().any(|h| h.names(n)))
        {
            return Some("internal host name");
        }
        if let Some(name) = &self.daemon_name
            && config
                .engine
                .sign_daemon_names
                .iter()
                .any(|n| n.as_bytes() == name.as_slice())
        {
            return Some("daemon name");
        }
        None
    }
}

/// The client name of an `SMFIC_CONNECT`, lower case and without a final
/// dot; `None` for what MTAs send when the client has no (confirmed)
/// name: `unknown` (Postfix), a bracketed address (Sendmail), an empty
/// name.
pub fn client_name(hostname: &[u8]) -> Option<Vec<u8>> {
    let name = hostname.strip_suffix(b".").unwrap_or(hostname);
    let placeholder =
        name.is_empty() || name.starts_with(b"[") || name.eq_ignore_ascii_case(b"unknown");
    (!placeholder).then(|| name.to_ascii_lowercase())
}

/// Decides whether a message from `client` is signed, verified or passed.
pub fn direction(config: &Config, client: &Client) -> Direction {
    let mode = config.service.mode;
    if mode.signs() && client.trusted(config).is_some() {
        return Direction::Sign;
    }
    if mode.verifies() {
        let ignored = config.trusted.external_ignore.iter().any(|p| {
            client.ip.is_some_and(|ip| p.contains(ip))
                || client.hostname.as_deref().is_some_and(|n| p.names(n))
        });
        if !ignored {
            return Direction::Verify;
        }
    }
    Direction::Pass
}

/// Why no signing domain could be taken from the From header(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromError {
    /// The message has no From header.
    Missing,
    /// The message has several From headers (RFC 6376 §8.15: signing one
    /// of them would let the other be shown to the reader).
    Several(usize),
    /// The From header has no address with a usable domain.
    NoAddress,
    /// The From header names several authors in different domains.
    SeveralDomains,
}

impl std::fmt::Display for FromError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FromError::Missing => f.write_str("no From header"),
            FromError::Several(n) => write!(f, "{n} From headers"),
            FromError::NoAddress => f.write_str("no address in the From header"),
            FromError::SeveralDomains => f.write_str("From addresses in several domains"),
        }
    }
}

/// The lower-case domain of the address(es) in a From header value.
///
/// The value is raw bytes as the MTA sent it. Display names, comments and
/// quoted strings are skipped; the address is the `<angle-addr>` when
/// there is one, else the bare addr-spec. A mailbox-list with several
/// authors is accepted when they share one domain. Domain literals
/// (`[192.0.2.1]`) have no DKIM key and give [`FromError::NoAddress`].
/// A-labels (`xn--...`) are kept as they are; a UTF-8 U-label domain is
/// turned into its A-label form.
pub fn from_domain(value: &[u8]) -> Result<String, FromError> {
    let mut domains: Vec<String> = Vec::new();
    for mailbox in split_top_level(value, b',') {
        // A group ("name: a@x, b@y;") puts its name before a top-level
        // colon; whatever follows the colon is a mailbox.
        let mailbox = match find_top_level(mailbox, b':') {
            Some(colon) if !contains_top_level(mailbox.get(..colon).unwrap_or_default(), b'<') => {
                mailbox.get(colon + 1..).unwrap_or_default()
            }
            _ => mailbox,
        };
        let addr = match angle_addr(mailbox) {
            Some(inner) => inner,
            None => mailbox,
        };
        let addr = strip_cfws_all(addr);
        if addr.is_empty() {
            continue;
        }
        let Some(at) = rfind_unquoted(&addr, b'@') else {
            continue;
        };
        let domain = addr.get(at + 1..).unwrap_or_default();
        let domain = domain.strip_suffix(b";").unwrap_or(domain);
        if let Some(d) = normalize_domain(domain) {
            domains.push(d);
        }
    }
    let Some(first) = domains.first() else {
        return Err(FromError::NoAddress);
    };
    if domains.iter().any(|d| d != first) {
        return Err(FromError::SeveralDomains);
    }
    Ok(first.clone())
}

/// Lower case, no trailing dot, A-label form; `None` for anything that is
/// not a host name.
fn normalize_domain(d: &[u8]) -> Option<String> {
    let d = d.strip_suffix(b".").unwrap_or(d);
    if d.is_empty() || d.starts_with(b"[") {
        return None;
    }
    let s = std::str::from_utf8(d).ok()?;
    let ascii = if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(s).ok()?
    };
    let ok = ascii.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    ok.then_some(ascii)
}

/// Scanner state shared by the helpers: inside a quoted string, inside a
/// comment (depth), or inside an angle-addr.
#[derive(Default)]
struct Scan {
    quoted: bool,
    comment: usize,
    angle: bool,
    escaped: bool,
}

impl Scan {
    /// Feeds one byte; returns true when it is at top level (outside
    /// quotes, comments and angle brackets) and is not itself syntax.
    fn top(&mut self, b: u8) -> bool {
        if self.escaped {
            self.escaped = false;
            return false;
        }
        if (self.quoted || self.comment > 0) && b == b'\\' {
            self.escaped = true;
            return false;
        }
        if self.quoted {
            if b == b'"' {
                self.quoted = false;
            }
            return false;
        }
        if self.comment > 0 {
            match b {
                b'(' => self.comment += 1,
                b')' => self.comment -= 1,
                _ => {}
            }
            return false;
        }
        match b {
            b'"' => {
                self.quoted = true;
                false
            }
            b'(' => {
                self.comment = 1;
                false
            }
            b'<' if !self.angle => {
                self.angle = true;
                true
            }
            b'>' if self.angle => {
                self.angle = false;
                false
            }
            _ => !self.angle,
        }
    }
}

fn split_top_level(v: &[u8], sep: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut scan = Scan::default();
    let mut start = 0;
    for (i, &b) in v.iter().enumerate() {
        if scan.top(b) && b == sep {
            out.push(v.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    out.push(v.get(start..).unwrap_or_default());
    out
}

fn find_top_level(v: &[u8], want: u8) -> Option<usize> {
    let mut scan = Scan::default();
    v.iter()
        .enumerate()
        .find(|&(_, &b)| scan.top(b) && b == want)
        .map(|(i, _)| i)
}

fn contains_top_level(v: &[u8], want: u8) -> bool {
    find_top_level(v, want).is_some()
}

/// The content of the first top-level `<...>`, if any.
fn angle_addr(v: &[u8]) -> Option<&[u8]> {
    let open = find_top_level(v, b'<')?;
    let rest = v.get(open + 1..)?;
    let mut quoted = false;
    let mut escaped = false;
    let mut close = rest.len();
    for (i, &b) in rest.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted {
            match b {
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if b == b'"' {
            quoted = true;
        } else if b == b'>' {
            close = i;
            break;
        }
    }
    let inner = rest.get(..close)?;
    // An obsolete route ("@a,@b:user@x") ends at the last top-level colon.
    Some(match find_top_level(inner, b':') {
        Some(c) if inner.first() == Some(&b'@') => inner.get(c + 1..).unwrap_or_default(),
        _ => inner,
    })
}

/// The text without comments and white space (quoted strings kept).
fn strip_cfws_all(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut quoted = false;
    let mut comment = 0usize;
    let mut escaped = false;
    for &b in v {
        if escaped {
            escaped = false;
            if comment == 0 {
                out.push(b);
            }
            continue;
        }
        if b == b'\\' && (quoted || comment > 0) {
            escaped = true;
            if comment == 0 {
                out.push(b);
            }
            continue;
        }
        if comment > 0 {
            match b {
                b'(' => comment += 1,
                b')' => comment -= 1,
                _ => {}
            }
            continue;
        }
        if quoted {
            if b == b'"' {
                quoted = false;
            }
            out.push(b);
            continue;
        }
        match b {
            b'"' => {
                quoted = true;
                out.push(b);
            }
            b'(' => comment = 1,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => out.push(b),
        }
    }
    out
}

/// The last `ch` outside a quoted string.
fn rfind_unquoted(v: &[u8], ch: u8) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    let mut found = None;
    for (i, &b) in v.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if b == b'\\' && quoted {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == ch && !quoted {
            found = Some(i);
        }
    }
    found
}

/// The configured domain that signs mail from `from_domain`: the domain
/// itself, else the nearest parent with `subdomains = true`.
pub fn signing_domain<'a>(config: &'a Config, from_domain: &str) -> Option<&'a Domain> {
    if let Some(d) = config.domains.iter().find(|d| d.name == from_domain) {
        return Some(d);
    }
    let mut rest = from_domain;
    while let Some((_, parent)) = rest.split_once('.') {
        if let Some(d) = config
            .domains
            .iter()
            .find(|d| d.subdomains && d.name == parent)
        {
            return Some(d);
        }
        rest = parent;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host name in internal_hosts or external_ignore matches the client
    /// name the MTA hands over, as in OpenDKIM; the placeholders for a
    /// client without a confirmed name match nothing.
    #[test]
    fn host_names_match_the_client_name() {
        let text = "[service]\nengine = \"bundled\"\nauthserv_id = \"mx.example.net\"\n\
                    [trusted]\ninternal_hosts = [\"relay.example.net\"]\n\
                    external_ignore = [\"backup.example.net\"]\n\
                    [[domain]]\nname = \"example.com\"\nselector = \"s1\"\n[mta]\nkind = \"none\"\n";
        let source = crate::config::Source {
            real: "/nonexistent/dkim.toml".into(),
            host: "/etc/dkimctl/dkim.toml".into(),
            display: "dkim.toml".into(),
        };
        let config = crate::config::parse(text, &source).config.expect("valid");
        let from = |name: &[u8]| Client {
            ip: Some("192.0.2.7".parse().unwrap()),
            hostname: client_name(name),
            ..Client::default()
        };
        assert_eq!(
            direction(&config, &from(b"Relay.Example.NET.")),
            Direction::Sign
        );
        assert_eq!(
            from(b"relay.example.net").trusted(&config),
            Some("internal host name")
        );
        for other in [&b"unknown"[..], b"[192.0.2.7]", b"", b"other.example.net"] {
            assert_eq!(
                direction(&config, &from(other)),
                Direction::Verify,
                "{other:?}"
            );
        }
        assert_eq!(
            direction(&config, &from(b"backup.example.net")),
            Direction::Pass
        );
    }

    #[test]
    fn from_domain_table() {
        let ok: &[(&[u8], &str)] = &[
            (b" joe@Example.COM", "example.com"),
            (b" Joe Doe <joe@example.com>", "example.com"),
            (b" \"Doe, Joe\" <joe@example.com>", "example.com"),
            (b" \"a@evil.example\" <joe@example.com>", "example.com"),
            (
                b" (comment <x@evil.example>) joe@example.com",
                "example.com",
            ),
            (b" joe@example.com (Joe <x@evil.example>)", "example.com"),
            (
                b" =?utf-8?q?J=C3=B6rg?= <j@sub.example.com>",
                "sub.example.com",
            ),
            (b" <joe@example.com.>", "example.com"),
            (b" \"joe@x\"@example.com", "example.com"),
            (b" a@example.com, b@EXAMPLE.com", "example.com"),
            (b" Friends: a@example.com, b@example.com;", "example.com"),
            (b" <@route.example:joe@example.com>", "example.com"),
            (b" joe@xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("joe@bücher.example".as_bytes(), "xn--bcher-kva.example"),
            (b" J\xf6rg <j@example.com>", "example.com"),
            (b" joe@example.com\r\n\t(folded)", "example.com"),
        ];
        for (v, want) in ok {
            assert_eq!(from_domain(v).as_deref(), Ok(*want), "{}", v.escape_ascii());
        }
        let bad: &[(&[u8], FromError)] = &[
            (b"", FromError::NoAddress),
            (b" undisclosed-recipients:;", FromError::NoAddress),
            (b" joe", FromError::NoAddress),
            (b" joe@[192.0.2.1]", FromError::NoAddress),
            (b" a@example.com, b@example.org", FromError::SeveralDomains),
            (b" joe@\xff\xfe", FromError::NoAddress),
            (b" \"unterminated <a@b.example>", FromError::NoAddress),
        ];
        for (v, want) in bad {
            assert_eq!(from_domain(v).as_ref(), Err(want), "{}", v.escape_ascii());
        }
    }
}
