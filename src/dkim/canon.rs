//! Canonicalization (RFC 6376 §3.4) and the body hash, in one streaming
//! pass of our own.
//!
//! # The body (§3.4.3, §3.4.4)
//!
//! [`BodyHasher`] takes the body in chunks as they come (from the MTA, or a
//! file) and feeds SHA-256 with the canonical form directly; the body is
//! never held. Line ends are CRLF; a bare LF also ends a line (the MTA
//! writes CRLF when it transmits, so that is what the receiver hashes),
//! while a bare CR is an ordinary byte of its line and is hashed (as
//! dkimpy, Mail::DKIM and OpenDKIM do).
//!
//! - `simple`: lines as they are; empty lines at the end of the body are
//!   ignored, and a body that does not end in CRLF gets one (an empty body
//!   is one CRLF).
//! - `relaxed`: in each line, runs of SP and HTAB become one SP and
//!   whitespace at the end of the line goes; *then* empty lines at the end
//!   of the body are ignored, so a line of only whitespace is an empty
//!   line like any other (`text\r\n  \r\n\t\r\n` hashes as `text\r\n`). An
//!   empty body stays empty; a non-empty one gets a final CRLF if it lacks
//!   one.
//!
//! Empty lines and whitespace are held back as counts until the next
//! ordinary byte shows they are not at the end, so the state between
//! chunks is a handful of integers. Runs of ordinary bytes go to SHA-256
//! as slices found with `memchr`, through a small staging buffer, which
//! keeps the cost close to a bare SHA-256 of the same bytes.
//!
//! # Header fields (§3.4.1, §3.4.2)
//!
//! [`canonical_header`]: `simple` is the field as received (name, colon,
//! value, CRLF); `relaxed` lower-cases the name, unfolds the value, turns
//! whitespace runs into one SP and drops whitespace at the ends and around
//! the colon (`Subject : x` is `subject:x`).

use aws_lc_rs::digest::{Context, SHA256};

pub use crate::keys::Canon;

/// Bytes staged before a SHA-256 update (fewer, larger updates).
const STAGE: usize = 8 * 1024;

/// The canonical body, hashed as it streams (see the module docs).
pub struct BodyHasher {
    canon: Canon,
    sha: Context,
    stage: Vec<u8>,
    /// Empty lines seen but not yet hashed (dropped if the body ends).
    pending_lines: u64,
    /// Relaxed: whitespace seen in the current line but not yet hashed
    /// (one SP if an ordinary byte follows; dropped at the line end).
    pending_space: bool,
    /// A CR ended the last chunk; whether it ends a line depends on the
    /// next byte.
    pending_cr: bool,
    /// Ordinary bytes of the current line were hashed (it is not empty).
    line_open: bool,
    /// Anything was hashed at all.
    started: bool,
    /// `l=`: hash only this many canonical bytes (verification only).
    limit: Option<u64>,
    /// Canonical bytes produced (hashed or beyond the limit).
    length: u64,
}

impl BodyHasher {
    /// A hasher for the given canonicalization, hashing the whole
    /// canonical body.
    pub fn new(canon: Canon) -> BodyHasher {
        BodyHasher::with_limit(canon, None)
    }

    /// A hasher that hashes only the first `limit` canonical bytes (a
    /// signature's `l=`); [`BodyHasher::length`] still counts them all.
    pub fn with_limit(canon: Canon, limit: Option<u64>) -> BodyHasher {
        BodyHasher {
            canon,
            sha: Context::new(&SHA256),
            stage: Vec::with_capacity(STAGE),
            pending_lines: 0,
            pending_space: false,
            pending_cr: false,
            line_open: false,
            started: false,
            limit,
            length: 0,
        }
    }

