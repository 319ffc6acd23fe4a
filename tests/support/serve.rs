//! `dkimctl serve` as a child process: started on a free loopback port, a
//! fresh unix socket or the configured socket, its stderr (the log) in a
//! file; signalled and stopped by its PID.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::TempRoot;
use super::proc::{free_port, proc_status, stop_child, unique, wait_until};

/// How long serve may take to listen, and to exit after SIGTERM.
const START: Duration = Duration::from_secs(30);
const EXIT: Duration = Duration::from_secs(60);

/// A running `dkimctl serve`.
pub struct Serve {
    child: Option<Child>,
    log: PathBuf,
    /// Where it listens, in dkimctl's notation (`inet:127.0.0.1:PORT`,
    /// `unix:/path`), as its log says.
    addr: String,
}

/// Where serve is to listen.
enum Socket {
    /// `--socket inet:127.0.0.1:PORT`, a free port (another if it was
    /// taken in between).
    FreePort,
    /// `--socket unix:ROOT/milter-N.sock`.
    FreshUnix,
    /// `--socket` as given.
    Given(String),
    /// No `--socket`: the one dkim.toml configures.
    Configured,
}

/// How to start serve; [`Serve::launch`] makes one.
pub struct Launch<'a> {
    root: &'a TempRoot,
    program: PathBuf,
    allow_root: bool,
    socket: Socket,
}

impl Launch<'_> {
    /// Another binary (the release build for long runs).
    pub fn program(mut self, program: &Path) -> Self {
        self.program = program.to_path_buf();
        self
    }

    /// Whether to pass `--allow-root` (default: yes; without it, as root,
    /// serve switches to the service user or refuses to run).
    pub fn allow_root(mut self, allow: bool) -> Self {
        self.allow_root = allow;
        self
    }

    /// A fresh unix socket in the root instead of a loopback port.
    pub fn unix(mut self) -> Self {
        self.socket = Socket::FreshUnix;
        self
    }

    /// This `--socket`.
    pub fn socket(mut self, socket: &str) -> Self {
        self.socket = Socket::Given(socket.to_string());
        self
    }

    /// No `--socket`: the socket dkim.toml names.
    pub fn configured_socket(mut self) -> Self {
        self.socket = Socket::Configured;
        self
    }

    /// Starts serve and waits until it listens; fails with its log when it
    /// exits first.
    pub fn start(self) -> Serve {
        let mut log = String::new();
        for _ in 0..5 {
            let socket = match &self.socket {
                Socket::FreePort => Some(format!("inet:127.0.0.1:{}", free_port())),
                Socket::FreshUnix => Some(format!(
                    "unix:{}",
                    self.root
                        .join(&format!("milter-{}.sock", unique()))
                        .display()
                )),
                Socket::Given(s) => Some(s.clone()),
                Socket::Configured => None,
            };
            match self.try_start(socket.as_deref()) {
                Ok(serve) => return serve,
                Err(text) => log = text,
            }
            // Only a port taken between probing and binding is retried.
            if !(matches!(self.socket, Socket::FreePort) && log.contains("in use")) {
                break;
            }
        }
        panic!("dkimctl serve did not start:\n{log}");
    }

    fn try_start(&self, socket: Option<&str>) -> Result<Serve, String> {
        let log = self.root.join(&format!("serve-{}.log", unique()));
        let mut cmd = Command::new(&self.program);
        cmd.args(["--root", &self.root.root_arg(), "serve"]);
        if let Some(s) = socket {
            cmd.args(["--socket", s]);
        }
        if self.allow_root {
            cmd.arg("--allow-root");
        }
        cmd.env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"));
        let child = cmd.spawn().expect("start dkimctl serve");
        let mut serve = Serve {
            child: Some(child),
            log,
            addr: String::new(),
        };
        wait_until(START, || {
            serve.log_text().contains("listening on") || !serve.running()
        });
        let text = serve.log_text();
        let at = match text.find("listening on ") {
            Some(at) if serve.running() => at,
            _ => {
                serve.kill();
                return Err(serve.log_text());
            }
        };
        // "listening on unix:/path (...)" or "listening on inet:HOST:PORT (...)".
        let rest = &text[at + "listening on ".len()..];
        serve.addr = rest.split_whitespace().next().unwrap().to_string();
        Ok(serve)
    }
}

impl Serve {
    /// Starts serve on a free loopback port with `--allow-root`.
    pub fn start(root: &TempRoot) -> Serve {
        Serve::launch(root).start()
    }

    /// Starts serve on a fresh unix socket in the root.
    pub fn start_unix(root: &TempRoot) -> Serve {
        Serve::launch(root).unix().start()
    }

    /// The binary under test on a free loopback port with `--allow-root`,
    /// to be changed before [`Launch::start`].
    pub fn launch(root: &TempRoot) -> Launch<'_> {
        Launch {
            root,
            program: super::bin(),
            allow_root: true,
            socket: Socket::FreePort,
        }
    }

    /// The socket for dkimctl's milter client (`inet:HOST:PORT`,
    /// `unix:/path`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The socket in miltertest's notation (`inet:PORT@HOST`,
    /// `unix:/path`).
    pub fn milter(&self) -> String {
        match self.addr.strip_prefix("inet:") {
            Some(hostport) => {
                let (host, port) = hostport.rsplit_once(':').unwrap();
                format!("inet:{port}@{host}")
            }
            None => self.addr.clone(),
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().expect("running").id()).expect("pid")
    }

    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Waits (bounded) until the log mentions `needle` `count` times.
    pub fn wait_log(&self, needle: &str, count: usize) -> bool {
        wait_until(START, || self.log_text().matches(needle).count() >= count)
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).expect("kill");
    }

    /// Open file descriptors of the daemon.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Resident set size of the daemon, in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status(self.pid(), "VmRSS:")
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit()
    }

    /// Waits (bounded) for the exit status; fails with the log when serve
    /// keeps running.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let mut status = None;
        wait_until(EXIT, || {
            status = child.try_wait().expect("wait");
            status.is_some()
        });
        if let Some(status) = status {
            return status;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "dkimctl serve did not exit within {EXIT:?}:\n{}",
            self.log_text()
        );
    }

    /// SIGKILL, now.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
    }
}
