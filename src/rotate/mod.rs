//! `dkimctl rotate DOMAIN [--continue]`: replacing a domain's keys with no
//! moment in which mail is signed by a key receivers cannot find.
//!
//! A rotation is three runs, each idempotent (run it twice and the second
//! run changes nothing and says so), each saying what it did and what
//! comes next:
//!
//! 1. `rotate DOMAIN`: generates a key per algorithm the domain signs with,
//!    adds it to dkim.toml with `state = "pending"`, and prints the record
//!    to publish. Nothing signs with it yet.
//! 2. `rotate DOMAIN --continue`, once the record is published: looks every
//!    pending key's record up (the same judgement as `dns check`). Only if
//!    all are visible and correct does the pending key become `active` and
//!    the key it replaces `retiring`, with `retire_after = today + grace`;
//!    otherwise nothing changes (exit 1). `dkimctl apply` then makes the
//!    engine sign with the new key. The old record stays published so mail
//!    in flight still verifies.
//! 3. `rotate DOMAIN --continue` on or after `retire_after`: the retiring
//!    key becomes `retired`, its private key is archived (or deleted, per
//!    `[rotation] retired_keys`), and the revoked record (empty `p=`) to
//!    publish in its place is printed.
//!
//! # Selector names
//!
//! New selectors are the date, `YYYYMMDD`, plus `r` (RSA) or `e` (Ed25519)
//! when the domain signs with both algorithms: `20261128`, or `20261128r`
//! and `20261128e`. If a name is taken (by a key of the domain or a file on
//! disk), `b`, `c`, ... is appended: `20261128b`, `20261128rb`.
//!
//! # Safety of the edits
//!
//! dkim.toml is edited with `toml_edit` ([`crate::config::edit`]), so comments and layout
//! survive; the edited text is validated with [`config::parse`] before it
//! is written, atomically (temporary file in the same directory, rename),
//! keeping the file's mode and owner. New private keys are written (mode
//! 0600, owned by the service user when it exists under the root) before
//! dkim.toml names them, and removed again if dkim.toml cannot be written.
//! Retired keys are archived only after dkim.toml says they are retired.
//!
//! [`decide`] only reads: it returns a [`Step`] (new key files, the edited
//! dkim.toml, key files to retire) that [`crate::apply::rotation`] carries
//! out, and the report to print.
//!
//! # Unattended: `rotate --auto`
//!
//! [`decide_what`] with [`Readiness::Given`] lets `rotate --auto`
//! (`crate::cli::rotate`) decide the switch from its own checks at every
//! authoritative server and the resolver, and [`next_rotation`] says when
//! `[rotation] every` starts the next rotation; selectors follow `[rotation]
//! selector` (`{host}`, [`host_label`]; `{date}`).
//!
//! What this does not do: publish records ([`crate::dns::publish`] does,
//! when `[dns] update` allows it), or reload the engine (apply does).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::model::{Algorithm, Config, Domain, Key, KeyState, PublishRetired, RetiredKeys};
use crate::config::types::Date;
use crate::config::validate::{default_key_path, normalize_domain};
use crate::config::{self, Source};
use crate::dns::{self, DnsError, Live, PrivateKeys, Status, TxtResolver};
use crate::host::Root;
use crate::host::accounts;
use crate::keys::{self, KeyPair};

use crate::config::edit::{self, EditError, NewKey};

