//! DKIM verification of a buffered message, with DNS through a
//! [`Resolver`].
//!
//! mail-auth does the work (`MessageAuthenticator::verify_dkim`); it looks
//! every key record up through an optional cache before asking DNS. That
//! cache is the seam used here:
//!
//! - [`Resolver::Live`]: a hickory resolver (the name servers of
//!   `engine.nameservers`, or the system's) with a bounded cache of parsed
//!   key records that honours the records' TTLs, on top of hickory's own.
//! - [`Resolver::Fixed`]: records given up front (tests, vectors). Every
//!   lookup is answered from the table, a missing name as NXDOMAIN, so no
//!   packet ever leaves the process.
//!
//! Results are values ([`VerifyResult`]), one per signature, never errors:
//! a DNS failure is `temperror`, a broken signature `fail` or `neutral`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::proto::op::ResponseCode;
use mail_auth::common::crypto::{Algorithm as MaAlgorithm, CryptoError};
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::DkimError;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DnsError, Error as MaError, MessageAuthenticator, Parameters,
    ResolverCache, Txt,
};

/// Most parsed key records kept by a live resolver's cache.
const CACHE_CAPACITY: usize = 10_000;

/// Where key records come from.
pub enum Resolver {
    /// Real DNS through hickory, with a cache.
    Live {
        /// mail-auth's resolver wrapper (a hickory `TokioResolver`).
        authenticator: MessageAuthenticator,
        /// Parsed key records, until their TTL runs out.
        cache: TxtCache,
        /// The name servers asked (empty: the system's), for messages.
        nameservers: Vec<SocketAddr>,
        /// Per-query timeout.
        timeout: Duration,
    },
    /// A fixed table of records; nothing is sent to the network.
    Fixed {
        /// A resolver that is never asked (mail-auth wants one).
        authenticator: MessageAuthenticator,
        /// The answers.
        cache: TxtCache,
    },
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resolver::Live {
                nameservers,
                timeout,
                ..
            } => f
                .debug_struct("Live")
                .field("nameservers", nameservers)
                .field("timeout", timeout)
                .finish_non_exhaustive(),
            Resolver::Fixed { .. } => f.write_str("Fixed"),
        }
    }
}

/// A fixed answer for [`Resolver::fixed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixedAnswer {
    /// A TXT record (the joined character-strings).
    Txt(String),
    /// The query fails as a timeout would (a `temperror`).
    TempFail,
}

/// Why a live resolver could not be set up.
#[derive(Debug)]
pub struct ResolverError(String);

impl fmt::Display for ResolverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot set up the DNS resolver: {}", self.0)
    }
}

impl std::error::Error for ResolverError {}

