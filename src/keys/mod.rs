//! DKIM keys: generation, loading, key files, and DNS TXT record text.
//!
//! # Public API
//!
//! Generating ([`generate`](mod@generate) module):
//! - [`generate(algorithm, rsa_bits) -> Result<KeyPair, GenerateError>`](generate()),
//!   [`generate_rsa(bits)`](generate_rsa),
//!   [`generate_ed25519()`](generate_ed25519). RSA sizes: 2048, 3072, 4096
//!   ([`GENERATED_RSA_BITS`], default [`DEFAULT_RSA_BITS`]).
//! - [`KeyPair`] `{ algorithm, bits, private_pem: Secret, public: PublicKey }`;
//!   the private key is PKCS#8 PEM, as `opendkim-genkey` writes it (Ed25519
//!   in the PKCS#8 v1 form every OpenSSL reads).
//!
//! Loading ([`load`](mod@load) module):
//! - [`load_private_key(&Path) -> Result<LoadedKey, LoadError>`](load_private_key),
//!   [`parse_private_key(&[u8], &Path)`](parse_private_key): PKCS#8 PEM
//!   (RSA, Ed25519) and PKCS#1 `RSA PRIVATE KEY` PEM.
//! - [`LoadedKey`] `{ path, algorithm, bits, format, public }` with
//!   [`LoadedKey::signing_key`], [`LoadedKey::into_signing_key`] and
//!   [`LoadedKey::new_signing_key`] giving a mail-auth
//!   [`DkimKey`](mail_auth::common::crypto::DkimKey). Keys below 2048 bits
//!   load (so their size can be reported) but cannot sign: aws-lc refuses
//!   them.
//!
//! Public keys and DNS records ([`public`], [`record`] modules):
//! - [`PublicKey`]: `Rsa(spki_der)` or `Ed25519([u8; 32])`, with
//!   [`PublicKey::record_base64`] (the `p=` value), [`PublicKey::bits`],
//!   [`PublicKey::verify`].
//! - [`record_name(selector, domain)`](record_name) →
//!   `sel._domainkey.example.com`.
//! - [`record_value(algorithm, &PublicKey, RecordFlags)`](record_value) →
//!   `v=DKIM1; [h=sha256; ]k=rsa; [s=email; ][t=y; ]p=...`;
//!   [`revoked_record_value(algorithm)`](revoked_record_value) →
//!   `v=DKIM1; k=rsa; p=`.
//! - [`character_strings(value) -> Vec<&str>`](character_strings) (≤ 255
//!   bytes each) and [`zone_form(name, value)`](zone_form): ONE TXT record
//!   in BIND syntax.
//! - [`parse_record(&[u8]) -> Result<ParsedRecord, RecordError>`](parse_record):
//!   RFC 6376 §3.2/§3.6.1 parser for published records; never panics.
//! - [`public_key_matches(&ParsedRecord, &PublicKey)`](public_key_matches),
//!   [`rsa_bits_of_spki(&[u8]) -> Option<u32>`](rsa_bits_of_spki).
//!
//! Key files ([`mode`](mod@mode) module):
//! - [`check_key_file_mode(mode) -> Option<&str>`](check_key_file_mode):
//!   OpenDKIM's `RequireSafeKeys` judgement. Key files are written only by
//!   [`crate::apply::keys`].
//!
//! Secrets: [`Secret`] holds key material; it prints as `<secret>` and is
//! zeroed on drop. No error or `Debug` output of this module contains
//! private key bytes.

pub mod algorithm;
pub mod generate;
pub mod load;
pub mod mode;
pub mod public;
pub mod record;
pub mod secret;

mod der;
mod pem;

#[cfg(test)]
pub(crate) mod tests;

pub use algorithm::{Algorithm, Canon, RecordFlags};
pub use generate::{
    DEFAULT_RSA_BITS, GENERATED_RSA_BITS, GenerateError, KeyPair, generate, generate_ed25519,
    generate_rsa,
};
pub use load::{
    LoadError, LoadErrorKind, LoadedKey, PrivateKeyFormat, load_private_key, parse_private_key,
};
pub use mode::check_key_file_mode;
pub use public::PublicKey;
pub use record::{
    MAX_CHARACTER_STRING, ParsedRecord, RecordError, character_strings, parse_record,
    public_key_matches, record_name, record_value, revoked_record_value, rsa_bits_of_spki,
    zone_form,
};
pub use secret::{Secret, lock_secrets, protect_process};
