//! The result of `dkimctl dns check`: findings, their stable ids, the
//! human and JSON forms, and the exit code.
//!
//! Every string that came from DNS is already escaped when it reaches a
//! finding ([`super::lookup::shown`]), so printing never passes terminal
//! control bytes from an attacker's record through.

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::config::model::{Algorithm, KeyState};
pub use crate::report::Severity;

/// What was found at a selector's record. The ids ([`Status::as_str`]) are
/// stable: scripts match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `ok`: the record is correct for the key's state.
    Ok,
    /// `missing`: NXDOMAIN, or no TXT record at the name.
    Missing,
    /// `several-records`: more than one TXT record at the name (RFC 6376
    /// §3.6.2.2 leaves the result undefined; receivers fail).
    SeveralRecords,
    /// `syntax`: the record is not a valid DKIM key record.
    Syntax,
    /// `unusable`: valid, but `h=` or `s=` exclude dkimctl's signatures.
    Unusable,
    /// `mismatch`: the published key is not the private key's.
    Mismatch,
    /// `no-private-key`: the private key file is missing or unreadable, so
    /// the record could not be compared with it.
    NoPrivateKey,
    /// `revoked`: empty `p=` for a key that is not retired.
    Revoked,
    /// `not-revoked`: a retired key's record still publishes a key.
    NotRevoked,
    /// `testing`: `t=y` while dkim.toml does not say testing.
    Testing,
    /// `weak-key`: RSA below 2048 bits (below 1024: an error).
    WeakKey,
    /// `algorithm-mismatch`: `k=` differs from the key's algorithm.
    AlgorithmMismatch,
    /// `dns-error`: the lookup failed; the name could not be checked.
    DnsError,
}

impl Status {
    /// The stable id.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::SeveralRecords => "several-records",
            Status::Syntax => "syntax",
            Status::Unusable => "unusable",
            Status::Mismatch => "mismatch",
            Status::NoPrivateKey => "no-private-key",
            Status::Revoked => "revoked",
            Status::NotRevoked => "not-revoked",
            Status::Testing => "testing",
            Status::WeakKey => "weak-key",
            Status::AlgorithmMismatch => "algorithm-mismatch",
            Status::DnsError => "dns-error",
        }
    }
}

/// The one finding for one selector of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorFinding {
    /// The record name, `sel._domainkey.example.com`.
    pub name: String,
    /// The signing domain (`d=`).
    pub domain: String,
    /// The selector (`s=`).
    pub selector: String,
    /// The key's state in dkim.toml.
    pub state: KeyState,
    /// The key's configured algorithm.
    pub algorithm: Algorithm,
    /// What was found.
    pub status: Status,
    /// How bad it is.
    pub severity: Severity,
    /// One line saying what was found.
    pub message: String,
    /// Further lines (e.g. each record found, quoted safely).
    pub detail: Vec<String>,
    /// How to fix it; may span lines (a record in zone-file form).
    pub fix: Option<String>,
    /// The published RSA key's size, when one was read.
    pub bits: Option<u32>,
}

impl SelectorFinding {
    pub(crate) fn set(&mut self, status: Status, severity: Severity, message: impl Into<String>) {
        self.status = status;
        self.severity = severity;
        self.message = message.into();
    }
}

/// What was found for a domain's SPF or DMARC record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyStatus {
    /// One record.
    Present,
    /// None.
    Missing,
    /// More than one (SPF and DMARC both treat that as an error).
    Several,
    /// The lookup failed.
    DnsError,
}

impl PolicyStatus {
    /// The stable id.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyStatus::Present => "present",
            PolicyStatus::Missing => "missing",
            PolicyStatus::Several => "several",
            PolicyStatus::DnsError => "dns-error",
        }
    }
}

/// A domain's SPF or DMARC record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// What was found.
    pub status: PolicyStatus,
    /// The (first) record, quoted safely.
    pub record: Option<String>,
    /// DMARC's `p=` policy, lower case.
    pub policy: Option<String>,
    /// The lookup error, for [`PolicyStatus::DnsError`].
    pub error: Option<String>,
}

