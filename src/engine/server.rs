//! The server: listeners, the accept loop, one task per milter connection,
//! signals, privilege drop and the conversation with systemd.
//!
//! # Start-up, in order
//!
//! 1. Load and validate `dkim.toml` (every diagnostic is reported).
//! 2. Take the listening sockets: from systemd (`LISTEN_FDS`, socket
//!    activation) or by binding the configured socket ourselves. A unix
//!    socket left behind by a crashed run is removed first (only if it is
//!    a socket and nobody answers on it). The new socket is born with its
//!    final mode (`0o777 & !umask`, by the umask) and, as root, its final
//!    owner (bound with the service user's and socket group's effective
//!    ids): nothing is chmod-ed or chown-ed by name afterwards, where the
//!    service user, who owns the directory, could swap in a link.
//! 3. As root: drop to the service user (its groups, then gid, then uid).
//!    Binding needs privileges (a socket under Postfix's queue directory);
//!    nothing after it does, and a process that has called `setuid` to a
//!    non-root user holds no capabilities. Refused if the user does not
//!    exist, unless `--allow-root`.
//! 4. Build the runtime, load the keys (as the service user, so a later
//!    reload reads them the same way) and sign a dummy message with each,
//!    so aws-lc's one-time set-up does not land on the first real message.
//! 5. Tell systemd `READY=1`, then accept.
//!
//! # Per connection
//!
//! A task reads from the socket into a buffer, splits it into commands
//! ([`decode_command`], which refuses oversized packets before allocating),
//! feeds each to the [`Session`], and collects the replies in one output
//! buffer. Only when every complete command in the buffer has been handled
//! does it write, with a single `write_all`. The end-of-message answer (say
//! two `SMFIR_INSHEADER`s and `SMFIR_CONTINUE`) therefore leaves in one
//! segment. Writing each reply separately is what makes libmilter-based
//! milters stall about 40 ms per message on TCP: the first small write goes
//! out, the second waits for its ACK (Nagle), and the MTA delays that ACK
//! (delayed ACK) because it is waiting for the rest. TCP_NODELAY is set as
//! well, so a single write is never held back either.
//!
//! A malformed packet, an unknown command or a protocol error closes that
//! connection with one log line; the MTA then applies its
//! `milter_default_action` to that message, and every other connection
//! carries on.
//!
//! # Bounds on a connection
//!
//! A connection is closed when a command takes longer than
//! `engine.idle_timeout` to arrive (the clock restarts with each complete
//! command, not with each byte), when a message takes longer than that
//! from its first header to its end, or when a write is not read for that
//! long. At most `engine.max_connections` are served at once; when all
//! are taken, a new connection gets the slot of the one that has waited
//! longest (at least [`EVICT_AFTER`]) for its next command, so clients
//! that trickle or idle cannot lock the MTA out.
//!
//! # Signals
//!
//! - SIGHUP: reload. The new `dkim.toml` is validated and every key loaded
//!   before anything changes; then the new [`State`] is swapped in as a
//!   whole. On any error the running configuration stays and the log says
//!   why. Messages under way finish with the state they started with.
//! - SIGTERM, SIGINT: stop accepting, let each connection finish the
//!   message it is reading (up to [`DRAIN_LIMIT`]), remove the socket, exit.

use std::error::Error;
use std::fmt;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::session::{Flow, Session};
use super::{Shared, State};
use crate::config::model::{Config, Socket};
use crate::config::{self, Source};
use crate::host::Root;
use crate::milter::{Command, DEFAULT_MAX_PACKET, decode_command};

/// How long SIGTERM waits for connections to finish their message.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// What `dkimctl serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The root every host path resolves under (`--root`).
    pub root: Root,
    /// Where `dkim.toml` is (`--config`).
    pub source: Source,
    /// Listen here instead of `service.socket` (any notation
    /// [`config::validate::parse_socket`] reads). A unix path given here is
    /// taken as a real path, not under the root.
    pub socket_override: Option<String>,
    /// Keep running as root when the service user cannot be switched to.
    pub allow_root: bool,
}

