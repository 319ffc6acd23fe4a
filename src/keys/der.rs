//! A minimal DER reader and writer for the few key structures we handle.
//!
//! Why not let aws-lc parse everything? aws-lc refuses RSA keys below 2048
//! bits, but dkimctl must still *report* on such keys (a published 1024-bit
//! key, an old 1024-bit private key), and the DNS record parser is fuzzed,
//! so the code that looks at untrusted bytes should be small, safe Rust
//! that returns `None` instead of panicking. Every read here is
//! bounds-checked through `slice::get`.
//!
//! Structures (all SEQUENCEs):
//!
//! ```text
//! SubjectPublicKeyInfo ::= { AlgorithmIdentifier, BIT STRING subjectPublicKey }
//! AlgorithmIdentifier  ::= { OBJECT IDENTIFIER, parameters ANY OPTIONAL }
//! RSAPublicKey (PKCS#1)::= { INTEGER n, INTEGER e }
//! RSAPrivateKey        ::= { INTEGER version, INTEGER n, INTEGER e, d, p, q, ... }
//! PrivateKeyInfo (PKCS#8) ::= { INTEGER version, AlgorithmIdentifier,
//!                               OCTET STRING privateKey, [0] attrs OPT, [1] pub OPT }
//! ```

/// DER tag of INTEGER.
pub(crate) const INTEGER: u8 = 0x02;
/// DER tag of BIT STRING.
pub(crate) const BIT_STRING: u8 = 0x03;
/// DER tag of OCTET STRING.
pub(crate) const OCTET_STRING: u8 = 0x04;
/// DER tag of NULL.
pub(crate) const NULL: u8 = 0x05;
/// DER tag of OBJECT IDENTIFIER.
pub(crate) const OID: u8 = 0x06;
/// DER tag of SEQUENCE (constructed).
pub(crate) const SEQUENCE: u8 = 0x30;

/// Contents of the rsaEncryption OID, 1.2.840.113549.1.1.1.
pub(crate) const OID_RSA_ENCRYPTION: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// Contents of the Ed25519 OID, 1.3.101.112 (RFC 8410).
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// The fixed 16-byte head of an Ed25519 PKCS#8 v1 key (RFC 8410 §7): a
/// 46-byte SEQUENCE holding version 0, the Ed25519 AlgorithmIdentifier and
/// an OCTET STRING that wraps the 32-byte seed in a second OCTET STRING.
/// This v1 form (no embedded public key) is what `openssl genpkey`
/// writes and what every OpenSSL 1.1.1/3.x reads.
pub(crate) const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A cursor over a sequence of DER elements.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// True when every element has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The tag of the next element, if any.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads one element: its tag and contents. Only single-byte tags and
    /// definite lengths of up to four bytes are accepted.
    pub(crate) fn read_any(&mut self) -> Option<(u8, &'a [u8])> {
        let tag = *self.rest.first()?;
        if tag & 0x1f == 0x1f {
            return None; // multi-byte tag: never used by key structures
        }
        let first = *self.rest.get(1)?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2usize)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None; // indefinite length (BER) or absurdly long
            }
            let mut len = 0usize;
            for b in self.rest.get(2..2 + n)? {
                len = len.checked_mul(256)?.checked_add(usize::from(*b))?;
            }
            (len, 2 + n)
        };
        let end = header.checked_add(len)?;
        let contents = self.rest.get(header..end)?;
        self.rest = self.rest.get(end..)?;
        Some((tag, contents))
    }

    /// Reads one element that must carry `tag`; returns its contents.
    pub(crate) fn read(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.read_any()? {
            (t, contents) if t == tag => Some(contents),
            _ => None,
        }
    }
}

/// The whole of `bytes` must be exactly one element with `tag`.
pub(crate) fn single(bytes: &[u8], tag: u8) -> Option<&[u8]> {
    let mut r = Reader::new(bytes);
    let contents = r.read(tag)?;
    r.is_empty().then_some(contents)
}

/// An INTEGER's contents without leading zero bytes (the sign padding).
/// Negative integers are refused.
pub(crate) fn unsigned(int: &[u8]) -> Option<&[u8]> {
    if int.first()? & 0x80 != 0 {
        return None;
    }
    let start = int.iter().position(|&b| b != 0).unwrap_or(int.len());
    int.get(start..)
}

/// Bit length of a big-endian unsigned integer without leading zeros.
pub(crate) fn bit_length(magnitude: &[u8]) -> u32 {
    match magnitude.first() {
        None => 0,
        Some(&top) => {
            let bytes = u32::try_from(magnitude.len()).unwrap_or(u32::MAX / 8);
            (bytes - 1) * 8 + (8 - top.leading_zeros())
        }
    }
}

