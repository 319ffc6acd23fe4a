//! The running system as part of the plan: a file tree that is right is
//! not a working setup when the milter is dead, answers with old
//! settings, or another engine holds its socket.
//!
//! [`observe`] looks (systemd's view of the engines' units, a milter
//! conversation on the configured socket as the MTA would start it, who
//! listens there, when OpenDKIM started versus when its files changed,
//! reloads the last apply could not do); [`pending`] turns what it saw into
//! [`Pending`] service actions, each with a finding id, that `plan` shows,
//! `apply` carries out, and `audit` reports. Observing changes nothing.
//!
//! Only on the live root, and not with `--offline`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::config::Config;
use crate::config::model::{EngineKind, Socket};
use crate::host::Root;
use crate::host::live::{self, Listen, Listener, UnitState};
use crate::render::artifact::{Artifact, ArtifactKind, Reload};

/// Where apply records the reloads it could not do, one name a line
/// ([`super::reload_name`]); plan retries them.
pub const FAILED_RELOADS: &str = "/var/lib/dkimctl/failed-reloads";

/// How long the milter has to answer the probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A file changed less than this after OpenDKIM started is not taken as
/// newer than the process (start times are kept in clock ticks).
const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// What [`observe`] saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// systemd's view of the engines' units, or why it could not be asked.
    pub units: Result<BTreeMap<String, UnitState>, String>,
    /// Whether a milter answers on the configured socket.
    pub answer: Result<(), String>,
    /// Who listens on the configured socket.
    pub listener: Option<Listener>,
    /// OpenDKIM engine: when its main process started.
    pub engine_started: Option<SystemTime>,
    /// OpenDKIM engine: the newest of its files (configuration, tables,
    /// keys) and when it changed.
    pub newest_file: Option<(PathBuf, SystemTime)>,
    /// Reloads the last apply could not do.
    pub failed: Vec<Reload>,
}

/// What apply does to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// `systemctl enable` and `restart`: it is not running.
    Start(String),
    /// `systemctl restart`: it runs but does not serve as it should.
    Restart(String),
    /// `systemctl reload`: it serves old settings.
    Reload(String),
    /// `systemctl disable --now`: the engine dkim.toml no longer names.
    Stop(String),
    /// A reload the last apply could not do.
    Retry(Reload),
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Service::Start(u) => write!(f, "start {u}"),
            Service::Restart(u) => write!(f, "restart {u}"),
            Service::Reload(u) => write!(f, "reload {u}"),
            Service::Stop(u) => write!(f, "stop and disable {u}"),
            Service::Retry(r) => write!(f, "retry {} reload", super::reload_name(*r)),
        }
    }
}

/// A service action the running system needs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The finding id audit reports it under.
    pub id: &'static str,
    /// What apply does.
    pub service: Service,
    /// Why, for people.
    pub reason: String,
}

impl Pending {
    /// The JSON form.
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "action": self.service.to_string(), "reason": self.reason})
    }
}

/// The finding ids of pending service actions.
pub mod id {
    /// The engine's unit is installed but not running.
    pub const ENGINE_NOT_RUNNING: &str = "engine-not-running";
    /// The engine runs but nothing answers on its socket as the MTA talks.
    pub const MILTER_NOT_ANSWERING: &str = "milter-not-answering";
    /// Another process listens on the engine's socket.
    pub const SOCKET_TAKEN: &str = "socket-taken";
    /// The engine serves other settings than dkim.toml's, or OpenDKIM's
    /// files changed after it started.
    pub const ENGINE_STALE: &str = "engine-stale";
    /// The engine dkim.toml does not name still runs or starts at boot.
    pub const ENGINE_REPLACED: &str = "engine-replaced";
    /// A reload failed at the last apply.
    pub const RELOAD_FAILED: &str = "reload-failed";
}

/// The units of the engine `engine` (the service first).
fn engine_units(engine: EngineKind) -> &'static [&'static str] {
    match engine {
        EngineKind::Bundled => &["dkimctl.service", "dkimctl.socket"],
        EngineKind::OpenDkim => &["opendkim.service"],
    }
}

/// The engine that is not `engine`.
fn other(engine: EngineKind) -> EngineKind {
    match engine {
        EngineKind::Bundled => EngineKind::OpenDkim,
        EngineKind::OpenDkim => EngineKind::Bundled,
    }
}

/// The socket as the MTA reaches it.
pub fn listen_of(socket: &Socket) -> Listen {
    match socket {
        Socket::Unix(p) => Listen::Unix(p.clone()),
        Socket::Inet { host, port } => Listen::Tcp {
            host: host.clone(),
            port: *port,
        },
    }
}

