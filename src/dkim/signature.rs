//! The `DKIM-Signature` header field (RFC 6376 §3.5): parsed strictly for
//! verification, written for signing.
//!
//! Parsing follows the tag-list grammar (§3.2) and applies every MUST of
//! §6.1.1 a verifier needs before it fetches a key: `v=1`; the required
//! tags `a b bh d h s`; no tag twice; a known `a=` and `c=`; `q=` naming
//! `dns/txt`; `d=` a domain name; `i=` (dkim-quoted-printable, §2.11:
//! `=40` is `@`) in `d=` or a subdomain; `h=` including From. A field that fails is not ignored: [`parse`] returns
//! what it could read (`d=`, `s=`, `a=`) with the reason, so the result
//! is reported per signature.
//!
//! The `b=` value is kept as the byte range it occupies in the field, so
//! that the verifier hashes the field exactly as received with that value
//! deleted (§3.7), whatever the signer's folding.

use std::fmt::Write as _;
use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::canon::Canon;

/// `a=`: the signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlgorithm {
    /// `rsa-sha256`.
    RsaSha256,
    /// `ed25519-sha256` (RFC 8463).
    Ed25519Sha256,
    /// `rsa-sha1`: read, but never acceptable (RFC 8301 §3.1).
    RsaSha1,
}

impl SigAlgorithm {
    /// The `a=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SigAlgorithm::RsaSha256 => "rsa-sha256",
            SigAlgorithm::Ed25519Sha256 => "ed25519-sha256",
            SigAlgorithm::RsaSha1 => "rsa-sha1",
        }
    }

    fn parse(s: &str) -> Option<SigAlgorithm> {
        match s.to_ascii_lowercase().as_str() {
            "rsa-sha256" => Some(SigAlgorithm::RsaSha256),
            "ed25519-sha256" => Some(SigAlgorithm::Ed25519Sha256),
            "rsa-sha1" => Some(SigAlgorithm::RsaSha1),
            _ => None,
        }
    }
}

/// A parsed DKIM-Signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `a=`.
    pub algorithm: SigAlgorithm,
    /// `b=`, decoded.
    pub signature: Vec<u8>,
    /// `bh=`, decoded.
    pub body_hash: Vec<u8>,
    /// `c=` header half (default simple).
    pub header_canon: Canon,
    /// `c=` body half (default simple).
    pub body_canon: Canon,
    /// `d=`, lower case.
    pub domain: String,
    /// `h=`, as written (compared without case).
    pub headers: Vec<String>,
    /// `i=`, decoded (default `@` + `d=`).
    pub auid: String,
    /// `l=`.
    pub body_length: Option<u64>,
    /// `s=`, lower case.
    pub selector: String,
    /// `t=`.
    pub timestamp: Option<u64>,
    /// `x=`.
    pub expiration: Option<u64>,
    /// Where the `b=` value lies in the field value: from just after `=`
    /// to the `;` that ends the tag (or the end), whitespace included.
    pub b_value: Range<usize>,
}

/// A DKIM-Signature field that cannot be used, with what could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Why, in a few lower-case words.
    pub reason: String,
    /// `d=`, if readable.
    pub domain: Option<String>,
    /// `s=`, if readable.
    pub selector: Option<String>,
    /// `a=`, if readable.
    pub algorithm: Option<String>,
    /// `b=` as written, if readable (for `header.b`).
    pub b: Option<String>,
}

/// One tag of the list: name, value (trimmed), value range.
struct Tag<'a> {
    name: &'a str,
    value: &'a [u8],
    range: Range<usize>,
}