/// The configuration could not be loaded or is invalid.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for ConfigError {}

/// Loads and validates `dkim.toml`; the error carries every diagnostic.
pub fn load_config(source: &Source) -> Result<Config, ConfigError> {
    let loaded = config::load(source).map_err(|e| {
        let cause = e.source.to_string();
        ConfigError(format!("{e}: {cause}"))
    })?;
    match loaded.config {
        Some(c) if !loaded.diags.has_errors() => Ok(c),
        _ => {
            // One line per error (no excerpt): this goes to the journal.
            let lines: Vec<String> = loaded
                .diags
                .sorted()
                .into_iter()
                .filter(|d| d.severity == crate::report::Severity::Error)
                .map(|d| match d.line {
                    0 => format!("{}: {}", d.file, d.message),
                    n => format!("{}:{}:{}: {}", d.file, n, d.col, d.message),
                })
                .collect();
            Err(ConfigError(format!(
                "invalid configuration (`dkimctl check` shows details): {}",
                lines.join("; ")
            )))
        }
    }
}

/// Runs the engine until SIGTERM or SIGINT (`dkimctl serve`). Builds its
/// own multi-threaded tokio runtime.
///
/// # Errors
///
/// An invalid configuration, a socket that cannot be bound, a refused
/// privilege drop, an unsafe key file (with `engine.require_safe_keys`), or
/// a resolver that cannot be set up; all before the first connection.
pub fn serve(opts: ServeOptions) -> Result<(), Box<dyn Error + Send + Sync>> {
    init_logging();
    let config = load_config(&opts.source)?;
    if config.service.engine != crate::config::model::EngineKind::Bundled {
        tracing::warn!("service.engine is \"opendkim\"; serving with the bundled engine anyway");
    }

    // Sockets first: from systemd, else our own.
    let mut listeners = systemd_listeners()?;
    if listeners.is_empty() {
        let (socket, under_root) = match &opts.socket_override {
            Some(s) => (
                config::validate::parse_socket(s)
                    .map_err(|e| format!("invalid --socket \"{s}\": {e}"))?,
                false,
            ),
            None => (config.service.socket.clone(), true),
        };
        let root = under_root.then_some(&opts.root);
        listeners.push(bind(&socket, root, &config)?);
    } else {
        tracing::info!("using {} socket(s) passed by systemd", listeners.len());
    }
    let ours: Vec<PathBuf> = listeners
        .iter()
        .filter_map(|l| match l {
            StdListener::Unix(_, Some(p)) => Some(p.clone()),
            _ => None,
        })
        .collect();
    let result = serve_bound(opts, config, listeners);
    if result.is_err() {
        // Do not leave a socket behind that nobody answers on.
        for p in ours {
            let _ = std::fs::remove_file(p);
        }
    }
    result
}

/// The rest of [`serve`] once the sockets are bound.
fn serve_bound(
    opts: ServeOptions,
    config: Config,
    listeners: Vec<StdListener>,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    drop_privileges(&config, opts.allow_root)?;
    // Switching users resets the dumpable flag (to fs.suid_dumpable).
    crate::keys::protect_process();
    crate::keys::lock_secrets();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dkimctl-serve")
        .build()?;
    runtime.block_on(async move {
        // Handlers first: SIGHUP's default action would kill the process
        // if systemd asked for a reload right after READY=1.
        let signals = Signals::install()?;
        let state = State::build(config, &opts.root, None, false)?;
        let ready = state.ready_keys();
        let listeners = listeners
            .into_iter()
            .map(StdListener::into_tokio)
            .collect::<io::Result<Vec<_>>>()?;
        let metrics_addr = state.config.engine.metrics;
        let shared = Shared::new(state);
        if let Some(addr) = metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
            tracing::info!("metrics on http://{addr}/metrics");
            tokio::spawn(super::metrics::serve(
                listener,
                shared.clone(),
                opts.root.clone(),
            ));
        }
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(signals.forward(tx));
        start_watchdog();
        for l in &listeners {
            tracing::info!(
                "listening on {} ({ready} signing key(s) ready)",
                l.local_addr()
            );
        }
        let status = status_line(&shared.current().generation, None);
        notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&status),
        ]);
        let reloader = Reloader {
            root: opts.root.clone(),
            source: opts.source.clone(),
        };
        run(listeners, shared, Some(reloader), rx).await?;
        Ok(())
    })
}

