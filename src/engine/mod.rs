//! The bundled signing engine: `dkimctl serve`, a DKIM milter, and the
//! one-shot `dkimctl sign` / `dkimctl verify`.
//!
//! ```text
//! dkim.toml -load-> Config -State::build (keys, resolver)-> Arc<State>
//! socket -server (accept, frames)-> session (per connection) -policy-> dkim sign / verify
//!                                   <- replies, one write per step
//! ```
//!
//! - [`server`]: listeners (unix socket, loopback TCP, systemd socket
//!   activation), the accept loop with its connection cap, signals
//!   (SIGHUP reload, SIGTERM drain), privilege drop, sd_notify.
//! - [`session`]: one milter connection as a state machine over decoded
//!   commands; no sockets and no clock, so byte vectors test it.
//! - [`policy`]: sign, verify or pass; which domain signs.
//!
//! [`State`] is everything a message needs that comes from the
//! configuration: the validated [`Config`], the loaded keys and the DNS
//! resolver. A reload builds a new one completely and swaps it in
//! ([`Shared`]); a message keeps the snapshot it started with.

pub mod metrics;
pub mod policy;
pub mod server;
pub mod session;

pub use server::{ServeOptions, serve};

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::config::Config;
use crate::config::model::{Algorithm, Domain, Key};
use crate::dkim::{
    HeaderField, MessageSigner, SignError, SignOptions, Signer, VerifyResult, header_names,
    split_message,
};
use crate::dns::DnsError;
use crate::dns::resolver::Resolver;
use crate::host::Root;
use crate::keys::{LoadError, check_key_file_mode, load_private_key};
use crate::render::credential_name;

/// A key of a domain, ready or not.
#[derive(Debug, Clone)]
pub enum KeySlot {
    /// Loaded and tested: signs.
    Ready(Arc<Signer>),
    /// Configured as active but unusable (unreadable, unparseable, refused
    /// by the crypto library); messages for its domain get the
    /// `on_failure.key_unreadable` action.
    Unusable {
        /// The key's selector.
        selector: String,
        /// Its algorithm.
        algorithm: Algorithm,
        /// Why, naming the file (never key material).
        reason: String,
    },
}

/// Everything the engine needs from one configuration load.
#[derive(Debug)]
pub struct State {
    /// The validated configuration.
    pub config: Config,
    /// Active keys by signing domain name.
    keys: HashMap<String, Vec<KeySlot>>,
    /// DNS for verification (`None` when the service does not verify).
    pub resolver: Option<Arc<Resolver>>,
    /// The authserv-id of our Authentication-Results headers.
    pub authserv_id: String,
    /// The settings generation ([`crate::render::generation`]) this state
    /// runs with.
    pub generation: String,
    /// The configured domain names: the only domain labels the metrics
    /// keep (see [`State::metrics_label`]).
    domains: HashSet<String>,
}

/// Why a [`State`] could not be built.
#[derive(Debug)]
pub enum StateError {
    /// A key file is accessible by others and `engine.require_safe_keys`
    /// is on.
    UnsafeKey {
        /// The file.
        path: PathBuf,
        /// What is wrong with its mode.
        why: &'static str,
    },
    /// A key is unusable and the caller asked for every key to load (a
    /// reload, which keeps the previous keys instead).
    Key(KeyError),
    /// The resolver could not be set up.
    Resolver(DnsError),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::UnsafeKey { path, why } => write!(
                f,
                "refusing key {}: it is {why} (engine.require_safe_keys; chmod 600 or 640 it)",
                path.display()
            ),
            StateError::Key(e) => e.fmt(f),
            StateError::Resolver(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::Key(e) => e.source(),
            _ => None,
        }
    }
}

