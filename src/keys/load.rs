//! Loading private key files: PKCS#8 PEM (RSA, Ed25519) and PKCS#1 PEM
//! (`BEGIN RSA PRIVATE KEY`, older opendkim-genkey output).

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};

use super::Algorithm;
use super::der;
use super::pem::{self, PemError};
use super::public::PublicKey;
use super::secret::Secret;

/// Largest file accepted as a key. An 8192-bit RSA key in PEM is about
/// 6.5 KiB; anything much larger is not a key file.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// How the private key was encoded in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateKeyFormat {
    /// PKCS#8 PrivateKeyInfo, `-----BEGIN PRIVATE KEY-----`.
    Pkcs8,
    /// PKCS#1 RSAPrivateKey, `-----BEGIN RSA PRIVATE KEY-----`.
    Pkcs1,
}

/// A private key read from a file, with what callers need to judge it.
///
/// `Debug` never shows key material.
pub struct LoadedKey {
    /// The file it came from.
    pub path: PathBuf,
    /// The algorithm the key signs with.
    pub algorithm: Algorithm,
    /// RSA modulus size in bits; 256 for Ed25519. Judging the size (below
    /// 1024 is unusable, below 2048 weak) is the caller's business.
    pub bits: u32,
    /// How the file encoded the key.
    pub format: PrivateKeyFormat,
    /// The public half, as the DNS record should publish it.
    pub public: PublicKey,
    /// The DER of the private key, kept to build further signing keys.
    der: Secret,
    /// The signing key, or why the crypto library refused the key.
    signing: Result<DkimKey, String>,
}

impl LoadedKey {
    /// The mail-auth signing key. Fails (naming the file) when the crypto
    /// library does not sign with this key: aws-lc signs only with RSA keys
    /// of 2048 to 8192 bits, so an old 1024-bit key loads (its size and
    /// public key can be reported) but cannot sign.
    pub fn signing_key(&self) -> Result<&DkimKey, LoadError> {
        self.signing
            .as_ref()
            .map_err(|reason| self.cannot_sign(reason))
    }

    /// Like [`LoadedKey::signing_key`], consuming the loaded key.
    pub fn into_signing_key(self) -> Result<DkimKey, LoadError> {
        match self.signing {
            Ok(key) => Ok(key),
            Err(ref reason) => Err(self.cannot_sign(reason)),
        }
    }

    /// Builds another, independent signing key from the same private key
    /// (`DkimKey` is not `Clone`).
    pub fn new_signing_key(&self) -> Result<DkimKey, LoadError> {
        if let Err(reason) = &self.signing {
            return Err(self.cannot_sign(reason));
        }
        build_signing_key(self.algorithm, self.format, self.der.expose()).map_err(|reason| {
            LoadError {
                path: self.path.clone(),
                kind: LoadErrorKind::Rejected(reason),
            }
        })
    }

    fn cannot_sign(&self, reason: &str) -> LoadError {
        LoadError {
            path: self.path.clone(),
            kind: LoadErrorKind::CannotSign {
                bits: self.bits,
                reason: reason.to_string(),
            },
        }
    }
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("path", &self.path)
            .field("algorithm", &self.algorithm)
            .field("bits", &self.bits)
            .field("format", &self.format)
            .field("public", &self.public)
            .field("private", &self.der)
            .field(
                "signing",
                &match &self.signing {
                    Ok(_) => "usable".to_string(),
                    Err(reason) => format!("unusable: {reason}"),
                },
            )
            .finish()
    }
}

/// A key file that could not be loaded: the file and what is wrong.
#[derive(Debug)]
pub struct LoadError {
    /// The key file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub kind: LoadErrorKind,
}

