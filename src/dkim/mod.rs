//! DKIM signing and verification as RFC 6376, 8301 and 8463 say; knows
//! nothing about the milter protocol (the engine shapes values for the
//! milter) nor about dkim.toml (callers pass options in).
//!
//! - [`message`]: header fields in wire form and the split of a raw
//!   message.
//! - [`canon`]: `simple` and `relaxed` canonicalization and the streaming
//!   body hash (bare CR hashed as it is, `l=` honoured).
//! - [`signature`]: the DKIM-Signature tag-list, parsed strictly (every
//!   reason a field is unusable is kept) and written (`b=` last).
//! - [`sign`]: streaming signer. Header fields are buffered as the MTA sent
//!   them, the body is hashed chunk by chunk (never held), and the
//!   signature is computed at end of message with a `now` passed in by the
//!   caller (no clock inside, so signatures are reproducible in tests).
//! - [`verify`](mod@verify): streaming verifier: the body is hashed as it
//!   arrives, keys are looked up through [`crate::dns::resolver::Resolver`]
//!   at end of message, every signature judged in the RFC's order.
//! - [`auth_results`]: the RFC 8601 `Authentication-Results` header.
//!
//! Only the private-key operation is mail-auth's (aws-lc underneath);
//! public-key checks are [`crate::keys::PublicKey`]'s, also aws-lc.
//!
//! Both `dkimctl serve` (through [`crate::engine`]) and the one-shot
//! commands `dkimctl sign` / `dkimctl verify` use these functions, so they
//! pick the same header fields and fold the same way.

pub mod auth_results;
pub mod canon;
pub mod message;
pub mod sign;
pub mod signature;
pub mod verify;

pub use auth_results::authentication_results;
pub use canon::Canon;
pub use message::{HeaderField, split_message};
pub use sign::{MessageSigner, SignError, SignOptions, SignedHeader, Signer, header_names};
pub use verify::{DkimStatus, MessageVerifier, VerifyResult, verify};

/// Turns bare LF line ends into CRLF, across chunk boundaries.
///
/// RFC 6376 hashes the message in its SMTP wire form, where every line
/// ends in CRLF. Postfix hands body chunks to milters with CRLF already,
/// but folded header values arrive with bare LF, and messages given to
/// `dkimctl sign FILE` often use Unix line ends. The MTA converts to CRLF
/// when it transmits, so hashing the CRLF form is what makes the receiver
/// see the bytes we signed. A lone CR is left as it is.
#[derive(Debug, Default, Clone)]
pub struct CrlfNormalizer {
    last_was_cr: bool,
}

impl CrlfNormalizer {
    /// A normaliser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns `chunk` with bare LFs turned into CRLF. Borrows `chunk`
    /// unchanged (no copy) when it has no bare LF, which is the normal case
    /// for a body from Postfix; otherwise builds the result in `scratch`.
    pub fn normalize<'a>(&mut self, chunk: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
        // memchr finds the line ends (one per ~78 bytes of mail) with
        // vector compares; only they are looked at.
        let first_bare = memchr::memchr_iter(b'\n', chunk).find(|&i| match i.checked_sub(1) {
            Some(prev) => chunk.get(prev) != Some(&b'\r'),
            None => !self.last_was_cr,
        });
        let Some(first_bare) = first_bare else {
            if let Some(&last) = chunk.last() {
                self.last_was_cr = last == b'\r';
            }
            return chunk;
        };
        scratch.clear();
        scratch.reserve(chunk.len() + chunk.len() / 32 + 2);
        let (head, tail) = chunk.split_at(first_bare);
        scratch.extend_from_slice(head);
        let mut prev_cr = match head.last() {
            Some(&b) => b == b'\r',
            None => self.last_was_cr,
        };
        for &b in tail {
            if b == b'\n' && !prev_cr {
                scratch.push(b'\r');
            }
            scratch.push(b);
            prev_cr = b == b'\r';
        }
        self.last_was_cr = prev_cr;
        scratch
    }
}

/// Normalises one complete value (a header field value) to CRLF line ends.
pub fn crlf(value: &[u8]) -> Vec<u8> {
    let mut scratch = Vec::new();
    let out = CrlfNormalizer::new().normalize(value, &mut scratch);
    out.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_normalizer_table() {
        // (chunks, expected concatenation)
        let cases: &[(&[&[u8]], &[u8])] = &[
            (&[b"a\r\nb\r\n"], b"a\r\nb\r\n"),
            (&[b"a\nb\n"], b"a\r\nb\r\n"),
            (&[b"\n"], b"\r\n"),
            (&[b"a\r", b"\nb"], b"a\r\nb"),
            (&[b"a", b"\nb"], b"a\r\nb"),
            (&[b"a\r", b"x\n"], b"a\rx\r\n"),
            (&[b"", b"\n", b""], b"\r\n"),
            (&[b"x\r\n\n"], b"x\r\n\r\n"),
        ];
        for (chunks, expected) in cases {
            let mut n = CrlfNormalizer::new();
            let mut out = Vec::new();
            for c in *chunks {
                let mut scratch = Vec::new();
                out.extend_from_slice(n.normalize(c, &mut scratch));
            }
            assert_eq!(&out[..], *expected, "{chunks:?}");
        }
    }

    #[test]
    fn clean_chunk_is_not_copied() {
        let chunk = b"line\r\n".to_vec();
        let mut scratch = Vec::new();
        let out = CrlfNormalizer::new().normalize(&chunk, &mut scratch);
        assert_eq!(out.as_ptr(), chunk.as_ptr());
    }
}
