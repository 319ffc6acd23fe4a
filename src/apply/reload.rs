//! After the files: telling running services about them.
//!
//! The plan says which kinds of reload its changes need ([`Reload`]); this
//! module turns them into commands, runs them on the live system, or
//! tells the admin what to run (under a sandbox root, or without
//! `--reload`). A failing command is reported and the others still run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::tree::{Dir, FsError};
use super::{ApplyOptions, ReloadOutcome};
use crate::host::Root;
use crate::render::artifact::Reload;

/// One thing to do after the files are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Run a command.
    Run(Vec<String>),
    /// `m4 sendmail.mc > sendmail.cf`, written atomically (host paths).
    BuildSendmailCf {
        /// sendmail.mc.
        mc: PathBuf,
        /// sendmail.cf next to it.
        cf: PathBuf,
    },
}

impl Step {
    /// The step as a shell command line, for reports.
    pub(crate) fn display(&self) -> String {
        match self {
            Step::Run(args) => args.join(" "),
            Step::BuildSendmailCf { mc, cf } => {
                format!("m4 {} > {}", mc.display(), cf.display())
            }
        }
    }
}

fn run(args: &[&str]) -> Step {
    Step::Run(args.iter().map(|s| s.to_string()).collect())
}

/// The steps for a set of reloads, in order.
///
/// - `Units`: `systemctl daemon-reload` first.
/// - Each engine unit: restarted when units changed or a restart-only
///   setting did (`enable --now` when its unit file was just created);
///   else reloaded when its configuration changed.
/// - `Postfix`: `postfix reload` (with `-c DIR` when configured).
/// - `Sendmail`: rebuild sendmail.cf from sendmail.mc, restart sendmail.
pub(crate) fn steps(
    reloads: &BTreeSet<Reload>,
    created_units: &BTreeSet<String>,
    opts: &ApplyOptions,
    sendmail_mc: Option<&Path>,
) -> Vec<Step> {
    let mut out = Vec::new();
    if reloads.contains(&Reload::Units) {
        out.push(run(&["systemctl", "daemon-reload"]));
    }
    let restart = reloads.contains(&Reload::Units) || reloads.contains(&Reload::RestartEngine);
    for unit in &opts.engine_units {
        if restart {
            if created_units.contains(unit) {
                out.push(run(&["systemctl", "enable", "--now", unit]));
            } else {
                out.push(run(&["systemctl", "restart", unit]));
            }
        } else if reloads.contains(&Reload::Engine) {
            out.push(run(&["systemctl", "reload", unit]));
        }
    }
    if reloads.contains(&Reload::Postfix) {
        let mut args = vec!["postfix".to_string()];
        if let Some(dir) = &opts.postfix_config_dir {
            args.push("-c".into());
            args.push(dir.display().to_string());
        }
        args.push("reload".into());
        out.push(Step::Run(args));
    }
    if reloads.contains(&Reload::Sendmail) {
        let mc = sendmail_mc
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/etc/mail/sendmail.mc"));
        let cf = mc.with_file_name("sendmail.cf");
        out.push(Step::BuildSendmailCf { mc, cf });
        out.push(run(&["systemctl", "restart", "sendmail"]));
    }
    out
}

/// The line telling the admin what to run.
pub(crate) fn needed_line(steps: &[Step]) -> Option<String> {
    if steps.is_empty() {
        return None;
    }
    let cmds: Vec<String> = steps.iter().map(Step::display).collect();
    Some(format!("run: {}", cmds.join(" && ")))
}

/// Runs the steps; a failure is recorded and the rest still run, except
/// that sendmail is not restarted when its configuration failed to build.
pub(crate) fn execute(steps: &[Step], root: &Root) -> Vec<ReloadOutcome> {
    let mut out = Vec::new();
    let mut cf_failed = false;
    for step in steps {
        let command = step.display();
        let result = match step {
            Step::Run(args) if cf_failed && args.last().map(String::as_str) == Some("sendmail") => {
                Err("skipped: sendmail.cf could not be rebuilt".to_string())
            }
            Step::Run(args) => run_command(args).map(|_| ()),
            Step::BuildSendmailCf { mc, cf } => {
                let r = build_sendmail_cf(root, mc, cf);
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

/// Runs a command; its stdout on success, else a one-line reason.
fn run_command(args: &[String]) -> Result<Vec<u8>, String> {
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

/// `m4 sendmail.mc`, its output written atomically over sendmail.cf
/// (keeping that file's owner and mode), so a failing m4 never leaves a
/// truncated sendmail.cf behind, as `m4 ... > sendmail.cf` would.
fn build_sendmail_cf(root: &Root, mc: &Path, cf: &Path) -> Result<(), String> {
    let cf_text = run_command(&["m4".to_string(), root.join(mc).display().to_string()])?;
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
        }
    }

    fn shown(s: &[Step]) -> Vec<String> {
        s.iter().map(Step::display).collect()
    }

    #[test]
    fn units_changed_restarts_or_enables() {
        let r = BTreeSet::from([Reload::Units, Reload::Engine, Reload::Postfix]);
        let created = BTreeSet::from(["dkimctl.service".to_string()]);
        let s = steps(&r, &created, &opts(&["dkimctl.service"]), None);
        assert_eq!(
            shown(&s),
            vec![
                "systemctl daemon-reload",
                "systemctl enable --now dkimctl.service",
                "postfix reload"
            ]
        );
        let s = steps(&r, &BTreeSet::new(), &opts(&["opendkim.service"]), None);
        assert_eq!(
            needed_line(&s).as_deref(),
            Some(
                "run: systemctl daemon-reload && systemctl restart opendkim.service && postfix reload"
            )
        );
    }

    #[test]
    fn engine_only_reloads_and_restart_engine_restarts() {
        let s = steps(
            &BTreeSet::from([Reload::Engine]),
            &BTreeSet::new(),
            &opts(&["opendkim.service"]),
            None,
        );
        assert_eq!(shown(&s), vec!["systemctl reload opendkim.service"]);
        let s = steps(
            &BTreeSet::from([Reload::Engine, Reload::RestartEngine]),
            &BTreeSet::new(),
            &opts(&["opendkim.service"]),
            None,
        );
        assert_eq!(shown(&s), vec!["systemctl restart opendkim.service"]);
    }

    #[test]
    fn postfix_dir_and_sendmail() {
        let mut o = opts(&[]);
        o.postfix_config_dir = Some(PathBuf::from("/etc/postfix-out"));
        let s = steps(
            &BTreeSet::from([Reload::Postfix, Reload::Sendmail]),
            &BTreeSet::new(),
            &o,
            Some(Path::new("/etc/mail/sendmail.mc")),
        );
        assert_eq!(
            shown(&s),
            vec![
                "postfix -c /etc/postfix-out reload",
                "m4 /etc/mail/sendmail.mc > /etc/mail/sendmail.cf",
                "systemctl restart sendmail"
            ]
        );
        assert_eq!(needed_line(&[]), None);
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
            },
            run(&["systemctl", "restart", "sendmail"]),
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
