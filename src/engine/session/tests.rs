//! Protocol vectors for the session: frames in, exact reply bytes out.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::*;
use crate::config::{Source, parse};
use crate::dkim::{HeaderField, Signer};
use crate::dns::Fixed;
use crate::dns::resolver::Resolver;
use crate::engine::{Shared, State};
use crate::host::Root;
use crate::keys::{parse_private_key, record_value};
use crate::milter::command::OptNeg;
use crate::milter::decode_command;

const RSA: &str = include_str!("../../dkim/testdata/test-only-rsa2048.pem");
const ED: &str = include_str!("../../dkim/testdata/test-only-ed25519.pem");
const NOW: u64 = 1_700_000_000;

/// A root with the two test keys and a dkim.toml.
struct Fixture {
    _dir: tempfile::TempDir,
    shared: Shared,
    state: Arc<State>,
}

fn fixture(extra: &str, resolver: Option<Resolver>) -> Fixture {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    let keys = dir.path().join("etc/dkimctl/keys/example.com");
    std::fs::create_dir_all(&keys).unwrap();
    for (name, pem) in [("rsa1.private", RSA), ("ed1.private", ED)] {
        let p = keys.join(name);
        std::fs::write(&p, pem).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let text = format!(
        r#"
[service]
engine = "bundled"
mode = "sign+verify"
authserv_id = "mx.example.net"
socket = "inet:127.0.0.1:8891"

[defaults]
algorithms = ["rsa-sha256", "ed25519-sha256"]
canonicalization = "relaxed/relaxed"
{extra}

[[domain]]
name = "example.com"
subdomains = true

[[domain.key]]
selector = "rsa1"
algorithm = "rsa-sha256"

[[domain.key]]
selector = "ed1"
algorithm = "ed25519-sha256"

[mta]
kind = "none"
"#
    );
    let source = Source {
        real: dir.path().join("etc/dkimctl/dkim.toml"),
        host: "/etc/dkimctl/dkim.toml".into(),
        display: "dkim.toml".into(),
    };
    let loaded = parse(&text, &source);
    let config = loaded.config.unwrap_or_else(|| {
        panic!(
            "{}",
            loaded
                .diags
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let resolver = Some(Arc::new(
        resolver.unwrap_or_else(|| Resolver::fixed(Fixed::new())),
    ));
    let state = State::build_with(config, &root, resolver, true).unwrap();
    let shared = Shared::new(state);
    let state = shared.current();
    Fixture {
        _dir: dir,
        shared,
        state,
    }
}

fn records() -> Fixed {
    let mut out = Fixed::new();
    for (sel, pem) in [("rsa1", RSA), ("ed1", ED)] {
        let k = parse_private_key(pem.as_bytes(), Path::new("t")).unwrap();
        let value = record_value(k.algorithm, &k.public, Default::default());
        out = out.record(
            &format!("{sel}._domainkey.example.com"),
            &crate::keys::character_strings(&value),
        );
    }
    out
}

fn frames(cmds: &[Command]) -> BytesMut {
    let mut b = BytesMut::new();
    for c in cmds {
        c.encode(&mut b).unwrap();
    }
    b
}

fn replies(rs: &[Reply]) -> Vec<u8> {
    let mut b = BytesMut::new();
    for r in rs {
        r.encode(&mut b).unwrap();
    }
    b.to_vec()
}

/// Feeds frames through a session; returns the reply bytes after each
/// command, so tests see exactly which step answered.
async fn run(session: &mut Session, input: BytesMut) -> Vec<(&'static str, Vec<u8>)> {
    let mut input = input;
    let mut steps = Vec::new();
    while let Some(cmd) = decode_command(&mut input, crate::milter::DEFAULT_MAX_PACKET).unwrap() {
        let name = cmd.wire_name();
        let mut out = BytesMut::new();
        let flow = session.handle(cmd, NOW, &mut out).await.unwrap();
        steps.push((name, out.to_vec()));
        if flow == Flow::Close {
            break;
        }
    }
    steps
}

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

fn offer() -> Command {
    Command::OptNeg(OptNeg {
        version: 6,
        actions: 0x1ff,
        protocol: 0x1f_ffff,
        macros: vec![],
    })
}

fn connect(ip: &str) -> Command {
    Command::Connect {
        hostname: b(b"client.example"),
        family: if ip.contains(':') {
            Family::Inet6
        } else {
            Family::Inet
        },
        port: 4000,
        address: b(ip.as_bytes()),
    }
}

fn header(n: &[u8], v: &[u8]) -> Command {
    Command::Header {
        name: b(n),
        value: b(v),
    }
}

fn message(ip: &str, headers: &[(&[u8], &[u8])], body: &[u8]) -> Vec<Command> {
    let mut c = vec![
        Command::Macro {
            stage: b'C',
            pairs: vec![
                (b(b"j"), b(b"mx.example.net")),
                (b(b"{daemon_name}"), b(b"smtpd")),
            ],
        },
        connect(ip),
        Command::Macro {
            stage: b'M',
            pairs: vec![(b(b"i"), b(b"4ABC123"))],
        },
        Command::Mail(vec![b(b"<a@example.com>")]),
    ];
    for (n, v) in headers {
        c.push(header(n, v));
    }
    c.push(Command::EndOfHeaders);
    if !body.is_empty() {
        c.push(Command::Body(b(body)));
    }
    c.push(Command::EndOfMessage);
    c
}

/// The negotiation answer the engine gives Postfix's full offer.
fn expected_optneg() -> Vec<u8> {
    let w = wanted();
    replies(&[Reply::OptNeg(OptNeg {
        version: 6,
        actions: action::ADDHDRS | action::CHGHDRS | action::SETSYMLIST,
        protocol: w.protocol,
        macros: w
            .macros
            .iter()
            .map(|(s, m)| (*s, Bytes::from_static(m)))
            .collect(),
    })])
}

const HEADERS: &[(&[u8], &[u8])] = &[
    (b"From", b" Joe <joe@example.com>"),
    (b"To", b" x@example.net"),
    (b"Subject", b" hello\n\tfolded"),
];

#[tokio::test]
async fn postfix_negotiation_asks_for_every_no_reply_flag() {
    let f = fixture("", None);
    let mut s = Session::new(f.shared.clone());
    let steps = run(&mut s, frames(&[offer()])).await;
    assert_eq!(steps[0].1, expected_optneg());
    let n = s.negotiated().unwrap();
    assert!(n.has_protocol(protocol::ALL_NR));
    assert!(n.leading_space_kept());
    // The exact bytes, for the record: version 6, actions 0x111, protocol
    // 0x1ff38a, then the four macro lists.
    let expected_head = b"O\x00\x00\x00\x06\x00\x00\x01\x11\x00\x1f\xf3\x8a";
    assert_eq!(&steps[0].1[4..4 + expected_head.len()], expected_head);
}

#[tokio::test]
async fn sign_conversation_is_one_batch_at_end_of_message() {
    let f = fixture("", None);
    let mut s = Session::new(f.shared.clone());
    let mut cmds = vec![offer()];
    cmds.extend(message("127.0.0.1", HEADERS, b"Hello\r\n"));
    let steps = run(&mut s, frames(&cmds)).await;

    // Only OPTNEG and BODYEOB answered.
    let answered: Vec<&str> = steps
        .iter()
        .filter(|(_, r)| !r.is_empty())
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(answered, ["SMFIC_OPTNEG", "SMFIC_BODYEOB"]);

    // Compute the expected signatures independently of the session.
    let headers: Vec<HeaderField> = HEADERS
        .iter()
        .map(|(n, v)| header_from_milter(n, v, true))
        .collect();
    let signers: Vec<Arc<Signer>> = f
        .state
        .keys_for("example.com")
        .iter()
        .map(|k| match k {
            crate::engine::KeySlot::Ready(s) => Arc::clone(s),
            other => panic!("{other:?}"),
        })
        .collect();
    let mut m = crate::engine::message_signer(&f.state.config, signers, headers);
    m.write_body(b"Hello\r\n");
    let sigs = m.finish(NOW).unwrap();
    assert_eq!(sigs.len(), 2);
    let expected = replies(&[
        Reply::InsertHeader {
            index: 0,
            name: b(b"DKIM-Signature"),
            value: milter_value(sigs[1].value.as_bytes(), true),
        },
        Reply::InsertHeader {
            index: 0,
            name: b(b"DKIM-Signature"),
            value: milter_value(sigs[0].value.as_bytes(), true),
        },
        Reply::Continue,
    ]);
    let eom = &steps.last().unwrap().1;
    assert_eq!(eom, &expected);
    // The value starts with its space (HDR_LEADSPC) and folds with LF.
    let v = milter_value(sigs[0].value.as_bytes(), true);
    assert!(v.starts_with(b" v=1; a=rsa-sha256; s=rsa1; d=example.com; c=relaxed/relaxed;\n\t"));
    assert!(!v.contains(&b'\r'));
    assert!(s.is_idle());
}

#[tokio::test]
async fn without_nr_flags_every_step_gets_continue() {
    let f = fixture("", None);
    let mut s = Session::new(f.shared.clone());
    let old = Command::OptNeg(OptNeg {
        version: 2,
        actions: 0x3f,
        protocol: 0x7f, // NO* bits only: no NR_*, no HDR_LEADSPC
        macros: vec![],
    });
    let mut cmds = vec![old];
    cmds.extend(message("127.0.0.1", HEADERS, b"Hi\r\n"));
    let steps = run(&mut s, frames(&cmds)).await;
    let cont = replies(&[Reply::Continue]);
    for (name, out) in &steps[1..steps.len() - 1] {
        if *name == "SMFIC_MACRO" {
            assert!(out.is_empty());
        } else {
            assert_eq!(out, &cont, "{name}");
        }
    }
    // Signed, without the leading space (the MTA adds one).
    let eom = &steps.last().unwrap().1;
    let mut buf = BytesMut::from(&eom[..]);
    let first = crate::milter::decode_reply(&mut buf, 1 << 20)
        .unwrap()
        .unwrap();
    match first {
        Reply::InsertHeader { value, .. } => assert!(value.starts_with(b"v=1; a=ed25519-sha256")),
        other => panic!("{other:?}"),
    }
}

async fn eom_of(f: &Fixture, ip: &str, headers: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut s = Session::new(f.shared.clone());
    let mut cmds = vec![offer()];
    cmds.extend(message(ip, headers, b"body\r\n"));
    run(&mut s, frames(&cmds)).await.pop().unwrap().1
}

#[tokio::test]
async fn no_from_and_two_froms_are_rejected_by_default() {
    let f = fixture("", None);
    let reject = replies(&[Reply::ReplyCode(b(
        b"550 5.7.1 message must have exactly one From header with one address domain",
    ))]);
    let none: &[(&[u8], &[u8])] = &[(b"Subject", b" x")];
    assert_eq!(eom_of(&f, "127.0.0.1", none).await, reject);
    let two: &[(&[u8], &[u8])] = &[(b"From", b" a@example.com"), (b"from", b" b@example.com")];
    assert_eq!(eom_of(&f, "127.0.0.1", two).await, reject);
}

#[tokio::test]
async fn bad_from_action_is_configurable() {
    let f = fixture("\n[engine.on_failure]\nbad_from = \"tempfail\"\n", None);
    let none: &[(&[u8], &[u8])] = &[(b"Subject", b" x")];
    // [engine.on_failure] after [defaults] is its own table; check it took.
    assert_eq!(f.state.config.engine.on_failure.bad_from, Action::Tempfail);
    assert_eq!(
        eom_of(&f, "127.0.0.1", none).await,
        replies(&[Reply::ReplyCode(b(
            b"451 4.7.1 message must have exactly one From header with one address domain"
        ))])
    );
}

#[tokio::test]
async fn unreadable_key_tempfails_by_default() {
    let f = fixture("", None);
    let dir = tempfile::tempdir().unwrap();
    // The fixture's config, with key files that are not keys.
    let keys = dir.path().join("etc/dkimctl/keys/example.com");
    std::fs::create_dir_all(&keys).unwrap();
    for name in ["rsa1.private", "ed1.private"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(keys.join(name), "not a key").unwrap();
        std::fs::set_permissions(keys.join(name), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let state =
        State::build_with(f.state.config.clone(), &Root::new(dir.path()), None, false).unwrap();
    let broken = Fixture {
        _dir: dir,
        shared: Shared::new(state),
        state: f.state.clone(),
    };
    let h: &[(&[u8], &[u8])] = &[(b"From", b" a@example.com")];
    assert_eq!(
        eom_of(&broken, "127.0.0.1", h).await,
        replies(&[Reply::ReplyCode(b(
            b"451 4.7.1 DKIM key unavailable, try again later"
        ))])
    );
}

#[tokio::test]
async fn unknown_domain_is_accepted_unsigned() {
    let f = fixture("", None);
    let h: &[(&[u8], &[u8])] = &[(b"From", b" a@other.example")];
    assert_eq!(
        eom_of(&f, "127.0.0.1", h).await,
        replies(&[Reply::Continue])
    );
}

#[tokio::test]
async fn subdomain_signs_with_the_parent_domain() {
    let f = fixture("", None);
    let h: &[(&[u8], &[u8])] = &[(b"From", b" a@Mail.Example.COM")];
    let eom = eom_of(&f, "127.0.0.1", h).await;
    assert!(
        eom.windows(14).any(|w| w == b"d=example.com;"),
        "{}",
        eom.escape_ascii()
    );
}

#[tokio::test]
async fn authenticated_sender_from_outside_is_signed() {
    let f = fixture("", None);
    let mut s = Session::new(f.shared.clone());
    let mut cmds = vec![offer()];
    let mut m = message("192.0.2.7", HEADERS, b"x\r\n");
    m[2] = Command::Macro {
        stage: b'M',
        pairs: vec![(b(b"{auth_authen}"), b(b"joe")), (b(b"i"), b(b"Q1"))],
    };
    cmds.extend(m);
    let eom = run(&mut s, frames(&cmds)).await.pop().unwrap().1;
    assert!(eom.windows(14).any(|w| w == b"DKIM-Signature"));
}

fn decoded(eom: &[u8]) -> Vec<Reply> {
    let mut buf = BytesMut::from(eom);
    let mut got = Vec::new();
    while let Some(r) = crate::milter::decode_reply(&mut buf, 1 << 20).unwrap() {
        got.push(r);
    }
    got
}

/// Issue 15, item 4: a forged Authentication-Results (here with a final
/// dot on the authserv-id) is removed whatever the message's direction —
/// signed for a trusted client, verified with a header block over
/// `max_header_size`, or passed through for a client in external_ignore —
/// and a signed message's signature does not cover it.
#[tokio::test]
async fn forged_results_are_removed_in_every_direction() {
    let remove_first = Reply::ChangeHeader {
        index: 1,
        name: b(b"Authentication-Results"),
        value: Bytes::new(),
    };
    let forged: (&[u8], &[u8]) = (b"Authentication-Results", b" mx.example.net.; dkim=pass");
    let filler = vec![b'x'; 400];
    type Field<'a> = (&'a [u8], &'a [u8]);
    let cases: [(&str, &str, Vec<Field>); 3] = [
        (
            "trusted client, signed",
            "",
            vec![forged, HEADERS[0], HEADERS[1], HEADERS[2]],
        ),
        (
            "header block over max_header_size, verified",
            "\n[engine]\nmax_header_size = 300\n",
            vec![HEADERS[0], (b"X-Filler", &filler[..]), forged],
        ),
        (
            "client in external_ignore, passed",
            "\n[trusted]\ninternal_hosts = [\"127.0.0.1\"]\nexternal_ignore = [\"192.0.2.0/24\"]\n",
            vec![forged, HEADERS[0], HEADERS[1]],
        ),
    ];
    for (what, extra, headers) in cases {
        let f = fixture(extra, Some(Resolver::fixed(records())));
        let ip = if what.starts_with("trusted") {
            "127.0.0.1"
        } else {
            "192.0.2.7"
        };
        let got = decoded(&eom_of(&f, ip, &headers).await);
        assert_eq!(got.first(), Some(&remove_first), "{what}: {got:?}");
        assert_eq!(
            got.iter()
                .filter(|r| matches!(r, Reply::ChangeHeader { .. }))
                .count(),
            1,
            "{what}: {got:?}"
        );
        assert_eq!(got.last(), Some(&Reply::Continue), "{what}: {got:?}");
        if what.starts_with("trusted") {
            let sigs: Vec<&Reply> = got
                .iter()
                .filter(|r| matches!(r, Reply::InsertHeader { name, .. } if name.as_ref() == b"DKIM-Signature"))
                .collect();
            assert_eq!(sigs.len(), 2, "{what}: {got:?}");
        }
        if what.starts_with("header block") {
            assert!(
                got.iter()
                    .any(|r| matches!(r, Reply::InsertHeader { value, .. }
                    if value.windows(9).any(|w| w == b"too large"))),
                "{what}: {got:?}"
            );
        }
    }
}

/// A signature over Authentication-Results (in sign_headers) is made
/// without the forged one that is removed, so it verifies as delivered.
#[tokio::test]
async fn a_removed_forged_result_is_not_signed() {
    let f = fixture(
        "sign_headers = [\"From\", \"Subject\", \"Authentication-Results\"]",
        Some(Resolver::fixed(records())),
    );
    let incoming: Vec<(&[u8], &[u8])> = vec![
        (b"Authentication-Results", b" mx.example.net; dkim=pass"),
        HEADERS[0],
        HEADERS[2],
    ];
    let got = decoded(&eom_of(&f, "127.0.0.1", &incoming).await);
    let delivered = crate::milter::client::apply_replies(&incoming, b"body\r\n", &got, true);
    assert!(
        !String::from_utf8_lossy(&delivered).contains("mx.example.net; dkim=pass"),
        "{got:?}"
    );
    let results = crate::dkim::verify(&Arc::new(Resolver::fixed(records())), &delivered, NOW).await;
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| r.status == crate::dkim::verify::DkimStatus::Pass),
        "{results:?}"
    );
}

#[tokio::test]
async fn verify_adds_results_and_removes_a_forged_one() {
    let f = fixture("", Some(Resolver::fixed(records())));
    // Sign a message with the RSA key, as another server would have.
    let headers: Vec<HeaderField> = HEADERS
        .iter()
        .map(|(n, v)| header_from_milter(n, v, true))
        .collect();
    let rsa = match &f.state.keys_for("example.com")[0] {
        crate::engine::KeySlot::Ready(s) => Arc::clone(s),
        other => panic!("{other:?}"),
    };
    let mut m = crate::engine::message_signer(&f.state.config, vec![rsa], headers);
    m.write_body(b"body\r\n");
    let sig = m.finish(NOW).unwrap().remove(0);
    let sig_value = sig.value.clone();
    let mut incoming: Vec<(&[u8], &[u8])> = vec![
        (b"Authentication-Results", b" other.example; dkim=pass"),
        (b"DKIM-Signature", sig_value.as_bytes()),
        (
            b"Authentication-Results",
            b" MX.example.net; dkim=pass header.d=paypal.com",
        ),
    ];
    incoming.extend_from_slice(HEADERS);
    incoming.push((b"Authentication-Results", b" mx.example.net; dkim=pass"));

    let eom = eom_of(&f, "192.0.2.7", &incoming).await;
    let mut buf = BytesMut::from(&eom[..]);
    let mut got = Vec::new();
    while let Some(r) = crate::milter::decode_reply(&mut buf, 1 << 20).unwrap() {
        got.push(r);
    }
    let b64 = {
        use base64::Engine as _;
        let parsed = crate::dkim::signature::parse(sig.value.as_bytes()).unwrap();
        base64::engine::general_purpose::STANDARD.encode(&parsed.signature)
    };
    let prefix = &b64[..8];
    let quoted = if prefix.contains('/') {
        format!("\"{prefix}\"")
    } else {
        prefix.to_string()
    };
    let ar = format!(
        " mx.example.net;\n\tdkim=pass header.d=example.com header.s=rsa1 header.a=rsa-sha256 header.b={quoted}"
    );
    assert_eq!(
        got,
        vec![
            Reply::ChangeHeader {
                index: 3,
                name: b(b"Authentication-Results"),
                value: Bytes::new()
            },
            Reply::ChangeHeader {
                index: 2,
                name: b(b"Authentication-Results"),
                value: Bytes::new()
            },
            Reply::InsertHeader {
                index: 0,
                name: b(b"Authentication-Results"),
                value: Bytes::from(ar)
            },
            Reply::Continue,
        ]
    );
}

#[tokio::test]
async fn unsigned_incoming_gets_dkim_none() {
    let f = fixture("", None);
    let eom = eom_of(&f, "192.0.2.7", HEADERS).await;
    assert_eq!(
        eom,
        replies(&[
            Reply::InsertHeader {
                index: 0,
                name: b(b"Authentication-Results"),
                value: b(b" mx.example.net; dkim=none"),
            },
            Reply::Continue,
        ])
    );
}

#[tokio::test]
async fn oversized_message_is_not_verified() {
    let f = fixture("\n[engine]\nverify_max_size = \"1K\"\n", None);
    let mut s = Session::new(f.shared.clone());
    let mut cmds = vec![offer()];
    let big = vec![b'x'; 2000];
    cmds.extend(message("192.0.2.7", HEADERS, &big));
    let eom = run(&mut s, frames(&cmds)).await.pop().unwrap().1;
    assert_eq!(
        eom,
        replies(&[
            Reply::InsertHeader {
                index: 0,
                name: b(b"Authentication-Results"),
                value: b(b" mx.example.net; dkim=none (message too large to verify)"),
            },
            Reply::Continue,
        ])
    );
}

#[tokio::test]
async fn oversized_header_block_tempfails_signing() {
    let f = fixture("\n[engine]\nmax_header_size = \"1K\"\n", None);
    let long = vec![b'a'; 1500];
    let mut h: Vec<(&[u8], &[u8])> = HEADERS.to_vec();
    h.push((b"X-Long", &long));
    assert_eq!(
        eom_of(&f, "127.0.0.1", &h).await,
        replies(&[Reply::ReplyCode(b(
            b"451 4.7.1 header block too large to sign"
        ))])
    );
}

#[tokio::test]
async fn abort_resets_and_quit_nc_starts_over() {
    let f = fixture("", None);
    let mut s = Session::new(f.shared.clone());
    let mut cmds = vec![
        offer(),
        connect("127.0.0.1"),
        header(b"From", b" a@example.com"),
        Command::Abort,
    ];
    cmds.push(Command::QuitNewConnection);
    cmds.extend(message("192.0.2.7", HEADERS, b"x\r\n"));
    let steps = run(&mut s, frames(&cmds)).await;
    // After QUIT_NC the client is external: verified, not signed.
    let eom = &steps.last().unwrap().1;
    assert!(eom.windows(22).any(|w| w == b"Authentication-Results"));
    assert!(s.is_idle());
}

#[tokio::test]
async fn commands_before_negotiation_are_an_error() {
    let f = fixture("", None);
    let mut s = Session::new(f.shared.clone());
    let mut out = BytesMut::new();
    let err = s
        .handle(connect("127.0.0.1"), NOW, &mut out)
        .await
        .unwrap_err();
    assert_eq!(err, SessionError::BeforeNegotiation("SMFIC_CONNECT"));
    assert!(out.is_empty());
}

#[tokio::test]
async fn mta_without_addhdrs_is_refused() {
    let f = fixture("", None);
    let mut s = Session::new(f.shared.clone());
    let mut out = BytesMut::new();
    let o = Command::OptNeg(OptNeg {
        version: 6,
        actions: 0x10,
        protocol: 0x1f_ffff,
        macros: vec![],
    });
    assert!(matches!(
        s.handle(o, NOW, &mut out).await,
        Err(SessionError::Protocol(ProtocolError::MissingActions { .. }))
    ));
}

#[tokio::test]
async fn quit_closes() {
    let f = fixture("", None);
    let mut s = Session::new(f.shared.clone());
    let steps = run(&mut s, frames(&[offer(), Command::Quit, Command::Abort])).await;
    assert_eq!(steps.len(), 2);
}

#[test]
fn parse_ip_forms() {
    for (s, ok) in [
        ("192.0.2.1", true),
        ("IPv6:2001:db8::1", true),
        ("2001:db8::1", true),
        ("[192.0.2.1]", true),
        ("unknown", false),
    ] {
        assert_eq!(parse_ip(s.as_bytes()).is_some(), ok, "{s}");
    }
    assert_eq!(
        parse_ip(b"ipv6:::1"),
        Some(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]))
    );
}

/// A tiny xorshift64 generator: deterministic, no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() % (max as u64 + 1)) as usize;
        (0..n)
            .map(|_| self.pick(b"ab@.<>\"(),:;\\ \t\r\n\xe9\xff=-xn"))
            .collect()
    }
}