impl Resolver {
    /// A live resolver asking `nameservers` (IP and port, UDP then TCP),
    /// or the system's name servers (`/etc/resolv.conf`) when empty.
    pub fn live(nameservers: &[SocketAddr], timeout: Duration) -> Result<Resolver, ResolverError> {
        let (config, mut opts) = if nameservers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| ResolverError(e.to_string()))?
        } else {
            let mut servers = Vec::new();
            for addr in nameservers {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                servers.push(ns);
            }
            (
                ResolverConfig::from_name_servers(servers),
                ResolverOpts::default(),
            )
        };
        opts.timeout = timeout;
        opts.attempts = 2;
        let authenticator =
            MessageAuthenticator::new(config, opts).map_err(|e| ResolverError(e.to_string()))?;
        Ok(Resolver::Live {
            authenticator,
            cache: TxtCache::live(),
            nameservers: nameservers.to_vec(),
            timeout,
        })
    }

    /// A resolver answering from `records` (owner name, answer) only;
    /// names may be given with or without the final dot. Unknown names are
    /// NXDOMAIN.
    pub fn fixed<N: AsRef<str>>(records: impl IntoIterator<Item = (N, FixedAnswer)>) -> Resolver {
        let mut map = HashMap::new();
        for (name, answer) in records {
            let mut name = name.as_ref().to_ascii_lowercase();
            if !name.ends_with('.') {
                name.push('.');
            }
            let txt = match answer {
                FixedAnswer::Txt(t) => Txt::from(DomainKey::parse(t.as_bytes())),
                FixedAnswer::TempFail => {
                    Txt::Error(MaError::Dns(DnsError::Resolver("simulated timeout".into())))
                }
            };
            map.insert(name.into_boxed_str(), txt);
        }
        // No name servers: the resolver cannot send anything even if the
        // table missed, which it never does.
        let authenticator = MessageAuthenticator::new(
            ResolverConfig::from_name_servers(Vec::new()),
            ResolverOpts::default(),
        )
        .expect("a resolver without name servers needs no system state");
        Resolver::Fixed {
            authenticator,
            cache: TxtCache::Fixed(map),
        }
    }

    /// True when this resolver was built for exactly these settings (so
    /// a reload can keep it, with its warm cache).
    pub fn matches(&self, nameservers: &[SocketAddr], timeout: Duration) -> bool {
        match self {
            Resolver::Live {
                nameservers: n,
                timeout: t,
                ..
            } => n == nameservers && *t == timeout,
            Resolver::Fixed { .. } => true,
        }
    }

    fn parts(&self) -> (&MessageAuthenticator, &TxtCache) {
        match self {
            Resolver::Live {
                authenticator,
                cache,
                ..
            }
            | Resolver::Fixed {
                authenticator,
                cache,
            } => (authenticator, cache),
        }
    }
}

/// The key-record cache mail-auth consults before DNS.
pub enum TxtCache {
    /// Entries learned from DNS, until they expire.
    Live(Mutex<HashMap<Box<str>, (Txt, Instant)>>),
    /// A fixed table; misses are NXDOMAIN.
    Fixed(HashMap<Box<str>, Txt>),
}

impl TxtCache {
    fn live() -> TxtCache {
        TxtCache::Live(Mutex::new(HashMap::new()))
    }
}

impl ResolverCache<Box<str>, Txt> for TxtCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self {
            TxtCache::Live(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                match map.get(name) {
                    Some((txt, until)) if *until > Instant::now() => Some(txt.clone()),
                    Some(_) => {
                        map.remove(name);
                        None
                    }
                    None => None,
                }
            }
            TxtCache::Fixed(map) => Some(map.get(name).cloned().unwrap_or(Txt::Error(
                MaError::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain)),
            ))),
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self {
            TxtCache::Live(map) => map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(name)
                .map(|(t, _)| t),
            TxtCache::Fixed(_) => None,
        }
    }

    fn insert(&self, key: Box<str>, value: Txt, valid_until: Instant) {
        if let TxtCache::Live(map) = self {
            let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= CACHE_CAPACITY {
                let now = Instant::now();
                map.retain(|_, (_, until)| *until > now);
                if map.len() >= CACHE_CAPACITY {
                    map.clear();
                }
            }
            map.insert(key, (value, valid_until));
        }
    }
}

/// The outcome of one signature, as RFC 8601 names it (§2.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimStatus {
    /// The signature verified.
    Pass,
    /// The signature (or the body hash) did not verify.
    Fail,
    /// The signature could not be processed (malformed, expired).
    Neutral,
    /// A transient error, typically DNS (try again later).
    TempError,
    /// A permanent error: no key record, a revoked or unusable key.
    PermError,
    /// No signature.
    None,
}

impl DkimStatus {
    /// The result word of `Authentication-Results`.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimStatus::Pass => "pass",
            DkimStatus::Fail => "fail",
            DkimStatus::Neutral => "neutral",
            DkimStatus::TempError => "temperror",
            DkimStatus::PermError => "permerror",
            DkimStatus::None => "none",
        }
    }
}

impl fmt::Display for DkimStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verification result of one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyResult {
    /// The outcome.
    pub status: DkimStatus,
    /// `d=` of the signature, when it could be parsed.
    pub domain: Option<String>,
    /// `s=`.
    pub selector: Option<String>,
    /// `a=`.
    pub algorithm: Option<&'static str>,
    /// The first 8 characters of `b=` in base64 (RFC 6008 `header.b`),
    /// telling apart several signatures of one domain.
    pub signature_prefix: Option<String>,
    /// Why it did not pass, in a few lower-case words.
    pub reason: Option<String>,
}

