//! After the files: telling running services about them.
//!
//! The plan says which kinds of reload its changes need ([`Reload`]); this
//! module turns them into commands, runs them on the live system, or
//! tells the admin what to run (under a sandbox root, or without
//! `--reload`). A failing command is reported and the others still run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::tree::{Dir, FsError};
use super::{ApplyOptions, ReloadOutcome};
use crate::host::Root;
use crate::plan::live::{Pending, Service};
use crate::render::artifact::Reload;

/// One thing to do for the running services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Run a command.
    Run(Vec<String>),
    /// sendmail.cf rebuilt from sendmail.mc ([`build_sendmail_cf`]):
    /// `make -C DIR` on Debian, else `m4 sendmail.mc > sendmail.cf`
    /// written atomically (host paths).
    BuildSendmailCf {
        /// sendmail.mc.
        mc: PathBuf,
        /// sendmail.cf next to it.
        cf: PathBuf,
        /// The directory whose Makefile (Debian's, made by sendmail's
        /// `update_mk`) rebuilds sendmail.cf and the databases.
        make: Option<PathBuf>,
    },
    /// Wait until the milter answers at this address as the MTA talks to
    /// it ([`crate::milter::client::probe`]), for at most
    /// [`ANSWER_WAIT`].
    WaitForAnswer(String),
    /// Wait, for at most [`DRAIN_WAIT`], until the unit's main process
    /// serves no MTA session: after the MTA was switched, sessions that
    /// began before still talk to the old engine, and stopping it under
    /// them would apply the MTA's default action to their mail.
    Drain(String),
}

/// How long apply waits for a replaced engine's sessions to end.
pub(crate) const DRAIN_WAIT: Duration = Duration::from_secs(30);

/// How long apply waits for a (re)started engine to answer.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_secs(20);

impl Step {
    /// The step as a shell command line, for reports.
    pub(crate) fn display(&self) -> String {
        match self {
            Step::Run(args) => args.join(" "),
            Step::BuildSendmailCf {
                make: Some(dir), ..
            } => format!("make -C {}", dir.display()),
            Step::BuildSendmailCf { mc, cf, make: None } => {
                format!("m4 {} > {}", mc.display(), cf.display())
            }
            Step::WaitForAnswer(a) => format!("wait until the milter answers on {a}"),
            Step::Drain(u) => format!("wait until {u} serves no more MTA sessions"),
        }
    }

    /// The reload kind whose failure apply records for the next run
    /// (engine steps are not recorded: plan sees a dead or stale engine
    /// by itself).
    pub(crate) fn reload_kind(&self) -> Option<Reload> {
        match self {
            Step::Run(args) if args.first().map(String::as_str) == Some("postfix") => {
                Some(Reload::Postfix)
            }
            Step::Run(args) if args.iter().any(|a| a == "daemon-reload") => Some(Reload::Units),
            Step::Run(args) if tells_sendmail(args) => Some(Reload::Sendmail),
            Step::BuildSendmailCf { .. } => Some(Reload::Sendmail),
            _ => None,
        }
    }
}

fn run(args: &[&str]) -> Step {
    Step::Run(args.iter().map(|s| s.to_string()).collect())
}

/// True for the command that has sendmail read its configuration again.
fn tells_sendmail(args: &[String]) -> bool {
    args.iter()
        .any(|a| a == "sendmail" || a.ends_with("/init.d/sendmail"))
}

/// How sendmail's configuration is rebuilt and made live on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sendmail {
    /// sendmail.mc (host path).
    pub mc: PathBuf,
    /// Debian's packaging: sendmail.mc's directory has the Makefile
    /// sendmail's `update_mk` generates, and `/etc/init.d/sendmail`
    /// reloads (SIGHUP: sendmail re-executes itself with the new
    /// sendmail.cf, without the seconds of refused connections a restart
    /// costs). Its sendmail.service, made by systemd-sysv-generator,
    /// cannot `systemctl reload`.
    pub debian: bool,
}

