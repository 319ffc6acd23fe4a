//! The names the DKIM world shares: domain names (IDN in A-label form),
//! selectors (RFC 6376 §3.1) and the host patterns of trusted-host lists
//! (OpenDKIM's `InternalHosts`/`TrustedHosts`, dkim.toml's `[trusted]`).
//! dkim.toml's validation and the OpenDKIM table parsers use the same
//! rules.

use std::net::IpAddr;

/// One entry of a trusted-hosts list, as OpenDKIM's TrustedHosts takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// A single IPv4 or IPv6 address.
    Addr(IpAddr),
    /// A CIDR range (the address is the network, host bits cleared).
    Net(IpAddr, u8),
    /// A host name, matched against the connecting client's name.
    Name(String),
}

impl HostPattern {
    /// True when the pattern covers the address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (HostPattern::Addr(a), ip) => *a == canonical_ip(ip),
            (HostPattern::Net(IpAddr::V4(n), len), ip) => match canonical_ip(ip) {
                IpAddr::V4(v4) => {
                    let mask = u32::MAX.checked_shl(32 - *len as u32).unwrap_or(0);
                    u32::from(v4) & mask == u32::from(*n) & mask
                }
                IpAddr::V6(_) => false,
            },
            (HostPattern::Net(IpAddr::V6(n), len), IpAddr::V6(v6)) => {
                let mask = u128::MAX.checked_shl(128 - *len as u32).unwrap_or(0);
                u128::from(v6) & mask == u128::from(*n) & mask
            }
            _ => false,
        }
    }

    /// True when the pattern is a host name and `name` (a client name as
    /// the engine takes it from the MTA: lower case, no
    /// final dot) is that name, as OpenDKIM matches its host lists.
    pub fn names(&self, name: &[u8]) -> bool {
        match self {
            HostPattern::Name(n) => n
                .trim_end_matches('.')
                .as_bytes()
                .eq_ignore_ascii_case(name),
            _ => false,
        }
    }

    /// True for loopback addresses, loopback ranges and `localhost`.
    pub fn is_loopback(&self) -> bool {
        match self {
            HostPattern::Addr(a) => a.is_loopback(),
            HostPattern::Net(a, len) => match a {
                IpAddr::V4(v4) => v4.octets()[0] == 127 && *len >= 8,
                IpAddr::V6(_) => a.is_loopback() && *len == 128,
            },
            HostPattern::Name(n) => n.eq_ignore_ascii_case("localhost"),
        }
    }
}

/// IPv4-mapped IPv6 addresses compare as their IPv4 form.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Parses one trusted-host entry.
pub fn parse_host_pattern(s: &str) -> Result<HostPattern, String> {
    let s = s.trim();
    if let Some((addr, len)) = s.split_once('/') {
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("\"{addr}\" is not an IP address"))?;
        let len: u8 = len
            .parse()
            .map_err(|_| format!("invalid prefix length \"{len}\""))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(format!("prefix length {len} is longer than {max}"));
        }
        let net = match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                IpAddr::from((u32::from(v4) & mask).to_be_bytes())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                IpAddr::from((u128::from(v6) & mask).to_be_bytes())
            }
        };
        if net != ip {
            return Err(format!("host bits are set; the network is {net}/{len}"));
        }
        return Ok(HostPattern::Net(net, len));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(HostPattern::Addr(ip));
    }
    normalize_domain(s).map(HostPattern::Name).or_else(|e| {
        if s.eq_ignore_ascii_case("localhost") {
            Ok(HostPattern::Name("localhost".into()))
        } else if s.contains(char::is_whitespace) || !s.contains('.') {
            Err("not an address, a CIDR range or a host name".into())
        } else {
            Err(e)
        }
    })
}

/// A domain name in lower-case A-label form, checked for RFC 1035 syntax.
pub fn normalize_domain(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('.');
    if s.is_empty() {
        return Err("empty name".into());
    }
    let ascii = idna::domain_to_ascii(s)
        .map_err(|_| "not a valid (internationalised) domain name".to_string())?;
    if ascii.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err("a signing domain needs at least two labels (example.com)".into());
    }
    for l in &labels {
        if l.is_empty() || l.len() > 63 {
            return Err(format!("label \"{l}\" must have 1 to 63 characters"));
        }
        if !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || l.starts_with('-')
            || l.ends_with('-')
        {
            return Err(format!(
                "label \"{l}\" may hold only letters, digits and inner hyphens"
            ));
        }
    }
    Ok(ascii)
}

