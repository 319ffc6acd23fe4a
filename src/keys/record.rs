//! DKIM DNS TXT records: writing them (RFC 6376 §3.6.1, RFC 8463), showing
//! them in zone-file form, and parsing published ones.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::der;
use super::public::PublicKey;
use super::{Algorithm, RecordFlags};

/// Longest character-string in a TXT record (RFC 1035 §3.3: one length
/// byte).
pub const MAX_CHARACTER_STRING: usize = 255;

/// The owner name of a key's record: `<selector>._domainkey.<domain>`
/// (RFC 6376 §3.6.2.1), without a trailing dot.
pub fn record_name(selector: &str, domain: &str) -> String {
    format!(
        "{}._domainkey.{}",
        selector,
        domain.strip_suffix('.').unwrap_or(domain)
    )
}

/// The TXT record value publishing `public`:
/// `v=DKIM1; [h=sha256; ]k=<type>; [s=email; ][t=y; ]p=<base64>`.
///
/// `k=` comes from `algorithm`, `p=` from `public` (see [`PublicKey`] for
/// why RSA and Ed25519 publish different structures).
pub fn record_value(algorithm: Algorithm, public: &PublicKey, flags: RecordFlags) -> String {
    let mut value = String::from("v=DKIM1; ");
    if flags.hash_sha256 {
        value.push_str("h=sha256; ");
    }
    value.push_str("k=");
    value.push_str(algorithm.key_type());
    value.push_str("; ");
    if flags.service_email {
        value.push_str("s=email; ");
    }
    if flags.testing {
        value.push_str("t=y; ");
    }
    value.push_str("p=");
    value.push_str(&public.record_base64());
    value
}

/// The record value of a revoked key: an empty `p=` (RFC 6376 §3.6.1),
/// e.g. `v=DKIM1; k=rsa; p=`.
pub fn revoked_record_value(algorithm: Algorithm) -> String {
    format!("v=DKIM1; k={}; p=", algorithm.key_type())
}

/// Splits a record value into the character-strings of ONE TXT record.
///
/// A TXT record is a sequence of character-strings of at most 255 bytes
/// each; a 2048-bit RSA `p=` alone is 392 bytes, so it must be split.
/// Verifiers concatenate the strings of one record without separators
/// (RFC 6376 §3.6.2.2), so the split points do not matter to them, and we
/// split where a human reader expects: the tags before `p=` in one string,
/// then `p=` in chunks of at most 255 bytes.
///
/// The pieces must stay in one record. Publishing them as several TXT
/// records (a mistake some DNS control panels and a widely copied guide
/// invite: "paste each part as its own record") gives the verifier several
/// records, none of them a whole key, and every signature fails.
///
/// Splits are at byte boundaries (the value is ASCII); should a value
/// contain other characters, a split never cuts one in half. An empty value
/// gives one empty string.
pub fn character_strings(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (head, tail) = match p_tag_start(value) {
        Some(i) if i > 0 => value.split_at(i),
        _ => ("", value),
    };
    push_chunks(head, &mut out);
    push_chunks(tail, &mut out);
    if out.is_empty() {
        out.push("");
    }
    out
}

/// Byte offset of the `p=` tag, if the value has one.
fn p_tag_start(value: &str) -> Option<usize> {
    value.match_indices("p=").map(|(i, _)| i).find(|&i| {
        let before = value[..i].trim_end_matches([' ', '\t', '\r', '\n']);
        before.is_empty() || before.ends_with(';')
    })
}

fn push_chunks<'a>(mut rest: &'a str, out: &mut Vec<&'a str>) {
    while !rest.is_empty() {
        let mut end = rest.len().min(MAX_CHARACTER_STRING);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, more) = rest.split_at(end);
        out.push(chunk);
        rest = more;
    }
}