/// Why one key could not be turned into a [`Signer`].
#[derive(Debug)]
pub enum KeyError {
    /// Mode bits unsafe under `require_safe_keys`.
    Unsafe {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
    /// Cannot be read or parsed, or cannot sign.
    Load(LoadError),
    /// The key loaded but a test signature failed.
    Sign {
        /// The file.
        path: PathBuf,
        /// Why.
        error: SignError,
    },
    /// The file's algorithm is not the configured one.
    WrongAlgorithm {
        /// The file.
        path: PathBuf,
        /// What the configuration says.
        configured: Algorithm,
        /// What the file holds.
        found: Algorithm,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Unsafe { path, why } => {
                write!(f, "key {} is {why}", path.display())
            }
            KeyError::Load(e) => write!(f, "key {} cannot be used", e.path.display()),
            KeyError::Sign { path, error } => {
                write!(f, "key {} cannot sign: {error}", path.display())
            }
            KeyError::WrongAlgorithm {
                path,
                configured,
                found,
            } => write!(
                f,
                "key {} is an {found} key, but the configuration says {configured}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Load(e) => Some(e),
            _ => None,
        }
    }
}

/// Where a key is read from: systemd's credential
/// (`$CREDENTIALS_DIRECTORY/<selector>._domainkey.<domain>`, see
/// `LoadCredential=` in the rendered unit) when it exists, else the key's
/// path under the root.
pub fn key_file(root: &Root, key: &Key) -> PathBuf {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    key_file_in(root, key, credentials.as_deref())
}

/// [`key_file`] with the credentials directory given.
pub fn key_file_in(root: &Root, key: &Key, credentials: Option<&Path>) -> PathBuf {
    if let Some(dir) = credentials {
        let p = dir.join(credential_name(key));
        if p.is_file() {
            return p;
        }
    }
    root.join(&key.path)
}

/// Loads one key for `domain` and signs a test message with it.
pub fn load_signer(
    root: &Root,
    domain: &str,
    key: &Key,
    require_safe: bool,
) -> Result<Signer, KeyError> {
    let path = key_file(root, key);
    // A missing file is reported by the loader below.
    if require_safe
        && let Ok(meta) = std::fs::metadata(&path)
        && let Some(why) = check_key_file_mode(meta.permissions().mode())
    {
        return Err(KeyError::Unsafe { path, why });
    }
    let loaded = load_private_key(&path).map_err(KeyError::Load)?;
    if loaded.algorithm != key.algorithm {
        return Err(KeyError::WrongAlgorithm {
            path,
            configured: key.algorithm,
            found: loaded.algorithm,
        });
    }
    let signer = Signer::new(
        domain,
        key.selector.clone(),
        loaded.into_signing_key().map_err(KeyError::Load)?,
    );
    signer
        .warm_up()
        .map_err(|error| KeyError::Sign { path, error })?;
    Ok(signer)
}

/// The host name as `gethostname(2)` returns it (from uname(2), so it works
/// under `ProcSubset=pid`, which hides /proc/sys/kernel/hostname), as the
/// default authserv-id.
///
/// Note: a wrong default here is a security problem, not a cosmetic one:
/// forged Authentication-Results headers are removed only when they claim
/// our authserv-id, so with "localhost" a forged header naming the real
/// host would reach the mailbox.
fn host_name() -> String {
    match nix::unistd::gethostname() {
        Ok(name) => {
            let name = name.to_string_lossy();
            let name = name.trim().trim_end_matches('.');
            if name.is_empty() {
                tracing::warn!("the host name is empty; set [service] authserv_id");
                "localhost".to_string()
            } else {
                name.to_string()
            }
        }
        Err(e) => {
            tracing::warn!("cannot read the host name ({e}); set [service] authserv_id");
            "localhost".to_string()
        }
    }
}

impl State {
    /// Loads every active key and sets up the resolver.
    ///
    /// - An unsafe key file under `require_safe_keys` is always an error.
    /// - An otherwise unusable key is an error when `all_keys_must_load`
    ///   (a reload: the running keys stay); else it is kept as
    ///   [`KeySlot::Unusable`] and logged, and its domain's messages get
    ///   `on_failure.key_unreadable` (at start: the rest keeps working).
    /// - `previous`: its resolver (and DNS cache) is reused when the
    ///   name servers and timeout did not change.
    pub fn build(
        config: Config,
        root: &Root,
        previous: Option<&State>,
        all_keys_must_load: bool,
    ) -> Result<State, StateError> {
        let resolver = if config.service.mode.verifies() {
            let e = &config.engine;
            match previous.and_then(|p| p.resolver.as_ref()) {
                Some(r) if r.matches(&e.nameservers, e.dns_timeout) => Some(Arc::clone(r)),
                _ => Some(Arc::new(
                    Resolver::live(&e.nameservers, e.dns_timeout, true)
                        .map_err(StateError::Resolver)?,
                )),
            }
        } else {
            None
        };
        Self::build_with(config, root, resolver, all_keys_must_load)
    }

