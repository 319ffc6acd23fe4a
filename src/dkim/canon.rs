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
//! chunks is a handful of integers.
//!
//! Most of a real body is already in canonical form: CRLF line ends, and
//! (relaxed) single spaces between words, no tabs, nothing at line ends.
//! One pass over byte pairs, branch-free over blocks of up to 1024 pairs
//! so that it compiles to vector compares, finds the next place where the
//! canonical form may differ from the input (a bare CR or LF, an empty
//! line, in relaxed mode an HTAB or whitespace before whitespace or a line
//! end); everything before it goes to SHA-256 as it is, without a copy.
//! Only from that place to the next ordinary byte does a byte-by-byte state
//! machine run. On text and base64 bodies the whole costs about 1.15 times
//! a bare SHA-256 of the same bytes (`benches/canon.rs` measures it); a
//! body full of whitespace runs and bare line ends costs more, bounded by
//! the byte loop (about 4 times for indented HTML, 12 for the worst mix).
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

/// Byte pairs [`first_flag`] tests in one go, at most: the test is
/// branch-free over a block, so the compiler turns it into vector compares,
/// and a block ends in one branch. Blocks start at [`GROUP`] pairs after
/// each stop (places to rewrite come in clusters: indented lines, runs of
/// empty lines) and double while nothing is found.
const BLOCK: usize = 1024;

/// The smallest block of pairs [`first_flag`] tests, and the unit it finds
/// a flagged pair in before testing pairs one by one.
const GROUP: usize = 16;

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
    /// Canonical bytes produced (hashed, staged or beyond the limit).
    length: u64,
    /// Canonical bytes given to SHA-256.
    hashed: u64,
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
            hashed: 0,
        }
    }

    /// Feeds the next chunk of the body.
    ///
    /// Two paths take turns. The fast one finds the longest stretch that
    /// is already canonical — CRLF line ends, no empty line, in relaxed
    /// mode no HTAB, no run of spaces and no space at a line end — and
    /// hands it to SHA-256 as it is. The slow one takes what the fast one
    /// stopped at, byte by byte, until the fast one can go on.
    pub fn write(&mut self, chunk: &[u8]) {
        // The fast path is `verbatim_len` and `verbatim`, the slow one
        // `write_slow`.
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
        while !rest.is_empty() {
            let n = self.verbatim_len(rest);
            if n > 0 {
                self.verbatim(&rest[..n]);
                rest = &rest[n..];
            } else {
                let n = self.write_slow(rest);
                rest = &rest[n..];
            }
        }
    }

    /// How many bytes at the start of `rest` are their own canonical form,
    /// given what came before, and leave nothing pending: they end with an
    /// ordinary byte or with the LF of a non-empty line.
    fn verbatim_len(&self, rest: &[u8]) -> usize {
        if self.pending_space || self.pending_cr {
            return 0;
        }
        match rest.first() {
            // A bare LF (the byte before was not a CR), or an empty line.
            Some(b'\n') | None => return 0,
            Some(b'\r') if !self.line_open => return 0,
            Some(_) => {}
        }
        let relaxed = self.canon == Canon::Relaxed;
        let mut k = match if relaxed {
            first_flag::<true>(rest)
        } else {
            first_flag::<false>(rest)
        } {
            // The first byte of a flagged pair can still be taken when it
            // is ordinary or the LF of a line that was not empty (pairs
            // before it were not flagged, so a CR precedes it).
            Some(i) if !is_special(relaxed, rest[i]) || rest[i] == b'\n' => i + 1,
            Some(i) => i,
            None => rest.len(),
        };
        // Whitespace or a CR at the end depends on what follows.
        while k > 0 && is_special(relaxed, rest[k - 1]) && rest[k - 1] != b'\n' {
            k -= 1;
        }
        k
    }

    /// Hashes bytes [`BodyHasher::verbatim_len`] accepted.
    fn verbatim(&mut self, bytes: &[u8]) {
        while self.pending_lines > 0 {
            self.emit(b"\r\n");
            self.pending_lines -= 1;
        }
        self.emit(bytes);
        self.line_open = bytes.last() != Some(&b'\n');
    }

    /// The general case, for any bytes in any state, byte by byte, until
    /// the fast path can go on: nothing pending and an ordinary byte next.
    /// Returns how many bytes it took (at least one).
    fn write_slow(&mut self, bytes: &[u8]) -> usize {
        let relaxed = self.canon == Canon::Relaxed;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b' ' | b'\t' if relaxed => self.pending_space = true,
                b'\n' => self.line_end(),
                // A CR before LF belongs to the line end; a last CR may be
                // half a CRLF; any other CR is an ordinary byte.
                b'\r' => match bytes.get(i + 1) {
                    Some(b'\n') => {
                        self.line_end();
                        i += 1;
                    }
                    None => self.pending_cr = true,
                    Some(_) => self.ordinary_byte(b'\r'),
                },
                b => self.ordinary_byte(b),
            }
            i += 1;
            if !self.pending_space && bytes.get(i).is_some_and(|&b| !is_special(relaxed, b)) {
                break;
            }
        }
        i
    }

    /// One ordinary byte: straight into the staging buffer unless
    /// something is pending.
    fn ordinary_byte(&mut self, b: u8) {
        if self.pending_lines > 0 || self.pending_space {
            self.ordinary(&[b]);
            return;
        }
        self.stage.push(b);
        self.length += 1;
        self.started = true;
        self.line_open = true;
        if self.stage.len() >= STAGE {
            self.flush();
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
        self.length += bytes.len() as u64;
        if bytes.len() >= STAGE {
            self.flush();
            self.hash(bytes);
        } else {
            if self.stage.len() + bytes.len() > STAGE {
                self.flush();
            }
            self.stage.extend_from_slice(bytes);
        }
    }

    fn flush(&mut self) {
        if !self.stage.is_empty() {
            let stage = std::mem::take(&mut self.stage);
            self.hash(&stage);
            self.stage = stage;
            self.stage.clear();
        }
    }

    /// Feeds SHA-256, up to the `l=` limit.
    fn hash(&mut self, bytes: &[u8]) {
        let take = match self.limit {
            Some(limit) => {
                let left = limit.saturating_sub(self.hashed);
                bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX))
            }
            None => bytes.len(),
        };
        self.hashed += take as u64;
        self.sha.update(&bytes[..take]);
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

