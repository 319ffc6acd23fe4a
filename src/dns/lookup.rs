//! TXT lookups as `dns check` and `rotate` need them: every record of an
//! RRset kept apart, and each record's character-strings kept apart.
//!
//! The distinction is the whole point. A 2048-bit RSA key does not fit in
//! one 255-byte character-string, so its record is ONE TXT record of
//! several strings, which verifiers concatenate (RFC 6376 §3.6.2.2).
//! Publishing the same pieces as several TXT records looks identical in
//! most web panels and in `dig +short`, yet receivers then see an RRset of
//! fragments and fail with "bad format" (the ArchWiki OpenDKIM page's
//! troubleshooting case). So an answer here is a list of records, each a
//! list of strings, never a pre-joined text.
//!
//! [`TxtResolver`] is the seam: [`super::live::Live`] asks a real server
//! (hickory), [`Fixed`] answers from a table (unit tests).

use std::collections::BTreeMap;
use std::fmt;

/// One TXT record: its character-strings, in order, as raw bytes (records
/// are attacker-controlled and need not be UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    /// The character-strings (RFC 1035 §3.3.14), each at most 255 bytes.
    pub strings: Vec<Vec<u8>>,
}

impl TxtRecord {
    /// A record from text pieces (tests, fixtures).
    pub fn new<S: AsRef<[u8]>>(strings: &[S]) -> TxtRecord {
        TxtRecord {
            strings: strings.iter().map(|s| s.as_ref().to_vec()).collect(),
        }
    }

    /// The strings joined without separators, as verifiers read a record
    /// (RFC 6376 §3.6.2.2, RFC 7208 §3.3).
    pub fn joined(&self) -> Vec<u8> {
        self.strings.concat()
    }

    /// The joined value made safe to show: printable ASCII kept, other
    /// bytes as `\xNN`, cut after `max` bytes with `...`.
    pub fn shown(&self, max: usize) -> String {
        shown(&self.joined(), max)
    }
}

/// Untrusted bytes made safe for a terminal or a JSON report.
pub fn shown(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(max) {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > max {
        out.push_str("...");
    }
    out
}

/// What a TXT query at one name gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtAnswer {
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// NOERROR with no TXT record: the name exists (other types, or names
    /// below it) but has no TXT record.
    NoData,
    /// The TXT records at the name (after any CNAME), in answer order.
    Records(Vec<TxtRecord>),
}

/// Why a lookup gave no answer at all. Such a name could not be checked,
/// which `dns check` reports as exit code 2, never as "ok" or "missing".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    /// The name queried.
    pub name: String,
    /// What went wrong.
    pub kind: LookupErrorKind,
}

/// The kinds of lookup failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupErrorKind {
    /// No answer within the timeout.
    Timeout,
    /// The server answered with an error code (SERVFAIL, REFUSED, ...).
    ServerError(String),
    /// The server could not be reached or the answer was unusable.
    Transport(String),
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            LookupErrorKind::Timeout => {
                write!(f, "TXT lookup of {} timed out", self.name)
            }
            LookupErrorKind::ServerError(code) => {
                write!(
                    f,
                    "TXT lookup of {} failed: the server answered {code}",
                    self.name
                )
            }
            LookupErrorKind::Transport(why) => {
                write!(f, "TXT lookup of {} failed: {why}", self.name)
            }
        }
    }
}

impl std::error::Error for LookupError {}

/// Something that answers TXT queries.
///
/// Contract: `name` is a fully qualified name without the trailing dot
/// (`sel._domainkey.example.com`); implementations must not apply search
/// domains, must not join or reorder records or strings, and must report a
/// failed query as an error (never as [`TxtAnswer::NxDomain`]).
pub trait TxtResolver {
    /// Looks up the TXT RRset at `name`.
    fn lookup_txt(&self, name: &str) -> Result<TxtAnswer, LookupError>;
}

/// A resolver that answers from a table; names not in it are NXDOMAIN.
/// For tests, and for replaying a recorded answer.
#[derive(Debug, Clone, Default)]
pub struct Fixed {
    answers: BTreeMap<String, Result<TxtAnswer, LookupErrorKind>>,
}

impl Fixed {
    /// An empty table: every name is NXDOMAIN.
    pub fn new() -> Fixed {
        Fixed::default()
    }

    /// Adds one TXT record of the given strings at `name`.
    pub fn record<S: AsRef<[u8]>>(mut self, name: &str, strings: &[S]) -> Fixed {
        let entry = self
            .answers
            .entry(name.to_ascii_lowercase())
            .or_insert(Ok(TxtAnswer::Records(Vec::new())));
        match entry {
            Ok(TxtAnswer::Records(list)) => list.push(TxtRecord::new(strings)),
            other => *other = Ok(TxtAnswer::Records(vec![TxtRecord::new(strings)])),
        }
        self
    }

    /// Makes `name` answer with `answer`.
    pub fn answer(mut self, name: &str, answer: TxtAnswer) -> Fixed {
        self.answers.insert(name.to_ascii_lowercase(), Ok(answer));
        self
    }

    /// Makes the lookup of `name` fail.
    pub fn fail(mut self, name: &str, kind: LookupErrorKind) -> Fixed {
        self.answers.insert(name.to_ascii_lowercase(), Err(kind));
        self
    }
}

impl TxtResolver for Fixed {
    fn lookup_txt(&self, name: &str) -> Result<TxtAnswer, LookupError> {
        match self.answers.get(&name.to_ascii_lowercase()) {
            None => Ok(TxtAnswer::NxDomain),
            Some(Ok(answer)) => Ok(answer.clone()),
            Some(Err(kind)) => Err(LookupError {
                name: name.to_string(),
                kind: kind.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_keeps_records_and_strings_apart() {
        let r = Fixed::new()
            .record("a.example.com", &["v=DKIM1; ", "p=AB"])
            .record("A.example.com", &["x"]);
        let Ok(TxtAnswer::Records(list)) = r.lookup_txt("a.example.com") else {
            panic!("expected records");
        };
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].strings.len(), 2);
        assert_eq!(list[0].joined(), b"v=DKIM1; p=AB");
        assert_eq!(r.lookup_txt("b.example.com"), Ok(TxtAnswer::NxDomain));
    }

    #[test]
    fn shown_escapes_untrusted_bytes() {
        assert_eq!(shown(b"ok \x1b[31m\xff", 40), "ok \\x1b[31m\\xff");
        assert_eq!(shown(b"abcdef", 3), "abc...");
    }
}
