//! Streaming DKIM signing: header fields buffered, body hashed chunk by
//! chunk, signature computed at end of message.
//!
//! Canonicalization and the body hash are ours ([`super::canon`]); the
//! field is written by [`super::signature::NewSignature`]; the private-key
//! operation is mail-auth's (aws-lc underneath: RSASSA-PKCS1-v1_5 with
//! SHA-256, or Ed25519 over the SHA-256 digest as RFC 8463 says). What a
//! milter needs besides:
//!
//! - **A `now` from the caller**, so that signatures are reproducible
//!   byte for byte in tests (RSA PKCS#1 v1.5 and Ed25519 are
//!   deterministic) and the session needs no clock.
//! - **A per-message `h=` list**: the fields to sign depend on which are
//!   present (see [`header_names`]).
//! - **One body hash for several signatures**: RSA and Ed25519 signatures
//!   of one message share `c=` and so the body hash.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mail_auth::common::crypto::{Algorithm as MaAlgorithm, DkimKey, SigningKey};
use mail_auth::common::headers::{Writable, Writer};

use super::canon::{BodyHasher, Canon, canonical_header};
use super::message::HeaderField;
use super::signature::{NewSignature, SigAlgorithm};
use crate::keys::Algorithm;

/// A private key ready to sign for one domain and selector.
///
/// Built once per configuration load and shared (`Arc`) by every message
/// signed with it; `Debug` shows no key material.
pub struct Signer {
    /// `d=`: the signing domain (A-label, lower case).
    pub domain: String,
    /// `s=`: the selector.
    pub selector: String,
    /// `a=`: the algorithm.
    pub algorithm: Algorithm,
    key: DkimKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `domain`/`selector` with a key from
    /// [`crate::keys::LoadedKey::into_signing_key`].
    pub fn new(domain: impl Into<String>, selector: impl Into<String>, key: DkimKey) -> Signer {
        let algorithm = match key.algorithm() {
            MaAlgorithm::Ed25519Sha256 => Algorithm::Ed25519Sha256,
            MaAlgorithm::RsaSha256 | MaAlgorithm::RsaSha1 => Algorithm::RsaSha256,
        };
        Signer {
            domain: domain.into(),
            selector: selector.into(),
            algorithm,
            key,
        }
    }

    /// Signs a tiny fixed message and discards the result. aws-lc seeds
    /// its random generator and sets up the key's internal tables on first
    /// use (tens of milliseconds); doing it before accepting connections
    /// keeps that off the first real message. Fails when the crypto
    /// library refuses the key.
    pub fn warm_up(&self) -> Result<(), SignError> {
        let opts = SignOptions {
            header_canon: Canon::Relaxed,
            body_canon: Canon::Relaxed,
            expire: None,
        };
        let headers = [HeaderField::from_wire(
            b"From",
            b" warm-up <a@example.invalid>",
        )];
        let names = vec!["From".to_string()];
        let mut body = BodyHasher::new(Canon::Relaxed);
        body.write(b"warm-up\r\n");
        let bh = body.finish();
        sign(self, &opts, &headers, &names, &bh, 1).map(|_| ())
    }
}

/// How signatures are made (from `[defaults]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignOptions {
    /// Header canonicalization (`c=` first half).
    pub header_canon: Canon,
    /// Body canonicalization (`c=` second half).
    pub body_canon: Canon,
    /// Signature lifetime (`x=` is `t=` plus this), if any.
    pub expire: Option<Duration>,
}

/// The header names to sign for this message: each `sign` name that is
/// present, once per occurrence, and each `oversign` name once more than
/// it occurs (RFC 6376 §8.15: a field "signed as absent" cannot be added
/// later without breaking the signature). Configured names that are absent
/// and not oversigned are left out, so `h=` does not fill up with names
/// that protect nothing.
pub fn header_names(sign: &[String], oversign: &[String], headers: &[HeaderField]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for name in sign.iter().chain(oversign) {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            continue;
        }
        seen.push(name);
        let count = headers.iter().filter(|h| h.is(name)).count();
        let extra = usize::from(oversign.iter().any(|o| o.eq_ignore_ascii_case(name)));
        names.extend(std::iter::repeat_n(name.clone(), count + extra));
    }
    names
}

/// Why a signature could not be made.
#[derive(Debug)]
pub enum SignError {
    /// None of the fields to sign is present (there is no From).
    NoHeaders,
    /// The crypto library failed.
    Crypto(mail_auth::Error),
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::NoHeaders => f.write_str("no header field to sign"),
            SignError::Crypto(e) => write!(f, "signing failed: {e}"),
        }
    }
}

