//! Conformance: `dkimctl verify` against the test suites other DKIM
//! implementations publish, and every signature dkimctl makes on tricky
//! messages against four independent verifiers.
//!
//! - [`corpora`]: the peers' corpora (Mail::DKIM, dkimpy, mail-auth and the
//!   RFC 6376 / RFC 8463 appendix examples), built by
//!   `scripts/peer-corpora.sh` from pinned downloads, each served by its own
//!   knotd on loopback. Every signature's result word is compared with
//!   `tests/vectors/peers/expectations.tsv` (the verdict by today's RFCs);
//!   the per-corpus table is printed.
//! - [`matrix`]: the signing matrix: the inputs of `tests/vectors/signing/`
//!   and a 10 MB body made at run time, in the four canonicalizations, with
//!   RSA-2048 and Ed25519, signed by `dkimctl sign` and by `dkimctl serve`
//!   (through the project's milter client), then judged by dkimpy,
//!   Mail::DKIM, OpenDKIM (through miltertest) and mail-auth, all asking
//!   knotd on loopback for the keys.
//!
//! Both print what they found (run with `--nocapture` to see the tables).
//! Servers listen on 127.0.0.1 in 15300-15399 ([`loopback_port`]) or on
//! unix sockets in temporary directories; every process is stopped by PID.

mod corpora;
pub(crate) mod judges;
mod matrix;

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::support::proc::stop_child;
use crate::support::{require_tool, which};

/// The loopback ports these tests may listen on.
const PORTS: std::ops::RangeInclusive<u16> = 15300..=15399;

/// A port of [`PORTS`] free for UDP and TCP right now; each call moves on,
/// so parallel tests of this module never pick the same one.
pub fn loopback_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = PORTS.end() - PORTS.start() + 1;
    for _ in 0..span {
        let port = PORTS.start() + NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let udp = UdpSocket::bind(("127.0.0.1", port));
        let tcp = TcpListener::bind(("127.0.0.1", port));
        if udp.is_ok() && tcp.is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {PORTS:?}");
}

/// knotd serving zone files from one directory, configured from a
/// `knot.conf.in` template (`tests/vectors/peers/knot.conf.in` with its
/// `@ZONES@` filled in: `@PORT@`, `@RUNDIR@` and `@ZONEDIR@` are replaced
/// here). Stopped by PID when dropped.
pub struct ZoneServer {
    child: Child,
    run: tempfile::TempDir,
    port: u16,
}

impl ZoneServer {
    /// Starts knotd and waits until it answers the SOA of `probe` (a zone
    /// it loads). `None` when knotd or kdig is missing outside CI.
    pub fn start(conf_in: &str, zone_dir: &Path, probe: &str) -> Option<ZoneServer> {
        if !require_tool("knotd") || !require_tool("kdig") {
            return None;
        }
        let mut log = String::new();
        // A port can be taken between probing and knotd binding it.
        for _ in 0..5 {
            let run = tempfile::tempdir().expect("temp dir");
            for sub in ["run", "db"] {
                std::fs::create_dir_all(run.path().join(sub)).unwrap();
            }
            let port = loopback_port();
            let conf = conf_in
                .replace("@PORT@", &port.to_string())
                .replace("@RUNDIR@", &run.path().display().to_string())
                .replace("@ZONEDIR@", &zone_dir.display().to_string());
            let conf_path = run.path().join("knot.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let child = Command::new(which("knotd").expect("knotd"))
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(run.path().join("knot.log")).unwrap())
                .spawn()
                .expect("spawn knotd");
            let mut server = ZoneServer { child, run, port };
            if server.wait_for_soa(probe) {
                return Some(server);
            }
            log = server.log();
        }
        panic!("knotd did not start; its log:\n{log}");
    }

    /// The port (UDP and TCP) on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as `--nameserver` takes it.
    pub fn ns(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn wait_for_soa(&mut self, zone: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let out = Command::new("kdig")
                .args(["@127.0.0.1", "-p", &self.port.to_string()])
                .args(["+short", "+timeout=1", "+retry=0", "SOA", zone])
                .output();
            if out.is_ok_and(|o| o.status.success() && !o.stdout.is_empty()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.run.path().join("knot.log")).unwrap_or_default()
    }
}

impl Drop for ZoneServer {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}

/// Writes a summary to `target/conformance/NAME` (for the README's
/// Conformance section); a failure to write is only reported.
pub fn report(name: &str, text: &str) {
    let dir = crate::support::repo().join("target/conformance");
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(name), text))
    {
        eprintln!("note: could not write target/conformance/{name}: {e}");
    }
}

/// `tests/vectors/...` of the repository.
pub fn vectors(rel: &str) -> PathBuf {
    crate::support::repo().join("tests/vectors").join(rel)
}

/// The number of DKIM-Signature fields in the header block of `message`.
pub fn signature_fields(message: &[u8]) -> usize {
    let end = find(message, b"\r\n\r\n")
        .or_else(|| find(message, b"\n\n"))
        .unwrap_or(message.len());
    let head = &message[..end];
    head.split(|&b| b == b'\n')
        .filter(|line| {
            let name_end = line.iter().position(|&b| b == b':');
            name_end.is_some_and(|e| {
                let name = &line[..e];
                let trimmed = name.trim_ascii_end();
                trimmed.eq_ignore_ascii_case(b"DKIM-Signature")
            })
        })
        .count()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
