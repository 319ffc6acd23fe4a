//! Load: a thousand connections at once, a long run of messages, slow and
//! vanishing clients, idle time-outs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dkimctl::milter::Reply;
use dkimctl::milter::client::MilterClient;

use super::{BODY, HEADERS, resolver, signed_and_verifies, signing};
use crate::support::bin;
use crate::support::client::{
    LOCAL, macros, message_packets, one_message, read_final, runtime, signatures,
};
use crate::support::configs::Keyed;
use crate::support::proc::wait_until;
use crate::support::serve::Serve;

/// Raises this process's open-file limit to its hard limit; the daemons
/// the tests start inherit it.
fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    }
    hard
}

/// The binary for long runs: the release build when it is at least as new
/// as the debug build under test (so it is not stale), else the debug one.
pub(super) fn fastest_binary() -> (PathBuf, bool) {
    let debug = bin();
    // target/debug/dkimctl -> target/release/dkimctl (CARGO_TARGET_DIR too).
    let release = debug
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("release/dkimctl"))
        .unwrap_or_default();
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (mtime(&release), mtime(&debug)) {
        (Some(r), Some(d)) if r >= d => (release, true),
        _ => (debug, false),
    }
}

/// How far above its baseline the daemon's RSS may stay once 1,000
/// connections are closed: their buffers are freed, but the allocator
/// keeps some of the memory it was given (glibc's per-thread arenas).
const RSS_AFTER_LOAD_BOUND_KIB: u64 = 32 * 1024;

/// 1,000 concurrent milter connections held open, one message through each
/// at once: every message is answered and signed (and verifies); then the
/// daemon's file descriptors return to their baseline (±2) and its RSS to
/// within [`RSS_AFTER_LOAD_BOUND_KIB`] of it.
#[test]
fn load_1000_connections() {
    const N: usize = 1000;
    let hard = raise_nofile();
    assert!(
        hard >= 2 * N as u64 + 256,
        "RLIMIT_NOFILE hard limit {hard} is too low for {N} connections"
    );
    let s = Keyed::new(&signing("sign"));
    let d = Serve::start(&s.root);
    let rt = runtime();
    let resolver = resolver(&s.records);
    // Warm up (first-message allocations), then take the baseline.
    let (r, ls) = rt.block_on(one_message(d.addr(), None, LOCAL, HEADERS, BODY));
    assert!(rt.block_on(signed_and_verifies(&r, ls, &resolver)), "{r:?}");
    assert!(wait_until(Duration::from_secs(5), || d.fds() == d.fds()));
    let (base_fds, base_rss) = (d.fds(), d.rss_kib());

    let (held_fds, peak_rss, answered, verified) = rt.block_on(async {
        let mut clients = Vec::with_capacity(N);
        for _ in 0..N {
            let mut c = MilterClient::connect(d.addr()).await.expect("connect");
            c.negotiate().await.expect("negotiate");
            clients.push(c);
        }
        let held = d.fds();
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|mut c| {
                tokio::spawn(async move {
                    let r = tokio::time::timeout(
                        Duration::from_secs(120),
                        c.send_message(&macros(), LOCAL, HEADERS, BODY),
                    )
                    .await;
                    (c, r)
                })
            })
            .collect();
        let mut done = Vec::with_capacity(N);
        for t in tasks {
            done.push(t.await.expect("task"));
        }
        let peak = d.rss_kib();
        let mut answered = 0;
        let mut verified = 0;
        for (c, r) in done {
            if let Ok(Ok(replies)) = r {
                answered += 1;
                if signed_and_verifies(&replies, c.leading_space(), &resolver).await {
                    verified += 1;
                }
            }
            let _ = c.quit().await;
        }
        (held, peak, answered, verified)
    });
    let settled_fds = wait_until(Duration::from_secs(10), || d.fds() <= base_fds + 2);
    let settled_rss = wait_until(Duration::from_secs(10), || {
        d.rss_kib() <= base_rss + RSS_AFTER_LOAD_BOUND_KIB
    });
    let (after_fds, after_rss) = (d.fds(), d.rss_kib());
    eprintln!(
        "load_1000_connections: held {N} connections (daemon fds {base_fds} -> {held_fds} -> {after_fds}); \
         answered {answered}, signed and verified {verified}; RSS {base_rss} KiB -> peak {peak_rss} KiB -> {after_rss} KiB"
    );
    assert!(
        held_fds >= N,
        "the daemon did not hold {N} connections: {held_fds} fds"
    );
    assert_eq!(answered, N, "messages not answered");
    assert_eq!(verified, N, "messages not signed or not verifying");
    assert!(
        settled_fds,
        "fds did not return to baseline {base_fds}: {after_fds}"
    );
    assert!(
        settled_rss,
        "RSS {after_rss} KiB stayed above baseline {base_rss} KiB + {RSS_AFTER_LOAD_BOUND_KIB} KiB"
    );
    assert!(d.stop().success());
}