/// Why a rotation step could not be done. Nothing was changed unless the
/// message says otherwise.
#[derive(Debug)]
pub enum RotateError {
    /// dkim.toml could not be read.
    Load(config::LoadError),
    /// dkim.toml has errors.
    InvalidConfig {
        /// The file, as named by the user.
        file: String,
        /// Every diagnostic, rendered.
        diagnostics: Vec<String>,
    },
    /// The domain is not in dkim.toml.
    UnknownDomain {
        /// The domain asked for.
        domain: String,
        /// The configured domains.
        configured: Vec<String>,
    },
    /// The domain takes its keys from another domain.
    SharedKeys {
        /// The domain asked for.
        domain: String,
        /// The domain that owns the keys.
        owner: String,
    },
    /// An active key has no key file yet.
    NoKeyYet {
        /// The domain.
        domain: String,
        /// The key's selector.
        selector: String,
        /// The missing file.
        path: PathBuf,
    },
    /// A key file exists but cannot be used.
    Key(keys::LoadError),
    /// Key generation failed.
    Generate(keys::GenerateError),
    /// The service user could not be looked up.
    Accounts(Box<dyn std::error::Error + Send + Sync>),
    /// No selector name was free.
    NoFreeSelector {
        /// The last name tried.
        tried: String,
    },
    /// dkim.toml could not be edited.
    Edit {
        /// The file.
        file: String,
        /// Why.
        source: EditError,
    },
    /// The edited dkim.toml did not validate (a bug; nothing was written).
    EditInvalid {
        /// The file.
        file: String,
        /// The diagnostics of the edited text.
        diagnostics: Vec<String>,
    },
    /// The resolver could not be set up.
    Dns(DnsError),
    /// Writing the report failed.
    Output(io::Error),
}

impl fmt::Display for RotateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotateError::Load(e) => write!(f, "{e}"),
            RotateError::InvalidConfig { file, diagnostics } => {
                write!(
                    f,
                    "{file} has errors; nothing was done (run `dkimctl check`)"
                )?;
                for d in diagnostics {
                    write!(f, "\n  {d}")?;
                }
                Ok(())
            }
            RotateError::UnknownDomain { domain, configured } => write!(
                f,
                "{domain} is not configured in dkim.toml (configured: {})",
                if configured.is_empty() {
                    "none".to_string()
                } else {
                    configured.join(", ")
                }
            ),
            RotateError::SharedKeys { domain, owner } => write!(
                f,
                "{domain} takes its keys from {owner} (key_from); rotate {owner} instead, which \
                 rotates both"
            ),
            RotateError::NoKeyYet {
                domain,
                selector,
                path,
            } => write!(
                f,
                "{domain} has no key yet ({selector}: {} does not exist); run `dkimctl keys \
                 generate` and publish its record first",
                path.display()
            ),
            RotateError::Key(_) => write!(f, "an active key cannot be used; nothing was changed"),
            RotateError::Generate(e) => write!(f, "{e}"),
            RotateError::Accounts(_) => write!(f, "failed to look up the service user"),
            RotateError::NoFreeSelector { tried } => {
                write!(f, "no free selector name for today (tried up to {tried})")
            }
            RotateError::Edit { file, .. } => write!(f, "failed to edit {file}"),
            RotateError::EditInvalid { file, diagnostics } => {
                write!(
                    f,
                    "the edited {file} would not be valid; nothing was written"
                )?;
                for d in diagnostics {
                    write!(f, "\n  {d}")?;
                }
                Ok(())
            }
            RotateError::Dns(e) => write!(f, "{e}"),
            RotateError::Output(_) => write!(f, "failed to write the report"),
        }
    }
}