/// Looks at the running system for `config` (see the module docs).
/// `artifacts` are the rendered ones: the engine's files among them are
/// compared with OpenDKIM's start time.
pub fn observe(config: &Config, root: &Root, artifacts: &[Artifact]) -> Observation {
    let engine = config.service.engine;
    let mut names: Vec<&str> = engine_units(engine).to_vec();
    names.extend(engine_units(other(engine)));
    let units = live::units(&names);
    let listen = listen_of(&config.service.socket);
    let address = match &listen {
        Listen::Unix(p) => format!("unix:{}", root.join(p).display()),
        tcp => tcp.to_string(),
    };
    let answer = crate::milter::client::probe(&address, PROBE_TIMEOUT);
    let listener = live::listener(&listen);
    let (engine_started, newest_file) = match (engine, &units) {
        (EngineKind::OpenDkim, Ok(u)) => {
            let started = u
                .get("opendkim.service")
                .filter(|s| s.main_pid > 0)
                .and_then(|s| live::process_started(s.main_pid));
            (started, newest(root, artifacts))
        }
        _ => (None, None),
    };
    let failed = crate::host::Reader::new(root)
        .read(Path::new(FAILED_RELOADS))
        .map(|t| parse_failed(&t))
        .unwrap_or_default();
    Observation {
        units,
        answer,
        listener,
        engine_started,
        newest_file,
        failed,
    }
}

/// The reload names of the failed-reloads file.
pub fn parse_failed(text: &str) -> Vec<Reload> {
    text.lines()
        .filter_map(|l| {
            [Reload::Units, Reload::Postfix, Reload::Sendmail]
                .into_iter()
                .find(|r| super::reload_name(*r) == l.trim())
        })
        .collect()
}

/// The newest of the engine's files among `artifacts` (those that reload
/// or restart the engine, and the keys).
fn newest(root: &Root, artifacts: &[Artifact]) -> Option<(PathBuf, SystemTime)> {
    let reader = crate::host::Reader::new(root);
    artifacts
        .iter()
        .filter(|a| {
            a.is_secret()
                || (matches!(a.kind, ArtifactKind::File(_))
                    && matches!(a.reload, Reload::Engine | Reload::RestartEngine))
        })
        .filter_map(|a| {
            let m = reader.metadata(&a.path).ok()?;
            Some((a.path.clone(), m.modified().ok()?))
        })
        .max_by_key(|(_, t)| *t)
}

/// What the running system needs (see the module docs).
pub fn pending(config: &Config, obs: &Observation) -> Vec<Pending> {
    let mut out: Vec<Pending> = obs
        .failed
        .iter()
        .map(|r| Pending {
            id: id::RELOAD_FAILED,
            service: Service::Retry(*r),
            reason: format!(
                "the {} reload failed at the last apply",
                super::reload_name(*r)
            ),
        })
        .collect();
    let engine = config.service.engine;
    let Ok(units) = &obs.units else {
        // No service manager to ask: only the conversation tells.
        if let Err(e) = &obs.answer {
            out.push(Pending {
                id: id::MILTER_NOT_ANSWERING,
                service: Service::Restart(engine_units(engine)[0].to_string()),
                reason: format!("nothing answers on {}: {e}", config.service.socket),
            });
        }
        return out;
    };
    // The other engine first: apply stops it only once ours answers.
    out.extend(replaced(engine, units));
    out.extend(ours(config, obs, units));
    out
}

/// The other engine's units that run or start at boot.
fn replaced(engine: EngineKind, units: &BTreeMap<String, UnitState>) -> Vec<Pending> {
    engine_units(other(engine))
        .iter()
        .filter_map(|u| {
            let s = units.get(*u).filter(|s| s.installed())?;
            let how = match (s.up(), s.is_enabled()) {
                (true, true) => "runs and starts at boot",
                (true, false) => "runs",
                (false, true) => "starts at boot",
                (false, false) => return None,
            };
            Some(Pending {
                id: id::ENGINE_REPLACED,
                service: Service::Stop(u.to_string()),
                reason: format!(
                    "{u} {how}; dkim.toml names the {} engine",
                    engine_word(engine)
                ),
            })
        })
        .collect()
}