/// The public half of an RSA key: modulus and exponent, both without
/// leading zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RsaPublic<'a> {
    /// Modulus `n`.
    pub n: &'a [u8],
    /// Public exponent `e`.
    pub e: &'a [u8],
}

impl RsaPublic<'_> {
    /// Modulus size in bits.
    pub(crate) fn bits(&self) -> u32 {
        bit_length(self.n)
    }

    /// The SubjectPublicKeyInfo DER, exactly as OpenSSL writes it
    /// (`openssl pkey -pubout -outform DER`): rsaEncryption with NULL
    /// parameters, and the PKCS#1 RSAPublicKey in the BIT STRING.
    pub(crate) fn to_spki(self) -> Vec<u8> {
        let mut rsa_public = Vec::new();
        push_uint(&mut rsa_public, self.n);
        push_uint(&mut rsa_public, self.e);
        let rsa_public = tlv(SEQUENCE, &rsa_public);

        let mut alg = tlv(OID, OID_RSA_ENCRYPTION);
        alg.extend_from_slice(&tlv(NULL, &[]));
        let alg = tlv(SEQUENCE, &alg);

        let mut bits = Vec::with_capacity(rsa_public.len() + 1);
        bits.push(0); // no unused bits
        bits.extend_from_slice(&rsa_public);

        let mut spki = alg;
        spki.extend_from_slice(&tlv(BIT_STRING, &bits));
        tlv(SEQUENCE, &spki)
    }
}

/// Parses a PKCS#1 RSAPublicKey (`SEQUENCE { n, e }`), the whole input.
pub(crate) fn rsa_public_pkcs1(der: &[u8]) -> Option<RsaPublic<'_>> {
    let mut seq = Reader::new(single(der, SEQUENCE)?);
    let n = unsigned(seq.read(INTEGER)?)?;
    let e = unsigned(seq.read(INTEGER)?)?;
    (seq.is_empty() && !n.is_empty() && !e.is_empty()).then_some(RsaPublic { n, e })
}

/// Parses an RSA SubjectPublicKeyInfo, the whole input.
pub(crate) fn rsa_public_spki(der: &[u8]) -> Option<RsaPublic<'_>> {
    let mut spki = Reader::new(single(der, SEQUENCE)?);
    let mut alg = Reader::new(spki.read(SEQUENCE)?);
    if alg.read(OID)? != OID_RSA_ENCRYPTION {
        return None;
    }
    // Parameters must be NULL or absent (RFC 3279 §2.3.1 says NULL; some
    // encoders omit them).
    if !alg.is_empty() {
        let params = alg.read(NULL)?;
        if !params.is_empty() || !alg.is_empty() {
            return None;
        }
    }
    let bits = spki.read(BIT_STRING)?;
    if !spki.is_empty() {
        return None;
    }
    let (&unused, key) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    rsa_public_pkcs1(key)
}

/// Parses either form of RSA public key: SubjectPublicKeyInfo (what DKIM
/// records publish) or a bare PKCS#1 RSAPublicKey (what a few old
/// generators published).
pub(crate) fn rsa_public_any(der: &[u8]) -> Option<RsaPublic<'_>> {
    rsa_public_spki(der).or_else(|| rsa_public_pkcs1(der))
}

/// Reads `n` and `e` out of a PKCS#1 RSAPrivateKey (the whole input).
pub(crate) fn rsa_private_pkcs1(der: &[u8]) -> Option<RsaPublic<'_>> {
    let mut seq = Reader::new(single(der, SEQUENCE)?);
    let version = seq.read(INTEGER)?;
    if version != [0] && version != [1] {
        return None; // 0: two-prime, 1: multi-prime
    }
    let n = unsigned(seq.read(INTEGER)?)?;
    let e = unsigned(seq.read(INTEGER)?)?;
    // d, p, q, dP, dQ, qInv must follow; we only check that something does.
    seq.peek_tag()?;
    (!n.is_empty() && !e.is_empty()).then_some(RsaPublic { n, e })
}

/// The parts of a PKCS#8 PrivateKeyInfo we use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pkcs8<'a> {
    /// Contents of the algorithm OID.
    pub algorithm: &'a [u8],
    /// Contents of the privateKey OCTET STRING (algorithm specific).
    pub private_key: &'a [u8],
}

