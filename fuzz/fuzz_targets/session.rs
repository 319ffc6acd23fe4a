//! The engine's session state machine fed arbitrary command sequences.
//!
//! The input is a little program: each opcode byte picks a milter command
//! and the following bytes fill its fields (header names from a list that
//! matters to DKIM, values, body chunks, macros, client addresses), so
//! libFuzzer explores orders of commands instead of fighting the framing.
//! A first byte of 0xff switches to raw mode: the rest is decoded as wire
//! packets with the server's own decoder, exactly as a hostile peer would
//! send them.
//!
//! Checked on every input, beyond "never panics":
//! - every reply the session writes decodes as a milter reply;
//! - end of message always yields exactly one final reply;
//! - a message whose header block had no From or several From fields is
//!   never given a DKIM-Signature (RFC 6376 §8.15);
//! - an Authentication-Results header we add is never more than one header
//!   field (no CR or LF that is not folding).
//!
//! The engine signs with the Ed25519 test key (fast) and verifies against a
//! fixed resolver that knows it, so passing and failing signatures are
//! both reachable.

#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use dkimctl::config::{Source, parse};
use dkimctl::dns::resolver::Resolver;
use dkimctl::dns::{Fixed, LookupErrorKind};
use dkimctl::engine::session::Session;
use dkimctl::engine::{Shared, State};
use dkimctl::host::Root;
use dkimctl::milter::{
    Command, DEFAULT_MAX_PACKET, Family, OptNeg, Reply, decode_command, decode_reply,
};
use libfuzzer_sys::fuzz_target;

const ED: &str = include_str!("../../src/dkim/testdata/test-only-ed25519.pem");
const NOW: u64 = 1_700_000_000;

struct World {
    shared: Shared,
    runtime: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        // Leaked on purpose: the fuzzer process owns it until it exits.
        let dir = std::env::temp_dir().join(format!("dkimctl-fuzz-session-{}", std::process::id()));
        let keys = dir.join("etc/dkimctl/keys/example.com");
        std::fs::create_dir_all(&keys).expect("key dir");
        let key = keys.join("ed1.private");
        std::fs::write(&key, ED).expect("key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let text = r#"
[service]
engine = "bundled"
mode = "sign+verify"
authserv_id = "mx.example.net"
socket = "inet:127.0.0.1:8891"
[defaults]
algorithms = ["ed25519-sha256"]
[engine]
max_header_size = "4k"
verify_max_size = "16k"
[[domain]]
name = "example.com"
subdomains = true
[[domain.key]]
selector = "ed1"
algorithm = "ed25519-sha256"
[mta]
kind = "none"
"#;
        let source = Source {
            real: dir.join("etc/dkimctl/dkim.toml"),
            host: "/etc/dkimctl/dkim.toml".into(),
            display: "dkim.toml".into(),
        };
        let config = parse(text, &source).config.expect("valid fuzz config");
        let k =
            dkimctl::keys::parse_private_key(ED.as_bytes(), Path::new("ed1")).expect("test key");
        let record = dkimctl::keys::record_value(k.algorithm, &k.public, Default::default());
        let table = Fixed::new()
            .record("ed1._domainkey.example.com", &[record])
            .fail("tmp._domainkey.example.com", LookupErrorKind::Timeout);
        let resolver = Resolver::fixed(table);
        let state = State::build_with(config, &Root::new(&dir), Some(Arc::new(resolver)), true)
            .expect("state");
        World {
            shared: Shared::new(state),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime"),
        }
    })
}

/// Reads the input front to back; runs dry as zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, max: usize) -> Bytes {
        let n = usize::from(self.byte()).min(max).min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Bytes::copy_from_slice(a)
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::from(self.byte()) % items.len()]
    }
}

const NAMES: &[&[u8]] = &[
    b"From",
    b"FROM",
    b"DKIM-Signature",
    b"Authentication-Results",
    b"Subject",
    b"To",
    b"Date",
    b"Sender",
    b"From ",
    b"",
];

/// A DKIM-Signature the fixed resolver can answer for (the signature
/// itself is garbage, so verification reaches the crypto and fails).
const SIG: &[u8] = b" v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com; s=ed1;\n\th=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA";
const SIG_TEMP: &[u8] = b" v=1; a=rsa-sha256; d=example.com; s=tmp; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA";

fn offer(protocol: u32, actions: u32) -> Command {
    Command::OptNeg(OptNeg {
        version: 6,
        actions,
        protocol,
        macros: Vec::new(),
    })
}