impl Sendmail {
    /// What the host under `root` has for sendmail.mc at `mc` (default
    /// `/etc/mail/sendmail.mc`).
    pub(crate) fn on(root: &Root, mc: Option<&Path>) -> Sendmail {
        let mc = mc
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/etc/mail/sendmail.mc"));
        let reader = crate::host::Reader::new(root);
        let makefile = mc.with_file_name("Makefile");
        let debian = reader
            .read(&makefile)
            .is_ok_and(|t| t.lines().take(20).any(|l| l.contains("update_mk")))
            && reader.exists(Path::new(DEBIAN_INIT_SCRIPT));
        Sendmail { mc, debian }
    }

    /// The steps: rebuild sendmail.cf, then have sendmail read it.
    fn steps(&self) -> [Step; 2] {
        let cf = self.mc.with_file_name("sendmail.cf");
        if self.debian {
            let dir = self.mc.parent().map(Path::to_path_buf);
            [
                Step::BuildSendmailCf {
                    mc: self.mc.clone(),
                    cf,
                    make: dir,
                },
                run(&[DEBIAN_INIT_SCRIPT, "reload"]),
            ]
        } else {
            [
                Step::BuildSendmailCf {
                    mc: self.mc.clone(),
                    cf,
                    make: None,
                },
                run(&["systemctl", "restart", "sendmail"]),
            ]
        }
    }
}

/// Debian's sendmail init script; its `reload` is what `sendmailconfig`
/// and /etc/mail/Makefile ask for after a rebuild.
const DEBIAN_INIT_SCRIPT: &str = "/etc/init.d/sendmail";

/// The service steps of one apply, in three groups: the engine's (run
/// before the MTA's files are written, ending with a wait until it
/// answers), the MTA's (after its files), and the replaced engine's stop
/// (last, once the MTA talks to the new one): make before break.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sequence {
    /// daemon-reload, engine starts, restarts, reloads, the wait.
    pub engine: Vec<Step>,
    /// Postfix reload, sendmail.cf rebuild and restart.
    pub mta: Vec<Step>,
    /// Stopping the engine dkim.toml no longer names.
    pub after: Vec<Step>,
}

impl Sequence {
    /// Every step, in order.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Step> {
        self.engine.iter().chain(&self.mta).chain(&self.after)
    }
}

/// The steps for a set of reloads and pending service actions.
///
/// - `Units`: `systemctl daemon-reload` first.
/// - Each engine unit: enabled and restarted when its unit file was just
///   created or it is not running (`enable --now` would keep an instance
///   that runs with other settings); restarted when units changed, a
///   restart-only setting did, or it does not answer; else reloaded when
///   its configuration changed or it serves old settings.
/// - Then, when the engine was touched or the MTA is about to be, a wait
///   until the milter answers (on the live system).
/// - `Postfix`: `postfix reload` (with `-c DIR` when configured).
/// - `Sendmail`: rebuild sendmail.cf from sendmail.mc and have sendmail
///   read it (Debian: `make -C /etc/mail`, `/etc/init.d/sendmail reload`;
///   else m4 and `systemctl restart sendmail`).
/// - Last, `systemctl disable --now` of a replaced engine.
pub(crate) fn sequence(
    reloads: &BTreeSet<Reload>,
    created_units: &BTreeSet<String>,
    pending: &[Pending],
    opts: &ApplyOptions,
    sendmail: &Sendmail,
) -> Sequence {
    let retry = |r: Reload| pending.iter().any(|p| p.service == Service::Retry(r));
    let wants = |unit: &str| {
        pending.iter().find_map(|p| match &p.service {
            Service::Start(u) | Service::Restart(u) | Service::Reload(u) if u == unit => {
                Some(&p.service)
            }
            _ => None,
        })
    };
    let mut seq = Sequence::default();
    if reloads.contains(&Reload::Units) || reloads.contains(&Reload::Timers) || retry(Reload::Units)
    {
        seq.engine.push(run(&["systemctl", "daemon-reload"]));
    }
    // `rotate --auto` never restarts the engine: a reload instead.
    let restart = (reloads.contains(&Reload::Units) || reloads.contains(&Reload::RestartEngine))
        && !opts.reload_only;
    let reload = reloads.contains(&Reload::Engine)
        || (opts.reload_only
            && (reloads.contains(&Reload::Units) || reloads.contains(&Reload::RestartEngine)));
    let mut touched = false;
    for unit in &opts.engine_units {
        let step = if created_units.contains(unit) || matches!(wants(unit), Some(Service::Start(_)))
        {
            // `enable --now` would leave an instance that already runs
            // (a distribution's own, with its own settings) as it is.
            seq.engine.push(run(&["systemctl", "enable", unit]));
            run(&["systemctl", "restart", unit])
        } else if restart || (!opts.reload_only && matches!(wants(unit), Some(Service::Restart(_))))
        {
            run(&["systemctl", "restart", unit])
        } else if reload || matches!(wants(unit), Some(Service::Reload(_) | Service::Restart(_))) {
            run(&["systemctl", "reload", unit])
        } else {
            continue;
        };
        touched = true;
        seq.engine.push(step);
    }
    if reloads.contains(&Reload::Postfix) || retry(Reload::Postfix) {
        let mut args = vec!["postfix".to_string()];
        if let Some(dir) = &opts.postfix_config_dir {
            args.push("-c".into());
            args.push(dir.display().to_string());
        }
        args.push("reload".into());
        seq.mta.push(Step::Run(args));
    }
    if reloads.contains(&Reload::Sendmail) || retry(Reload::Sendmail) {
        seq.mta.extend(sendmail.steps());
    }
    for p in pending {
        if let Service::Stop(u) = &p.service {
            seq.after.push(Step::Drain(u.clone()));
            seq.after.push(run(&["systemctl", "disable", "--now", u]));
        }
    }
    // A new timer (the rotation's) is enabled; the engine is not touched.
    if reloads.contains(&Reload::Timers) {
        for timer in created_units.iter().filter(|u| u.ends_with(".timer")) {
            seq.after
                .push(run(&["systemctl", "enable", "--now", timer]));
        }
    }
    let mta_changes = reloads.contains(&Reload::Postfix) || reloads.contains(&Reload::Sendmail);
    if let Some(address) = &opts.probe
        && (touched || mta_changes || !seq.after.is_empty())
    {
        seq.engine.push(Step::WaitForAnswer(address.clone()));
    }
    seq
}

