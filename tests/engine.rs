//! The bundled engine over real sockets, judged by an independent verifier.
//!
//! Each test starts the engine in-process on a loopback TCP port or a unix
//! socket in a temporary root (the server API `dkimctl serve` uses, minus
//! the privilege drop), drives it with the MTA-side client
//! (`milter::client`), applies the returned modifications to the message
//! as the MTA would, and has dkimpy (Debian's `python3-dkim`) verify the
//! result against the records `dkimctl dns records` prints for the keys
//! `dkimctl keys generate` made. One test runs the real binary
//! (`dkimctl serve`).

use std::path::PathBuf;
use std::time::Duration;

use dkimctl::config::Source;
use dkimctl::engine::server;
use dkimctl::engine::server::Control;
use dkimctl::host::Root;
use dkimctl::milter::Reply;
use dkimctl::milter::client::{MilterClient, apply_replies};
use dkimctl::milter::command::OptNeg;

use crate::support::client::{LOCAL, REMOTE, inserted, macros, one_message, signatures};
use crate::support::configs::{Config, Keyed, config, list};
use crate::support::engine::{Engine, dns_server};
use crate::support::knot::published;
use crate::support::message::{Msg, message};
use crate::support::serve::Serve;
use crate::support::verifiers::dkimpy_with;

/// The signing configuration with `canon` ("rsa", "ed25519" or "dual").
fn signing(keys: &str, canon: &str) -> Config {
    config(&format!("sign-{keys}-example-com")).set("defaults.canonicalization", canon)
}

/// Signs `msg` through the engine (negotiating `offer`, or what Postfix
/// offers); returns the replies and the message as delivered.
async fn sign_via_milter(
    engine: &Engine,
    offer: Option<OptNeg>,
    msg: &Msg,
) -> (Vec<Reply>, Vec<u8>) {
    let fields = msg.fields();
    let (replies, leading_space) =
        one_message(&engine.addr, offer, LOCAL, &fields, &msg.body).await;
    let delivered = apply_replies(&fields, &msg.body, &replies, leading_space);
    (replies, delivered)
}

async fn signs_and_dkimpy_verifies(
    canon: &str,
    keys: &str,
    count: usize,
    unix: bool,
    offer: Option<OptNeg>,
) {
    let s = Keyed::new(&signing(keys, canon));
    let engine = Engine::start(&s.root, unix).await;
    let (replies, delivered) = sign_via_milter(&engine, offer, &message()).await;
    assert_eq!(signatures(&replies), count, "{replies:?}");
    assert_eq!(replies.last(), Some(&Reply::Continue));
    if let Some(verdicts) = dkimpy_with(&delivered, &s.records) {
        assert_eq!(
            verdicts,
            vec![true; count],
            "dkimpy rejected ({canon}):\n{}",
            String::from_utf8_lossy(&delivered)
        );
        // A changed body byte must fail every signature.
        let mut tampered = delivered.clone();
        let at = tampered.len() - 10;
        tampered[at] ^= 0x01;
        assert_eq!(
            dkimpy_with(&tampered, &s.records).unwrap(),
            vec![false; count]
        );
    }
    engine.stop().await;
}

#[tokio::test]
async fn rsa_relaxed_relaxed_over_unix_socket() {
    signs_and_dkimpy_verifies("relaxed/relaxed", "rsa", 1, true, None).await;
}

#[tokio::test]
async fn ed25519_simple_simple_over_tcp() {
    signs_and_dkimpy_verifies("simple/simple", "ed25519", 1, false, None).await;
}

#[tokio::test]
async fn rsa_simple_simple() {
    signs_and_dkimpy_verifies("simple/simple", "rsa", 1, false, None).await;
}

#[tokio::test]
async fn dual_rsa_and_ed25519_relaxed_simple() {
    signs_and_dkimpy_verifies("relaxed/simple", "dual", 2, false, None).await;
}

/// An MTA without SMFIP_HDR_LEADSPC (and without the NR flags): values
/// arrive without their leading space and every step is answered.
#[tokio::test]
async fn old_mta_without_leading_space_simple_header_canonicalization() {
    let offer = OptNeg {
        version: 6,
        actions: 0x1ff,
        protocol: 0x3ff, // NO* and NR_HDR only
        macros: vec![],
    };
    signs_and_dkimpy_verifies("simple/simple", "dual", 2, false, Some(offer)).await;
}

