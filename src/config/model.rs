//! The validated model of `dkim.toml`.
//!
//! Every value here has been checked by [`super::validate`]: defaults are
//! filled in, names are normalised (IDN domains in their A-label form,
//! sockets in one notation), and cross-references (shared keys, selectors)
//! are resolved. Later stages (render, plan, keys, serve) take a [`Config`]
//! and need no further checks of the file itself.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::types::Date;
pub use crate::formats::names::HostPattern;
pub use crate::keys::{Algorithm, RecordFlags};

/// The whole, validated DKIM setup of one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where `dkim.toml` lives on the host (e.g. `/etc/dkimctl/dkim.toml`),
    /// as named in rendered file headers.
    pub source: PathBuf,
    /// The milter service: engine, identity, socket.
    pub service: Service,
    /// Signing defaults (canonicalization, algorithms, headers).
    pub signing: Signing,
    /// Hosts whose mail is signed, and hosts ignored when verifying.
    pub trusted: Trusted,
    /// Every signing domain, in file order.
    pub domains: Vec<Domain>,
    /// The MTA that talks to the milter.
    pub mta: Mta,
    /// Run-time settings of the bundled engine (`dkimctl serve`).
    pub engine: Engine,
    /// How `dkimctl rotate` names and retires keys.
    pub rotation: Rotation,
    /// How records are published (`dkimctl dns publish`).
    pub dns: Dns,
}

/// Which program serves the milter socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// `dkimctl serve`, the bundled engine.
    Bundled,
    /// OpenDKIM, configured through a rendered opendkim.conf.
    OpenDkim,
}

impl EngineKind {
    /// The word used in `dkim.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Bundled => "bundled",
            EngineKind::OpenDkim => "opendkim",
        }
    }

    /// Where its keys live unless `key_dir` says otherwise.
    pub fn default_key_dir(self) -> &'static str {
        match self {
            EngineKind::Bundled => "/etc/dkimctl/keys",
            EngineKind::OpenDkim => "/etc/opendkim/keys",
        }
    }

    /// The other engine.
    pub fn other(self) -> EngineKind {
        match self {
            EngineKind::Bundled => EngineKind::OpenDkim,
            EngineKind::OpenDkim => EngineKind::Bundled,
        }
    }
}

/// Whether the milter signs, verifies or both (OpenDKIM's `Mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatingMode {
    /// Sign mail from trusted hosts and authenticated senders only.
    Sign,
    /// Verify incoming mail only.
    Verify,
    /// Sign outgoing mail and verify incoming mail.
    SignVerify,
}

impl OperatingMode {
    /// True when the milter signs.
    pub fn signs(self) -> bool {
        matches!(self, OperatingMode::Sign | OperatingMode::SignVerify)
    }
    /// True when the milter verifies.
    pub fn verifies(self) -> bool {
        matches!(self, OperatingMode::Verify | OperatingMode::SignVerify)
    }
    /// OpenDKIM's `Mode` letters.
    pub fn opendkim(self) -> &'static str {
        match self {
            OperatingMode::Sign => "s",
            OperatingMode::Verify => "v",
            OperatingMode::SignVerify => "sv",
        }
    }
    /// The word used in `dkim.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatingMode::Sign => "sign",
            OperatingMode::Verify => "verify",
            OperatingMode::SignVerify => "sign+verify",
        }
    }
}

/// The `[service]` table, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Which engine serves the socket.
    pub engine: EngineKind,
    /// System user the milter runs as.
    pub user: String,
    /// Primary group of that user.
    pub group: String,
    /// Where the milter listens.
    pub socket: Socket,
    /// A TCP socket on a non-loopback address was explicitly allowed.
    pub allow_remote_socket: bool,
    /// Group that owns the socket's directory and may connect (the MTA's
    /// group, `postfix` by default with Postfix).
    pub socket_group: String,
    /// The umask the milter applies to the socket it creates.
    pub umask: u32,
    /// Sign, verify or both.
    pub mode: OperatingMode,
    /// The authserv-id in Authentication-Results headers (RFC 8601); the
    /// host name when unset.
    pub authserv_id: Option<String>,
    /// Directory that holds one folder of keys per domain.
    pub key_dir: PathBuf,
    /// Bundled engine: systemd creates the socket (a `.socket` unit).
    pub socket_activation: bool,
    /// Path of the dkimctl binary named in the rendered units.
    pub binary: PathBuf,
}

/// A milter socket in one normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socket {
    /// A unix-domain socket at an absolute host path.
    Unix(PathBuf),
    /// A TCP socket.
    Inet {
        /// Host as written (`localhost`, `127.0.0.1`, `::1`).
        host: String,
        /// TCP port.
        port: u16,
    },
}