impl std::error::Error for RotateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RotateError::Load(e) => Some(e),
            RotateError::Edit { source, .. } => Some(source),
            RotateError::Accounts(e) => Some(&**e),
            RotateError::Output(e) => Some(e),
            RotateError::Dns(e) => e.source(),
            RotateError::Key(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for RotateError {
    fn from(e: io::Error) -> RotateError {
        RotateError::Output(e)
    }
}

/// What one run of `dkimctl rotate` decided: what to write, in which
/// order (see [`crate::apply::rotation`]), and what to tell the admin.
#[derive(Debug)]
pub struct Step {
    /// The exit code once carried out: 0 done or nothing to do, 1 the new
    /// record is not (correctly) published yet so nothing was switched, 2
    /// its lookup failed.
    pub code: i32,
    /// New private keys, written first.
    pub new_keys: Vec<NewKeyFile>,
    /// The edited dkim.toml, written after the new keys.
    pub config_text: Option<String>,
    /// Keys whose private key file goes away once dkim.toml says they are
    /// retired.
    pub retire: Vec<Key>,
    /// Archive or delete those files.
    pub retired_keys: RetiredKeys,
    /// Publish them first, if configured (deniability).
    pub publish_retired: Option<PublishRetired>,
    /// The key directory (new directories below it get the service
    /// user's owner).
    pub key_dir: PathBuf,
    /// The service user's uid and group's gid, when they exist under the
    /// root (otherwise `dkimctl apply` sets the owner later).
    pub owner: (Option<u32>, Option<u32>),
    /// Printed first.
    head: String,
    /// Printed after one line per retired key.
    tail: String,
}

/// A new private key file.
#[derive(Debug)]
pub struct NewKeyFile {
    /// Host path.
    pub path: PathBuf,
    /// The key.
    pub pair: KeyPair,
}

impl Step {
    /// A run that changes nothing.
    fn report(code: i32, head: Vec<u8>, ctx: &Ctx<'_>) -> Step {
        Step {
            code,
            new_keys: Vec::new(),
            config_text: None,
            retire: Vec::new(),
            retired_keys: ctx.config.rotation.retired_keys,
            publish_retired: ctx.config.rotation.publish_retired.clone(),
            key_dir: ctx.config.service.key_dir.clone(),
            owner: (None, None),
            head: String::from_utf8_lossy(&head).into_owned(),
            tail: String::new(),
        }
    }

    /// True when carrying the step out writes something.
    pub fn writes(&self) -> bool {
        !self.new_keys.is_empty() || self.config_text.is_some() || !self.retire.is_empty()
    }

    /// Prints the report; `retired` says, per key in [`Step::retire`], what
    /// was done with its file.
    pub fn print(&self, retired: &[String], out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.head.as_bytes())?;
        for (k, what) in self.retire.iter().zip(retired) {
            writeln!(out, "  {} ({}) is retired; {what}", k.selector, k.algorithm)?;
        }
        out.write_all(self.tail.as_bytes())
    }
}

/// One step of `dkimctl rotate DOMAIN [--continue]` (see the module
/// docs), decided without writing anything. `nameserver` is asked instead
/// of the system's resolvers when checking that new records are visible;
/// `today` is the date (UTC) used for selector names, `created` and
/// `retire_after`.
pub fn decide(
    source: &Source,
    root: &Root,
    domain: &str,
    cont: bool,
    nameserver: Option<SocketAddr>,
    today: Date,
) -> Result<Step, RotateError> {
    let mut resolver = |timeout: Duration| -> Result<Box<dyn TxtResolver>, DnsError> {
        Ok(Box::new(Live::new(nameserver, timeout)?))
    };
    decide_with(source, root, domain, cont, today, &mut resolver)
}

/// Makes a resolver when one is needed, given the configured DNS timeout.
pub type ResolverFactory<'a> = dyn FnMut(Duration) -> Result<Box<dyn TxtResolver>, DnsError> + 'a;

/// [`decide`] with any resolver (tests use [`dns::Fixed`]).
pub fn decide_with(
    source: &Source,
    root: &Root,
    domain: &str,
    cont: bool,
    today: Date,
    resolver: &mut ResolverFactory<'_>,
) -> Result<Step, RotateError> {
    let what = if cont {
        What::Advance(Readiness::Lookup(resolver))
    } else {
        What::Start
    };
    decide_what(source, root, domain, today, what)
}

/// Whether the pending keys' records are ready for the switch.
pub enum Readiness<'r, 'a> {
    /// Look each pending key's record up now and judge it (`rotate
    /// --continue`).
    Lookup(&'r mut ResolverFactory<'a>),
    /// Decided by the caller (`rotate --auto`, from the checks at every
    /// authoritative server, the resolver and the TTL): `Ok(())` ready,
    /// else the exit code and why not (one line each).
    Given(Result<(), (i32, Vec<String>)>),
}

/// What a run is to do.
pub enum What<'r, 'a> {
    /// Step 1: new pending keys.
    Start,
    /// Steps 2 and 3: switch when ready, retire what is due.
    Advance(Readiness<'r, 'a>),
}

/// One step for `domain`, decided without writing anything.
pub fn decide_what(
    source: &Source,
    root: &Root,
    domain: &str,
    today: Date,
    what: What<'_, '_>,
) -> Result<Step, RotateError> {
    let text = fs::read_to_string(&source.real).map_err(|e| {
        RotateError::Load(config::LoadError {
            path: source.real.clone(),
            source: e,
        })
    })?;
    let config = valid_config(&text, source)?;
    let d = find_domain(&config, domain)?;
    let ctx = Ctx {
        source,
        root,
        config: &config,
        domain: d,
        text: &text,
        today,
        host: host_label(),
    };
    ctx.check_active_keys()?;
    match what {
        What::Advance(readiness) => ctx.advance(readiness),
        What::Start => ctx.start(),
    }
}

