//! Reliability and security of the real binary under load, faults and
//! hostile peers: `dkimctl serve` holding a thousand connections and a long
//! run of messages, slow and vanishing clients, idle time-outs, a DNS
//! server that never answers, reloads that must fail safe, SIGTERM in the
//! middle of a message, a full disk and `kill -9` during `apply`, key
//! creation under umask 000, key material in any output, unsafe keys,
//! root, and forged headers.
//!
//! Each test asserts a property, never a duration: waits are bounded loops
//! (a hang detector, far above what the property needs), and speed is
//! measured by the benchmarks. Every server runs on 127.0.0.1 and is
//! stopped by its PID; the figures the README's reliability section quotes
//! are printed with `--nocapture`:
//!
//! ```text
//! cargo test --test integration reliability -- --nocapture --test-threads=1
//! ```
//!
//! The regression tests at the end name inputs the fuzz targets
//! (`fuzz/`, `scripts/fuzz.sh`) or this file's review found; each says
//! what was malformed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dkimctl::config::model::Algorithm;
use dkimctl::dkim::verify::{DkimStatus, FixedAnswer, Resolver};
use dkimctl::milter::Reply;
use dkimctl::milter::client::{MilterClient, apply_replies};
use dkimctl::milter::command::{Command as Milter, Family};
use dkimctl::milter::negotiate::protocol;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::*;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// A documentation address (RFC 5737): only ever a value inside the milter
/// protocol's connect packet, never a destination.
const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
const AUTHSERV_ID: &str = "mx.example.net";

const HEADERS: &[(&[u8], &[u8])] = &[
    (b"From", b" Jos\xe9 <jose@example.com>"),
    (b"To", b" Someone <someone@example.net>"),
    (b"Subject", b" load\n\t test"),
    (b"Date", b" Mon, 01 Jan 2024 10:00:00 +0000"),
    (b"Message-ID", b" <1@example.com>"),
];
const BODY: &[u8] = b"Hello,\r\n\r\nthis message is signed by dkimctl serve.\r\n";

fn macros() -> Vec<(&'static str, &'static str)> {
    vec![
        ("j", "mx.example.com"),
        ("{daemon_name}", "smtpd"),
        ("i", "4ABCDEF"),
    ]
}

/// dkim.toml for one Ed25519 key `ed1` of example.com; `engine` is put
/// into the `[engine]` table.
fn dkim_toml(mode: &str, engine: &str) -> String {
    format!(
        r#"[service]
engine = "bundled"
mode = "{mode}"
authserv_id = "{AUTHSERV_ID}"
socket = "inet:127.0.0.1:8891"

[defaults]
algorithms = ["ed25519-sha256"]

[engine]
{engine}

[[domain]]
name = "example.com"

[[domain.key]]
selector = "ed1"
algorithm = "ed25519-sha256"

[mta]
kind = "none"
"#
    )
}

/// A root with dkim.toml and a fresh Ed25519 key for example.com; returns
/// the root and the key's DNS record as a fixed resolver would serve it.
fn signing_root(mode: &str, engine: &str) -> (TempRoot, (String, String)) {
    let root = TempRoot::new(&dkim_toml(mode, engine));
    let record = write_new_key(&root);
    (root, record)
}

fn key_path(root: &TempRoot) -> PathBuf {
    root.join("etc/dkimctl/keys/example.com/ed1.private")
}

/// Writes a new key (0600) over the old one; returns its record.
fn write_new_key(root: &TempRoot) -> (String, String) {
    use std::io::Write as _;
    let pair = dkimctl::keys::generate(Algorithm::Ed25519Sha256, 2048).expect("key generation");
    let p = key_path(root);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&p);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&p)
        .unwrap();
    f.write_all(pair.private_pem.expose()).unwrap();
    (
        "ed1._domainkey.example.com".to_string(),
        dkimctl::keys::record_value(Algorithm::Ed25519Sha256, &pair.public, Default::default()),
    )
}

fn resolver(records: &[(String, String)]) -> Resolver {
    Resolver::fixed(
        records
            .iter()
            .map(|(n, v)| (n.clone(), FixedAnswer::Txt(v.clone())))
            .collect::<Vec<_>>(),
    )
}

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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Polls `cond` up to `tries` times, `every` apart; true once it holds.
fn eventually(tries: u32, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if cond() {
            return true;
        }
        std::thread::sleep(every);
    }
    cond()
}

/// `dkimctl serve` as a child process on a loopback port, its stderr (the
/// log) in a file.
struct Daemon {
    child: Option<Child>,
    addr: String,
    log: PathBuf,
}

impl Daemon {
    fn start(root: &TempRoot) -> Daemon {
        Daemon::start_with(root, &bin(), true)
    }

    /// Starts `program --root R serve --socket inet:127.0.0.1:PORT
    /// [--allow-root]`; retries with another port if the one picked was
    /// taken in between.
    fn start_with(root: &TempRoot, program: &Path, allow_root: bool) -> Daemon {
        let log = root.join("serve.log");
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let addr = format!("inet:127.0.0.1:{port}");
            let file = std::fs::File::create(&log).expect("log file");
            let mut args = vec![
                "--root",
                root.path().to_str().unwrap(),
                "serve",
                "--socket",
                &addr,
            ];
            if allow_root {
                args.push("--allow-root");
            }
            let child = Command::new(program)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("spawn dkimctl serve");
            let mut d = Daemon {
                child: Some(child),
                addr,
                log: log.clone(),
            };
            let ready = eventually(600, Duration::from_millis(50), || {
                d.log_text().contains("listening on") || !d.running()
            });
            if ready && d.running() {
                return d;
            }
            let text = d.log_text();
            d.kill();
            assert!(
                text.contains("in use"),
                "dkimctl serve did not start:\n{text}"
            );
        }
        panic!("no free port for dkimctl serve after 5 tries");
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().expect("running").id()).expect("pid")
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits (bounded) until the log mentions `needle` `count` times.
    fn wait_log(&self, needle: &str, count: usize) -> bool {
        eventually(600, Duration::from_millis(50), || {
            self.log_text().matches(needle).count() >= count
        })
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).expect("kill");
    }

    /// Open file descriptors of the daemon.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Resident set size of the daemon, in KiB.
    fn rss_kib(&self) -> u64 {
        proc_status(self.pid(), "VmRSS:")
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit()
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        for _ in 0..1200 {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "dkimctl serve did not exit within 60 s:\n{}",
            self.log_text()
        );
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `inet:127.0.0.1:PORT` with a port free at the moment of asking.
fn free_socket() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    format!("inet:127.0.0.1:{port}")
}

