//! The TXT record to publish for every domain and selector, from the
//! private keys on disk (`dkimctl dns records`, bootstrap, selftest
//! `--local-keys`).

use std::fmt;

use crate::config::model::{Algorithm, Config, Key, KeyState};
use crate::host::Root;
use crate::keys;

/// A private key the configuration names cannot be read.
#[derive(Debug)]
pub struct RecordsError(pub keys::LoadError);

impl fmt::Display for RecordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot make the record of a key; create it with `dkimctl keys generate`"
        )
    }
}

impl std::error::Error for RecordsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
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
pub fn records(config: &Config, root: &Root) -> Result<Vec<(Record, Algorithm)>, RecordsError> {
    let mut out = Vec::new();
    for d in &config.domains {
        for k in &d.keys {
            let value = if k.state == KeyState::Retired {
                revoked_value(config, k)
            } else {
                let loaded = keys::load_private_key(&root.join(&k.path)).map_err(RecordsError)?;
                keys::record_value(k.algorithm, &loaded.public, d.record)
            };
            out.push((
                Record {
                    name: keys::record_name(&k.selector, &d.name),
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

/// The revoked record of a retired key (empty `p=`, RFC 6376 §3.6.1).
/// With `[rotation] publish_retired`, its `n=` note is the URL where the
/// retired private key is published, and nothing else.
pub fn revoked_value(config: &Config, key: &Key) -> String {
    match &config.rotation.publish_retired {
        None => keys::revoked_record_value(key.algorithm),
        Some(p) => format!(
            "v=DKIM1; k={}; n={}; p=",
            key.algorithm.key_type(),
            retired_key_url(&p.url, key)
        ),
    }
}

/// The file name a retired private key is published under:
/// `SELECTOR._domainkey.DOMAIN.pem` (the domain that owns the key file).
pub fn retired_key_file_name(key: &Key) -> String {
    format!(
        "{}.pem",
        keys::record_name(&key.selector, &key.owner_domain)
    )
}

/// The URL of a retired key's published file.
pub fn retired_key_url(base: &str, key: &Key) -> String {
    format!("{base}{}", retired_key_file_name(key))
}
