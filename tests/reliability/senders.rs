//! Hostile senders: what a remote sender controls (headers, bodies, every
//! `d=` and `s=`, how fast it talks) must not grow the engine's memory
//! beyond a bound or hold its connection slots.
//!
//! Memory is measured as the daemon's RSS growth under load, after a
//! warm-up; the figures are printed for the README's reliability section.
//!
//! See: issue 15, items 3, 5, 6 and 11.

use std::time::{Duration, Instant};

use dkimctl::milter::client::MilterClient;

use super::signing;
use crate::support::client::{REMOTE, macros, runtime};
use crate::support::configs::{Config, list};
use crate::support::serve::Serve;

/// A verifying configuration whose name server never answers (nothing
/// listens on the discard port): lookups fail fast or time out after 1 s.
fn verifying() -> Config {
    signing("verify")
        .set("engine.nameservers", list(&["127.0.0.1:9"]))
        .set("engine.dns_timeout", "1s")
}

/// An incoming message with one DKIM-Signature whose `d=` is `domain`.
fn with_signature(domain: &str, selector: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (
            b"DKIM-Signature".to_vec(),
            format!(
                " v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s={selector};\r\n\th=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA"
            )
            .into_bytes(),
        ),
        (b"From".to_vec(), format!(" someone@{}", &domain[..domain.len().min(60)]).into_bytes()),
        (b"Subject".to_vec(), b" hi".to_vec()),
    ]
}

fn fields(h: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
    h.iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect()
}

/// How much the daemon's RSS may grow over 600 messages each signed for
/// its own 100 KB domain: the messages' buffers, not one copy per sender
/// (which is 60 MB).
const PER_SENDER_GROWTH_BOUND_KIB: u64 = 16 * 1024;

/// 600 incoming messages, each with a DKIM-Signature for a different
/// 100 KB `d=` (metrics off, the default): RSS grows by less than
/// [`PER_SENDER_GROWTH_BOUND_KIB`], because nothing per sender outlives
/// its message (the metrics label every domain that is not configured
/// "other").
#[test]
fn a_hundred_kilobyte_domain_per_message_leaves_nothing_behind() {
    const MESSAGES: usize = 600;
    let root = verifying().root();
    let d = Serve::start(&root);
    let rt = runtime();
    let long = |i: usize| format!("{i:08}{}.example", "a".repeat(100 * 1024));
    let (base, after, elapsed) = rt.block_on(async {
        let mut c = MilterClient::connect(d.addr()).await.expect("connect");
        c.negotiate().await.expect("negotiate");
        // Warm-up: the buffers a message of this size needs.
        for i in 0..50 {
            let h = with_signature(&long(MESSAGES + i), "s");
            c.send_message(&macros(), REMOTE, &fields(&h), b"body\r\n")
                .await
                .expect("message");
        }
        let base = d.rss_kib();
        let started = Instant::now();
        for i in 0..MESSAGES {
            let h = with_signature(&long(i), "s");
            let r = tokio::time::timeout(
                Duration::from_secs(30),
                c.send_message(&macros(), REMOTE, &fields(&h), b"body\r\n"),
            )
            .await
            .expect("no answer within 30 s")
            .expect("message");
            assert!(r.last().is_some_and(|r| r.is_final()), "{r:?}");
        }
        let _ = c.quit().await;
        (base, d.rss_kib(), started.elapsed())
    });
    let growth = after.saturating_sub(base);
    eprintln!(
        "per-sender memory: {MESSAGES} messages, each d= of 100 KB, in {:.1}s; RSS {base} KiB -> {after} KiB (+{growth} KiB)",
        elapsed.as_secs_f64()
    );
    assert!(
        growth < PER_SENDER_GROWTH_BOUND_KIB,
        "RSS grew by {growth} KiB over {MESSAGES} senders: something per sender is kept"
    );
    assert!(d.stop().success());
}