    /// Feeds the next chunk of the body.
    pub fn write(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        if self.pending_cr && !rest.is_empty() {
            self.pending_cr = false;
            if rest[0] == b'\n' {
                self.line_end();
                rest = &rest[1..];
            } else {
                self.ordinary(b"\r");
            }
        }
        match self.canon {
            Canon::Simple => self.write_simple(rest),
            Canon::Relaxed => self.write_relaxed(rest),
        }
    }

    fn write_simple(&mut self, mut rest: &[u8]) {
        while !rest.is_empty() {
            match memchr::memchr2(b'\r', b'\n', rest) {
                None => {
                    self.ordinary(rest);
                    return;
                }
                Some(i) => {
                    if i > 0 {
                        self.ordinary(&rest[..i]);
                    }
                    rest = self.line_break(&rest[i..]);
                }
            }
        }
    }

    fn write_relaxed(&mut self, mut rest: &[u8]) {
        while !rest.is_empty() {
            // The next byte that is not ordinary: SP, HTAB, CR or LF.
            let next = rest
                .iter()
                .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
            match next {
                None => {
                    self.ordinary(rest);
                    return;
                }
                Some(i) => {
                    if i > 0 {
                        self.ordinary(&rest[..i]);
                    }
                    match rest[i] {
                        b' ' | b'\t' => {
                            self.pending_space = true;
                            let run = rest[i..]
                                .iter()
                                .take_while(|&&b| b == b' ' || b == b'\t')
                                .count();
                            rest = &rest[i + run..];
                        }
                        _ => rest = self.line_break(&rest[i..]),
                    }
                }
            }
        }
    }

    /// `rest` starts with CR or LF: a line end (CRLF, bare LF), a bare CR
    /// (an ordinary byte), or a CR at the end of the chunk (undecided).
    /// Returns what follows.
    fn line_break<'a>(&mut self, rest: &'a [u8]) -> &'a [u8] {
        match rest {
            [b'\r', b'\n', tail @ ..] | [b'\n', tail @ ..] => {
                self.line_end();
                tail
            }
            [b'\r'] => {
                self.pending_cr = true;
                &[]
            }
            [b'\r', tail @ ..] => {
                self.ordinary(b"\r");
                tail
            }
            _ => &[],
        }
    }

    /// Ordinary bytes of a line (never CR, LF; in relaxed mode never WSP).
    fn ordinary(&mut self, bytes: &[u8]) {
        while self.pending_lines > 0 {
            self.emit(b"\r\n");
            self.pending_lines -= 1;
        }
        if self.pending_space {
            self.pending_space = false;
            self.emit(b" ");
        }
        self.emit(bytes);
        self.line_open = true;
    }

    fn line_end(&mut self) {
        // Relaxed: whitespace at the end of a line is dropped.
        self.pending_space = false;
        if self.line_open {
            self.emit(b"\r\n");
            self.line_open = false;
        } else {
            self.pending_lines += 1;
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.started = true;
        let take = match self.limit {
            Some(limit) => {
                let left = limit.saturating_sub(self.length);
                bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX))
            }
            None => bytes.len(),
        };
        self.length += bytes.len() as u64;
        let bytes = &bytes[..take];
        if bytes.len() >= STAGE {
            self.flush();
            self.sha.update(bytes);
        } else {
            if self.stage.len() + bytes.len() > STAGE {
                self.flush();
            }
            self.stage.extend_from_slice(bytes);
        }
    }

    fn flush(&mut self) {
        if !self.stage.is_empty() {
            self.sha.update(&self.stage);
            self.stage.clear();
        }
    }

    /// Ends the body: the final CRLF rules, then the hash.
    pub fn finish(mut self) -> [u8; 32] {
        if self.pending_cr {
            self.pending_cr = false;
            self.ordinary(b"\r");
        }
        if self.line_open {
            // A last line without CRLF gets one.
            self.emit(b"\r\n");
        } else if !self.started && self.canon == Canon::Simple {
            // simple: an empty body (or only empty lines) is one CRLF.
            self.emit(b"\r\n");
        }
        self.flush();
        let digest = self.sha.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }

    /// Canonical body bytes produced so far (for `l=`: the body is longer
    /// than the signed part when this exceeds the limit at the end).
    pub fn length(&self) -> u64 {
        self.length
    }
}

