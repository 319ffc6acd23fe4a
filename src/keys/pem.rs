//! PEM (RFC 7468) encoding and decoding of private keys, inside [`Secret`]
//! buffers so no copy of the key escapes unzeroed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::secret::Secret;

/// Label of a PKCS#8 PrivateKeyInfo (RSA or Ed25519).
pub(crate) const PKCS8_LABEL: &str = "PRIVATE KEY";
/// Label of a PKCS#1 RSAPrivateKey (older opendkim-genkey, `openssl genrsa
/// -traditional`).
pub(crate) const PKCS1_LABEL: &str = "RSA PRIVATE KEY";

/// Base64 characters per PEM line (RFC 7468 §2; what OpenSSL writes).
const LINE: usize = 64;

/// Encodes DER as a PEM block: `-----BEGIN <label>-----`, the base64 in
/// 64-character lines, `-----END <label>-----`, each line ending in `\n`.
pub(crate) fn encode(label: &str, der: &[u8]) -> Secret {
    let b64_len = der.len().div_ceil(3) * 4;
    let lines = b64_len.div_ceil(LINE);
    let begin = format!("-----BEGIN {label}-----\n");
    let end = format!("-----END {label}-----\n");
    // Exact size up front: the buffer never reallocates (see `Secret`).
    let mut out = Secret::with_capacity(begin.len() + b64_len + lines + end.len());
    let mut b64 = Secret::zeroed(b64_len);
    // Cannot fail: the buffer has exactly the encoded length.
    let written = STANDARD.encode_slice(der, b64.as_mut_slice()).unwrap_or(0);
    b64.truncate(written);
    out.extend_from_slice(begin.as_bytes());
    for line in b64.expose().chunks(LINE) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(end.as_bytes());
    out
}

/// What went wrong when decoding a PEM file. No variant carries key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PemError {
    /// No `-----BEGIN ...-----` line at all.
    NotPem,
    /// PEM blocks, but none holds a private key; the first label found.
    NoPrivateKey(String),
    /// A private key in a form we do not read (`EC PRIVATE KEY`, `OPENSSH
    /// PRIVATE KEY`, ...).
    Unsupported(String),
    /// `ENCRYPTED PRIVATE KEY`, or a legacy block with `Proc-Type: 4,ENCRYPTED`.
    Encrypted,
    /// The BEGIN line has no matching END line.
    Unterminated(String),
    /// The body is not valid base64.
    BadBase64,
}

/// A decoded private key block.
pub(crate) struct Block {
    /// The label (`PRIVATE KEY` or `RSA PRIVATE KEY`).
    pub label: &'static str,
    /// The DER bytes.
    pub der: Secret,
}

/// Finds the first private key block in `input` and decodes it. Text before
/// and between blocks is ignored (OpenSSL does the same).
pub(crate) fn decode_private_key(input: &[u8]) -> Result<Block, PemError> {
    let mut lines = input.split(|&b| b == b'\n').map(|l| l.trim_ascii());
    let mut first_label: Option<String> = None;
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix(b"-----BEGIN ")
            .and_then(|l| l.strip_suffix(b"-----"))
        else {
            continue;
        };
        let shown = printable(label);
        let wanted = match label {
            b"PRIVATE KEY" => Some(PKCS8_LABEL),
            b"RSA PRIVATE KEY" => Some(PKCS1_LABEL),
            b"ENCRYPTED PRIVATE KEY" => return Err(PemError::Encrypted),
            l if l.ends_with(b"PRIVATE KEY") => return Err(PemError::Unsupported(shown)),
            _ => None,
        };
        let Some(wanted) = wanted else {
            first_label.get_or_insert(shown);
            continue;
        };
        // Collect the body up to the END line. Capacity: the whole input,
        // so the buffer never grows (and never leaves copies behind).
        let mut body = Secret::with_capacity(input.len());
        let mut terminated = false;
        for line in lines.by_ref() {
            if let Some(end) = line
                .strip_prefix(b"-----END ")
                .and_then(|l| l.strip_suffix(b"-----"))
            {
                if end != label {
                    return Err(PemError::Unterminated(shown));
                }
                terminated = true;
                break;
            }
            if line.contains(&b':') {
                // RFC 1421 headers appear only in encrypted legacy blocks
                // (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: ...`).
                return Err(PemError::Encrypted);
            }
            for &b in line {
                if !b.is_ascii_whitespace() {
                    body.extend_from_slice(&[b]);
                }
            }
        }
        if !terminated {
            return Err(PemError::Unterminated(shown));
        }
        let mut der = Secret::zeroed(base64::decoded_len_estimate(body.len()));
        let n = STANDARD
            .decode_slice(body.expose(), der.as_mut_slice())
            .map_err(|_| PemError::BadBase64)?;
        der.truncate(n);
        return Ok(Block { label: wanted, der });
    }
    Err(first_label.map_or(PemError::NotPem, PemError::NoPrivateKey))
}

/// A PEM label made safe to show: printable ASCII only, at most 40 chars.
fn printable(label: &[u8]) -> String {
    label
        .iter()
        .take(40)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_line_length() {
        let der: Vec<u8> = (0..=255u8).cycle().take(1217).collect();
        let pem = encode(PKCS8_LABEL, &der);
        let text = pem.expose_str().expect("ascii");
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(text.ends_with("\n-----END PRIVATE KEY-----\n"));
        for line in text.lines() {
            assert!(line.len() <= 64, "{line}");
        }
        // The exact-capacity computation held: no reallocation happened.
        assert_eq!(pem.len(), text.len());
        let block = decode_private_key(pem.expose()).expect("decodes");
        assert_eq!(block.label, PKCS8_LABEL);
        assert_eq!(block.der.expose(), &der[..]);
    }

    #[test]
    fn crlf_and_surrounding_text() {
        let pem = encode(PKCS1_LABEL, b"hello world");
        let text = pem.expose_str().unwrap().replace('\n', "\r\n");
        let input = format!("some comment\r\n{text}trailer\n");
        let block = decode_private_key(input.as_bytes()).unwrap();
        assert_eq!(block.label, PKCS1_LABEL);
        assert_eq!(block.der.expose(), b"hello world");
    }

    #[test]
    fn errors() {
        assert_eq!(decode_private_key(b"").err(), Some(PemError::NotPem));
        assert_eq!(
            decode_private_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .err(),
            Some(PemError::NoPrivateKey("PUBLIC KEY".into()))
        );
        assert_eq!(
            decode_private_key(b"-----BEGIN EC PRIVATE KEY-----\n").err(),
            Some(PemError::Unsupported("EC PRIVATE KEY".into()))
        );
        assert_eq!(
            decode_private_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n").err(),
            Some(PemError::Encrypted)
        );
        assert_eq!(
            decode_private_key(
                b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----\n"
            )
            .err(),
            Some(PemError::Encrypted)
        );
        assert_eq!(
            decode_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n").err(),
            Some(PemError::Unterminated("PRIVATE KEY".into()))
        );
        assert_eq!(
            decode_private_key(b"-----BEGIN PRIVATE KEY-----\nA*AA\n-----END PRIVATE KEY-----")
                .err(),
            Some(PemError::BadBase64)
        );
    }
}