/// Logging to stderr; without timestamps under journald (it adds its own).
/// Runs one command through the session; end of message is where signing
/// and verification happen, so its duration feeds the latency histogram.
async fn handle_timed(
    session: &mut Session,
    shared: &Shared,
    cmd: Command,
    output: &mut BytesMut,
) -> Result<Flow, super::session::SessionError> {
    let eom = matches!(cmd, Command::EndOfMessage);
    let started = std::time::Instant::now();
    let flow = session.handle(cmd, super::unix_now(), output).await;
    if eom {
        shared.metrics().observe(started.elapsed());
    }
    flow
}

/// Logging: under systemd (stderr connected to the journal, as
/// `JOURNAL_STREAM` tells) structured journal entries whose fields
/// (`QUEUE_ID`, `RESULT`, `DOMAIN`, `SELECTOR`, `DKIM`, `ERROR`) can be
/// queried with `journalctl -u dkimctl QUEUE_ID=...`; elsewhere one human
/// line per event on stderr, coloured only on a terminal.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = tracing_subscriber::filter::LevelFilter::INFO;
    if std::env::var_os("JOURNAL_STREAM").is_some()
        && let Ok(journald) = tracing_journald::layer()
    {
        {
            // try_init: the CLI may have installed a subscriber already.
            let _ = tracing_subscriber::registry()
                .with(
                    journald
                        .with_syslog_identifier("dkimctl".into())
                        .with_field_prefix(None),
                )
                .with(level)
                .try_init();
            return;
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr)
        .try_init();
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::debug!("sd_notify failed: {e}");
    }
}

/// Sends `WATCHDOG=1` at half the interval systemd asked for.
fn start_watchdog() {
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        let period = Duration::from_micros(usec / 2).max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                notify(&[sd_notify::NotifyState::Watchdog]);
            }
        });
    }
}

/// The signals the engine acts on.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (inside the runtime).
    fn install() -> io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Turns SIGHUP into [`Control::Reload`] and SIGTERM/SIGINT into
    /// [`Control::Shutdown`].
    async fn forward(mut self, tx: mpsc::Sender<Control>) {
        loop {
            let msg = tokio::select! {
                _ = self.hup.recv() => Control::Reload(None),
                _ = self.term.recv() => Control::Shutdown,
                _ = self.int.recv() => Control::Shutdown,
            };
            let stop = matches!(msg, Control::Shutdown);
            if tx.send(msg).await.is_err() || stop {
                return;
            }
        }
    }
}

/// A listening socket before the runtime exists.
#[derive(Debug)]
pub enum StdListener {
    /// A unix socket; the path is removed at exit when we created it.
    Unix(std::os::unix::net::UnixListener, Option<PathBuf>),
    /// A TCP socket.
    Tcp(std::net::TcpListener),
}

impl StdListener {
    /// Registers the socket with the tokio runtime (call inside it).
    pub fn into_tokio(self) -> io::Result<Listener> {
        match self {
            StdListener::Unix(l, path) => {
                l.set_nonblocking(true)?;
                Ok(Listener::Unix(tokio::net::UnixListener::from_std(l)?, path))
            }
            StdListener::Tcp(l) => {
                l.set_nonblocking(true)?;
                Ok(Listener::Tcp(tokio::net::TcpListener::from_std(l)?))
            }
        }
    }
}

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    /// A unix socket (and the path to remove at exit, if ours).
    Unix(tokio::net::UnixListener, Option<PathBuf>),
    /// A TCP socket.
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    /// The address in Postfix notation (`unix:/path`, `inet:127.0.0.1:8891`),
    /// which [`crate::milter::client::MilterClient::connect`] also reads.
    pub fn local_addr(&self) -> String {
        match self {
            Listener::Unix(l, path) => {
                let p = path.clone().or_else(|| {
                    l.local_addr()
                        .ok()
                        .and_then(|a| a.as_pathname().map(Path::to_path_buf))
                });
                match p {
                    Some(p) => format!("unix:{}", p.display()),
                    None => "unix:(unnamed)".to_string(),
                }
            }
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) if a.is_ipv6() => format!("inet:[{}]:{}", a.ip(), a.port()),
                Ok(a) => format!("inet:{}:{}", a.ip(), a.port()),
                Err(_) => "inet:(unknown)".to_string(),
            },
        }
    }
}

