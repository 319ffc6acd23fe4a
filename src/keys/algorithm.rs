//! What a key is for: its signing algorithm and the flags of its DNS
//! record.

use std::fmt;

/// A signing algorithm (RFC 6376 §3.3, RFC 8463).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// `rsa-sha256`.
    RsaSha256,
    /// `ed25519-sha256` (RFC 8463).
    Ed25519Sha256,
}

impl Algorithm {
    /// The `a=` tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }
    /// The `k=` tag value of the DNS record.
    pub fn key_type(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa",
            Algorithm::Ed25519Sha256 => "ed25519",
        }
    }
    /// Parses the `dkim.toml` word (`rsa-sha256`, `ed25519-sha256`; the
    /// short forms `rsa` and `ed25519` are accepted too).
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "rsa-sha256" | "rsa" => Some(Algorithm::RsaSha256),
            "ed25519-sha256" | "ed25519" => Some(Algorithm::Ed25519Sha256),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Flags published in the DNS record (RFC 6376 §3.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordFlags {
    /// `t=y`: testing mode.
    pub testing: bool,
    /// `s=email`: the key is for email only.
    pub service_email: bool,
    /// `h=sha256`: only SHA-256 is acceptable.
    pub hash_sha256: bool,
}

/// A canonicalization algorithm (RFC 6376 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canon {
    /// `simple`: no changes tolerated.
    Simple,
    /// `relaxed`: whitespace and header-name case changes tolerated.
    Relaxed,
}

impl Canon {
    /// The word used in `c=` and in OpenDKIM's `Canonicalization`.
    pub fn as_str(self) -> &'static str {
        match self {
            Canon::Simple => "simple",
            Canon::Relaxed => "relaxed",
        }
    }

    /// Parses a `c=` half.
    pub fn parse(s: &[u8]) -> Option<Canon> {
        if s.eq_ignore_ascii_case(b"simple") {
            Some(Canon::Simple)
        } else if s.eq_ignore_ascii_case(b"relaxed") {
            Some(Canon::Relaxed)
        } else {
            None
        }
    }
}
