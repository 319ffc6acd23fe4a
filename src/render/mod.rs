//! Rendering: the validated model -> the list of [`Artifact`]s.
//!
//! Pure: nothing here reads or writes the filesystem. The same list feeds
//! `render --out` (written into a directory), `plan` (compared with the live
//! tree) and `apply`. Templates live in `templates/` and `units/` and are
//! embedded at build time; `--templates DIR` overrides them by file name.
//! Output is deterministic: no timestamps, no host names, sorted where the
//! model has no order of its own.

pub mod artifact;
pub mod templates;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

pub use artifact::{
    Artifact, ArtifactKind, PostfixMainEdit, PostfixMasterEdit, Reload, SendmailMcEdit,
};

use crate::config::model::*;
use crate::config::validate::default_key_path;

/// Rendering failed (a template error: an override with a mistake in it,
/// or a missing variable under strict mode).
#[derive(Debug)]
pub struct RenderError {
    /// The template.
    pub template: String,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failed to render template {}: {}",
            self.template, self.message
        )
    }
}

impl std::error::Error for RenderError {}

/// The systemd units that run the engine, in the order they are
/// (re)started.
pub fn engine_units(config: &Config) -> Vec<String> {
    match config.service.engine {
        EngineKind::OpenDkim => vec!["opendkim.service".into()],
        EngineKind::Bundled if config.service.socket_activation => {
            vec!["dkimctl.socket".into(), "dkimctl.service".into()]
        }
        EngineKind::Bundled => vec!["dkimctl.service".into()],
    }
}

/// The artifacts of the engine `config` does not name, as if it named
/// it: after a switch of engine, the files of the old one that dkimctl
/// rendered are among these ([`crate::plan::add_leftovers`] removes them).
/// Empty when they cannot be rendered.
pub fn replaced_engine_artifacts(
    config: &Config,
    templates: &templates::Templates,
) -> Vec<Artifact> {
    let mut other = config.clone();
    other.service.engine = config.service.engine.other();
    render(&other, templates).unwrap_or_default()
}

/// The credential name under which systemd hands a key to the bundled
/// engine (`LoadCredential=`): the record name, which is unique per key.
pub fn credential_name(key: &Key) -> String {
    crate::keys::record_name(&key.selector, &key.owner_domain)
}

