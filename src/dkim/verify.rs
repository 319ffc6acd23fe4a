//! DKIM verification (RFC 6376 §6) as RFC 6376, 8301 and 8463 say, one
//! result per signature, the body hashed as it streams.
//!
//! [`MessageVerifier`] is made at end of header: it parses every
//! DKIM-Signature ([`super::signature`]) and starts one body hash per
//! distinct `c=` body half and `l=`; body chunks feed those hashes (the
//! body is never held); at end of message the keys are looked up, all at
//! once and under one deadline, and each signature is judged. At most
//! [`MAX_SIGNATURES`] are checked; the rest are reported `neutral`.
//!
//! The checks, in the RFC's order (§6.1.1, §6.1.2, §6.1.3), the first that
//! fails decides (RFC 8601 §2.7.1 words):
//!
//! | result | when |
//! |---|---|
//! | `neutral` | the field cannot be used: tag-list syntax, a required tag missing, `v=` not 1, unknown `a=`/`c=`, no `dns/txt` in `q=`, `d=` not a domain, `i=` outside `d=`, `h=` without From; or expired (`x=`), or too many signatures |
//! | `policy` | `a=rsa-sha1` (RFC 8301 §3.1); an RSA key below 1024 bits (§3.2); a From field the signature does not cover (a From added above a signed message); body beyond `l=` |
//! | `temperror` | the key lookup timed out or failed |
//! | `permerror` | no key record; a record that does not parse, is revoked (`p=` empty), has another `k=`, an `h=` without sha256, an `s=` without email or `*`, `t=s` with a subdomain `i=`, or a key that does not decode |
//! | `fail` | the body hash or the signature does not verify |
//! | `pass` | all of it holds |
//!
//! # `neutral`, not `permerror`, for a field that cannot be used
//!
//! RFC 6376 §6.1.1 ends such a signature with PERMFAIL, but PERMFAIL is a
//! status of its algorithm, not a result word: the words are RFC 8601's,
//! and §2.7.1 gives `neutral` to a message "signed, but the signature or
//! signatures contained syntax errors or were not otherwise able to be
//! processed", and `permerror` to "some error that is unrecoverable, such
//! as a required header field being absent", an error outside the
//! signature. So a DKIM-Signature without `bh=`, with a bad tag-list or an
//! `i=` outside `d=` is `neutral` with the reason (`reason="signature
//! syntax: no bh= tag"`); `permerror` stays for the key record, which the
//! signer's domain publishes wrong. What the others say for the same
//! fields (measured with the RFC 6376 A.2 message changed one tag at a
//! time, against knotd): OpenDKIM 2.11 `permerror` (and no
//! Authentication-Results at all for a missing `v=` or a bad tag-list: it
//! accepts the message at end of header); Exim `neutral ("signature tag
//! missing or invalid")`; Mail::DKIM `invalid`, a word outside RFC 8601, for
//! syntax and key errors alike (and `fail` for a missing `bh=` or `v=`);
//! dkimpy no word, `verify()` is False with a `ValidationError`. Either
//! word keeps the signature from counting (DMARC and every policy read
//! only `pass`); the reason says which field is wrong.
//!
//! # `policy` for a body that goes on beyond `l=`
//!
//! RFC 6376 lets `l=` sign a prefix of the body; what follows is unsigned
//! and is exactly what the attack of §8.2 appends. The signature verifies,
//! but the message as delivered is not what was signed: `policy` ("some
//! aspect ... not acceptable to the ADMD", RFC 8601 §2.7.1) with the
//! reason. dkimpy and Mail::DKIM say pass; tests/vectors/peers lists the
//! four cases of dkimpy's corpus where this differs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::canon::{BodyHasher, Canon, trim_wsp};
use super::message::{HeaderField, split_message};
use super::sign::{selected_headers, signature_field};
use super::signature::{self, SigAlgorithm, Signature, without_b};
use crate::dns::resolver::Resolver;
use crate::dns::{LookupError, TxtAnswer};
use crate::keys::{Algorithm, PublicKey, parse_record};

