//! systemd unit files (systemd.unit(5)): sections, `Key=value` lines with
//! comments and backslash continuations, the effective value of a setting
//! across a fragment and its drop-ins, and systemd's word splitting.
//!
//! Finding the fragment and drop-ins of a unit under a root is the
//! audit's job ([`crate::audit`]); this module only parses text.

use std::path::{Path, PathBuf};

use crate::report::Origin;

/// One `Key=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The section (`Service`).
    pub section: String,
    /// The key (`ExecStart`).
    pub key: String,
    /// The value, continuation lines joined.
    pub value: String,
    /// Where it is.
    pub at: Origin,
}

/// A unit: its fragment and drop-ins, merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `opendkim.service`.
    pub name: String,
    /// Host path of the fragment.
    pub fragment: PathBuf,
    /// Host paths of the drop-ins, in the order applied.
    pub dropins: Vec<PathBuf>,
    /// Every directive, fragment first, then each drop-in.
    pub directives: Vec<Directive>,
}

impl Unit {
    /// The effective value of a single-valued setting: the last
    /// assignment (an empty one resets it to the default: `None`).
    pub fn get(&self, section: &str, key: &str) -> Option<&Directive> {
        let last = self
            .directives
            .iter()
            .rev()
            .find(|d| d.section == section && d.key == key)?;
        (!last.value.is_empty()).then_some(last)
    }

    /// Every assignment of a list setting after its last reset (an empty
    /// assignment clears the list).
    pub fn all(&self, section: &str, key: &str) -> Vec<&Directive> {
        let mut out = Vec::new();
        for d in &self.directives {
            if d.section == section && d.key == key {
                if d.value.is_empty() {
                    out.clear();
                } else {
                    out.push(d);
                }
            }
        }
        out
    }

    /// True when the setting is assigned at all (even to the empty value,
    /// which for `CapabilityBoundingSet=` means "no capabilities").
    pub fn assigned(&self, section: &str, key: &str) -> Option<&Directive> {
        self.directives
            .iter()
            .rev()
            .find(|d| d.section == section && d.key == key)
    }

    /// Where a finding about the unit as a whole points: its fragment.
    pub fn origin(&self) -> Origin {
        Origin::file(&self.fragment)
    }
}

/// Parses unit file text: sections, `Key=value`, `#`/`;` comments,
/// backslash continuations.
pub fn parse_unit(text: &str, path: &Path) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_end_matches('\r');
        let (start, mut text) = match pending.take() {
            Some((start, mut acc)) => {
                let t = line.trim();
                if t.starts_with('#') || t.starts_with(';') {
                    pending = Some((start, acc));
                    continue;
                }
                acc.push(' ');
                acc.push_str(t);
                (start, acc)
            }
            None => {
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
                    continue;
                }
                if t.starts_with('[') && t.ends_with(']') {
                    section = t[1..t.len() - 1].to_string();
                    continue;
                }
                (i + 1, t.to_string())
            }
        };
        if text.ends_with('\\') {
            text.pop();
            pending = Some((start, text));
            continue;
        }
        if let Some((k, v)) = text.split_once('=') {
            out.push(Directive {
                section: section.clone(),
                key: k.trim().to_string(),
                value: v.trim().to_string(),
                at: Origin::line(path, start),
            });
        }
    }
    if let Some((start, text)) = pending
        && let Some((k, v)) = text.split_once('=')
    {
        out.push(Directive {
            section,
            key: k.trim().to_string(),
            value: v.trim().to_string(),
            at: Origin::line(path, start),
        });
    }
    out
}

/// Splits a line into words as systemd does (its `extract_first_word()`
/// with unquoting, used for `ExecStart=` and sysusers.d lines): double or
/// single quotes group words, a backslash takes the next character
/// literally.
pub fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Splits a command line the way systemd does for `ExecStart=`
/// ([`split_words`]), dropping the `@-:+!` prefixes of the first word.
pub fn split_command(s: &str) -> Vec<String> {
    let mut out = split_words(s);
    if let Some(first) = out.first_mut() {
        *first = first
            .trim_start_matches(['@', '-', ':', '+', '!'])
            .to_string();
    }
    out
}

/// A systemd boolean.
pub fn is_true(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "1" | "yes" | "y" | "true" | "t" | "on"
    )
}

/// The number in "Overall exposure level for X: 9.6 UNSAFE".
pub fn parse_exposure(text: &str) -> Option<f64> {
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for"))?;
    let (_, rest) = line.rsplit_once(": ")?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_with_sections_resets_and_continuations() {
        let p = Path::new("/etc/systemd/system/opendkim.service");
        let d = parse_unit(
            "[Unit]\nDescription=OpenDKIM daemon\n\n[Service]\n# c\nType=forking\n\
             ExecStart=/usr/bin/opendkim \\\n  -x /etc/opendkim/opendkim.conf\n\
             SystemCallFilter=@system-service\nSystemCallFilter=\nCapabilityBoundingSet=\n",
            p,
        );
        let u = Unit {
            name: "opendkim.service".into(),
            fragment: p.into(),
            dropins: vec![],
            directives: d,
        };
        let exec = u.get("Service", "ExecStart").unwrap();
        assert_eq!(
            exec.value,
            "/usr/bin/opendkim  -x /etc/opendkim/opendkim.conf"
        );
        assert_eq!(exec.at.line, Some(7));
        assert!(u.all("Service", "SystemCallFilter").is_empty());
    }

    #[test]
    fn commands_split_like_systemd() {
        assert_eq!(
            split_command("-/usr/sbin/opendkim -x \"/etc/my dir/o.conf\" -p'inet:8891@[::1]'"),
            [
                "/usr/sbin/opendkim",
                "-x",
                "/etc/my dir/o.conf",
                "-pinet:8891@[::1]"
            ]
        );
    }

    #[test]
    fn exposure_line() {
        assert_eq!(
            parse_exposure("x\n→ Overall exposure level for opendkim.service: 9.6 UNSAFE 😨\n"),
            Some(9.6)
        );
        assert_eq!(parse_exposure("nothing"), None);
    }
}