    /// Like [`State::build`] with a given resolver (tests use
    /// [`Resolver::fixed`]).
    pub fn build_with(
        config: Config,
        root: &Root,
        resolver: Option<Arc<Resolver>>,
        all_keys_must_load: bool,
    ) -> Result<State, StateError> {
        let mut keys: HashMap<String, Vec<KeySlot>> = HashMap::new();
        if config.service.mode.signs() {
            for domain in &config.domains {
                let slots = Self::load_domain(&config, root, domain, all_keys_must_load)?;
                keys.insert(domain.name.clone(), slots);
            }
        }
        let authserv_id = config.service.authserv_id.clone().unwrap_or_else(host_name);
        let generation = crate::render::generation(&config);
        let domains = config.domains.iter().map(|d| d.name.clone()).collect();
        Ok(State {
            config,
            keys,
            resolver,
            authserv_id,
            generation,
            domains,
        })
    }

    fn load_domain(
        config: &Config,
        root: &Root,
        domain: &Domain,
        strict: bool,
    ) -> Result<Vec<KeySlot>, StateError> {
        let mut slots = Vec::new();
        for key in domain.signing_keys() {
            match load_signer(root, &domain.name, key, config.engine.require_safe_keys) {
                Ok(s) => slots.push(KeySlot::Ready(Arc::new(s))),
                Err(KeyError::Unsafe { path, why }) => {
                    return Err(StateError::UnsafeKey { path, why });
                }
                Err(e) if strict => return Err(StateError::Key(e)),
                Err(e) => {
                    let reason = crate::report::chain(&e);
                    tracing::error!(
                        "{reason}; mail from {} will get on_failure.key_unreadable",
                        domain.name
                    );
                    slots.push(KeySlot::Unusable {
                        selector: key.selector.clone(),
                        algorithm: key.algorithm,
                        reason,
                    });
                }
            }
        }
        Ok(slots)
    }

    /// The active keys of a configured signing domain.
    pub fn keys_for(&self, domain: &str) -> &[KeySlot] {
        self.keys.get(domain).map_or(&[], Vec::as_slice)
    }

    /// The metrics label for a message's domain: a configured domain's
    /// name, `""` for none, and `"other"` for any other — which a sender
    /// chose (a `d=`, a From domain), so keeping it would let each sender
    /// add a series that lives as long as the process.
    pub fn metrics_label<'a>(&self, domain: &'a str) -> &'a str {
        if domain.is_empty() || self.domains.contains(domain) {
            domain
        } else {
            "other"
        }
    }

    /// Number of keys ready to sign.
    pub fn ready_keys(&self) -> usize {
        self.keys
            .values()
            .flatten()
            .filter(|k| matches!(k, KeySlot::Ready(_)))
            .count()
    }
}

/// The current [`State`], replaced as a whole on reload.
///
/// Readers take an `Arc` snapshot (a read lock held for a pointer copy);
/// a reload swaps the pointer. Messages already under way keep the state
/// they started with.
#[derive(Debug, Clone)]
pub struct Shared {
    state: Arc<RwLock<Arc<State>>>,
    metrics: Arc<metrics::Metrics>,
}

impl Shared {
    /// Wraps an initial state.
    pub fn new(state: State) -> Shared {
        Shared {
            state: Arc::new(RwLock::new(Arc::new(state))),
            metrics: Arc::default(),
        }
    }

    /// The state in force now.
    pub fn current(&self) -> Arc<State> {
        let guard = self.state.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&guard)
    }

    /// Puts a new state in force.
    pub fn replace(&self, state: State) {
        let mut guard = self.state.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(state);
    }

    /// The counters every connection feeds (kept across reloads).
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }
}

/// Why `dkimctl sign` could not sign a message.
#[derive(Debug)]
pub enum SignFileError {
    /// No usable From header (none, several, no address).
    From(policy::FromError),
    /// The From domain is not configured for signing.
    NoDomain(String),
    /// The domain has no active key.
    NoKey(String),
    /// A key could not be used.
    Key(KeyError),
    /// Signing failed.
    Sign(SignError),
}

impl fmt::Display for SignFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignFileError::From(e) => write!(f, "cannot sign: {e}"),
            SignFileError::NoDomain(d) => {
                write!(
                    f,
                    "cannot sign: {d} is not a signing domain in the configuration"
                )
            }
            SignFileError::NoKey(d) => write!(f, "cannot sign: {d} has no active key"),
            SignFileError::Key(e) => e.fmt(f),
            SignFileError::Sign(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SignFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SignFileError::Key(e) => Some(e),
            SignFileError::Sign(e) => Some(e),
            _ => None,
        }
    }
}