/// Signatures checked per message; the rest are `neutral`. A message can
/// carry any number of signatures, each costing a DNS lookup and a public-key
/// operation.
pub const MAX_SIGNATURES: usize = 8;

/// RFC 8301 §3.2: verifiers MUST NOT accept RSA keys below this size.
pub const MIN_RSA_BITS: u32 = 1024;

/// The outcome of one signature, as RFC 8601 names it (§2.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimStatus {
    /// The signature verified.
    Pass,
    /// The body hash or the signature did not verify.
    Fail,
    /// The signature could not be processed (malformed, expired).
    Neutral,
    /// Verified or not, the signature is not acceptable (RFC 8301 limits,
    /// an unsigned From).
    Policy,
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
            DkimStatus::Policy => "policy",
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
    /// `d=` of the signature, when it could be read.
    pub domain: Option<String>,
    /// `s=`.
    pub selector: Option<String>,
    /// `a=`, when it is one we know.
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
            write!(f, " d={}", crate::report::clean(d))?;
        }
        if let Some(s) = &self.selector {
            write!(f, " s={}", crate::report::clean(s))?;
        }
        if let Some(a) = self.algorithm {
            write!(f, " a={a}")?;
        }
        if let Some(r) = &self.reason {
            write!(f, " ({})", crate::report::clean(r))?;
        }
        Ok(())
    }
}

/// One signature of the message, as found at end of header.
enum Entry {
    /// Decided already (unusable field, too many signatures).
    Done(VerifyResult),
    /// To check at end of message.
    Check {
        sig: Box<Signature>,
        /// The field value as received, without its final CRLF.
        raw: Vec<u8>,
        /// Index into the body hashes.
        body: usize,
    },
}

/// A message being verified (see the module docs).
pub struct MessageVerifier {
    headers: Vec<HeaderField>,
    entries: Vec<Entry>,
    /// One hash per distinct (body canonicalization, `l=`).
    bodies: Vec<(Canon, Option<u64>, BodyHasher)>,
}

impl MessageVerifier {
    /// Starts verifying a message whose header block is `headers`. An
    /// unsigned message gives no results.
    pub fn new(headers: Vec<HeaderField>) -> MessageVerifier {
        let mut entries = Vec::new();
        let mut bodies: Vec<(Canon, Option<u64>, BodyHasher)> = Vec::new();
        let mut checked = 0;
        for f in headers.iter().filter(|f| f.is("DKIM-Signature")) {
            let raw = f.value_without_crlf().to_vec();
            match signature::parse(&raw) {
                Err(bad) => entries.push(Entry::Done(VerifyResult {
                    status: DkimStatus::Neutral,
                    domain: bad.domain,
                    selector: bad.selector,
                    algorithm: None,
                    signature_prefix: bad.b.as_deref().map(prefix),
                    reason: Some(bad.reason),
                })),
                Ok(_) if checked >= MAX_SIGNATURES => entries.push(Entry::Done(result_of(
                    &signature::parse(&raw).expect("parsed above"),
                    DkimStatus::Neutral,
                    Some(format!("not checked: over {MAX_SIGNATURES} signatures")),
                ))),
                Ok(sig) => {
                    checked += 1;
                    let key = (sig.body_canon, sig.body_length);
                    let body = match bodies.iter().position(|(c, l, _)| (*c, *l) == key) {
                        Some(i) => i,
                        None => {
                            bodies.push((key.0, key.1, BodyHasher::with_limit(key.0, key.1)));
                            bodies.len() - 1
                        }
                    };
                    entries.push(Entry::Check {
                        sig: Box::new(sig),
                        raw,
                        body,
                    });
                }
            }
        }
        MessageVerifier {
            headers,
            entries,
            bodies,
        }
    }

    /// True when the message has no DKIM-Signature field.
    pub fn is_unsigned(&self) -> bool {
        self.entries.is_empty()
    }

    /// Hashes the next body chunk.
    pub fn write_body(&mut self, chunk: &[u8]) {
        for (_, _, h) in &mut self.bodies {
            h.write(chunk);
        }
    }

