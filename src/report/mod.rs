//! The vocabulary every report shares: how bad something is
//! ([`Severity`]), where it is ([`Origin`]), how a finding reads
//! ([`Finding`]), how text from other people's files is made safe to print
//! ([`clean`]), and the exit code a set of findings gives
//! ([`exit_code`]).
//!
//! `check` (diagnostics of dkim.toml), `audit` (findings about a host) and
//! `dns check` (findings about published records) all speak it, so their
//! severities, colours, JSON words and exit codes agree.

pub mod progress;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// How bad something is; ordered from harmless to fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Correct (`dns check` reports every record, good ones too).
    Ok,
    /// Worth knowing; nothing is wrong.
    Info,
    /// Works, but is weak or surprising.
    Warning,
    /// Broken, or must be fixed before anything is rendered or applied.
    Error,
}

impl Severity {
    /// The word printed and used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// The word, in its terminal colour when `color` is set.
    pub fn colored(self, color: bool) -> String {
        if !color {
            return self.as_str().to_string();
        }
        let code = match self {
            Severity::Ok => "\x1b[32m",
            Severity::Info => "\x1b[34m",
            Severity::Warning => "\x1b[33m",
            Severity::Error => "\x1b[31m",
        };
        format!("{code}{}\x1b[0m", self.as_str())
    }
}

/// The exit code of a report: 2 when it is incomplete (something could
/// not be checked), 1 when a finding is at or above `fail_on`, else 0.
pub fn exit_code(incomplete: bool, worst: Option<Severity>, fail_on: Severity) -> i32 {
    if incomplete {
        2
    } else if worst.is_some_and(|w| w >= fail_on) {
        1
    } else {
        0
    }
}

/// A place in a file: host path and 1-based line (`None`: the whole file).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    /// Host path (`/etc/opendkim.conf`), not the path under `--root`.
    pub file: PathBuf,
    /// 1-based line.
    pub line: Option<usize>,
}

impl Origin {
    /// A line of a file.
    pub fn line(file: &Path, line: usize) -> Origin {
        Origin {
            file: file.to_path_buf(),
            line: Some(line),
        }
    }

    /// A whole file.
    pub fn file(file: &Path) -> Origin {
        Origin {
            file: file.to_path_buf(),
            line: None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// One problem found on the system, with a stable id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable id: scripts and `--json` consumers match on it.
    pub id: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// Host path of the file where it applies, if any.
    pub file: Option<PathBuf>,
    /// 1-based line in that file, if any.
    pub line: Option<usize>,
    /// What is wrong, one clause, lower case.
    pub message: String,
    /// Why it matters.
    pub why: String,
    /// How to fix it.
    pub fix: String,
}

impl Finding {
    /// A finding at a place (or nowhere in particular). Message and fix
    /// are [`clean`]ed: they often quote the admin's files.
    pub fn new(
        id: &'static str,
        severity: Severity,
        at: Option<&Origin>,
        message: impl Into<String>,
        why: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            id,
            severity,
            file: at.map(|o| o.file.clone()),
            line: at.and_then(|o| o.line),
            message: clean(&message.into()),
            why: why.into(),
            fix: clean(&fix.into()),
        }
    }

    /// `FILE:LINE`, `FILE` or nothing.
    pub fn place(&self) -> Option<String> {
        let file = self.file.as_ref()?;
        Some(match self.line {
            Some(l) => format!("{}:{l}", file.display()),
            None => file.display().to_string(),
        })
    }

    /// The JSON form: `{id, severity, file, line, message, why, fix}`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "severity": self.severity.as_str(),
            "file": self.file.as_ref().map(|f| f.display().to_string()),
            "line": self.line,
            "message": self.message,
            "why": self.why,
            "fix": self.fix,
        })
    }
}

/// The closest candidate to a misspelt word, if one is close enough
/// (Levenshtein distance at most a third of the word, and at least 1).
///
/// Cheap per word whatever the input: candidates whose length alone puts
/// them out of reach are skipped, the table stops as soon as a row
/// exceeds the limit, and a word longer than [`SUGGEST_MAX_LEN`] gets no
/// suggestion (audit of 20,000 unknown options took 26 s before).
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if word.len() > SUGGEST_MAX_LEN {
        return None;
    }
    let limit = (word.len() / 3).max(1);
    let a: Vec<char> = word.chars().collect();
    let mut rows = (Vec::new(), Vec::new());
    candidates
        .iter()
        .filter(|c| c.chars().count().abs_diff(a.len()) <= limit)
        .filter_map(|c| levenshtein_within(&a, c, limit, &mut rows).map(|d| (d, *c)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Longest word [`did_you_mean`] looks at: no name it suggests is longer.
pub const SUGGEST_MAX_LEN: usize = 64;

/// The Levenshtein distance of `a` and `b` if it is at most `limit`.
/// `rows` is scratch space, reused between calls.
fn levenshtein_within(
    a: &[char],
    b: &str,
    limit: usize,
    rows: &mut (Vec<usize>, Vec<usize>),
) -> Option<usize> {
    let b: Vec<char> = b.chars().collect();
    let (prev, cur) = rows;
    prev.clear();
    prev.extend(0..=b.len());
    for (i, ca) in a.iter().enumerate() {
        cur.clear();
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        // Every later row is at least this row's smallest value.
        if cur.iter().min().is_some_and(|&m| m > limit) {
            return None;
        }
        std::mem::swap(prev, cur);
    }
    Some(prev[b.len()]).filter(|&d| d <= limit)
}

/// An error and its causes on one line, `message: cause: cause`, for log
/// lines and reasons kept as text (a terminal gets each cause on its own
/// line from `main`). Messages never repeat their cause themselves, so the
/// chain is where it is said.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Text from other people's files made safe to print: control characters
/// (a terminal escape hidden in a config file or a DNS record) shown as
/// `\xNN`.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        // A line break or a tab cannot fake a line of output; zone-form
        // records in fix texts use both.
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(clean("plain"), "plain");
        assert_eq!(clean("a (\n\t\"p=\" )"), "a (\n\t\"p=\" )");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(true, None, Severity::Error), 2);
        assert_eq!(
            exit_code(false, Some(Severity::Warning), Severity::Error),
            0
        );
        assert_eq!(
            exit_code(false, Some(Severity::Warning), Severity::Warning),
            1
        );
        assert_eq!(exit_code(false, None, Severity::Info), 0);
    }

    #[test]
    fn severities_order_and_colour() {
        assert!(Severity::Ok < Severity::Info && Severity::Warning < Severity::Error);
        assert_eq!(Severity::Error.colored(false), "error");
        assert_eq!(Severity::Error.colored(true), "\x1b[31merror\x1b[0m");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("selectr", &["selector", "subdomains"]),
            Some("selector")
        );
        assert_eq!(did_you_mean("zzz", &["selector"]), None);
    }
}
