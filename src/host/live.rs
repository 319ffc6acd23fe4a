//! The running system, observed: what systemd says about units, and which
//! process (and unit) listens on a socket or port. Read only, like the
//! rest of [`crate::host`]: nothing here starts, stops or writes anything.
//!
//! Only meaningful on the live root (`/`); callers skip it under a
//! sandbox root or with `--offline`. Whether a milter answers is asked by
//! [`crate::milter::client::probe`].
//!
//! - [`units`]: `systemctl show` for a few units, parsed.
//! - [`listener`]: the process listening on a unix socket path or a TCP
//!   port, found through `/proc/net/{unix,tcp,tcp6}` and the socket
//!   inodes in `/proc/PID/fd`, with its unit from `/proc/PID/cgroup`.
//! - [`process_started`]: when a process started (`/proc/PID/stat`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a milter listens, as the MTA reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A unix socket at a host path.
    Unix(PathBuf),
    /// A TCP port on a host (name or address).
    Tcp {
        /// As configured (`localhost`, `127.0.0.1`, `::1`).
        host: String,
        /// The port.
        port: u16,
    },
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
            Listen::Tcp { host, port } => write!(f, "inet:{host}:{port}"),
        }
    }
}

/// One unit as systemd sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitState {
    /// `loaded`, `not-found`, `masked`, ...
    pub load: String,
    /// `active`, `inactive`, `failed`, `activating`, `deactivating`,
    /// `reloading`.
    pub active: String,
    /// `running`, `dead`, `listening`, `exited`, ...
    pub sub: String,
    /// `enabled`, `disabled`, `static`, `masked`, or empty.
    pub enabled: String,
    /// The main process, 0 when none.
    pub main_pid: u32,
    /// The service's own status line (`sd_notify STATUS=`).
    pub status: String,
    /// The unit file systemd loaded it from.
    pub fragment: String,
}

impl UnitState {
    /// The unit file exists (and is not masked).
    pub fn installed(&self) -> bool {
        self.load == "loaded"
    }

    /// Running or about to (`active`, `activating`, `reloading`).
    pub fn up(&self) -> bool {
        matches!(self.active.as_str(), "active" | "activating" | "reloading")
    }

    /// Starts at boot (`enabled`, `enabled-runtime`, `linked`, `alias`).
    pub fn is_enabled(&self) -> bool {
        self.enabled.starts_with("enabled") || self.enabled == "linked" || self.enabled == "alias"
    }
}

/// The properties [`units`] asks for, in the order of [`UnitState`].
const PROPERTIES: &str =
    "Id,LoadState,ActiveState,SubState,UnitFileState,MainPID,StatusText,FragmentPath";

/// `systemctl show` for `names`; `Err` with systemctl's complaint when the
/// service manager cannot be asked (not booted with systemd, no systemctl).
pub fn units(names: &[&str]) -> Result<BTreeMap<String, UnitState>, String> {
    let out = Command::new("systemctl")
        .args(["show", "--no-pager", "-p", PROPERTIES])
        .args(names)
        .output()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("systemctl show failed")
            .trim()
            .to_string());
    }
    Ok(parse_show(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `systemctl show -p ...` output for several units: blocks of
/// `Key=value` lines separated by empty lines, each with its `Id=`.
pub fn parse_show(text: &str) -> BTreeMap<String, UnitState> {
    let mut out = BTreeMap::new();
    for block in text.split("\n\n") {
        let mut id = None;
        let mut u = UnitState::default();
        for line in block.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.to_string();
            match k {
                "Id" => id = Some(v),
                "LoadState" => u.load = v,
                "ActiveState" => u.active = v,
                "SubState" => u.sub = v,
                "UnitFileState" => u.enabled = v,
                "MainPID" => u.main_pid = v.parse().unwrap_or(0),
                "StatusText" => u.status = v,
                "FragmentPath" => u.fragment = v,
                _ => {}
            }
        }
        if let Some(id) = id {
            out.insert(id, u);
        }
    }
    out
}

/// A process listening on a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Its PID.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub command: String,
    /// The systemd unit it runs in, when it runs in one.
    pub unit: Option<String>,
}

/// The process listening on `listen` (live root only; `None` when nobody
/// listens or `/proc` does not tell).
pub fn listener(listen: &Listen) -> Option<Listener> {
    let inodes = match listen {
        Listen::Unix(path) => {
            let table = std::fs::read_to_string("/proc/net/unix").ok()?;
            unix_listening_inodes(&table, path)
        }
        Listen::Tcp { host, port } => {
            let mut inodes = Vec::new();
            for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
                if let Ok(table) = std::fs::read_to_string(file) {
                    inodes.extend(tcp_listening_inodes(&table, host, *port));
                }
            }
            inodes
        }
    };
    if inodes.is_empty() {
        return None;
    }
    let pid = owner_of(&inodes)?;
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let unit = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()
        .and_then(|c| unit_of_cgroup(&c));
    Some(Listener { pid, command, unit })
}

