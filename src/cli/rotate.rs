//! `dkimctl rotate DOMAIN [--continue]` and `dkimctl rotate --auto
//! [DOMAIN...]`: rotate decides, apply writes, dns publishes.
//!
//! `--auto` runs every step that is due, in this order, each one only
//! when the previous left the host signing:
//!
//! 1. **start**: a domain whose oldest active key is older than `[rotation]
//!    every` (and that has no pending key) gets new pending keys;
//! 2. **publish** (`[dns] update` rfc2136 or zonefile): DNS is made to match
//!    dkim.toml, then every record is checked at each authoritative server
//!    and the resolver;
//! 3. **switch**: a pending key becomes active once its record has been
//!    served everywhere since at least a TTL (and a day) ago, remembered in
//!    the DNS state; **retire**: a retiring key past `retire_after` is
//!    retired (its file archived, deleted or published);
//! 4. **publish** again when a key was retired (the revoked record);
//! 5. **apply**: the changes the rotation causes (keys, the engine's
//!    configuration and credentials) are applied and the engine reloaded,
//!    never restarted; anything else stays for `dkimctl apply`.
//!
//! Each step prints one line (the journal, under the timer). A failure is
//! reported and leaves the current key signing: dkim.toml only ever names
//! the new key active after every server served it.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use super::Error;
use super::dns::{Published, authoritative_missing, run_publish, served_everywhere};
use crate::apply::{self, ApplyOptions};
use crate::config::model::{Config, DnsUpdate, KeyState, Socket};
use crate::config::types::Date;
use crate::config::validate::normalize_domain;
use crate::config::{self, Source};
use crate::dns::state::DnsState;
use crate::host::Root;
use crate::plan::{self, Plan};
use crate::render::artifact::{ArtifactKind, Reload};
use crate::render::{self, templates::Templates};
use crate::rotate::{Readiness, What, decide_what, next_rotation};

/// One rotation step: decided by [`crate::rotate`], carried out by
/// [`crate::apply::rotation`], reported. The exit code is the step's.
pub fn rotate(
    root: &Root,
    source: &Source,
    domain: &str,
    cont: bool,
    nameserver: Option<SocketAddr>,
    today: Date,
) -> Result<i32, Error> {
    let step = crate::rotate::decide(source, root, domain, cont, nameserver, today)?;
    let retired = crate::apply::rotation::carry_out(root, source, &step)?;
    step.print(&retired, &mut std::io::stdout().lock())?;
    Ok(step.code)
}

/// The inputs of `rotate --auto`.
pub struct AutoRun<'a> {
    /// The root.
    pub root: &'a Root,
    /// dkim.toml.
    pub source: &'a Source,
    /// Templates for the apply step.
    pub templates: &'a Templates,
    /// The domains named (none: every domain with keys of its own).
    pub domains: &'a [String],
    /// `--nameserver`: the recursive resolver.
    pub nameserver: Option<SocketAddr>,
    /// The date the decisions follow.
    pub today: Date,
    /// `--json`.
    pub json: bool,
}

/// What `--auto` did, as it goes.
struct Log {
    json: bool,
    /// (domain or "", step, message) in order.
    events: Vec<(String, &'static str, String)>,
    code: i32,
}

impl Log {
    fn say(&mut self, domain: &str, step: &'static str, message: impl Into<String>) {
        let message = message.into();
        if !self.json {
            let mut out = std::io::stdout().lock();
            let _ = if domain.is_empty() {
                writeln!(out, "{step}: {message}")
            } else {
                writeln!(out, "{domain}: {step}: {message}")
            };
        }
        self.events.push((domain.to_string(), step, message));
    }

    fn fail(&mut self, domain: &str, step: &'static str, e: &dyn std::error::Error) {
        self.say(domain, step, format!("failed: {}", crate::report::chain(e)));
        self.code = 2;
    }