/// Renders every artifact the model asks for.
pub fn render(
    config: &Config,
    templates: &templates::Templates,
) -> Result<Vec<Artifact>, RenderError> {
    let r = Renderer {
        c: config,
        t: templates,
    };
    let mut out = Vec::new();
    r.keys(&mut out);
    r.socket_dir(&mut out)?;
    r.accounts(&mut out)?;
    match config.service.engine {
        EngineKind::OpenDkim => r.opendkim(&mut out)?,
        EngineKind::Bundled => r.bundled(&mut out)?,
    }
    r.mta(&mut out);
    if config.rotation.every.is_some() {
        r.rotation_units(&mut out)?;
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

struct Renderer<'a> {
    c: &'a Config,
    t: &'a templates::Templates,
}

impl Renderer<'_> {
    fn header(&self, comment: &str) -> String {
        format!(
            "{comment} Managed by dkimctl from {}; local edits will be overwritten.\n\
             {comment} Change dkim.toml instead, then run `dkimctl plan` and `dkimctl apply`.\n",
            self.c.source.display()
        )
    }

    fn file(
        &self,
        template: &str,
        ctx: Value,
        path: &str,
        owner: (&str, &str, u32),
        reload: Reload,
    ) -> Result<Artifact, RenderError> {
        let text = self.t.render(template, &ctx)?;
        Ok(Artifact {
            path: PathBuf::from(path),
            kind: ArtifactKind::File(text.into_bytes()),
            owner: owner.0.to_string(),
            group: owner.1.to_string(),
            mode: owner.2,
            reload,
        })
    }

    fn dir(&self, path: &Path, owner: &str, group: &str, mode: u32) -> Artifact {
        Artifact {
            path: path.to_path_buf(),
            kind: ArtifactKind::Directory,
            owner: owner.into(),
            group: group.into(),
            mode,
            reload: Reload::None,
        }
    }

    /// Key directories (0750, the service's) and one private key artifact
    /// per key that must exist.
    fn keys(&self, out: &mut Vec<Artifact>) {
        let s = &self.c.service;
        // Sets, not lists: ten thousand domains are rendered in linear
        // time (the output is sorted at the end anyway).
        let mut dirs: std::collections::BTreeSet<PathBuf> = std::collections::BTreeSet::new();
        let mut keys: std::collections::HashSet<&Path> = std::collections::HashSet::new();
        for d in self.c.domains.iter().filter(|d| d.key_from.is_none()) {
            for k in d.keys.iter().filter(|k| k.state.needs_private_key()) {
                // Two domains may name one key file by `path`: one artifact.
                if !keys.insert(&k.path) {
                    continue;
                }
                // Only directories inside the key directory are ours to
                // own; a key kept elsewhere (the ArchWiki Security setup
                // keeps it in /etc/opendkim) leaves its directory alone.
                if let Some(parent) = k.path.parent() {
                    for anc in parent.ancestors() {
                        if !anc.starts_with(&s.key_dir) || !dirs.insert(anc.to_path_buf()) {
                            break;
                        }
                    }
                }
                // A key at the engine's default place may be at the other
                // engine's default place already (a switch of engine): the
                // selector's published key is that one.
                let dir = Path::new(s.engine.default_key_dir());
                let default = default_key_path(dir, &k.owner_domain, &k.selector);
                let reuse = if k.path == default {
                    let other = Path::new(s.engine.other().default_key_dir());
                    vec![default_key_path(other, &k.owner_domain, &k.selector)]
                } else {
                    Vec::new()
                };
                out.push(Artifact {
                    path: k.path.clone(),
                    kind: ArtifactKind::PrivateKey {
                        algorithm: k.algorithm,
                        rsa_bits: k.rsa_bits,
                        reuse,
                    },
                    owner: s.user.clone(),
                    group: s.group.clone(),
                    mode: 0o600,
                    reload: Reload::Engine,
                });
            }
        }
        for d in dirs {
            out.push(self.dir(&d, &s.user, &s.group, 0o750));
        }
    }

    /// The unix socket's directory, when it is not a runtime directory that
    /// systemd creates: owned by the service, group of the MTA, 0750, so
    /// only the MTA can reach the socket.
    fn socket_dir(&self, out: &mut Vec<Artifact>) -> Result<(), RenderError> {
        let s = &self.c.service;
        let Some(dir) = self.persistent_socket_dir() else {
            return Ok(());
        };
        out.push(self.dir(&dir, &s.user, &s.socket_group, 0o750));
        let ctx = json!({
            "header": self.header("#"),
            "dirs": [{"path": unit_value(&dir), "mode": "0750", "user": s.user, "group": s.socket_group}],
        });
        out.push(self.file(
            "tmpfiles.conf.hbs",
            ctx,
            "/etc/tmpfiles.d/dkimctl.conf",
            ("root", "root", 0o644),
            Reload::None,
        )?);
        Ok(())
    }

    /// The socket's directory unless it lies in /run (a RuntimeDirectory)
    /// or systemd creates the socket itself.
    fn persistent_socket_dir(&self) -> Option<PathBuf> {
        let s = &self.c.service;
        let dir = s.socket.unix_path()?.parent()?.to_path_buf();
        if dir.starts_with("/run") {
            return None;
        }
        Some(dir)
    }

    /// The runtime directory name when the socket lies in /run/NAME.
    fn runtime_directory(&self) -> Option<String> {
        let dir = self.c.service.socket.unix_path()?.parent()?;
        let rel = dir.strip_prefix("/run").ok()?;
        (!rel.as_os_str().is_empty()).then(|| unit_value(rel))
    }

    fn accounts(&self, out: &mut Vec<Artifact>) -> Result<(), RenderError> {
        let s = &self.c.service;
        let mut memberships = Vec::new();
        if let Some(mta_group) = self.c.mta.group() {
            // The MTA reaches the socket through the service's group
            // (socket mode 0660), as the ArchWiki page does by adding
            // postfix to the opendkim group.
            let mta_user = mta_group;
            memberships.push(json!({"user": mta_user, "group": s.group}));
        }
        let description = match s.engine {
            EngineKind::Bundled => "dkimctl DKIM milter",
            EngineKind::OpenDkim => "OpenDKIM DKIM milter",
        };
        let ctx = json!({
            "header": self.header("#"),
            "user": s.user,
            "group": s.group,
            "description": description,
            "memberships": memberships,
        });
        out.push(self.file(
            "sysusers.conf.hbs",
            ctx,
            "/etc/sysusers.d/dkimctl.conf",
            ("root", "root", 0o644),
            Reload::None,
        )?);
        Ok(())
    }

    /// `IPAddressDeny=any` unless a remote socket was allowed; the allow
    /// list holds localhost and the configured name servers, or nothing
    /// when the service has no network at all.
    fn ip_policy(&self, private_network: bool) -> (bool, Option<String>) {
        if self.c.service.allow_remote_socket {
            return (false, None);
        }
        if private_network {
            return (true, None);
        }
        let mut allow = vec!["localhost".to_string()];
        if self.c.service.mode.verifies() {
            for ns in &self.c.engine.nameservers {
                let ip = ns.ip().to_string();
                if !allow.contains(&ip) && !ns.ip().is_loopback() {
                    allow.push(ip);
                }
            }
        }
        (true, Some(allow.join(" ")))
    }

    /// The directories of keys kept below /home, /root or /run/user
    /// (Mail-in-a-Box keeps them in /home/user-data), which
    /// `ProtectHome=yes` would hide from OpenDKIM; space-separated, `None`
    /// when there are none.
    fn key_dirs_in_home(&self) -> Option<String> {
        let mut dirs: Vec<String> = Vec::new();
        for d in &self.c.domains {
            for k in d.keys.iter().filter(|k| k.state.needs_private_key()) {
                let in_home = ["/home", "/root", "/run/user"]
                    .iter()
                    .any(|h| k.path.starts_with(h));
                if let Some(dir) = k.path.parent().filter(|_| in_home) {
                    let dir = dir.display().to_string();
                    if !dirs.contains(&dir) {
                        dirs.push(dir);
                    }
                }
            }
        }
        (!dirs.is_empty()).then(|| dirs.join(" "))
    }

    /// Read-write paths: the socket directory outside /run.
    fn read_write_paths(&self) -> Option<String> {
        self.persistent_socket_dir().map(|d| unit_value(&d))
    }

    fn bundled(&self, out: &mut Vec<Artifact>) -> Result<(), RenderError> {
        let c = self.c;
        let s = &c.service;
        let unix = s.socket.unix_path().is_some();
        // Without DNS needs, the engine needs no network at all: a unix
        // socket works across network namespaces, and an activated TCP
        // socket is created by systemd in the host's namespace.
        let private_network =
            !s.mode.verifies() && (unix || s.socket_activation) && c.engine.metrics.is_none();
        let families =
            if private_network || (unix && !s.mode.verifies() && c.engine.metrics.is_none()) {
                "AF_UNIX"
            } else {
                "AF_UNIX AF_INET AF_INET6"
            };
        let (ip_deny, ip_allow) = self.ip_policy(private_network);
        let mut credentials: Vec<Value> = Vec::new();
        for d in c.domains.iter().filter(|d| d.key_from.is_none()) {
            for k in d.keys.iter().filter(|k| k.state.needs_private_key()) {
                credentials.push(json!({"name": credential_name(k), "path": unit_value(&k.path)}));
            }
        }
        let ctx = json!({
            "header": self.header("#"),
            "binary": unit_value(&s.binary),
            "config": unit_value(&c.source),
            "user": s.user,
            "group": s.group,
            "dynamic_user": s.socket_activation && !s.mode.verifies(),
            "socket_activation": s.socket_activation,
            "private_network": private_network,
            "address_families": families,
            "ip_deny": ip_deny,
            "ip_allow": ip_allow,
            "runtime_directory": if s.socket_activation { None } else { self.runtime_directory() },
            "read_write_paths": self.read_write_paths(),
            "credentials": credentials,
        });
        out.push(self.file(
            "dkimctl.service.hbs",
            ctx,
            "/etc/systemd/system/dkimctl.service",
            ("root", "root", 0o644),
            Reload::Units,
        )?);
        if s.socket_activation {
            let listen = match &s.socket {
                Socket::Unix(p) => unit_value(p),
                Socket::Inet { .. } => s
                    .socket
                    .inet_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            };
            let ctx = json!({
                "header": self.header("#"),
                "listen": listen,
                "unix": unix,
                "socket_user": s.user,
                "socket_group": s.group,
                "socket_mode": format!("{:04o}", 0o666 & !s.umask),
            });
            out.push(self.file(
                "dkimctl.socket.hbs",
                ctx,
                "/etc/systemd/system/dkimctl.socket",
                ("root", "root", 0o644),
                Reload::Units,
            )?);
        }
        let ctx = json!({ "header": self.header("#"), "lines": applied_lines(c) });
        out.push(self.file(
            "applied.conf.hbs",
            ctx,
            "/var/lib/dkimctl/applied.conf",
            ("root", "root", 0o644),
            Reload::Engine,
        )?);
        out.push(self.dir(Path::new("/var/lib/dkimctl"), "root", "root", 0o755));
        Ok(())
    }

    fn opendkim(&self, out: &mut Vec<Artifact>) -> Result<(), RenderError> {
        let c = self.c;
        let s = &c.service;
        let sg = &c.signing;
        let header = self.header("#");
        let internal: Vec<String> = c
            .trusted
            .internal_hosts
            .iter()
            .map(|h| h.to_string())
            .collect();
        let external: Vec<String> = c
            .trusted
            .external_ignore
            .iter()
            .map(|h| h.to_string())
            .collect();
        let separate_ignore = internal != external;
        let external_file = if separate_ignore {
            "/etc/opendkim/ExternalIgnoreList"
        } else {
            "/etc/opendkim/TrustedHosts"
        };
        let multiple = c.domains.iter().any(|d| d.signing_keys().count() > 1);
        // OpenDKIM has one global algorithm; validation makes sure every
        // domain signs with the same one.
        let algorithm = c
            .domains
            .iter()
            .flat_map(|d| d.algorithms.first())
            .next()
            .or(sg.algorithms.first())
            .copied()
            .unwrap_or(Algorithm::RsaSha256)
            .to_string();
        let nameservers: Vec<String> = c
            .engine
            .nameservers
            .iter()
            .map(|a| a.ip().to_string())
            .collect();
        let ctx = json!({
            "header": header,
            "socket": s.socket.opendkim(),
            "umask": format!("{:03o}", s.umask),
            "mode": s.mode.opendkim(),
            "authserv_id": s.authserv_id,
            "daemon_names": c.engine.sign_daemon_names.join(","),
            "canonicalization": format!("{}/{}", sg.header_canon.as_str(), sg.body_canon.as_str()),
            "algorithm": algorithm,
            "sign_headers": sg.sign_headers.join(","),
            "oversign_headers": sg.oversign_headers.join(","),
            "expire_secs": sg.expire.map(|d| d.as_secs()),
            "multiple_signatures": multiple,
            "external_ignore_file": external_file,
            "nameservers": (!nameservers.is_empty()).then(|| nameservers.join(",")),
            "require_safe_keys": if c.engine.require_safe_keys { "yes" } else { "no" },
        });
        let conf = ("root", "root", 0o644);
        out.push(self.file(
            "opendkim.conf.hbs",
            ctx,
            "/etc/opendkim/opendkim.conf",
            conf,
            Reload::Engine,
        )?);
        out.push(self.dir(Path::new("/etc/opendkim"), "root", "root", 0o755));

        let mut keys = Vec::new();
        let mut entries = Vec::new();
        for d in &c.domains {
            for k in d.signing_keys() {
                let name = crate::keys::record_name(&k.selector, &d.name);
                keys.push(
                    json!({"name": name, "domain": d.name, "selector": k.selector, "path": k.path}),
                );
                entries.push(json!({"pattern": format!("*@{}", d.name), "key": name}));
                if d.subdomains {
                    entries.push(json!({"pattern": format!("*@*.{}", d.name), "key": name}));
                }
            }
        }
        let ctx = json!({"header": header, "keys": keys});
        out.push(self.file(
            "KeyTable.hbs",
            ctx,
            "/etc/opendkim/KeyTable",
            conf,
            Reload::Engine,
        )?);
        let ctx = json!({"header": header, "entries": entries});
        out.push(self.file(
            "SigningTable.hbs",
            ctx,
            "/etc/opendkim/SigningTable",
            conf,
            Reload::Engine,
        )?);
        let ctx = json!({"header": header, "hosts": internal});
        out.push(self.file(
            "TrustedHosts.hbs",
            ctx,
            "/etc/opendkim/TrustedHosts",
            conf,
            Reload::Engine,
        )?);
        if separate_ignore {
            let ctx = json!({"header": header, "hosts": external});
            out.push(self.file("TrustedHosts.hbs", ctx, external_file, conf, Reload::Engine)?);
        }

        let private_network = !s.mode.verifies() && s.socket.unix_path().is_some();
        let (ip_deny, ip_allow) = self.ip_policy(private_network);
        let families = if private_network {
            "AF_UNIX"
        } else {
            "AF_UNIX AF_INET AF_INET6"
        };
        let ctx = json!({
            "header": header,
            "user": s.user,
            "group": s.group,
            "opendkim": "/usr/sbin/opendkim",
            "private_network": private_network,
            "address_families": families,
            "ip_deny": ip_deny,
            "ip_allow": ip_allow,
            "read_write_paths": self.read_write_paths(),
            "key_paths_in_home": self.key_dirs_in_home(),
        });
        out.push(self.file(
            "opendkim.service.hbs",
            ctx,
            "/etc/systemd/system/opendkim.service",
            ("root", "root", 0o644),
            Reload::Units,
        )?);
        Ok(())
    }

    /// `dkimctl-rotate.timer` and `.service`: `rotate --auto` daily, as
    /// root in a sandbox where only what a rotation touches is writable
    /// and, when every server it asks is known, only those are reachable.
    fn rotation_units(&self, out: &mut Vec<Artifact>) -> Result<(), RenderError> {
        let c = self.c;
        let mut rw: Vec<PathBuf> = Vec::new();
        let mut add = |p: PathBuf| {
            if !rw.iter().any(|x| p.starts_with(x)) {
                rw.retain(|x| !x.starts_with(&p));
                rw.push(p);
            }
        };
        if let Some(dir) = c.source.parent() {
            add(dir.to_path_buf());
        }
        add(c.service.key_dir.clone());
        for d in &c.domains {
            for k in &d.keys {
                if let Some(dir) = k.path.parent() {
                    add(dir.to_path_buf());
                }
            }
        }
        // applied.conf and the DNS state; backups of replaced files.
        add(PathBuf::from("/var/lib/dkimctl"));
        add(PathBuf::from("/var/backups"));
        match c.service.engine {
            // The engine unit's LoadCredential= lines name the keys.
            EngineKind::Bundled => add(PathBuf::from("/etc/systemd/system")),
            EngineKind::OpenDkim => add(PathBuf::from("/etc/opendkim")),
        }
        if let Some(p) = &c.rotation.publish_retired {
            add(p.dir.clone());
        }
        let mut tsig_key = None;
        match &c.dns.update {
            DnsUpdate::Zonefile { path, .. } => {
                if let Some(dir) = path.parent() {
                    add(dir.to_path_buf());
                }
            }
            DnsUpdate::Rfc2136 { tsig_key_file, .. } => tsig_key = Some(tsig_key_file.clone()),
            DnsUpdate::Manual => {}
        }
        rw.sort();
        // Every server a run asks: the resolver, the primary, the
        // authoritative servers. When one is only known at run time (the
        // system resolver, an SOA or NS lookup), no allow list is set.
        let needs_primary = matches!(c.dns.update, DnsUpdate::Rfc2136 { server: None, .. });
        let known =
            !c.engine.nameservers.is_empty() && !c.dns.authoritative.is_empty() && !needs_primary;
        let ip_allow = known.then(|| {
            let mut allow = vec!["localhost".to_string()];
            let mut servers: Vec<std::net::SocketAddr> = c.engine.nameservers.clone();
            servers.extend(&c.dns.authoritative);
            if let DnsUpdate::Rfc2136 {
                server: Some(s), ..
            } = &c.dns.update
            {
                servers.push(*s);
            }
            for s in servers {
                let ip = s.ip().to_string();
                if !s.ip().is_loopback() && !allow.contains(&ip) {
                    allow.push(ip);
                }
            }
            allow.join(" ")
        });
        let rw: Vec<String> = rw.iter().map(|p| unit_value(p)).collect();
        let ctx = json!({
            "header": self.header("#"),
            "binary": unit_value(&c.service.binary),
            "config": unit_value(&c.source),
            "tsig_key": tsig_key.as_deref().map(unit_value),
            "read_write_paths": rw,
            "ip_deny": ip_allow.is_some(),
            "ip_allow": ip_allow,
        });
        out.push(self.file(
            "dkimctl-rotate.service.hbs",
            ctx,
            "/etc/systemd/system/dkimctl-rotate.service",
            ("root", "root", 0o644),
            Reload::Timers,
        )?);
        let ctx = json!({ "header": self.header("#") });
        out.push(self.file(
            "dkimctl-rotate.timer.hbs",
            ctx,
            "/etc/systemd/system/dkimctl-rotate.timer",
            ("root", "root", 0o644),
            Reload::Timers,
        )?);
        Ok(())
    }

    fn mta(&self, out: &mut Vec<Artifact>) {
        let s = &self.c.service;
        match &self.c.mta {
            Mta::None => {}
            Mta::Postfix(p) => {
                let milter = p.milter_address(&s.socket);
                let mut lists = Vec::new();
                let mut services = Vec::new();
                for svc in &p.services {
                    match svc {
                        PostfixService::Smtpd => lists.push("smtpd_milters".to_string()),
                        PostfixService::NonSmtpd => lists.push("non_smtpd_milters".to_string()),
                        PostfixService::Master(name) => services.push((
                            name.clone(),
                            vec![("smtpd_milters".to_string(), milter.clone())],
                        )),
                    }
                }
                out.push(Artifact {
                    path: p.config_dir.join("main.cf"),
                    kind: ArtifactKind::PostfixMain(PostfixMainEdit {
                        set: vec![
                            (
                                "milter_default_action".into(),
                                p.default_action.as_str().into(),
                            ),
                            ("milter_protocol".into(), "6".into()),
                        ],
                        milter_lists: lists,
                        milter: milter.clone(),
                        queue_directory: p.queue_directory.clone(),
                        chroot: p.chroot,
                    }),
                    owner: "root".into(),
                    group: "root".into(),
                    mode: 0o644,
                    reload: Reload::Postfix,
                });
                if !services.is_empty() {
                    out.push(Artifact {
                        path: p.config_dir.join("master.cf"),
                        kind: ArtifactKind::PostfixMaster(PostfixMasterEdit {
                            services,
                            milter,
                            queue_directory: p.queue_directory.clone(),
                            chroot: p.chroot,
                        }),
                        owner: "root".into(),
                        group: "root".into(),
                        mode: 0o644,
                        reload: Reload::Postfix,
                    });
                }
            }
            Mta::Sendmail { mc_path } => {
                let name = sendmail_filter_name(s.engine);
                // F=T: tempfail when the milter is unreachable, so nothing
                // leaves unsigned; the timeouts are sendmail's defaults
                // made explicit.
                let line = format!(
                    "INPUT_MAIL_FILTER(`{name}', `S={}, F=T, T=S:4m;R:4m;E:10m')dnl",
                    s.socket.opendkim()
                );
                out.push(Artifact {
                    path: mc_path.clone(),
                    kind: ArtifactKind::SendmailMc(SendmailMcEdit {
                        filter_name: name.into(),
                        line,
                        socket: s.socket.opendkim(),
                        replaces: vec![sendmail_filter_name(s.engine.other()).into()],
                    }),
                    // sendmail.mc belongs to the MTA's package (Debian:
                    // root:smmsp 0644): plan keeps its owner, group and
                    // mode, whatever these say.
                    owner: "root".into(),
                    group: "root".into(),
                    mode: 0o644,
                    reload: Reload::Sendmail,
                });
            }
        }
    }
}