/// Bytes whose meaning depends on their neighbours: CR and LF, and in
/// relaxed mode SP and HTAB.
fn is_special(relaxed: bool, b: u8) -> bool {
    matches!(b, b'\r' | b'\n') || (relaxed && matches!(b, b' ' | b'\t'))
}

/// Whether the byte pair `a b` stops a verbatim stretch (non-zero): a CR
/// not followed by LF or an LF not preceded by CR (a bare CR or LF, or half
/// of a CRLF at the edge); in simple mode an LF followed by CR (the next
/// line may be empty); in relaxed mode an HTAB, and an SP or LF followed by
/// a byte up to SP (a run of spaces, spaces at the end of a line, a line
/// that starts with whitespace or is empty; a control byte after them is
/// stopped at too, needlessly but harmlessly: the slow path gets it right).
/// An SP followed by HTAB is caught by the next pair. Branch-free, so that
/// a block of pairs compiles to vector compares.
#[inline(always)]
fn flag<const RELAXED: bool>(a: u8, b: u8) -> u8 {
    let line = ((a == b'\r') ^ (b == b'\n')) as u8;
    if RELAXED {
        line | (a == b'\t') as u8 | (((a == b' ') | (a == b'\n')) & (b <= b' ')) as u8
    } else {
        line | ((a == b'\n') & (b == b'\r')) as u8
    }
}