/// The time now in Unix seconds (0 before 1970): the `now` of signing
/// and verifying, taken once per message.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How a configuration signs: canonicalization and lifetime of `[defaults]`.
pub fn sign_options(config: &Config) -> SignOptions {
    SignOptions {
        header_canon: config.signing.header_canon,
        body_canon: config.signing.body_canon,
        expire: config.signing.expire,
    }
}

/// A signer for one message with `signers`, signing the header fields
/// `[defaults]` names (the engine and `dkimctl sign` alike).
pub fn message_signer(
    config: &Config,
    signers: Vec<Arc<Signer>>,
    headers: Vec<HeaderField>,
) -> MessageSigner {
    let s = &config.signing;
    let names = header_names(&s.sign_headers, &s.oversign_headers, &headers);
    MessageSigner::new(signers, sign_options(config), headers, names)
}

/// The From domain of a header block, with the engine's rules (exactly
/// one From header).
pub fn message_from_domain(headers: &[HeaderField]) -> Result<String, policy::FromError> {
    let mut from = headers.iter().filter(|h| h.is("From"));
    let first = from.next().ok_or(policy::FromError::Missing)?;
    let more = from.count();
    if more > 0 {
        return Err(policy::FromError::Several(more + 1));
    }
    policy::from_domain(&first.value)
}

/// Signs `message` (`dkimctl sign FILE`) with the active keys of its From
/// domain at time `now` (Unix seconds), as the engine would: same header
/// selection, same folding. Returns the message with the DKIM-Signature
/// header(s) prepended; line ends of the added headers follow the
/// message's (CRLF or LF).
pub fn sign_file(
    config: &Config,
    root: &Root,
    message: &[u8],
    now: u64,
) -> Result<Vec<u8>, SignFileError> {
    let (headers, body_at) = split_message(message);
    let from = message_from_domain(&headers).map_err(SignFileError::From)?;
    let domain = policy::signing_domain(config, &from).ok_or(SignFileError::NoDomain(from))?;
    let mut signers = Vec::new();
    for key in domain.signing_keys() {
        let s = load_signer(root, &domain.name, key, config.engine.require_safe_keys)
            .map_err(SignFileError::Key)?;
        signers.push(Arc::new(s));
    }
    if signers.is_empty() {
        return Err(SignFileError::NoKey(domain.name.clone()));
    }
    let mut m = message_signer(config, signers, headers);
    m.write_body(message.get(body_at..).unwrap_or_default());
    let sigs = m.finish(now).map_err(SignFileError::Sign)?;
    let lf_only = !message
        .iter()
        .position(|&b| b == b'\n')
        .is_some_and(|i| i > 0 && message.get(i - 1) == Some(&b'\r'));
    let mut out = Vec::with_capacity(message.len() + 1024);
    for sig in &sigs {
        let line = sig.header_line();
        if lf_only {
            out.extend_from_slice(line.replace("\r\n", "\n").as_bytes());
        } else {
            out.extend_from_slice(line.as_bytes());
        }
    }
    out.extend_from_slice(message);
    Ok(out)
}

/// Verifies every DKIM signature of `message` (`dkimctl verify FILE`)
/// at time `now` against DNS: `engine.nameservers` when set, else the
/// system's resolver, with `engine.dns_timeout`, no cache. Bare LF line
/// ends are read as CRLF. An unsigned message gives an empty list.
pub async fn verify_message(
    config: &Config,
    message: &[u8],
    now: u64,
) -> Result<Vec<VerifyResult>, DnsError> {
    let resolver = Arc::new(Resolver::live(
        &config.engine.nameservers,
        config.engine.dns_timeout,
        false,
    )?);
    Ok(crate::dkim::verify(&resolver, message, now).await)
}