impl std::error::Error for SignError {}

/// Bytes handed to mail-auth's key, which hashes and signs them.
struct Data<'a>(&'a [u8]);

impl Writable for Data<'_> {
    fn write(self, writer: &mut impl Writer) {
        writer.write(self.0);
    }
}

/// The header hash input (RFC 6376 §3.7): for each name of `h=`, the
/// bottom-most field of that name not used yet, canonicalized; a name with
/// no field left contributes nothing. Used by signer and verifier alike.
pub fn selected_headers(canon: Canon, headers: &[HeaderField], h: &[String], out: &mut Vec<u8>) {
    let mut used = vec![false; headers.len()];
    for name in h {
        let found = headers
            .iter()
            .enumerate()
            .rev()
            .find(|(i, f)| !used[*i] && f.is(name));
        if let Some((i, f)) = found {
            used[i] = true;
            canonical_header(canon, &f.name, &f.value, out);
        }
    }
}

/// The DKIM-Signature field itself as hashed: canonicalized, `b=` empty,
/// no final CRLF.
pub fn signature_field(canon: Canon, value_without_b: &[u8], out: &mut Vec<u8>) {
    canonical_header(canon, b"DKIM-Signature", value_without_b, out);
    if out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
    }
}

/// Signs header fields and a finished body hash at time `now` (Unix
/// seconds). `names` comes from [`header_names`].
pub fn sign(
    signer: &Signer,
    opts: &SignOptions,
    headers: &[HeaderField],
    names: &[String],
    body_hash: &[u8],
    now: u64,
) -> Result<SignedHeader, SignError> {
    // h= as each present field's own spelling, bottom-up (the order the
    // verifier picks them), then the names signed as absent.
    let mut h: Vec<String> = Vec::with_capacity(names.len());
    let mut left: Vec<&String> = names.iter().collect();
    for f in headers.iter().rev() {
        if let Some(pos) = left.iter().position(|n| f.is(n)) {
            left.remove(pos);
            h.push(String::from_utf8_lossy(super::canon::trim_wsp(&f.name)).into_owned());
        }
    }
    if h.is_empty() {
        return Err(SignError::NoHeaders);
    }
    // Keep the configured order among names of one kind (the verifier
    // only cares about the count of each name).
    h.extend(left.into_iter().cloned());
    let new = NewSignature {
        algorithm: match signer.algorithm {
            Algorithm::RsaSha256 => SigAlgorithm::RsaSha256,
            Algorithm::Ed25519Sha256 => SigAlgorithm::Ed25519Sha256,
        },
        canon: (opts.header_canon, opts.body_canon),
        domain: &signer.domain,
        selector: &signer.selector,
        timestamp: now,
        expiration: opts.expire.map(|e| now.saturating_add(e.as_secs().max(1))),
        headers: &h,
        body_hash,
    };
    let unsigned = new.value_without_b();
    let mut data = Vec::with_capacity(1024);
    selected_headers(opts.header_canon, headers, &h, &mut data);
    signature_field(opts.header_canon, unsigned.as_bytes(), &mut data);
    let b = signer.key.sign(Data(&data)).map_err(SignError::Crypto)?;
    Ok(SignedHeader {
        domain: signer.domain.clone(),
        selector: signer.selector.clone(),
        algorithm: new.algorithm,
        value: new.value(&b),
    })
}

/// A finished signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeader {
    /// `d=`.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// `a=`.
    pub algorithm: SigAlgorithm,
    /// The value as hashed and delivered: the text after the colon
    /// (starting with its space), folded with CRLF + TAB, no final CRLF.
    pub value: String,
}

impl SignedHeader {
    /// The header field name.
    pub const NAME: &'static str = "DKIM-Signature";

    /// The complete header line, ending in CRLF.
    pub fn header_line(&self) -> String {
        format!("{}:{}\r\n", Self::NAME, self.value)
    }
}

/// One message being signed with one or more keys: the header fields are
/// kept, the body only hashed.
pub struct MessageSigner {
    signers: Vec<Arc<Signer>>,
    opts: SignOptions,
    headers: Vec<HeaderField>,
    names: Vec<String>,
    body: BodyHasher,
}

impl MessageSigner {
    /// Starts signing a message whose header block is `headers`; `names`
    /// from [`header_names`].
    pub fn new(
        signers: Vec<Arc<Signer>>,
        opts: SignOptions,
        headers: Vec<HeaderField>,
        names: Vec<String>,
    ) -> MessageSigner {
        MessageSigner {
            signers,
            body: BodyHasher::new(opts.body_canon),
            opts,
            headers,
            names,
        }
    }