/// Appends the canonical form of one header field to `out`: `name` as
/// received, `value` everything after the colon in wire form (CRLF line
/// ends, ending in CRLF).
pub fn canonical_header(canon: Canon, name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    match canon {
        Canon::Simple => {
            out.extend_from_slice(name);
            out.push(b':');
            out.extend_from_slice(value);
            if !value.ends_with(b"\r\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
        Canon::Relaxed => {
            let name = trim_wsp(name);
            out.extend(name.iter().map(u8::to_ascii_lowercase));
            out.push(b':');
            let mut space = false;
            let mut any = false;
            for &b in value {
                match b {
                    // Unfolding: CR and LF go; the whitespace after them
                    // is part of a run like any other.
                    b'\r' | b'\n' => {}
                    b' ' | b'\t' => space = true,
                    _ => {
                        if space && any {
                            out.push(b' ');
                        }
                        space = false;
                        any = true;
                        out.push(b);
                    }
                }
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// The header field name without surrounding whitespace (RFC 5322's
/// obsolete syntax allows whitespace before the colon).
pub fn trim_wsp(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical body itself (hashing what the hasher would hash).
    fn canonical(canon: Canon, chunks: &[&[u8]]) -> Vec<u8> {
        // A reference canonicalizer written from the RFC's words, line by
        // line, to compare the streaming one against.
        let all: Vec<u8> = chunks.concat();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut cur = Vec::new();
        let mut i = 0;
        let mut ended = false;
        while i < all.len() {
            match all[i] {
                b'\r' if all.get(i + 1) == Some(&b'\n') => {
                    lines.push(std::mem::take(&mut cur));
                    i += 2;
                    ended = true;
                    continue;
                }
                b'\n' => {
                    lines.push(std::mem::take(&mut cur));
                    ended = true;
                }
                b => {
                    cur.push(b);
                    ended = false;
                }
            }
            i += 1;
        }
        if !cur.is_empty() || (!ended && !all.is_empty()) {
            lines.push(cur);
        }
        if canon == Canon::Relaxed {
            for l in &mut lines {
                let mut out = Vec::new();
                let mut space = false;
                for &b in l.iter() {
                    if b == b' ' || b == b'\t' {
                        space = true;
                    } else {
                        if space {
                            out.push(b' ');
                        }
                        space = false;
                        out.push(b);
                    }
                }
                *l = out;
            }
        }
        while lines.last().is_some_and(Vec::is_empty) {
            lines.pop();
        }
        let mut out = Vec::new();
        for l in &lines {
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
        }
        if out.is_empty() && canon == Canon::Simple {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn hash(canon: Canon, chunks: &[&[u8]]) -> [u8; 32] {
        let mut h = BodyHasher::new(canon);
        for c in chunks {
            h.write(c);
        }
        h.finish()
    }

    fn sha(b: &[u8]) -> [u8; 32] {
        let d = aws_lc_rs::digest::digest(&SHA256, b);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    #[test]
    fn bodies_by_the_rfc() {
        // (body, simple, relaxed)
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"", b"\r\n", b""),
            (b"\r\n", b"\r\n", b""),
            (b"\r\n\r\n\r\n", b"\r\n", b""),
            (b"text", b"text\r\n", b"text\r\n"),
            (b"text\r\n", b"text\r\n", b"text\r\n"),
            // Issue 12, defect 1: whitespace-only lines at the end.
            (
                b"text\r\n  \r\n\t\r\n",
                b"text\r\n  \r\n\t\r\n",
                b"text\r\n",
            ),
            (b"a  b\t\tc \r\n", b"a  b\t\tc \r\n", b"a b c\r\n"),
            (b" leading\r\n", b" leading\r\n", b" leading\r\n"),
            (
                b"a\r\n\r\n \r\nb\r\n\r\n",
                b"a\r\n\r\n \r\nb\r\n",
                b"a\r\n\r\n\r\nb\r\n",
            ),
            // Issue 12, defect 2: a bare CR is part of its line.
            (b"a\rb\r\n", b"a\rb\r\n", b"a\rb\r\n"),
            (b"a \r b\r\n", b"a \r b\r\n", b"a \r b\r\n"),
            (b"end\r", b"end\r\r\n", b"end\r\r\n"),
            // A bare LF ends a line (the MTA transmits CRLF).
            (b"a\nb\n\n", b"a\r\nb\r\n", b"a\r\nb\r\n"),
            (b"\xe9t\xe9 \r\n", b"\xe9t\xe9 \r\n", b"\xe9t\xe9\r\n"),
        ];
        for (body, simple, relaxed) in cases {
            assert_eq!(
                canonical(Canon::Simple, &[body]),
                *simple,
                "reference simple {body:?}"
            );
            assert_eq!(
                canonical(Canon::Relaxed, &[body]),
                *relaxed,
                "reference relaxed {body:?}"
            );
            assert_eq!(hash(Canon::Simple, &[body]), sha(simple), "simple {body:?}");
            assert_eq!(
                hash(Canon::Relaxed, &[body]),
                sha(relaxed),
                "relaxed {body:?}"
            );
        }
    }

    #[test]
    fn any_chunking_gives_the_same_hash() {
        let body: &[u8] =
            b"Ol\xe9,\r\n\r\nla  cr\xe8me \t\r\n  br\xfbl\xe9e\r\rx\n\n \t \r\nend \r\n\r\n  \r\n";
        for canon in [Canon::Simple, Canon::Relaxed] {
            let whole = hash(canon, &[body]);
            assert_eq!(whole, sha(&canonical(canon, &[body])), "{canon:?}");
            for cut in 0..=body.len() {
                let (a, b) = body.split_at(cut);
                assert_eq!(hash(canon, &[a, b]), whole, "{canon:?} cut at {cut}");
            }
            let bytes: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(hash(canon, &bytes), whole, "{canon:?} byte by byte");
        }
    }

    #[test]
    fn pseudo_random_bodies_match_the_reference() {
        let alphabet = b"ab \t\r\n\r\n";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut body = Vec::new();
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let len = (seed >> 58) as usize;
            for _ in 0..len {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                body.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            for canon in [Canon::Simple, Canon::Relaxed] {
                let want = sha(&canonical(canon, &[&body]));
                assert_eq!(hash(canon, &[&body]), want, "{canon:?} {body:?}");
                let cut = body.len() / 2;
                assert_eq!(
                    hash(canon, &[&body[..cut], &body[cut..]]),
                    want,
                    "{canon:?} {body:?}"
                );
            }
        }
    }

    #[test]
    fn a_length_limit_hashes_the_prefix_and_counts_the_rest() {
        let mut h = BodyHasher::with_limit(Canon::Simple, Some(5));
        h.write(b"hello world\r\n");
        assert_eq!(h.length(), 13);
        assert_eq!(h.finish(), sha(b"hello"));
    }

    #[test]
    fn header_fields() {
        let mut out = Vec::new();
        canonical_header(Canon::Relaxed, b"SubJect ", b" A  b\r\n\t c \r\n", &mut out);
        assert_eq!(out, b"subject:A b c\r\n");
        out.clear();
        canonical_header(Canon::Simple, b"Subject ", b" x\r\n", &mut out);
        assert_eq!(out, b"Subject : x\r\n");
        out.clear();
        canonical_header(Canon::Relaxed, b"X", b"\r\n", &mut out);
        assert_eq!(out, b"x:\r\n");
    }
}