/// The short host name as a selector-safe label (`{host}` in `[rotation]
/// selector`): the first label of gethostname(2), lower case, anything
/// but letters, digits and `-` turned into `-`.
pub fn host_label() -> String {
    let name = nix::unistd::gethostname()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let first = name.split('.').next().unwrap_or("").to_ascii_lowercase();
    let label: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(20)
        .collect();
    let label = label.trim_matches('-').to_string();
    if label.is_empty() {
        "host".to_string()
    } else {
        label
    }
}

/// The day a domain's next rotation is due under `[rotation] every`: the
/// creation day of its oldest active key plus `every` (a key without
/// `created` counts from its file's modification time). `None` when
/// `every` is not set or the domain has no active key.
pub fn next_rotation(config: &Config, root: &Root, domain: &Domain) -> Option<Date> {
    let every = config.rotation.every?;
    domain
        .keys
        .iter()
        .filter(|k| k.state == KeyState::Active)
        .filter_map(|k| key_created(root, k))
        .min()
        .map(|created| created.after(every))
}

/// A key's creation day: `created`, else its file's modification day.
pub fn key_created(root: &Root, key: &Key) -> Option<Date> {
    if let Some(c) = key.created {
        return Some(c);
    }
    let meta = fs::symlink_metadata(root.join(&key.path)).ok()?;
    let secs = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Date::from_ymd(1970, 1, 1)?
        .add_days(i64::try_from(secs / 86_400).ok()?)
        .into()
}

/// Parses and validates, rendering every diagnostic into the error.
fn valid_config(text: &str, source: &Source) -> Result<Config, RotateError> {
    let loaded = config::parse(text, source);
    match loaded.config {
        Some(c) if !loaded.diags.has_errors() => Ok(c),
        _ => Err(RotateError::InvalidConfig {
            file: source.display.clone(),
            diagnostics: loaded
                .diags
                .sorted()
                .iter()
                .map(|d| d.to_string())
                .collect(),
        }),
    }
}

fn find_domain<'c>(config: &'c Config, domain: &str) -> Result<&'c Domain, RotateError> {
    let unknown = || RotateError::UnknownDomain {
        domain: domain.to_string(),
        configured: config.domains.iter().map(|d| d.name.clone()).collect(),
    };
    let name = normalize_domain(domain).map_err(|_| unknown())?;
    let d = config
        .domains
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(unknown)?;
    if let Some(owner) = &d.key_from {
        return Err(RotateError::SharedKeys {
            domain: d.name.clone(),
            owner: owner.clone(),
        });
    }
    Ok(d)
}

/// One run's inputs.
struct Ctx<'a> {
    source: &'a Source,
    root: &'a Root,
    config: &'a Config,
    domain: &'a Domain,
    text: &'a str,
    today: Date,
    /// `{host}` in selector names.
    host: String,
}

/// A key generated in step 1, not yet written.
struct Generated {
    selector: String,
    pair: KeyPair,
    /// Host path.
    path: PathBuf,
}