/// Splits a tag-list (§3.2) into tags. `Err` for a malformed list or a
/// duplicated tag.
fn tags(value: &[u8]) -> Result<Vec<Tag<'_>>, String> {
    let mut out: Vec<Tag<'_>> = Vec::new();
    let mut start = 0;
    while start <= value.len() {
        let end = value[start..]
            .iter()
            .position(|&b| b == b';')
            .map_or(value.len(), |p| start + p);
        let spec = &value[start..end];
        if !spec.iter().all(|b| is_fws(*b)) {
            let eq = spec
                .iter()
                .position(|&b| b == b'=')
                .ok_or_else(|| format!("tag without \"=\": {}", shown(spec)))?;
            let name = trim_fws(&spec[..eq]);
            let name_ok = name.first().is_some_and(u8::is_ascii_alphabetic)
                && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
            if !name_ok {
                return Err(format!("bad tag name \"{}\"", shown(name)));
            }
            let name = std::str::from_utf8(name).unwrap_or_default();
            if out.iter().any(|t| t.name == name) {
                return Err(format!("tag {name}= appears twice"));
            }
            let value_start = start + eq + 1;
            let trimmed = trim_fws(&value[value_start..end]);
            if trimmed
                .iter()
                .any(|&b| !(0x21..=0x7e).contains(&b) && !is_fws(b))
            {
                return Err(format!("tag {name}= has a byte outside VALCHAR"));
            }
            out.push(Tag {
                name,
                value: trimmed,
                range: value_start..end,
            });
        }
        if end == value.len() {
            break;
        }
        start = end + 1;
    }
    Ok(out)
}

