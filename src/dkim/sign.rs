//! Streaming DKIM signing: header fields buffered, body hashed chunk by
//! chunk, signature computed at end of message.
//!
//! The pieces are mail-auth's: its body canonicalizer and hasher
//! ([`mail_auth::dkim::canonicalize::BodyHasher`], the engine of its
//! `DkimSigningStream`), its header canonicalization, its `Signature`
//! serialization and its signing keys. This file adds what a milter needs
//! and `DkimSigningStream` does not offer:
//!
//! - **A `now` from the caller.** `DkimSigningStream::finish` reads the
//!   system clock for `t=`; the session has no clock, and `dkimctl sign`
//!   and the tests pass a fixed time, which also makes signatures
//!   reproducible byte for byte (RSA PKCS#1 v1.5 and Ed25519 are
//!   deterministic).
//! - **A per-message `h=` list.** The fields to sign depend on which are
//!   present (see [`header_names`]); a `DkimSigningStream` borrows a signer
//!   whose list is fixed, and a per-message signer it borrows would make
//!   the session state self-referential.
//! - **One body hash for several signatures.** RSA and Ed25519 signatures
//!   of one message share `c=` and so the body hash; the body is hashed
//!   once.
//! - **Milter header fields.** Fields arrive one by one, without line ends,
//!   with or without their leading space (`SMFIP_HDR_LEADSPC`) and folded
//!   with bare LF; the engine rebuilds the wire form.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mail_auth::common::crypto::{
    Algorithm as MaAlgorithm, DkimKey, HashContext, HashImpl, Sha256, SigningKey,
};
use mail_auth::common::headers::{HeaderWriter, Writable, Writer};
use mail_auth::dkim::canonicalize::BodyHasher as MaBodyHasher;
use mail_auth::dkim::{Canonicalization, Signature};

use super::{CrlfNormalizer, crlf};
use crate::config::model::{Algorithm, Canon, Signing};

/// The hash context mail-auth uses for SHA-256 with its aws-lc backend.
type Sha256Context = <Sha256 as HashImpl>::Context;

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
        let mut body = BodyHash::new(Canon::Relaxed);
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

impl SignOptions {
    /// The options of a validated configuration.
    pub fn from_config(signing: &Signing) -> SignOptions {
        SignOptions {
            header_canon: signing.header_canon,
            body_canon: signing.body_canon,
            expire: signing.expire,
        }
    }
}

fn canonicalization(c: Canon) -> Canonicalization {
    match c {
        Canon::Simple => Canonicalization::Simple,
        Canon::Relaxed => Canonicalization::Relaxed,
    }
}

/// One header field in wire form: `name`, then `value` = everything after
/// the colon, line ends CRLF, including the final CRLF.
///
/// This is the shape mail-auth's header parser produces and its header
/// canonicalization expects (`simple` hashes `name ":" value` unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// The field name as sent (case kept).
    pub name: Bytes,
    /// The value after the colon, CRLF line ends, ending in CRLF.
    pub value: Vec<u8>,
}

impl HeaderField {
    /// A field from a raw message: `value` is what followed the colon,
    /// with or without its final line end.
    pub fn from_wire(name: &[u8], value: &[u8]) -> HeaderField {
        let mut v = crlf(value);
        if !v.ends_with(b"\r\n") {
            v.extend_from_slice(b"\r\n");
        }
        HeaderField {
            name: Bytes::copy_from_slice(name),
            value: v,
        }
    }

    /// Bytes of the field on the wire (`name:value` with its CRLF).
    pub fn wire_len(&self) -> usize {
        self.name.len() + 1 + self.value.len()
    }

    /// True when the field's name is `name` (ASCII case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// Splits a raw message into header fields and the body offset. Lines may
/// end in CRLF or LF. A line without a colon inside the header block ends
/// it (as mail-auth's parser does); the body starts after the empty line.
pub fn split_message(message: &[u8]) -> (Vec<HeaderField>, usize) {
    let mut fields = Vec::new();
    let mut pos = 0;
    loop {
        let rest = message.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            return (fields, message.len());
        }
        if rest.starts_with(b"\r\n") {
            return (fields, pos + 2);
        }
        if rest.starts_with(b"\n") {
            return (fields, pos + 1);
        }
        // The field runs to the first line end not followed by WSP.
        let mut end = rest.len();
        let mut i = 0;
        while let Some(off) = rest
            .get(i..)
            .and_then(|r| r.iter().position(|&b| b == b'\n'))
        {
            let nl = i + off;
            match rest.get(nl + 1) {
                Some(b' ' | b'\t') => i = nl + 1,
                _ => {
                    end = nl + 1;
                    break;
                }
            }
        }
        let field = rest.get(..end).unwrap_or_default();
        let Some(colon) = field.iter().position(|&b| b == b':') else {
            // Not a header field: treat it as the start of the body.
            return (fields, pos);
        };
        let (name, value) = field.split_at(colon);
        let value = value.get(1..).unwrap_or_default();
        fields.push(HeaderField::from_wire(name, value));
        pos += end;
    }
}

