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

/// A name server on 127.0.0.1 in this test suite's port range that never
/// answers: its UDP socket is never read and its TCP socket never
/// accepts. Dropped (closed) with the value.
struct BlackHole {
    _udp: std::net::UdpSocket,
    _tcp: std::net::TcpListener,
    port: u16,
}

impl BlackHole {
    fn bind() -> BlackHole {
        for port in PORTS {
            let Ok(udp) = std::net::UdpSocket::bind(("127.0.0.1", port)) else {
                continue;
            };
            let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", port)) else {
                continue;
            };
            return BlackHole {
                _udp: udp,
                _tcp: tcp,
                port,
            };
        }
        panic!("no free port in {PORTS:?} for the black-hole name server");
    }
}

/// The loopback ports these tests may listen on.
const PORTS: std::ops::Range<u16> = 15500..15600;

/// A message with 20 DKIM-Signatures for 20 different domains, verified
/// while the name server never answers (`dns_timeout = "1s"`): the answer
/// comes after one deadline for all lookups (the resolver's worst case,
/// 4 s here), not one per signature (20 × 3 s before), with 8 signatures
/// checked (`temperror`) and the other 12 `neutral`.
#[test]
fn twenty_signatures_and_a_black_hole_name_server_cost_one_deadline() {
    let hole = BlackHole::bind();
    let config = signing("verify")
        .set(
            "engine.nameservers",
            list(&[format!("127.0.0.1:{}", hole.port)]),
        )
        .set("engine.dns_timeout", "1s");
    let root = config.root();
    let d = Serve::start_unix(&root);
    let rt = runtime();
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = (0..20)
        .map(|i| with_signature(&format!("sender-{i}.example"), "s").remove(0))
        .collect();
    headers.extend(with_signature("example.org", "s").into_iter().skip(1));
    let (replies, elapsed) = rt.block_on(async {
        let mut c = MilterClient::connect(d.addr()).await.expect("connect");
        c.negotiate().await.expect("negotiate");
        let started = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(60),
            c.send_message(&macros(), REMOTE, &fields(&headers), b"body\r\n"),
        )
        .await
        .expect("no answer within 60 s")
        .expect("message");
        (r, started.elapsed())
    });
    let ar = crate::support::client::inserted(&replies, "Authentication-Results")
        .pop()
        .unwrap_or_default();
    let (temp, neutral) = (
        ar.matches("dkim=temperror").count(),
        ar.matches("dkim=neutral").count(),
    );
    eprintln!(
        "black-hole name server: 20 signatures, dns_timeout 1s: answered in {:.1}s ({temp} temperror, {neutral} neutral)",
        elapsed.as_secs_f64()
    );
    assert_eq!((temp, neutral), (8, 12), "{ar}");
    assert!(
        elapsed < Duration::from_secs(15),
        "verification took {elapsed:?}: the lookups are not under one deadline"
    );
    drop(hole);
    assert!(d.stop().success());
}