#[tokio::test]
async fn several_messages_on_one_connection() {
    let s = Keyed::new(&signing("rsa", "relaxed/relaxed"));
    let engine = Engine::start(&s.root, false).await;
    let msg = message();
    let headers = msg.fields();
    let mut c = MilterClient::connect(&engine.addr).await.unwrap();
    c.negotiate().await.unwrap();
    for i in 0..5 {
        let body = format!("message {i}\r\n");
        let client = if i % 2 == 0 { LOCAL } else { REMOTE };
        let replies = c
            .send_message(&macros(), client, &headers, body.as_bytes())
            .await
            .unwrap();
        // Remote clients are neither signed nor verified in mode "sign".
        let want = if client == LOCAL { 1 } else { 0 };
        assert_eq!(signatures(&replies), want, "message {i}: {replies:?}");
        if want == 1 {
            let delivered = apply_replies(&headers, body.as_bytes(), &replies, c.leading_space());
            if let Some(v) = dkimpy_with(&delivered, &s.records) {
                assert_eq!(v, vec![true]);
            }
        }
    }
    c.quit().await.unwrap();
    engine.stop().await;
}

#[tokio::test]
async fn bad_packets_close_one_connection_and_others_carry_on() {
    let s = Keyed::new(&signing("ed25519", "relaxed/relaxed"));
    let engine = Engine::start(&s.root, false).await;
    let mut good = MilterClient::connect(&engine.addr).await.unwrap();
    good.negotiate().await.unwrap();

    for garbage in [
        &b"\xff\xff\xff\xffO"[..], // 4 GiB announced
        b"\x00\x00\x00\x02Z\x00",  // unknown command
        b"\x00\x00\x00\x00",       // zero length
        b"\x00\x00\x00\x03Lab",    // header without NULs
    ] {
        let mut bad = MilterClient::connect(&engine.addr).await.unwrap();
        bad.negotiate().await.unwrap();
        bad.send_raw(garbage).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), bad.read_reply())
            .await
            .unwrap_or_else(|_| panic!("{garbage:?} did not close the connection"));
        assert!(matches!(r, Ok(None) | Err(_)), "{garbage:?}: {r:?}");
    }
    // A client that disconnects in the middle of the body.
    let mut quitter = MilterClient::connect(&engine.addr).await.unwrap();
    quitter.negotiate().await.unwrap();
    quitter
        .send(&dkimctl::milter::Command::Header {
            name: bytes::Bytes::from_static(b"From"),
            value: bytes::Bytes::from_static(b" a@example.com"),
        })
        .await
        .unwrap();
    drop(quitter);

    let msg = message();
    let replies = good
        .send_message(&macros(), LOCAL, &msg.fields(), &msg.body)
        .await
        .unwrap();
    assert_eq!(signatures(&replies), 1);
    engine.stop().await;
}

#[tokio::test]
async fn reload_with_a_broken_file_keeps_the_running_configuration() {
    let s = Keyed::new(&signing("rsa", "relaxed/relaxed"));
    let engine = Engine::start(&s.root, false).await;

    s.root
        .write("etc/dkimctl/dkim.toml", "[service]\nmode = \"sideways\"\n");
    let err = engine.reload().await.unwrap_err();
    assert!(err.contains("invalid"), "{err}");
    let (replies, delivered) = sign_via_milter(&engine, None, &message()).await;
    assert_eq!(signatures(&replies), 1);
    if let Some(v) = dkimpy_with(&delivered, &s.records) {
        assert_eq!(v, vec![true]);
    }

    // A valid file whose key is missing is refused as well.
    signing("ed25519", "relaxed/relaxed").write_to(&s.root);
    let err = engine.reload().await.unwrap_err();
    assert!(err.contains("ed1.private"), "{err}");

    // Once the key exists, a good file naming it is taken.
    s.root.dkimctl(&["keys", "generate"]).expect(0);
    signing("ed25519", "simple/simple").write_to(&s.root);
    engine.reload().await.unwrap();
    let (replies, delivered) = sign_via_milter(&engine, None, &message()).await;
    assert_eq!(signatures(&replies), 1);
    let records = published(&s.root);
    if let Some(v) = dkimpy_with(&delivered, &records) {
        assert_eq!(v, vec![true]);
    }
    engine.stop().await;
}

