//! A private Knot DNS server on loopback, and the records dkimctl prints
//! for it to serve.
//!
//! One `knotd` per test on a free loopback port, with its config, zone,
//! database and control socket in a temporary directory; killed by PID when
//! the test ends. Independent tools reach it without touching the host's
//! resolver: opendkim-testkey and OpenDKIM through `Nameservers
//! 127.0.0.1@PORT`, dkimpy through a `dnsfunc` (dnspython, or kdig),
//! Mail::DKIM through `Net::DNS`, dkimctl through `--nameserver` or
//! `[engine] nameservers`.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::proc::free_port;
use super::{TempRoot, require_tool, run, which};

/// The zone every test serves; tests add records below the apex.
pub const ZONE: &str = "example.com";

/// A private Knot DNS server on 127.0.0.1, authoritative for example.com.
pub struct Knot {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    serial: u32,
    /// The zone knotd is authoritative for: [`ZONE`], or `.` (every name)
    /// for tests whose domains are not below example.com.
    zone: &'static str,
}

/// A TSIG key knotd accepts dynamic updates (RFC 2136) signed with.
#[derive(Debug, Clone)]
pub struct TsigKey {
    /// The key's name.
    pub name: String,
    /// `hmac-sha256` or `hmac-sha512`.
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

impl TsigKey {
    /// A fresh random hmac-sha256 key (32 bytes from /dev/urandom).
    pub fn random(name: &str) -> TsigKey {
        use base64::Engine as _;
        use std::io::Read as _;
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut bytes)
            .unwrap();
        TsigKey {
            name: name.to_string(),
            algorithm: "hmac-sha256".to_string(),
            secret: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// The key file as `tsig-keygen -a ALGORITHM NAME` writes it.
    pub fn file_text(&self) -> String {
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
            self.name, self.algorithm, self.secret
        )
    }

