//! Key generation with aws-lc-rs, written out the way `opendkim-genkey`
//! writes keys so that OpenDKIM (and OpenSSL) read them.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _, RsaKeyPair};

use super::Algorithm;
use super::der;
use super::pem;
use super::public::PublicKey;
use super::secret::Secret;

/// RSA size used when none is configured.
pub const DEFAULT_RSA_BITS: u32 = 2048;

/// RSA sizes [`generate`] can produce. aws-lc-rs generates only these
/// (and 8192, which DNS and many verifiers handle badly); it cannot make
/// 1024-bit keys, which RFC 8301 in any case forbids signers to use.
pub const GENERATED_RSA_BITS: [u32; 3] = [2048, 3072, 4096];

/// A freshly generated key.
///
/// `Debug` shows the private key as `<secret>`.
#[derive(Debug)]
pub struct KeyPair {
    /// The algorithm the key signs with.
    pub algorithm: Algorithm,
    /// RSA modulus size, or 256 for Ed25519.
    pub bits: u32,
    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, 64
    /// characters a line), ready for [`crate::apply::keys::write_key`].
    pub private_pem: Secret,
    /// The public half, for the DNS record.
    pub public: PublicKey,
}

/// Why a key could not be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerateError {
    /// An RSA size other than 2048, 3072 or 4096.
    UnsupportedRsaBits(u32),
    /// The crypto library failed (entropy, internal error).
    Crypto(&'static str),
}

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenerateError::UnsupportedRsaBits(bits) => write!(
                f,
                "cannot generate a {bits}-bit RSA key: supported sizes are 2048, 3072 and 4096 \
                 (2048 is the usual choice; keys below 2048 bits are weak and cannot be \
                 generated here)"
            ),
            GenerateError::Crypto(what) => write!(f, "key generation failed: {what}"),
        }
    }
}

impl std::error::Error for GenerateError {}

/// Generates a key for `algorithm`; `rsa_bits` is used for RSA only.
pub fn generate(algorithm: Algorithm, rsa_bits: u32) -> Result<KeyPair, GenerateError> {
    match algorithm {
        Algorithm::RsaSha256 => generate_rsa(rsa_bits),
        Algorithm::Ed25519Sha256 => generate_ed25519(),
    }
}

/// Generates an RSA key of 2048, 3072 or 4096 bits (public exponent 65537).
pub fn generate_rsa(bits: u32) -> Result<KeyPair, GenerateError> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        other => return Err(GenerateError::UnsupportedRsaBits(other)),
    };
    let pair =
        RsaKeyPair::generate(size).map_err(|_| GenerateError::Crypto("RSA key generation"))?;
    // aws-lc writes PKCS#8 v1 PrivateKeyInfo with rsaEncryption, the same
    // bytes `openssl genpkey -algorithm RSA` writes. The DER buffer is
    // zeroed by aws-lc when dropped.
    let pkcs8 = pair
        .as_der()
        .map_err(|_| GenerateError::Crypto("encoding the RSA private key"))?;
    // The SPKI comes from our own encoder (the same one the loader uses),
    // fed with n and e read back out of the PKCS#8, so generated and loaded
    // keys compare equal byte for byte.
    let public = der::pkcs8(pkcs8.as_ref())
        .filter(|p| p.algorithm == der::OID_RSA_ENCRYPTION)
        .and_then(|p| der::rsa_private_pkcs1(p.private_key))
        .map(|k| PublicKey::Rsa(k.to_spki()))
        .ok_or(GenerateError::Crypto("reading back the RSA key"))?;
    // Cross-check against the library's own public key encoding.
    let library = pair
        .public_key()
        .as_der()
        .map_err(|_| GenerateError::Crypto("encoding the RSA public key"))?;
    if library.as_ref() != public.record_bytes() {
        return Err(GenerateError::Crypto("RSA public key encodings disagree"));
    }
    Ok(KeyPair {
        algorithm: Algorithm::RsaSha256,
        bits: public.bits(),
        private_pem: pem::encode(pem::PKCS8_LABEL, pkcs8.as_ref()),
        public,
    })
}

/// Generates an Ed25519 key.
///
/// The private key is written as PKCS#8 *v1* (RFC 8410 §7: version 0, no
/// embedded public key), the 48-byte form `openssl genpkey -algorithm
/// ed25519` writes. The v2 form (with the public key) is valid too, but
/// some OpenSSL 1.1 builds reject it, and OpenDKIM reads keys through
/// OpenSSL.
pub fn generate_ed25519() -> Result<KeyPair, GenerateError> {
    let pair =
        Ed25519KeyPair::generate().map_err(|_| GenerateError::Crypto("Ed25519 key generation"))?;
    let doc = pair
        .to_pkcs8v1()
        .map_err(|_| GenerateError::Crypto("encoding the Ed25519 private key"))?;
    let bytes = doc.as_ref();
    // aws-lc gives exactly prefix + seed today; if a future version
    // encodes differently, rebuild the canonical form from the seed.
    let pkcs8 = if bytes.len() == 48 && bytes.starts_with(&der::ED25519_PKCS8_V1_PREFIX) {
        Secret::new(bytes.to_vec())
    } else {
        let seed = der::pkcs8(bytes)
            .filter(|p| p.algorithm == der::OID_ED25519)
            .and_then(|p| der::ed25519_seed(p.private_key))
            .ok_or(GenerateError::Crypto("reading back the Ed25519 key"))?;
        let mut canonical = Secret::with_capacity(48);
        canonical.extend_from_slice(&der::ED25519_PKCS8_V1_PREFIX);
        canonical.extend_from_slice(seed);
        canonical
    };
    let public = PublicKey::ed25519_from_bytes(pair.public_key().as_ref()).ok_or(
        GenerateError::Crypto("Ed25519 public key has the wrong length"),
    )?;
    Ok(KeyPair {
        algorithm: Algorithm::Ed25519Sha256,
        bits: 256,
        private_pem: pem::encode(pem::PKCS8_LABEL, pkcs8.expose()),
        public,
    })
}
