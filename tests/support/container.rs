//! A throw-away container booted by systemd-nspawn on an overlay of `/`
//! inside a private mount namespace (nothing touches the host): the
//! binary under test is installed at /usr/local/bin/dkimctl, dkim.toml at
//! /etc/dkimctl/dkim.toml, a setup script prepares the tree, and a probe
//! unit runs a script inside the booted system and powers it off. The
//! script's results come back through a bound directory (`/results`).

use std::collections::BTreeMap;
use std::path::Path;

use super::proc::private_mounts;
use super::*;

/// What to boot.
pub struct Boot<'a> {
    /// Part of the machine name (which also carries the test's PID).
    pub name: &'a str,
    /// /etc/dkimctl/dkim.toml.
    pub config: &'a str,
    /// Shell run on the host before boot, with `$M` the container's root
    /// (the overlay) and `$W` the work directory: install files, add
    /// users, `dkimctl --root $M apply`, enable units.
    pub setup: &'a str,
    /// The probe script, run inside as `probe.service` after
    /// multi-user.target; it must end with `systemctl poweroff`.
    pub probe: &'a str,
    /// More files for `/results` (name, text).
    pub files: &'a [(&'a str, &'a str)],
    /// Give the container its own network namespace (loopback only), so
    /// its services may use any port.
    pub private_network: bool,
    /// Seconds before the container is killed.
    pub timeout_secs: u32,
}

/// The unit that runs `/results/probe.sh` inside the container.
const PROBE_UNIT: &str = "[Unit]\nAfter=multi-user.target\n\
[Service]\nType=oneshot\nExecStart=/bin/sh /results/probe.sh\nTimeoutStartSec=infinity\n\
[Install]\nWantedBy=multi-user.target\n";

/// True when containers can be booted here (systemd-nspawn and root);
/// under CI a missing tool fails the calling test.
pub fn can_boot() -> bool {
    require_tool("systemd-nspawn") && require_root("systemd-nspawn boots a container")
}

/// Boots `b` and returns the results directory's files as (name, text).
/// `setup.log` holds the setup script's output and `console` the
/// container's.
pub fn boot(b: &Boot<'_>) -> BTreeMap<String, String> {
    // One container at a time: with --keep-unit each container's systemd
    // takes over the cgroup of the test process, which two cannot share.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let results = w.join("results");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::write(w.join("dkim.toml"), b.config).unwrap();
    std::fs::write(w.join("setup.sh"), b.setup).unwrap();
    std::fs::write(results.join("probe.sh"), b.probe).unwrap();
    std::fs::write(w.join("probe.service"), PROBE_UNIT).unwrap();
    for (name, text) in b.files {
        std::fs::write(results.join(name), text).unwrap();
    }
    let machine = format!("dkimctl-{}-{}", b.name, std::process::id());
    let network = if b.private_network {
        "--private-network"
    } else {
        ""
    };
    let script = format!(
        r#"set -e
W={w}
B=$W/ovl
mkdir -p $B && mount -t tmpfs tmpfs $B
mkdir -p $B/upper $B/work $B/merged
mount -t overlay overlay -o lowerdir=/,upperdir=$B/upper,workdir=$B/work $B/merged
M=$B/merged
install -D -m 0755 {bin} $M/usr/local/bin/dkimctl
install -D -m 0644 $W/dkim.toml $M/etc/dkimctl/dkim.toml
export M W
sh -e $W/setup.sh > $W/results/setup.log 2>&1
install -m 0644 $W/probe.service $M/etc/systemd/system/probe.service
mkdir -p $M/etc/systemd/system/multi-user.target.wants
ln -sf /etc/systemd/system/probe.service $M/etc/systemd/system/multi-user.target.wants/probe.service
timeout {timeout} systemd-nspawn -q -D $M --machine={machine} --boot --register=no --keep-unit {network} --bind=$W/results:/results > $W/results/console 2>&1 || true
"#,
        w = w.display(),
        bin = bin().display(),
        timeout = b.timeout_secs,
    );
    let r = run(&mut private_mounts(&script));
    let files = read_results(&results);
    assert_eq!(
        r.code(),
        0,
        "container setup failed:\n{}{}\n{}",
        r.stdout(),
        r.stderr(),
        files.get("setup.log").map(String::as_str).unwrap_or("")
    );
    files
}

fn read_results(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_file() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            files.insert(e.file_name().to_string_lossy().into_owned(), text);
        }
    }
    files
}

/// main.cf of the containers' Postfix: delivers to ~USER/Maildir and
/// listens on the container's loopback only.
pub const POSTFIX_MAIN_CF: &str = "compatibility_level = 3.6
myhostname = mail.example.com
mydomain = example.com
myorigin = $mydomain
mydestination = localhost, localhost.localdomain, $myhostname
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
home_mailbox = Maildir/
alias_maps =
alias_database =
smtputf8_enable = no
";