/// Informational findings for a domain: SPF and DMARC, which decide what
/// receivers do with DKIM results but which dkimctl does not manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainFinding {
    /// The domain.
    pub domain: String,
    /// TXT `v=spf1` at the domain.
    pub spf: PolicyRecord,
    /// TXT `v=DMARC1` at `_dmarc.<domain>`.
    pub dmarc: PolicyRecord,
}

/// Everything `dns check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsReport {
    /// One finding per selector per signing domain, in dkim.toml order.
    pub selectors: Vec<SelectorFinding>,
    /// One entry per domain.
    pub domains: Vec<DomainFinding>,
    /// Who was asked (`127.0.0.1:5353`, the system's resolvers), when
    /// known.
    pub asked: Option<String>,
}

/// Width of the severity column.
const COLUMN: usize = 9;

impl DnsReport {
    /// True when some name could not be looked up: the report is
    /// incomplete.
    pub fn incomplete(&self) -> bool {
        self.selectors.iter().any(|s| s.status == Status::DnsError)
            || self.domains.iter().any(|d| {
                d.spf.status == PolicyStatus::DnsError || d.dmarc.status == PolicyStatus::DnsError
            })
    }

    /// 0: every record is correct (info findings allowed); 1: a warning or
    /// error finding; 2: some name could not be checked.
    pub fn exit_code(&self) -> i32 {
        let worst = self.selectors.iter().map(|s| s.severity).max();
        crate::report::exit_code(self.incomplete(), worst, Severity::Warning)
    }

    /// The finding for a record name, if checked.
    pub fn selector(&self, name: &str) -> Option<&SelectorFinding> {
        self.selectors
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Human output: one line per selector and per domain policy, details
    /// and fixes indented under findings, and a summary line.
    pub fn print(&self, out: &mut dyn Write, color: bool) -> io::Result<()> {
        let pad = " ".repeat(COLUMN);
        for s in &self.selectors {
            let head = label(s.severity, color);
            if s.status == Status::Ok {
                writeln!(out, "{head}{} ({})", s.name, s.message)?;
                continue;
            }
            let id = if color {
                format!("\x1b[1m{}\x1b[0m", s.status.as_str())
            } else {
                s.status.as_str().to_string()
            };
            writeln!(out, "{head}{id} {}", s.name)?;
            writeln!(out, "{pad}{}", s.message)?;
            for line in &s.detail {
                writeln!(out, "{pad}  {line}")?;
            }
            if let Some(fix) = &s.fix {
                let mut lines = fix.lines();
                if let Some(first) = lines.next() {
                    writeln!(out, "{pad}fix: {first}")?;
                }
                for line in lines {
                    writeln!(out, "{pad}  {line}")?;
                }
            }
        }
        for d in &self.domains {
            for (what, rec) in [("SPF", &d.spf), ("DMARC", &d.dmarc)] {
                let (severity, text) = policy_line(rec);
                writeln!(out, "{}{} {what}: {text}", label(severity, color), d.domain)?;
            }
        }
        let count = |sev| self.selectors.iter().filter(|s| s.severity == sev).count();
        write!(
            out,
            "{} selector(s): {} ok, {} warning(s), {} error(s)",
            self.selectors.len(),
            count(Severity::Ok),
            count(Severity::Warning),
            count(Severity::Error)
        )?;
        if self.incomplete() {
            write!(
                out,
                "; some names could not be looked up, so the check is incomplete"
            )?;
        }
        if let Some(asked) = &self.asked {
            write!(out, " (asked {asked})")?;
        }
        writeln!(out)
    }

    /// The report as JSON: `{"selectors": [...], "domains": [...], "asked":
    /// "...", "exit": n}`.
    pub fn to_json(&self) -> Value {
        let selectors: Vec<Value> = self
            .selectors
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "domain": s.domain,
                    "selector": s.selector,
                    "state": s.state.as_str(),
                    "algorithm": s.algorithm.as_str(),
                    "status": s.status.as_str(),
                    "severity": s.severity.as_str(),
                    "message": s.message,
                    "detail": s.detail,
                    "fix": s.fix,
                    "bits": s.bits,
                })
            })
            .collect();
        let policy = |p: &PolicyRecord| {
            json!({
                "status": p.status.as_str(),
                "record": p.record,
                "policy": p.policy,
                "error": p.error,
            })
        };
        let domains: Vec<Value> = self
            .domains
            .iter()
            .map(|d| json!({"domain": d.domain, "spf": policy(&d.spf), "dmarc": policy(&d.dmarc)}))
            .collect();
        json!({
            "selectors": selectors,
            "domains": domains,
            "asked": self.asked,
            "exit": self.exit_code(),
        })
    }
}