/// The scripts a look-alike domain mixes or borrows from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
}

impl Script {
    fn of(c: char) -> Option<Script> {
        match u32::from(c) {
            0x41..=0x5a | 0x61..=0x7a | 0xc0..=0x24f | 0x1e00..=0x1eff => Some(Script::Latin),
            0x370..=0x3ff | 0x1f00..=0x1fff => Some(Script::Greek),
            0x400..=0x52f | 0x1c80..=0x1c8f | 0x2de0..=0x2dff | 0xa640..=0xa69f => {
                Some(Script::Cyrillic)
            }
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Script::Latin => "Latin",
            Script::Greek => "Greek",
            Script::Cyrillic => "Cyrillic",
        }
    }
}

/// Lower-case Cyrillic and Greek letters drawn like Latin ones (after
/// Unicode's confusables list), with that Latin letter.
const LOOK_ALIKES: &[(char, char)] = &[
    ('а', 'a'),
    ('с', 'c'),
    ('ԁ', 'd'),
    ('е', 'e'),
    ('һ', 'h'),
    ('і', 'i'),
    ('ј', 'j'),
    ('ӏ', 'l'),
    ('о', 'o'),
    ('р', 'p'),
    ('ԛ', 'q'),
    ('ѕ', 's'),
    ('ԝ', 'w'),
    ('х', 'x'),
    ('у', 'y'),
    ('α', 'a'),
    ('ι', 'i'),
    ('κ', 'k'),
    ('ν', 'v'),
    ('ο', 'o'),
    ('ρ', 'p'),
    ('υ', 'u'),
    ('χ', 'x'),
];

/// Why an (A-label) domain may pass for another one to a reader, if it
/// may: a label mixing Latin, Greek and Cyrillic letters (`pаypal`, with a
/// Cyrillic `а`), or a Greek or Cyrillic label made only of letters drawn
/// like Latin ones (`рау` reads as `pay`). Mail signed for such a domain
/// looks like mail from the domain it imitates.
pub fn look_alike(domain: &str) -> Option<String> {
    if !domain.split('.').any(|l| l.starts_with("xn--")) {
        return None;
    }
    let (unicode, _) = idna::domain_to_unicode(domain);
    for label in unicode.split('.') {
        let mut scripts: Vec<Script> = Vec::new();
        for s in label.chars().filter_map(Script::of) {
            if !scripts.contains(&s) {
                scripts.push(s);
            }
        }
        match scripts.as_slice() {
            [_, _, ..] => {
                let names: Vec<&str> = scripts.iter().map(|s| s.name()).collect();
                return Some(format!(
                    "\"{unicode}\" mixes {} letters in \"{label}\"",
                    names.join(" and ")
                ));
            }
            [Script::Greek | Script::Cyrillic] => {
                let latin: Option<String> = label
                    .chars()
                    .map(|c| {
                        if c.is_ascii_digit() || c == '-' {
                            Some(c)
                        } else {
                            LOOK_ALIKES.iter().find(|(u, _)| *u == c).map(|(_, l)| *l)
                        }
                    })
                    .collect();
                if let Some(latin) = latin {
                    return Some(format!(
                        "\"{unicode}\" is drawn like the Latin \"{latin}\" in \"{label}\""
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

/// RFC 6376 §3.1: `selector = sub-domain *( "." sub-domain )`.
pub fn is_selector(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63 * 2
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alike_domains_are_named() {
        let ascii = |u: &str| normalize_domain(u).unwrap();
        // A Cyrillic `а` among Latin letters.
        let mixed = look_alike(&ascii("pаypal.com")).unwrap();
        assert!(
            mixed.contains("mixes Latin and Cyrillic letters"),
            "{mixed}"
        );
        // All Cyrillic, every letter drawn like a Latin one.
        let whole = look_alike(&ascii("рау.com")).unwrap();
        assert!(whole.contains("drawn like the Latin \"pay\""), "{whole}");
        // Honest internationalised names and plain ASCII ones.
        for fine in ["bücher.example", "пример.рф", "例え.jp", "example.com"] {
            assert_eq!(look_alike(&ascii(fine)), None, "{fine}");
        }
    }
}
