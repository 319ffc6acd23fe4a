//! OpenDKIM's files as the audit judges them: each line OpenDKIM would
//! refuse ([`crate::formats::opendkim::ConfProblem`]) and each host list
//! entry it cannot match becomes a finding at its line.

use std::path::Path;

use super::findings::{Finding, Origin, id};
use crate::formats::opendkim::{
    self, ConfLine, ConfProblem, Host, HostEntry, TableLine, parse_host_entry,
};
use crate::report::Severity;

/// Parses one opendkim.conf file; lines OpenDKIM would reject become
/// findings.
pub fn parse_conf(text: &str, path: &Path, findings: &mut Vec<Finding>) -> Vec<ConfLine> {
    let (lines, problems) = opendkim::parse_conf(text, path);
    findings.extend(problems.iter().map(|(p, at)| problem_finding(p, at)));
    lines
}

/// The finding for a line OpenDKIM refuses.
fn problem_finding(p: &ConfProblem, at: &Origin) -> Finding {
    match p {
        ConfProblem::UnknownOption { name, suggestion } => Finding::new(
            id::UNKNOWN_OPTION,
            Severity::Error,
            Some(at),
            format!("unknown option {name}"),
            "OpenDKIM refuses to start: \"configuration error: unrecognized parameter\"",
            match suggestion {
                Some(s) => format!("did you mean {s}? Otherwise remove the line"),
                None => {
                    "remove the line, or check the spelling against opendkim.conf(5)".to_string()
                }
            },
        ),
        ConfProblem::NoValue { name } => Finding::new(
            id::OPTION_VALUE,
            Severity::Error,
            Some(at),
            format!("{name} has no value"),
            "OpenDKIM refuses to start: \"configuration error: required value missing\"",
            format!("give {name} a value or remove the line"),
        ),
        ConfProblem::BadValue { name, value, want } => Finding::new(
            id::OPTION_VALUE,
            Severity::Error,
            Some(at),
            format!("{name} {value}: the value is not {want}"),
            "OpenDKIM refuses to start: \"configuration error: illegal value\"",
            format!("write {name} as {want}"),
        ),
    }
}

/// The entries of a host list dataset, from the list itself or from the
/// lines of its file: only the first word of a line counts (OpenDKIM's
/// flat files are key-value tables), so a line with more words is a
/// finding, and so is an entry that can never match (`*` matches only in
/// a `refile:` list, `globs`).
pub fn host_entries(
    lines: &[TableLine],
    globs: bool,
    findings: &mut Vec<Finding>,
    what: &str,
) -> Vec<HostEntry> {
    let mut out = Vec::new();
    for l in lines {
        let at = &l.at;
        match parse_host_entry(&l.key, at) {
            Ok(e) => {
                if !l.value.is_empty() {
                    findings.push(Finding::new(
                        id::TABLE_SYNTAX,
                        Severity::Error,
                        Some(at),
                        format!(
                            "{what} line \"{} {}\" is more than one host: OpenDKIM takes {} as a host name and ignores the rest",
                            l.key, l.value, l.key
                        ),
                        "a host list holds one address, range or name per line; the words after the first are read as the value of a table entry",
                        "write one IP address, CIDR range (192.0.2.0/24), host name or .domain per line",
                    ));
                }
                if let Host::Literal(text) = &e.host
                    && !globs
                {
                    findings.push(Finding::new(
                        id::TABLE_SYNTAX,
                        Severity::Warning,
                        Some(at),
                        format!("{what} entry {text} never matches: the list is compared literally, without wildcards"),
                        "no client has this name, so no mail is signed (or ignored) because of this line",
                        format!(
                            "write .{} to match every host in the domain",
                            text.trim_start_matches("*.")
                        ),
                    ));
                }
                out.push(e);
            }
            Err(why) => findings.push(Finding::new(
                id::TABLE_SYNTAX,
                Severity::Error,
                Some(at),
                format!("{what} entry {why}"),
                "OpenDKIM cannot match it against any client; a placeholder copied from a \
                 guide (such as <server_ip>) leaves the real address out",
                "write an IP address, a CIDR range (192.0.2.0/24), a host name or .domain",
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> (Vec<ConfLine>, Vec<Finding>) {
        let mut f = Vec::new();
        let lines = parse_conf(text, Path::new("/etc/opendkim.conf"), &mut f);
        (lines, f)
    }

    #[test]
    fn rejected_lines_become_findings_with_their_line() {
        let (lines, f) = conf("RequireSafeKey yes\nSyslog maybe\nUMask 0x\nSocket\nMode sv\n");
        assert_eq!(lines.len(), 1);
        let got: Vec<(&str, Option<usize>)> = f.iter().map(|f| (f.id, f.line)).collect();
        assert_eq!(
            got,
            [
                ("unknown-option", Some(1)),
                ("option-value", Some(2)),
                ("option-value", Some(3)),
                ("option-value", Some(4)),
            ]
        );
        assert!(f[0].fix.contains("RequireSafeKeys"), "{}", f[0].fix);
    }

    // See: issue 13, defect 10 (`your subnet`) and the vpstoolbox case.
    #[test]
    fn host_lines_that_do_not_mean_what_they_say() {
        let path = Path::new("/etc/opendkim/TrustedHosts");
        let lines = opendkim::parse_table("127.0.0.1\nyour subnet\n*.example.com\n", path);
        let mut f = Vec::new();
        let entries = host_entries(&lines, false, &mut f, "InternalHosts");
        assert_eq!(entries.len(), 3);
        let got: Vec<(&str, Severity, Option<usize>)> =
            f.iter().map(|f| (f.id, f.severity, f.line)).collect();
        assert_eq!(
            got,
            [
                (id::TABLE_SYNTAX, Severity::Error, Some(2)),
                (id::TABLE_SYNTAX, Severity::Warning, Some(3)),
            ]
        );
        assert!(
            f[0].message.contains("takes your as a host name"),
            "{}",
            f[0].message
        );
        assert!(f[1].fix.contains(".example.com"), "{}", f[1].fix);
        // In a refile: list `*` is a pattern.
        let mut f = Vec::new();
        host_entries(&lines[2..], true, &mut f, "InternalHosts");
        assert!(f.is_empty(), "{f:?}");
    }
}
