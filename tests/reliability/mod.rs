//! Reliability and security of the real binary under load, faults and
//! hostile peers, one file per topic:
//!
//! - [`load`]: `dkimctl serve` holding a thousand connections and a long
//!   run of messages, slow and vanishing clients, idle time-outs;
//! - [`faults`]: a DNS server that never answers, reloads that must fail
//!   safe, SIGTERM in the middle of a message;
//! - [`apply`]: `kill -9` and a full disk during `apply`;
//! - [`secrecy`]: key creation under umask 000, key material in any
//!   output, unsafe keys;
//! - [`privilege`]: root and capabilities;
//! - [`races`]: a process running as the service user racing root's
//!   commands with links; an image whose parents are links; hard links;
//! - [`senders`]: hostile senders: per-sender memory, huge verify
//!   streams, a black-hole name server, trickling connections;
//! - [`forgery`]: forged headers;
//! - [`inputs`]: hostile configuration inputs: include bombs, injected
//!   lines, quadratic blow-ups, huge values;
//! - [`regressions`]: inputs the fuzz targets (`fuzz/`, `scripts/fuzz.sh`)
//!   or a review found, each saying what was malformed.
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

mod apply;
mod faults;
mod forgery;
mod inputs;
mod load;
mod privilege;
mod races;
mod regressions;
mod secrecy;
mod senders;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use dkimctl::dkim::verify::DkimStatus;
use dkimctl::dns::Fixed;
use dkimctl::dns::resolver::Resolver;
use dkimctl::milter::Reply;
use dkimctl::milter::client::apply_replies;

use crate::support::client::signatures;
use crate::support::configs::{Config, config, key_path};
use crate::support::knot::Published;
use crate::support::proc::{free_port, run_bounded};
use crate::support::{Run, TempRoot, bin};

/// The authserv-id of the configurations here.
const AUTHSERV_ID: &str = "mx.example.net";

/// The message of the load and fault tests.
const HEADERS: &[(&[u8], &[u8])] = &[
    (b"From", b" Jos\xe9 <jose@example.com>"),
    (b"To", b" Someone <someone@example.net>"),
    (b"Subject", b" load\n\t test"),
    (b"Date", b" Mon, 01 Jan 2024 10:00:00 +0000"),
    (b"Message-ID", b" <1@example.com>"),
];
const BODY: &[u8] = b"Hello,\r\n\r\nthis message is signed by dkimctl serve.\r\n";

/// dkim.toml for one Ed25519 key `ed1` of example.com in `mode`.
fn signing(mode: &str) -> Config {
    config("sign-ed25519-example-com").set("service.mode", mode)
}

/// The key of the [`signing`] configurations.
fn ed1_key(root: &TempRoot) -> PathBuf {
    key_path(root, "example.com", "ed1")
}

/// A resolver serving `records`.
fn resolver(records: &[Published]) -> Arc<Resolver> {
    let table = records.iter().fold(Fixed::new(), |t, r| {
        t.record(&r.name, &dkimctl::keys::character_strings(&r.value))
    });
    Arc::new(Resolver::fixed(table))
}

/// The replies sign the message (one DKIM-Signature, then continue) and
/// the signed message verifies against `resolver`.
async fn signed_and_verifies(
    replies: &[Reply],
    leading_space: bool,
    resolver: &Arc<Resolver>,
) -> bool {
    if signatures(replies) != 1 || replies.last() != Some(&Reply::Continue) {
        return false;
    }
    let message = apply_replies(HEADERS, BODY, replies, leading_space);
    let results = dkimctl::dkim::verify(resolver, &message, dkimctl::engine::unix_now()).await;
    results.len() == 1 && results[0].status == DkimStatus::Pass
}

/// `dkimctl serve [--allow-root]` on a free port in `root`, expected to
/// exit by itself (refusing to start); fails when it still runs after
/// 60 s.
fn serve_refusing(root: &TempRoot, allow_root: bool) -> Run {
    let socket = format!("inet:127.0.0.1:{}", free_port());
    let mut cmd = Command::new(bin());
    cmd.args(["--root", &root.root_arg(), "serve", "--socket", &socket]);
    if allow_root {
        cmd.arg("--allow-root");
    }
    run_bounded(&mut cmd, None, Duration::from_secs(60))
}