impl Socket {
    /// OpenDKIM's notation: `local:/path` or `inet:PORT@HOST`
    /// (`inet6:PORT@[HOST]` for IPv6 literals).
    pub fn opendkim(&self) -> String {
        match self {
            Socket::Unix(p) => format!("local:{}", p.display()),
            Socket::Inet { host, port } if host.contains(':') => {
                format!("inet6:{port}@[{host}]")
            }
            Socket::Inet { host, port } => format!("inet:{port}@{host}"),
        }
    }

    /// Postfix's notation: `unix:/path` or `inet:HOST:PORT`. A unix path
    /// under a chroot directory is given relative to it, as chrooted
    /// smtpd and cleanup see it.
    pub fn postfix(&self, chroot: Option<&Path>) -> String {
        match self {
            Socket::Unix(p) => {
                let shown = chroot
                    .and_then(|c| p.strip_prefix(c).ok())
                    .map(|rel| Path::new("/").join(rel))
                    .unwrap_or_else(|| p.clone());
                format!("unix:{}", shown.display())
            }
            Socket::Inet { host, port } if host.contains(':') => {
                format!("inet:[{host}]:{port}")
            }
            Socket::Inet { host, port } => format!("inet:{host}:{port}"),
        }
    }

    /// The unix socket path, if this is one.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            Socket::Unix(p) => Some(p),
            Socket::Inet { .. } => None,
        }
    }

    /// The TCP address to bind (`localhost` means 127.0.0.1).
    pub fn inet_addr(&self) -> Option<SocketAddr> {
        match self {
            Socket::Unix(_) => None,
            Socket::Inet { host, port } => {
                let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
                    IpAddr::from([127, 0, 0, 1])
                } else {
                    host.parse().ok()?
                };
                Some(SocketAddr::new(ip, *port))
            }
        }
    }
}

impl fmt::Display for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socket::Unix(p) => write!(f, "unix:{}", p.display()),
            Socket::Inet { host, port } if host.contains(':') => {
                write!(f, "inet:[{host}]:{port}")
            }
            Socket::Inet { host, port } => write!(f, "inet:{host}:{port}"),
        }
    }
}

pub use crate::keys::Canon;

/// The `[defaults]` table: how messages are signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Signing {
    /// Header canonicalization.
    pub header_canon: Canon,
    /// Body canonicalization.
    pub body_canon: Canon,
    /// Algorithms every domain signs with unless it overrides them; two
    /// algorithms mean dual signing.
    pub algorithms: Vec<Algorithm>,
    /// Size of newly generated RSA keys.
    pub rsa_bits: u32,
    /// Header fields to sign (`h=`), in order.
    pub sign_headers: Vec<String>,
    /// Header fields signed once more than they occur, so none can be
    /// added (RFC 6376 §8.15); always includes `From`.
    pub oversign_headers: Vec<String>,
    /// Signature lifetime (`x=`), if any.
    pub expire: Option<Duration>,
    /// DNS record flags for every domain unless it overrides them.
    pub record: RecordFlags,
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Addr(a) => write!(f, "{a}"),
            HostPattern::Net(a, l) => write!(f, "{a}/{l}"),
            HostPattern::Name(n) => f.write_str(n),
        }
    }
}

/// The `[trusted]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Trusted {
    /// Hosts whose mail is signed (OpenDKIM's `InternalHosts`).
    pub internal_hosts: Vec<HostPattern>,
    /// Hosts whose mail is not verified (OpenDKIM's `ExternalIgnoreList`).
    pub external_ignore: Vec<HostPattern>,
}

impl Trusted {
    /// True when a client address is an internal host.
    pub fn is_internal(&self, ip: IpAddr) -> bool {
        self.internal_hosts.iter().any(|h| h.contains(ip))
    }
}

/// Where a key is in its life (see `dkimctl rotate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Generated and published (or about to be), not yet used to sign.
    Pending,
    /// Signs mail.
    Active,
    /// No longer signs; its record stays published until the grace period
    /// ends so that mail in flight still verifies.
    Retiring,
    /// Revoked: its record is published with an empty `p=`; the private
    /// key is archived or deleted.
    Retired,
}

impl KeyState {
    /// The word used in `dkim.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }
    /// True when the key's private half must exist on disk.
    pub fn needs_private_key(self) -> bool {
        !matches!(self, KeyState::Retired)
    }
}