    /// Looks the keys up and judges every signature at time `now` (Unix
    /// seconds). Every lookup runs at once; whatever has not answered when
    /// the resolver's worst case has passed is a `temperror`.
    pub async fn finish(self, resolver: &Arc<Resolver>, now: u64) -> Vec<VerifyResult> {
        let bodies: Vec<(Vec<u8>, u64)> = self
            .bodies
            .into_iter()
            .map(|(_, _, h)| {
                let len = h.length();
                (h.finish().to_vec(), len)
            })
            .collect();
        // The key names to ask for, each once.
        let mut names: Vec<String> = Vec::new();
        for e in &self.entries {
            if let Entry::Check { sig, .. } = e {
                let n = key_name(sig);
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        let answers = lookup_all(resolver, &names).await;
        let from_fields = self.headers.iter().filter(|f| f.is("From")).count();
        self.entries
            .into_iter()
            .map(|e| match e {
                Entry::Done(r) => r,
                Entry::Check { sig, raw, body } => {
                    let answer = names
                        .iter()
                        .position(|n| *n == key_name(&sig))
                        .and_then(|i| answers.get(i))
                        .cloned()
                        .unwrap_or_else(|| Err("no answer".to_string()));
                    let (bh, len) = &bodies[body];
                    let (status, reason) = judge(
                        &sig,
                        &raw,
                        &self.headers,
                        bh,
                        *len,
                        answer,
                        now,
                        from_fields,
                    );
                    result_of(&sig, status, reason)
                }
            })
            .collect()
    }
}

/// `s._domainkey.d`.
fn key_name(sig: &Signature) -> String {
    format!("{}._domainkey.{}", sig.selector, sig.domain)
}

/// Every name looked up at once (one task each), under one deadline.
/// `Err` holds a temporary failure's text.
async fn lookup_all(resolver: &Arc<Resolver>, names: &[String]) -> Vec<Result<TxtAnswer, String>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let r = Arc::clone(resolver);
        let name = name.clone();
        tasks.spawn(async move { (i, r.txt(&name).await) });
    }
    let mut out: Vec<Result<TxtAnswer, String>> =
        vec![Err("dns lookup did not finish in time".to_string()); names.len()];
    let deadline = tokio::time::Instant::now() + resolver.worst_case();
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok((i, answer)))) => {
                out[i] = answer.map_err(|e: LookupError| e.to_string());
            }
            Ok(Some(Err(_panicked))) => {}
            Ok(None) => break,
            Err(_elapsed) => {
                tasks.abort_all();
                break;
            }
        }
    }
    out
}

/// The base64 `b=` prefix of `header.b`.
fn prefix(b64: &str) -> String {
    b64.chars().take(8).collect()
}

fn result_of(sig: &Signature, status: DkimStatus, reason: Option<String>) -> VerifyResult {
    VerifyResult {
        status,
        domain: Some(sig.domain.clone()),
        selector: Some(sig.selector.clone()),
        algorithm: Some(sig.algorithm.as_str()),
        signature_prefix: Some(prefix(&STANDARD.encode(&sig.signature))),
        reason,
    }
}