/// The line telling the admin what to run.
pub(crate) fn needed_line(seq: &Sequence) -> Option<String> {
    let cmds: Vec<String> = seq
        .all()
        .filter(|s| !matches!(s, Step::WaitForAnswer(_) | Step::Drain(_)))
        .map(Step::display)
        .collect();
    if cmds.is_empty() {
        return None;
    }
    Some(format!("run: {}", cmds.join(" && ")))
}

/// Runs the steps; a failure is recorded and the rest still run, except
/// that sendmail is not told to reload when its configuration failed to
/// build.
pub(crate) fn execute(steps: &[Step], root: &Root) -> Vec<ReloadOutcome> {
    let mut out = Vec::new();
    let mut cf_failed = false;
    for step in steps {
        let command = step.display();
        let result = match step {
            Step::Run(args) if cf_failed && tells_sendmail(args) => {
                Err("skipped: sendmail.cf could not be rebuilt".to_string())
            }
            Step::Run(args) => run_command(args).map(|_| ()),
            Step::WaitForAnswer(address) => wait_for_answer(address),
            Step::Drain(unit) => {
                drain(unit);
                Ok(())
            }
            Step::BuildSendmailCf { mc, cf, make } => {
                let r = build_sendmail_cf(root, mc, cf, make.as_deref());
                cf_failed = r.is_err();
                r
            }
        };
        out.push(ReloadOutcome {
            command,
            ok: result.is_ok(),
            message: result.err(),
        });
    }
    out
}

/// Probes `address` until the milter answers or [`ANSWER_WAIT`] passed.
fn wait_for_answer(address: &str) -> Result<(), String> {
    let deadline = Instant::now() + ANSWER_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match crate::milter::client::probe(address, left.min(Duration::from_secs(5))) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("no answer within {} s: {e}", ANSWER_WAIT.as_secs()));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Waits until `unit`'s main process holds no connection, or