/// The record in zone-file (BIND) syntax: one TXT record whose value is
/// split by [`character_strings`], inside parentheses so it may span lines:
///
/// ```text
/// sel._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; "
///         "p=MIIBIjANBg..."
///         "...rest" )
/// ```
///
/// A trailing dot is added to `name_fqdn` if missing. `"` and `\` are
/// escaped (they never occur in values dkimctl writes).
pub fn zone_form(name_fqdn: &str, value: &str) -> String {
    let mut out = String::with_capacity(name_fqdn.len() + value.len() * 11 / 10 + 32);
    out.push_str(name_fqdn);
    if !name_fqdn.ends_with('.') {
        out.push('.');
    }
    out.push_str(" IN TXT (");
    for (i, piece) in character_strings(value).into_iter().enumerate() {
        out.push_str(if i == 0 { " \"" } else { "\n\t\"" });
        for c in piece.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_ascii_graphic() || c == ' ' => out.push(c),
                c => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\{b:03}"));
                    }
                }
            }
        }
        out.push('"');
    }
    out.push_str(" )");
    out
}

/// A published DKIM key record, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRecord {
    /// `v=`, if present (then always `DKIM1`).
    pub version: Option<String>,
    /// `k=`, as the algorithm dkimctl signs with: `rsa` (also the default
    /// when `k=` is absent) or `ed25519`.
    pub key_type: Algorithm,
    /// `h=`: acceptable hash algorithms, lower-cased; empty when absent
    /// (all allowed).
    pub hashes: Vec<String>,
    /// `s=`: service types, lower-cased; empty when absent (`*`, all).
    pub services: Vec<String>,
    /// `t=y`: the domain is testing DKIM.
    pub testing: bool,
    /// `t=s`: the `i=` domain must equal `d=` exactly (no subdomains).
    pub strict: bool,
    /// `p=`, decoded; `None` when empty, i.e. the key is revoked.
    pub public_key: Option<Vec<u8>>,
    /// `n=`: notes for humans, as published.
    pub notes: Option<String>,
    /// Things that are legal but worth telling: unknown tags (ignored, as
    /// RFC 6376 requires), unknown `t=` flags, an `h=` list without
    /// `sha256`, an `s=` list without `email`, a PKCS#1 RSA key.
    pub warnings: Vec<String>,
}

impl ParsedRecord {
    /// True when `p=` is empty: the key was revoked.
    pub fn is_revoked(&self) -> bool {
        self.public_key.is_none()
    }

    /// RSA modulus size of the published key, if it is an RSA key.
    pub fn rsa_bits(&self) -> Option<u32> {
        match self.key_type {
            Algorithm::RsaSha256 => self.public_key.as_deref().and_then(rsa_bits_of_spki),
            Algorithm::Ed25519Sha256 => None,
        }
    }

    /// True when `h=` is absent or lists `sha256`.
    pub fn allows_sha256(&self) -> bool {
        self.hashes.is_empty() || self.hashes.iter().any(|h| h == "sha256")
    }

    /// True when `s=` is absent or lists `email` or `*`.
    pub fn allows_email(&self) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == "email" || s == "*")
    }
}