    /// Writes the key file into the root at `host` with mode 0600.
    pub fn write_to(&self, root: &TempRoot, host: &str) {
        use std::os::unix::fs::PermissionsExt;
        root.write(host, &self.file_text());
        std::fs::set_permissions(root.join(host), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// The loopback ports this suite's DNS servers that accept updates use
/// (the range reserved for these tests on shared machines).
pub const UPDATE_PORTS: std::ops::Range<u16> = 15700..15800;

/// A port in `range` free for both UDP and TCP right now, probing from an
/// offset that differs per process and call, so parallel tests rarely
/// probe the same port first.
pub fn free_port_in(range: std::ops::Range<u16>) -> u16 {
    let span = u32::from(range.end - range.start);
    let start = (std::process::id().wrapping_mul(7) + super::proc::unique() as u32 * 13) % span;
    for i in 0..span {
        let port = range.start + ((start + i) % span) as u16;
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if udp.is_ok() && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {range:?}");
}

impl Knot {
    /// Starts knotd serving what `dkimctl dns records` prints for `root`.
    pub fn serving(root: &TempRoot) -> Option<Knot> {
        Knot::start(&zone_text(&published(root)))
    }

    /// Like [`Knot::serving`] for a configuration whose domains are not all
    /// below example.com: knotd is authoritative for the root zone, so
    /// every absolute name the records carry is served.
    pub fn serving_every_domain(root: &TempRoot) -> Option<Knot> {
        Knot::start_with(&zone_text(&published(root)), None, None, ".")
    }

    /// Starts knotd with `zone_text` (zone-file lines: absolute names or
    /// names relative to example.com) below a fixed SOA and NS. `None` when
    /// knotd or kdig is missing (after printing "skipped: ..."; under
    /// CI=true that fails the test instead).
    pub fn start(zone_text: &str) -> Option<Knot> {
        Knot::start_with(zone_text, None, None, ZONE)
    }

    /// Like [`Knot::start`], on a port in `ports`.
    pub fn start_in(zone_text: &str, ports: std::ops::Range<u16>) -> Option<Knot> {
        Knot::start_with(zone_text, None, Some(ports), ZONE)
    }

    /// Starts knotd on a port in [`UPDATE_PORTS`] accepting dynamic
    /// updates signed with `key`, for TXT records below `_domainkey` only
    /// (the least privilege README's "Hands-off rotation" recommends).
    pub fn updatable(zone_text: &str, key: &TsigKey) -> Option<Knot> {
        Knot::start_with(zone_text, Some(key), Some(UPDATE_PORTS), ZONE)
    }

    fn start_with(
        zone_text: &str,
        key: Option<&TsigKey>,
        ports: Option<std::ops::Range<u16>>,
        zone: &'static str,
    ) -> Option<Knot> {
        if !require_tool("knotd") || !require_tool("kdig") || !require_tool("knotc") {
            return None;
        }
        let knotd = which("knotd").expect("knotd");
        // A port can be taken between probing and knotd binding it; try a
        // few.
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = match &ports {
                Some(range) => free_port_in(range.clone()),
                None => free_port(),
            };
            for sub in ["run", "db"] {
                std::fs::create_dir_all(dir.path().join(sub)).unwrap();
            }
            let d = dir.path().display();
            let (keys, acl) = match key {
                None => (String::new(), String::new()),
                Some(k) => (
                    format!(
                        "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\n\
                         acl:\n  - id: dkim-update\n    key: {}\n    action: update\n    \
                         update-type: [TXT]\n    update-owner: name\n    \
                         update-owner-match: sub\n    update-owner-name: [_domainkey]\n",
                        k.name, k.algorithm, k.secret, k.name
                    ),
                    "    acl: dkim-update\n".to_string(),
                ),
            };
            let conf = format!(
                "server:\n    rundir: \"{d}/run\"\n    listen: 127.0.0.1@{port}\n\
                 database:\n    storage: \"{d}/db\"\n{keys}\
                 template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    \
                 zonefile-load: whole\n    journal-content: none\n    semantic-checks: off\n\
                 zone:\n  - domain: {zone}\n    file: \"{d}/zone\"\n{acl}\
                 log:\n  - target: stderr\n    any: info\n"
            );
            std::fs::write(dir.path().join("knot.conf"), conf).unwrap();
            let mut knot = Knot {
                child: Command::new(&knotd)
                    .arg("-c")
                    .arg(dir.path().join("knot.conf"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(dir.path().join("knot.log")).unwrap())
                    .spawn()
                    .expect("spawn knotd"),
                dir,
                port,
                serial: 1,
                zone,
            };
            knot.write_zone(zone_text);
            if knot.wait_for_serial(1) {
                return Some(knot);
            }
            last_log = knot.log();
        }
        panic!("knotd did not start; its log:\n{last_log}");
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The port knotd listens on (UDP and TCP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address as `--nameserver` takes it.
    pub fn ns(&self) -> String {
        self.addr().to_string()
    }

    /// Replaces the records with `zone_text` under a higher SOA serial and
    /// has knotd reload the zone; returns once the new serial is served.
    pub fn reload(&mut self, zone_text: &str) {
        self.serial += 1;
        self.write_zone(zone_text);
        let run = run(Command::new(which("knotc").expect("knotc"))
            .arg("-c")
            .arg(self.dir.path().join("knot.conf"))
            .args(["zone-reload", self.zone]));
        assert_eq!(
            run.code(),
            0,
            "knotc zone-reload failed: {}{}\n{}",
            run.stdout(),
            run.stderr(),
            self.log()
        );
        assert!(
            self.wait_for_serial(self.serial),
            "knotd did not load serial {}:\n{}",
            self.serial,
            self.log()
        );
    }

    /// `knotc -c CONF ARGS...`, asserting success.
    pub fn knotc(&self, args: &[&str]) -> String {
        let r = run(Command::new(which("knotc").expect("knotc"))
            .arg("-c")
            .arg(self.dir.path().join("knot.conf"))
            .args(args));
        assert_eq!(
            r.code(),
            0,
            "knotc {args:?} failed: {}{}\n{}",
            r.stdout(),
            r.stderr(),
            self.log()
        );
        r.stdout()
    }

    /// Replaces the TXT RRset at `owner` (relative to example.com) with
    /// one record of `strings`, as an admin would with knotc, outside
    /// dkimctl.
    pub fn set_txt_by_hand(&self, owner: &str, strings: &[&str]) {
        let quoted: Vec<String> = strings.iter().map(|s| format!("\"{s}\"")).collect();
        self.knotc(&["zone-begin", self.zone]);
        let _ = run(Command::new(which("knotc").expect("knotc"))
            .arg("-c")
            .arg(self.dir.path().join("knot.conf"))
            .args(["zone-unset", self.zone, owner, "TXT"]));
        let mut set = vec!["zone-set", self.zone, owner, "60", "TXT"];
        set.extend(quoted.iter().map(String::as_str));
        self.knotc(&set);
        self.knotc(&["zone-commit", self.zone]);
    }

    /// The TXT records at `name` as kdig shows them, one line each
    /// (`"string" "string"`), sorted; empty when there are none.
    pub fn txt(&self, name: &str) -> Vec<String> {
        let mut lines: Vec<String> = kdig(self.port, "TXT", name)
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    /// The joined value of the one TXT record at `name` (panics unless
    /// there is exactly one).
    pub fn txt_value(&self, name: &str) -> String {
        let lines = self.txt(name);
        assert_eq!(
            lines.len(),
            1,
            "{name}: expected one TXT record, got {lines:?}"
        );
        let line = lines[0].trim();
        line.trim_matches('"').split("\" \"").collect()
    }

    /// How many dynamic updates knotd has processed.
    pub fn updates(&self) -> usize {
        self.log().matches("DDNS, processing").count()
    }

    /// knotd's log.
    pub fn log_text(&self) -> String {
        self.log()
    }

    /// The directory holding knotd's configuration and zone file.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The command that reloads the zone from its file and waits until it
    /// is loaded (`knotc -b`), as `[dns] reload` takes it.
    pub fn reload_command(&self) -> Vec<String> {
        vec![
            which("knotc").expect("knotc").display().to_string(),
            "-b".into(),
            "-c".into(),
            self.dir.path().join("knot.conf").display().to_string(),
            "zone-reload".into(),
            self.zone.into(),
        ]
    }

    fn write_zone(&self, zone_text: &str) {
        let text = format!(
            "$ORIGIN {origin}\n$TTL 60\n\
             @ IN SOA ns.{ZONE}. hostmaster.{ZONE}. ( {} 60 60 600 60 )\n\
             @ IN NS ns.{ZONE}.\nns.{ZONE}. IN A 127.0.0.1\n$ORIGIN {ZONE}.\n{zone_text}\n",
            self.serial,
            origin = if self.zone == "." {
                ".".to_string()
            } else {
                format!("{}.", self.zone)
            },
        );
        std::fs::write(self.dir.path().join("zone"), text).unwrap();
    }

    /// Polls the SOA until `serial` is served (false after 10 s or when
    /// knotd exited).
    fn wait_for_serial(&mut self, serial: u32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let soa = kdig(self.port, "SOA", self.zone);
            if soa.split_whitespace().nth(2) == Some(serial.to_string().as_str()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        // Our own child, by PID (Child::kill), never by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kdig @127.0.0.1 -p PORT +short TYPE NAME`'s output ("" on failure).
fn kdig(port: u16, rtype: &str, name: &str) -> String {
    let out = Command::new("kdig")
        .arg("@127.0.0.1")
        .args([
            "-p",
            &port.to_string(),
            "+short",
            "+timeout=1",
            "+retry=0",
            rtype,
            name,
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => String::new(),
    }
}

/// A record as `dkimctl dns records --json` prints it.
pub struct Published {
    /// Owner name, `SELECTOR._domainkey.DOMAIN`.
    pub name: String,
    /// The TXT value.
    pub value: String,
    /// The zone-file form (what an admin pastes).
    pub zone: String,
    /// The value split into TXT character-strings.
    pub strings: Vec<String>,
}

/// `dkimctl dns records --json` of the root.
pub fn published(root: &TempRoot) -> Vec<Published> {
    let run = root.dkimctl(&["dns", "records", "--json"]).expect(0);
    published_from(&run.stdout())
}

/// The records in the output of `dkimctl dns records --json`.
pub fn published_from(json_text: &str) -> Vec<Published> {
    let json: Value = serde_json::from_str(json_text).expect("dns records --json");
    json["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| Published {
            name: r["name"].as_str().unwrap().to_string(),
            value: r["value"].as_str().unwrap().to_string(),
            zone: r["zone"].as_str().unwrap().to_string(),
            strings: r["strings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

/// The records as zone-file text, one per line.
pub fn zone_text(records: &[Published]) -> String {
    records.iter().map(|r| format!("{}\n", r.zone)).collect()
}