#[tokio::test]
async fn unix_socket_is_removed_at_exit_and_stale_one_at_start() {
    let s = Keyed::new(&signing("rsa", "relaxed/relaxed"));
    let sock = s.root.join("run/dkimctl/milter.sock");
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    // A stale socket: bound, then its listener dropped.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let engine = Engine::start(&s.root, true).await;
    let mode = std::fs::metadata(&sock).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o770,
        "0o777 & !umask 007"
    );
    engine.stop().await;
    assert!(!sock.exists(), "socket left behind");
}

#[tokio::test]
async fn verifies_incoming_mail_against_a_dns_server() {
    // Sign with one engine, verify with another that asks a DNS server.
    let signer = Keyed::new(&signing("dual", "relaxed/relaxed"));
    let engine = Engine::start(&signer.root, false).await;
    let (_, delivered) = sign_via_milter(&engine, None, &message()).await;
    engine.stop().await;

    let ns = dns_server(&signer.records).await;
    let verifier = signing("dual", "relaxed/relaxed")
        .set("service.mode", "verify")
        .without("domain")
        .set("engine.nameservers", list(&[ns.to_string()]))
        .set("engine.dns_timeout", "2s")
        .root();
    let engine = Engine::start(&verifier, false).await;

    // The delivered message split back into fields as the MTA would, with
    // a forged verdict in our name.
    let mut incoming = Msg::parse(&delivered);
    incoming.headers.push((
        b"Authentication-Results".to_vec(),
        b" mx.example.net; dkim=pass (forged)".to_vec(),
    ));

    let mut c = MilterClient::connect(&engine.addr).await.unwrap();
    c.negotiate().await.unwrap();
    let replies = c
        .send_message(&macros(), REMOTE, &incoming.fields(), &incoming.body)
        .await
        .unwrap();
    let ar = inserted(&replies, "Authentication-Results");
    assert_eq!(ar.len(), 1, "{replies:?}");
    assert!(ar[0].starts_with(" mx.example.net;"), "{}", ar[0]);
    assert_eq!(ar[0].matches("dkim=pass").count(), 2, "{}", ar[0]);
    assert!(ar[0].contains("header.a=ed25519-sha256") && ar[0].contains("header.a=rsa-sha256"));
    assert!(
        replies.contains(&Reply::ChangeHeader {
            index: 1,
            name: bytes::Bytes::from_static(b"Authentication-Results"),
            value: bytes::Bytes::new(),
        }),
        "forged header not removed: {replies:?}"
    );
    engine.stop().await;
}

/// The real binary: start, sign, SIGHUP with a broken file (keeps
/// serving), SIGTERM (socket removed).
#[test]
fn real_binary_serves_reloads_and_stops() {
    let s = Keyed::new(&signing("rsa", "relaxed/relaxed"));
    let sock: PathBuf = s.root.join("run/milter.sock");
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    let addr = format!("unix:{}", sock.display());
    let serve = Serve::launch(&s.root).socket(&addr).start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let msg = message();
    let sign = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let (r, ls) = one_message(&addr, None, LOCAL, &msg.fields(), &msg.body).await;
            apply_replies(&msg.fields(), &msg.body, &r, ls)
        })
    };
    let delivered = sign(&rt);
    if let Some(v) = dkimpy_with(&delivered, &s.records) {
        assert_eq!(v, vec![true]);
    }
    s.root.write("etc/dkimctl/dkim.toml", "not toml [");
    serve.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(serve.wait_log("reload failed", 1), "{}", serve.log_text());
    let delivered = sign(&rt);
    if let Some(v) = dkimpy_with(&delivered, &s.records) {
        assert_eq!(v, vec![true], "stopped signing after a broken reload");
    }
    let log = serve.log_path().to_path_buf();
    let status = serve.stop();
    let stderr = std::fs::read_to_string(log).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("reload failed"), "{stderr}");
    assert!(
        stderr.contains("4ABCDEF: signed d=example.com s=rsa1 a=rsa-sha256"),
        "{stderr}"
    );
    assert!(!sock.exists(), "socket left behind");
}