/// Why a TXT record is not a valid DKIM key record. Values quoted in the
/// message are shortened and escaped (records are untrusted input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// A tag name that is not `ALPHA *(ALPHA / DIGIT / "_")`.
    BadTagName {
        /// The name as found.
        name: String,
    },
    /// A tag-spec without `=`.
    MissingEquals {
        /// The text of the tag-spec.
        tag: String,
    },
    /// A byte not allowed in a tag value (control characters, non-ASCII).
    InvalidCharacter {
        /// The tag.
        tag: String,
        /// The offending byte.
        byte: u8,
    },
    /// A tag given twice, which makes the whole record invalid (RFC 6376
    /// §3.2).
    DuplicateTag {
        /// The tag.
        tag: String,
    },
    /// `v=` present but not the first tag.
    VersionNotFirst,
    /// `v=` other than `DKIM1`.
    BadVersion {
        /// The value found.
        value: String,
    },
    /// `k=` other than `rsa` or `ed25519`.
    UnknownKeyType {
        /// The value found.
        value: String,
    },
    /// An empty entry in a colon-separated list (`h=`, `s=`, `t=`).
    EmptyListItem {
        /// The tag.
        tag: &'static str,
    },
    /// No `p=` tag (an empty `p=` is fine: it means revoked).
    MissingPublicKey,
    /// `p=` is not base64.
    BadBase64 {
        /// What the decoder found.
        detail: String,
    },
    /// `p=` decodes, but not to a key of the `k=` type.
    BadKeyData {
        /// The `k=` type.
        key_type: Algorithm,
        /// What is wrong.
        detail: &'static str,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::BadTagName { name } => write!(f, "invalid tag name \"{name}\""),
            RecordError::MissingEquals { tag } => {
                write!(f, "tag-spec \"{tag}\" has no \"=\"")
            }
            RecordError::InvalidCharacter { tag, byte } => {
                write!(f, "{tag}=: invalid character 0x{byte:02x} in the value")
            }
            RecordError::DuplicateTag { tag } => write!(
                f,
                "{tag}= appears more than once, which invalidates the record"
            ),
            RecordError::VersionNotFirst => {
                write!(f, "v=: must be the first tag of the record")
            }
            RecordError::BadVersion { value } => {
                write!(f, "v=: \"{value}\" is not \"DKIM1\"")
            }
            RecordError::UnknownKeyType { value } => write!(
                f,
                "k=: unknown key type \"{value}\" (expected rsa or ed25519)"
            ),
            RecordError::EmptyListItem { tag } => {
                write!(f, "{tag}=: empty entry in the colon-separated list")
            }
            RecordError::MissingPublicKey => write!(
                f,
                "p=: missing (required; an empty p= would mean the key is revoked)"
            ),
            RecordError::BadBase64 { detail } => {
                write!(f, "p=: not valid base64 ({detail})")
            }
            RecordError::BadKeyData { key_type, detail } => {
                write!(f, "p=: not a valid k={} key: {detail}", key_type.key_type())
            }
        }
    }
}

impl std::error::Error for RecordError {}

