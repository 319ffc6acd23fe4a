//! `dkimctl plan` and `dkimctl apply`: what would change, and making it
//! so.

use std::io::{IsTerminal, Write};

use super::{Error, confirm};
use crate::apply::{self, ApplyOptions};
use crate::config::Config;
use crate::config::model::{Mta, Socket};
use crate::host::Root;
use crate::plan::{self, Plan, PrintOptions};
use crate::render::{self, templates::Templates};

/// Renders and plans; with `live` on the live root, the running services
/// are looked at too ([`plan::live`]).
pub fn make_plan(
    config: &Config,
    templates: &Templates,
    root: &Root,
    live: bool,
) -> Result<Plan, Error> {
    let artifacts = render::render(config, templates)?;
    let mut plan = plan::plan(&artifacts, root)?;
    let replaced = render::replaced_engine_artifacts(config, templates);
    plan::add_leftovers(&mut plan, &replaced, root);
    if live && root.is_live() {
        let seen = plan::live::observe(config, root, &artifacts);
        plan.pending = plan::live::pending(config, &seen);
    }
    Ok(plan)
}

/// `dkimctl plan`: 0 nothing to do, 1 changes pending. `not_carried_over`
/// are the lines of an adopted setup that dkim.toml names as left out
/// (`dkimctl import`); the summary repeats them.
pub fn plan(
    config: &Config,
    templates: &Templates,
    root: &Root,
    live: bool,
    not_carried_over: &[String],
    json: bool,
    print: PrintOptions,
) -> Result<i32, Error> {
    let plan = make_plan(config, templates, root, live)?;
    let mut out = std::io::stdout().lock();
    // Hardening the setup would not survive (RequireSafeKeys over keys in
    // unsafe places): shown before anything is applied.
    let breaking = crate::audit::breaking::breaking(config, root);
    if json {
        let mut j = plan.to_json();
        j["not_carried_over"] = serde_json::json!(not_carried_over);
        j["breaking"] = serde_json::json!(breaking);
        serde_json::to_writer_pretty(&mut out, &j)?;
        writeln!(out)?;
    } else {
        plan.print_with(&mut out, &print)?;
        for b in &breaking {
            writeln!(out, "breaking: {b}")?;
        }
        for n in not_carried_over {
            writeln!(out, "not carried over: {n}")?;
        }
    }
    Ok(i32::from(plan.has_changes()))
}

/// How `dkimctl apply` (and bootstrap's apply) runs.
#[derive(Debug, Clone, Copy)]
pub struct ApplyFlags {
    /// `--yes`: do not ask.
    pub yes: bool,
    /// `--no-reload`: print the reloads instead of running them.
    pub no_reload: bool,
    /// `--json`.
    pub json: bool,
    /// Colour on a terminal.
    pub color: bool,
    /// Look at the running services (not `--offline`).
    pub live: bool,
}

/// `dkimctl apply`: plans, shows, asks, applies, reloads.
pub fn apply_config(
    config: &Config,
    templates: &Templates,
    root: &Root,
    flags: ApplyFlags,
) -> Result<i32, Error> {
    let plan = make_plan(config, templates, root, flags.live)?;
    confirm_and_apply(&plan, config, root, flags, || Ok(()))
}

/// Shows `plan`, asks, runs `first` (bootstrap writes dkim.toml there),
/// applies and reloads. Exit 0 when applied or nothing to do, 1 when
/// declined, 2 when a reload failed.
///
/// Without `--yes` the question needs a terminal on both stdin and
/// stdout: `dkimctl apply | tee log` or a script must say `--yes`, and
/// without it nothing changes and the exit code is 2 (as `terraform
/// apply` without `-auto-approve`), instead of applying unasked.
pub fn confirm_and_apply(
    plan: &Plan,
    config: &Config,
    root: &Root,
    flags: ApplyFlags,
    first: impl FnOnce() -> Result<(), Error>,
) -> Result<i32, Error> {
    let mut out = std::io::stdout().lock();
    if !plan.has_changes() {
        drop(out);
        first()?;
        let mut out = std::io::stdout().lock();
        if flags.json {
            serde_json::to_writer_pretty(&mut out, &plan.to_json())?;
            writeln!(out)?;
        } else {
            writeln!(out, "Nothing to change.")?;
        }
        return Ok(0);
    }
    if !flags.json {
        plan.print_with(
            &mut out,
            &PrintOptions {
                color: flags.color,
                verbose: false,
            },
        )?;
        for b in crate::audit::breaking::breaking(config, root) {
            writeln!(out, "breaking: {b}")?;
        }
    }
    if !flags.yes {
        let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        if !interactive {
            return Err(
                "nothing was changed: apply asks for confirmation on a terminal; run it with --yes \
                 to apply without asking"
                    .into(),
            );
        }
        if !confirm("Apply these changes?")? {
            writeln!(out, "Nothing was changed.")?;
            return Ok(1);
        }
    }
    drop(out);
    first()?;
    let mut out = std::io::stdout().lock();
    let opts = ApplyOptions {
        reload: !flags.no_reload && root.is_live(),
        engine_units: render::engine_units(config),
        postfix_config_dir: match &config.mta {
            Mta::Postfix(p) if p.config_dir != std::path::Path::new("/etc/postfix") => {
                Some(p.config_dir.clone())
            }
            _ => None,
        },
        probe: Some(match &config.service.socket {
            Socket::Unix(p) => format!("unix:{}", root.join(p).display()),
            other => other.to_string(),
        }),
        reload_only: false,
    };
    let report = apply::apply(plan, root, &opts)?;
    if flags.json {
        serde_json::to_writer_pretty(&mut out, &report.to_json())?;
        writeln!(out)?;
    } else {
        report.print(&mut out)?;
        new_key_records(plan, config, root, &mut out)?;
    }
    Ok(if report.ok() { 0 } else { 2 })
}

/// The key files the plan generates (not those it copies from another
/// engine's key directory).
pub(super) fn generated_keys(plan: &Plan) -> Vec<&std::path::Path> {
    plan.changes
        .iter()
        .filter(|c| c.action == plan::Action::Create && c.secret() && c.copy_from.is_none())
        .map(|c| c.host_path())
        .collect()
}

/// The records of the keys this apply generated (not copied): nothing
/// verifies their signatures until they are published. A key written
/// `state = "pending"` signs only once `rotate --continue` saw its record.
fn new_key_records(
    plan: &Plan,
    config: &Config,
    root: &Root,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let generated = generated_keys(plan);
    if generated.is_empty() || !root.join(generated[0]).exists() {
        return Ok(());
    }
    writeln!(
        out,
        "\nNew keys: publish their records (one TXT record per selector):\n"
    )?;
    let keys = crate::dns::records::records(config, root)?;
    for d in &config.domains {
        for k in d
            .keys
            .iter()
            .filter(|k| generated.contains(&k.path.as_path()))
        {
            let Some((r, _)) = keys
                .iter()
                .find(|(r, _)| r.domain == d.name && r.selector == k.selector)
            else {
                continue;
            };
            writeln!(
                out,
                "{}",
                crate::keys::zone_form(&format!("{}.", r.name), &r.value)
            )?;
            let when = match k.state {
                crate::config::model::KeyState::Pending => format!(
                    "; {} signs once it is published and `dkimctl rotate {} --continue` saw it",
                    k.selector, d.name
                ),
                _ => format!(
                    "; {} signs now, and receivers fail its signatures until it is published \
                     (a new key written state = \"pending\" waits for its record)",
                    k.selector
                ),
            };
            writeln!(out, "{when}")?;
        }
    }
    Ok(())
}