/// What is wrong with a key file. No variant carries key bytes.
#[derive(Debug)]
pub enum LoadErrorKind {
    /// The file could not be read.
    Read(io::Error),
    /// The file is larger than any key file.
    TooLarge,
    /// No PEM block at all.
    NotPem,
    /// PEM, but no private key (the first label found, e.g. `PUBLIC KEY`).
    NoPrivateKey(String),
    /// A private key type dkimctl does not read (`EC PRIVATE KEY`,
    /// `OPENSSH PRIVATE KEY`, ...).
    UnsupportedPem(String),
    /// The key is encrypted with a passphrase.
    Encrypted,
    /// A BEGIN line without its END line (e.g. a truncated file).
    Unterminated(String),
    /// The PEM body is not valid base64.
    BadBase64,
    /// The DER inside the PEM is not the structure its label promises.
    Malformed(&'static str),
    /// A PKCS#8 key of an algorithm DKIM does not use (EC, X25519, ...):
    /// a description with the OID.
    UnsupportedAlgorithm(String),
    /// The crypto library rejected the key (inconsistent components, ...).
    Rejected(String),
    /// The key loaded, but the crypto library cannot sign with it.
    CannotSign {
        /// Key size.
        bits: u32,
        /// The library's reason.
        reason: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            LoadErrorKind::Read(_) => write!(f, "cannot read key file {path}"),
            LoadErrorKind::TooLarge => write!(
                f,
                "{path}: not a private key file (larger than {MAX_KEY_FILE} bytes)"
            ),
            LoadErrorKind::NotPem => write!(
                f,
                "{path}: not a PEM private key (no \"-----BEGIN ...-----\" line)"
            ),
            LoadErrorKind::NoPrivateKey(label) => write!(
                f,
                "{path}: not a PEM private key (found a \"{label}\" block)"
            ),
            LoadErrorKind::UnsupportedPem(label) => write!(
                f,
                "{path}: unsupported key format \"{label}\" (DKIM keys are RSA or Ed25519 \
                 in PKCS#8 \"PRIVATE KEY\" or PKCS#1 \"RSA PRIVATE KEY\" PEM)"
            ),
            LoadErrorKind::Encrypted => write!(
                f,
                "{path}: the private key is encrypted with a passphrase; the milter needs \
                 an unencrypted key"
            ),
            LoadErrorKind::Unterminated(label) => write!(
                f,
                "{path}: PEM block \"{label}\" has no END line (truncated file?)"
            ),
            LoadErrorKind::BadBase64 => {
                write!(
                    f,
                    "{path}: the PEM body is not valid base64 (corrupted file?)"
                )
            }
            LoadErrorKind::Malformed(what) => write!(f, "{path}: {what}"),
            LoadErrorKind::UnsupportedAlgorithm(what) => write!(
                f,
                "{path}: {what} keys cannot sign DKIM mail (RSA or Ed25519 only)"
            ),
            LoadErrorKind::Rejected(reason) => {
                write!(f, "{path}: the private key is invalid ({reason})")
            }
            LoadErrorKind::CannotSign { bits, reason } => {
                write!(f, "{path}: cannot sign with this {bits}-bit key ({reason})")
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            LoadErrorKind::Read(e) => Some(e),
            _ => None,
        }
    }
}

impl From<PemError> for LoadErrorKind {
    fn from(e: PemError) -> LoadErrorKind {
        match e {
            PemError::NotPem => LoadErrorKind::NotPem,
            PemError::NoPrivateKey(l) => LoadErrorKind::NoPrivateKey(l),
            PemError::Unsupported(l) => LoadErrorKind::UnsupportedPem(l),
            PemError::Encrypted => LoadErrorKind::Encrypted,
            PemError::Unterminated(l) => LoadErrorKind::Unterminated(l),
            PemError::BadBase64 => LoadErrorKind::BadBase64,
        }
    }
}

/// Reads and parses a private key file.
pub fn load_private_key(path: &Path) -> Result<LoadedKey, LoadError> {
    let err = |kind| LoadError {
        path: path.to_path_buf(),
        kind,
    };
    let file = std::fs::File::open(path).map_err(|e| err(LoadErrorKind::Read(e)))?;
    let size = file
        .metadata()
        .map_err(|e| err(LoadErrorKind::Read(e)))?
        .len();
    if size > MAX_KEY_FILE {
        return Err(err(LoadErrorKind::TooLarge));
    }
    // Room for the whole file (+1 to see EOF) so the buffer never grows
    // and leaves an unzeroed copy behind; `take` bounds a file that grows
    // while we read it.
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0) + 1);
    let read = file.take(MAX_KEY_FILE + 1).read_to_end(&mut buf);
    let text = Secret::new(buf);
    read.map_err(|e| err(LoadErrorKind::Read(e)))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(err(LoadErrorKind::TooLarge));
    }
    parse_private_key(text.expose(), path)
}