/// How much the daemon's RSS may grow from the 20% mark of the long run to
/// its end: a leak of even 100 bytes a message would exceed it.
const LONG_RUN_GROWTH_BOUND_KIB: u64 = 8 * 1024;

/// 100,000 messages over 8 connections with the release binary (20,000
/// with the debug one, when no fresh release build exists): every message
/// signed, every 1,000th verified, and RSS sampled every tenth of the run
/// grows by at most [`LONG_RUN_GROWTH_BOUND_KIB`] from the 20% mark to the
/// end.
#[test]
fn long_run_rss_100k_messages_release_or_20k_debug() {
    const CONNECTIONS: usize = 8;
    let (program, release) = fastest_binary();
    let total: usize = if release { 100_000 } else { 20_000 };
    let per_round = total / 10 / CONNECTIONS;
    let s = Keyed::new(&signing("sign"));
    let d = Serve::launch(&s.root).program(&program).start();
    let rt = runtime();
    let resolver = resolver(&s.records);
    let (samples, signed) = rt.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            let mut c = MilterClient::connect(d.addr()).await.expect("connect");
            c.negotiate().await.expect("negotiate");
            clients.push(c);
        }
        let mut samples = Vec::new();
        let mut signed = 0usize;
        for round in 0..10 {
            let tasks: Vec<_> = clients
                .drain(..)
                .enumerate()
                .map(|(i, mut c)| {
                    let resolver = Arc::clone(&resolver);
                    tokio::spawn(async move {
                        let mut ok = 0usize;
                        for m in 0..per_round {
                            let r = c
                                .send_message(&macros(), LOCAL, HEADERS, BODY)
                                .await
                                .expect("message");
                            let check = (round * per_round + m).is_multiple_of(1000) && i == 0;
                            let good = if check {
                                signed_and_verifies(&r, c.leading_space(), &resolver).await
                            } else {
                                signatures(&r) == 1 && r.last() == Some(&Reply::Continue)
                            };
                            ok += usize::from(good);
                        }
                        (c, ok)
                    })
                })
                .collect();
            for t in tasks {
                let (c, ok) = t.await.expect("task");
                signed += ok;
                clients.push(c);
            }
            samples.push(d.rss_kib());
        }
        for c in clients {
            let _ = c.quit().await;
        }
        (samples, signed)
    });
    let sent = per_round * CONNECTIONS * 10;
    let growth = samples.last().unwrap().saturating_sub(samples[1]);
    eprintln!(
        "long_run_rss: {sent} messages over {CONNECTIONS} connections ({} binary), {signed} signed; \
         RSS KiB at each tenth: {samples:?}; growth from the 20% mark: {growth} KiB",
        if release { "release" } else { "debug" }
    );
    assert_eq!(signed, sent, "messages not signed");
    assert!(
        growth <= LONG_RUN_GROWTH_BOUND_KIB,
        "RSS grew by {growth} KiB from the 20% mark: {samples:?}"
    );
    assert!(d.stop().success());
}

