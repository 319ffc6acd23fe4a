//! The bundled engine over real sockets, judged by an independent verifier.
//!
//! Each test starts the engine in-process on a loopback TCP port or a unix
//! socket in a temporary root (the server API `dkimctl serve` uses, minus
//! the privilege drop), drives it with the MTA-side client
//! (`engine::client`), applies the returned modifications to the message
//! as the MTA would, and has dkimpy (Debian's `python3-dkim`) verify the
//! result against the records `keys::record_value` publishes. One test runs
//! the real binary when its `serve` subcommand is wired.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dkimctl::config::Source;
use dkimctl::config::model::{Algorithm, Socket};
use dkimctl::engine::server::{self, Control, Reloader, StdListener};
use dkimctl::engine::{Shared, State};
use dkimctl::host::Root;
use dkimctl::keys;
use dkimctl::milter::Reply;
use dkimctl::milter::client::{MilterClient, apply_replies};
use dkimctl::milter::command::OptNeg;
use tokio::sync::{mpsc, oneshot};

use crate::support::{self, TempRoot};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

/// A root with generated keys for example.com and a dkim.toml.
struct Setup {
    root: TempRoot,
    /// (owner name, TXT value) of every key.
    records: Vec<(String, String)>,
}

fn keys_toml(keys: &[(&str, Algorithm)]) -> String {
    let mut s = String::new();
    for (sel, alg) in keys {
        s.push_str(&format!(
            "\n[[domain.key]]\nselector = \"{sel}\"\nalgorithm = \"{}\"\n",
            alg.as_str()
        ));
    }
    s
}

fn dkim_toml(mode: &str, canon: &str, keys: &[(&str, Algorithm)], extra: &str) -> String {
    let domain = if keys.is_empty() {
        String::new()
    } else {
        format!("[[domain]]\nname = \"example.com\"\n{}", keys_toml(keys))
    };
    let mut algs: Vec<String> = Vec::new();
    for (_, a) in keys {
        let q = format!("\"{}\"", a.as_str());
        if !algs.contains(&q) {
            algs.push(q);
        }
    }
    if algs.is_empty() {
        algs.push("\"rsa-sha256\"".into());
    }
    let algorithms = algs.join(", ");
    format!(
        r#"[service]
engine = "bundled"
mode = "{mode}"
authserv_id = "mx.example.net"
socket = "inet:127.0.0.1:8891"

[defaults]
canonicalization = "{canon}"
algorithms = [{algorithms}]
{extra}

{domain}
[mta]
kind = "none"
"#
    )
}

fn setup(mode: &str, canon: &str, keys: &[(&str, Algorithm)], extra: &str) -> Setup {
    let root = TempRoot::new(&dkim_toml(mode, canon, keys, extra));
    let mut records = Vec::new();
    for (sel, alg) in keys {
        let pair = keys::generate(*alg, 2048).expect("key generation");
        write_key(&root, sel, pair.private_pem.expose());
        records.push((
            format!("{sel}._domainkey.example.com"),
            keys::record_value(*alg, &pair.public, Default::default()),
        ));
    }
    Setup { root, records }
}

fn write_key(root: &TempRoot, selector: &str, pem: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt;
    let p = root.join(&format!("etc/dkimctl/keys/example.com/{selector}.private"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&p);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&p)
        .unwrap();
    f.write_all(pem).unwrap();
}