/// Runs `dkimctl ARGS` that is expected to exit by itself; kills it and
/// fails after 60 s (a server that should have refused to start). Returns
/// the status and stderr.
fn exits_by_itself(args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dkimctl");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        err
    });
    for _ in 0..1200 {
        if let Some(status) = child.try_wait().expect("wait") {
            return (status, reader.join().unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "dkimctl {args:?} kept running: {}",
        reader.join().unwrap_or_default()
    );
}

/// One line of /proc/PID/status, after its name.
fn proc_status(pid: i32, field: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_string()))
}

fn signature_count(replies: &[Reply]) -> usize {
    replies
        .iter()
        .filter(
            |r| matches!(r, Reply::InsertHeader { name, .. } if name.as_ref() == b"DKIM-Signature"),
        )
        .count()
}

fn auth_results(replies: &[Reply]) -> Option<String> {
    replies.iter().find_map(|r| match r {
        Reply::InsertHeader { name, value, .. } if name.as_ref() == b"Authentication-Results" => {
            Some(String::from_utf8_lossy(value).into_owned())
        }
        _ => None,
    })
}

/// The replies sign the message (one DKIM-Signature, then continue) and
/// the signed message verifies against `resolver`.
async fn signed_and_verifies(replies: &[Reply], leading_space: bool, resolver: &Resolver) -> bool {
    if signature_count(replies) != 1 || replies.last() != Some(&Reply::Continue) {
        return false;
    }
    let message = apply_replies(HEADERS, BODY, replies, leading_space);
    let results = dkimctl::engine::verify_with(resolver, &message).await;
    results.len() == 1 && results[0].status == DkimStatus::Pass
}

/// Sends one message over a new connection; returns the replies.
async fn one_message(addr: &str, ip: IpAddr) -> (Vec<Reply>, bool) {
    let mut c = MilterClient::connect(addr).await.expect("connect");
    c.negotiate().await.expect("negotiate");
    let r = c
        .send_message(&macros(), ip, HEADERS, BODY)
        .await
        .expect("message");
    let ls = c.leading_space();
    let _ = c.quit().await;
    (r, ls)
}

/// The packets of one message after negotiation, as Postfix sends them
/// with every `NO*` flag we ask for (no HELO, RCPT or DATA).
fn message_packets(headers: &[(&[u8], &[u8])], body: &[u8]) -> Vec<u8> {
    let b = |s: &[u8]| Bytes::copy_from_slice(s);
    let mut cmds = vec![
        Milter::Macro {
            stage: b'C',
            pairs: vec![
                (b(b"j"), b(b"mx.example.com")),
                (b(b"{daemon_name}"), b(b"smtpd")),
            ],
        },
        Milter::Connect {
            hostname: b(b"client.example"),
            family: Family::Inet,
            port: 40000,
            address: b(b"127.0.0.1"),
        },
        Milter::Macro {
            stage: b'M',
            pairs: vec![(b(b"i"), b(b"4SLOW"))],
        },
        Milter::Mail(vec![b(b"<sender@example.com>")]),
    ];
    for (n, v) in headers {
        cmds.push(Milter::Header {
            name: b(n),
            value: b(v),
        });
    }
    cmds.push(Milter::EndOfHeaders);
    cmds.push(Milter::Body(b(body)));
    cmds.push(Milter::EndOfMessage);
    let mut out = BytesMut::new();
    for c in &cmds {
        c.encode(&mut out).expect("encode");
    }
    out.to_vec()
}

/// Reads replies up to a final one (bounded by the caller's timeout).
async fn read_final(c: &mut MilterClient) -> Option<Vec<Reply>> {
    let mut out = Vec::new();
    loop {
        let r = c.read_reply().await.ok()??;
        let last = r.is_final();
        out.push(r);
        if last {
            return Some(out);
        }
    }
}