/// Inodes of listening sockets bound at `path` in a `/proc/net/unix`
/// table (`Num RefCount Protocol Flags Type St Inode Path`; a listening
/// socket has the `__SO_ACCEPTCON` flag 0x10000).
pub fn unix_listening_inodes(table: &str, path: &Path) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            let inode: u64 = f.get(6)?.parse().ok()?;
            let bound = f.get(7)?;
            (flags & 0x10000 != 0 && Path::new(bound) == path).then_some(inode)
        })
        .collect()
}

/// Inodes of TCP sockets listening on `port` at an address `host` stands
/// for (or at the wildcard address) in a `/proc/net/tcp` or `tcp6` table.
pub fn tcp_listening_inodes(table: &str, host: &str, port: u16) -> Vec<u64> {
    let wanted: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) if host.eq_ignore_ascii_case("localhost") => vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
        Err(_) => Vec::new(),
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (addr, p) = f.get(1)?.split_once(':')?;
            // 0A: TCP_LISTEN.
            if *f.get(3)? != "0A" || u16::from_str_radix(p, 16).ok()? != port {
                return None;
            }
            let ip = proc_net_address(addr)?;
            let ok = ip.is_unspecified() || wanted.is_empty() || wanted.contains(&ip);
            ok.then(|| f.get(9)?.parse().ok()).flatten()
        })
        .collect()
}

/// An address as `/proc/net/tcp` writes it: the bytes of each 32-bit word
/// in host order, as hex.
fn proc_net_address(hex: &str) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let a: [u8; 16] = bytes.try_into().ok()?;
            let v6 = Ipv6Addr::from(a);
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        _ => None,
    }
}

/// How many connections process `pid` has accepted on the sockets it
/// listens on (unix paths, TCP ports) and still holds: for a milter, the
/// MTA sessions it still serves. Its other connections (the journal, a
/// resolver) do not count. Live root only; 0 when `/proc` does not tell.
pub fn connections(pid: u32) -> usize {
    let own: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| {
            let t = std::fs::read_link(fd.path()).ok()?;
            let t = t.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    let mut n = 0;
    if let Ok(t) = std::fs::read_to_string("/proc/net/unix") {
        n += accepted(&unix_rows(&t), &own);
    }
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(t) = std::fs::read_to_string(file) {
            n += accepted(&tcp_rows(&t), &own);
        }
    }
    n
}

/// One socket of a `/proc/net` table: its inode, where it is bound (a unix
/// path or a local TCP port), and whether it listens or is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    inode: u64,
    bound: String,
    listening: bool,
    connected: bool,
}

/// Connected sockets among `own` bound where one of `own`'s listening
/// sockets is bound (accepted connections carry the listener's path or
/// port).
fn accepted(rows: &[Row], own: &[u64]) -> usize {
    let mine = |r: &&Row| own.contains(&r.inode);
    let listens: Vec<&str> = rows
        .iter()
        .filter(mine)
        .filter(|r| r.listening)
        .map(|r| r.bound.as_str())
        .collect();
    rows.iter()
        .filter(mine)
        .filter(|r| r.connected && listens.contains(&r.bound.as_str()))
        .count()
}

/// The rows of `/proc/net/unix` (`Num RefCount Protocol Flags Type St
/// Inode Path`; listening: flag 0x10000; connected: state 03).
fn unix_rows(table: &str) -> Vec<Row> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            Some(Row {
                inode: f.get(6)?.parse().ok()?,
                bound: f.get(7)?.to_string(),
                listening: flags & 0x10000 != 0,
                connected: *f.get(5)? == "03",
            })
        })
        .collect()
}

/// The rows of `/proc/net/tcp` or `tcp6`, bound by local port (listening:
/// state 0A; connected: 01 established).
fn tcp_rows(table: &str) -> Vec<Row> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (_, port) = f.get(1)?.split_once(':')?;
            let state = *f.get(3)?;
            Some(Row {
                inode: f.get(9)?.parse().ok()?,
                bound: port.to_string(),
                listening: state == "0A",
                connected: state == "01",
            })
        })
        .collect()
}

/// The first process holding one of `inodes` open.
fn owner_of(inodes: &[u64]) -> Option<u32> {
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.into_iter().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|t| wanted.iter().any(|w| t.as_os_str() == w.as_str()))
            })
    })
}