/// An engine running in this process.
struct Engine {
    addr: String,
    control: mpsc::Sender<Control>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Engine {
    async fn start(root: &TempRoot, unix: bool) -> Engine {
        let r = Root::new(root.path());
        let source = Source::resolve(&r, None);
        let config = server::load_config(&source).expect("valid dkim.toml");
        let listener = if unix {
            let sock = root.join("run/dkimctl/milter.sock");
            std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
            server::bind(&Socket::Unix(sock), None, &config).expect("bind unix")
        } else {
            StdListener::Tcp(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        };
        let listener = listener.into_tokio().unwrap();
        let addr = listener.local_addr();
        let state = State::build(config, &r, None, false).expect("state");
        let (tx, rx) = mpsc::channel(4);
        let reloader = Reloader { root: r, source };
        let task = tokio::spawn(server::run(
            vec![listener],
            Shared::new(state),
            Some(reloader),
            rx,
        ));
        Engine {
            addr,
            control: tx,
            task,
        }
    }

    async fn reload(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.control.send(Control::Reload(Some(tx))).await.unwrap();
        rx.await.unwrap()
    }

    async fn stop(self) {
        self.control.send(Control::Shutdown).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("drained in time")
            .unwrap()
            .unwrap();
    }
}

/// The message of most tests: folded headers, raw Latin-1 bytes, trailing
/// white space and blank lines that canonicalization treats specially.
/// Values as Postfix hands them over: after the colon, LF inside folds.
const HEADERS: &[(&[u8], &[u8])] = &[
    (b"From", b" =?iso-8859-1?q?Jos=E9?= <jose@example.com>"),
    (
        b"To",
        b" Someone <someone@example.net>,\n\tOther <other@example.net>",
    ),
    (b"Subject", b" Caf\xe9  cr\xe8me\n\t br\xfbl\xe9e  "),
    (b"Date", b" Mon, 01 Jan 2024 10:00:00 +0000"),
    (b"Message-ID", b" <1@example.com>"),
    (b"MIME-Version", b" 1.0"),
    (b"Content-Type", b" text/plain; charset=iso-8859-1"),
    (b"Content-Transfer-Encoding", b" 8bit"),
];
const BODY: &[u8] = b"Ol\xe9,\r\n\r\nla cr\xe8me  br\xfbl\xe9e \t\r\nest pr\xeate.\r\n\r\n\r\n";

fn macros() -> Vec<(&'static str, &'static str)> {
    vec![
        ("j", "mx.example.com"),
        ("{daemon_name}", "smtpd"),
        ("i", "4ABCDEF"),
    ]
}

/// Runs dkimpy on `message`; `None` (after printing why) when dkimpy is
/// missing outside CI. Returns one verdict per DKIM-Signature, top first.
fn dkimpy(message: &[u8], records: &[(String, String)]) -> Option<Vec<bool>> {
    let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import dkim"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(python) = python else {
        assert!(!support::ci(), "dkimpy (python3-dkim) is required under CI");
        eprintln!("skipped: dkimpy (python3-dkim) not found");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.eml");
    std::fs::write(&file, message).unwrap();
    const SCRIPT: &str = r#"
import sys, dkim
msg = open(sys.argv[1], 'rb').read()
recs = {}
for a in sys.argv[2:]:
    name, value = a.split('=', 1)
    recs[name.lower()] = value.encode()
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return recs.get(name.rstrip('.').lower())
d = dkim.DKIM(msg)
n = len([h for h in d.headers if h[0].lower() == b'dkim-signature'])
for i in range(n):
    try:
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        print('exception: %s' % e, file=sys.stderr)
        ok = False
    print('pass' if ok else 'fail')
"#;
    let mut cmd = Command::new(python);
    cmd.args(["-c", SCRIPT]).arg(&file);
    for (n, v) in records {
        cmd.arg(format!("{n}={v}"));
    }
    let out = cmd.output().expect("run dkimpy");
    assert!(
        out.status.success(),
        "dkimpy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l == "pass")
            .collect(),
    )
}

async fn sign_via_milter(
    engine: &Engine,
    offer: Option<OptNeg>,
    headers: &[(&[u8], &[u8])],
    body: &[u8],
) -> (Vec<Reply>, Vec<u8>) {
    let mut c = MilterClient::connect(&engine.addr).await.expect("connect");
    match offer {
        Some(o) => c.negotiate_with(o).await.unwrap(),
        None => c.negotiate().await.unwrap(),
    };
    let replies = c
        .send_message(&macros(), LOCAL, headers, body)
        .await
        .unwrap();
    let delivered = apply_replies(headers, body, &replies, c.leading_space());
    (replies, delivered)
}

fn signatures(replies: &[Reply]) -> usize {
    replies
        .iter()
        .filter(|r| matches!(r, Reply::InsertHeader { name, .. } if &name[..] == b"DKIM-Signature"))
        .count()
}

async fn signs_and_dkimpy_verifies(
    canon: &str,
    keys: &[(&str, Algorithm)],
    unix: bool,
    offer: Option<OptNeg>,
) {
    let s = setup("sign", canon, keys, "");
    let engine = Engine::start(&s.root, unix).await;
    let (replies, delivered) = sign_via_milter(&engine, offer, HEADERS, BODY).await;
    assert_eq!(signatures(&replies), keys.len(), "{replies:?}");
    assert_eq!(replies.last(), Some(&Reply::Continue));
    if let Some(verdicts) = dkimpy(&delivered, &s.records) {
        assert_eq!(
            verdicts,
            vec![true; keys.len()],
            "dkimpy rejected ({canon}):\n{}",
            String::from_utf8_lossy(&delivered)
        );
        // A changed body byte must fail every signature.
        let mut tampered = delivered.clone();
        let at = tampered.len() - 10;
        tampered[at] ^= 0x01;
        assert_eq!(
            dkimpy(&tampered, &s.records).unwrap(),
            vec![false; keys.len()]
        );
    }
    engine.stop().await;
}

#[tokio::test]
async fn rsa_relaxed_relaxed_over_unix_socket() {
    signs_and_dkimpy_verifies(
        "relaxed/relaxed",
        &[("rsa1", Algorithm::RsaSha256)],
        true,
        None,
    )
    .await;
}

#[tokio::test]
async fn ed25519_simple_simple_over_tcp() {
    signs_and_dkimpy_verifies(
        "simple/simple",
        &[("ed1", Algorithm::Ed25519Sha256)],
        false,
        None,
    )
    .await;
}

#[tokio::test]
async fn rsa_simple_simple() {
    signs_and_dkimpy_verifies(
        "simple/simple",
        &[("rsa1", Algorithm::RsaSha256)],
        false,
        None,
    )
    .await;
}

#[tokio::test]
async fn dual_rsa_and_ed25519_relaxed_simple() {
    signs_and_dkimpy_verifies(
        "relaxed/simple",
        &[
            ("rsa1", Algorithm::RsaSha256),
            ("ed1", Algorithm::Ed25519Sha256),
        ],
        false,
        None,
    )
    .await;
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
    signs_and_dkimpy_verifies(
        "simple/simple",
        &[
            ("ed1", Algorithm::Ed25519Sha256),
            ("rsa1", Algorithm::RsaSha256),
        ],
        false,
        Some(offer),
    )
    .await;
}

#[tokio::test]
async fn several_messages_on_one_connection() {
    let s = setup(
        "sign",
        "relaxed/relaxed",
        &[("rsa1", Algorithm::RsaSha256)],
        "",
    );
    let engine = Engine::start(&s.root, false).await;
    let mut c = MilterClient::connect(&engine.addr).await.unwrap();
    c.negotiate().await.unwrap();
    for i in 0..5 {
        let body = format!("message {i}\r\n");
        let client = if i % 2 == 0 { LOCAL } else { REMOTE };
        let replies = c
            .send_message(&macros(), client, HEADERS, body.as_bytes())
            .await
            .unwrap();
        // Remote clients are neither signed nor verified in mode "sign".
        let want = if client == LOCAL { 1 } else { 0 };
        assert_eq!(signatures(&replies), want, "message {i}: {replies:?}");
        if want == 1 {
            let delivered = apply_replies(HEADERS, body.as_bytes(), &replies, c.leading_space());
            if let Some(v) = dkimpy(&delivered, &s.records) {
                assert_eq!(v, vec![true]);
            }
        }
    }
    c.quit().await.unwrap();
    engine.stop().await;
}

#[tokio::test]
async fn bad_packets_close_one_connection_and_others_carry_on() {
    let s = setup(
        "sign",
        "relaxed/relaxed",
        &[("ed1", Algorithm::Ed25519Sha256)],
        "",
    );
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

    let replies = good
        .send_message(&macros(), LOCAL, HEADERS, BODY)
        .await
        .unwrap();
    assert_eq!(signatures(&replies), 1);
    engine.stop().await;
}

#[tokio::test]
async fn reload_with_a_broken_file_keeps_the_running_configuration() {
    let s = setup(
        "sign",
        "relaxed/relaxed",
        &[("rsa1", Algorithm::RsaSha256)],
        "",
    );
    let engine = Engine::start(&s.root, false).await;

    s.root
        .write("etc/dkimctl/dkim.toml", "[service]\nmode = \"sideways\"\n");
    let err = engine.reload().await.unwrap_err();
    assert!(err.contains("invalid"), "{err}");
    let (replies, delivered) = sign_via_milter(&engine, None, HEADERS, BODY).await;
    assert_eq!(signatures(&replies), 1);
    if let Some(v) = dkimpy(&delivered, &s.records) {
        assert_eq!(v, vec![true]);
    }

    // A valid file whose key is missing is refused as well.
    s.root.write(
        "etc/dkimctl/dkim.toml",
        &dkim_toml(
            "sign",
            "relaxed/relaxed",
            &[("gone", Algorithm::RsaSha256)],
            "",
        ),
    );
    let err = engine.reload().await.unwrap_err();
    assert!(err.contains("gone.private"), "{err}");

    // A good file with a new key is taken.
    let pair = keys::generate(Algorithm::Ed25519Sha256, 0).unwrap();
    write_key(&s.root, "ed2", pair.private_pem.expose());
    s.root.write(
        "etc/dkimctl/dkim.toml",
        &dkim_toml(
            "sign",
            "simple/simple",
            &[("ed2", Algorithm::Ed25519Sha256)],
            "",
        ),
    );
    engine.reload().await.unwrap();
    let (replies, delivered) = sign_via_milter(&engine, None, HEADERS, BODY).await;
    assert_eq!(signatures(&replies), 1);
    let records = vec![(
        "ed2._domainkey.example.com".to_string(),
        keys::record_value(Algorithm::Ed25519Sha256, &pair.public, Default::default()),
    )];
    if let Some(v) = dkimpy(&delivered, &records) {
        assert_eq!(v, vec![true]);
    }
    engine.stop().await;
}

#[tokio::test]
async fn unix_socket_is_removed_at_exit_and_stale_one_at_start() {
    let s = setup(
        "sign",
        "relaxed/relaxed",
        &[("rsa1", Algorithm::RsaSha256)],
        "",
    );
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

/// A tiny authoritative DNS server on loopback UDP answering TXT queries
/// from a table (what `engine.nameservers` points at in tests).
async fn dns_server(records: Vec<(String, String)>) -> SocketAddr {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let q = &buf[..n];
            if n < 12 {
                continue;
            }
            // Question: labels from offset 12.
            let mut i = 12;
            let mut labels = Vec::new();
            while i < n && q[i] != 0 {
                let len = q[i] as usize;
                labels.push(String::from_utf8_lossy(&q[i + 1..i + 1 + len]).to_lowercase());
                i += 1 + len;
            }
            let qend = i + 5; // zero byte, type, class
            let name = labels.join(".");
            let mut resp = Vec::new();
            resp.extend_from_slice(&q[0..2]);
            let found = records.iter().find(|(n, _)| *n == name);
            resp.extend_from_slice(if found.is_some() {
                &[0x84, 0x00]
            } else {
                &[0x84, 0x03]
            });
            resp.extend_from_slice(&[0, 1, 0, u8::from(found.is_some()), 0, 0, 0, 0]);
            resp.extend_from_slice(&q[12..qend]);
            if let Some((_, txt)) = found {
                let mut rdata = Vec::new();
                for chunk in txt.as_bytes().chunks(255) {
                    rdata.push(chunk.len() as u8);
                    rdata.extend_from_slice(chunk);
                }
                resp.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
                resp.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                resp.extend_from_slice(&rdata);
            }
            let _ = sock.send_to(&resp, peer).await;
        }
    });
    addr
}