/// One key of a domain: a selector and the private key behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The selector (`s=`), in lower case.
    pub selector: String,
    /// The algorithm this key signs with.
    pub algorithm: Algorithm,
    /// Absolute host path of the private key (PKCS#8 PEM).
    pub path: PathBuf,
    /// Size for RSA key generation.
    pub rsa_bits: u32,
    /// Life-cycle state.
    pub state: KeyState,
    /// Date the key was created (`YYYY-MM-DD`), if recorded.
    pub created: Option<Date>,
    /// Date after which a retiring key is retired (`YYYY-MM-DD`).
    pub retire_after: Option<Date>,
    /// The domain that owns the key file: this domain, or the domain named
    /// by `key_from`.
    pub owner_domain: String,
}

/// One signing domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    /// The domain in A-label (punycode) form, lower case: `d=`.
    pub name: String,
    /// Also sign for subdomains of this domain (`*@*.example.com`).
    pub subdomains: bool,
    /// Algorithms this domain signs with.
    pub algorithms: Vec<Algorithm>,
    /// Its keys: own keys, or the keys of the domain named in `key_from`.
    pub keys: Vec<Key>,
    /// The domain whose key files this one shares, if any.
    pub key_from: Option<String>,
    /// DNS record flags.
    pub record: RecordFlags,
}

impl Domain {
    /// The keys that sign right now (one per algorithm).
    pub fn signing_keys(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter(|k| k.state == KeyState::Active)
    }
}

/// What Postfix does when the milter is unavailable
/// (`milter_default_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MilterDefault {
    /// Pass the message without the milter (it goes out unsigned).
    Accept,
    /// Try again later: nothing goes out unsigned.
    Tempfail,
    /// Reject the message.
    Reject,
}

impl MilterDefault {
    /// The Postfix value.
    pub fn as_str(self) -> &'static str {
        match self {
            MilterDefault::Accept => "accept",
            MilterDefault::Tempfail => "tempfail",
            MilterDefault::Reject => "reject",
        }
    }
}

/// A Postfix service that gets the milter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostfixService {
    /// Every smtpd: main.cf `smtpd_milters`.
    Smtpd,
    /// Local submission (sendmail command, qmqpd): `non_smtpd_milters`.
    NonSmtpd,
    /// A named master.cf service (e.g. `submission`): `-o smtpd_milters=`.
    Master(String),
}

/// The Postfix side.
#[derive(Debug, Clone, PartialEq)]
pub struct Postfix {
    /// Postfix's configuration directory (`/etc/postfix`).
    pub config_dir: PathBuf,
    /// Postfix's queue directory, the chroot of its daemons.
    pub queue_directory: PathBuf,
    /// True when smtpd and cleanup run chrooted (Debian's default).
    pub chroot: bool,
    /// Services that get the milter.
    pub services: Vec<PostfixService>,
    /// `milter_default_action`.
    pub default_action: MilterDefault,
}

impl Postfix {
    /// The socket as Postfix names it (relative to the chroot if chrooted).
    pub fn milter_address(&self, socket: &Socket) -> String {
        socket.postfix(self.chroot.then_some(self.queue_directory.as_path()))
    }
}

/// The MTA that talks to the milter.
#[derive(Debug, Clone, PartialEq)]
pub enum Mta {
    /// Postfix: main.cf and master.cf are edited.
    Postfix(Postfix),
    /// Sendmail: an `INPUT_MAIL_FILTER` line in sendmail.mc.
    Sendmail {
        /// Path of sendmail.mc.
        mc_path: PathBuf,
    },
    /// No MTA integration is managed.
    None,
}

impl Mta {
    /// The group the MTA's processes run in, which must reach the socket:
    /// Postfix's smtpd and cleanup run as postfix. Sendmail's daemon
    /// talks to milters as root (Debian's sendmail.mc sets no
    /// `RunAsUser`), and smmsp, the user of `sendmail -t`, never talks to
    /// a milter (submit.cf has none): no group is needed.
    pub fn group(&self) -> Option<&'static str> {
        match self {
            Mta::Postfix(_) => Some("postfix"),
            Mta::Sendmail { .. } | Mta::None => None,
        }
    }
}

/// What the engine does with a message in a given failure case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let the message through (unsigned, or with the verification result).
    Accept,
    /// Ask the MTA to try again later (4xx).
    Tempfail,
    /// Reject the message (5xx).
    Reject,
}

impl Action {
    /// The word used in `dkim.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Tempfail => "tempfail",
            Action::Reject => "reject",
        }
    }
}