/// Parses a PKCS#8 PrivateKeyInfo (v1) or OneAsymmetricKey (v2), the whole
/// input. Attributes and an embedded public key are skipped.
pub(crate) fn pkcs8(der: &[u8]) -> Option<Pkcs8<'_>> {
    let mut seq = Reader::new(single(der, SEQUENCE)?);
    let version = seq.read(INTEGER)?;
    if version != [0] && version != [1] {
        return None;
    }
    let mut alg = Reader::new(seq.read(SEQUENCE)?);
    let algorithm = alg.read(OID)?;
    let private_key = seq.read(OCTET_STRING)?;
    Some(Pkcs8 {
        algorithm,
        private_key,
    })
}

/// The 32-byte seed inside an Ed25519 PKCS#8 privateKey field
/// (`CurvePrivateKey ::= OCTET STRING`).
pub(crate) fn ed25519_seed(private_key: &[u8]) -> Option<&[u8]> {
    let seed = single(private_key, OCTET_STRING)?;
    (seed.len() == 32).then_some(seed)
}

/// Dotted text of an OID's contents, for error messages (`1.2.840.10045.2.1`).
pub(crate) fn oid_text(contents: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in contents {
        value = match value.checked_mul(128) {
            Some(v) => v | u64::from(b & 0x7f),
            None => return "(unreadable OID)".to_string(),
        };
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if arcs.is_empty() || contents.last().is_some_and(|b| b & 0x80 != 0) {
        return "(unreadable OID)".to_string();
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Appends an unsigned INTEGER, adding the zero byte DER needs when the top
/// bit is set.
fn push_uint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let mut contents = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|b| b & 0x80 != 0) {
        contents.push(0);
    }
    contents.extend_from_slice(magnitude);
    out.extend_from_slice(&tlv(INTEGER, &contents));
}

/// One element: tag, definite length, contents.
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = (len as u64).to_be_bytes();
        let skip = be.iter().position(|&b| b != 0).unwrap_or(be.len() - 1);
        let body = &be[skip..];
        out.push(0x80 | body.len() as u8);
        out.extend_from_slice(body);
    }
    out.extend_from_slice(contents);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(tlv(OCTET_STRING, &[1, 2]), [4, 2, 1, 2]);
        let long = vec![7u8; 300];
        let enc = tlv(OCTET_STRING, &long);
        assert_eq!(&enc[..4], &[4, 0x82, 0x01, 0x2c]);
        assert_eq!(single(&enc, OCTET_STRING), Some(&long[..]));
        // Truncated, indefinite, too long: refused, not panicking.
        assert_eq!(Reader::new(&enc[..100]).read_any(), None);
        assert_eq!(Reader::new(&[0x30, 0x80, 0, 0]).read_any(), None);
        assert_eq!(Reader::new(&[0x30, 0x85, 1, 1, 1, 1, 1]).read_any(), None);
        assert_eq!(
            Reader::new(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).read_any(),
            None
        );
        assert_eq!(Reader::new(&[0x1f, 0x01, 0x00]).read_any(), None);
        assert_eq!(Reader::new(&[]).read_any(), None);
        assert_eq!(Reader::new(&[0x30]).read_any(), None);
    }

    #[test]
    fn integers() {
        assert_eq!(unsigned(&[0, 0x80, 1]), Some(&[0x80, 1][..]));
        assert_eq!(unsigned(&[0x80]), None);
        assert_eq!(unsigned(&[]), None);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[]), 0);
        let mut out = Vec::new();
        push_uint(&mut out, &[0x80]);
        assert_eq!(out, [2, 2, 0, 0x80]);
    }

    #[test]
    fn spki_round_trip() {
        let n = [0xc0u8; 128];
        let e = [1u8, 0, 1];
        let key = RsaPublic { n: &n, e: &e };
        let spki = key.to_spki();
        assert_eq!(rsa_public_spki(&spki), Some(key));
        assert_eq!(rsa_public_any(&spki), Some(key));
        assert_eq!(key.bits(), 1024);
        // Trailing garbage is refused.
        let mut bad = spki.clone();
        bad.push(0);
        assert_eq!(rsa_public_any(&bad), None);
        // Every truncation is refused without a panic.
        for cut in 0..spki.len() {
            assert_eq!(rsa_public_any(&spki[..cut]), None);
        }
    }

    #[test]
    fn oids() {
        assert_eq!(oid_text(OID_RSA_ENCRYPTION), "1.2.840.113549.1.1.1");
        assert_eq!(oid_text(OID_ED25519), "1.3.101.112");
        assert_eq!(oid_text(&[0x2a, 0x86]), "(unreadable OID)");
        assert_eq!(oid_text(&[]), "(unreadable OID)");
    }
}