/// The binary for long runs: the release build when it is at least as new
/// as the debug build under test (so it is not stale), else the debug one.
fn fastest_binary() -> (PathBuf, bool) {
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

// ---------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------

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
    let (root, record) = signing_root("sign", "");
    let d = Daemon::start(&root);
    let rt = runtime();
    let resolver = resolver(&[record]);
    // Warm up (first-message allocations), then take the baseline.
    let (r, ls) = rt.block_on(one_message(&d.addr, LOCAL));
    assert!(rt.block_on(signed_and_verifies(&r, ls, &resolver)), "{r:?}");
    assert!(eventually(100, Duration::from_millis(50), || d.fds() == d.fds()));
    let (base_fds, base_rss) = (d.fds(), d.rss_kib());

    let (held_fds, peak_rss, answered, verified) = rt.block_on(async {
        let mut clients = Vec::with_capacity(N);
        for _ in 0..N {
            let mut c = MilterClient::connect(&d.addr).await.expect("connect");
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
    let settled_fds = eventually(200, Duration::from_millis(50), || d.fds() <= base_fds + 2);
    let settled_rss = eventually(100, Duration::from_millis(100), || {
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
    let (root, record) = signing_root("sign", "");
    let d = Daemon::start_with(&root, &program, true);
    let rt = runtime();
    let resolver = Arc::new(resolver(&[record]));
    let (samples, signed) = rt.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            let mut c = MilterClient::connect(&d.addr).await.expect("connect");
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
                                signature_count(&r) == 1 && r.last() == Some(&Reply::Continue)
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
    let (root, record) = signing_root("sign", "");
    let d = Daemon::start(&root);
    let rt = runtime();
    let resolver = Arc::new(resolver(&[record]));
    let fast_done = Arc::new(AtomicBool::new(false));
    let (fast_during_slow, slow_ok, fast_ok) = rt.block_on(async {
        // The vanishing client: headers and half a body, then gone.
        let mut gone = MilterClient::connect(&d.addr).await.expect("connect");
        gone.negotiate().await.expect("negotiate");
        let packets = message_packets(HEADERS, BODY);
        gone.send_raw(&packets[..packets.len() - 30])
            .await
            .expect("send");
        drop(gone);

        let slow = {
            let addr = d.addr.clone();
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
            let addr = d.addr.clone();
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
    let (r, ls) = rt.block_on(one_message(&d.addr, LOCAL));
    assert!(rt.block_on(signed_and_verifies(&r, ls, &resolver)));
    assert!(d.stop().success());
}

/// `[engine] idle_timeout = "2s"`: an idle connection is closed by the
/// server (the client reads end of file), and the log says why.
#[test]
fn idle_connection_is_closed_after_idle_timeout() {
    let (root, _) = signing_root("sign", "idle_timeout = \"2s\"");
    let d = Daemon::start(&root);
    let rt = runtime();
    let eof = rt.block_on(async {
        let mut c = MilterClient::connect(&d.addr).await.expect("connect");
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

// ---------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------

/// A header field as (name, value after the colon).
type Field = (Vec<u8>, Vec<u8>);

/// A signed message as the MTA would hand it over, signed by the library
/// with the root's key: header (name, value) pairs and the body.
fn signed_incoming(root: &TempRoot) -> (Vec<Field>, Vec<u8>) {
    let r = dkimctl::host::Root::new(root.path());
    let source = dkimctl::config::Source::resolve(&r, None);
    let config = dkimctl::config::parse(&dkim_toml("sign", ""), &source)
        .config
        .expect("valid");
    let message =
        b"From: Jose <jose@example.com>\r\nTo: x@example.net\r\nSubject: hi\r\n\r\nbody\r\n";
    let signed = dkimctl::engine::sign_file(&config, &r, message, 1_700_000_000).expect("sign");
    let (fields, body_at) = dkimctl::dkim::sign::split_message(&signed);
    let headers = fields
        .iter()
        .map(|f| {
            let v = f.value.strip_suffix(b"\r\n").unwrap_or(&f.value);
            let v: Vec<u8> = String::from_utf8_lossy(v)
                .replace("\r\n", "\n")
                .into_bytes();
            (f.name.to_vec(), v)
        })
        .collect();
    (headers, signed[body_at..].to_vec())
}

/// A name server on 127.0.0.1 that never answers (the socket is bound and
/// never read): verification reports `dkim=temperror` in
/// Authentication-Results and applies `on_failure.dns_error` (accept by
/// default; tempfail once configured and reloaded), and the reply arrives
/// (a hang detector far above `dns_timeout = "1s"`).
#[test]
fn dns_not_answering_gives_temperror_and_the_configured_action() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let port = silent.local_addr().unwrap().port();
    let engine = format!("nameservers = [\"127.0.0.1:{port}\"]\ndns_timeout = \"1s\"");
    let (root, _) = signing_root("verify", &engine);
    let (headers, body) = signed_incoming(&root);
    let hv: Vec<(&[u8], &[u8])> = headers.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    let d = Daemon::start(&root);
    let rt = runtime();
    let send = |d: &Daemon| {
        rt.block_on(async {
            let mut c = MilterClient::connect(&d.addr).await.expect("connect");
            c.negotiate().await.expect("negotiate");
            tokio::time::timeout(
                Duration::from_secs(30),
                c.send_message(&macros(), REMOTE, &hv, &body),
            )
            .await
            .expect("no reply within 30 s: the DNS time-out does not bound verification")
            .expect("message")
        })
    };
    let replies = send(&d);
    let ar = auth_results(&replies).unwrap_or_default();
    assert!(ar.contains("dkim=temperror"), "{replies:?}");
    assert!(ar.contains(AUTHSERV_ID), "{ar}");
    assert_eq!(
        replies.last(),
        Some(&Reply::Continue),
        "default dns_error is accept"
    );

    let tempfail = dkim_toml(
        "verify",
        &format!("{engine}\n[engine.on_failure]\ndns_error = \"tempfail\""),
    );
    root.write("etc/dkimctl/dkim.toml", &tempfail);
    d.signal(Signal::SIGHUP);
    assert!(d.wait_log("reloaded configuration", 1), "{}", d.log_text());
    let replies = send(&d);
    assert!(
        matches!(replies.last(), Some(Reply::ReplyCode(t)) if t.starts_with(b"451 ")),
        "dns_error = tempfail: {replies:?}"
    );
    drop(silent);
    assert!(d.stop().success());
}

/// Replaces the key with garbage, then SIGHUP: the reload fails, the log
/// says why (naming the file), and the old key keeps signing.
#[test]
fn sighup_with_unreadable_key_keeps_the_old_configuration() {
    let (root, record) = signing_root("sign", "");
    let d = Daemon::start(&root);
    let rt = runtime();
    let resolver = resolver(&[record]);
    std::fs::write(key_path(&root), "-----BEGIN PRIVATE KEY-----\ngarbage\n").unwrap();
    if !is_root() {
        // Unreadable as well, for a process that permissions stop.
        std::fs::set_permissions(key_path(&root), std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    d.signal(Signal::SIGHUP);
    assert!(d.wait_log("reload failed", 1), "{}", d.log_text());
    let log = d.log_text();
    assert!(
        log.contains(&key_path(&root).display().to_string()),
        "{log}"
    );
    let (r, ls) = rt.block_on(one_message(&d.addr, LOCAL));
    assert!(
        rt.block_on(signed_and_verifies(&r, ls, &resolver)),
        "old key no longer signs: {r:?}"
    );
    assert!(d.stop().success());
}

/// An invalid dkim.toml, then SIGHUP: the reload fails with the file's
/// line and column in the log, and the running configuration keeps
/// signing.
#[test]
fn sighup_with_invalid_config_keeps_the_old_configuration() {
    let (root, record) = signing_root("sign", "");
    let d = Daemon::start(&root);
    let rt = runtime();
    let resolver = resolver(&[record]);
    root.write(
        "etc/dkimctl/dkim.toml",
        "[service]\nmode = \"sing\"\n[[domain]]\n",
    );
    d.signal(Signal::SIGHUP);
    assert!(d.wait_log("reload failed", 1), "{}", d.log_text());
    assert!(d.log_text().contains("dkim.toml:2:"), "{}", d.log_text());
    let (r, ls) = rt.block_on(one_message(&d.addr, LOCAL));
    assert!(rt.block_on(signed_and_verifies(&r, ls, &resolver)), "{r:?}");
    assert!(d.stop().success());
}

/// SIGTERM while a message is half sent: the message is still finished
/// and signed (or tempfailed), never accepted unsigned, and the daemon
/// then exits 0.
#[test]
fn sigterm_during_a_message_finishes_it_signed() {
    let (root, record) = signing_root("sign", "");
    let mut d = Daemon::start(&root);
    let rt = runtime();
    let resolver = resolver(&[record]);
    let replies = rt.block_on(async {
        let mut c = MilterClient::connect(&d.addr).await.expect("connect");
        // Without SMFIP_NR_BODY each body chunk is answered, so we know
        // the daemon is in the middle of the body when SIGTERM arrives.
        let mut offer = MilterClient::postfix_offer();
        offer.protocol &= !protocol::NR_BODY;
        c.negotiate_with(offer).await.expect("negotiate");
        let (half, rest) = BODY.split_at(BODY.len() / 2);
        let packets = message_packets(HEADERS, half);
        // Everything up to and including the first body chunk.
        let mut eom = BytesMut::new();
        Milter::EndOfMessage.encode(&mut eom).unwrap();
        c.send_raw(&packets[..packets.len() - eom.len()])
            .await
            .expect("send");
        let first = c.read_reply().await.expect("read");
        assert_eq!(first, Some(Reply::Continue), "body chunk not answered");
        d.signal(Signal::SIGTERM);
        assert!(d.wait_log("shutting down", 1), "{}", d.log_text());
        c.send(&Milter::Body(Bytes::copy_from_slice(rest)))
            .await
            .expect("send");
        assert_eq!(c.read_reply().await.expect("read"), Some(Reply::Continue));
        c.send(&Milter::EndOfMessage).await.expect("send");
        let r = tokio::time::timeout(Duration::from_secs(60), read_final(&mut c))
            .await
            .expect("no answer after SIGTERM");
        (r, c.leading_space())
    });
    let (replies, ls) = replies;
    let replies = replies.unwrap_or_default();
    let tempfailed = matches!(replies.last(), Some(Reply::ReplyCode(t)) if t.starts_with(b"4"))
        || replies.last() == Some(&Reply::TempFail);
    let signed = rt.block_on(signed_and_verifies(&replies, ls, &resolver));
    assert!(
        signed || tempfailed,
        "neither signed nor tempfailed: {replies:?}"
    );
    let status = d.wait_exit();
    assert!(status.success(), "exit {status:?}:\n{}", d.log_text());
}

/// The configuration the `apply` tests write: the OpenDKIM engine (so that
/// several files change together) with `internal` as trusted hosts and
/// `extra` more signing domains (each with a key to create).
fn apply_toml(internal: &str, extra: usize) -> String {
    let mut more = String::new();
    for i in 0..extra {
        more.push_str(&format!(
            "\n[[domain]]\nname = \"example-{i}.org\"\nselector = \"ed2\"\n"
        ));
    }
    format!(
        r#"[service]
engine = "opendkim"
authserv_id = "{AUTHSERV_ID}"
[defaults]
algorithms = ["ed25519-sha256"]
[trusted]
internal_hosts = [{internal}]
[[domain]]
name = "example.com"
selector = "ed1"
{more}
[mta]
kind = "none"
"#
    )
}

/// A long trusted-hosts list (TrustedHosts of several pages).
fn many_hosts(n: u32) -> String {
    (0..n)
        .map(|i| format!("\"10.{}.{}.1\"", i / 256, i % 256))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `dkimctl render` of `toml`: host path -> content.
fn rendered(toml: &str) -> BTreeMap<String, Vec<u8>> {
    let root = TempRoot::new(toml);
    let out = root.join("out");
    root.dkimctl(&["render", "--out", out.to_str().unwrap()])
        .expect(0);
    tree(&out).into_iter().collect()
}

/// True for a file whose whole content is a loadable private key.
fn complete_key(bytes: &[u8]) -> bool {
    dkimctl::keys::parse_private_key(bytes, Path::new("k")).is_ok()
}

/// Temporary files apply and the key writer create next to their targets.
fn is_temp(rel: &str) -> bool {
    rel.rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with('.') && n.contains(".dkimctl-"))
}

/// Every file of `old` ∪ `new` under `root` is absent (only if it was not
/// in `old`), or byte for byte the old or the new version; keys are whole.
fn check_old_or_new(
    root: &Path,
    old: &BTreeMap<String, Vec<u8>>,
    new: &BTreeMap<String, Vec<u8>>,
) -> Result<(), String> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let got = std::fs::read(root.join(name)).ok();
        let ok = match &got {
            None => !old.contains_key(name),
            Some(g) if name.ends_with(".private") => complete_key(g),
            Some(g) => Some(g) == old.get(name) || Some(g) == new.get(name),
        };
        if !ok {
            return Err(format!(
                "{name} is neither the old nor the new version: {:?}",
                got.map(|g| String::from_utf8_lossy(&g).into_owned())
            ));
        }
    }
    for (rel, bytes) in tree(root) {
        if rel.ends_with(".private") && !complete_key(&bytes) {
            return Err(format!("{rel} is a partial key"));
        }
    }
    Ok(())
}

/// `kill -9` of `dkimctl apply` at random moments (xorshift, 0-30 ms), 200
/// times, alternating between two configurations whose rendered files
/// differ, half of them also creating a key: after every kill each
/// managed file is the old or the new version (keys whole or absent),
/// never partial; then a final apply completes and plan is clean.
/// Temporary files a kill leaves behind are counted and must not disturb
/// the next apply or plan.
#[test]
fn apply_kill9_loop_never_leaves_a_partial_file() {
    const ITERATIONS: u32 = 200;
    let a = apply_toml("\"127.0.0.1\", \"::1\"", 0);
    let b = apply_toml(
        "\"127.0.0.1\", \"::1\", \"192.0.2.0/24\", \"mail.example.com\"",
        1,
    );
    let (ra, rb) = (rendered(&a), rendered(&b));
    assert_ne!(ra, rb);
    let root = TempRoot::new(&a);
    root.dkimctl(&["apply", "--yes", "--no-reload"]).expect(0);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut killed_mid_run = 0;
    let mut leftovers_seen = 0;
    for i in 0..ITERATIONS {
        let (toml, old, new) = if i % 2 == 0 {
            (&b, &ra, &rb)
        } else {
            (&a, &rb, &ra)
        };
        if i % 2 == 0 {
            // A fresh key to create on this run.
            let _ = std::fs::remove_file(root.join("etc/opendkim/keys/example-0.org/ed2.private"));
        }
        root.write("etc/dkimctl/dkim.toml", toml);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_micros(rng % 30_000);
        let mut child = Command::new(bin())
            .args(["--root", &root.root_arg(), "apply", "--yes", "--no-reload"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn apply");
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().expect("wait");
        if status.code().is_none() {
            killed_mid_run += 1;
        }
        // The config file itself is ours, not apply's: leave it out.
        let mut old = old.clone();
        let mut new = new.clone();
        old.remove("etc/dkimctl/dkim.toml");
        new.remove("etc/dkimctl/dkim.toml");
        if let Err(e) = check_old_or_new(root.path(), &old, &new) {
            panic!("iteration {i}, killed after {delay:?}: {e}");
        }
        leftovers_seen += tree(root.path()).iter().filter(|(r, _)| is_temp(r)).count();
    }
    let final_apply = root.dkimctl(&["apply", "--yes", "--no-reload"]);
    let plan = root.dkimctl(&["plan"]);
    let leftovers: Vec<String> = tree(root.path())
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| is_temp(r))
        .collect();
    eprintln!(
        "apply_kill9_loop: {ITERATIONS} iterations, {killed_mid_run} killed before apply finished, \
         0 partial files; temporary files left by kills (summed over iterations): {leftovers_seen}; \
         after the final apply: {leftovers:?}"
    );
    assert!(
        killed_mid_run > ITERATIONS / 4,
        "too few kills hit a running apply: {killed_mid_run}"
    );
    final_apply.expect(0);
    plan.expect(0);
}

/// A full disk (a small tmpfs as the root's /etc, in a private mount
/// namespace) during `apply`, at every amount of free space from none to
/// enough: each managed file is the old or the new version, never
/// truncated, keys are whole or absent, no temporary file is left, and a
/// failed apply exits 2 naming the file and the cause.
#[test]
fn apply_disk_full_leaves_old_or_new_files() {
    if !require_root("mounts a tmpfs in a private mount namespace") || !require_tool("unshare") {
        return;
    }
    let a = apply_toml("\"127.0.0.1\", \"::1\"", 0);
    let b = apply_toml(&many_hosts(600), 24);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::write(w.join("a.toml"), &a).unwrap();
    std::fs::write(w.join("b.toml"), &b).unwrap();
    // Free space left before apply, in 4 KiB pages (tmpfs counts pages).
    let pages: Vec<u32> = (0..=40).collect();
    let script = format!(
        r#"set -e
W={w}
R=$W/root
mkdir -p $R/etc
mount -t tmpfs -o size=512k,mode=0755 tmpfs $R/etc
mkdir -p $R/etc/dkimctl
cp $W/a.toml $R/etc/dkimctl/dkim.toml
{bin} --root $R apply --yes --no-reload > $W/a.out 2>&1
mkdir -p $W/old && cp -a $R/etc/. $W/old/
for p in {pages}; do
  rm -rf $R/etc/* && cp -a $W/old/. $R/etc/
  cp $W/b.toml $R/etc/dkimctl/dkim.toml
  avail=$(df --output=avail -B4096 $R/etc | tail -1)
  fill=$(( (avail - p) * 4096 ))
  [ $fill -gt 0 ] && head -c $fill /dev/zero > $R/etc/filler 2>/dev/null || true
  set +e
  {bin} --root $R apply --yes --no-reload > $W/out.$p 2> $W/err.$p
  echo $? > $W/rc.$p
  set -e
  rm -f $R/etc/filler
  mkdir -p $W/after.$p && cp -a $R/etc/. $W/after.$p/
done
"#,
        w = w.display(),
        bin = bin().display(),
        pages = pages
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let r = run(Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    assert_eq!(r.code(), 0, "setup failed:\n{}{}", r.stdout(), r.stderr());
    let under_etc = |t: BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
        t.into_iter()
            .filter_map(|(k, v)| k.strip_prefix("etc/").map(|k| (k.to_string(), v)))
            .filter(|(k, _)| k != "dkimctl/dkim.toml")
            .collect()
    };
    let old: BTreeMap<String, Vec<u8>> = tree(&w.join("old"))
        .into_iter()
        .filter(|(k, _)| k != "dkimctl/dkim.toml")
        .collect();
    let new = under_etc(rendered(&b));
    let mut failed = 0;
    let mut succeeded = 0;
    let mut mid_way = 0;
    for p in &pages {
        let after = w.join(format!("after.{p}"));
        let rc: i32 = std::fs::read_to_string(w.join(format!("rc.{p}")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let err = std::fs::read_to_string(w.join(format!("err.{p}"))).unwrap();
        if let Err(e) = check_old_or_new(&after, &old, &new) {
            panic!("{p} free pages, apply exit {rc}: {e}\n{err}");
        }
        let temps: Vec<String> = tree(&after)
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| is_temp(r))
            .collect();
        assert!(
            temps.is_empty(),
            "{p} free pages: temporary files left: {temps:?}\n{err}"
        );
        match rc {
            0 => succeeded += 1,
            2 => {
                failed += 1;
                let changed = tree(&after).iter().any(|(k, v)| {
                    k.ends_with(".private") && !old.contains_key(k)
                        || (new.get(k) == Some(v) && old.get(k) != Some(v))
                });
                mid_way += usize::from(changed);
                assert!(
                    err.contains("No space left on device") && err.contains("/etc/"),
                    "{p} free pages: apply failed without naming the file and cause:\n{err}"
                );
            }
            other => panic!("{p} free pages: apply exit {other}:\n{err}"),
        }
    }
    eprintln!(
        "apply_disk_full: {} cases (0..=40 free pages), {failed} failed with ENOSPC ({mid_way} after changing some files), {succeeded} completed, \
         every file old or new",
        pages.len()
    );
    assert!(
        failed > 0 && succeeded > 0,
        "no case ran out of space, or none had enough"
    );
    assert!(
        mid_way > 0,
        "no case ran out of space in the middle of an apply"
    );
}

// ---------------------------------------------------------------------
// Key secrecy
// ---------------------------------------------------------------------

/// `keys generate` and `apply` under umask 000, watched by a thread that
/// stats every file and directory in the key directory as fast as it can:
/// no key file is ever seen with a group or other permission bit (they are
/// born 0600 and stay so), and no key directory is ever writable by group
/// or others.
#[test]
fn key_creation_under_umask_000_is_never_readable_by_others() {
    let toml = r#"[service]
engine = "bundled"
[defaults]
algorithms = ["rsa-sha256", "ed25519-sha256"]
[[domain]]
name = "example.com"
[[domain.key]]
selector = "r1"
algorithm = "rsa-sha256"
[[domain.key]]
selector = "e1"
algorithm = "ed25519-sha256"
[[domain]]
name = "example.org"
[[domain.key]]
selector = "r2"
algorithm = "rsa-sha256"
[[domain.key]]
selector = "e2"
algorithm = "ed25519-sha256"
[mta]
kind = "none"
"#;
    for command in ["keys generate", "apply --yes --no-reload"] {
        let root = TempRoot::new(toml);
        let keys = root.join("etc/dkimctl/keys");
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (keys, done) = (keys.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut seen: BTreeMap<(PathBuf, bool), BTreeSet<u32>> = BTreeMap::new();
                let mut polls = 0u64;
                while !done.load(Ordering::SeqCst) && polls < 50_000_000 {
                    polls += 1;
                    let mut stack = vec![keys.clone()];
                    while let Some(dir) = stack.pop() {
                        let Ok(entries) = std::fs::read_dir(&dir) else {
                            continue;
                        };
                        if let Ok(m) = std::fs::symlink_metadata(&dir) {
                            seen.entry((dir.clone(), true))
                                .or_default()
                                .insert(m.mode() & 0o7777);
                        }
                        for e in entries.flatten() {
                            let p = e.path();
                            let Ok(m) = std::fs::symlink_metadata(&p) else {
                                continue;
                            };
                            if m.is_dir() {
                                stack.push(p);
                            } else {
                                seen.entry((p, false))
                                    .or_default()
                                    .insert(m.mode() & 0o7777);
                            }
                        }
                    }
                }
                (seen, polls)
            })
        };
        let script = format!(
            "umask 000; exec {} --root {} {command}",
            bin().display(),
            root.root_arg()
        );
        let r = run(Command::new("sh").args(["-c", &script]));
        done.store(true, Ordering::SeqCst);
        let (seen, polls) = watcher.join().unwrap();
        assert_eq!(r.code(), 0, "{command}: {}{}", r.stdout(), r.stderr());
        let files: Vec<_> = seen.iter().filter(|((_, dir), _)| !dir).collect();
        eprintln!(
            "key_creation_under_umask_000 ({command}): {polls} polls, {} files seen, modes {:?}",
            files.len(),
            seen.iter()
                .map(|((p, _), m)| (
                    p.strip_prefix(root.path()).unwrap().display().to_string(),
                    m
                ))
                .collect::<Vec<_>>()
        );
        assert!(
            files.iter().any(|((p, _), _)| p.ends_with("r1.private")),
            "the watcher saw no key"
        );
        for ((path, is_dir), modes) in &seen {
            for &m in modes {
                if *is_dir {
                    assert_eq!(
                        m & 0o022,
                        0,
                        "{command}: key directory {} was mode {m:04o}",
                        path.display()
                    );
                } else {
                    assert_eq!(
                        m & 0o077,
                        0,
                        "{command}: {} was mode {m:04o} at some moment",
                        path.display()
                    );
                }
            }
        }
        for key in [
            "example.com/r1",
            "example.com/e1",
            "example.org/r2",
            "example.org/e2",
        ] {
            let m = std::fs::metadata(keys.join(format!("{key}.private")))
                .unwrap()
                .mode()
                & 0o7777;
            assert_eq!(m, 0o600, "{command}: {key}");
        }
    }
}

/// 32-character windows of the private keys under `root` that do not also
/// occur in their public keys (an RSA private key embeds the modulus, and
/// the DNS record legitimately shows it).
fn secret_windows(root: &Path) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (rel, bytes) in tree(root) {
        if !rel.ends_with(".private") {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let public = dkimctl::keys::parse_private_key(&bytes, Path::new(&rel))
            .map(|k| k.public.record_base64())
            .unwrap_or_default();
        let chars: Vec<char> = body.chars().collect();
        for w in chars.windows(32) {
            let w: String = w.iter().collect();
            if !public.contains(&w) {
                out.insert(w);
            }
        }
    }
    out.into_iter().collect()
}

/// Every stdout and stderr of a representative run (bootstrap, plan, plan
/// --json, apply --json, dns records --json, check and plan with a broken
/// key, keys generate --force, serve's log while signing, sign, an unsafe
/// key refused) is free of private key material: no PEM header line and no
/// 32-character window of any key's base64 body that is not also public.
#[test]
fn no_key_material_in_outputs() {
    let root = TempRoot::new("");
    std::fs::remove_file(root.join("etc/dkimctl/dkim.toml")).unwrap();
    let mut outputs: Vec<(String, String)> = Vec::new();
    fn keep_in(outputs: &mut Vec<(String, String)>, name: &str, r: Run) {
        outputs.push((format!("{name} stdout"), r.stdout()));
        outputs.push((format!("{name} stderr"), r.stderr()));
    }
    macro_rules! keep {
        ($name:expr, $run:expr $(,)?) => {
            keep_in(&mut outputs, $name, $run)
        };
    }
    keep!(
        "bootstrap",
        root.dkimctl(&[
            "bootstrap",
            "--domain",
            "example.com",
            "--mta",
            "none",
            "--yes",
            "--no-reload",
        ]),
    );
    let mut windows = secret_windows(root.path());
    assert!(!windows.is_empty(), "bootstrap made no key");
    keep!("plan", root.dkimctl(&["plan", "--verbose"]));
    keep!(
        "plan --json",
        root.dkimctl(&["plan", "--json", "--verbose"]),
    );
    keep!(
        "dns records --json",
        root.dkimctl(&["dns", "records", "--json"]),
    );
    keep!("dns records", root.dkimctl(&["dns", "records"]));
    keep!(
        "keys generate --force",
        root.dkimctl(&["keys", "generate", "--force"]),
    );
    windows.extend(secret_windows(root.path()));
    keep!(
        "apply --json",
        root.dkimctl(&["apply", "--yes", "--no-reload", "--json"]),
    );
    // serve: sign a message, then stop; the log is an output too.
    {
        let d = Daemon::start(&root);
        let rt = runtime();
        let (r, _) = rt.block_on(one_message(&d.addr, LOCAL));
        assert!(signature_count(&r) >= 1, "{r:?}");
        d.stop();
        outputs.push((
            "serve log".into(),
            std::fs::read_to_string(root.join("serve.log")).unwrap(),
        ));
    }
    let msg = root.join("msg.eml");
    std::fs::write(&msg, "From: a@example.com\nSubject: x\n\nbody\n").unwrap();
    keep!("sign", root.dkimctl(&["sign", msg.to_str().unwrap()]));
    // A key made world-readable: refused, and the message names the file.
    let key = tree(root.path())
        .into_iter()
        .map(|(r, _)| r)
        .find(|r| r.ends_with(".private"))
        .expect("a key");
    let key = root.join(&key);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    keep!("plan (unsafe key)", root.dkimctl(&["plan", "--json"]));
    keep!("check (unsafe key)", root.dkimctl(&["check"]));
    keep!(
        "sign (unsafe key)",
        root.dkimctl(&["sign", msg.to_str().unwrap()]),
    );
    // A truncated key: the loaders' error messages.
    let pem = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, &pem[..pem.len() / 2]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    keep!("check (broken key)", root.dkimctl(&["check"]));
    keep!("plan (broken key)", root.dkimctl(&["plan"]));
    keep!(
        "dns records (broken key)",
        root.dkimctl(&["dns", "records", "--json"]),
    );
    keep!(
        "sign (broken key)",
        root.dkimctl(&["sign", msg.to_str().unwrap()]),
    );
    let total: usize = outputs.iter().map(|(_, o)| o.len()).sum();
    for (name, text) in &outputs {
        let flat: String = text
            .replace("\\n", "")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        assert!(
            !text.contains("PRIVATE KEY-----"),
            "{name} shows a PEM header:\n{text}"
        );
        for w in &windows {
            assert!(
                !flat.contains(w.as_str()),
                "{name} contains private key material ({w}):\n{text}"
            );
        }
    }
    eprintln!(
        "no_key_material_in_outputs: {} outputs, {total} bytes, {} secret windows checked: none found",
        outputs.len(),
        windows.len()
    );
}

/// A key readable by others: `dkimctl serve` refuses to start, naming the
/// file; `[engine] require_safe_keys = false` is the documented override.
#[test]
fn engine_refuses_a_key_readable_by_others() {
    let (root, _) = signing_root("sign", "");
    std::fs::set_permissions(key_path(&root), std::fs::Permissions::from_mode(0o644)).unwrap();
    let socket = free_socket();
    let (status, err) = exits_by_itself(&[
        "--root",
        &root.root_arg(),
        "serve",
        "--socket",
        &socket,
        "--allow-root",
    ]);
    assert!(!status.success(), "{err}");
    assert!(
        err.contains(&key_path(&root).display().to_string()),
        "{err}"
    );
    assert!(err.contains("readable by others"), "{err}");

    root.write(
        "etc/dkimctl/dkim.toml",
        &dkim_toml("sign", "require_safe_keys = false"),
    );
    let d = Daemon::start(&root);
    assert!(d.stop().success());
}

// ---------------------------------------------------------------------
// Privilege
// ---------------------------------------------------------------------

/// As root: without `--allow-root` and with no service user to switch to,
/// serve refuses to run; with `service.user = "nobody"` it binds, then
/// runs as nobody with no capabilities (effective, permitted, ambient).
#[test]
fn engine_never_runs_as_root_and_holds_no_capabilities_after_binding() {
    if !require_root("switching users") {
        return;
    }
    let (root, record) = signing_root("sign", "");
    let toml = dkim_toml("sign", "").replace(
        "[service]\n",
        "[service]\nuser = \"dkimctl-no-such-user\"\n",
    );
    root.write("etc/dkimctl/dkim.toml", &toml);
    let r = run(Command::new(bin()).args([
        "--root",
        &root.root_arg(),
        "serve",
        "--socket",
        &free_socket(),
    ]));
    assert_ne!(r.code(), 0);
    assert!(
        r.stderr().contains("refusing to run as root"),
        "{}",
        r.stderr()
    );

    let toml = dkim_toml("sign", "").replace(
        "[service]\n",
        "[service]\nuser = \"nobody\"\ngroup = \"nogroup\"\n",
    );
    root.write("etc/dkimctl/dkim.toml", &toml);
    // nobody reads its key through the (0755) directories.
    for dir in [
        "",
        "etc",
        "etc/dkimctl",
        "etc/dkimctl/keys",
        "etc/dkimctl/keys/example.com",
    ] {
        std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    nix::unistd::chown(
        &key_path(&root),
        Some(nix::unistd::Uid::from_raw(65534)),
        None,
    )
    .unwrap();
    let d = Daemon::start_with(&root, &bin(), false);
    let status = |f: &str| proc_status(d.pid(), f).unwrap_or_default();
    let (uid, eff, prm, amb) = (
        status("Uid:"),
        status("CapEff:"),
        status("CapPrm:"),
        status("CapAmb:"),
    );
    eprintln!("privilege: Uid {uid}; CapEff {eff}; CapPrm {prm}; CapAmb {amb}");
    assert!(uid.split_whitespace().all(|u| u == "65534"), "Uid: {uid}");
    for (name, v) in [("CapEff", &eff), ("CapPrm", &prm), ("CapAmb", &amb)] {
        assert!(v.trim_start_matches('0').is_empty(), "{name}: {v}");
    }
    let rt = runtime();
    let (r, ls) = rt.block_on(one_message(&d.addr, LOCAL));
    assert!(
        rt.block_on(signed_and_verifies(&r, ls, &resolver(&[record]))),
        "{r:?}"
    );
    assert!(d.stop().success());
}

// ---------------------------------------------------------------------
// Forgery
// ---------------------------------------------------------------------

/// Through the real daemon: an incoming Authentication-Results with our
/// authserv-id (any case, after a comment) is removed and ours added; a
/// foreign one stays; a message with two From headers is not signed and
/// gets `on_failure.bad_from` (reject by default).
#[test]
fn forged_authentication_results_are_removed_and_two_froms_are_not_signed() {
    let (root, _) = signing_root("sign+verify", "");
    let d = Daemon::start(&root);
    let rt = runtime();
    let incoming: &[(&[u8], &[u8])] = &[
        (b"Authentication-Results", b" other.example; dkim=pass"),
        (
            b"Authentication-Results",
            b" (forged) MX.Example.NET; dkim=pass header.d=example.com",
        ),
        (b"From", b" someone@example.org"),
        (b"Authentication-Results", b" mx.example.net; dkim=pass"),
        (b"Subject", b" hi"),
    ];
    let (replies, ls) = rt.block_on(async {
        let mut c = MilterClient::connect(&d.addr).await.unwrap();
        c.negotiate().await.unwrap();
        let r = c
            .send_message(&macros(), REMOTE, incoming, b"body\r\n")
            .await
            .unwrap();
        (r, c.leading_space())
    });
    let delivered =
        String::from_utf8_lossy(&apply_replies(incoming, b"body\r\n", &replies, ls)).into_owned();
    let ours: Vec<&str> = delivered
        .lines()
        .filter(|l| {
            l.to_ascii_lowercase()
                .starts_with("authentication-results:")
        })
        .collect();
    assert_eq!(ours.len(), 2, "{delivered}");
    assert!(
        ours.iter().any(|l| l.contains("other.example")),
        "{delivered}"
    );
    assert!(
        !delivered.contains("(forged)") && !delivered.contains("mx.example.net; dkim=pass"),
        "{delivered}"
    );
    assert!(
        delivered.contains(&format!("{AUTHSERV_ID};")),
        "{delivered}"
    );

    let two_froms: &[(&[u8], &[u8])] = &[
        (b"From", b" jose@example.com"),
        (b"From", b" mallory@example.com"),
        (b"Subject", b" hi"),
    ];
    let replies = rt.block_on(async {
        let mut c = MilterClient::connect(&d.addr).await.unwrap();
        c.negotiate().await.unwrap();
        c.send_message(&macros(), LOCAL, two_froms, b"body\r\n")
            .await
            .unwrap()
    });
    assert_eq!(signature_count(&replies), 0, "{replies:?}");
    assert!(
        matches!(replies.last(), Some(Reply::ReplyCode(t)) if t.starts_with(b"550 5.7.1")),
        "{replies:?}"
    );
    assert!(d.stop().success());
}

// ---------------------------------------------------------------------
// Regression tests for fuzz and review finds
// ---------------------------------------------------------------------

/// RFC 8601 §2.2: the authserv-id is a `value`, a token *or a quoted
/// string*; `"mx.example.net"; dkim=pass` claims our id as much as the
/// bare form does, and downstream filters that unquote it would trust it.
/// Malformed input: a quoted authserv-id.
#[test]
fn auth_results_with_quoted_authserv_id_is_recognised_as_forged() {
    use dkimctl::dkim::auth_results::claims_authserv_id;
    assert!(claims_authserv_id(
        b" \"mx.example.net\"; dkim=pass",
        "mx.example.net"
    ));
    assert!(claims_authserv_id(
        b" (c) \"MX.example.net\" 1; none",
        "mx.example.net"
    ));
}

/// `strtol` stops at the second sign: `--9223372036854775808` is not a
/// number to OpenDKIM; the audit's reader must say so rather than negate
/// `i64::MIN` (an overflow panic in debug builds). Malformed input: an
/// opendkim.conf integer with two minus signs.
#[test]
fn opendkim_conf_integer_with_two_signs_is_not_a_number() {
    use dkimctl::formats::opendkim::parse_c_int;
    assert_eq!(parse_c_int("--9223372036854775808"), None);
    assert_eq!(parse_c_int("--5"), None);
    assert_eq!(parse_c_int("+-5"), None);
    assert_eq!(parse_c_int("-5"), Some(-5));
}

/// A misspelt table (`[serviZe]`) is an error, but `config::parse`
/// still builds a model from the rest (so `check` can run its later
/// checks too); every command must refuse it rather than run with the
/// defaults the misspelt table was meant to override. Found by the
/// `config` fuzz target (a model despite an error diagnostic).
/// Malformed input: a misspelt table name.
#[test]
fn config_with_unknown_top_level_table_is_refused_by_every_command() {
    let (root, _) = signing_root("sign", "");
    let text = dkim_toml("sign", "").replace("[service]", "[serviZe]");
    root.write("etc/dkimctl/dkim.toml", &text);
    let source = dkimctl::config::Source::resolve(&dkimctl::host::Root::new(root.path()), None);
    let loaded = dkimctl::config::parse(&text, &source);
    assert!(loaded.diags.has_errors());
    for args in [
        &["check"][..],
        &["plan"],
        &["apply", "--yes", "--no-reload"],
        &["dns", "records"],
    ] {
        let r = root.dkimctl(args);
        assert_ne!(r.code(), 0, "{args:?} accepted a misspelt table");
        assert!(
            r.stderr().contains("serviZe") || r.stderr().contains("error"),
            "{args:?}: {}",
            r.stderr()
        );
    }
    let socket = free_socket();
    let (status, err) = exits_by_itself(&[
        "--root",
        &root.root_arg(),
        "serve",
        "--socket",
        &socket,
        "--allow-root",
    ]);
    assert!(!status.success(), "serve started with a misspelt table");
    assert!(err.contains("serviZe"), "{err}");
}

/// `dkimctl import` promises output that "always passes `dkimctl check`
/// without errors"; an opendkim.conf that signs nothing (no KeyTable, no
/// Domain/KeyFile) and has a Mode the importer does not understand (`Mode
/// }`) was imported as `mode = "sign+verify"` with no `[[domain]]`, which
/// check refuses (the understood modes are handled). Found by the
/// `opendkim_conf` fuzz target. Malformed input: an unknown Mode in an
/// opendkim.conf that names nothing to sign with.
#[test]
fn import_of_an_opendkim_conf_without_signing_domains_passes_check() {
    let mut failures = Vec::new();
    for mode in ["", "Mode v\n", "Mode sv\n", "Mode s\n", "Mode }\n"] {
        let root = TempRoot::new("");
        std::fs::remove_file(root.join("etc/dkimctl/dkim.toml")).unwrap();
        root.write(
            "etc/opendkim.conf",
            &format!(
                "Socket local:/var/spool/postfix/opendkim/opendkim.sock\nUserID opendkim\n{mode}"
            ),
        );
        let imported =
            dkimctl::audit::import(&dkimctl::host::Root::new(root.path())).expect("import");
        let source = dkimctl::config::Source {
            real: root.join("etc/dkimctl/dkim.toml"),
            host: "/etc/dkimctl/dkim.toml".into(),
            display: "dkim.toml".into(),
        };
        let loaded = dkimctl::config::parse(&imported.toml, &source);
        let errors: Vec<String> = loaded
            .diags
            .iter()
            .filter(|d| d.severity == dkimctl::report::Severity::Error)
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            failures.push(format!("{mode:?}: {errors:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
