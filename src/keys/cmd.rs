//! The `keys generate` and `dns records` commands: the keys the model
//! names, created on disk, and the records that publish them.

use std::io::Write;
use std::path::Path;

use crate::config::model::{Config, Domain, Key, KeyState};
use crate::host::Root;
use crate::host::accounts;

/// A failure of a key command; names the file.
pub type CmdError = Box<dyn std::error::Error + Send + Sync>;

/// The owner ids a key file gets: the service user and group under the
/// root when they exist and we may chown (root); otherwise ours, and
/// `dkimctl apply` fixes the owner once the user exists.
pub fn key_owner(config: &Config, root: &Root) -> (Option<u32>, Option<u32>) {
    if !nix::unistd::geteuid().is_root() {
        return (None, None);
    }
    let Ok(acc) = accounts::load(root) else {
        return (None, None);
    };
    let uid = acc.user(&config.service.user).map(|u| u.uid);
    let gid = acc.group(&config.service.group).map(|g| g.gid);
    (uid, gid)
}

/// Every key whose private half must exist, with the domain that owns it
/// (shared keys appear once).
pub fn owned_keys(config: &Config) -> impl Iterator<Item = (&Domain, &Key)> {
    config
        .domains
        .iter()
        .filter(|d| d.key_from.is_none())
        .flat_map(|d| d.keys.iter().map(move |k| (d, k)))
        .filter(|(_, k)| k.state.needs_private_key())
}

/// Creates every missing key (every key with `force`). Exit code 0.
pub fn generate_all(
    config: &Config,
    root: &Root,
    force: bool,
    out: &mut dyn Write,
) -> Result<i32, CmdError> {
    let (uid, gid) = key_owner(config, root);
    let mut created = 0;
    for (domain, key) in owned_keys(config) {
        let real = root.join(&key.path);
        if !force && std::fs::symlink_metadata(&real).is_ok() {
            writeln!(
                out,
                "exists   {} ({}), kept",
                key.path.display(),
                key.selector
            )?;
            continue;
        }
        if let Some(dir) = real.parent() {
            create_key_dirs(dir, root, &config.service.key_dir, uid, gid)?;
        }
        let progress = crate::cli::progress::Progress::new("generating keys", 1);
        progress.step(
            0,
            &format!(
                "{} {}-bit key for {}._domainkey.{}",
                key.algorithm.key_type(),
                if key.algorithm == crate::config::model::Algorithm::RsaSha256 {
                    key.rsa_bits
                } else {
                    256
                },
                key.selector,
                domain.name
            ),
        );
        let pair = super::generate(key.algorithm, key.rsa_bits)?;
        progress.finish();
        super::write_private_key(&real, &pair.private_pem, uid, gid, 0o600, force)?;
        created += 1;
        writeln!(
            out,
            "created  {} ({} {} bits, selector {} of {})",
            key.path.display(),
            key.algorithm.key_type(),
            pair.bits,
            key.selector,
            domain.name
        )?;
    }
    if created > 0 {
        writeln!(
            out,
            "next: publish the records (`dkimctl dns records`), then `dkimctl dns check`"
        )?;
    }
    Ok(0)
}

/// Creates missing key directories with mode 0750 from the start.
fn create_key_dirs(
    dir: &Path,
    root: &Root,
    key_dir: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), CmdError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_key_dirs(parent, root, key_dir, uid, gid)?;
    }
    std::fs::DirBuilder::new()
        .mode(0o750)
        .create(dir)
        .map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
    let within = root.host_path(dir).is_some_and(|h| h.starts_with(key_dir));
    if within && (uid.is_some() || gid.is_some()) {
        std::os::unix::fs::chown(dir, uid, gid)
            .map_err(|e| format!("failed to chown {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// One record to publish.
pub struct Record {
    /// `sel._domainkey.example.com`.
    pub name: String,
    /// The signing domain.
    pub domain: String,
    /// The selector.
    pub selector: String,
    /// The key's state.
    pub state: KeyState,
    /// The joined TXT value.
    pub value: String,
}

/// The records of every domain and selector (shared keys are published
/// under each domain that signs with them). A missing private key is an
/// error naming the file and the command that creates it.
pub fn records(
    config: &Config,
    root: &Root,
) -> Result<Vec<(Record, crate::config::model::Algorithm)>, CmdError> {
    let mut out = Vec::new();
    for d in &config.domains {
        for k in &d.keys {
            let value = if k.state == KeyState::Retired {
                super::revoked_record_value(k.algorithm)
            } else {
                let loaded = super::load_private_key(&root.join(&k.path))
                    .map_err(|e| format!("{e}; create it with `dkimctl keys generate`"))?;
                super::record_value(k.algorithm, &loaded.public, d.record)
            };
            out.push((
                Record {
                    name: super::record_name(&k.selector, &d.name),
                    domain: d.name.clone(),
                    selector: k.selector.clone(),
                    state: k.state,
                    value,
                },
                k.algorithm,
            ));
        }
    }
    Ok(out)
}

/// `dkimctl dns records`.
pub fn print_records(
    config: &Config,
    root: &Root,
    plain: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, CmdError> {
    let recs = records(config, root)?;
    if json {
        let list: Vec<serde_json::Value> = recs
            .iter()
            .map(|(r, alg)| {
                serde_json::json!({
                    "name": r.name,
                    "domain": r.domain,
                    "selector": r.selector,
                    "algorithm": alg.as_str(),
                    "state": r.state.as_str(),
                    "value": r.value,
                    "strings": super::character_strings(&r.value),
                    "zone": super::zone_form(&format!("{}.", r.name), &r.value),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &serde_json::json!({ "records": list }))?;
        writeln!(out)?;
        return Ok(0);
    }
    for (r, _) in &recs {
        let note = match r.state {
            KeyState::Active => "signing",
            KeyState::Pending => "pending: publish before `dkimctl rotate --continue`",
            KeyState::Retiring => "retiring: keep published until the grace period ends",
            KeyState::Retired => "retired: revoked, publish the empty p=",
        };
        writeln!(out, "; {} selector {} ({note})", r.domain, r.selector)?;
        if plain {
            writeln!(out, "name:  {}", r.name)?;
            writeln!(out, "type:  TXT")?;
            writeln!(out, "value: {}", r.value)?;
        } else {
            writeln!(
                out,
                "{}",
                super::zone_form(&format!("{}.", r.name), &r.value)
            )?;
        }
    }
    Ok(0)
}
