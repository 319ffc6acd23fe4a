//! `dkimctl keys generate`.

use std::io::Write;

use super::Error;
use crate::apply::keys::generate_missing;
use crate::apply::keys::owned_keys;
use crate::config::Config;
use crate::config::model::Algorithm;
use crate::host::Root;
use crate::report::progress::Progress;

/// Creates every missing key (every key with `force`), printing one line
/// per key. Exit code 0.
pub fn generate(
    config: &Config,
    root: &Root,
    force: bool,
    out: &mut dyn Write,
) -> Result<i32, Error> {
    // A line on a terminal while RSA keys are made (RSA-4096 takes a
    // while); gone again once they are written.
    let progress = Progress::new("generating keys", owned_keys(config).count());
    let mut i = 0;
    let outcomes = generate_missing(config, root, force, &mut |domain, key| {
        let bits = if key.algorithm == Algorithm::RsaSha256 {
            key.rsa_bits
        } else {
            256
        };
        progress.step(
            i,
            &format!(
                "{} {bits}-bit key for {}._domainkey.{}",
                key.algorithm.key_type(),
                key.selector,
                domain.name
            ),
        );
        i += 1;
    });
    progress.finish();
    let outcomes = outcomes?;
    let mut created = 0;
    for o in &outcomes {
        match o.created {
            None => writeln!(out, "exists   {} ({}), kept", o.path.display(), o.selector)?,
            Some(bits) => {
                created += 1;
                writeln!(
                    out,
                    "created  {} ({} {bits} bits, selector {} of {})",
                    o.path.display(),
                    o.algorithm.key_type(),
                    o.selector,
                    o.domain
                )?;
            }
        }
    }
    if created > 0 {
        writeln!(
            out,
            "next: publish the records (`dkimctl dns records`), then `dkimctl dns check`"
        )?;
    }
    Ok(0)
}