/// The index of the first flagged pair (`bytes[i]`, `bytes[i + 1]`), if
/// any (see [`flag`]): growing blocks of pairs, then the [`GROUP`] of the
/// block that has a flag, then the pair.
fn first_flag<const RELAXED: bool>(bytes: &[u8]) -> Option<usize> {
    let any = |from: usize, n: usize| {
        bytes[from..from + n]
            .iter()
            .zip(&bytes[from + 1..from + n + 1])
            .fold(0u8, |acc, (&a, &b)| acc | flag::<RELAXED>(a, b))
            != 0
    };
    let pairs = bytes.len().saturating_sub(1);
    let mut base = 0;
    let mut block = GROUP;
    while base < pairs {
        let end = (base + block).min(pairs);
        if any(base, end - base) {
            let mut sub = base;
            while sub < end {
                let n = GROUP.min(end - sub);
                if any(sub, n) {
                    return bytes[sub..sub + n]
                        .iter()
                        .zip(&bytes[sub + 1..])
                        .position(|(&a, &b)| flag::<RELAXED>(a, b) != 0)
                        .map(|i| sub + i);
                }
                sub += n;
            }
        }
        base = end;
        block = (block * 2).min(BLOCK);
    }
    None
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

    /// Every way to cut `body` into two and three chunks hashes as the
    /// reference says.
    fn check_all_cuts(body: &[u8]) {
        for canon in [Canon::Simple, Canon::Relaxed] {
            let want = sha(&canonical(canon, &[body]));
            assert_eq!(hash(canon, &[body]), want, "{canon:?} {body:?}");
            for i in 0..=body.len() {
                let (a, rest) = body.split_at(i);
                assert_eq!(hash(canon, &[a, rest]), want, "{canon:?} {body:?} cut {i}");
                for j in 0..=rest.len() {
                    let (b, c) = rest.split_at(j);
                    assert_eq!(
                        hash(canon, &[a, b, c]),
                        want,
                        "{canon:?} {body:?} cuts {i}, {}",
                        i + j
                    );
                }
            }
        }
    }

    #[test]
    fn chunk_boundaries_at_every_position() {
        let bodies: &[&[u8]] = &[
            // CR|LF split across chunks, bare CR and LF next to CRLF.
            b"ab\r\ncd\r\r\nef\n\rg\r\n\r",
            // WSP runs across chunks, at line starts, ends and alone.
            b"a \t  b\t\r\n \t\r\n  x  \r\n\t\ty\t \r\n z\r\n",
            // Trailing empty (and whitespace-only) lines across chunks.
            b"text\r\n\r\n  \r\n\t\r\n\r\n",
            b"text\r\n\r\n\r\nmore\r\n\r\n \r\n",
            b"\r\n\r\nstart after empty lines \r\n\n\nend",
            b"no final line end  ",
            b"cr at the end\r",
        ];
        for body in bodies {
            check_all_cuts(body);
        }
    }

    #[test]
    fn specials_at_every_offset_of_the_first_vector_blocks() {
        // The fast path tests blocks of 16, 32, 64, ... pairs: put each
        // byte pattern the slow path must handle at every offset of a
        // 150-byte line (across three block edges), and cut the body
        // everywhere.
        let snippets: &[&[u8]] = &[
            b"  ",
            b" \t",
            b"\t",
            b" \r\n",
            b"\r",
            b"\n",
            b"\r\n\r\n",
            b"\r\n \r\n\r\n",
            b"\r\r\n",
            b" ",
        ];
        let line = [b'x'; 150];
        for snippet in snippets {
            for at in 0..=line.len() {
                let mut body = line[..at].to_vec();
                body.extend_from_slice(snippet);
                body.extend_from_slice(&line[at..]);
                body.extend_from_slice(b"\r\n");
                for canon in [Canon::Simple, Canon::Relaxed] {
                    let want = sha(&canonical(canon, &[&body]));
                    for cut in 0..=body.len() {
                        let (a, b) = body.split_at(cut);
                        assert_eq!(
                            hash(canon, &[a, b]),
                            want,
                            "{canon:?} {snippet:?} at {at}, cut {cut}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn specials_next_to_every_vector_block_edge() {
        // Blocks grow to 1024 pairs: the edges of a stretch that starts at
        // the body's start are at 16, 48, 112, 240, 496, 1008, 2032, 3056
        // pairs. Put each pattern just before, on and after each (also in
        // a stretch that starts after a whitespace run), whole and cut
        // around it.
        let snippets: &[&[u8]] = &[b"  ", b"\t", b" \r\n", b"\r", b"\n", b"\r\n\r\n", b"\r\n "];
        let edges = [16, 48, 112, 240, 496, 1008, 2032, 3056];
        for prefix in [&b""[..], b"  a"] {
            for snippet in snippets {
                for edge in edges {
                    for at in edge - 2..=edge + 2 {
                        let mut body = prefix.to_vec();
                        body.extend(std::iter::repeat_n(b'x', at));
                        body.extend_from_slice(snippet);
                        body.extend(std::iter::repeat_n(b'y', 200));
                        body.extend_from_slice(b"\r\n");
                        let near = prefix.len() + at;
                        for canon in [Canon::Simple, Canon::Relaxed] {
                            let want = sha(&canonical(canon, &[&body]));
                            assert_eq!(
                                hash(canon, &[&body]),
                                want,
                                "{canon:?} {snippet:?} at {at}"
                            );
                            for cut in near - 1..=near + snippet.len() + 1 {
                                let (a, b) = body.split_at(cut);
                                assert_eq!(
                                    hash(canon, &[a, b]),
                                    want,
                                    "{canon:?} {snippet:?} at {at}, cut {cut}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn long_pseudo_random_bodies_in_random_chunks() {
        // Mostly ordinary bytes with single spaces (long verbatim stretches
        // for the fast path), broken by every special case.
        let alphabet = b"abcdefgh abcdefgh abcdefgh \r\n\r\n\r\n \t\r\n\r\n\n\r  ";
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |m: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % m
        };
        for _ in 0..1500 {
            let len = next(400);
            let body: Vec<u8> = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut rest = &body[..];
            while !rest.is_empty() {
                let (a, b) = rest.split_at(1 + next(rest.len().min(90)));
                chunks.push(a);
                rest = b;
            }
            for canon in [Canon::Simple, Canon::Relaxed] {
                let want = sha(&canonical(canon, &[&body]));
                assert_eq!(hash(canon, &[&body]), want, "{canon:?} {body:?}");
                assert_eq!(hash(canon, &chunks), want, "{canon:?} {chunks:?}");
            }
        }
    }

    #[test]
    fn a_length_limit_inside_a_verbatim_stretch() {
        let mut body = Vec::new();
        for i in 0..40 {
            body.extend_from_slice(format!("line {i} of the body  \r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n\r\n");
        for canon in [Canon::Simple, Canon::Relaxed] {
            let full = canonical(canon, &[&body]);
            for limit in [0, 1, 63, 64, 65, 200, full.len() as u64 - 1] {
                let mut h = BodyHasher::with_limit(canon, Some(limit));
                for c in body.chunks(37) {
                    h.write(c);
                }
                assert_eq!(h.length(), full.len() as u64, "{canon:?} {limit}");
                assert_eq!(
                    h.finish(),
                    sha(&full[..limit as usize]),
                    "{canon:?} {limit}"
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