#[tokio::test]
async fn shutdown_lets_a_message_in_progress_finish() {
    use dkimctl::milter::Command as C;
    let s = Keyed::new(&signing("ed25519", "relaxed/relaxed"));
    let engine = Engine::start(&s.root, false).await;
    let mut c = MilterClient::connect(&engine.addr).await.unwrap();
    c.negotiate().await.unwrap();
    let b = |s: &'static [u8]| bytes::Bytes::from_static(s);
    c.send(&C::Connect {
        hostname: b(b"localhost"),
        family: dkimctl::milter::Family::Inet,
        port: 1,
        address: b(b"127.0.0.1"),
    })
    .await
    .unwrap();
    c.send(&C::Mail(vec![b(b"<a@example.com>")])).await.unwrap();
    c.send(&C::Header {
        name: b(b"From"),
        value: b(b" a@example.com"),
    })
    .await
    .unwrap();
    // Make sure the engine has read the header before it is told to stop.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let Engine { control, task, .. } = engine;
    control.send(Control::Shutdown).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!task.is_finished(), "stopped in the middle of a message");

    c.send(&C::EndOfHeaders).await.unwrap();
    c.send(&C::Body(b(b"hi\r\n"))).await.unwrap();
    c.send(&C::EndOfMessage).await.unwrap();
    let first = c.read_reply().await.unwrap();
    assert!(
        matches!(first, Some(Reply::InsertHeader { .. })),
        "{first:?}"
    );
    assert_eq!(c.read_reply().await.unwrap(), Some(Reply::Continue));
    // Between messages now: the engine closes the connection and exits.
    assert_eq!(c.read_reply().await.unwrap(), None);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let s = Keyed::new(&signing("ed25519", "relaxed/relaxed").set("engine.idle_timeout", "1s"));
    let engine = Engine::start(&s.root, false).await;
    let mut c = MilterClient::connect(&engine.addr).await.unwrap();
    c.negotiate().await.unwrap();
    let start = std::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), c.read_reply())
        .await
        .unwrap();
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(start.elapsed() >= Duration::from_millis(900));
    engine.stop().await;
}

#[tokio::test]
async fn connection_cap_makes_the_next_connection_wait() {
    let s = Keyed::new(&signing("ed25519", "relaxed/relaxed").set("engine.max_connections", 1));
    let engine = Engine::start(&s.root, false).await;
    let mut first = MilterClient::connect(&engine.addr).await.unwrap();
    first.negotiate().await.unwrap();
    let mut second = MilterClient::connect(&engine.addr).await.unwrap();
    second
        .send(&dkimctl::milter::Command::OptNeg(
            MilterClient::postfix_offer(),
        ))
        .await
        .unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(300), second.read_reply()).await;
    assert!(waited.is_err(), "second connection served beyond the cap");
    first.quit().await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), second.read_reply())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(answer, Some(Reply::OptNeg(_))), "{answer:?}");
    engine.stop().await;
}

#[tokio::test]
async fn one_shot_sign_and_verify_share_the_engine_code() {
    // The DNS server needs the records, which need the keys: set up, then
    // rewrite the file with the server's address.
    let s = Keyed::new(&signing("dual", "relaxed/relaxed"));
    let ns = dns_server(&s.records).await;
    signing("dual", "relaxed/relaxed")
        .set("engine.nameservers", list(&[ns.to_string()]))
        .set("engine.dns_timeout", "2s")
        .write_to(&s.root);
    let root = Root::new(s.root.path());
    let config = server::load_config(&Source::resolve(&root, None)).unwrap();

    let message = b"From: Jos\xe9 <jose@example.com>\nTo: x@example.net\nSubject: one\n shot\n\nbody \t\nline\n\n";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed = dkimctl::engine::sign_file(&config, &root, message, now).unwrap();
    if let Some(v) = dkimpy_with(&signed, &s.records) {
        assert_eq!(v, vec![true, true]);
    }
    let results = dkimctl::engine::verify_message(&config, &signed, dkimctl::engine::unix_now())
        .await
        .unwrap();
    let statuses: Vec<_> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [dkimctl::dkim::DkimStatus::Pass; 2],
        "{results:?}"
    );

    let mut tampered = signed.clone();
    let n = tampered.len();
    tampered[n - 3] = b'X';
    let results = dkimctl::engine::verify_message(&config, &tampered, dkimctl::engine::unix_now())
        .await
        .unwrap();
    assert!(
        results
            .iter()
            .all(|r| r.status == dkimctl::dkim::DkimStatus::Fail),
        "{results:?}"
    );
}