/// One signature judged (the table in the module docs).
#[allow(clippy::too_many_arguments)]
fn judge(
    sig: &Signature,
    raw: &[u8],
    headers: &[HeaderField],
    body_hash: &[u8],
    body_length: u64,
    answer: Result<TxtAnswer, String>,
    now: u64,
    from_fields: usize,
) -> (DkimStatus, Option<String>) {
    use DkimStatus::{Fail, Neutral, Pass, PermError, Policy, TempError};
    let why = |s: &str| Some(s.to_string());
    if sig.expiration.is_some_and(|x| x < now) {
        return (Neutral, why("signature expired"));
    }
    if sig.algorithm == SigAlgorithm::RsaSha1 {
        return (Policy, why("rsa-sha1 is not acceptable (RFC 8301)"));
    }
    // §6.1.2: the key.
    let records = match answer {
        Err(e) => return (TempError, Some(e)),
        Ok(TxtAnswer::NxDomain | TxtAnswer::NoData) => {
            return (PermError, why("no key record"));
        }
        Ok(TxtAnswer::Records(r)) => r,
    };
    let mut last_problem = String::from("no usable key record");
    let mut key = None;
    for rec in &records {
        match parse_record(&rec.joined()) {
            Ok(parsed) => {
                key = Some(parsed);
                break;
            }
            Err(e) => last_problem = format!("invalid key record: {e}"),
        }
    }
    let Some(record) = key else {
        return (PermError, Some(last_problem));
    };
    let wants = match sig.algorithm {
        SigAlgorithm::Ed25519Sha256 => Algorithm::Ed25519Sha256,
        _ => Algorithm::RsaSha256,
    };
    if record.key_type != wants {
        return (PermError, why("key type does not match a="));
    }
    if !record.hashes.is_empty() && !record.hashes.iter().any(|h| h == "sha256") {
        return (PermError, why("key h= does not allow sha256"));
    }
    if !record.services.is_empty() && !record.services.iter().any(|s| s == "email" || s == "*") {
        return (PermError, why("key is not for email (s=)"));
    }
    if record.strict {
        let auid_domain = sig
            .auid
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase());
        if auid_domain.as_deref() != Some(sig.domain.as_str()) {
            return (PermError, why("key t=s forbids a subdomain i="));
        }
    }
    let Some(bytes) = &record.public_key else {
        return (PermError, why("key revoked"));
    };
    let public = match wants {
        Algorithm::RsaSha256 => PublicKey::rsa_from_der(bytes),
        Algorithm::Ed25519Sha256 => PublicKey::ed25519_from_bytes(bytes),
    };
    let Some(public) = public else {
        return (PermError, why("key does not decode"));
    };
    if wants == Algorithm::RsaSha256 && public.bits() < MIN_RSA_BITS {
        return (
            Policy,
            Some(format!("key too small ({} bits; RFC 8301)", public.bits())),
        );
    }
    // §6.1.3: the hashes.
    if sig.body_hash != body_hash {
        return (Fail, why("body hash did not verify"));
    }
    let mut data = Vec::with_capacity(1024);
    selected_headers(sig.header_canon, headers, &sig.headers, &mut data);
    signature_field(sig.header_canon, &without_b(raw, sig), &mut data);
    let verified = match wants {
        Algorithm::RsaSha256 => public.verify(&data, &sig.signature),
        Algorithm::Ed25519Sha256 => {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data);
            public.verify(digest.as_ref(), &sig.signature)
        }
    };
    if !verified {
        return (Fail, why("signature did not verify"));
    }
    // Verified; acceptable?
    if let Some(l) = sig.body_length
        && body_length > l
    {
        return (Policy, why("body continues beyond l="));
    }
    let signed_from = sig
        .headers
        .iter()
        .filter(|h| trim_wsp(h.as_bytes()).eq_ignore_ascii_case(b"from"))
        .count();
    if from_fields > signed_from {
        return (Policy, why("a From field is not covered by the signature"));
    }
    (Pass, None)
}

/// Verifies every DKIM signature of a whole message at time `now`.
pub async fn verify(resolver: &Arc<Resolver>, message: &[u8], now: u64) -> Vec<VerifyResult> {
    let (headers, body_at) = split_message(message);
    let mut v = MessageVerifier::new(headers);
    v.write_body(message.get(body_at..).unwrap_or_default());
    v.finish(resolver, now).await
}