impl Ctx<'_> {
    fn name(&self) -> &str {
        &self.domain.name
    }

    /// The domains whose records publish this domain's keys: itself and
    /// every domain with `key_from` naming it.
    fn publishers(&self) -> Vec<&Domain> {
        self.config
            .domains
            .iter()
            .filter(|o| {
                o.name == self.domain.name || o.key_from.as_deref() == Some(&self.domain.name)
            })
            .collect()
    }

    fn keys(&self, state: KeyState) -> impl Iterator<Item = &Key> {
        self.domain.keys.iter().filter(move |k| k.state == state)
    }

    /// Every active key must exist and load: rotating away from a key that
    /// was never generated makes no sense, and a corrupt key is reported
    /// (naming the file) before anything is touched.
    fn check_active_keys(&self) -> Result<(), RotateError> {
        for k in self.keys(KeyState::Active) {
            let real = self.root.join(&k.path);
            if !real.exists() {
                return Err(RotateError::NoKeyYet {
                    domain: self.name().to_string(),
                    selector: k.selector.clone(),
                    path: k.path.clone(),
                });
            }
            keys::load_private_key(&real).map_err(RotateError::Key)?;
        }
        Ok(())
    }

    // ---- step 1: new pending keys -------------------------------------

    fn start(&self) -> Result<Step, RotateError> {
        let mut out: Vec<u8> = Vec::new();
        let out = &mut out;
        let pending: Vec<&Key> = self.keys(KeyState::Pending).collect();
        if !pending.is_empty() {
            let list: Vec<String> = pending
                .iter()
                .map(|k| match &k.created {
                    Some(c) => format!("{} (created {c})", k.selector),
                    None => k.selector.clone(),
                })
                .collect();
            writeln!(
                out,
                "rotate {}: a rotation is already under way (pending: {}); nothing changed",
                self.name(),
                list.join(", ")
            )?;
            let mut privates = PrivateKeys::new(self.root);
            let mut records = Vec::new();
            for k in &pending {
                match privates.get(k) {
                    Ok(public) => records.extend(self.records_for(k, public)),
                    Err(why) => writeln!(out, "warning: {why}")?,
                }
            }
            self.print_records(out, publish_heading(records.len()), &records)?;
            self.print_next_publish(out)?;
            return Ok(Step::report(0, std::mem::take(out), self));
        }

        let generated = self.generate()?;
        let new_keys: Vec<NewKey> = generated
            .iter()
            .map(|g| {
                let mut fields = vec![
                    ("selector", g.selector.clone()),
                    ("algorithm", g.pair.algorithm.as_str().to_string()),
                ];
                if g.path
                    != default_key_path(&self.config.service.key_dir, self.name(), &g.selector)
                {
                    fields.push(("path", g.path.display().to_string()));
                }
                fields.push(("state", "pending".to_string()));
                fields.push(("created", self.today.to_string()));
                NewKey { fields }
            })
            .collect();
        let (new_text, notes) =
            edit::add_keys(self.text, self.name(), &new_keys).map_err(|e| self.edit_error(e))?;
        let expect: Vec<(&str, KeyState)> = generated
            .iter()
            .map(|g| (g.selector.as_str(), KeyState::Pending))
            .collect();
        self.validate_edit(&new_text, &expect)?;

        writeln!(
            out,
            "rotate {}: new key(s), state \"pending\" (not signing yet):",
            self.name()
        )?;
        for g in &generated {
            writeln!(
                out,
                "  {:<12} {} {} bits  {}",
                g.selector,
                g.pair.algorithm,
                g.pair.bits,
                g.path.display()
            )?;
        }
        if let Some(sel) = &notes.converted_selector {
            writeln!(
                out,
                "{}: turned `selector = \"{sel}\"` into a [[domain.key]] table (state = \"active\")",
                self.source.display
            )?;
        }
        for g in &generated {
            writeln!(
                out,
                "{}: added [[domain.key]] selector = \"{}\", state = \"pending\", created = \"{}\"",
                self.source.display, g.selector, self.today
            )?;
        }
        let records: Vec<(String, String)> = generated
            .iter()
            .flat_map(|g| {
                let key = Key {
                    selector: g.selector.clone(),
                    algorithm: g.pair.algorithm,
                    path: g.path.clone(),
                    rsa_bits: g.pair.bits,
                    state: KeyState::Pending,
                    created: Some(self.today),
                    retire_after: None,
                    owner_domain: self.name().to_string(),
                };
                self.records_for(&key, &g.pair.public)
            })
            .collect();
        self.print_records(out, publish_heading(records.len()), &records)?;
        self.print_next_publish(out)?;
        let mut step = Step::report(0, std::mem::take(out), self);
        step.owner = self.service_owner()?;
        step.config_text = Some(new_text);
        step.new_keys = generated
            .into_iter()
            .map(|g| NewKeyFile {
                path: g.path,
                pair: g.pair,
            })
            .collect();
        Ok(step)
    }

    /// Generates one key per algorithm the domain signs with, under fresh
    /// selector names.
    fn generate(&self) -> Result<Vec<Generated>, RotateError> {
        let algorithms = &self.domain.algorithms;
        let selectors = self.free_selectors(algorithms)?;
        let mut out = Vec::new();
        for (alg, selector) in algorithms.iter().zip(selectors) {
            // The new key is made like the one it replaces: same size, same
            // directory.
            let current = self.keys(KeyState::Active).find(|k| k.algorithm == *alg);
            let bits = current.map_or(self.config.signing.rsa_bits, |k| k.rsa_bits);
            let dir = current
                .and_then(|k| k.path.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| self.config.service.key_dir.join(self.name()));
            let pair = keys::generate(*alg, bits).map_err(RotateError::Generate)?;
            out.push(Generated {
                path: dir.join(format!("{selector}.private")),
                selector,
                pair,
            });
        }
        Ok(out)
    }

    /// `[rotation] selector` with `{date}` as `YYYYMMDD` and `{host}` as
    /// the host's label (+ `r`/`e` when dual-signing) (+ `b`, `c`, ...
    /// when taken), the same letter for every algorithm.
    fn free_selectors(&self, algorithms: &[Algorithm]) -> Result<Vec<String>, RotateError> {
        let base = self
            .config
            .rotation
            .selector
            .replace("{date}", &self.today.compact())
            .replace("{host}", &self.host);
        let dual = algorithms.len() > 1;
        let mut last = String::new();
        for letter in std::iter::once(None).chain(('b'..='z').map(Some)) {
            let names: Vec<String> = algorithms
                .iter()
                .map(|alg| {
                    let mut s = base.clone();
                    if dual {
                        s.push(match alg {
                            Algorithm::RsaSha256 => 'r',
                            Algorithm::Ed25519Sha256 => 'e',
                        });
                    }
                    if let Some(c) = letter {
                        s.push(c);
                    }
                    s
                })
                .collect();
            let taken = |s: &String| {
                self.domain.keys.iter().any(|k| &k.selector == s)
                    || self
                        .root
                        .join(&self.domain_dir().join(format!("{s}.private")))
                        .exists()
                    || self.keys(KeyState::Active).any(|k| {
                        k.path.parent().is_some_and(|dir| {
                            self.root.join(&dir.join(format!("{s}.private"))).exists()
                        })
                    })
            };
            if !names.iter().any(taken) {
                return Ok(names);
            }
            last = names.join(", ");
        }
        Err(RotateError::NoFreeSelector { tried: last })
    }

    fn domain_dir(&self) -> PathBuf {
        self.config.service.key_dir.join(self.name())
    }

    /// (name, zone-form record) of `key` under every publishing domain.
    fn records_for(&self, key: &Key, public: &keys::PublicKey) -> Vec<(String, String)> {
        self.publishers()
            .iter()
            .map(|p| {
                let name = keys::record_name(&key.selector, &p.name);
                let value = keys::record_value(public.algorithm(), public, p.record);
                let zone = keys::zone_form(&name, &value);
                (name, zone)
            })
            .collect()
    }

    fn print_records(
        &self,
        out: &mut dyn Write,
        heading: &str,
        records: &[(String, String)],
    ) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        writeln!(out)?;
        writeln!(out, "{heading}")?;
        writeln!(out)?;
        for (_, zone) in records {
            writeln!(out, "{zone}")?;
        }
        writeln!(out)
    }

    fn print_next_publish(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "Next: publish it, wait for the TTL, then run `dkimctl rotate {} --continue`.",
            self.name()
        )
    }

    // ---- steps 2 and 3: switch, retire ----------------------------------

    fn advance(&self, readiness: Readiness<'_, '_>) -> Result<Step, RotateError> {
        let mut out: Vec<u8> = Vec::new();
        let out = &mut out;
        let name = self.name().to_string();
        let mut changes: Vec<(String, &'static str, String)> = Vec::new();
        let mut expect: Vec<(String, KeyState)> = Vec::new();
        let mut said: Vec<String> = Vec::new();
        let mut next: Vec<String> = Vec::new();
        let retire_on = self.today.after(self.config.rotation.grace);

        // Step 2: switch to the pending keys, if every record is right.
        let pending: Vec<&Key> = self.keys(KeyState::Pending).collect();
        let auto = matches!(readiness, Readiness::Given(_));
        let mut code = 0;
        let ready = match readiness {
            _ if pending.is_empty() => false,
            Readiness::Given(Ok(())) => true,
            Readiness::Given(Err((c, why))) => {
                // No switch yet; what is due is still retired.
                code = c;
                next.extend(why);
                false
            }
            Readiness::Lookup(resolver) => {
                let resolver =
                    resolver(self.config.engine.dns_timeout).map_err(RotateError::Dns)?;
                let mut privates = PrivateKeys::new(self.root);
                let mut problems = Vec::new();
                for k in &pending {
                    for p in self.publishers() {
                        let f = dns::check_key(resolver.as_ref(), &mut privates, p, k);
                        if f.status != Status::Ok {
                            problems.push(f);
                        }
                    }
                }
                if !problems.is_empty() {
                    writeln!(
                        out,
                        "rotate {name}: new record not yet published -> no switch; nothing changed"
                    )?;
                    for f in &problems {
                        writeln!(out, "  {} {}: {}", f.status.as_str(), f.name, f.message)?;
                        if let Some(fix) = &f.fix {
                            for line in fix.lines() {
                                writeln!(out, "    {line}")?;
                            }
                        }
                    }
                    let failed = problems.iter().any(|f| f.status == Status::DnsError);
                    if failed {
                        writeln!(
                            out,
                            "Next: make sure the name server answers, then run `dkimctl rotate {name} --continue` again."
                        )?;
                        return Ok(Step::report(2, std::mem::take(out), self));
                    }
                    writeln!(
                        out,
                        "Next: publish the record(s), wait for the TTL, then run `dkimctl rotate {name} --continue` again."
                    )?;
                    return Ok(Step::report(1, std::mem::take(out), self));
                }
                true
            }
        };
        if ready {
            for k in &pending {
                changes.push((k.selector.clone(), "state", "active".into()));
                expect.push((k.selector.clone(), KeyState::Active));
                said.push(format!(
                    "{} ({}) is now active: its record is published",
                    k.selector, k.algorithm
                ));
                for old in self
                    .keys(KeyState::Active)
                    .filter(|o| o.algorithm == k.algorithm)
                {
                    changes.push((old.selector.clone(), "state", "retiring".into()));
                    changes.push((old.selector.clone(), "retire_after", retire_on.to_string()));
                    expect.push((old.selector.clone(), KeyState::Retiring));
                    said.push(format!(
                        "{} ({}) is now retiring; its record stays published until {retire_on}",
                        old.selector, old.algorithm
                    ));
                }
            }
            if !auto {
                next.push("run `dkimctl apply` so the engine signs with the new key".to_string());
            }
        }

        // Step 3: retire what is due.
        let mut due: Vec<&Key> = Vec::new();
        for k in self.keys(KeyState::Retiring) {
            match k.retire_after {
                Some(date) if date <= self.today => due.push(k),
                Some(date) if auto => next.push(format!(
                    "{} retires on {date} (in {} day(s))",
                    k.selector,
                    self.today.days_until(date)
                )),
                Some(date) => next.push(format!(
                    "{} retires on {date} (in {} day(s)): run `dkimctl rotate {name} --continue` on or after that day",
                    k.selector,
                    self.today.days_until(date)
                )),
                None => {
                    changes.push((k.selector.clone(), "retire_after", retire_on.to_string()));
                    said.push(format!("{} is retiring but had no retire_after; set it to {retire_on}", k.selector));
                    next.push(format!(
                        "{} retires on {retire_on}: run `dkimctl rotate {name} --continue` on or after that day",
                        k.selector
                    ));
                }
            }
        }
        for k in &due {
            changes.push((k.selector.clone(), "state", "retired".into()));
            expect.push((k.selector.clone(), KeyState::Retired));
        }
        // Retired keys whose file is still in place (an earlier run that
        // failed after editing dkim.toml) are finished as well.
        let leftover: Vec<&Key> = self
            .keys(KeyState::Retired)
            .filter(|k| self.root.join(&k.path).exists())
            .collect();

        if changes.is_empty() && leftover.is_empty() {
            if next.is_empty() {
                writeln!(
                    out,
                    "rotate {name}: nothing to do: no pending key, no retiring key"
                )?;
            } else {
                writeln!(out, "rotate {name}: nothing to do yet; nothing changed")?;
                for n in &next {
                    writeln!(out, "Next: {n}.")?;
                }
            }
            return Ok(Step::report(code, std::mem::take(out), self));
        }

        let mut config_text = None;
        if !changes.is_empty() {
            let new_text =
                edit::set_fields(self.text, &name, &changes).map_err(|e| self.edit_error(e))?;
            let expect: Vec<(&str, KeyState)> =
                expect.iter().map(|(s, st)| (s.as_str(), *st)).collect();
            self.validate_edit(&new_text, &expect)?;
            config_text = Some(new_text);
        }
        writeln!(out, "rotate {name}:")?;
        for s in &said {
            writeln!(out, "  {s}")?;
        }
        let mut step = Step::report(code, std::mem::take(out), self);
        step.config_text = config_text;
        let mut tail: Vec<u8> = Vec::new();
        let out = &mut tail;
        let mut revoked = Vec::new();
        for k in due.iter().chain(leftover.iter()) {
            step.retire.push((*k).clone());
            for p in self.publishers() {
                let rname = keys::record_name(&k.selector, &p.name);
                let zone = keys::zone_form(&rname, &keys::revoked_record_value(k.algorithm));
                revoked.push((rname, zone));
            }
        }
        if !changes.is_empty() {
            writeln!(out, "  {} updated", self.source.display)?;
        }
        if !revoked.is_empty() {
            self.print_records(
                out,
                "Publish the revoked record(s) in place of the old one(s):",
                &revoked,
            )?;
        }
        for n in &next {
            writeln!(out, "Next: {n}.")?;
        }
        if next.is_empty() {
            writeln!(out, "Next: nothing; the rotation of {name} is complete.")?;
        }
        step.tail = String::from_utf8_lossy(&tail).into_owned();
        Ok(step)
    }

    // ---- shared -----------------------------------------------------------

    fn edit_error(&self, e: EditError) -> RotateError {
        RotateError::Edit {
            file: self.source.display.clone(),
            source: e,
        }
    }

    /// The edited text must validate and say what the edit meant.
    fn validate_edit(&self, text: &str, expect: &[(&str, KeyState)]) -> Result<(), RotateError> {
        let loaded = config::parse(text, self.source);
        let invalid = |diagnostics: Vec<String>| RotateError::EditInvalid {
            file: self.source.display.clone(),
            diagnostics,
        };
        let config = match loaded.config {
            Some(c) if !loaded.diags.has_errors() => c,
            _ => {
                return Err(invalid(
                    loaded
                        .diags
                        .sorted()
                        .iter()
                        .map(|d| d.to_string())
                        .collect(),
                ));
            }
        };
        let d = config
            .domains
            .iter()
            .find(|d| d.name == self.domain.name)
            .ok_or_else(|| invalid(vec![format!("{} vanished", self.domain.name)]))?;
        for (sel, state) in expect {
            if !d
                .keys
                .iter()
                .any(|k| k.selector == *sel && k.state == *state)
            {
                return Err(invalid(vec![format!(
                    "{sel} is not {} after the edit",
                    state.as_str()
                )]));
            }
        }
        Ok(())
    }

    /// The service user's uid and group's gid under the root, when they
    /// exist there; otherwise `dkimctl apply` sets the owner later.
    fn service_owner(&self) -> Result<(Option<u32>, Option<u32>), RotateError> {
        let accounts = accounts::load(self.root).map_err(|e| RotateError::Accounts(Box::new(e)))?;
        let service = &self.config.service;
        let uid = accounts.user(&service.user).map(|u| u.uid);
        let gid = accounts.group(&service.group).map(|g| g.gid);
        Ok((uid, gid))
    }
}

fn publish_heading(n: usize) -> &'static str {
    if n == 1 {
        "Publish this record (ONE TXT record; its strings belong together):"
    } else {
        "Publish these records (each ONE TXT record; its strings belong together):"
    }
}

#[cfg(test)]
mod tests;