/// The `[engine.on_failure]` table: one action per failure case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// A message to sign whose From domain has no key. Default: accept
    /// (the host relays for a domain it does not sign for).
    pub no_key: Action,
    /// The key cannot be read or parsed. Default: tempfail.
    pub key_unreadable: Action,
    /// Signing failed. Default: tempfail.
    pub sign_error: Action,
    /// Verification hit a DNS error (temperror). Default: accept.
    pub dns_error: Action,
    /// A signature did not verify. Default: accept (DMARC decides).
    pub bad_signature: Action,
    /// An incoming message carries no signature. Default: accept.
    pub no_signature: Action,
    /// A message with no or several From headers (RFC 6376 §8.15) that
    /// would otherwise be signed. Default: reject.
    pub bad_from: Action,
    /// A message to verify that exceeds `verify_max_size`. Default: accept
    /// (with an Authentication-Results comment saying it was not checked).
    pub oversized: Action,
}

/// The `[engine]` table: run-time settings of `dkimctl serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    /// MTA daemon names (`{daemon_name}` macro; Postfix's
    /// `milter_macro_daemon_name`) whose mail is signed.
    pub sign_daemon_names: Vec<String>,
    /// Most connections served at once.
    pub max_connections: usize,
    /// An idle connection is closed after this long.
    pub idle_timeout: Duration,
    /// Timeout of one DNS query when verifying.
    pub dns_timeout: Duration,
    /// Name servers to ask instead of the system resolver.
    pub nameservers: Vec<SocketAddr>,
    /// Largest message buffered for verification.
    pub verify_max_size: u64,
    /// Largest header block accepted.
    pub max_header_size: u64,
    /// Refuse keys readable by others (OpenDKIM's `RequireSafeKeys`).
    pub require_safe_keys: bool,
    /// Loopback address of the OpenMetrics endpoint, if enabled.
    pub metrics: Option<SocketAddr>,
    /// Failure actions.
    pub on_failure: FailurePolicy,
}

/// What happens to a retired private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetiredKeys {
    /// Moved to `<key dir>/<domain>/retired/`.
    Archive,
    /// Deleted.
    Delete,
}

/// The `[rotation]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    /// How long a replaced key stays published before it is retired.
    pub grace: Duration,
    /// Archive or delete retired private keys.
    pub retired_keys: RetiredKeys,
    /// `rotate --auto` starts a rotation once the active key is this old;
    /// `None`: never on its own (and no timer is rendered).
    pub every: Option<Duration>,
    /// How new selectors are named: `{date}` (`YYYYMMDD`, required) and
    /// `{host}` (the short host name) in a selector-safe text.
    pub selector: String,
    /// Publish retired private keys for deniability, if set.
    pub publish_retired: Option<PublishRetired>,
}

/// `[rotation] publish_retired` and `publish_retired_url`: where retired
/// private keys are published, so that old signatures prove nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRetired {
    /// Host directory a web server publishes.
    pub dir: PathBuf,
    /// The URL of that directory, ending in `/`.
    pub url: String,
}

/// The `[dns]` table: how `dkimctl dns publish` and `rotate --auto` make
/// DNS match dkim.toml.
#[derive(Debug, Clone, PartialEq)]
pub struct Dns {
    /// The publishing method.
    pub update: DnsUpdate,
    /// The zone every record lies in; `None`: each domain's zone is found
    /// by an SOA lookup.
    pub zone: Option<String>,
    /// TTL of published records.
    pub ttl: Duration,
    /// The servers that must serve a record before `rotate --auto` switches
    /// to its key; empty: the zone's name servers (NS), on port 53.
    pub authoritative: Vec<SocketAddr>,
}

/// How records get published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsUpdate {
    /// Printed for the admin to publish (the default).
    Manual,
    /// RFC 2136 dynamic updates signed with TSIG (RFC 8945).
    Rfc2136 {
        /// The primary server; `None`: the zone's SOA MNAME, port 53.
        server: Option<SocketAddr>,
        /// Host path of the key file (`tsig-keygen` format, mode 0600).
        tsig_key_file: PathBuf,
    },
    /// Records written into a zone file (or `$INCLUDE` fragment), then a
    /// reload command run.
    Zonefile {
        /// Host path of the file dkimctl owns.
        path: PathBuf,
        /// The command that makes the server load it (argv, no shell);
        /// empty: none.
        reload: Vec<String>,
    },
}

impl DnsUpdate {
    /// The word used in dkim.toml.
    pub fn as_str(&self) -> &'static str {
        match self {
            DnsUpdate::Manual => "manual",
            DnsUpdate::Rfc2136 { .. } => "rfc2136",
            DnsUpdate::Zonefile { .. } => "zonefile",
        }
    }
}