/// The name of the engine's filter in sendmail.mc (`INPUT_MAIL_FILTER`).
pub fn sendmail_filter_name(engine: EngineKind) -> &'static str {
    match engine {
        EngineKind::Bundled => "dkimctl",
        EngineKind::OpenDkim => "opendkim",
    }
}

/// A short fingerprint of [`applied_lines`]: the settings generation. The
/// engine announces the generation it runs with (`sd_notify` status,
/// metrics), and `plan` compares it with the generation of dkim.toml to
/// tell a reload that never happened or failed.
pub fn generation(c: &Config) -> String {
    let text = applied_lines(c).join("\n");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A path as a systemd unit setting or tmpfiles.d field takes it: `%`
/// doubled (a specifier otherwise). Validation refused every character
/// these formats cannot carry ([`crate::formats::values`]).
fn unit_value(p: &Path) -> String {
    crate::formats::values::systemd_escape(&p.to_string_lossy()).into_owned()
}

/// The settings the bundled engine takes from dkim.toml, one a line, in a
/// fixed order. Lines whose first word is `socket`, `user`, `group` or
/// `umask` need a restart when they change; the rest a reload.
pub fn applied_lines(c: &Config) -> Vec<String> {
    let s = &c.service;
    let sg = &c.signing;
    let e = &c.engine;
    let mut l = vec![
        format!("socket {}", s.socket),
        format!("user {}", s.user),
        format!("group {}", s.group),
        format!("umask {:03o}", s.umask),
        format!("mode {}", s.mode.as_str()),
        format!(
            "authserv_id {}",
            s.authserv_id.as_deref().unwrap_or("(host name)")
        ),
        format!(
            "canonicalization {}/{}",
            sg.header_canon.as_str(),
            sg.body_canon.as_str()
        ),
        format!("sign_headers {}", sg.sign_headers.join(",")),
        format!("oversign_headers {}", sg.oversign_headers.join(",")),
        format!(
            "expire {}",
            sg.expire
                .map_or("none".to_string(), |d| format!("{}s", d.as_secs()))
        ),
    ];
    for h in &c.trusted.internal_hosts {
        l.push(format!("internal_host {h}"));
    }
    for h in &c.trusted.external_ignore {
        l.push(format!("external_ignore {h}"));
    }
    for d in &c.domains {
        for k in &d.keys {
            l.push(format!(
                "key {} {} {} {} {}{}",
                d.name,
                k.selector,
                k.algorithm,
                k.state.as_str(),
                k.path.display(),
                if d.subdomains { " subdomains" } else { "" }
            ));
        }
    }
    l.push(format!(
        "sign_daemon_names {}",
        e.sign_daemon_names.join(",")
    ));
    l.push(format!("max_connections {}", e.max_connections));
    l.push(format!("idle_timeout {}s", e.idle_timeout.as_secs()));
    l.push(format!("dns_timeout {}s", e.dns_timeout.as_secs()));
    let ns: Vec<String> = e.nameservers.iter().map(|n| n.to_string()).collect();
    l.push(format!(
        "nameservers {}",
        if ns.is_empty() {
            "system".into()
        } else {
            ns.join(",")
        }
    ));
    l.push(format!("verify_max_size {}", e.verify_max_size));
    l.push(format!("max_header_size {}", e.max_header_size));
    l.push(format!("require_safe_keys {}", e.require_safe_keys));
    l.push(format!(
        "metrics {}",
        e.metrics.map_or("off".to_string(), |m| m.to_string())
    ));
    let f = &e.on_failure;
    for (name, a) in [
        ("no_key", f.no_key),
        ("key_unreadable", f.key_unreadable),
        ("sign_error", f.sign_error),
        ("dns_error", f.dns_error),
        ("bad_signature", f.bad_signature),
        ("no_signature", f.no_signature),
        ("bad_from", f.bad_from),
        ("oversized", f.oversized),
    ] {
        l.push(format!("on_failure.{name} {}", a.as_str()));
    }
    l
}