/// [`verify_message`] for synchronous callers (it runs its own small
/// runtime; do not call it from inside one).
pub fn verify_message_blocking(
    config: &Config,
    message: &[u8],
    now: u64,
) -> Result<Vec<VerifyResult>, Box<dyn std::error::Error + Send + Sync>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(verify_message(config, message, now))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse};
    use crate::dkim::DkimStatus;
    use crate::dns::Fixed;
    use std::os::unix::fs::PermissionsExt;

    const ED: &str = include_str!("../dkim/testdata/test-only-ed25519.pem");

    fn config(dir: &Path, mode: u32) -> Config {
        let keys = dir.join("etc/dkimctl/keys/example.com");
        std::fs::create_dir_all(&keys).unwrap();
        let p = keys.join("ed1.private");
        std::fs::write(&p, ED).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        let text = r#"
[service]
mode = "sign"
[defaults]
algorithms = ["ed25519-sha256"]
canonicalization = "simple/simple"
[[domain]]
name = "example.com"
[[domain.key]]
selector = "ed1"
algorithm = "ed25519-sha256"
[mta]
kind = "none"
"#;
        let source = Source {
            real: dir.join("dkim.toml"),
            host: "/etc/dkimctl/dkim.toml".into(),
            display: "dkim.toml".into(),
        };
        parse(text, &source).config.expect("valid")
    }

    fn record() -> Fixed {
        let k = crate::keys::parse_private_key(ED.as_bytes(), Path::new("t")).unwrap();
        let value = crate::keys::record_value(k.algorithm, &k.public, Default::default());
        Fixed::new().record("ed1._domainkey.example.com", &[value])
    }

    #[test]
    fn credentials_directory_wins_when_the_file_exists() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), 0o600);
        let key = &c.domains[0].keys[0];
        let root = Root::new(dir.path());
        let creds = dir.path().join("creds");
        std::fs::create_dir_all(&creds).unwrap();
        assert_eq!(
            key_file_in(&root, key, Some(&creds)),
            dir.path().join("etc/dkimctl/keys/example.com/ed1.private")
        );
        std::fs::write(creds.join("ed1._domainkey.example.com"), ED).unwrap();
        assert_eq!(
            key_file_in(&root, key, Some(&creds)),
            creds.join("ed1._domainkey.example.com")
        );
    }

    #[test]
    fn unsafe_key_is_refused_and_unreadable_key_is_kept_as_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let c = config(dir.path(), 0o644);
        let err = State::build_with(c.clone(), &root, None, false).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::UnsafeKey {
                    why: "readable by others",
                    ..
                }
            ),
            "{err}"
        );

        let mut lax = c.clone();
        lax.engine.require_safe_keys = false;
        assert_eq!(
            State::build_with(lax, &root, None, true)
                .unwrap()
                .ready_keys(),
            1
        );

        std::fs::write(
            dir.path().join("etc/dkimctl/keys/example.com/ed1.private"),
            "junk",
        )
        .unwrap();
        std::fs::set_permissions(
            dir.path().join("etc/dkimctl/keys/example.com/ed1.private"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let at_start = State::build_with(c.clone(), &root, None, false).unwrap();
        assert!(matches!(
            at_start.keys_for("example.com"),
            [KeySlot::Unusable { .. }]
        ));
        let on_reload = State::build_with(c, &root, None, true).unwrap_err();
        assert!(
            matches!(on_reload, StateError::Key(KeyError::Load(_))),
            "{on_reload}"
        );
    }

    #[tokio::test]
    async fn sign_file_then_verify_with_lf_line_ends() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let c = config(dir.path(), 0o600);
        let msg = b"From: Joe <joe@example.com>\nSubject: caf\xe9\n\tfolded\n\nbody\n";
        let signed = sign_file(&c, &root, msg, 1_700_000_000).unwrap();
        assert!(signed.starts_with(
            b"DKIM-Signature: v=1; a=ed25519-sha256; s=ed1; d=example.com; c=simple/simple;\n\t"
        ));
        assert!(!signed.contains(&b'\r'), "line ends follow the message");
        assert!(signed.ends_with(msg));
        let (h, _) = split_message(&signed);
        assert_eq!(h[0].name, "DKIM-Signature");
        let resolver = Arc::new(Resolver::fixed(record()));
        let results = crate::dkim::verify(&resolver, &signed, 1_700_000_000).await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].status, DkimStatus::Pass, "{results:?}");

        let two_froms = b"From: a@example.com\nFrom: b@example.com\n\nx\n";
        assert!(matches!(
            sign_file(&c, &root, two_froms, 1),
            Err(SignFileError::From(policy::FromError::Several(2)))
        ));
        assert!(matches!(
            sign_file(&c, &root, b"From: a@example.org\n\nx\n", 1),
            Err(SignFileError::NoDomain(d)) if d == "example.org"
        ));
    }
}