    fn raise(&mut self, code: i32) {
        self.code = self.code.max(code);
    }
}

/// Loads and validates dkim.toml again (after an edit).
fn reload_config(source: &Source) -> Result<Config, Error> {
    let loaded = config::load(source)?;
    match loaded.config {
        Some(c) if !loaded.diags.has_errors() => Ok(c),
        _ => Err(format!("{} has errors after the rotation's edit", source.display).into()),
    }
}

/// `dkimctl rotate --auto`: every due step; 0 done or nothing due, 1
/// waiting for a record that is not published, 2 a step failed.
pub fn auto(config: &Config, run: &AutoRun<'_>) -> Result<i32, Error> {
    let mut log = Log {
        json: run.json,
        events: Vec::new(),
        code: 0,
    };
    // The domains in scope: named ones (which must own their keys), or
    // every domain that does.
    let mut scope: Vec<String> = Vec::new();
    if run.domains.is_empty() {
        scope.extend(
            config
                .domains
                .iter()
                .filter(|d| d.key_from.is_none())
                .map(|d| d.name.clone()),
        );
    } else {
        for name in run.domains {
            let n = normalize_domain(name).unwrap_or_else(|_| name.clone());
            match config.domains.iter().find(|d| d.name == n) {
                Some(d) if d.key_from.is_none() => scope.push(d.name.clone()),
                Some(d) => {
                    return Err(format!(
                        "{} takes its keys from {} (key_from); rotate {} instead",
                        d.name,
                        d.key_from.as_deref().unwrap_or_default(),
                        d.key_from.as_deref().unwrap_or_default()
                    )
                    .into());
                }
                None => {
                    return Err(format!("{name} is not configured in dkim.toml").into());
                }
            }
        }
    }
    let mut state = DnsState::read(run.root);
    let state_before = state.clone();

    // (1) Start rotations that are due.
    for name in &scope {
        let Some(d) = config.domains.iter().find(|d| &d.name == name) else {
            continue;
        };
        if d.keys.iter().any(|k| k.state == KeyState::Pending) {
            continue;
        }
        match next_rotation(config, run.root, d) {
            Some(due) if due <= run.today => {
                carry(&mut log, run, name, "start", What::Start);
            }
            _ => {}
        }
    }

    // (2) Publish and check.
    let mut current = match reload_config(run.source) {
        Ok(c) => c,
        Err(e) => return finish(log, run, &state, &state_before, Some(e)),
    };
    let published = publish_step(&mut log, run, &current, &mut state);

    // (3) Switch what is ready, retire what is due.
    let hold = current.dns.ttl.max(Duration::from_secs(86_400));
    let mut retired_any = false;
    for name in &scope {
        let Some(d) = current.domains.iter().find(|d| &d.name == name) else {
            continue;
        };
        let pending: Vec<&str> = d
            .keys
            .iter()
            .filter(|k| k.state == KeyState::Pending)
            .map(|k| k.selector.as_str())
            .collect();
        let retiring_due = d.keys.iter().any(|k| {
            k.state == KeyState::Retiring && k.retire_after.is_none_or(|r| r <= run.today)
        });
        if pending.is_empty() && !retiring_due {
            continue;
        }
        let readiness = readiness(
            &current,
            name,
            &pending,
            published.as_ref(),
            &state,
            run.today,
            hold,
        );
        if let Err((_, why)) = &readiness {
            for w in why {
                log.say(name, "switch", format!("not yet: {w}"));
            }
        }
        let code = readiness.as_ref().err().map_or(0, |(c, _)| *c);
        log.raise(code);
        if let Some(retired) = carry(
            &mut log,
            run,
            name,
            "advance",
            What::Advance(Readiness::Given(
                readiness.map_err(|(c, _)| (c, Vec::new())),
            )),
        ) {
            retired_any |= retired;
        }
    }

    // (4) The revoked records of keys retired just now.
    if retired_any {
        match reload_config(run.source) {
            Ok(c) => {
                current = c;
                publish_step(&mut log, run, &current, &mut state);
            }
            Err(e) => log.fail("", "publish", e.as_ref()),
        }
    }

    // (5) Apply what the rotation changed; reload, never restart.
    match reload_config(run.source) {
        Ok(c) => {
            apply_step(&mut log, run, &c);
            current = c;
        }
        Err(e) => log.fail("", "apply", e.as_ref()),
    }
    for name in &scope {
        if let Some(d) = current.domains.iter().find(|d| &d.name == name)
            && let Some(due) = next_rotation(&current, run.root, d)
            && due > run.today
            && !d.keys.iter().any(|k| k.state == KeyState::Pending)
        {
            log.say(name, "next", format!("rotation due on {due}"));
        }
    }
    finish(log, run, &state, &state_before, None)
}

/// Writes the state, prints the JSON report, returns the exit code.
fn finish(
    mut log: Log,
    run: &AutoRun<'_>,
    state: &DnsState,
    before: &DnsState,
    error: Option<Error>,
) -> Result<i32, Error> {
    if let Some(e) = &error {
        log.fail("", "rotate", e.as_ref());
    }
    if state != before
        && let Err(e) = apply::rotation::write_state(run.root, state)
    {
        log.fail("", "state", &e);
    }
    if run.json {
        let events: Vec<Value> = log
            .events
            .iter()
            .map(|(d, step, m)| json!({"domain": d, "step": step, "message": m}))
            .collect();
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(
            &mut out,
            &json!({
                "today": run.today.to_string(),
                "events": events,
                "last_publish": state.last_publish,
                "exit": log.code,
            }),
        )?;
        writeln!(out)?;
    }
    Ok(log.code)
}

/// Decides a step for one domain and carries it out; logs what happened.
/// Returns whether a key was retired, or `None` when the step failed.
fn carry(
    log: &mut Log,
    run: &AutoRun<'_>,
    domain: &str,
    step_name: &'static str,
    what: What<'_, '_>,
) -> Option<bool> {
    let step = match decide_what(run.source, run.root, domain, run.today, what) {
        Ok(s) => s,
        Err(e) => {
            log.fail(domain, step_name, &e);
            return None;
        }
    };
    log.raise(step.code);
    if !step.writes() {
        return Some(false);
    }
    let retired = match apply::rotation::carry_out(run.root, run.source, &step) {
        Ok(r) => r,
        Err(e) => {
            log.fail(domain, step_name, &e);
            return None;
        }
    };
    let mut text = Vec::new();
    let _ = step.print(&retired, &mut text);
    // The step's own lines, without the record blocks printed for people
    // who publish by hand (the publish step reports on records) and
    // without its "Next:" advice (this run takes the next steps itself).
    for line in String::from_utf8_lossy(&text).lines() {
        let line = line.trim();
        let record =
            line.starts_with("Publish ") || line.contains(" IN TXT (") || line.starts_with('"');
        if line.is_empty() || record || line.starts_with("Next:") {
            continue;
        }
        log.say(domain, step_name, line);
    }
    Some(!step.retire.is_empty())
}

/// Publishes (rfc2136, zonefile) or compares (manual); logs one line per
/// record that changed or is not served.
fn publish_step(
    log: &mut Log,
    run: &AutoRun<'_>,
    config: &Config,
    state: &mut DnsState,
) -> Option<Published> {
    let manual = config.dns.update == DnsUpdate::Manual;
    match run_publish(config, run.root, run.nameserver, manual, run.today, state) {
        Ok(mut p) => {
            if manual {
                // Nothing was sent; look at what the world serves.
                p.checks = crate::dns::publish::verify(&p.prepared);
                for (t, checks) in p.prepared.targets.iter().zip(&p.checks) {
                    if served_everywhere(checks) {
                        state.saw(&t.name, &t.value, run.today);
                    }
                }
            } else {
                let changed = p.prepared.changes();
                log.say(
                    "",
                    "publish",
                    format!(
                        "{} record(s) changed, {} unchanged ({})",
                        changed,
                        p.prepared.targets.len() - changed,
                        p.prepared.method
                    ),
                );
            }
            for (t, checks) in p.prepared.targets.iter().zip(&p.checks) {
                for c in checks.iter().filter(|c| !c.ok) {
                    log.say(
                        &t.domain,
                        "publish",
                        format!("{} not served by {}: {}", t.name, c.server, c.detail),
                    );
                }
            }
            Some(p)
        }
        Err(e) => {
            log.fail("", "publish", e.as_ref());
            None
        }
    }
}

/// Whether the pending keys of `domain` may become active: every one of
/// their records (under every domain that publishes them) served by every
/// authoritative server and the resolver, since at least `hold`.
fn readiness(
    config: &Config,
    domain: &str,
    pending: &[&str],
    published: Option<&Published>,
    state: &DnsState,
    today: Date,
    hold: Duration,
) -> Result<(), (i32, Vec<String>)> {
    if pending.is_empty() {
        return Ok(());
    }
    let Some(p) = published else {
        return Err((2, vec!["the records could not be checked".to_string()]));
    };
    let publishers: Vec<&str> = config
        .domains
        .iter()
        .filter(|d| d.name == domain || d.key_from.as_deref() == Some(domain))
        .map(|d| d.name.as_str())
        .collect();
    let mut why = Vec::new();
    let mut code = 0;
    for (t, checks) in p.prepared.targets.iter().zip(&p.checks) {
        if !(publishers.contains(&t.domain.as_str()) && pending.contains(&t.selector.as_str())) {
            continue;
        }
        if !served_everywhere(checks) {
            let manual = config.dns.update == DnsUpdate::Manual;
            if manual || authoritative_missing(checks) {
                code = 1;
            }
            let missing: Vec<&str> = checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.server.as_str())
                .collect();
            if manual {
                why.push(format!(
                    "publish {} (`dkimctl dns publish` prints it): not served by {}",
                    t.name,
                    missing.join(", ")
                ));
            } else {
                why.push(format!("{} not served by {}", t.name, missing.join(", ")));
            }
            continue;
        }
        match state.seen_since(&t.name, &t.value) {
            Some(since) if since.after(hold) <= today => {}
            Some(since) => why.push(format!(
                "{} is served everywhere since {since}; the switch follows on {} (once caches \
                 have expired)",
                t.name,
                since.after(hold)
            )),
            None => why.push(format!("{} is served everywhere as of today", t.name)),
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err((code, why))
    }
}

/// Applies the part of the plan a rotation causes (keys and their
/// directories, what the engine reads, the engine's unit for its
/// credentials), reloading the engine; logs what else is pending.
fn apply_step(log: &mut Log, run: &AutoRun<'_>, config: &Config) {
    let plan = match render::render(config, run.templates)
        .map_err(Error::from)
        .and_then(|a| plan::plan(&a, run.root).map_err(Error::from))
    {
        Ok(p) => p,
        Err(e) => {
            log.fail("", "apply", e.as_ref());
            return;
        }
    };
    let units = render::engine_units(config);
    let ours = |c: &crate::plan::Change| {
        let a = &c.artifact;
        matches!(a.reload, Reload::Engine | Reload::RestartEngine)
            || (matches!(a.kind, ArtifactKind::Directory)
                && a.path.starts_with(&config.service.key_dir))
            || (a.reload == Reload::Units
                && a.path
                    .file_name()
                    .is_some_and(|n| units.iter().any(|u| n == u.as_str())))
    };
    let (mine, other): (Vec<_>, Vec<_>) = plan.changes.iter().cloned().partition(|c| ours(c));
    let others = other.iter().filter(|c| c.is_change()).count();
    let rotation_plan = Plan {
        changes: mine,
        ownership_checked: plan.ownership_checked,
        accounts: Vec::new(),
        // Service repairs are `dkimctl apply`'s.
        pending: Vec::new(),
        kept: Vec::new(),
    };
    if rotation_plan.has_changes() {
        let opts = ApplyOptions {
            reload: run.root.is_live(),
            engine_units: units,
            postfix_config_dir: None,
            // After the reload, wait until the engine answers again.
            probe: Some(match &config.service.socket {
                Socket::Unix(p) => format!("unix:{}", run.root.join(p).display()),
                other => other.to_string(),
            }),
            reload_only: true,
        };
        match apply::apply(&rotation_plan, run.root, &opts) {
            Ok(report) => {
                for s in &report.steps {
                    log.say(
                        "",
                        "apply",
                        format!("{} {}", s.kind.as_str(), s.path.display()),
                    );
                }
                for r in &report.reloads {
                    log.say("", "apply", format!("ran {}", r.command));
                }
                for n in &report.needed {
                    log.say("", "apply", n.clone());
                }
            }
            Err(e) => log.fail("", "apply", &e),
        }
    }
    if others > 0 {
        log.say(
            "",
            "apply",
            format!("{others} other change(s) are pending; run `dkimctl plan` and `dkimctl apply`"),
        );
    }
}