/// The unit a process runs in, from its `/proc/PID/cgroup` (the last
/// `*.service` or `*.socket` component of the unified hierarchy's path).
pub fn unit_of_cgroup(cgroup: &str) -> Option<String> {
    let line = cgroup
        .lines()
        .find(|l| l.starts_with("0::"))
        .or_else(|| cgroup.lines().find(|l| l.contains(":name=systemd:")))?;
    let path = line.rsplit_once(':')?.1;
    path.split('/')
        .rev()
        .find(|c| c.ends_with(".service") || c.ends_with(".socket"))
        .map(str::to_string)
}

/// When process `pid` started (live root only).
pub fn process_started(pid: u32) -> Option<SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, counted after the command name in parentheses.
    let after = stat.rsplit_once(')')?.1;
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&h| h > 0)? as u64;
    Some(UNIX_EPOCH + Duration::from_secs(boot) + Duration::from_millis(ticks * 1000 / hz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemctl_show_blocks() {
        let text = "Id=dkimctl.service\nLoadState=loaded\nActiveState=failed\nSubState=failed\n\
                    UnitFileState=enabled\nMainPID=0\nStatusText=\nFragmentPath=/etc/systemd/system/dkimctl.service\n\n\
                    Id=opendkim.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n\
                    UnitFileState=\nMainPID=0\nStatusText=\nFragmentPath=\n";
        let u = parse_show(text);
        let d = &u["dkimctl.service"];
        assert!(d.installed() && !d.up() && d.is_enabled());
        assert_eq!(d.active, "failed");
        assert!(!u["opendkim.service"].installed());
    }

    #[test]
    fn unix_table() {
        let t = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01 31337 /run/dkimctl/dkimctl.sock\n\
                 0000000000000000: 00000003 00000000 00000000 0001 03 31338 /run/dkimctl/dkimctl.sock\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01 31339 /run/other.sock\n";
        assert_eq!(
            unix_listening_inodes(t, Path::new("/run/dkimctl/dkimctl.sock")),
            vec![31337]
        );
    }

    #[test]
    fn tcp_tables() {
        // 127.0.0.1:8891 listening (0100007F:22BB), 0.0.0.0:8892, and an
        // established connection on 8891.
        let t4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
                  0: 0100007F:22BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 4242 1\n\
                  1: 00000000:22BC 00000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 4343 1\n\
                  2: 0100007F:22BB 0100007F:C000 01 00000000:00000000 00:00000000 00000000   110        0 4444 1\n";
        assert_eq!(tcp_listening_inodes(t4, "127.0.0.1", 8891), vec![4242]);
        assert_eq!(tcp_listening_inodes(t4, "localhost", 8891), vec![4242]);
        assert_eq!(
            tcp_listening_inodes(t4, "10.0.0.1", 8891),
            Vec::<u64>::new()
        );
        assert_eq!(tcp_listening_inodes(t4, "127.0.0.1", 8892), vec![4343]);
        // ::1 port 8891.
        let t6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
                  0: 00000000000000000000000001000000:22BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 5555 1\n";
        assert_eq!(tcp_listening_inodes(t6, "::1", 8891), vec![5555]);
        assert_eq!(
            tcp_listening_inodes(t6, "127.0.0.1", 8891),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn accepted_connections_only() {
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                    0000000000000000: 00000002 00000000 00010000 0001 01 100 /run/m.sock\n\
                    0000000000000000: 00000003 00000000 00000000 0001 03 101 /run/m.sock\n\
                    0000000000000000: 00000003 00000000 00000000 0001 03 102\n\
                    0000000000000000: 00000003 00000000 00000000 0001 03 103 /run/m.sock\n";
        let rows = unix_rows(unix);
        // 102 (the journal, no path) is not a session; 103 is someone
        // else's.
        assert_eq!(accepted(&rows, &[100, 101, 102]), 1);
        assert_eq!(accepted(&rows, &[101, 102]), 0, "no listener of its own");
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
                   0: 0100007F:22BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 7 1\n\
                   1: 0100007F:22BB 0100007F:C000 01 00000000:00000000 00:00000000 00000000   110        0 8 1\n\
                   2: 0100007F:C001 0100007F:0035 01 00000000:00000000 00:00000000 00000000   110        0 9 1\n";
        assert_eq!(accepted(&tcp_rows(tcp), &[7, 8, 9]), 1);
    }

    #[test]
    fn cgroup_unit() {
        assert_eq!(
            unit_of_cgroup("0::/system.slice/opendkim.service\n").as_deref(),
            Some("opendkim.service")
        );
        assert_eq!(
            unit_of_cgroup("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
    }

    #[test]
    fn this_process_started_in_the_past() {
        let t = process_started(std::process::id()).expect("own start time");
        assert!(t <= SystemTime::now());
        assert!(t > SystemTime::now() - Duration::from_secs(24 * 3600 * 365));
    }
}