/// Binds `socket`. A unix path is taken under `root` when given. Stale
/// unix sockets are removed; the socket is born with mode
/// `0o777 & !umask` and, as root, owned by the service user and
/// `service.socket_group`.
pub fn bind(socket: &Socket, root: Option<&Root>, config: &Config) -> io::Result<StdListener> {
    match socket {
        Socket::Unix(host) => {
            let path = match root {
                Some(r) => r.join(host),
                None => host.clone(),
            };
            bind_unix(&path, config)
                .map_err(|e| annotate(e, &format!("cannot listen on unix:{}", path.display())))
        }
        Socket::Inet { host, port } => {
            let addr = match socket.inet_addr() {
                Some(a) => a,
                None => std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?,
            };
            let l = std::net::TcpListener::bind(addr)
                .map_err(|e| annotate(e, &format!("cannot listen on {socket}")))?;
            Ok(StdListener::Tcp(l))
        }
    }
}

fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn bind_unix(path: &Path, config: &Config) -> io::Result<StdListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another process is listening on it",
                ));
            }
            tracing::info!("removing stale socket {}", path.display());
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // The socket is born with its final mode (`0o777 & !umask`) and owner:
    // nothing is changed by name after bind. The directory usually belongs
    // to the service user, who could swap the new socket for a link
    // between bind and a chmod or chown by path, and have root change the
    // link's target (issue 15, item 1).
    let umask = config.service.umask & 0o777;
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask as _));
    let bound = if nix::unistd::geteuid().is_root() {
        bind_as_owner(path, config)
    } else {
        std::os::unix::net::UnixListener::bind(path)
    };
    nix::sys::stat::umask(old);
    Ok(StdListener::Unix(bound?, Some(path.to_path_buf())))
}

/// As root: binds with the effective ids the socket is to have, the
/// service user and `service.socket_group`, so that bind(2) creates it
/// owned by them. Where the service user cannot create files (a directory
/// only root writes) the socket stays root's, with the socket group.
///
/// The ids are changed for this thread only (`setresuid(2)` as the kernel
/// implements it, not the C library's process-wide wrapper), and back to
/// root's right after: the real and saved ids stay 0 throughout.
fn bind_as_owner(path: &Path, config: &Config) -> io::Result<std::os::unix::net::UnixListener> {
    use rustix::thread::{set_thread_res_gid, set_thread_res_uid};
    let uid = nix::unistd::User::from_name(&config.service.user)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
        .filter(|&u| u != 0);
    let gid = nix::unistd::Group::from_name(&config.service.socket_group)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw());
    let own_gid = rustix::fs::Gid::from_raw(nix::unistd::getegid().as_raw());
    let as_ids = |uid: Option<u32>| -> io::Result<std::os::unix::net::UnixListener> {
        if let Some(g) = gid {
            set_thread_res_gid(None, rustix::fs::Gid::from_raw(g), None)?;
        }
        if let Some(u) = uid
            && let Err(e) = set_thread_res_uid(None, rustix::fs::Uid::from_raw(u), None)
        {
            let _ = set_thread_res_gid(None, own_gid, None);
            return Err(e.into());
        }
        let bound = std::os::unix::net::UnixListener::bind(path);
        // The saved uid is 0, so going back cannot fail; if it did, the
        // thread would go on with the wrong identity: stop instead.
        set_thread_res_uid(None, rustix::fs::Uid::ROOT, None)
            .expect("the saved uid 0 restores the effective uid");
        set_thread_res_gid(None, own_gid, None).expect("the saved gid restores the effective gid");
        bound
    };
    if uid.is_none() {
        tracing::warn!(
            "user \"{}\" (service.user) does not exist: the socket is root's",
            config.service.user
        );
    }
    match as_ids(uid) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && uid.is_some() => {
            tracing::info!(
                "{} cannot create files in {}: the socket is root's, group {}",
                config.service.user,
                path.parent().unwrap_or(path).display(),
                config.service.socket_group
            );
            as_ids(None)
        }
        other => other,
    }
}