#[tokio::test]
async fn verifies_incoming_mail_against_a_dns_server() {
    // Sign with one engine, verify with another that asks a DNS server.
    let signer = setup(
        "sign",
        "relaxed/relaxed",
        &[
            ("rsa1", Algorithm::RsaSha256),
            ("ed1", Algorithm::Ed25519Sha256),
        ],
        "",
    );
    let engine = Engine::start(&signer.root, false).await;
    let (_, delivered) = sign_via_milter(&engine, None, HEADERS, BODY).await;
    engine.stop().await;

    let ns = dns_server(signer.records.clone()).await;
    let extra = format!("\n[engine]\nnameservers = [\"{ns}\"]\ndns_timeout = \"2s\"\n");
    let verifier = setup("verify", "relaxed/relaxed", &[], &extra);
    let engine = Engine::start(&verifier.root, false).await;

    // Split the delivered message back into fields as the MTA would.
    let text = delivered;
    let split = text.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let (head, body) = (&text[..split + 2], &text[split + 4..]);
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let last = fields.last_mut().unwrap();
            last.1.push(b'\n');
            last.1.extend_from_slice(line);
        } else {
            let colon = line.iter().position(|&b| b == b':').unwrap();
            fields.push((line[..colon].to_vec(), line[colon + 1..].to_vec()));
        }
    }
    fields.push((
        b"Authentication-Results".to_vec(),
        b" mx.example.net; dkim=pass (forged)".to_vec(),
    ));
    let refs: Vec<(&[u8], &[u8])> = fields.iter().map(|(n, v)| (&n[..], &v[..])).collect();

    let mut c = MilterClient::connect(&engine.addr).await.unwrap();
    c.negotiate().await.unwrap();
    let replies = c
        .send_message(&macros(), REMOTE, &refs, body)
        .await
        .unwrap();
    let ar: Vec<String> = replies
        .iter()
        .filter_map(|r| match r {
            Reply::InsertHeader { name, value, .. } if &name[..] == b"Authentication-Results" => {
                Some(String::from_utf8_lossy(value).into_owned())
            }
            _ => None,
        })
        .collect();
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