/// Random command sequences, header values and From fields: the session
/// answers or fails cleanly, never panics.
#[tokio::test]
async fn random_conversations_never_panic() {
    let f = fixture("", Some(Resolver::fixed(records())));
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let names: &[&[u8]] = &[
        b"From",
        b"from",
        b"DKIM-Signature",
        b"Authentication-Results",
        b"Subject",
        b"X",
    ];
    for _ in 0..300 {
        let mut s = Session::new(f.shared.clone());
        let mut out = BytesMut::new();
        let _ = s.handle(offer(), NOW, &mut out).await;
        for _ in 0..(rng.next() % 40) {
            let cmd = match rng.next() % 12 {
                0 => connect(rng.pick(&["127.0.0.1", "192.0.2.1", "::1", "junk"])),
                1 => Command::Mail(vec![b(b"<a@b>")]),
                2..=5 => header(rng.pick(names), &rng.bytes(60)),
                6 => Command::EndOfHeaders,
                7 | 8 => Command::Body(b(&rng.bytes(200))),
                9 => Command::EndOfMessage,
                10 => Command::Abort,
                _ => Command::Macro {
                    stage: rng.pick(b"CMNE"),
                    pairs: vec![(
                        b(rng.pick(&[&b"{auth_authen}"[..], b"i", b"{daemon_name}"])),
                        b(&rng.bytes(8)),
                    )],
                },
            };
            let _ = s.handle(cmd, NOW, &mut out).await;
        }
        let _ = s.handle(Command::EndOfMessage, NOW, &mut out).await;
    }
}

#[test]
fn milter_values_use_lf_and_the_negotiated_space() {
    let v = b" v=1; a=rsa-sha256;\r\n\th=From";
    assert_eq!(&milter_value(v, true)[..], b" v=1; a=rsa-sha256;\n\th=From");
    assert_eq!(&milter_value(v, false)[..], b"v=1; a=rsa-sha256;\n\th=From");
}