/// Sockets passed by systemd (`LISTEN_FDS`), unix or TCP.
pub fn systemd_listeners() -> io::Result<Vec<StdListener>> {
    use nix::sys::socket::{AddressFamily, SockaddrLike, SockaddrStorage, getsockname};
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut out = Vec::new();
    for fd in sd_notify::listen_fds()? {
        let family = getsockname::<SockaddrStorage>(fd)
            .map_err(io::Error::from)?
            .family();
        // SAFETY: systemd passes these descriptors to this process only
        // (LISTEN_PID was checked by `listen_fds`), each exactly once, and
        // nothing else in the process owns or closes them.
        #[allow(unsafe_code)]
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        match family {
            Some(AddressFamily::Unix) => {
                out.push(StdListener::Unix(
                    std::os::unix::net::UnixListener::from(owned),
                    None,
                ));
            }
            Some(AddressFamily::Inet | AddressFamily::Inet6) => {
                out.push(StdListener::Tcp(std::net::TcpListener::from(owned)));
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("socket passed by systemd has an unsupported family {other:?}"),
                ));
            }
        }
    }
    Ok(out)
}

/// Switches to the service user when running as root.
fn drop_privileges(config: &Config, allow_root: bool) -> Result<(), String> {
    use nix::unistd::{Group, Uid, User, geteuid, getgrouplist, setgid, setgroups, setuid};
    if !geteuid().is_root() {
        if capabilities_held() {
            tracing::warn!("running with capabilities; the engine needs none after binding");
        }
        return Ok(());
    }
    let name = &config.service.user;
    let user = match User::from_name(name) {
        Ok(Some(u)) if !u.uid.is_root() => u,
        Ok(found) => {
            let why = if found.is_some() {
                format!("service.user \"{name}\" is root")
            } else {
                format!("user \"{name}\" (service.user) does not exist")
            };
            if allow_root {
                tracing::warn!("{why}; running as root (--allow-root)");
                return Ok(());
            }
            return Err(format!(
                "refusing to run as root: {why} (create it, e.g. with the rendered sysusers.d file, or pass --allow-root)"
            ));
        }
        Err(e) => return Err(format!("cannot look up user \"{name}\": {e}")),
    };
    let gid = Group::from_name(&config.service.group)
        .ok()
        .flatten()
        .map_or(user.gid, |g| g.gid);
    let cname = std::ffi::CString::new(user.name.clone())
        .map_err(|_| format!("invalid user name \"{name}\""))?;
    let groups =
        getgrouplist(&cname, gid).map_err(|e| format!("cannot list the groups of {name}: {e}"))?;
    setgroups(&groups).map_err(|e| format!("setgroups failed: {e}"))?;
    setgid(gid).map_err(|e| format!("setgid failed: {e}"))?;
    setuid(user.uid).map_err(|e| format!("setuid failed: {e}"))?;
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err("privileges could be regained after dropping them".into());
    }
    if capabilities_held() && !allow_root {
        return Err("capabilities are still held after dropping privileges".into());
    }
    tracing::info!("running as {name} (uid {}, gid {gid})", user.uid);
    Ok(())
}

/// True when /proc says this process holds any effective or permitted
/// capability.
fn capabilities_held() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status.lines().any(|l| {
        (l.starts_with("CapEff:") || l.starts_with("CapPrm:"))
            && l.split_whitespace()
                .nth(1)
                .is_some_and(|v| !v.trim_start_matches('0').is_empty())
    })
}

/// What a running server can be told.
#[derive(Debug)]
pub enum Control {
    /// Re-read `dkim.toml` and the keys; the result is sent back if asked.
    Reload(Option<oneshot::Sender<Result<(), String>>>),
    /// Stop accepting, drain, exit.
    Shutdown,
}

