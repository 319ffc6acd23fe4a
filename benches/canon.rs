//! The body hash against a bare SHA-256 of the same bytes: what
//! canonicalization adds, per body shape and canonicalization.
//!
//! `cargo bench --bench canon` (add `-- SHAPE` to run one shape). Each
//! figure is the CPU time of the measuring thread per pass over a 5 MB
//! body fed in 64 KB chunks (the milter's chunk size), averaged over 0.4
//! CPU-seconds of passes, so other load on the machine barely moves it. It is a micro-benchmark for
//! work on `src/dkim/canon.rs`; the engine's figures, and the ratio of its
//! CPU per message to a bare SHA-256, come from `benches/milter.rs`.

#[path = "support/words.rs"]
mod words;
use std::time::Duration;
use words::WORDS;

use aws_lc_rs::digest::{Context, SHA256};
use dkimctl::dkim::canon::{BodyHasher, Canon};
use nix::sys::resource::{UsageWho, getrusage};

const SIZE: usize = 5 << 20;

/// A body shape: its name and how to make it.
type Body = (&'static str, fn() -> Vec<u8>);
const CHUNK: usize = 65535;

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    getrusage(UsageWho::RUSAGE_THREAD).map_or(Duration::ZERO, |u| {
        let t = |tv: nix::sys::time::TimeVal| {
            Duration::new(tv.tv_sec().max(0) as u64, tv.tv_usec().max(0) as u32 * 1000)
        };
        t(u.user_time()) + t(u.system_time())
    })
}

/// CPU time per call of `f`: calls repeated until the thread has used
/// 0.4 s (the kernel's per-thread figure is exact only over such spans).
fn per_call(mut f: impl FnMut()) -> Duration {
    f();
    let start = thread_cpu();
    let mut calls = 0u32;
    loop {
        f();
        calls += 1;
        let used = thread_cpu().saturating_sub(start);
        if used >= Duration::from_millis(400) {
            return used / calls;
        }
    }
}

/// A small deterministic generator (no dependency for benchmark input).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, m: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize % m
    }
}

/// Words, single spaces, 74-character lines, CRLF: plain text mail, and
/// the shape of the engine benchmark's message bodies (the same words).
fn text() -> Vec<u8> {
    let mut body = Vec::with_capacity(SIZE + 80);
    let mut rng = Lcg(1);
    while body.len() < SIZE {
        let mut line = String::new();
        loop {
            let w = WORDS[rng.next(WORDS.len())];
            if line.len() + w.len() + 1 > 74 {
                break;
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(w);
        }
        body.extend_from_slice(line.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// 76-character base64 lines: an attachment.
fn base64() -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut body = Vec::with_capacity(SIZE + 80);
    let mut rng = Lcg(2);
    while body.len() < SIZE {
        body.extend((0..76).map(|_| ALPHABET[rng.next(64)]));
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// Indented HTML: a whitespace run at the start of most lines, some
/// trailing spaces, empty lines.
fn html() -> Vec<u8> {
    const LINES: &[&[u8]] = &[
        b"<table>\r\n",
        b"  <tr>\r\n",
        b"    <td class=\"cell\">Some text in a cell, and more of it</td>\r\n",
        b"\t\t<p>A paragraph of text that goes on for a while.</p>\r\n",
        b"\r\n",
        b"    </tr>  \r\n",
    ];
    let mut body = Vec::with_capacity(SIZE + 80);
    let mut i = 0;
    while body.len() < SIZE {
        body.extend_from_slice(LINES[i % LINES.len()]);
        i += 1;
    }
    body
}

/// The worst case: short pieces of whitespace runs, bare CR and LF, empty
/// and whitespace-only lines, everything the canonical form rewrites.
fn hostile() -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"word ",
        b"two  spaces",
        b"\ttab",
        b"trail  \r\n",
        b"\r\n",
        b"bare\n",
        b"x",
        b" \t ",
        b"cr\rx",
    ];
    let mut body = Vec::with_capacity(SIZE + 16);
    let mut rng = Lcg(3);
    while body.len() < SIZE {
        body.extend_from_slice(PIECES[rng.next(PIECES.len())]);
    }
    body
}

fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let shapes: [Body; 4] = [
        ("text", text),
        ("base64", base64),
        ("html", html),
        ("hostile", hostile),
    ];
    println!(
        "| body (5 MB, 64 KB chunks) | bare SHA-256 ms | simple ms (÷ SHA-256) | relaxed ms (÷ SHA-256) |"
    );
    println!("|---|---:|---:|---:|");
    for (name, make) in shapes {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let body = make();
        let sha = per_call(|| {
            let mut c = Context::new(&SHA256);
            for chunk in body.chunks(CHUNK) {
                c.update(chunk);
            }
            std::hint::black_box(c.finish());
        });
        let mut row = format!("| {name} | {:.2} |", sha.as_secs_f64() * 1e3);
        for canon in [Canon::Simple, Canon::Relaxed] {
            let t = per_call(|| {
                let mut h = BodyHasher::new(canon);
                for chunk in body.chunks(CHUNK) {
                    h.write(chunk);
                }
                std::hint::black_box(h.finish());
            });
            row.push_str(&format!(
                " {:.2} ({:.2}×) |",
                t.as_secs_f64() * 1e3,
                t.as_secs_f64() / sha.as_secs_f64()
            ));
        }
        println!("{row}");
    }
}
