//! Faults: a DNS server that never answers, reloads that must fail safe,
//! SIGTERM in the middle of a message.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dkimctl::milter::Reply;
use dkimctl::milter::client::MilterClient;
use dkimctl::milter::command::Command as Milter;
use dkimctl::milter::negotiate::protocol;
use nix::sys::signal::Signal;

use super::{AUTHSERV_ID, BODY, HEADERS, ed1_key, resolver, signed_and_verifies, signing};
use crate::support::client::{
    LOCAL, REMOTE, inserted, macros, message_packets, one_message, read_final, runtime,
};
use crate::support::configs::{Keyed, list};
use crate::support::message::Msg;
use crate::support::serve::Serve;
use crate::support::{TempRoot, is_root};

/// A signed message as the MTA would hand it over, signed by the library
/// with the root's key.
fn signed_incoming(root: &TempRoot) -> Msg {
    let r = dkimctl::host::Root::new(root.path());
    let source = dkimctl::config::Source::resolve(&r, None);
    let config = dkimctl::config::parse(&signing("sign").text(), &source)
        .config
        .expect("valid");
    let message =
        b"From: Jose <jose@example.com>\r\nTo: x@example.net\r\nSubject: hi\r\n\r\nbody\r\n";
    let signed = dkimctl::engine::sign_file(&config, &r, message, 1_700_000_000).expect("sign");
    Msg::parse(&signed)
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
    let verify = signing("verify")
        .set("engine.nameservers", list(&[format!("127.0.0.1:{port}")]))
        .set("engine.dns_timeout", "1s");
    let root = Keyed::new(&verify).root;
    let incoming = signed_incoming(&root);
    let (hv, body) = (incoming.fields(), &incoming.body);
    let d = Serve::start(&root);
    let rt = runtime();
    let send = |d: &Serve| {
        rt.block_on(async {
            let mut c = MilterClient::connect(d.addr()).await.expect("connect");
            c.negotiate().await.expect("negotiate");
            tokio::time::timeout(
                Duration::from_secs(30),
                c.send_message(&macros(), REMOTE, &hv, body),
            )
            .await
            .expect("no reply within 30 s: the DNS time-out does not bound verification")
            .expect("message")
        })
    };
    let replies = send(&d);
    let ar = inserted(&replies, "Authentication-Results")
        .into_iter()
        .next()
        .unwrap_or_default();
    assert!(ar.contains("dkim=temperror"), "{replies:?}");
    assert!(ar.contains(AUTHSERV_ID), "{ar}");
    assert_eq!(
        replies.last(),
        Some(&Reply::Continue),
        "default dns_error is accept"
    );

    verify
        .set("engine.on_failure.dns_error", "tempfail")
        .write_to(&root);
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
    let s = Keyed::new(&signing("sign"));
    let root = &s.root;
    let d = Serve::start(root);
    let rt = runtime();
    let resolver = resolver(&s.records);
    std::fs::write(ed1_key(root), "-----BEGIN PRIVATE KEY-----\ngarbage\n").unwrap();
    if !is_root() {
        // Unreadable as well, for a process that permissions stop.
        std::fs::set_permissions(ed1_key(root), std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    d.signal(Signal::SIGHUP);
    assert!(d.wait_log("reload failed", 1), "{}", d.log_text());
    let log = d.log_text();
    assert!(log.contains(&ed1_key(root).display().to_string()), "{log}");
    let (r, ls) = rt.block_on(one_message(d.addr(), None, LOCAL, HEADERS, BODY));
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
    let s = Keyed::new(&signing("sign"));
    let root = &s.root;
    let d = Serve::start(root);
    let rt = runtime();
    let resolver = resolver(&s.records);
    root.write(
        "etc/dkimctl/dkim.toml",
        "[service]\nmode = \"sing\"\n[[domain]]\n",
    );
    d.signal(Signal::SIGHUP);
    assert!(d.wait_log("reload failed", 1), "{}", d.log_text());
    assert!(d.log_text().contains("dkim.toml:2:"), "{}", d.log_text());
    let (r, ls) = rt.block_on(one_message(d.addr(), None, LOCAL, HEADERS, BODY));
    assert!(rt.block_on(signed_and_verifies(&r, ls, &resolver)), "{r:?}");
    assert!(d.stop().success());
}

/// SIGTERM while a message is half sent: the message is still finished
/// and signed (or tempfailed), never accepted unsigned, and the daemon
/// then exits 0.
#[test]
fn sigterm_during_a_message_finishes_it_signed() {
    let s = Keyed::new(&signing("sign"));
    let mut d = Serve::start(&s.root);
    let rt = runtime();
    let resolver = resolver(&s.records);
    let replies = rt.block_on(async {
        let mut c = MilterClient::connect(d.addr()).await.expect("connect");
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