/// `STREAMS` connections at once, each verifying a message with a body of
/// `MB` MiB (200 × 20 MiB with a fresh release build, 200 × 2 MiB with
/// the debug one): the bodies are hashed as they arrive, so the daemon's
/// peak RSS stays within [`STREAM_GROWTH_BOUND_KIB`] of its baseline
/// instead of growing with the bodies (4 GB before).
#[test]
fn verify_streams_keep_no_body_in_memory() {
    const STREAMS: usize = 200;
    let (program, release) = super::load::fastest_binary();
    let mib: usize = if release { 20 } else { 2 };
    let root = verifying().set("engine.verify_max_size", "64M").root();
    let d = Serve::launch(&root).program(&program).unix().start();
    let rt = runtime();
    let body: std::sync::Arc<Vec<u8>> = std::sync::Arc::new(
        b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n".repeat(mib << 14),
    );
    let base = d.rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(base));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done, pid) = (peak.clone(), done.clone(), d.pid());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let rss = crate::support::proc::proc_status(pid, "VmRSS:")
                    .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
                    .unwrap_or(0);
                peak.fetch_max(rss, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let started = Instant::now();
    let answered = rt.block_on(async {
        let tasks: Vec<_> = (0..STREAMS)
            .map(|_| {
                let (addr, body) = (d.addr().to_string(), body.clone());
                tokio::spawn(async move {
                    let mut c = MilterClient::connect(&addr).await.expect("connect");
                    c.negotiate().await.expect("negotiate");
                    let h = with_signature("example.org", "s");
                    let r = tokio::time::timeout(
                        Duration::from_secs(600),
                        c.send_message(&macros(), REMOTE, &fields(&h), &body),
                    )
                    .await;
                    matches!(r, Ok(Ok(r)) if crate::support::client::inserted(&r, "Authentication-Results")
                        .iter()
                        .any(|ar| ar.contains("dkim=")))
                })
            })
            .collect();
        let mut n = 0;
        for t in tasks {
            n += usize::from(t.await.expect("task"));
        }
        n
    });
    let elapsed = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    sampler.join().unwrap();
    let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
    let growth = peak.saturating_sub(base);
    eprintln!(
        "verify streams: {STREAMS} × {mib} MiB ({} binary) in {:.1}s ({:.0} MiB/s); RSS {base} KiB -> peak {peak} KiB (+{growth} KiB), all {answered} answered",
        if release { "release" } else { "debug" },
        elapsed.as_secs_f64(),
        (STREAMS * mib) as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(answered, STREAMS, "not every message was verified");
    assert!(
        growth < STREAM_GROWTH_BOUND_KIB,
        "RSS grew by {growth} KiB for {STREAMS} streams of {mib} MiB: bodies are kept"
    );
    assert!(d.stop().success());
}

/// How far the daemon's RSS may rise while 200 bodies stream in: buffers
/// per connection, not the bodies.
const STREAM_GROWTH_BOUND_KIB: u64 = 96 * 1024;

/// `max_connections = 4`, all four held by clients trickling a command a
/// byte every 200 ms (`idle_timeout` a minute): a fifth client's message
/// is still answered within seconds, because the client that has waited
/// longest for its next command gives up its slot (before: it waited as
/// long as the tricklers kept sending, the idle timer restarting with
/// every byte).
#[test]
fn trickling_clients_cannot_hold_every_slot() {
    let s = crate::support::configs::Keyed::new(
        &signing("sign")
            .set("engine.max_connections", 4)
            .set("engine.idle_timeout", "60s"),
    );
    let d = Serve::start_unix(&s.root);
    let rt = runtime();
    let (elapsed, signed, closed) = rt.block_on(async {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tricklers = Vec::new();
        for _ in 0..4 {
            let (addr, stop) = (d.addr().to_string(), stop.clone());
            tricklers.push(tokio::spawn(async move {
                let mut c = MilterClient::connect(&addr).await.expect("connect");
                c.negotiate().await.expect("negotiate");
                // A header packet announcing 1 MB, sent a byte at a time.
                let packet = [0u8, 0x10, 0, 0, b'L'];
                let mut sent = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && sent < 300 {
                    if c.send_raw(&packet[sent % packet.len()..][..1])
                        .await
                        .is_err()
                    {
                        return true;
                    }
                    sent += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                // Closed by the server: end of file (or a reset).
                matches!(
                    tokio::time::timeout(Duration::from_secs(2), c.read_reply()).await,
                    Ok(Ok(None) | Err(_))
                )
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let mut c = MilterClient::connect(d.addr()).await.expect("connect");
        let r = tokio::time::timeout(Duration::from_secs(30), async {
            c.negotiate().await?;
            c.send_message(
                &macros(),
                crate::support::client::LOCAL,
                super::HEADERS,
                super::BODY,
            )
            .await
        })
        .await;
        let elapsed = started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut closed = 0;
        for t in tricklers {
            closed += usize::from(t.await.expect("trickler"));
        }
        let signed = matches!(&r, Ok(Ok(r)) if crate::support::client::signatures(r) == 1);
        (elapsed, signed, closed)
    });
    eprintln!(
        "slots: 4 of 4 held by tricklers; a new client's message signed in {:.1}s; {closed} trickler(s) closed",
        elapsed.as_secs_f64()
    );
    assert!(
        signed,
        "the new client's message was not signed within 30 s"
    );
    assert!(closed >= 1, "no trickler gave up its slot");
    assert!(
        d.wait_log("to make room for a new one", 1),
        "{}",
        d.log_text()
    );
    assert!(d.stop().success());
}

/// `idle_timeout = "2s"`: a client sending a complete header every 500 ms
/// (each command in time) has its connection closed once the message has
/// taken 2 s, and the log says so; a client that stops reading its
/// replies has the connection closed after a write has waited 2 s.
#[test]
fn a_message_has_a_deadline_and_a_write_has_a_timeout() {
    let s = crate::support::configs::Keyed::new(&signing("sign").set("engine.idle_timeout", "2s"));
    let d = Serve::start_unix(&s.root);
    let rt = runtime();
    let (slow_closed_after, writer_closed_after) = rt.block_on(async {
        // Headers one by one, every 500 ms, for up to 20 s.
        let mut c = MilterClient::connect(d.addr()).await.expect("connect");
        c.negotiate().await.expect("negotiate");
        let packets = crate::support::client::message_packets(super::HEADERS, super::BODY);
        let mut head = bytes::BytesMut::from(&packets[..]);
        let mut commands = Vec::new();
        while let Some(cmd) =
            dkimctl::milter::decode_command(&mut head, dkimctl::milter::DEFAULT_MAX_PACKET).unwrap()
        {
            commands.push(cmd);
        }
        let started = Instant::now();
        let mut closed = None;
        'slow: for round in 0..40 {
            for cmd in &commands[..commands.len() - 2] {
                // The envelope once, then the headers again every round.
                let again = matches!(cmd, dkimctl::milter::Command::Header { .. });
                if (round == 0 || again) && c.send(cmd).await.is_err() {
                    closed = Some(started.elapsed());
                    break 'slow;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // A client that sends messages and never reads the answers.
        let mut w = MilterClient::connect(d.addr()).await.expect("connect");
        w.negotiate().await.expect("negotiate");
        let started_w = Instant::now();
        let mut writer_closed = None;
        while started_w.elapsed() < Duration::from_secs(60) {
            let sent = tokio::time::timeout(Duration::from_secs(5), w.send_raw(&packets)).await;
            if matches!(sent, Ok(Err(_))) {
                writer_closed = Some(started_w.elapsed());
                break;
            }
        }
        (closed, writer_closed)
    });
    eprintln!(
        "deadlines (idle_timeout 2s): a header every 500 ms cut after {slow_closed_after:?}; \
         a client not reading cut after {writer_closed_after:?}"
    );
    assert!(
        slow_closed_after.is_some_and(|t| t < Duration::from_secs(15)),
        "the slow message was not cut: {slow_closed_after:?}\n{}",
        d.log_text()
    );
    assert!(
        d.wait_log("the message took longer than 2s", 1),
        "{}",
        d.log_text()
    );
    assert!(
        writer_closed_after.is_some(),
        "a client that never reads kept its connection:\n{}",
        d.log_text()
    );
    assert!(
        d.wait_log("the peer read nothing for 2s", 1),
        "{}",
        d.log_text()
    );
    assert!(d.stop().success());
}