/// Our engine: installed but down, its socket held by another process or
/// silent, or serving old settings. At most the first problem found, and
/// whether it starts at boot.
fn ours(config: &Config, obs: &Observation, units: &BTreeMap<String, UnitState>) -> Vec<Pending> {
    let engine = config.service.engine;
    let service = engine_units(engine)[0];
    let main = if engine == EngineKind::Bundled && config.service.socket_activation {
        "dkimctl.socket"
    } else {
        service
    };
    let state = units.get(main).cloned().unwrap_or_default();
    if !state.installed() {
        // Not installed yet: the plan creates the unit and apply starts it.
        return Vec::new();
    }
    let socket = &config.service.socket;
    let held_by_other = obs.listener.as_ref().filter(|l| {
        l.unit
            .as_deref()
            .is_none_or(|u| !engine_units(engine).contains(&u))
    });
    if let Some(l) = held_by_other {
        let unit = l
            .unit
            .as_deref()
            .map(|u| format!(", {u}"))
            .unwrap_or_default();
        return vec![Pending {
            id: id::SOCKET_TAKEN,
            service: Service::Restart(main.to_string()),
            reason: format!("{socket} is held by {} (pid {}{unit})", l.command, l.pid),
        }];
    }
    if !state.up() {
        return vec![Pending {
            id: id::ENGINE_NOT_RUNNING,
            service: Service::Start(main.to_string()),
            reason: format!("{main} is {} ({})", state.active, state.sub),
        }];
    }
    let mut out = Vec::new();
    if !state.is_enabled() && state.enabled != "static" {
        out.push(Pending {
            id: id::ENGINE_NOT_RUNNING,
            service: Service::Start(main.to_string()),
            reason: format!("{main} runs but does not start at boot ({})", state.enabled),
        });
    }
    if let Err(e) = &obs.answer {
        out.push(Pending {
            id: id::MILTER_NOT_ANSWERING,
            service: Service::Restart(main.to_string()),
            reason: format!("{main} is active but nothing answers on {socket}: {e}"),
        });
        return out;
    }
    out.extend(stale(config, obs, units.get(service)));
    out
}

/// Our engine answers, but with settings older than dkim.toml's (bundled:
/// the generation it announces; OpenDKIM: files changed after it
/// started).
fn stale(config: &Config, obs: &Observation, svc: Option<&UnitState>) -> Option<Pending> {
    let service = engine_units(config.service.engine)[0];
    match config.service.engine {
        EngineKind::Bundled => {
            let status = svc.map(|s| s.status.as_str()).unwrap_or_default();
            let want = crate::render::generation(config);
            // Socket-activated and not started yet: it reads dkim.toml
            // when it starts.
            let serving = served_generation(status).filter(|g| *g != want)?;
            let failed = status
                .split_once("reload failed: ")
                .map(|(_, e)| format!("; its last reload failed: {e}"))
                .unwrap_or_default();
            Some(Pending {
                id: id::ENGINE_STALE,
                service: Service::Reload(service.to_string()),
                reason: format!(
                    "{service} serves settings {serving}, dkim.toml has {want}{failed}"
                ),
            })
        }
        EngineKind::OpenDkim => {
            let started = obs.engine_started?;
            let (path, changed) = obs.newest_file.as_ref()?;
            (*changed > started + CLOCK_SLACK).then(|| Pending {
                id: id::ENGINE_STALE,
                service: Service::Restart(service.to_string()),
                reason: format!(
                    "{} changed after {service} started; OpenDKIM reads its files only at start",
                    path.display()
                ),
            })
        }
    }
}

/// The generation in the engine's `STATUS=` line (`serving settings X`).
pub fn served_generation(status: &str) -> Option<&str> {
    let rest = status.strip_prefix("serving settings ")?;
    Some(rest.split([';', ' ']).next().unwrap_or(rest))
}