/// A client sending its message one byte per 100 ms and a client that
/// vanishes in the middle of a body do not hold up a third client, whose
/// messages are all signed meanwhile; the slow message is signed too, and
/// the daemon stays up.
#[test]
fn slow_client_and_vanishing_client_do_not_block_others() {
    let s = Keyed::new(&signing("sign"));
    let d = Serve::start(&s.root);
    let rt = runtime();
    let resolver = resolver(&s.records);
    let fast_done = Arc::new(AtomicBool::new(false));
    let (fast_during_slow, slow_ok, fast_ok) = rt.block_on(async {
        // The vanishing client: headers and half a body, then gone.
        let mut gone = MilterClient::connect(d.addr()).await.expect("connect");
        gone.negotiate().await.expect("negotiate");
        let packets = message_packets(HEADERS, BODY);
        gone.send_raw(&packets[..packets.len() - 30])
            .await
            .expect("send");
        drop(gone);

        let slow = {
            let addr = d.addr().to_string();
            let fast_done = Arc::clone(&fast_done);
            let resolver = Arc::clone(&resolver);
            tokio::spawn(async move {
                let mut c = MilterClient::connect(&addr).await.expect("connect");
                c.negotiate().await.expect("negotiate");
                let packets = message_packets(HEADERS, BODY);
                // One byte per 100 ms, at most 60 bytes (6 s), until the
                // fast client is done.
                let mut sent = 0;
                while sent < 60 && !fast_done.load(Ordering::SeqCst) {
                    c.send_raw(&packets[sent..=sent]).await.expect("send");
                    sent += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let during = fast_done.load(Ordering::SeqCst);
                c.send_raw(&packets[sent..]).await.expect("send");
                let replies = tokio::time::timeout(Duration::from_secs(30), read_final(&mut c))
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                (
                    during,
                    signed_and_verifies(&replies, c.leading_space(), &resolver).await,
                )
            })
        };
        let fast = {
            let addr = d.addr().to_string();
            let fast_done = Arc::clone(&fast_done);
            let resolver = Arc::clone(&resolver);
            tokio::spawn(async move {
                let mut c = MilterClient::connect(&addr).await.expect("connect");
                c.negotiate().await.expect("negotiate");
                let mut ok = 0;
                for _ in 0..5 {
                    let r = c
                        .send_message(&macros(), LOCAL, HEADERS, BODY)
                        .await
                        .expect("message");
                    ok += usize::from(signed_and_verifies(&r, c.leading_space(), &resolver).await);
                }
                fast_done.store(true, Ordering::SeqCst);
                ok
            })
        };
        let fast_ok = fast.await.expect("fast");
        let (during, slow_ok) = slow.await.expect("slow");
        (during, slow_ok, fast_ok)
    });
    assert_eq!(fast_ok, 5, "the fast client's messages were not all signed");
    assert!(
        fast_during_slow,
        "the fast client did not finish while the slow one was sending"
    );
    assert!(slow_ok, "the slow client's message was not signed");
    let mut d = d;
    assert!(d.running(), "the daemon died:\n{}", d.log_text());
    assert!(
        d.wait_log("closed the connection in the middle of a message", 1),
        "the vanished client was not logged:\n{}",
        d.log_text()
    );
    let (r, ls) = rt.block_on(one_message(d.addr(), None, LOCAL, HEADERS, BODY));
    assert!(rt.block_on(signed_and_verifies(&r, ls, &resolver)));
    assert!(d.stop().success());
}

/// `[engine] idle_timeout = "2s"`: an idle connection is closed by the
/// server (the client reads end of file), and the log says why.
#[test]
fn idle_connection_is_closed_after_idle_timeout() {
    let s = Keyed::new(&signing("sign").set("engine.idle_timeout", "2s"));
    let d = Serve::start(&s.root);
    let rt = runtime();
    let eof = rt.block_on(async {
        let mut c = MilterClient::connect(d.addr()).await.expect("connect");
        c.negotiate().await.expect("negotiate");
        // Hang detector only: the server should close after about 2 s.
        tokio::time::timeout(Duration::from_secs(60), c.read_reply()).await
    });
    assert!(
        matches!(eof, Ok(Ok(None))),
        "expected end of file, got {eof:?}"
    );
    assert!(d.wait_log("idle for 2s", 1), "{}", d.log_text());
    assert!(d.stop().success());
}
