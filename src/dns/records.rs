//! `dkimctl dns records`: the TXT record every configured key needs, from
//! the private key files (nothing is looked up).
//!
//! Retired keys get the revoked form (empty `p=`); a `key_from` domain gets
//! the owner's key under its own name.

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::config::Config;
use crate::config::model::{Algorithm, KeyState};
use crate::keys::{self, LoadError};
use crate::root::Root;

/// How `dns records` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// `name<TAB>value`, one record a line, the value unsplit: what a DNS
    /// provider's web form takes (it splits long values itself).
    Plain,
    /// Zone-file (BIND) syntax, one TXT record of several strings.
    Zone,
}

/// One record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEntry {
    /// The signing domain.
    pub domain: String,
    /// The selector.
    pub selector: String,
    /// `selector._domainkey.domain`.
    pub name: String,
    /// The key's state.
    pub state: KeyState,
    /// The key's algorithm.
    pub algorithm: Algorithm,
    /// The TXT record value.
    pub value: String,
}

/// Every record to publish, in dkim.toml order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordsReport {
    /// The records.
    pub records: Vec<RecordEntry>,
}

impl RecordsReport {
    /// Prints the records in `format`.
    pub fn print(&self, out: &mut dyn Write, format: RecordFormat) -> io::Result<()> {
        for r in &self.records {
            match format {
                RecordFormat::Plain => writeln!(out, "{}\t{}", r.name, r.value)?,
                RecordFormat::Zone => {
                    writeln!(out, "; {} {} key of {}", r.state.as_str(), r.algorithm, r.domain)?;
                    writeln!(out, "{}", keys::zone_form(&r.name, &r.value))?;
                }
            }
        }
        Ok(())
    }

    /// `{"records": [{"domain","selector","name","state","algorithm","value","strings"}]}`;
    /// `strings` are the character-strings of the one TXT record.
    pub fn to_json(&self) -> Value {
        let records: Vec<Value> = self
            .records
            .iter()
            .map(|r| {
                json!({
                    "domain": r.domain,
                    "selector": r.selector,
                    "name": r.name,
                    "state": r.state.as_str(),
                    "algorithm": r.algorithm.as_str(),
                    "value": r.value,
                    "strings": keys::character_strings(&r.value),
                })
            })
            .collect();
        json!({ "records": records })
    }
}

/// The records of every key, read from the key files under `root`. A key
/// file that is missing or unreadable is an error naming the file (run
/// `dkimctl keys generate` first).
pub fn records(config: &Config, root: &Root) -> Result<RecordsReport, LoadError> {
    let mut out = RecordsReport::default();
    for d in &config.domains {
        for k in &d.keys {
            let value = if k.state == KeyState::Retired {
                keys::revoked_record_value(k.algorithm)
            } else {
                let loaded = keys::load_private_key(&root.join(&k.path))?;
                keys::record_value(loaded.algorithm, &loaded.public, d.record)
            };
            out.records.push(RecordEntry {
                domain: d.name.clone(),
                selector: k.selector.clone(),
                name: keys::record_name(&k.selector, &d.name),
                state: k.state,
                algorithm: k.algorithm,
                value,
            });
        }
    }
    Ok(out)
}