fn engine_word(engine: EngineKind) -> &'static str {
    match engine {
        EngineKind::Bundled => "bundled",
        EngineKind::OpenDkim => "OpenDKIM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse};

    fn config(extra: &str) -> Config {
        let text = format!(
            "{extra}\n[[domain]]\nname = \"example.com\"\n[[domain.key]]\nselector = \"s1\"\n\
             algorithm = \"rsa-sha256\"\n[mta]\nkind = \"none\"\n"
        );
        let source = Source {
            real: "/nonexistent/dkim.toml".into(),
            host: "/etc/dkimctl/dkim.toml".into(),
            display: "dkim.toml".into(),
        };
        parse(&text, &source).config.expect("valid")
    }

    fn unit(active: &str, enabled: &str, status: &str) -> UnitState {
        UnitState {
            load: "loaded".into(),
            active: active.into(),
            sub: if active == "active" {
                "running"
            } else {
                "dead"
            }
            .into(),
            enabled: enabled.into(),
            main_pid: 0,
            status: status.into(),
            fragment: String::new(),
        }
    }

    fn seen(units: &[(&str, UnitState)], answer: Result<(), String>) -> Observation {
        Observation {
            units: Ok(units
                .iter()
                .map(|(n, u)| (n.to_string(), u.clone()))
                .collect()),
            answer,
            listener: None,
            engine_started: None,
            newest_file: None,
            failed: Vec::new(),
        }
    }

    fn ids(p: &[Pending]) -> Vec<(&str, String)> {
        p.iter().map(|p| (p.id, p.service.to_string())).collect()
    }

    #[test]
    fn a_healthy_bundled_engine_needs_nothing() {
        let c = config("");
        let g = crate::render::generation(&c);
        let o = seen(
            &[(
                "dkimctl.service",
                unit("active", "enabled", &format!("serving settings {g}")),
            )],
            Ok(()),
        );
        assert_eq!(pending(&c, &o), vec![]);
    }

    #[test]
    fn dead_silent_stale_and_replaced_engines() {
        let c = config("");
        let failed = seen(
            &[("dkimctl.service", unit("failed", "enabled", ""))],
            Err("refused".into()),
        );
        assert_eq!(
            ids(&pending(&c, &failed)),
            [(id::ENGINE_NOT_RUNNING, "start dkimctl.service".to_string())]
        );
        let silent = seen(
            &[("dkimctl.service", unit("active", "enabled", ""))],
            Err("No such file".into()),
        );
        assert_eq!(
            ids(&pending(&c, &silent)),
            [(
                id::MILTER_NOT_ANSWERING,
                "restart dkimctl.service".to_string()
            )]
        );
        let stale = seen(
            &[(
                "dkimctl.service",
                unit(
                    "active",
                    "enabled",
                    "serving settings 000000; reload failed: bad key",
                ),
            )],
            Ok(()),
        );
        let p = pending(&c, &stale);
        assert_eq!(
            ids(&p),
            [(id::ENGINE_STALE, "reload dkimctl.service".to_string())]
        );
        assert!(p[0].reason.contains("bad key"), "{}", p[0].reason);
        let replaced = seen(
            &[
                ("dkimctl.service", unit("active", "enabled", "")),
                ("opendkim.service", unit("active", "enabled", "")),
            ],
            Ok(()),
        );
        assert_eq!(
            ids(&pending(&c, &replaced)),
            [(
                id::ENGINE_REPLACED,
                "stop and disable opendkim.service".to_string()
            )]
        );
    }

    #[test]
    fn opendkim_restarts_when_its_files_changed_after_it_started() {
        let c = config("[service]\nengine = \"opendkim\"");
        let mut o = seen(
            &[("opendkim.service", unit("active", "enabled", ""))],
            Ok(()),
        );
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        o.engine_started = Some(t);
        o.newest_file = Some(("/etc/opendkim.conf".into(), t + Duration::from_secs(60)));
        assert_eq!(
            ids(&pending(&c, &o)),
            [(id::ENGINE_STALE, "restart opendkim.service".to_string())]
        );
        o.newest_file = Some(("/etc/opendkim.conf".into(), t));
        assert_eq!(pending(&c, &o), vec![]);
    }

    #[test]
    fn a_socket_held_by_another_process_is_named() {
        let c = config("");
        let mut o = seen(
            &[
                ("dkimctl.service", unit("failed", "enabled", "")),
                ("opendkim.service", unit("active", "disabled", "")),
            ],
            Ok(()),
        );
        o.listener = Some(Listener {
            pid: 42,
            command: "opendkim".into(),
            unit: Some("opendkim.service".into()),
        });
        let p = pending(&c, &o);
        assert_eq!(p[0].id, id::ENGINE_REPLACED);
        assert_eq!(p[1].id, id::SOCKET_TAKEN);
        assert!(
            p[1].reason.contains("opendkim (pid 42, opendkim.service)"),
            "{}",
            p[1].reason
        );
    }

    #[test]
    fn failed_reloads_are_retried() {
        assert_eq!(
            parse_failed("postfix\nbogus\nunits\n"),
            [Reload::Postfix, Reload::Units]
        );
        let c = config("");
        let mut o = seen(&[], Ok(()));
        o.units = Err("System has not been booted with systemd".into());
        o.failed = vec![Reload::Postfix];
        assert_eq!(
            ids(&pending(&c, &o)),
            [(id::RELOAD_FAILED, "retry postfix reload".to_string())]
        );
    }
}