/// Where a reload reads from.
#[derive(Debug, Clone)]
pub struct Reloader {
    /// The root.
    pub root: Root,
    /// `dkim.toml`.
    pub source: Source,
}

/// Serves `listeners` until [`Control::Shutdown`] (or until the control
/// channel closes), then drains. Tests call this directly with their own
/// listeners, state and control channel.
pub async fn run(
    listeners: Vec<Listener>,
    shared: Shared,
    reloader: Option<Reloader>,
    mut control: mpsc::Receiver<Control>,
) -> io::Result<()> {
    let max = shared.current().config.engine.max_connections.max(1);
    let semaphore = Arc::new(Semaphore::new(max));
    let slots = Arc::new(Slots::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut unix_paths = Vec::new();
    let mut accepters = Vec::new();
    for l in listeners {
        if let Listener::Unix(_, Some(p)) = &l {
            unix_paths.push(p.clone());
        }
        accepters.push(tokio::spawn(accept_loop(
            l,
            shared.clone(),
            Arc::clone(&semaphore),
            Arc::clone(&slots),
            stop_rx.clone(),
        )));
    }

    while let Some(msg) = control.recv().await {
        match msg {
            Control::Reload(reply) => {
                let result = reload(&shared, reloader.as_ref(), max).await;
                if let Some(tx) = reply {
                    let _ = tx.send(result);
                }
            }
            Control::Shutdown => break,
        }
    }

    tracing::info!("shutting down: finishing messages in progress");
    notify(&[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    for a in accepters {
        let _ = a.await;
    }
    // Every connection holds a permit; all permits back means all done.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_LIMIT, semaphore.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            "{} connection(s) still open after {}s; exiting anyway",
            max.saturating_sub(semaphore.available_permits()),
            DRAIN_LIMIT.as_secs()
        );
    }
    for p in unix_paths {
        if let Err(e) = std::fs::remove_file(&p) {
            tracing::debug!("cannot remove {}: {e}", p.display());
        }
    }
    Ok(())
}

/// Loads, validates and swaps in a new configuration; keeps the old one on
/// any error.
async fn reload(shared: &Shared, reloader: Option<&Reloader>, max: usize) -> Result<(), String> {
    let Some(r) = reloader.cloned() else {
        return Err("this server cannot reload".into());
    };
    let mut states = vec![sd_notify::NotifyState::Reloading];
    if let Ok(m) = sd_notify::NotifyState::monotonic_usec_now() {
        states.push(m);
    }
    notify(&states);
    let old = shared.current();
    let built = tokio::task::spawn_blocking(move || -> Result<State, String> {
        let config = load_config(&r.source).map_err(|e| e.to_string())?;
        State::build(config, &r.root, Some(&old), true).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("reload task failed: {e}"))
    .and_then(|r| r);
    let result = match built {
        Ok(state) => {
            let previous = shared.current();
            if state.config.service.socket != previous.config.service.socket {
                tracing::warn!("service.socket changed; it takes effect at the next restart");
            }
            if state.config.engine.max_connections != max {
                tracing::warn!(
                    "engine.max_connections changed; it takes effect at the next restart"
                );
            }
            let keys = state.ready_keys();
            shared.replace(state);
            tracing::info!("reloaded configuration ({keys} signing key(s) ready)");
            Ok(())
        }
        Err(e) => {
            tracing::error!("reload failed, keeping the running configuration: {e}");
            Err(e)
        }
    };
    let status = status_line(&shared.current().generation, result.as_ref().err());
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&status),
    ]);
    result
}

/// The `STATUS=` line: the settings generation served (which `dkimctl
/// plan` compares with dkim.toml's), and a failed reload's reason.
fn status_line(generation: &str, failed: Option<&String>) -> String {
    match failed {
        None => format!("serving settings {generation}"),
        Some(e) => {
            let e: String = crate::report::clean(e).chars().take(200).collect();
            format!("serving settings {generation}; reload failed: {e}")
        }
    }
}