fn is_fws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_fws(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !is_fws(*b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_fws(*b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// The value without any whitespace (base64 may be folded anywhere).
fn squeeze(v: &[u8]) -> Vec<u8> {
    v.iter().copied().filter(|b| !is_fws(*b)).collect()
}

fn shown(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(b).chars().take(40).collect();
    crate::report::clean(&s)
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// A domain name as `d=` and `i=` may hold it: dot-separated labels of
/// letters, digits and inner hyphens (A-labels), at least two.
fn is_domain(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    labels.len() >= 2
        && d.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Decodes a dkim-quoted-printable value (RFC 6376 §2.11): `=` and two
/// hex digits stand for that octet, whitespace (FWS) is ignored. `None`
/// for a `=` not followed by two hex digits.
fn dkim_quoted_printable(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(v.len());
    let mut rest = v;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'=' => {
                let hex = rest.get(..2)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                rest = &rest[2..];
            }
            _ if is_fws(b) => {}
            _ => out.push(b),
        }
    }
    Some(out)
}

fn digits(v: &[u8], max: usize) -> Option<u64> {
    (!v.is_empty() && v.len() <= max && v.iter().all(u8::is_ascii_digit))
        .then(|| text(v).parse().ok())
        .flatten()
}

/// Parses a DKIM-Signature field value (everything after the colon).
pub fn parse(value: &[u8]) -> Result<Signature, Invalid> {
    let tags = tags(value).map_err(|reason| Invalid {
        reason: format!("signature syntax: {reason}"),
        domain: None,
        selector: None,
        algorithm: None,
        b: None,
    })?;
    let get = |n: &str| tags.iter().find(|t| t.name == n);
    let domain = get("d").map(|t| text(t.value).to_ascii_lowercase());
    let selector = get("s").map(|t| text(t.value).to_ascii_lowercase());
    let invalid = |reason: String| Invalid {
        reason,
        domain: domain.clone(),
        selector: selector.clone(),
        algorithm: get("a").map(|t| text(t.value)),
        b: get("b").map(|t| text(&squeeze(t.value))),
    };
    for required in ["v", "a", "b", "bh", "d", "h", "s"] {
        if get(required).is_none() {
            return Err(invalid(format!("signature syntax: no {required}= tag")));
        }
    }
    let tag = |n: &str| get(n).map(|t| t.value).unwrap_or_default();
    if tag("v") != b"1" {
        return Err(invalid(format!(
            "signature syntax: v={} (must be 1)",
            shown(tag("v"))
        )));
    }
    let algorithm = SigAlgorithm::parse(&text(tag("a")))
        .ok_or_else(|| invalid(format!("unknown algorithm a={}", shown(tag("a")))))?;
    let b64 = |n: &str| STANDARD.decode(squeeze(tag(n)));
    let signature = b64("b").map_err(|_| invalid("signature syntax: b= is not base64".into()))?;
    let body_hash = b64("bh").map_err(|_| invalid("signature syntax: bh= is not base64".into()))?;
    let (header_canon, body_canon) = match get("c") {
        None => (Canon::Simple, Canon::Simple),
        Some(c) => {
            let (h, b) = match c.value.iter().position(|&b| b == b'/') {
                Some(i) => (&c.value[..i], Some(&c.value[i + 1..])),
                None => (c.value, None),
            };
            match (Canon::parse(h), b.map(Canon::parse)) {
                (Some(h), None) => (h, Canon::Simple),
                (Some(h), Some(Some(b))) => (h, b),
                _ => {
                    return Err(invalid(format!(
                        "unknown canonicalization c={}",
                        shown(c.value)
                    )));
                }
            }
        }
    };
    let domain = domain.clone().unwrap_or_default();
    if !is_domain(&domain) {
        return Err(invalid(format!(
            "d={} is not a domain name",
            shown(tag("d"))
        )));
    }
    let selector = selector.clone().unwrap_or_default();
    if !crate::formats::names::is_selector(&selector) {
        return Err(invalid(format!("s={} is not a selector", shown(tag("s")))));
    }
    let headers: Vec<String> = squeeze(tag("h")).split(|&b| b == b':').map(text).collect();
    if headers
        .iter()
        .any(|h| h.is_empty() || !h.bytes().all(|b| (33..=126).contains(&b) && b != b':'))
    {
        return Err(invalid("signature syntax: bad h= list".into()));
    }
    if !headers.iter().any(|h| h.eq_ignore_ascii_case("from")) {
        return Err(invalid("h= does not include From (RFC 6376 §5.4)".into()));
    }
    if let Some(q) = get("q") {
        let methods = squeeze(q.value);
        let dns = methods
            .split(|&b| b == b':')
            .any(|m| m.eq_ignore_ascii_case(b"dns/txt"));
        if !dns {
            return Err(invalid(format!(
                "no known query method q={}",
                shown(q.value)
            )));
        }
    }
    let auid = match get("i") {
        None => format!("@{domain}"),
        Some(i) => {
            // §3.5: i= is dkim-quoted-printable (§2.11): `=40` is `@`.
            let i = dkim_quoted_printable(i.value).ok_or_else(|| {
                invalid(format!(
                    "signature syntax: i={} is not dkim-quoted-printable",
                    shown(i.value)
                ))
            })?;
            let i = text(&i);
            let at_domain = i.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
            let ok = at_domain.as_deref().is_some_and(|d| {
                d == domain
                    || d.strip_suffix(domain.as_str())
                        .is_some_and(|p| p.ends_with('.'))
            });
            if !ok {
                return Err(invalid(format!(
                    "i={} is not in d={domain}",
                    shown(i.as_bytes())
                )));
            }
            i
        }
    };
    let body_length = match get("l") {
        None => None,
        Some(l) => {
            Some(digits(l.value, 76).ok_or_else(|| invalid("signature syntax: bad l=".into()))?)
        }
    };
    let number = |n: &str| -> Result<Option<u64>, Invalid> {
        match get(n) {
            None => Ok(None),
            Some(t) => digits(t.value, 12)
                .map(Some)
                .ok_or_else(|| invalid(format!("signature syntax: bad {n}="))),
        }
    };
    let timestamp = number("t")?;
    let expiration = number("x")?;
    if let (Some(t), Some(x)) = (timestamp, expiration)
        && x < t
    {
        return Err(invalid("x= is before t= (RFC 6376 §3.5)".into()));
    }
    let b_value = get("b").map(|t| t.range.clone()).unwrap_or_default();
    Ok(Signature {
        algorithm,
        signature,
        body_hash,
        header_canon,
        body_canon,
        domain,
        headers,
        auid,
        body_length,
        selector,
        timestamp,
        expiration,
        b_value,
    })
}

/// The field value with the `b=` value deleted, as it is hashed (§3.7).
pub fn without_b(value: &[u8], sig: &Signature) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    out.extend_from_slice(value.get(..sig.b_value.start).unwrap_or(value));
    out.extend_from_slice(value.get(sig.b_value.end..).unwrap_or_default());
    out
}

/// What a new signature says, before `b=` exists.
#[derive(Debug, Clone)]
pub struct NewSignature<'a> {
    /// `a=`.
    pub algorithm: SigAlgorithm,
    /// `c=`.
    pub canon: (Canon, Canon),
    /// `d=`.
    pub domain: &'a str,
    /// `s=`.
    pub selector: &'a str,
    /// `t=`.
    pub timestamp: u64,
    /// `x=`, if any.
    pub expiration: Option<u64>,
    /// `h=`.
    pub headers: &'a [String],
    /// `bh=`, raw.
    pub body_hash: &'a [u8],
}

/// Line length the folding aims at.
const FOLD: usize = 76;

impl NewSignature<'_> {
    /// The field value (after `DKIM-Signature:`, starting with its space,
    /// folded with CRLF + TAB), ending in `b=`: what is hashed (§3.7), and
    /// the start of the final value.
    pub fn value_without_b(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            " v=1; a={}; s={}; d={}; c={}/{};\r\n\tt={};",
            self.algorithm.as_str(),
            self.selector,
            self.domain,
            self.canon.0.as_str(),
            self.canon.1.as_str(),
            self.timestamp
        );
        if let Some(x) = self.expiration {
            let _ = write!(s, " x={x};");
        }
        s.push_str("\r\n\th=");
        let mut line = 3;
        for (i, h) in self.headers.iter().enumerate() {
            if i > 0 {
                s.push(':');
                line += 1;
                if line + h.len() > FOLD {
                    s.push_str("\r\n\t");
                    line = 1;
                }
            }
            s.push_str(h);
            line += h.len();
        }
        let _ = write!(s, ";\r\n\tbh={};\r\n\tb=", STANDARD.encode(self.body_hash));
        s
    }

    /// The complete value: [`NewSignature::value_without_b`] and `b=`,
    /// folded after the `b=` so the hashed part is unchanged.
    pub fn value(&self, signature: &[u8]) -> String {
        let mut s = self.value_without_b();
        let b = STANDARD.encode(signature);
        let mut first = true;
        let mut rest = b.as_str();
        while !rest.is_empty() {
            let width = if first { FOLD - 3 } else { FOLD - 1 };
            let (part, tail) = rest.split_at(width.min(rest.len()));
            if !first {
                s.push_str("\r\n\t");
            }
            s.push_str(part);
            rest = tail;
            first = false;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[u8] = b" v=1; a=rsa-sha256; c=relaxed/simple; d=Example.COM;\r\n\
        \ts=sel; t=1700000000; x=1800000000; h=From : To:\r\n\tSubject;\r\n\
        \tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\
        \tb=dGVz\r\n\t dA==";

    #[test]
    fn a_good_signature() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.algorithm, SigAlgorithm::RsaSha256);
        assert_eq!(
            (s.header_canon, s.body_canon),
            (Canon::Relaxed, Canon::Simple)
        );
        assert_eq!(s.domain, "example.com");
        assert_eq!(s.selector, "sel");
        assert_eq!(s.headers, ["From", "To", "Subject"]);
        assert_eq!(s.auid, "@example.com");
        assert_eq!(s.signature, b"test");
        assert_eq!(s.body_hash.len(), 32);
        assert_eq!(s.expiration, Some(1_800_000_000));
        let hashed = without_b(GOOD, &s);
        assert!(
            hashed.ends_with(b"\tb="),
            "{}",
            String::from_utf8_lossy(&hashed)
        );
    }

    fn reason(v: &[u8]) -> String {
        parse(v).unwrap_err().reason
    }

    #[test]
    fn the_musts_of_rfc_6376() {
        let base = "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AA==; b=AA==";
        assert!(parse(base.as_bytes()).is_ok());
        // Issue 12, defect 7: a missing bh= is reported, not dropped.
        assert_eq!(
            reason(base.replace(" bh=AA==;", "").as_bytes()),
            "signature syntax: no bh= tag"
        );
        // Defect 8: v= required, no tag twice, q= must name dns/txt.
        assert_eq!(
            reason(base.replace("v=1; ", "").as_bytes()),
            "signature syntax: no v= tag"
        );
        assert_eq!(
            reason(format!("{base}; d=evil.example").as_bytes()),
            "signature syntax: tag d= appears twice"
        );
        assert!(reason(format!("{base}; q=http/well-known").as_bytes()).starts_with("no known"));
        assert!(parse(format!("{base}; q=DNS/TXT:x/y").as_bytes()).is_ok());
        // Defect 4: h= without From.
        assert!(
            reason(base.replace("h=from", "h=to:subject").as_bytes())
                .starts_with("h= does not include From")
        );
        // Defect 9: i= outside d=.
        assert!(
            reason(format!("{base}; i=a@example.net").as_bytes()).starts_with("i=a@example.net")
        );
        assert!(parse(format!("{base}; i=a@sub.example.com").as_bytes()).is_ok());
        // i= is dkim-quoted-printable (§2.11; Mail::DKIM's good_qp_2/3).
        for (i, auid) in [
            ("jlong@example=2Ecom", "jlong@example.com"),
            ("jlong=40example.com", "jlong@example.com"),
            ("a=20b@sub.ex\r\n ample.com", "a b@sub.example.com"),
        ] {
            let sig = parse(format!("{base}; i={i}").as_bytes()).unwrap();
            assert_eq!(sig.auid, auid, "{i}");
        }
        assert!(
            reason(format!("{base}; i=a=4@example.com").as_bytes()).contains("quoted-printable")
        );
        assert!(
            reason(format!("{base}; i=a=ZZ@example.com").as_bytes()).contains("quoted-printable")
        );
        assert!(reason(format!("{base}; i=a@badexample.com").as_bytes()).starts_with("i="));
        // d= must be a domain name (the `(` attack of dkimpy's tests).
        let e = parse(
            base.replace("example.com", "legitimate.com(.attacker.com")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(e.reason.starts_with("d="), "{}", e.reason);
        assert_eq!(e.selector.as_deref(), Some("s"));
        for (good, bad) in [
            ("v=1", "v=2"),
            ("a=rsa-sha256", "a=rsa-sha512"),
            ("h=from", "h=from; c=fancy/simple"),
        ] {
            let v = base.replacen(good, bad, 1);
            assert!(parse(v.as_bytes()).is_err(), "{v}");
        }
        assert!(parse(b"synerr").is_err());
        assert!(parse(format!("{base}; x=5; t=6").as_bytes()).is_err());
    }

    #[test]
    fn written_signatures_parse_back() {
        let headers: Vec<String> = ["From", "To", "Subject", "Date", "Message-ID"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let n = NewSignature {
            algorithm: SigAlgorithm::Ed25519Sha256,
            canon: (Canon::Relaxed, Canon::Relaxed),
            domain: "example.com",
            selector: "e1",
            timestamp: 1_700_000_000,
            expiration: None,
            headers: &headers,
            body_hash: &[7u8; 32],
        };
        let sig = [9u8; 64];
        let value = n.value(&sig);
        assert!(value.starts_with(&n.value_without_b()));
        let s = parse(value.as_bytes()).unwrap();
        assert_eq!(s.signature, sig);
        assert_eq!(s.headers, headers);
        assert_eq!(
            without_b(value.as_bytes(), &s),
            n.value_without_b().as_bytes()
        );
        for line in value.split("\r\n") {
            assert!(line.len() <= FOLD + 1, "{line}");
        }
    }
}