/// The header names to hand to the signer for this message, in mail-auth's
/// list semantics: every field whose name is listed is signed (all of its
/// occurrences, bottom-up), and each listed entry that matched no field
/// adds the name once more to `h=`.
///
/// From that, the list is built so that `h=` holds:
/// - each configured `sign_headers` name that is present, once per
///   occurrence;
/// - each `oversign_headers` name once more than it occurs (RFC 6376
///   §8.15: a field that is "signed as absent" cannot be added later
///   without breaking the signature). A present oversigned name is listed
///   twice (its occurrences plus one unmatched entry); an absent one once.
///
/// Configured names that are absent and not oversigned are left out, so
/// `h=` does not fill up with names that protect nothing.
pub fn header_names(signing: &Signing, headers: &[HeaderField]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let oversigned = |n: &str| {
        signing
            .oversign_headers
            .iter()
            .any(|o| o.eq_ignore_ascii_case(n))
    };
    let mut seen: Vec<&str> = Vec::new();
    let all = signing
        .sign_headers
        .iter()
        .chain(signing.oversign_headers.iter());
    for name in all {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            continue;
        }
        seen.push(name);
        if headers.iter().any(|h| h.is(name)) {
            names.push(name.clone());
        }
        if oversigned(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Incremental body hash with line-end normalisation.
pub struct BodyHash {
    inner: MaBodyHasher<Sha256Context>,
    crlf: CrlfNormalizer,
    scratch: Vec<u8>,
}

impl BodyHash {
    /// Starts hashing a body with the given canonicalization.
    pub fn new(canon: Canon) -> BodyHash {
        BodyHash {
            inner: MaBodyHasher::new(Sha256::hasher(), canonicalization(canon), 0),
            crlf: CrlfNormalizer::new(),
            scratch: Vec::new(),
        }
    }

    /// Hashes the next chunk of the body.
    pub fn write(&mut self, chunk: &[u8]) {
        let data = self.crlf.normalize(chunk, &mut self.scratch);
        self.inner.write(data);
    }

    /// The body hash (`bh=`, raw bytes).
    pub fn finish(self) -> Vec<u8> {
        let (ctx, _len) = self.inner.finish();
        ctx.complete().as_ref().to_vec()
    }
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

/// What is signed: the canonical header fields, then the DKIM-Signature
/// itself with an empty `b=` (RFC 6376 §3.7), exactly as mail-auth's own
/// signer feeds its key.
struct ToSign<'a> {
    headers: mail_auth::dkim::canonicalize::CanonicalHeaders<'a>,
    signature: &'a Signature,
}

impl Writable for ToSign<'_> {
    fn write(self, writer: &mut impl Writer) {
        self.headers.write(writer);
        self.signature.write(writer, false);
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
    // Field selection as in mail-auth's signer: every field whose name is
    // listed, in message order; `h=` lists them bottom-up (the order the
    // canonical headers are hashed in), then the unmatched entries.
    let mut selected: Vec<(&[u8], &[u8])> = Vec::new();
    let mut matched = vec![false; names.len()];
    let mut h: Vec<String> = Vec::new();
    for field in headers {
        if let Some(pos) = names.iter().position(|n| field.is(n)) {
            selected.push((&field.name, &field.value));
            if let Some(m) = matched.get_mut(pos) {
                *m = true;
            }
            // A matched name equals an ASCII configured name, ignoring case.
            h.push(String::from_utf8_lossy(&field.name).into_owned());
        }
    }
    if h.is_empty() {
        return Err(SignError::NoHeaders);
    }
    h.reverse();
    for (name, found) in names.iter().zip(matched) {
        if !found {
            h.push(name.clone());
        }
    }
    let ch = canonicalization(opts.header_canon);
    let mut signature = Signature {
        v: 1,
        a: signer.key.algorithm(),
        d: signer.domain.clone(),
        s: signer.selector.clone(),
        bh: body_hash.to_vec(),
        h,
        t: now,
        x: opts
            .expire
            .map_or(0, |e| now.saturating_add(e.as_secs().max(1))),
        ch,
        cb: canonicalization(opts.body_canon),
        ..Default::default()
    };
    signature.b = signer
        .key
        .sign(ToSign {
            headers: ch.canonical_headers(selected),
            signature: &signature,
        })
        .map_err(SignError::Crypto)?;
    Ok(SignedHeader { signature })
}

/// A finished signature and its header text.
#[derive(Debug, Clone)]
pub struct SignedHeader {
    /// The signature (mail-auth's type; `d`, `s`, `a`, `h`, `b`, ...).
    pub signature: Signature,
}

impl SignedHeader {
    /// The header field name.
    pub const NAME: &'static str = "DKIM-Signature";

    /// The complete header line, `DKIM-Signature: v=1; ...` folded with
    /// CRLF + TAB and ending in CRLF (mail-auth's `to_header`).
    pub fn header_line(&self) -> String {
        self.signature.to_header()
    }

    /// The value as hashed: the text after the colon (starting with its
    /// space), folded with CRLF + TAB, without the final CRLF.
    pub fn value(&self) -> String {
        let line = self.header_line();
        let after = line
            .strip_prefix("DKIM-Signature:")
            .unwrap_or(line.as_str());
        after.strip_suffix("\r\n").unwrap_or(after).to_string()
    }

    /// `a=` as text.
    pub fn algorithm(&self) -> &'static str {
        match self.signature.a {
            MaAlgorithm::RsaSha256 => "rsa-sha256",
            MaAlgorithm::Ed25519Sha256 => "ed25519-sha256",
            MaAlgorithm::RsaSha1 => "rsa-sha1",
        }
    }
}

/// One message being signed with one or more keys: the header fields are
/// kept, the body only hashed.
pub struct MessageSigner {
    signers: Vec<Arc<Signer>>,
    opts: SignOptions,
    headers: Vec<HeaderField>,
    names: Vec<String>,
    body: BodyHash,
}

impl MessageSigner {
    /// Starts signing a message whose header block is `headers`.
    pub fn new(
        signers: Vec<Arc<Signer>>,
        signing: &Signing,
        headers: Vec<HeaderField>,
    ) -> MessageSigner {
        let opts = SignOptions::from_config(signing);
        let names = header_names(signing, &headers);
        MessageSigner {
            signers,
            body: BodyHash::new(opts.body_canon),
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
mod tests {
    use super::*;
    use crate::config::validate::DEFAULT_SIGN_HEADERS;
    use mail_auth::dkim::DkimSigner;

    // A 2048-bit RSA test key (PKCS#8) and an Ed25519 seed, test-only.
    pub(crate) const TEST_RSA_PKCS8_PEM: &str = include_str!("testdata/test-only-rsa2048.pem");
    pub(crate) const TEST_ED25519_PKCS8_PEM: &str = include_str!("testdata/test-only-ed25519.pem");

    fn signing() -> Signing {
        Signing {
            header_canon: Canon::Relaxed,
            body_canon: Canon::Relaxed,
            algorithms: vec![Algorithm::RsaSha256],
            rsa_bits: 2048,
            sign_headers: DEFAULT_SIGN_HEADERS.iter().map(|s| s.to_string()).collect(),
            oversign_headers: vec!["From".into()],
            expire: None,
            record: Default::default(),
        }
    }

    fn load(pem: &str) -> DkimKey {
        crate::keys::parse_private_key(pem.as_bytes(), std::path::Path::new("test"))
            .unwrap()
            .into_signing_key()
            .unwrap()
    }

    fn fields(msg: &[u8]) -> Vec<HeaderField> {
        split_message(msg).0
    }

    #[test]
    fn header_names_oversign_present_and_absent() {
        let mut s = signing();
        s.sign_headers = vec!["From".into(), "To".into(), "Subject".into(), "Cc".into()];
        s.oversign_headers = vec!["From".into(), "Cc".into()];
        let h = fields(b"From: a@x\r\nTo: b@y\r\nTo: c@z\r\n\r\n");
        assert_eq!(header_names(&s, &h), ["From", "From", "To", "Cc"]);
    }

    #[test]
    fn h_tag_counts_match_rfc6376_8_15() {
        let mut s = signing();
        s.sign_headers = vec!["From".into(), "To".into(), "Subject".into(), "Cc".into()];
        s.oversign_headers = vec!["From".into(), "Cc".into()];
        let msg = b"From: a@example.com\r\nTo: b@y\r\nTo: c@z\r\nSubject: s\r\n\r\nbody\r\n";
        let (h, _) = split_message(msg);
        let names = header_names(&s, &h);
        let signer = Signer::new("example.com", "sel", load(TEST_ED25519_PKCS8_PEM));
        let mut bh = BodyHash::new(Canon::Relaxed);
        bh.write(b"body\r\n");
        let sig = sign(
            &signer,
            &SignOptions::from_config(&s),
            &h,
            &names,
            &bh.finish(),
            100,
        )
        .unwrap();
        // Bottom-up occurrences, then one extra From and the absent Cc.
        assert_eq!(
            sig.signature.h,
            ["Subject", "To", "To", "From", "From", "Cc"]
        );
    }

    #[test]
    fn split_message_handles_folding_lf_and_body() {
        let (h, body) = split_message(b"A: 1\n\tcont\nB:2\n\nbody\n");
        assert_eq!(h.len(), 2);
        assert_eq!(&h[0].value[..], b" 1\r\n\tcont\r\n");
        assert_eq!(&h[1].value[..], b"2\r\n");
        assert_eq!(body, 16);
        let (h, body) = split_message(b"A: 1\r\n\r\n");
        assert_eq!((h.len(), body), (1, 8));
        let (h, body) = split_message(b"A: 1");
        assert_eq!((h.len(), body), (1, 4));
    }

    /// Our glue must produce the very signature mail-auth's own streaming
    /// signer produces for the same message, key and time.
    #[test]
    fn matches_mail_auth_streaming_signer_bytes() {
        for (pem, canon) in [
            (
                TEST_RSA_PKCS8_PEM,
                (Canonicalization::Relaxed, Canonicalization::Relaxed),
            ),
            (
                TEST_RSA_PKCS8_PEM,
                (Canonicalization::Simple, Canonicalization::Simple),
            ),
            (
                TEST_ED25519_PKCS8_PEM,
                (Canonicalization::Simple, Canonicalization::Relaxed),
            ),
        ] {
            let msg: &[u8] = b"From: Joe <joe@example.com>\r\nTo: x@y\r\nSubject:  Hi  there \r\n\tfolded\r\n\r\nHello  \r\nworld\r\n\r\n\r\n";
            let names = ["From", "To", "Subject"];
            let ma = DkimSigner::from_key(load(pem))
                .domain("example.com")
                .selector("sel")
                .headers(names)
                .header_canonicalization(canon.0)
                .body_canonicalization(canon.1);
            let mut stream = ma.sign_streaming();
            for c in msg.chunks(7) {
                stream.write(c);
            }
            let theirs = stream.finish().unwrap();

            let ours_signer = Signer::new("example.com", "sel", load(pem));
            let opts = SignOptions {
                header_canon: if canon.0 == Canonicalization::Simple {
                    Canon::Simple
                } else {
                    Canon::Relaxed
                },
                body_canon: if canon.1 == Canonicalization::Simple {
                    Canon::Simple
                } else {
                    Canon::Relaxed
                },
                expire: None,
            };
            let (h, body_at) = split_message(msg);
            let mut bh = BodyHash::new(opts.body_canon);
            for c in msg[body_at..].chunks(3) {
                bh.write(c);
            }
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let ours = sign(&ours_signer, &opts, &h, &names, &bh.finish(), theirs.t).unwrap();
            assert_eq!(ours.signature, theirs, "{canon:?}");
        }
    }

    #[test]
    fn bare_lf_message_signs_like_crlf() {
        let signer = Signer::new("example.com", "sel", load(TEST_ED25519_PKCS8_PEM));
        let s = signing();
        let sign_one = |msg: &[u8]| {
            let (h, at) = split_message(msg);
            let mut m = MessageSigner::new(
                vec![Arc::new(Signer::new(
                    "example.com",
                    "sel",
                    load(TEST_ED25519_PKCS8_PEM),
                ))],
                &s,
                h,
            );
            m.write_body(&msg[at..]);
            m.finish(5).unwrap().remove(0).header_line()
        };
        let _ = &signer;
        assert_eq!(
            sign_one(b"From: a@example.com\nSubject: x\n\tfold\n\nline\n"),
            sign_one(b"From: a@example.com\r\nSubject: x\r\n\tfold\r\n\r\nline\r\n")
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
            &BodyHash::new(Canon::Simple).finish(),
            1_700_000_000,
        )
        .unwrap();
        let v = sig.value();
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
}