/// The real binary, when `dkimctl serve` is wired: start, sign, SIGHUP
/// with a broken file (keeps serving), SIGTERM (socket removed).
#[test]
fn real_binary_serves_reloads_and_stops() {
    let help = support::dkimctl(&["serve", "--help"]);
    if help.code() != 0 || !help.stdout().contains("--socket") {
        eprintln!("skipped: `dkimctl serve --socket` is not wired yet");
        return;
    }
    let s = setup(
        "sign",
        "relaxed/relaxed",
        &[("rsa1", Algorithm::RsaSha256)],
        "",
    );
    let sock: PathBuf = s.root.join("run/milter.sock");
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    let mut args: Vec<String> = vec![
        "--root".into(),
        s.root.root_arg(),
        "serve".into(),
        "--socket".into(),
        format!("unix:{}", sock.display()),
    ];
    if support::is_root() {
        args.push("--allow-root".into());
    }
    let mut child = Command::new(support::bin())
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start dkimctl serve");
    let up = wait_for(&sock, Duration::from_secs(20));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    if !up {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "socket never appeared:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = format!("unix:{}", sock.display());
    let sign = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let mut c = MilterClient::connect(&addr).await.unwrap();
            c.negotiate().await.unwrap();
            let r = c
                .send_message(&macros(), LOCAL, HEADERS, BODY)
                .await
                .unwrap();
            apply_replies(HEADERS, BODY, &r, c.leading_space())
        })
    };
    let delivered = sign(&rt);
    if let Some(v) = dkimpy(&delivered, &s.records) {
        assert_eq!(v, vec![true]);
    }
    s.root.write("etc/dkimctl/dkim.toml", "not toml [");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let delivered = sign(&rt);
    if let Some(v) = dkimpy(&delivered, &s.records) {
        assert_eq!(v, vec![true], "stopped signing after a broken reload");
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("reload failed"), "{stderr}");
    assert!(
        stderr.contains("4ABCDEF: signed d=example.com s=rsa1 a=rsa-sha256"),
        "{stderr}"
    );
    assert!(!sock.exists(), "socket left behind");
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[tokio::test]
async fn shutdown_lets_a_message_in_progress_finish() {
    use dkimctl::milter::Command as C;
    let s = setup(
        "sign",
        "relaxed/relaxed",
        &[("ed1", Algorithm::Ed25519Sha256)],
        "",
    );
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
    let extra = "\n[engine]\nidle_timeout = \"1s\"\n";
    let s = setup(
        "sign",
        "relaxed/relaxed",
        &[("ed1", Algorithm::Ed25519Sha256)],
        extra,
    );
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
    let extra = "\n[engine]\nmax_connections = 1\n";
    let s = setup(
        "sign",
        "relaxed/relaxed",
        &[("ed1", Algorithm::Ed25519Sha256)],
        extra,
    );
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
    let keys = [
        ("rsa1", Algorithm::RsaSha256),
        ("ed1", Algorithm::Ed25519Sha256),
    ];
    // The DNS server needs the records, which need the keys: set up, then
    // rewrite the file with the server's address.
    let s = setup("sign", "relaxed/relaxed", &keys, "");
    let ns = dns_server(s.records.clone()).await;
    let extra = format!("\n[engine]\nnameservers = [\"{ns}\"]\ndns_timeout = \"2s\"\n");
    s.root.write(
        "etc/dkimctl/dkim.toml",
        &dkim_toml("sign", "relaxed/relaxed", &keys, &extra),
    );
    let root = Root::new(s.root.path());
    let config = server::load_config(&Source::resolve(&root, None)).unwrap();

    let message = b"From: Jos\xe9 <jose@example.com>\nTo: x@example.net\nSubject: one\n shot\n\nbody \t\nline\n\n";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed = dkimctl::engine::sign_file(&config, &root, message, now).unwrap();
    if let Some(v) = dkimpy(&signed, &s.records) {
        assert_eq!(v, vec![true, true]);
    }
    let results = dkimctl::engine::verify_message(&config, &signed)
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
    let results = dkimctl::engine::verify_message(&config, &tampered)
        .await
        .unwrap();
    assert!(
        results
            .iter()
            .all(|r| r.status == dkimctl::dkim::DkimStatus::Fail),
        "{results:?}"
    );
}
