//! Processes with deadlines: every command a test starts is bounded, every
//! child is stopped by its PID (never by name), every wait is a bounded
//! poll.

use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::Run;

/// Runs a command with stdin from `input` (or nothing), stopping it by PID
/// and failing when it outlives `limit`.
pub fn run_bounded(cmd: &mut Command, input: Option<&Path>, limit: Duration) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    cmd.stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap());
    match input {
        Some(p) => cmd.stdin(File::open(p).unwrap()),
        None => cmd.stdin(Stdio::null()),
    };
    let text = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("failed to run {text}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{text} did not finish within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        cmd: text,
        out: Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        },
    }
}

/// Polls `ready` every 50 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ready()
}

/// Sends SIGTERM to our own child by PID, waits up to `limit`, then
/// SIGKILL.
pub fn stop_child(child: &mut Child, limit: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    if !wait_until(limit, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A number unique within this process (file names of parallel tests).
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One line of /proc/PID/status, after its name (`"VmRSS:"`).
pub fn proc_status(pid: i32, field: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_string()))
}

/// `sh -c SCRIPT` in a private mount namespace (`unshare --mount
/// --propagation private`): what it mounts is gone when it exits and the
/// host never sees it.
pub fn private_mounts(script: &str) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script]);
    cmd
}

/// Waits up to `limit` until the unix socket at `path` accepts a
/// connection; false when it does not, or `child` exited first.
pub fn wait_for_socket(path: &Path, child: &mut Child, limit: Duration) -> bool {
    let accepts = || std::os::unix::net::UnixStream::connect(path).is_ok();
    wait_until(limit, || {
        accepts() || matches!(child.try_wait(), Ok(Some(_)))
    });
    accepts()
}