/// [`DRAIN_WAIT`] passed (then the stop goes ahead: a session that never
/// ends must not keep the old engine forever).
fn drain(unit: &str) {
    let pid = run_command(&[
        "systemctl".into(),
        "show".into(),
        "-p".into(),
        "MainPID".into(),
        "--value".into(),
        unit.into(),
    ])
    .ok()
    .and_then(|o| String::from_utf8_lossy(&o).trim().parse::<u32>().ok())
    .filter(|&p| p > 0);
    let Some(pid) = pid else {
        return;
    };
    let deadline = Instant::now() + DRAIN_WAIT;
    while crate::host::live::connections(pid) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs a command; its stdout on success, else a one-line reason.
pub(crate) fn run_command(args: &[String]) -> Result<Vec<u8>, String> {
    let Some((prog, rest)) = args.split_first() else {
        return Err("empty command".into());
    };
    let output = Command::new(prog)
        .args(rest)
        .output()
        .map_err(|e| format!("failed to run {prog}: {e}"))?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    Err(match last {
        Some(l) => format!("{} ({})", l.trim(), output.status),
        None => output.status.to_string(),
    })
}

/// Rebuilds sendmail.cf from sendmail.mc.
///
/// m4 runs first in every case, its output kept in memory: when it fails
/// (or complains on stderr) sendmail.cf is left as it is, where
/// `m4 sendmail.mc > sendmail.cf` would leave a truncated file and
/// Debian's Makefile would install the broken output (its rule ends in
/// `|| true`). Then:
///
/// - with `make` (Debian): `make -C DIR`, the distribution's way, which
///   also rebuilds submit.cf and the databases that depend on
///   sendmail.mc, and installs sendmail.cf (root:smmsp 0644) by rename;
///   afterwards sendmail.cf must define the filters sendmail.mc names;
/// - else the m4 output is written atomically over sendmail.cf, keeping
///   that file's owner and mode.
fn build_sendmail_cf(root: &Root, mc: &Path, cf: &Path, make: Option<&Path>) -> Result<(), String> {
    let cf_text = run_m4(&root.join(mc))?;
    if let Some(dir) = make {
        run_command(&[
            "make".to_string(),
            "-s".to_string(),
            "-C".to_string(),
            root.join(dir).display().to_string(),
        ])?;
        return check_cf(root, mc, cf);
    }
    let shown = |e: FsError| {
        let cause = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        format!("{e}{cause}")
    };
    let (dir, name, _) = Dir::parent_of(root, cf, None).map_err(shown)?;
    let (uid, gid, mode) = match dir.stat(&name).map_err(shown)? {
        Some(st) => (Some(st.st_uid), Some(st.st_gid), st.st_mode & 0o7777),
        None => (None, None, 0o644),
    };
    dir.write_atomic(&name, &cf_text, uid, gid, mode)
        .map_err(shown)
}

/// `m4 FILE`'s output; an error when m4 fails or writes to stderr (m4
/// reports an undefined macro or a missing include there and still exits
/// 0 for some of them).
fn run_m4(mc: &Path) -> Result<Vec<u8>, String> {
    let output = Command::new("m4")
        .arg(mc)
        .output()
        .map_err(|e| format!("failed to run m4: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    match stderr.lines().find(|l| !l.trim().is_empty()) {
        _ if !output.status.success() => Err(format!(
            "m4 {} failed ({}): {}",
            mc.display(),
            output.status,
            stderr.trim()
        )),
        Some(first) => Err(format!(
            "m4 {} complained, sendmail.cf left as it was: {}",
            mc.display(),
            first.trim()
        )),
        None => Ok(output.stdout),
    }
}

/// After `make`: every filter sendmail.mc calls (`INPUT_MAIL_FILTER`) is in
/// sendmail.cf's `InputMailFilters` with the same socket.
fn check_cf(root: &Root, mc: &Path, cf: &Path) -> Result<(), String> {
    use crate::formats::sendmail::{parse_cf, parse_filters};
    let read = |p: &Path| {
        std::fs::read(root.join(p)).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let wanted = parse_filters(&read(mc)?);
    let built = parse_cf(&read(cf)?);
    for f in wanted.iter().filter(|f| f.input) {
        let found = built
            .filters
            .iter()
            .any(|b| b.input && b.name == f.name && b.socket == f.socket);
        if !found {
            return Err(format!(
                "{} does not call the filter {} of {} after the rebuild",
                cf.display(),
                f.name,
                mc.display()
            ));
        }
    }
    Ok(())
}

impl ReloadOutcome {
    /// The JSON form.
    pub fn to_json(&self) -> Value {
        json!({"command": self.command, "ok": self.ok, "message": self.message})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(units: &[&str]) -> ApplyOptions {
        ApplyOptions {
            reload: true,
            engine_units: units.iter().map(|s| s.to_string()).collect(),
            postfix_config_dir: None,
            probe: None,
            reload_only: false,
        }
    }

    fn plain_sendmail() -> Sendmail {
        Sendmail {
            mc: PathBuf::from("/etc/mail/sendmail.mc"),
            debian: false,
        }
    }

    fn shown<'a>(s: impl Iterator<Item = &'a Step>) -> Vec<String> {
        s.map(Step::display).collect()
    }

    fn seq(reloads: &[Reload], created: &[&str], units: &[&str]) -> Sequence {
        let created = created.iter().map(|s| s.to_string()).collect();
        let r = reloads.iter().copied().collect();
        sequence(&r, &created, &[], &opts(units), &plain_sendmail())
    }

    #[test]
    fn units_changed_restarts_or_enables() {
        let all = [Reload::Units, Reload::Engine, Reload::Postfix];
        let s = seq(&all, &["dkimctl.service"], &["dkimctl.service"]);
        assert_eq!(
            shown(s.all()),
            vec![
                "systemctl daemon-reload",
                "systemctl enable dkimctl.service",
                "systemctl restart dkimctl.service",
                "postfix reload"
            ]
        );
        let s = seq(&all, &[], &["opendkim.service"]);
        assert_eq!(
            needed_line(&s).as_deref(),
            Some(
                "run: systemctl daemon-reload && systemctl restart opendkim.service && postfix reload"
            )
        );
    }

    #[test]
    fn engine_only_reloads_and_restart_engine_restarts() {
        let s = seq(&[Reload::Engine], &[], &["opendkim.service"]);
        assert_eq!(shown(s.all()), vec!["systemctl reload opendkim.service"]);
        let s = seq(
            &[Reload::Engine, Reload::RestartEngine],
            &[],
            &["opendkim.service"],
        );
        assert_eq!(shown(s.all()), vec!["systemctl restart opendkim.service"]);
    }

    #[test]
    fn a_new_timer_is_enabled_and_the_engine_left_alone() {
        let s = seq(
            &[Reload::Timers],
            &["dkimctl-rotate.timer", "dkimctl-rotate.service"],
            &["dkimctl.service"],
        );
        assert_eq!(
            shown(s.all()),
            vec![
                "systemctl daemon-reload",
                "systemctl enable --now dkimctl-rotate.timer"
            ]
        );
    }

    #[test]
    fn reload_only_never_restarts() {
        let mut o = opts(&["dkimctl.service"]);
        o.reload_only = true;
        let r = BTreeSet::from([Reload::Units, Reload::Engine]);
        let s = sequence(&r, &BTreeSet::new(), &[], &o, &plain_sendmail());
        assert_eq!(
            shown(s.all()),
            vec![
                "systemctl daemon-reload",
                "systemctl reload dkimctl.service"
            ]
        );
    }

    #[test]
    fn postfix_dir_and_sendmail() {
        let mut o = opts(&[]);
        o.postfix_config_dir = Some(PathBuf::from("/etc/postfix-out"));
        let both = BTreeSet::from([Reload::Postfix, Reload::Sendmail]);
        let s = sequence(&both, &BTreeSet::new(), &[], &o, &plain_sendmail());
        assert_eq!(
            shown(s.mta.iter()),
            vec![
                "postfix -c /etc/postfix-out reload",
                "m4 /etc/mail/sendmail.mc > /etc/mail/sendmail.cf",
                "systemctl restart sendmail"
            ]
        );
        // Debian's way: its Makefile, then its init script's reload.
        let debian = Sendmail {
            debian: true,
            ..plain_sendmail()
        };
        let s = sequence(&both, &BTreeSet::new(), &[], &o, &debian);
        assert_eq!(
            shown(s.mta.iter()),
            vec![
                "postfix -c /etc/postfix-out reload",
                "make -C /etc/mail",
                "/etc/init.d/sendmail reload"
            ]
        );
        assert!(
            s.mta
                .iter()
                .skip(1)
                .all(|m| m.reload_kind() == Some(Reload::Sendmail))
        );
        assert_eq!(needed_line(&Sequence::default()), None);
    }

    /// Debian's packaging is recognised by the Makefile sendmail's
    /// update_mk writes next to sendmail.mc and by the init script.
    #[test]
    fn debian_sendmail_is_recognised() {
        let d = tempfile::tempdir().expect("tmp");
        let root = Root::new(d.path());
        assert!(!Sendmail::on(&root, None).debian);
        std::fs::create_dir_all(d.path().join("etc/mail")).unwrap();
        std::fs::create_dir_all(d.path().join("etc/init.d")).unwrap();
        std::fs::write(
            d.path().join("etc/mail/Makefile"),
            "#!/usr/bin/make -f\n##### generated via: (/usr/bin/perl v5>36.0)\n#####\t\t/usr/share/sendmail/update_mk\n",
        )
        .unwrap();
        assert!(!Sendmail::on(&root, None).debian, "no init script");
        std::fs::write(d.path().join("etc/init.d/sendmail"), "#!/bin/sh\n").unwrap();
        let s = Sendmail::on(&root, None);
        assert!(s.debian);
        assert_eq!(s.mc, Path::new("/etc/mail/sendmail.mc"));
        // A Makefile of another origin is not Debian's.
        std::fs::write(d.path().join("etc/mail/Makefile"), "all: sendmail.cf\n").unwrap();
        assert!(!Sendmail::on(&root, Some(Path::new("/etc/mail/sendmail.mc"))).debian);
    }

    /// The running system's needs join the file changes': a dead engine is
    /// started, the MTA reload that failed last time is retried, the
    /// replaced engine is stopped last, and the MTA is touched only after
    /// the engine answers.
    #[test]
    fn pending_service_actions_make_before_break() {
        let pending = |id, service| Pending {
            id,
            service,
            reason: String::new(),
        };
        let p = [
            pending("engine-replaced", Service::Stop("opendkim.service".into())),
            pending(
                "engine-not-running",
                Service::Start("dkimctl.service".into()),
            ),
            pending("reload-failed", Service::Retry(Reload::Postfix)),
        ];
        let mut o = opts(&["dkimctl.service"]);
        o.probe = Some("unix:/run/dkimctl/dkimctl.sock".into());
        let s = sequence(
            &BTreeSet::new(),
            &BTreeSet::new(),
            &p,
            &o,
            &plain_sendmail(),
        );
        assert_eq!(
            shown(s.engine.iter()),
            vec![
                "systemctl enable dkimctl.service",
                "systemctl restart dkimctl.service",
                "wait until the milter answers on unix:/run/dkimctl/dkimctl.sock"
            ]
        );
        assert_eq!(shown(s.mta.iter()), vec!["postfix reload"]);
        assert_eq!(
            shown(s.after.iter()),
            vec![
                "wait until opendkim.service serves no more MTA sessions",
                "systemctl disable --now opendkim.service"
            ]
        );
        assert_eq!(
            needed_line(&s).as_deref(),
            Some(
                "run: systemctl enable dkimctl.service && systemctl restart dkimctl.service && postfix reload && systemctl disable --now opendkim.service"
            )
        );
        // A stale engine reloads; nothing else to wait for without a change.
        let p = [pending(
            "engine-stale",
            Service::Reload("dkimctl.service".into()),
        )];
        let s = sequence(
            &BTreeSet::new(),
            &BTreeSet::new(),
            &p,
            &o,
            &plain_sendmail(),
        );
        assert_eq!(s.engine[0].display(), "systemctl reload dkimctl.service");
        assert_eq!(
            Step::Run(vec!["postfix".into(), "reload".into()]).reload_kind(),
            Some(Reload::Postfix)
        );
    }

    /// True when m4 and make are here; under CI their absence fails (the
    /// test command installs them).
    fn have_m4_and_make() -> bool {
        let found = ["m4", "make"].iter().all(|t| {
            Command::new(t)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        if !found {
            assert!(
                std::env::var("CI").is_err(),
                "m4 and make are required under CI"
            );
            eprintln!("skipped: m4 or make not found");
        }
        found
    }

    /// A failing m4 leaves sendmail.cf as it was and sendmail is not told,
    /// with or without Debian's Makefile (whose own rule would install the
    /// broken output); after make, sendmail.cf must call sendmail.mc's
    /// filters.
    #[test]
    fn sendmail_cf_is_replaced_only_by_a_good_build() {
        if !have_m4_and_make() {
            return;
        }
        let d = tempfile::tempdir().expect("tmp");
        let root = Root::new(d.path());
        let etc = d.path().join("etc/mail");
        std::fs::create_dir_all(&etc).unwrap();
        let mc = etc.join("sendmail.mc");
        let cf = etc.join("sendmail.cf");
        let steps = |make: bool| {
            vec![
                Step::BuildSendmailCf {
                    mc: PathBuf::from("/etc/mail/sendmail.mc"),
                    cf: PathBuf::from("/etc/mail/sendmail.cf"),
                    make: make.then(|| PathBuf::from("/etc/mail")),
                },
                run(&["/nonexistent/init.d/sendmail", "reload"]),
            ]
        };
        // Debian's rule in spirit: whatever m4 printed goes over
        // sendmail.cf.
        std::fs::write(
            etc.join("Makefile"),
            "all:\n\tm4 sendmail.mc > sendmail.cf.new || true\n\tmv -f sendmail.cf.new sendmail.cf\n",
        )
        .unwrap();
        std::fs::write(&mc, "include(`/nonexistent/cf.m4')dnl\n").unwrap();
        for make in [false, true] {
            std::fs::write(&cf, "old\n").unwrap();
            let out = execute(&steps(make), &root);
            assert!(!out[0].ok, "{out:?}");
            assert!(
                out[0].message.as_deref().unwrap_or("").contains("m4"),
                "{out:?}"
            );
            assert_eq!(
                out[1].message.as_deref(),
                Some("skipped: sendmail.cf could not be rebuilt")
            );
            assert_eq!(std::fs::read_to_string(&cf).unwrap(), "old\n");
        }
        // A good sendmail.mc: m4's output, by m4 or by make.
        std::fs::write(&mc, "divert(0)dnl\nV10/Berkeley\n").unwrap();
        for make in [false, true] {
            std::fs::write(&cf, "old\n").unwrap();
            let out = execute(&steps(make)[..1], &root);
            assert!(out[0].ok, "{out:?}");
            assert_eq!(std::fs::read_to_string(&cf).unwrap(), "V10/Berkeley\n");
        }
        // make that does not produce the filter sendmail.mc calls.
        std::fs::write(
            &mc,
            "divert(0)dnl\nINPUT_MAIL_FILTER(`dkimctl', `S=local:/run/dkimctl/dkimctl.sock, F=T')dnl\n",
        )
        .unwrap();
        std::fs::write(etc.join("Makefile"), "all:\n\techo rebuilt > sendmail.cf\n").unwrap();
        let out = execute(&steps(true)[..1], &root);
        assert!(!out[0].ok);
        assert!(
            out[0]
                .message
                .as_deref()
                .unwrap_or("")
                .contains("does not call the filter dkimctl"),
            "{out:?}"
        );
    }

    #[test]
    fn failures_are_recorded_and_the_rest_still_run() {
        let d = tempfile::tempdir().expect("tmp");
        let root = Root::new(d.path());
        let s = vec![
            run(&["false"]),
            Step::BuildSendmailCf {
                mc: PathBuf::from("/missing.mc"),
                cf: PathBuf::from("/sendmail.cf"),
                make: None,
            },
            run(&["/etc/init.d/sendmail", "reload"]),
            run(&["true"]),
            run(&["/nonexistent/dkimctl-test-binary"]),
        ];
        let out = execute(&s, &root);
        assert_eq!(out.len(), 5);
        assert!(!out[0].ok);
        assert!(!out[1].ok);
        assert_eq!(
            out[2].message.as_deref(),
            Some("skipped: sendmail.cf could not be rebuilt")
        );
        assert!(out[3].ok, "{out:?}");
        assert!(!out[4].ok);
        assert!(!d.path().join("sendmail.cf").exists());
    }
}
