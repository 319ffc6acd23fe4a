//! What dkimctl remembers about DNS between runs, in
//! `/var/lib/dkimctl/dns-state.json` (written by [`crate::apply::rotation`],
//! read here):
//!
//! - the result of the last `dns publish` (or the publish step of
//!   `rotate --auto`), for the engine's metrics and for monitoring;
//! - per record name, the value last found correct at every server and the
//!   day it was first found so: `rotate --auto` switches to a new key only
//!   once its record has been served everywhere for at least a TTL (and a
//!   day), so no cache still holds "no such record".
//!
//! The file is a convenience, not a source of truth: a missing or damaged
//! file reads as empty (a rotation then waits one more day).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::types::Date;
use crate::host::Reader;
use crate::host::Root;

/// Host path of the state file.
pub const STATE_PATH: &str = "/var/lib/dkimctl/dns-state.json";

/// The remembered state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsState {
    /// The last publish, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_publish: Option<PublishResult>,
    /// Record name -> when its current value was first served everywhere.
    #[serde(default)]
    pub seen: BTreeMap<String, Seen>,
}

/// The outcome of one publish run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishResult {
    /// When it ran (seconds since 1970, UTC).
    pub time: u64,
    /// It succeeded: DNS matched dkim.toml afterwards.
    pub ok: bool,
    /// Records created or replaced.
    pub changed: usize,
    /// One line: what happened, or why it failed.
    pub message: String,
}

/// A record value and the first day it was served everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The TXT value found.
    pub value: String,
    /// The first day it was found at every server (`YYYY-MM-DD`).
    pub since: String,
}

impl Seen {
    /// The day, if the file holds a valid one.
    pub fn since(&self) -> Option<Date> {
        Date::parse(&self.since)
    }
}

impl DnsState {
    /// The text written to the file.
    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("the state is plain data");
        s.push('\n');
        s
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<DnsState, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads the state under `root`; missing or unreadable reads as empty.
    pub fn read(root: &Root) -> DnsState {
        Reader::new(root)
            .read(Path::new(STATE_PATH))
            .ok()
            .and_then(|t: String| DnsState::parse(&t).ok())
            .unwrap_or_default()
    }

    /// Notes that `name` serves `value` everywhere on `today`; keeps the
    /// earlier day when the value is the same.
    pub fn saw(&mut self, name: &str, value: &str, today: Date) {
        let keep = self
            .seen
            .get(name)
            .is_some_and(|s| s.value == value && s.since().is_some());
        if !keep {
            self.seen.insert(
                name.to_string(),
                Seen {
                    value: value.to_string(),
                    since: today.to_string(),
                },
            );
        }
    }

    /// The first day `name` served `value` everywhere, if remembered.
    pub fn seen_since(&self, name: &str, value: &str) -> Option<Date> {
        self.seen
            .get(name)
            .filter(|s| s.value == value)
            .and_then(Seen::since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_first_day_kept() {
        let d1 = Date::parse("2026-11-28").unwrap();
        let d2 = Date::parse("2026-11-29").unwrap();
        let mut s = DnsState::default();
        s.saw("a._domainkey.example.com", "v=DKIM1; p=A", d1);
        s.saw("a._domainkey.example.com", "v=DKIM1; p=A", d2);
        assert_eq!(
            s.seen_since("a._domainkey.example.com", "v=DKIM1; p=A"),
            Some(d1)
        );
        // Another value starts again.
        s.saw("a._domainkey.example.com", "v=DKIM1; p=B", d2);
        assert_eq!(
            s.seen_since("a._domainkey.example.com", "v=DKIM1; p=A"),
            None
        );
        s.last_publish = Some(PublishResult {
            time: 1,
            ok: true,
            changed: 2,
            message: "sent".into(),
        });
        assert_eq!(DnsState::parse(&s.to_text()).unwrap(), s);
        assert!(DnsState::parse("{ not json").is_err());
        assert_eq!(DnsState::parse("{}").unwrap(), DnsState::default());
    }
}