impl fmt::Display for VerifyResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dkim={}", self.status)?;
        if let Some(d) = &self.domain {
            write!(f, " d={d}")?;
        }
        if let Some(s) = &self.selector {
            write!(f, " s={s}")?;
        }
        if let Some(a) = self.algorithm {
            write!(f, " a={a}")?;
        }
        if let Some(r) = &self.reason {
            write!(f, " ({r})")?;
        }
        Ok(())
    }
}

fn reason(err: &MaError) -> String {
    match err {
        MaError::Crypto(CryptoError::FailedVerification) => "signature did not verify".into(),
        MaError::Crypto(CryptoError::IncompatibleAlgorithms) => {
            "key type does not match the signature".into()
        }
        MaError::Dkim(DkimError::FailedBodyHashMatch) => "body hash did not verify".into(),
        MaError::Dkim(DkimError::SignatureExpired) => "signature expired".into(),
        MaError::Dkim(DkimError::RevokedPublicKey) => "key revoked".into(),
        MaError::Dkim(DkimError::SignatureLength) => "signature uses l=".into(),
        MaError::Dkim(DkimError::FailedAuidMatch) => "i= does not match d=".into(),
        MaError::Dkim(DkimError::UnsupportedAlgorithm) => "unsupported algorithm".into(),
        MaError::Dns(DnsError::RecordNotFound(_)) => "no key record".into(),
        MaError::Dns(DnsError::InvalidRecordType) | MaError::ParseError => {
            "invalid key record".into()
        }
        MaError::Dns(DnsError::Resolver(_)) => "dns error".into(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// Verifies every DKIM signature of `message` (CRLF line ends, headers and
/// body). An unsigned message gives an empty list.
pub async fn verify(resolver: &Resolver, message: &[u8]) -> Vec<VerifyResult> {
    let Some(parsed) = AuthenticatedMessage::parse(message) else {
        return Vec::new();
    };
    let (authenticator, cache) = resolver.parts();
    let outputs = authenticator
        .verify_dkim(Parameters::new(&parsed).with_txt_cache(cache))
        .await;
    outputs
        .iter()
        .map(|out| {
            let (status, why) = match out.result() {
                DkimResult::Pass => (DkimStatus::Pass, None),
                DkimResult::Fail(e) => (DkimStatus::Fail, Some(reason(e))),
                // mail-auth reports a body hash mismatch as neutral; RFC
                // 6376 §6.1.3 makes it a failure of the signature.
                DkimResult::Neutral(e @ MaError::Dkim(DkimError::FailedBodyHashMatch)) => {
                    (DkimStatus::Fail, Some(reason(e)))
                }
                DkimResult::Neutral(e) => (DkimStatus::Neutral, Some(reason(e))),
                DkimResult::TempError(e) => (DkimStatus::TempError, Some(reason(e))),
                DkimResult::PermError(e) => (DkimStatus::PermError, Some(reason(e))),
                DkimResult::None => (DkimStatus::None, None),
            };
            let sig = out.signature();
            VerifyResult {
                status,
                domain: sig.map(|s| s.d.to_ascii_lowercase()),
                selector: sig.map(|s| s.s.clone()),
                algorithm: sig.map(|s| match s.a {
                    MaAlgorithm::RsaSha256 => "rsa-sha256",
                    MaAlgorithm::Ed25519Sha256 => "ed25519-sha256",
                    MaAlgorithm::RsaSha1 => "rsa-sha1",
                }),
                signature_prefix: sig.and_then(|s| {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(&s.b);
                    b64.get(..8).map(str::to_string)
                }),
                reason: why,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Canon;
    use crate::dkim::sign::{BodyHash, SignOptions, Signer, sign, split_message};
    use crate::keys::{parse_private_key, record_value};

    fn key(pem: &str) -> crate::keys::LoadedKey {
        parse_private_key(pem.as_bytes(), std::path::Path::new("t")).unwrap()
    }

    fn signed(pem: &str, msg: &[u8]) -> (Vec<u8>, String) {
        let k = key(pem);
        let record = record_value(k.algorithm, &k.public, Default::default());
        let signer = Signer::new("example.com", "sel", k.into_signing_key().unwrap());
        let (h, at) = split_message(msg);
        let mut bh = BodyHash::new(Canon::Relaxed);
        bh.write(&msg[at..]);
        let opts = SignOptions {
            header_canon: Canon::Relaxed,
            body_canon: Canon::Relaxed,
            expire: None,
        };
        let names = vec!["From".to_string(), "Subject".to_string()];
        let sig = sign(&signer, &opts, &h, &names, &bh.finish(), 1_700_000_000).unwrap();
        let mut out = sig.header_line().into_bytes();
        out.extend_from_slice(msg);
        (out, record)
    }

    const RSA: &str = include_str!("testdata/test-only-rsa2048.pem");
    const ED: &str = include_str!("testdata/test-only-ed25519.pem");

    #[tokio::test]
    async fn fixed_resolver_pass_fail_and_missing_key() {
        let msg = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
        for pem in [RSA, ED] {
            let (signed_msg, record) = signed(pem, msg);
            let r = Resolver::fixed([("sel._domainkey.example.com", FixedAnswer::Txt(record))]);
            let res = verify(&r, &signed_msg).await;
            assert_eq!(res.len(), 1);
            assert_eq!(res[0].status, DkimStatus::Pass, "{res:?}");
            assert_eq!(res[0].domain.as_deref(), Some("example.com"));
            assert_eq!(res[0].signature_prefix.as_ref().map(String::len), Some(8));

            let mut tampered = signed_msg.clone();
            let n = tampered.len();
            tampered[n - 3] = b'X';
            let res = verify(&r, &tampered).await;
            assert_eq!(res[0].status, DkimStatus::Fail, "{res:?}");
            assert_eq!(res[0].reason.as_deref(), Some("body hash did not verify"));

            let empty = Resolver::fixed(Vec::<(&str, FixedAnswer)>::new());
            let res = verify(&empty, &signed_msg).await;
            assert_eq!(res[0].status, DkimStatus::PermError, "{res:?}");

            let temp = Resolver::fixed([("sel._domainkey.example.com", FixedAnswer::TempFail)]);
            let res = verify(&temp, &signed_msg).await;
            assert_eq!(res[0].status, DkimStatus::TempError, "{res:?}");
        }
        let r = Resolver::fixed(Vec::<(&str, FixedAnswer)>::new());
        assert!(verify(&r, msg).await.is_empty());
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    /// Broken signatures and odd messages give results, never a panic.
    #[tokio::test]
    async fn malformed_signatures_do_not_panic() {
        let r = Resolver::fixed([(
            "s._domainkey.example.com",
            FixedAnswer::Txt("v=DKIM1; k=rsa; p=MIIB".into()),
        )]);
        let sigs: &[&str] = &[
            "",
            "v=1",
            "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=; b=",
            "v=1; a=rsa-sha256; d=example.com; s=s; h=From; bh=AAAA; b=AAAA; l=99999999999999999999",
            "v=1; a=ed25519-sha256; d=; s=; h=; bh=====; b=====",
            "v=1; a=rsa-sha256; c=simple/relaxed; d=example.com; s=s; h=From:From:From; t=99999999999; x=1; bh=AAAA; b=AAAA",
            "\u{e9}\u{ff}; ;;; ==",
        ];
        for sig in sigs {
            for body in ["", "\r\n", "x\r\n\r\n"] {
                let msg = format!("DKIM-Signature: {sig}\r\nFrom: a@example.com\r\n\r\n{body}");
                let _ = verify(&r, msg.as_bytes()).await;
            }
        }
        let _ = verify(&r, b"").await;
        let _ = verify(&r, b"\r\n\r\n").await;
        let _ = verify(&r, b"DKIM-Signature:\r\n").await;
    }
}