    /// Hashes the next body chunk.
    pub fn write_body(&mut self, chunk: &[u8]) {
        self.body.write(chunk);
    }

    /// The keys this message is signed with.
    pub fn signers(&self) -> &[Arc<Signer>] {
        &self.signers
    }

    /// Computes every signature at time `now`, in key order.
    pub fn finish(self, now: u64) -> Result<Vec<SignedHeader>, SignError> {
        let bh = self.body.finish();
        self.signers
            .iter()
            .map(|s| sign(s, &self.opts, &self.headers, &self.names, &bh, now))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dkim::message::split_message;
    use crate::dkim::signature::parse;

    // A 2048-bit RSA test key (PKCS#8) and an Ed25519 seed, test-only.
    pub(crate) const TEST_RSA_PKCS8_PEM: &str = include_str!("testdata/test-only-rsa2048.pem");
    pub(crate) const TEST_ED25519_PKCS8_PEM: &str = include_str!("testdata/test-only-ed25519.pem");

    fn load(pem: &str) -> DkimKey {
        crate::keys::parse_private_key(pem.as_bytes(), std::path::Path::new("test"))
            .unwrap()
            .into_signing_key()
            .unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn header_names_oversign_present_and_absent() {
        let (h, _) = split_message(b"From: a@x\r\nTo: b@y\r\nTo: c@z\r\n\r\n");
        assert_eq!(
            header_names(
                &strings(&["From", "To", "Subject", "Cc"]),
                &strings(&["From", "Cc"]),
                &h
            ),
            ["From", "From", "To", "To", "Cc"]
        );
    }

    #[test]
    fn h_tag_counts_match_rfc6376_8_15() {
        let msg = b"From: a@example.com\r\nTo: b@y\r\nTo: c@z\r\nSubject: s\r\n\r\nbody\r\n";
        let (h, _) = split_message(msg);
        let names = header_names(
            &strings(&["From", "To", "Subject", "Cc"]),
            &strings(&["From", "Cc"]),
            &h,
        );
        let signer = Signer::new("example.com", "sel", load(TEST_ED25519_PKCS8_PEM));
        let mut bh = BodyHasher::new(Canon::Relaxed);
        bh.write(b"body\r\n");
        let opts = SignOptions {
            header_canon: Canon::Relaxed,
            body_canon: Canon::Relaxed,
            expire: None,
        };
        let sig = sign(&signer, &opts, &h, &names, &bh.finish(), 100).unwrap();
        // Bottom-up occurrences, then one extra From and the absent Cc.
        let parsed = parse(sig.value.as_bytes()).unwrap();
        assert_eq!(
            parsed.headers,
            ["Subject", "To", "To", "From", "From", "Cc"]
        );
    }

    #[test]
    fn value_is_the_header_without_name_and_line_end() {
        let signer = Signer::new("example.com", "sel", load(TEST_RSA_PKCS8_PEM));
        signer.warm_up().unwrap();
        let (h, _) = split_message(b"From: a@example.com\r\n\r\n");
        let sig = sign(
            &signer,
            &SignOptions {
                header_canon: Canon::Simple,
                body_canon: Canon::Simple,
                expire: Some(Duration::from_secs(3600)),
            },
            &h,
            &["From".to_string()],
            &BodyHasher::new(Canon::Simple).finish(),
            1_700_000_000,
        )
        .unwrap();
        let v = &sig.value;
        assert!(
            v.starts_with(" v=1; a=rsa-sha256; s=sel; d=example.com; c=simple/simple;"),
            "{v}"
        );
        assert!(
            v.contains("t=1700000000") && v.contains("x=1700003600"),
            "{v}"
        );
        assert!(!v.ends_with("\r\n"));
        assert_eq!(format!("DKIM-Signature:{v}\r\n"), sig.header_line());
    }

    #[test]
    fn signatures_are_deterministic() {
        let msg = b"From: a@example.com\r\nSubject : x\r\n\r\nbody\r\n";
        let (h, at) = split_message(msg);
        let once = || {
            let mut m = MessageSigner::new(
                vec![Arc::new(Signer::new(
                    "example.com",
                    "s",
                    load(TEST_RSA_PKCS8_PEM),
                ))],
                SignOptions {
                    header_canon: Canon::Simple,
                    body_canon: Canon::Relaxed,
                    expire: None,
                },
                h.clone(),
                strings(&["From", "Subject"]),
            );
            m.write_body(&msg[at..]);
            m.finish(7).unwrap()
        };
        assert_eq!(once(), once());
    }
}
