//! The MTA side through dkimctl's own milter client (`milter::client`):
//! the macros Postfix sends, one message over a new connection, the
//! packets of a message for tests that cut them up, and reading the
//! replies.

use std::net::{IpAddr, Ipv4Addr};

use bytes::{Bytes, BytesMut};
use dkimctl::milter::Reply;
use dkimctl::milter::client::MilterClient;
use dkimctl::milter::command::{Command as Milter, Family, OptNeg};

/// The SMTP client of a message to sign: an internal host.
pub const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// An outside SMTP client, a documentation address (RFC 5737): only ever a
/// value inside the milter protocol's connect packet, never a destination.
pub const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

/// The macros Postfix sends: `j` (the MTA's name, which is not the
/// authserv-id of any test configuration), the daemon, the queue id.
pub fn macros() -> Vec<(&'static str, &'static str)> {
    vec![
        ("j", "mx.example.com"),
        ("{daemon_name}", "smtpd"),
        ("i", "4ABCDEF"),
    ]
}

/// A tokio runtime for tests that are not async themselves.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// How many DKIM-Signature fields the replies insert.
pub fn signatures(replies: &[Reply]) -> usize {
    inserted(replies, "DKIM-Signature").len()
}

/// The values of the `name` fields the replies insert, in reply order.
pub fn inserted(replies: &[Reply], name: &str) -> Vec<String> {
    replies
        .iter()
        .filter_map(|r| match r {
            Reply::InsertHeader { name: n, value, .. } if n.as_ref() == name.as_bytes() => {
                Some(String::from_utf8_lossy(value).into_owned())
            }
            _ => None,
        })
        .collect()
}

/// Sends one message over a new connection (negotiating `offer`, or what
/// Postfix offers) and quits; returns the replies and whether the milter
/// asked for leading spaces.
pub async fn one_message(
    addr: &str,
    offer: Option<OptNeg>,
    ip: IpAddr,
    headers: &[(&[u8], &[u8])],
    body: &[u8],
) -> (Vec<Reply>, bool) {
    let mut c = MilterClient::connect(addr).await.expect("connect");
    match offer {
        Some(o) => c.negotiate_with(o).await.expect("negotiate"),
        None => c.negotiate().await.expect("negotiate"),
    };
    let r = c
        .send_message(&macros(), ip, headers, body)
        .await
        .expect("message");
    let ls = c.leading_space();
    let _ = c.quit().await;
    (r, ls)
}

/// The packets of one message after negotiation, as Postfix sends them
/// with every `NO*` flag we ask for (no HELO, RCPT or DATA).
pub fn message_packets(headers: &[(&[u8], &[u8])], body: &[u8]) -> Vec<u8> {
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
pub async fn read_final(c: &mut MilterClient) -> Option<Vec<Reply>> {
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
