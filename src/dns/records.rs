//! The TXT record to publish for every domain and selector, from the
//! private keys on disk (`dkimctl dns records`, bootstrap, selftest
//! `--local-keys`).

use std::fmt;

use crate::config::model::{Algorithm, Config, KeyState};
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
                keys::revoked_record_value(k.algorithm)
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