/// Least time a connection must have waited for its next command before
/// it may be closed to make room for a new one.
pub const EVICT_AFTER: Duration = Duration::from_secs(1);

/// The connections holding a slot, with how long each has been waiting
/// for its next command: when every slot is taken, the one waiting
/// longest (at least [`EVICT_AFTER`]) is closed so a new connection gets
/// its slot. A client trickling a command a byte at a time, or idling
/// between messages, cannot keep the MTA's next connection out.
#[derive(Debug, Default)]
struct Slots {
    list: std::sync::Mutex<Vec<std::sync::Weak<Slot>>>,
}

/// One connection's entry in [`Slots`].
#[derive(Debug)]
struct Slot {
    /// Milliseconds since `epoch` when it started waiting for its next
    /// command; 0 while a command is being handled.
    waiting_since: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
    evict: tokio::sync::Notify,
}

impl Slot {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The connection waits for its next command from now on.
    fn waiting(&self) {
        self.waiting_since
            .store(self.now(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The connection is handling a command.
    fn busy(&self) {
        self.waiting_since
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Slots {
    /// Registers a new connection.
    fn join(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            waiting_since: std::sync::atomic::AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            evict: tokio::sync::Notify::new(),
        });
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&slot));
        slot
    }

    /// Asks the connection that has waited longest for its next command
    /// (at least [`EVICT_AFTER`]) to close; false when none qualifies.
    fn evict_one(&self) -> bool {
        let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = list
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .filter_map(|s| {
                let since = s.waiting_since.load(std::sync::atomic::Ordering::Relaxed);
                let waited = s.now().saturating_sub(since);
                (since != 0 && u128::from(waited) >= EVICT_AFTER.as_millis()).then_some((waited, s))
            })
            .max_by_key(|(waited, _)| *waited);
        match oldest {
            Some((_, s)) => {
                s.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

async fn accept_loop(
    listener: Listener,
    shared: Shared,
    semaphore: Arc<Semaphore>,
    slots: Arc<Slots>,
    mut stop: watch::Receiver<bool>,
) {
    let mut warned_full = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let accepted = tokio::select! {
            a = accept(&listener) => a,
            _ = stop.changed() => return,
        };
        let accepted = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A slot for it: a free one, else the one of the connection that
        // has waited longest for a command, else the next one freed.
        let permit = match Arc::clone(&semaphore).try_acquire_owned() {
            Ok(p) => {
                warned_full = false;
                p
            }
            Err(_) => {
                if !warned_full {
                    tracing::warn!(
                        "engine.max_connections reached; a new connection takes the slot of the one idle longest"
                    );
                    warned_full = true;
                }
                let mut evicted = false;
                loop {
                    if !evicted {
                        evicted = slots.evict_one();
                    }
                    tokio::select! {
                        p = Arc::clone(&semaphore).acquire_owned() => match p {
                            Ok(p) => break p,
                            Err(_) => return,
                        },
                        // Until one has waited long enough to be closed.
                        () = tokio::time::sleep(EVICT_AFTER / 4), if !evicted => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        };
        let slot = slots.join();
        let (shared, stop) = (shared.clone(), stop.clone());
        match accepted {
            Accepted::Unix(s) => {
                tokio::spawn(async move {
                    connection(s, "unix".to_string(), shared, stop, slot).await;
                    drop(permit);
                });
            }
            Accepted::Tcp(s, peer) => {
                if let Err(e) = s.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY: {e}");
                }
                tokio::spawn(async move {
                    connection(s, peer, shared, stop, slot).await;
                    drop(permit);
                });
            }
        }
    }
}

enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream, String),
}

async fn accept(l: &Listener) -> io::Result<Accepted> {
    match l {
        Listener::Unix(l, _) => Ok(Accepted::Unix(l.accept().await?.0)),
        Listener::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            Ok(Accepted::Tcp(s, peer.to_string()))
        }
    }
}

/// One milter connection: read, decode, handle, write once per step.
///
/// Three clocks bound it, all `engine.idle_timeout` long: the wait for
/// each command (restarted by a complete command only, not by every byte,
/// so a command trickled a byte at a time still ends), the whole message
/// from its first header to its end (Postfix's own `milter_content_timeout`
/// is 300 s), and each write (a peer that stops reading).
async fn connection<S>(
    mut stream: S,
    peer: String,
    shared: Shared,
    mut stop: watch::Receiver<bool>,
    slot: Arc<Slot>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::time::Instant;
    let mut session = Session::new(shared.clone());
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = BytesMut::with_capacity(4 * 1024);
    let mut stopping = *stop.borrow();
    let mut idle = shared.current().config.engine.idle_timeout;
    let mut command_deadline = Instant::now() + idle;
    let mut message_deadline: Option<Instant> = None;
    slot.waiting();
    loop {
        // Handle every complete command already read.
        let mut handled = false;
        loop {
            match decode_command(&mut input, DEFAULT_MAX_PACKET) {
                Ok(Some(cmd)) => {
                    if !handled {
                        slot.busy();
                        handled = true;
                    }
                    command_deadline = Instant::now() + idle;
                    match handle_timed(&mut session, &shared, cmd, &mut output).await {
                        Ok(Flow::Continue) => {}
                        Ok(Flow::Close) => {
                            let _ = flush(&mut stream, &mut output, idle).await;
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(
                                "{}: closing milter connection from {peer}: {e}",
                                session.queue_id()
                            );
                            let _ = flush(&mut stream, &mut output, idle).await;
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // The stream is out of step; answers to the commands
                    // before the bad packet still go out.
                    tracing::warn!(
                        "{}: closing milter connection from {peer}: {e}",
                        session.queue_id()
                    );
                    let _ = flush(&mut stream, &mut output, idle).await;
                    return;
                }
            }
        }
        // One write for all replies of this step.
        if let Err(e) = flush(&mut stream, &mut output, idle).await {
            tracing::warn!("{}: write to {peer} failed: {e}", session.queue_id());
            return;
        }
        if stopping && session.is_idle() {
            return;
        }
        if session.is_idle() {
            message_deadline = None;
            idle = shared.current().config.engine.idle_timeout;
        } else if message_deadline.is_none() {
            message_deadline = Some(Instant::now() + idle);
        }
        let deadline = message_deadline.map_or(command_deadline, |m| m.min(command_deadline));
        // Waiting for the next command since now; bytes of an unfinished
        // command do not restart this clock.
        if handled {
            slot.waiting();
        }
        tokio::select! {
            read = tokio::time::timeout_at(deadline, stream.read_buf(&mut input)) => match read {
                Err(_) => {
                    if message_deadline.is_some_and(|m| m <= Instant::now()) {
                        tracing::warn!(
                            "{}: closing milter connection from {peer}: the message took longer than {}s",
                            session.queue_id(),
                            idle.as_secs()
                        );
                    } else if input.is_empty() {
                        tracing::info!("closing milter connection from {peer}: idle for {}s", idle.as_secs());
                    } else {
                        tracing::warn!(
                            "{}: closing milter connection from {peer}: a command took longer than {}s to arrive",
                            session.queue_id(),
                            idle.as_secs()
                        );
                    }
                    return;
                }
                Ok(Ok(0)) => {
                    if !session.is_idle() {
                        tracing::warn!("{}: the MTA closed the connection in the middle of a message", session.queue_id());
                    }
                    return;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!("{}: read from {peer} failed: {e}", session.queue_id());
                    return;
                }
            },
            () = slot.evict.notified() => {
                tracing::warn!(
                    "{}: closing milter connection from {peer} to make room for a new one (engine.max_connections)",
                    session.queue_id()
                );
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_err() || session.is_idle() {
                    return;
                }
            }
        }
    }
}

/// Writes the replies, giving up after `limit` (a peer that does not
/// read).
async fn flush<S: AsyncWrite + Unpin>(
    stream: &mut S,
    out: &mut BytesMut,
    limit: Duration,
) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let r = match tokio::time::timeout(limit, stream.write_all(out)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the peer read nothing for {}s", limit.as_secs()),
        )),
    };
    out.clear();
    r
}