fn program(input: &mut Input<'_>) -> Vec<Command> {
    let mut cmds = Vec::new();
    // Negotiation first (mostly what Postfix offers; sometimes less).
    let protocol = match input.byte() % 4 {
        0 => 0,
        1 => u32::from_be_bytes([0, input.byte(), input.byte(), input.byte()]),
        _ => 0x1f_ffff,
    };
    let actions = if input.byte() % 8 == 0 { 0x1 } else { 0x1ff };
    cmds.push(offer(protocol, actions));
    while !input.0.is_empty() && cmds.len() < 256 {
        let cmd = match input.byte() % 20 {
            0 => {
                let family =
                    input.pick(&[Family::Inet, Family::Inet6, Family::Unix, Family::Unknown]);
                let address = match input.byte() % 5 {
                    0 => Bytes::from_static(b"127.0.0.1"),
                    1 => Bytes::from_static(b"192.0.2.7"),
                    2 => Bytes::from_static(b"IPv6:::1"),
                    3 => Bytes::from_static(b"[10.0.0.1]"),
                    _ => input.bytes(40),
                };
                let address = if family == Family::Unknown {
                    Bytes::new()
                } else {
                    address
                };
                Command::Connect {
                    hostname: Bytes::from_static(b"client.example"),
                    family,
                    port: 25,
                    address,
                }
            }
            1 => Command::Mail(vec![input.bytes(40)]),
            2..=7 => {
                let name = Bytes::from_static(input.pick(NAMES));
                let value = match input.byte() % 6 {
                    0 => Bytes::from_static(b" a@example.com"),
                    1 => Bytes::from_static(b" Someone <b@sub.example.com>"),
                    2 => Bytes::from_static(SIG),
                    3 => Bytes::from_static(SIG_TEMP),
                    4 => Bytes::from_static(b" mx.example.net; dkim=pass"),
                    _ => input.bytes(255),
                };
                Command::Header { name, value }
            }
            8 => Command::EndOfHeaders,
            9..=11 => Command::Body(input.bytes(255)),
            12 | 13 => Command::EndOfMessage,
            14 => Command::Abort,
            15 => Command::QuitNewConnection,
            16 => Command::Helo(input.bytes(20)),
            17 => Command::Rcpt(vec![input.bytes(20)]),
            18 => Command::Unknown(input.bytes(20)),
            _ => {
                let stage = input.pick(b"CMNEH");
                let name = Bytes::from_static(input.pick(&[
                    &b"{auth_authen}"[..],
                    b"i",
                    b"{daemon_name}",
                    b"j",
                ]));
                let value = match input.byte() % 3 {
                    0 => Bytes::from_static(b"ORIGINATING"),
                    1 => Bytes::from_static(b"user"),
                    _ => input.bytes(20),
                };
                Command::Macro {
                    stage,
                    pairs: vec![(name, value)],
                }
            }
        };
        cmds.push(cmd);
    }
    cmds
}

/// What the fuzz target knows of the message the session is reading.
#[derive(Default)]
struct Shadow {
    from_fields: usize,
    past_headers: bool,
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let cmds = match data.split_first() {
        Some((0xff, rest)) => {
            // Raw mode: an honest negotiation, then the peer's bytes.
            let mut cmds = vec![offer(0x1f_ffff, 0x1ff)];
            let mut buf = BytesMut::from(rest);
            while let Ok(Some(cmd)) = decode_command(&mut buf, DEFAULT_MAX_PACKET) {
                cmds.push(cmd);
            }
            cmds
        }
        _ => program(&mut Input(data)),
    };
    w.runtime.block_on(async {
        let mut session = Session::new(w.shared.clone());
        let mut shadow = Shadow::default();
        for cmd in cmds {
            let is_eom = cmd == Command::EndOfMessage;
            match &cmd {
                Command::Header { name, .. } if !shadow.past_headers => {
                    // `From ` (white space before the colon, RFC 5322's
                    // obsolete syntax) is a From field too.
                    if name.trim_ascii_end().eq_ignore_ascii_case(b"From") {
                        shadow.from_fields += 1;
                    }
                }
                Command::EndOfHeaders | Command::Body(_) => shadow.past_headers = true,
                Command::Mail(_) | Command::Abort | Command::QuitNewConnection => {
                    shadow = Shadow::default();
                }
                _ => {}
            }
            let mut out = BytesMut::new();
            let result = session.handle(cmd, NOW, &mut out).await;
            let mut replies = Vec::new();
            loop {
                match decode_reply(&mut out, DEFAULT_MAX_PACKET) {
                    Ok(Some(r)) => replies.push(r),
                    Ok(None) => break,
                    Err(e) => panic!("the session wrote an undecodable reply: {e}"),
                }
            }
            assert!(out.is_empty(), "the session wrote a partial packet");
            if is_eom && result.is_ok() {
                let finals = replies.iter().filter(|r| r.is_final()).count();
                assert_eq!(
                    finals, 1,
                    "end of message needs one final reply: {replies:?}"
                );
                if shadow.from_fields != 1 {
                    assert!(
                        !replies
                            .iter()
                            .any(|r| matches!(r, Reply::InsertHeader { name, .. }
                            if name.eq_ignore_ascii_case(b"DKIM-Signature"))),
                        "signed a message with {} From fields: {replies:?}",
                        shadow.from_fields
                    );
                }
                for r in &replies {
                    if let Reply::InsertHeader { name, value, .. } = r
                        && name.eq_ignore_ascii_case(b"Authentication-Results")
                    {
                        // Every line break must be followed by folding
                        // white space: one header field, not two.
                        for (i, &b) in value.iter().enumerate() {
                            if b == b'\n' {
                                assert!(
                                    matches!(value.get(i + 1), Some(b' ' | b'\t')),
                                    "Authentication-Results breaks into a new header: {value:?}"
                                );
                            }
                        }
                    }
                }
                shadow = Shadow::default();
            }
            if result.is_err() {
                break;
            }
            if let Ok(dkimctl::engine::session::Flow::Close) = result {
                break;
            }
        }
    });
});
