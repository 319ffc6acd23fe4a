//! `dkimctl bootstrap`: the admin's one command from nothing. It builds a
//! commented dkim.toml with safe defaults (or takes the existing one),
//! shows the plan (keys included), asks, then writes dkim.toml, applies
//! the plan and prints the DNS records to publish. Declined, or without
//! `--yes` and a terminal, it writes nothing. Running it again changes
//! nothing.

use std::io::Write;

use super::apply::{ApplyFlags, confirm_and_apply, make_plan};
use super::{Error, Global, MtaChoice, valid_config};
use crate::config::emit::{Choices, initial_config};
use crate::config::types::Date;
use crate::config::validate::normalize_domain;
use crate::config::{self, Source};
use crate::host::Root;

/// What bootstrap writes a new dkim.toml for.
pub struct NewConfig<'a> {
    /// The domains (`--domain`, repeatable).
    pub domains: &'a [String],
    /// `--opendkim`.
    pub opendkim: bool,
    /// `--mta`.
    pub mta: MtaChoice,
}

/// `dkimctl bootstrap`.
pub fn bootstrap(
    root: &Root,
    source: &Source,
    global: &Global,
    new: &NewConfig<'_>,
    flags: ApplyFlags,
) -> Result<i32, Error> {
    let exists = source.real.exists();
    let text = if exists {
        println!("Using the existing {}.", source.real.display());
        config::read_text(source)?
    } else {
        if new.domains.is_empty() {
            return Err("bootstrap needs at least one --domain to write a new dkim.toml".into());
        }
        let mut names = Vec::new();
        for d in new.domains {
            names.push(normalize_domain(d).map_err(|e| format!("invalid domain {d}: {e}"))?);
        }
        let choices = Choices {
            opendkim: new.opendkim,
            mta: match new.mta {
                MtaChoice::Postfix => "postfix",
                MtaChoice::Sendmail => "sendmail",
                MtaChoice::None => "none",
            },
        };
        initial_config(&names, &Date::today().to_string(), choices)
    };
    let (config, templates) = valid_config(&text, root, source, global, true)?;
    let plan = make_plan(&config, &templates, root, flags.live)?;
    let write_new_config = || -> Result<(), Error> {
        if !exists {
            crate::apply::rotation::write_config(source, &text, true)?;
            println!(
                "Wrote {} for {}.",
                source.real.display(),
                config
                    .domains
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    };
    let code = confirm_and_apply(&plan, &config, root, flags, write_new_config)?;
    if code != 0 {
        return Ok(code);
    }
    let mut out = std::io::stdout().lock();
    // apply printed the records of the keys it generated; a bootstrap run
    // again over existing keys prints them here.
    if super::apply::generated_keys(&plan).is_empty() {
        writeln!(
            out,
            "\nPublish these DNS records (one TXT record per selector):\n"
        )?;
        super::dns::print_records(&config, root, false, false, &mut out)?;
    }
    writeln!(
        out,
        "\nNext: once published, run `dkimctl dns check` to confirm receivers will find them."
    )?;
    Ok(0)
}