/// How long lookups of one message may take, for callers that report it.
pub fn deadline(resolver: &Resolver) -> Duration {
    resolver.worst_case()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::sign::tests::{TEST_ED25519_PKCS8_PEM, TEST_RSA_PKCS8_PEM};
    use crate::dkim::sign::{MessageSigner, SignOptions, Signer};
    use crate::dns::Fixed;
    use crate::keys::{parse_private_key, record_value};

    const NOW: u64 = 1_700_000_000;

    struct Keyed {
        signer: Arc<Signer>,
        record: String,
    }

    fn keyed(pem: &str, selector: &str) -> Keyed {
        let k = parse_private_key(pem.as_bytes(), std::path::Path::new("t")).unwrap();
        let record = record_value(k.algorithm, &k.public, Default::default());
        Keyed {
            signer: Arc::new(Signer::new(
                "example.com",
                selector,
                k.into_signing_key().unwrap(),
            )),
            record,
        }
    }

    fn sign_with(k: &Keyed, msg: &[u8], canon: (Canon, Canon), names: &[&str]) -> Vec<u8> {
        let (h, at) = split_message(msg);
        let mut m = MessageSigner::new(
            vec![Arc::clone(&k.signer)],
            SignOptions {
                header_canon: canon.0,
                body_canon: canon.1,
                expire: None,
            },
            h,
            names.iter().map(|s| s.to_string()).collect(),
        );
        m.write_body(&msg[at..]);
        let sig = m.finish(NOW).unwrap().remove(0);
        let mut out = sig.header_line().into_bytes();
        out.extend_from_slice(msg);
        out
    }

    fn run(table: Fixed, msg: &[u8]) -> Vec<VerifyResult> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = Arc::new(Resolver::fixed(table));
        rt.block_on(verify(&r, msg, NOW))
    }

    fn one(table: Fixed, msg: &[u8]) -> (DkimStatus, String) {
        let r = run(table, msg);
        assert_eq!(r.len(), 1, "{r:?}");
        (r[0].status, r[0].reason.clone().unwrap_or_default())
    }

    const MSG: &[u8] =
        b"From: Joe <joe@example.com>\r\nTo: x@example.net\r\nSubject:  Hi \r\n\r\nHello  world \r\n";

    #[test]
    fn every_canonicalization_passes_for_both_algorithms() {
        for (pem, sel) in [(TEST_RSA_PKCS8_PEM, "r"), (TEST_ED25519_PKCS8_PEM, "e")] {
            let k = keyed(pem, sel);
            let table = Fixed::new().record(&format!("{sel}._domainkey.example.com"), &[&k.record]);
            for canon in [
                (Canon::Simple, Canon::Simple),
                (Canon::Simple, Canon::Relaxed),
                (Canon::Relaxed, Canon::Simple),
                (Canon::Relaxed, Canon::Relaxed),
            ] {
                let signed = sign_with(&k, MSG, canon, &["From", "To", "Subject"]);
                assert_eq!(
                    one(table.clone(), &signed),
                    (DkimStatus::Pass, String::new())
                );
                // One changed body byte fails.
                let changed = String::from_utf8_lossy(&signed).replace("Hello", "Hallo");
                assert_eq!(
                    one(table.clone(), changed.as_bytes()).0,
                    DkimStatus::Fail,
                    "{canon:?}"
                );
            }
        }
    }

    /// A message signed relaxed/relaxed by `k` over `names`, as text.
    fn signed_text(k: &Keyed, names: &[&str]) -> String {
        String::from_utf8(sign_with(k, MSG, (Canon::Relaxed, Canon::Relaxed), names)).unwrap()
    }

    /// Issue 12, defect 1: relaxed body canonicalization ignores
    /// whitespace-only lines at the end (RFC 6376 §3.4.4), signing and
    /// verifying.
    #[test]
    fn defect_01_relaxed_body_ignores_trailing_whitespace_lines() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let table = Fixed::new().record("r._domainkey.example.com", &[&k.record]);
        let msg = b"From: a@example.com\r\n\r\ntext\r\n  \r\n\t\r\n";
        let signed = sign_with(&k, msg, (Canon::Relaxed, Canon::Relaxed), &["From"]);
        // What dkimpy, Mail::DKIM and OpenDKIM hash: "text" CRLF.
        let want = STANDARD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            b"text\r\n",
        ));
        let text = String::from_utf8_lossy(&signed).into_owned();
        assert!(text.contains(&format!("bh={want};")), "{text}");
        assert_eq!(one(table.clone(), &signed).0, DkimStatus::Pass);
        // The same body without those lines has the same body hash.
        let trimmed = text.replace("text\r\n  \r\n\t\r\n", "text\r\n");
        assert_eq!(one(table, trimmed.as_bytes()).0, DkimStatus::Pass);
    }

    /// Issue 12, defect 2: a bare CR inside a body line is hashed, in every
    /// canonicalization.
    #[test]
    fn defect_02_a_bare_cr_is_hashed() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let table = Fixed::new().record("r._domainkey.example.com", &[&k.record]);
        let msg = b"From: a@example.com\r\n\r\na\rb\r\n";
        for body in [Canon::Simple, Canon::Relaxed] {
            let signed = sign_with(&k, msg, (Canon::Relaxed, body), &["From"]);
            assert_eq!(one(table.clone(), &signed).0, DkimStatus::Pass, "{body:?}");
            let without = String::from_utf8_lossy(&signed).replace("a\rb", "ab");
            assert_eq!(
                one(table.clone(), without.as_bytes()),
                (DkimStatus::Fail, "body hash did not verify".into()),
                "{body:?}"
            );
        }
    }

    /// Issue 12, defect 3: whitespace between a field name and its colon
    /// (RFC 5322 §4.5 obsolete syntax), in both header canonicalizations.
    #[test]
    fn defect_03_whitespace_before_the_colon_verifies() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let table = Fixed::new().record("r._domainkey.example.com", &[&k.record]);
        let msg = b"From: a@example.com\r\nSubject : x\r\nTo\t: b@example.net\r\n\r\nbody\r\n";
        for canon in [Canon::Simple, Canon::Relaxed] {
            let signed = sign_with(&k, msg, (canon, Canon::Simple), &["From", "Subject", "To"]);
            assert_eq!(one(table.clone(), &signed).0, DkimStatus::Pass, "{canon:?}");
            // The field is signed, not taken for absent.
            let changed = String::from_utf8_lossy(&signed).replace("Subject : x", "Subject : y");
            assert_eq!(one(table.clone(), changed.as_bytes()).0, DkimStatus::Fail);
        }
    }

    /// Issue 12, defect 4: a signature whose h= lacks From is ignored
    /// (RFC 6376 §6.1.1): never a pass.
    #[test]
    fn defect_04_h_without_from_is_not_a_pass() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let table = Fixed::new().record("r._domainkey.example.com", &[&k.record]);
        let signed = signed_text(&k, &["From", "To"]).replacen("h=To:From", "h=To", 1);
        let (status, reason) = one(table, signed.as_bytes());
        assert_eq!(status, DkimStatus::Neutral, "{reason}");
        assert!(reason.contains("does not include From"), "{reason}");
    }

    /// Issue 12, defect 5: rsa-sha1 is never a pass (RFC 8301 §3.1), and
    /// is refused before the key is looked up.
    #[test]
    fn defect_05_rsa_sha1_is_policy() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let sha1 = signed_text(&k, &["From"]).replacen("a=rsa-sha256", "a=rsa-sha1", 1);
        let (status, reason) = one(Fixed::new(), sha1.as_bytes());
        assert_eq!(status, DkimStatus::Policy);
        assert!(reason.contains("rsa-sha1"), "{reason}");
    }

    /// Issue 12, defect 6: the key record's h= and s= restrict the key
    /// (RFC 6376 §3.6.1).
    #[test]
    fn defect_06_key_h_and_s_restrictions_hold() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let signed = sign_with(&k, MSG, (Canon::Relaxed, Canon::Relaxed), &["From"]);
        let p = k.record.split("p=").nth(1).unwrap().to_string();
        let with = |record: &str| Fixed::new().record("r._domainkey.example.com", &[record]);
        for (record, status, want) in [
            (
                format!("v=DKIM1; h=sha1; k=rsa; p={p}"),
                DkimStatus::PermError,
                "h=",
            ),
            (
                format!("v=DKIM1; k=rsa; s=chat; p={p}"),
                DkimStatus::PermError,
                "not for email",
            ),
            (
                format!("v=DKIM1; s=email:*; h=sha256; p={p}"),
                DkimStatus::Pass,
                "",
            ),
            (
                format!("v=DKIM1; s=*; h=sha1:sha256; p={p}"),
                DkimStatus::Pass,
                "",
            ),
        ] {
            let (got, reason) = one(with(&record), &signed);
            assert_eq!(got, status, "{record}: {reason}");
            assert!(reason.contains(want), "{record}: {reason}");
        }
    }

    /// Issue 12, defect 7: a DKIM-Signature without bh= is reported for
    /// what it is, in the CLI's lines and the milter's
    /// Authentication-Results, never dropped (`dkim=none`).
    #[test]
    fn defect_07_a_signature_without_bh_is_reported() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let table = Fixed::new().record("r._domainkey.example.com", &[&k.record]);
        let signed = signed_text(&k, &["From"]).replacen("bh=", "xh=", 1);
        let results = run(table, signed.as_bytes());
        assert_eq!(results.len(), 1);
        let r = &results[0];
        assert_eq!(r.status, DkimStatus::Neutral);
        assert_eq!(
            r.to_string(),
            "dkim=neutral d=example.com s=r (signature syntax: no bh= tag)"
        );
        let ar = crate::dkim::authentication_results("mx.example.net", &results, None);
        assert!(
            ar.contains("dkim=neutral reason=\"signature syntax: no bh= tag\" header.d=example.com header.s=r"),
            "{ar}"
        );
    }

    /// Issue 12, defect 8: no v=, a tag twice, a q= without dns/txt are
    /// syntax errors (RFC 6376 §3.2, §3.5).
    #[test]
    fn defect_08_lax_syntax_is_refused() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let table = Fixed::new().record("r._domainkey.example.com", &[&k.record]);
        let signed = signed_text(&k, &["From"]);
        for (msg, want) in [
            (signed.replacen("v=1; ", "", 1), "no v= tag"),
            (
                signed.replacen("v=1;", "v=1; d=evil.example;", 1),
                "d= appears twice",
            ),
            (
                signed.replacen("v=1;", "v=1; q=http/well-known;", 1),
                "no known query method",
            ),
        ] {
            let (status, reason) = one(table.clone(), msg.as_bytes());
            assert_eq!(status, DkimStatus::Neutral, "{want}: {reason}");
            assert!(reason.contains(want), "{want}: {reason}");
        }
    }

    /// Issue 12, defect 9: the reason says why: an RSA key below 1024 bits
    /// is "key too small" (RFC 8301 §3.2, checked before the signature),
    /// an i= outside d= is a field that cannot be used, not a failed hash.
    #[test]
    fn defect_09_reasons_say_why() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let signed = signed_text(&k, &["From"]);
        let small = Fixed::new().record("r._domainkey.example.com", &[RSA_512_RECORD]);
        let (status, reason) = one(small, signed.as_bytes());
        assert_eq!(status, DkimStatus::Policy);
        assert_eq!(reason, "key too small (512 bits; RFC 8301)");
        let table = Fixed::new().record("r._domainkey.example.com", &[&k.record]);
        let outside = signed.replacen("v=1;", "v=1; i=joe@example.org;", 1);
        let (status, reason) = one(table, outside.as_bytes());
        assert_eq!(status, DkimStatus::Neutral);
        assert!(reason.contains("is not in d=example.com"), "{reason}");
    }

    /// Issue 12, defect 10: a From added above a message whose signature
    /// does not oversign From (the classic attack) is policy, with a reason.
    #[test]
    fn defect_10_a_from_added_above_is_policy() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let table = Fixed::new().record("r._domainkey.example.com", &[&k.record]);
        let signed = sign_with(&k, MSG, (Canon::Relaxed, Canon::Relaxed), &["From", "To"]);
        let mut forged = b"From: Bank <ceo@bank.example>\r\n".to_vec();
        forged.extend_from_slice(&signed);
        let (status, reason) = one(table.clone(), &forged);
        assert_eq!(status, DkimStatus::Policy, "{reason}");
        assert!(reason.contains("From"), "{reason}");
        // Oversigned From: the same addition breaks the signature instead.
        let over = sign_with(&k, MSG, (Canon::Relaxed, Canon::Relaxed), &["From", "From"]);
        let mut forged = b"From: Bank <ceo@bank.example>\r\n".to_vec();
        forged.extend_from_slice(&over);
        assert_eq!(one(table, &forged).0, DkimStatus::Fail);
    }

    /// A 512-bit RSA public key (`openssl genrsa 512`), for RFC 8301.
    const RSA_512_RECORD: &str = "v=DKIM1; k=rsa; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAK998LS8r+6QygNJgv70tFTU6Hs8fqpMjEbpy/29AMVcV+ohjRelyl+gyuRVKPVqWXI1qaLO5AO2jvaMse2BReECAwEAAQ==";

    /// Other unusable fields: unknown a= and c=, expired, d= not a domain.
    #[test]
    fn other_unusable_fields_are_neutral() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let table = Fixed::new().record("r._domainkey.example.com", &[&k.record]);
        let signed = signed_text(&k, &["From"]);
        for (msg, want) in [
            (
                signed.replacen("a=rsa-sha256", "a=rsa-sha512", 1),
                "unknown algorithm",
            ),
            (
                signed.replacen("c=relaxed/relaxed", "c=fancy/relaxed", 1),
                "unknown canonicalization",
            ),
            (
                signed.replacen("v=1;", "v=1; x=1000000001;", 1),
                "before t=",
            ),
            (
                signed.replacen("d=example.com", "d=example.com(.evil", 1),
                "not a domain name",
            ),
        ] {
            let (status, reason) = one(table.clone(), msg.as_bytes());
            assert_eq!(status, DkimStatus::Neutral, "{want}: {reason}");
            assert!(reason.contains(want), "{want}: {reason}");
        }
    }

    /// The key record's other problems, and the lookup's.
    #[test]
    fn key_records_and_lookups() {
        let k = keyed(TEST_RSA_PKCS8_PEM, "r");
        let signed = sign_with(&k, MSG, (Canon::Relaxed, Canon::Relaxed), &["From"]);
        let with = |record: &str| Fixed::new().record("r._domainkey.example.com", &[record]);
        let p = k.record.split("p=").nth(1).unwrap().to_string();
        for (record, want) in [
            ("v=DKIM1; k=rsa; p=".to_string(), "revoked"),
            (format!("v=DKIM1; k=ed25519; p={p}"), "k=ed25519"),
            (
                "v=DKIM1; k=rsa; p=AAAA".to_string(),
                "not a valid k=rsa key",
            ),
        ] {
            let (got, reason) = one(with(&record), &signed);
            assert_eq!(got, DkimStatus::PermError, "{record}: {reason}");
            assert!(reason.contains(want), "{record}: {reason}");
        }
        assert_eq!(
            one(Fixed::new(), &signed),
            (DkimStatus::PermError, "no key record".into())
        );
        let failing = Fixed::new().fail(
            "r._domainkey.example.com",
            crate::dns::LookupErrorKind::Timeout,
        );
        assert_eq!(one(failing, &signed).0, DkimStatus::TempError);
    }

    #[test]
    fn too_many_signatures_are_not_checked() {
        let k = keyed(TEST_ED25519_PKCS8_PEM, "e");
        let table = Fixed::new().record("e._domainkey.example.com", &[&k.record]);
        let mut msg = MSG.to_vec();
        for _ in 0..MAX_SIGNATURES + 2 {
            msg = sign_with(&k, &msg, (Canon::Relaxed, Canon::Relaxed), &["From"]);
        }
        let r = run(table, &msg);
        assert_eq!(r.len(), MAX_SIGNATURES + 2);
        assert!(
            r[..MAX_SIGNATURES]
                .iter()
                .all(|r| r.status == DkimStatus::Pass)
        );
        assert!(
            r[MAX_SIGNATURES..]
                .iter()
                .all(|r| r.status == DkimStatus::Neutral)
        );
    }
}