/// Base64 as RFC 6376 uses it: the standard alphabet; padding is expected
/// but tolerated when missing (some generators drop it, verifiers accept
/// it).
const RECORD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Whitespace inside records: SP and HTAB, plus CR and LF of folding (FWS).
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ws(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ws(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Untrusted bytes made safe to show: printable ASCII kept, the rest as
/// `\xNN`, at most 40 bytes.
fn shown(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(40) {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > 40 {
        out.push_str("...");
    }
    out
}

/// Splits a colon-separated list (`h=`, `s=`, `t=`), trimming whitespace
/// around entries and lower-casing them.
fn colon_list(tag: &'static str, value: &[u8]) -> Result<Vec<String>, RecordError> {
    value
        .split(|&b| b == b':')
        .map(|item| {
            let item = trim_ws(item);
            if item.is_empty() {
                Err(RecordError::EmptyListItem { tag })
            } else {
                Ok(shown(item).to_ascii_lowercase())
            }
        })
        .collect()
}

/// Parses a DKIM key record: the TXT record's character-strings
/// concatenated (RFC 6376 §3.2 tag-list syntax, §3.6.1 semantics).
///
/// Tolerated: whitespace and folding (CRLF + WSP) around tags, `=` and
/// values and inside `p=`; a trailing `;`; empty tag-specs (`;;`, noted in
/// `warnings`); unknown tags (ignored, noted); a missing base64 padding.
///
/// Never panics, whatever the input.
pub fn parse_record(bytes: &[u8]) -> Result<ParsedRecord, RecordError> {
    let mut record = ParsedRecord {
        version: None,
        key_type: Algorithm::RsaSha256,
        hashes: Vec::new(),
        services: Vec::new(),
        testing: false,
        strict: false,
        public_key: None,
        notes: None,
        warnings: Vec::new(),
    };
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut p_value: Option<&[u8]> = None;
    let specs: Vec<&[u8]> = bytes.split(|&b| b == b';').collect();
    let last = specs.len().saturating_sub(1);

    for (index, spec) in specs.iter().enumerate() {
        if trim_ws(spec).is_empty() {
            // "a=1;" ends with an empty spec: allowed. ";;" is not in the
            // grammar, but verifiers accept it, so only note it.
            if index != last {
                record
                    .warnings
                    .push("empty tag-spec (\";;\") in the record".to_string());
            }
            continue;
        }
        let Some(eq) = spec.iter().position(|&b| b == b'=') else {
            return Err(RecordError::MissingEquals {
                tag: shown(trim_ws(spec)),
            });
        };
        let name = trim_ws(&spec[..eq]);
        let value = trim_ws(&spec[eq + 1..]);
        let valid_name = match name {
            [first, rest @ ..] => {
                first.is_ascii_alphabetic()
                    && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
            }
            [] => false,
        };
        if !valid_name {
            return Err(RecordError::BadTagName { name: shown(name) });
        }
        // VALCHAR is %x21-3A / %x3C-7E; whitespace may separate runs of
        // them. (';' cannot occur: it split the specs.)
        if let Some(&byte) = value
            .iter()
            .find(|&&b| !(is_ws(b) || (0x21..=0x7e).contains(&b)))
        {
            return Err(RecordError::InvalidCharacter {
                tag: shown(name),
                byte,
            });
        }
        if seen.contains(&name) {
            return Err(RecordError::DuplicateTag { tag: shown(name) });
        }
        let first_tag = seen.is_empty();
        seen.push(name);

        match name {
            b"v" => {
                if !first_tag {
                    return Err(RecordError::VersionNotFirst);
                }
                if value != b"DKIM1" {
                    return Err(RecordError::BadVersion {
                        value: shown(value),
                    });
                }
                record.version = Some("DKIM1".to_string());
            }
            b"k" => {
                record.key_type = if value.eq_ignore_ascii_case(b"rsa") {
                    Algorithm::RsaSha256
                } else if value.eq_ignore_ascii_case(b"ed25519") {
                    Algorithm::Ed25519Sha256
                } else {
                    return Err(RecordError::UnknownKeyType {
                        value: shown(value),
                    });
                };
            }
            b"h" => {
                record.hashes = colon_list("h", value)?;
                if !record.allows_sha256() {
                    record.warnings.push(format!(
                        "h={} does not allow sha256: rsa-sha256 and ed25519-sha256 \
                         signatures cannot verify",
                        record.hashes.join(":")
                    ));
                }
            }
            b"s" => {
                record.services = colon_list("s", value)?;
                if !record.allows_email() {
                    record.warnings.push(format!(
                        "s={} does not include email or *: the key is not for email",
                        record.services.join(":")
                    ));
                }
            }
            b"t" => {
                for flag in colon_list("t", value)? {
                    match flag.as_str() {
                        "y" => record.testing = true,
                        "s" => record.strict = true,
                        other => record
                            .warnings
                            .push(format!("t=: unknown flag \"{other}\" ignored")),
                    }
                }
            }
            b"n" => record.notes = Some(shown(value)),
            b"p" => p_value = Some(value),
            other => record
                .warnings
                .push(format!("unknown tag \"{}=\" ignored", shown(other))),
        }
    }

    let p = p_value.ok_or(RecordError::MissingPublicKey)?;
    // Whitespace (including folding) may appear anywhere inside p=.
    let compact: Vec<u8> = p.iter().copied().filter(|&b| !is_ws(b)).collect();
    if compact.is_empty() {
        return Ok(record); // revoked
    }
    let key = RECORD_BASE64
        .decode(&compact)
        .map_err(|e| RecordError::BadBase64 {
            detail: e.to_string(),
        })?;
    match record.key_type {
        Algorithm::Ed25519Sha256 => {
            if key.len() != 32 {
                // RFC 8463 §4.2: p= is the raw 32-byte key. The 44-byte
                // SubjectPublicKeyInfo (what `openssl pkey -pubout` prints)
                // is the classic mistake.
                let detail = if key.len() == 44 && key.starts_with(&ED25519_SPKI_PREFIX) {
                    "this is a SubjectPublicKeyInfo (44 bytes); RFC 8463 publishes the raw \
                     32-byte key (its last 32 bytes)"
                } else {
                    "an Ed25519 public key is 32 bytes (RFC 8463)"
                };
                return Err(RecordError::BadKeyData {
                    key_type: Algorithm::Ed25519Sha256,
                    detail,
                });
            }
        }
        Algorithm::RsaSha256 => {
            if der::rsa_public_spki(&key).is_none() {
                if der::rsa_public_pkcs1(&key).is_some() {
                    record.warnings.push(
                        "p= is a bare PKCS#1 RSAPublicKey, not the SubjectPublicKeyInfo \
                         RFC 6376 specifies; some verifiers reject it"
                            .to_string(),
                    );
                } else {
                    return Err(RecordError::BadKeyData {
                        key_type: Algorithm::RsaSha256,
                        detail: "not a DER RSA public key",
                    });
                }
            }
        }
    }
    record.public_key = Some(key);
    Ok(record)
}

/// The first 12 bytes of an Ed25519 SubjectPublicKeyInfo.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// True when the record publishes `key` (and is not revoked).
///
/// RSA keys compare by modulus and exponent, so a record that publishes a
/// bare PKCS#1 RSAPublicKey (as some old generators did) matches too.
/// Ed25519 keys compare the 32 raw bytes.
pub fn public_key_matches(record: &ParsedRecord, key: &PublicKey) -> bool {
    let Some(published) = record.public_key.as_deref() else {
        return false;
    };
    match key {
        PublicKey::Ed25519(raw) => {
            record.key_type == Algorithm::Ed25519Sha256 && published == raw.as_slice()
        }
        PublicKey::Rsa(spki) => {
            record.key_type == Algorithm::RsaSha256
                && (published == spki.as_slice()
                    || matches!(
                        (der::rsa_public_any(published), der::rsa_public_any(spki)),
                        (Some(a), Some(b)) if a == b
                    ))
        }
    }
}

/// The modulus size of an RSA public key given as a SubjectPublicKeyInfo or
/// a bare PKCS#1 RSAPublicKey; `None` when the bytes are neither. Lets `dns
/// check` judge a published key (below 1024 bits: fail; below 2048: warn)
/// from the record alone.
pub fn rsa_bits_of_spki(der: &[u8]) -> Option<u32> {
    der::rsa_public_any(der).map(|k| k.bits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    /// The RFC 8463 §A.2 example key.
    const RFC8463_P: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

    fn ed_key() -> PublicKey {
        PublicKey::ed25519_from_bytes(&STANDARD.decode(RFC8463_P).unwrap()).unwrap()
    }

    /// A small fixed RSA key (512-bit modulus, not a real key).
    fn small_rsa() -> PublicKey {
        let mut n = vec![0xc5u8; 64];
        n[63] = 0x01;
        let spki = der::RsaPublic {
            n: &n,
            e: &[1, 0, 1],
        }
        .to_spki();
        PublicKey::Rsa(spki)
    }

    #[test]
    fn names() {
        assert_eq!(
            record_name("sel", "example.com"),
            "sel._domainkey.example.com"
        );
        assert_eq!(
            record_name("sel", "example.com."),
            "sel._domainkey.example.com"
        );
    }

    #[test]
    fn values() {
        let key = ed_key();
        assert_eq!(
            record_value(Algorithm::Ed25519Sha256, &key, RecordFlags::default()),
            format!("v=DKIM1; k=ed25519; p={RFC8463_P}")
        );
        let all = RecordFlags {
            testing: true,
            service_email: true,
            hash_sha256: true,
        };
        assert_eq!(
            record_value(Algorithm::Ed25519Sha256, &key, all),
            format!("v=DKIM1; h=sha256; k=ed25519; s=email; t=y; p={RFC8463_P}")
        );
        let parsed =
            parse_record(record_value(Algorithm::Ed25519Sha256, &key, all).as_bytes()).unwrap();
        assert!(parsed.testing && !parsed.strict);
        assert_eq!(parsed.hashes, ["sha256"]);
        assert_eq!(parsed.services, ["email"]);
        assert!(parsed.warnings.is_empty());
        assert_eq!(
            revoked_record_value(Algorithm::RsaSha256),
            "v=DKIM1; k=rsa; p="
        );
        assert_eq!(
            revoked_record_value(Algorithm::Ed25519Sha256),
            "v=DKIM1; k=ed25519; p="
        );
        let rsa = small_rsa();
        assert_eq!(rsa.bits(), 512);
        let value = record_value(Algorithm::RsaSha256, &rsa, RecordFlags::default());
        assert_eq!(
            value,
            concat!(
                "v=DKIM1; k=rsa; p=",
                "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxQECAwEAAQ=="
            )
        );
    }

    #[test]
    fn zone_form_exact() {
        let value = format!("v=DKIM1; k=ed25519; p={RFC8463_P}");
        assert_eq!(
            zone_form("sel._domainkey.example.com", &value),
            format!(
                "sel._domainkey.example.com. IN TXT ( \"v=DKIM1; k=ed25519; \"\n\t\"p={RFC8463_P}\" )"
            )
        );
        // A long p= is cut at exactly 255 bytes.
        let p: String = "A".repeat(300);
        let value = format!("v=DKIM1; k=rsa; p={p}");
        let zone = zone_form("s._domainkey.example.org.", &value);
        let expected = format!(
            "s._domainkey.example.org. IN TXT ( \"v=DKIM1; k=rsa; \"\n\t\"p={}\"\n\t\"{}\" )",
            &p[..253],
            &p[253..]
        );
        assert_eq!(zone, expected);
        // Quotes and backslashes are escaped.
        assert_eq!(zone_form("a.", "x\"\\y"), "a. IN TXT ( \"x\\\"\\\\y\" )");
    }

    #[test]
    fn character_strings_split() {
        assert_eq!(character_strings(""), vec![""]);
        assert_eq!(character_strings("p="), vec!["p="]);
        assert_eq!(
            character_strings("v=DKIM1; k=rsa; p=AB"),
            vec!["v=DKIM1; k=rsa; ", "p=AB"]
        );
        // "p=" inside another tag's value is not the p= tag.
        assert_eq!(character_strings("n=ap=b; p=C"), vec!["n=ap=b; ", "p=C"]);
        for len in [0usize, 1, 237, 238, 253, 254, 255, 256, 509, 510, 511, 1000] {
            let value = format!("v=DKIM1; k=rsa; p={}", "Q".repeat(len));
            let strings = character_strings(&value);
            assert!(strings.iter().all(|s| s.len() <= MAX_CHARACTER_STRING));
            assert_eq!(strings.concat(), value);
        }
        // Non-ASCII never split inside a character.
        let value = "é".repeat(300);
        let strings = character_strings(&value);
        assert!(strings.iter().all(|s| s.len() <= MAX_CHARACTER_STRING));
        assert_eq!(strings.concat(), value);
    }

    fn ok(record: &str) -> ParsedRecord {
        match parse_record(record.as_bytes()) {
            Ok(r) => r,
            Err(e) => panic!("{record:?}: {e}"),
        }
    }

    fn err(record: &str) -> RecordError {
        match parse_record(record.as_bytes()) {
            Ok(r) => panic!("{record:?} parsed: {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parse_valid() {
        let rsa = small_rsa();
        let rsa_value = record_value(Algorithm::RsaSha256, &rsa, RecordFlags::default());
        let r = ok(&rsa_value);
        assert_eq!(r.version.as_deref(), Some("DKIM1"));
        assert_eq!(r.key_type, Algorithm::RsaSha256);
        assert_eq!(r.public_key.as_deref(), Some(rsa.record_bytes()));
        assert!(!r.testing && !r.strict && !r.is_revoked());
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.rsa_bits(), Some(512));
        assert!(public_key_matches(&r, &rsa));
        assert!(!public_key_matches(&r, &ed_key()));

        let r = ok(&format!("v=DKIM1; k=ed25519; p={RFC8463_P}"));
        assert_eq!(r.key_type, Algorithm::Ed25519Sha256);
        assert!(public_key_matches(&r, &ed_key()));
        assert!(!public_key_matches(&r, &rsa));

        // No v=, no k= (rsa is the default), trailing semicolon.
        let p = rsa.record_base64();
        let r = ok(&format!("p={p};"));
        assert_eq!(r.version, None);
        assert_eq!(r.key_type, Algorithm::RsaSha256);

        // Flags and lists.
        let r = ok(&format!(
            "v=DKIM1; h=sha1 : SHA256; k=rsa; s=email:*; t=y:s:x; n=hello world; p={p}"
        ));
        assert_eq!(r.hashes, ["sha1", "sha256"]);
        assert_eq!(r.services, ["email", "*"]);
        assert!(r.testing && r.strict && r.allows_sha256() && r.allows_email());
        assert_eq!(r.notes.as_deref(), Some("hello world"));
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings); // unknown flag x
        let r = ok(&format!("t=y; p={p}"));
        assert!(r.testing);

        let r = ok(&format!("h=sha1; s=tlsrpt; p={p}"));
        assert!(!r.allows_sha256() && !r.allows_email());
        assert_eq!(r.warnings.len(), 2);

        // Revoked.
        let r = ok("v=DKIM1; k=rsa; p=");
        assert!(r.is_revoked());
        assert!(!public_key_matches(&r, &rsa));
        assert!(ok("v=DKIM1; p= ;").is_revoked());
        assert_eq!(r.rsa_bits(), None);
    }

    #[test]
    fn parse_whitespace_and_folding() {
        let p = small_rsa().record_base64();
        let (a, b) = p.split_at(20);
        let folded = format!(" v = DKIM1 ;\r\n\tk=\trsa ;\r\n p=\r\n {a} \r\n\t{b} \t;  ");
        let r = ok(&folded);
        assert!(public_key_matches(&r, &small_rsa()));
        // Unknown tags are ignored with a warning; ";;" is tolerated.
        let r = ok(&format!("v=DKIM1; x_1=foo bar;; p={p}"));
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        // Missing padding is tolerated.
        let r = ok(&format!("k=ed25519; p={}", RFC8463_P.trim_end_matches('=')));
        assert!(public_key_matches(&r, &ed_key()));
    }

    #[test]
    fn parse_errors() {
        let p = small_rsa().record_base64();
        assert_eq!(err("v=DKIM1; k=rsa"), RecordError::MissingPublicKey);
        assert_eq!(err(""), RecordError::MissingPublicKey);
        assert_eq!(
            err(&format!("v=DKIM1; p={p}; k=rsa; p={p}")),
            RecordError::DuplicateTag { tag: "p".into() }
        );
        assert_eq!(
            err(&format!("k=rsa; v=DKIM1; p={p}")),
            RecordError::VersionNotFirst
        );
        assert_eq!(
            err(&format!("v=DKIM2; p={p}")),
            RecordError::BadVersion {
                value: "DKIM2".into()
            }
        );
        assert!(matches!(
            err("v=DKIM1; p=MIIB!!"),
            RecordError::BadBase64 { .. }
        ));
        assert!(matches!(err("p=A"), RecordError::BadBase64 { .. }));
        assert_eq!(
            err(&format!("k=dsa; p={p}")),
            RecordError::UnknownKeyType {
                value: "dsa".into()
            }
        );
        assert_eq!(
            err("v=DKIM1; k; p="),
            RecordError::MissingEquals { tag: "k".into() }
        );
        assert_eq!(
            err("v=DKIM1; 1k=rsa; p="),
            RecordError::BadTagName { name: "1k".into() }
        );
        assert_eq!(
            err("v=DKIM1; =rsa; p="),
            RecordError::BadTagName { name: "".into() }
        );
        assert_eq!(
            err("n=caf\u{e9}; p="),
            RecordError::InvalidCharacter {
                tag: "n".into(),
                byte: 0xc3
            }
        );
        assert_eq!(
            err("h=sha256:; p="),
            RecordError::EmptyListItem { tag: "h" }
        );
        // Ed25519 published as SPKI, RSA p= that is not a key.
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(ed_key().record_bytes());
        let e = err(&format!("k=ed25519; p={}", STANDARD.encode(&spki)));
        assert!(e.to_string().contains("SubjectPublicKeyInfo"), "{e}");
        assert!(matches!(
            err("k=rsa; p=AAAA"),
            RecordError::BadKeyData {
                key_type: Algorithm::RsaSha256,
                ..
            }
        ));
        // Every message names the tag.
        for (e, tag) in [
            (err("v=DKIM1; k=rsa"), "p="),
            (err("p=A; p=B"), "p="),
            (err("k=x; p="), "k="),
            (err("v=x; p="), "v="),
            (err("s=:; p="), "s="),
        ] {
            assert!(e.to_string().contains(tag), "{e}");
        }
    }

    #[test]
    fn pkcs1_published_key_matches() {
        let rsa = small_rsa();
        let der::RsaPublic { n, e } = der::rsa_public_spki(rsa.record_bytes()).unwrap();
        // Bare RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }.
        let mut body = vec![0x02, 0x41, 0x00];
        body.extend_from_slice(n);
        body.extend_from_slice(&[0x02, 0x03]);
        body.extend_from_slice(e);
        let mut pkcs1 = vec![0x30, body.len() as u8];
        pkcs1.extend_from_slice(&body);
        let r = ok(&format!("k=rsa; p={}", STANDARD.encode(&pkcs1)));
        assert_eq!(r.warnings.len(), 1);
        assert!(public_key_matches(&r, &rsa));
        assert_eq!(r.rsa_bits(), Some(512));
        assert_eq!(rsa_bits_of_spki(&pkcs1), Some(512));
        assert_eq!(rsa_bits_of_spki(b"junk"), None);
        assert_eq!(PublicKey::rsa_from_der(&pkcs1), Some(rsa));
    }

    /// xorshift64*: a tiny deterministic PRNG for the no-panic loop.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet: &[u8] = b"vkhpstn=;: \t\r\nDKIM1rsaed25519yA+/=MIIB\x00\xff";
        let seeds = [
            "v=DKIM1; k=rsa; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMXF",
            "v=DKIM1; h=sha256; k=ed25519; s=email; t=y; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        ];
        for round in 0..20_000 {
            let len = (rng.next() % 120) as usize;
            let bytes: Vec<u8> = if round % 3 == 0 {
                // Mutated valid records.
                let mut b = seeds[round % 2].as_bytes().to_vec();
                for _ in 0..=(rng.next() % 4) {
                    if b.is_empty() {
                        break;
                    }
                    let i = (rng.next() as usize) % b.len();
                    b[i] = alphabet[(rng.next() as usize) % alphabet.len()];
                }
                b
            } else if round % 3 == 1 {
                (0..len)
                    .map(|_| alphabet[(rng.next() as usize) % alphabet.len()])
                    .collect()
            } else {
                (0..len).map(|_| rng.next() as u8).collect()
            };
            if let Ok(r) = parse_record(&bytes) {
                let _ = r.rsa_bits();
            }
            let _ = rsa_bits_of_spki(&bytes);
            let _ = PublicKey::rsa_from_der(&bytes);
        }
    }
}