/// Parses a private key from PEM text; `path` names it in errors.
pub fn parse_private_key(pem_text: &[u8], path: &Path) -> Result<LoadedKey, LoadError> {
    let err = |kind| LoadError {
        path: path.to_path_buf(),
        kind,
    };
    let block = pem::decode_private_key(pem_text).map_err(|e| err(e.into()))?;
    let der = block.der;
    let (format, algorithm) = if block.label == pem::PKCS1_LABEL {
        (PrivateKeyFormat::Pkcs1, Algorithm::RsaSha256)
    } else {
        let info = der::pkcs8(der.expose()).ok_or(err(LoadErrorKind::Malformed(
            "not a PKCS#8 private key (the DER inside the PEM is damaged)",
        )))?;
        let algorithm = if info.algorithm == der::OID_RSA_ENCRYPTION {
            Algorithm::RsaSha256
        } else if info.algorithm == der::OID_ED25519 {
            Algorithm::Ed25519Sha256
        } else {
            return Err(err(LoadErrorKind::UnsupportedAlgorithm(algorithm_name(
                info.algorithm,
            ))));
        };
        (PrivateKeyFormat::Pkcs8, algorithm)
    };

    let (bits, public) = match algorithm {
        Algorithm::RsaSha256 => {
            let rsa = match format {
                PrivateKeyFormat::Pkcs1 => der::rsa_private_pkcs1(der.expose()),
                PrivateKeyFormat::Pkcs8 => der::pkcs8(der.expose())
                    .and_then(|info| der::rsa_private_pkcs1(info.private_key)),
            }
            .ok_or(err(LoadErrorKind::Malformed(
                "not a valid RSA private key (the DER inside the PEM is damaged)",
            )))?;
            (rsa.bits(), PublicKey::Rsa(rsa.to_spki()))
        }
        Algorithm::Ed25519Sha256 => {
            // Shape check first, for a clear message; the public key is
            // derived from the seed by aws-lc below.
            der::pkcs8(der.expose())
                .and_then(|info| der::ed25519_seed(info.private_key))
                .ok_or(err(LoadErrorKind::Malformed(
                    "not a valid Ed25519 private key (expected a 32-byte seed)",
                )))?;
            (256, PublicKey::Ed25519([0; 32])) // filled in below
        }
    };

    let signing = build_signing_key(algorithm, format, der.expose());
    let public = match (&signing, public) {
        (Ok(DkimKey::Ed25519(key)), _) => {
            PublicKey::ed25519_from_bytes(&key.public_key()).ok_or(err(LoadErrorKind::Rejected(
                "Ed25519 public key has the wrong length".into(),
            )))?
        }
        (Ok(DkimKey::Rsa(key)), public) => {
            // The library's view of the key must match the one we parsed.
            let same = der::rsa_public_pkcs1(&key.public_key())
                .map(|k| k.to_spki())
                .is_some_and(|spki| spki == public.record_bytes());
            if !same {
                return Err(err(LoadErrorKind::Malformed(
                    "RSA private key is inconsistent (public parts disagree)",
                )));
            }
            public
        }
        (Err(reason), public) => {
            if algorithm == Algorithm::Ed25519Sha256 || (2048..=8192).contains(&bits) {
                // A key the library should take but refuses is broken.
                return Err(err(LoadErrorKind::Rejected(reason.clone())));
            }
            public
        }
    };
    let signing = signing.map_err(|_| {
        format!("the crypto library signs only with RSA keys of 2048 to 8192 bits, not {bits}")
    });
    Ok(LoadedKey {
        path: path.to_path_buf(),
        algorithm,
        bits,
        format,
        public,
        der,
        signing,
    })
}

/// Builds a mail-auth signing key from DER; on failure, the library's
/// reason (a fixed description such as `InconsistentComponents`, never key
/// bytes).
fn build_signing_key(
    algorithm: Algorithm,
    format: PrivateKeyFormat,
    der: &[u8],
) -> Result<DkimKey, String> {
    // `from_pkcs8_der`/`from_der` are deprecated in favour of
    // `from_key_der`, which takes a rustls-pki-types value that mail-auth
    // does not re-export; the deprecated functions do the same thing.
    #[allow(deprecated)]
    let key = match (algorithm, format) {
        (Algorithm::RsaSha256, PrivateKeyFormat::Pkcs8) => {
            RsaKey::<Sha256>::from_pkcs8_der(der).map(DkimKey::Rsa)
        }
        (Algorithm::RsaSha256, PrivateKeyFormat::Pkcs1) => {
            RsaKey::<Sha256>::from_der(der).map(DkimKey::Rsa)
        }
        (Algorithm::Ed25519Sha256, _) => {
            Ed25519Key::from_pkcs8_maybe_unchecked_der(der).map(DkimKey::Ed25519)
        }
    };
    key.map_err(|e| match e {
        mail_auth::Error::Crypto(mail_auth::common::crypto::CryptoError::Library(reason)) => reason,
        _ => "rejected by the crypto library".to_string(),
    })
}

/// A readable name for a PKCS#8 algorithm OID we do not support.
fn algorithm_name(oid: &[u8]) -> String {
    let dotted = der::oid_text(oid);
    let name = match dotted.as_str() {
        "1.2.840.10045.2.1" => "EC (ECDSA)",
        "1.2.840.113549.1.1.10" => "RSA-PSS",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.3.101.113" => "Ed448",
        "1.2.840.10040.4.1" => "DSA",
        _ => "unknown algorithm",
    };
    format!("{name} (OID {dotted})")
}