/// The severity word padded to the column, coloured if asked.
fn label(severity: Severity, color: bool) -> String {
    let padding = " ".repeat(COLUMN.saturating_sub(severity.as_str().len()));
    format!("{}{padding}", severity.colored(color))
}

fn policy_line(rec: &PolicyRecord) -> (Severity, String) {
    match rec.status {
        PolicyStatus::Present => {
            let mut text = String::from("present");
            if let Some(p) = &rec.policy {
                text.push_str(&format!(", p={p}"));
            }
            if let Some(r) = &rec.record {
                text.push_str(&format!(" ({r})"));
            }
            (Severity::Info, text)
        }
        PolicyStatus::Missing => (Severity::Info, "missing".to_string()),
        PolicyStatus::Several => (
            Severity::Info,
            "several records, which receivers treat as an error".to_string(),
        ),
        PolicyStatus::DnsError => (
            Severity::Error,
            format!(
                "dns-error: {}",
                rec.error.as_deref().unwrap_or("lookup failed")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(status: Status, severity: Severity) -> SelectorFinding {
        SelectorFinding {
            name: "sel._domainkey.example.com".into(),
            domain: "example.com".into(),
            selector: "sel".into(),
            state: KeyState::Active,
            algorithm: Algorithm::RsaSha256,
            status,
            severity,
            message: "rsa 2048".into(),
            detail: Vec::new(),
            fix: None,
            bits: Some(2048),
        }
    }

    fn policy(status: PolicyStatus) -> PolicyRecord {
        PolicyRecord {
            status,
            record: None,
            policy: None,
            error: None,
        }
    }

    #[test]
    fn exit_codes() {
        let mut r = DnsReport {
            selectors: vec![finding(Status::Ok, Severity::Ok)],
            domains: vec![],
            asked: None,
        };
        assert_eq!(r.exit_code(), 0);
        r.domains.push(DomainFinding {
            domain: "example.com".into(),
            spf: policy(PolicyStatus::Missing),
            dmarc: policy(PolicyStatus::Present),
        });
        assert_eq!(r.exit_code(), 0, "info findings do not fail the check");
        r.selectors
            .push(finding(Status::Testing, Severity::Warning));
        assert_eq!(r.exit_code(), 1);
        r.domains[0].dmarc = policy(PolicyStatus::DnsError);
        assert_eq!(r.exit_code(), 2);
    }

    #[test]
    fn human_lines() {
        let mut bad = finding(Status::SeveralRecords, Severity::Error);
        bad.message = "3 TXT records".into();
        bad.fix = Some("replace them:\nname. IN TXT ( \"a\"\n\t\"b\" )".into());
        let r = DnsReport {
            selectors: vec![finding(Status::Ok, Severity::Ok), bad],
            domains: vec![],
            asked: Some("127.0.0.1:5353".into()),
        };
        let mut out = Vec::new();
        r.print(&mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "ok       sel._domainkey.example.com (rsa 2048)\n\
             error    several-records sel._domainkey.example.com\n\
             \x20        3 TXT records\n\
             \x20        fix: replace them:\n\
             \x20          name. IN TXT ( \"a\"\n\
             \x20          \t\"b\" )\n\
             2 selector(s): 1 ok, 0 warning(s), 1 error(s) (asked 127.0.0.1:5353)\n"
        );
        let json = r.to_json();
        assert_eq!(json["selectors"][1]["status"], "several-records");
        assert_eq!(json["exit"], 1);
    }
}
