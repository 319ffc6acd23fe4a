//! [`PublicKey`]: the public half of a DKIM key, in the form its DNS record
//! publishes.

use std::fmt;

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::Algorithm;
use super::der;

/// The public half of a DKIM key.
///
/// The two variants hold exactly what the `p=` tag of the DNS record
/// publishes, which differs between the algorithms:
///
/// - RSA (RFC 6376 §3.6.1): the DER `SubjectPublicKeyInfo`, as
///   `opendkim-genkey` and `openssl rsa -pubout` produce it.
/// - Ed25519 (RFC 8463 §4.2): the raw 32-byte public key, *not* wrapped in
///   a SubjectPublicKeyInfo. Publishing the 44-byte SPKI form is a common
///   mistake that makes every ed25519 signature fail.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// An RSA key as a DER SubjectPublicKeyInfo (normalised: rsaEncryption
    /// with NULL parameters, minimal integers).
    Rsa(Vec<u8>),
    /// An Ed25519 key, the raw 32 bytes.
    Ed25519([u8; 32]),
}

impl PublicKey {
    /// An RSA public key from DER: a SubjectPublicKeyInfo or a bare PKCS#1
    /// RSAPublicKey. The result is always the normalised SPKI. `None` when
    /// the bytes are neither.
    pub fn rsa_from_der(der: &[u8]) -> Option<PublicKey> {
        der::rsa_public_any(der).map(|k| PublicKey::Rsa(k.to_spki()))
    }

    /// An Ed25519 public key from its raw 32 bytes.
    pub fn ed25519_from_bytes(raw: &[u8]) -> Option<PublicKey> {
        raw.try_into().ok().map(PublicKey::Ed25519)
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Rsa(_) => Algorithm::RsaSha256,
            PublicKey::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }

    /// Key size in bits: the RSA modulus size, or 256 for Ed25519.
    pub fn bits(&self) -> u32 {
        match self {
            PublicKey::Rsa(spki) => super::rsa_bits_of_spki(spki).unwrap_or(0),
            PublicKey::Ed25519(_) => 256,
        }
    }

    /// The bytes the `p=` tag publishes (before base64).
    pub fn record_bytes(&self) -> &[u8] {
        match self {
            PublicKey::Rsa(spki) => spki,
            PublicKey::Ed25519(raw) => raw,
        }
    }

    /// The `p=` value: base64 of [`PublicKey::record_bytes`].
    pub fn record_base64(&self) -> String {
        STANDARD.encode(self.record_bytes())
    }

    /// Checks a raw signature made with the private half: RSASSA-PKCS1-v1_5
    /// with SHA-256 over `message` for RSA (1024 to 8192 bits), plain
    /// Ed25519 over `message` for Ed25519. (DKIM's `ed25519-sha256` signs
    /// the SHA-256 digest of the header data, so pass that digest.)
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Rsa(spki) => UnparsedPublicKey::new(
                &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                spki,
            )
            .verify(message, sig)
            .is_ok(),
            PublicKey::Ed25519(raw) => UnparsedPublicKey::new(&signature::ED25519, raw)
                .verify(message, sig)
                .is_ok(),
        }
    }
}

impl fmt::Debug for PublicKey {
    /// Public data, but long: shows the algorithm, the size and the start
    /// of the `p=` value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.record_base64();
        let head: String = p.chars().take(24).collect();
        write!(
            f,
            "PublicKey({}, {} bits, p={head}...)",
            self.algorithm().key_type(),
            self.bits()
        )
    }
}
