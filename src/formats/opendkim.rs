//! Reading OpenDKIM's own files: opendkim.conf and the datasets it names
//! (KeyTable, SigningTable, TrustedHosts and other host lists).
//!
//! The parsers follow OpenDKIM 2.11 (`opendkim/config.c` and the DATA SETS
//! section of opendkim(8)) rather than a cleaner grammar, because the
//! point is to see the files as OpenDKIM sees them:
//!
//! - opendkim.conf: a line is cut at the first `#` or carriage return;
//!   the first word (split on space and tab) names the parameter, case
//!   insensitively; the rest, trimmed, is its value. A parameter given
//!   twice takes its **last** value (config.c prepends each entry to its
//!   list and `config_get` returns the first match). `Include FILE` reads
//!   another file in place, at most five levels deep.
//! - Datasets: `file:PATH` and a bare `/PATH` are flat files, `refile:PATH`
//!   a file of wildcard patterns, `csl:` or anything else without a known
//!   prefix a comma-separated list; database-backed kinds (`db:`, `dsn:`,
//!   `ldap:`, `lua:`, ...) cannot be read offline.
//! - Flat files: `#` starts a comment, blank lines are skipped, the key
//!   runs to the first whitespace and the rest of the line is the value.
//!
//! Nothing here touches the filesystem: callers hand in text and get back
//! settings and table lines with their places, plus a [`ConfProblem`] for
//! each line OpenDKIM would reject. [`crate::audit`] reads the files and
//! turns problems into findings; import reads the same results.

use std::path::{Path, PathBuf};

use super::names::{HostPattern, is_selector, normalize_domain, parse_host_pattern};
use crate::report::Origin;

/// The type of an opendkim.conf parameter, as opendkim.conf(5) gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only the first character counts: `tTyY1` or `fFnN0`.
    Bool,
    /// A C integer (`strtol(value, &end, 0)`: `0x` hex, leading `0` octal).
    Int,
    /// Free text.
    Str,
    /// A dataset (see the module docs).
    Dataset,
}

/// Every parameter of opendkim.conf(5) as shipped with OpenDKIM 2.11
/// (Debian 12's `2.11.0~beta2`), with its type. OpenDKIM refuses to start
/// on any other name ("configuration error at line N: unrecognized
/// parameter"). Names compare case-insensitively, as config.c does.
///
/// Implementation note: `X-Header` is not in the manual page but 2.11
/// still accepts it; it is listed so that no working file is called
/// broken. Options that a given build leaves out (LDAP, Lua, statistics)
/// are listed too: dkimctl cannot know how opendkim was compiled.
pub const KNOWN_OPTIONS: &[(&str, Kind)] = &[
    ("AllowSHA1Only", Kind::Bool),
    ("AlwaysAddARHeader", Kind::Bool),
    ("AuthservID", Kind::Str),
    ("AuthservIDWithJobID", Kind::Bool),
    ("AutoRestart", Kind::Bool),
    ("AutoRestartCount", Kind::Int),
    ("AutoRestartRate", Kind::Str),
    ("Background", Kind::Bool),
    ("BaseDirectory", Kind::Str),
    ("BodyLengthDB", Kind::Dataset),
    ("BogusKey", Kind::Str),
    ("CaptureUnknownErrors", Kind::Bool),
    ("Canonicalization", Kind::Str),
    ("ChangeRootDirectory", Kind::Str),
    ("ClockDrift", Kind::Int),
    ("Diagnostics", Kind::Bool),
    ("DiagnosticDirectory", Kind::Str),
    ("DisableCryptoInit", Kind::Bool),
    ("DNSConnect", Kind::Bool),
    ("DNSTimeout", Kind::Int),
    ("Domain", Kind::Dataset),
    ("DomainKeysCompat", Kind::Bool),
    ("DontSignMailTo", Kind::Dataset),
    ("EnableCoredumps", Kind::Bool),
    ("ExemptDomains", Kind::Dataset),
    ("ExternalIgnoreList", Kind::Dataset),
    ("FinalPolicyScript", Kind::Str),
    ("FixCRLF", Kind::Bool),
    ("IdentityHeader", Kind::Str),
    ("IdentityHeaderRemove", Kind::Bool),
    ("IgnoreMalformedMail", Kind::Bool),
    ("Include", Kind::Str),
    ("InternalHosts", Kind::Dataset),
    ("KeepAuthResults", Kind::Bool),
    ("KeepTemporaryFiles", Kind::Bool),
    ("KeyFile", Kind::Str),
    ("KeyTable", Kind::Dataset),
    ("LDAPAuthMechanism", Kind::Str),
    ("LDAPAuthName", Kind::Str),
    ("LDAPAuthRealm", Kind::Str),
    ("LDAPAuthUser", Kind::Str),
    ("LDAPBindPassword", Kind::Str),
    ("LDAPBindUser", Kind::Str),
    ("LDAPDisableCache", Kind::Bool),
    // The LDAP timings are integers in the manual but strings in
    // config.c; they are not type-checked.
    ("LDAPKeepaliveIdle", Kind::Str),
    ("LDAPKeepaliveInterval", Kind::Str),
    ("LDAPKeepaliveProbes", Kind::Str),
    ("LDAPTimeout", Kind::Str),
    ("LDAPUseTLS", Kind::Bool),
    ("LogResults", Kind::Bool),
    ("LogWhy", Kind::Bool),
    ("MacroList", Kind::Dataset),
    ("MaximumHeaders", Kind::Int),
    ("MaximumSignaturesToVerify", Kind::Int),
    ("MaximumSignedBytes", Kind::Int),
    ("MilterDebug", Kind::Int),
    ("Minimum", Kind::Str),
    ("MinimumKeyBits", Kind::Int),
    ("Mode", Kind::Str),
    ("MTA", Kind::Dataset),
    ("MTACommand", Kind::Str),
    ("MultipleSignatures", Kind::Bool),
    ("MustBeSigned", Kind::Dataset),
    ("Nameservers", Kind::Str),
    ("NoHeaderB", Kind::Bool),
    ("OmitHeaders", Kind::Dataset),
    ("On-BadSignature", Kind::Str),
    ("On-Default", Kind::Str),
    ("On-DNSError", Kind::Str),
    ("On-InternalError", Kind::Str),
    ("On-KeyNotFound", Kind::Str),
    ("On-NoSignature", Kind::Str),
    ("On-Security", Kind::Str),
    ("On-SignatureError", Kind::Str),
    ("OversignHeaders", Kind::Dataset),
    ("PeerList", Kind::Dataset),
    ("PidFile", Kind::Str),
    ("POPDBFile", Kind::Dataset),
    ("Quarantine", Kind::Bool),
    ("QueryCache", Kind::Bool),
    ("RedirectFailuresTo", Kind::Str),
    ("RemoveARAll", Kind::Bool),
    ("RemoveARFrom", Kind::Dataset),
    ("RemoveOldSignatures", Kind::Bool),
    ("ReplaceHeaders", Kind::Dataset),
    ("ReplaceRules", Kind::Str),
    ("ReportAddress", Kind::Str),
    ("ReportBccAddress", Kind::Str),
    ("RequestReports", Kind::Bool),
    ("RequiredHeaders", Kind::Bool),
    ("RequireSafeKeys", Kind::Bool),
    ("ResignAll", Kind::Bool),
    ("ResignMailTo", Kind::Dataset),
    ("ResolverConfiguration", Kind::Str),
    ("ResolverTracing", Kind::Bool),
    ("ScreenPolicyScript", Kind::Str),
    ("SelectCanonicalizationHeader", Kind::Str),
    ("Selector", Kind::Str),
    ("SenderHeaders", Kind::Dataset),
    ("SenderMacro", Kind::Str),
    ("SendReports", Kind::Bool),
    ("SetupPolicyScript", Kind::Str),
    ("SignatureAlgorithm", Kind::Str),
    ("SignatureTTL", Kind::Int),
    ("SignHeaders", Kind::Dataset),
    ("SigningTable", Kind::Dataset),
    ("SMTPURI", Kind::Str),
    ("Socket", Kind::Str),
    ("SoftStart", Kind::Bool),
    ("SoftwareHeader", Kind::Bool),
    ("Statistics", Kind::Str),
    ("StatisticsName", Kind::Str),
    ("StatisticsPolicyScript", Kind::Str),
    ("StatisticsPrefix", Kind::Str),
    ("StrictHeaders", Kind::Bool),
    ("StrictTestMode", Kind::Bool),
    ("SubDomains", Kind::Bool),
    ("Syslog", Kind::Bool),
    ("SyslogFacility", Kind::Str),
    ("SyslogName", Kind::Str),
    ("SyslogSuccess", Kind::Bool),
    ("TemporaryDirectory", Kind::Str),
    ("TestDNSData", Kind::Dataset),
    ("TestPublicKeys", Kind::Str),
    ("TrustAnchorFile", Kind::Str),
    ("TrustSignaturesFrom", Kind::Dataset),
    ("UMask", Kind::Int),
    ("UnprotectedKey", Kind::Str),
    ("UserID", Kind::Str),
    ("VBR-Certifiers", Kind::Str),
    ("VBR-PurgeFields", Kind::Str),
    ("VBR-TrustedCertifiers", Kind::Str),
    ("VBR-TrustedCertifiersOnly", Kind::Bool),
    ("VBR-Type", Kind::Str),
    ("WeakSyntaxChecks", Kind::Bool),
    ("X-Header", Kind::Bool),
];

/// The canonical spelling and type of a parameter name, if OpenDKIM knows it.
pub fn known_option(name: &str) -> Option<(&'static str, Kind)> {
    KNOWN_OPTIONS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .copied()
}

/// Deepest `Include` nesting OpenDKIM follows (config.c `MAXLEVEL`).
pub const MAX_INCLUDE_DEPTH: usize = 5;

/// One `Name value` line of opendkim.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The canonical name (`UserID` for `userid`).
    pub name: &'static str,
    /// The value, trimmed.
    pub value: String,
    /// Where it was set.
    pub at: Origin,
}

/// One line of an opendkim.conf file, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfLine {
    /// A known parameter with a value OpenDKIM accepts.
    Setting(Setting),
    /// `Include FILE`: read that file here.
    Include(String, Origin),
}

/// Why OpenDKIM would refuse a line of opendkim.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfProblem {
    /// Not a parameter of opendkim.conf(5); the closest known name.
    UnknownOption {
        /// The name as written.
        name: String,
        /// A known name it is probably a misspelling of.
        suggestion: Option<&'static str>,
    },
    /// A parameter without a value.
    NoValue {
        /// The parameter.
        name: &'static str,
    },
    /// A value of the wrong type.
    BadValue {
        /// The parameter.
        name: &'static str,
        /// The value as written.
        value: String,
        /// What it should be ("a boolean (yes or no)", "an integer").
        want: &'static str,
    },
}

/// Parses the text of one opendkim.conf file (host path `path`). Lines
/// OpenDKIM would reject are returned as problems, each with its place;
/// the rest are returned in order.
pub fn parse_conf(text: &str, path: &Path) -> (Vec<ConfLine>, Vec<(ConfProblem, Origin)>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    // Suggestions for the first unknown names only: a file of 20,000
    // unknown options would otherwise cost 20,000 searches of the list.
    let mut suggestions_left = 100;
    for (i, raw) in text.split('\n').enumerate() {
        let at = Origin::line(path, i + 1);
        let line = raw.split(['#', '\r']).next().unwrap_or_default();
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        let (name, rest) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        let value = rest.trim_matches([' ', '\t']);
        let Some((canonical, kind)) = known_option(name) else {
            let suggestion = if suggestions_left > 0 {
                suggestions_left -= 1;
                let names: Vec<&'static str> = KNOWN_OPTIONS.iter().map(|(n, _)| *n).collect();
                crate::report::did_you_mean(name, &names)
                    .and_then(|s| names.iter().copied().find(|n| *n == s))
            } else {
                None
            };
            problems.push((
                ConfProblem::UnknownOption {
                    name: name.to_string(),
                    suggestion,
                },
                at,
            ));
            continue;
        };
        if value.is_empty() {
            problems.push((ConfProblem::NoValue { name: canonical }, at));
            continue;
        }
        let bad = match kind {
            Kind::Bool => parse_bool(value)
                .is_none()
                .then_some("a boolean (yes or no)"),
            Kind::Int => parse_c_int(value).is_none().then_some("an integer"),
            Kind::Str | Kind::Dataset => None,
        };
        if let Some(want) = bad {
            problems.push((
                ConfProblem::BadValue {
                    name: canonical,
                    value: value.to_string(),
                    want,
                },
                at,
            ));
            continue;
        }
        if canonical == "Include" {
            out.push(ConfLine::Include(value.to_string(), at));
        } else {
            out.push(ConfLine::Setting(Setting {
                name: canonical,
                value: value.to_string(),
                at,
            }));
        }
    }
    (out, problems)
}

/// A boolean as config.c reads it: only the first character counts.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.bytes().next()? {
        b't' | b'T' | b'y' | b'Y' | b'1' => Some(true),
        b'f' | b'F' | b'n' | b'N' | b'0' => Some(false),
        _ => None,
    }
}

/// An integer as `strtol(s, &end, 0)` reads it, the whole string
/// consumed: `0x1f` hex, `007` octal, `22` decimal (so `UMask 22` is
/// 0o026, not 0o022).
pub fn parse_c_int(value: &str) -> Option<i64> {
    let s = value.trim_start();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    // A second sign ("--5") is not a number; from_str_radix would take it.
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let n = i64::from_str_radix(digits, radix).ok()?;
    if neg { n.checked_neg() } else { Some(n) }
}

/// Where a dataset's entries come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dataset {
    /// `file:PATH` or `/PATH`: a flat file of keys and values.
    File(PathBuf),
    /// `refile:PATH`: a flat file whose keys are wildcard patterns.
    Refile(PathBuf),
    /// `csl:a,b` or a bare `a,b`: the entries themselves.
    List(Vec<String>),
    /// A database or script (`db:`, `dsn:`, `ldap:`, `lua:`, ...), named
    /// by its kind; not readable offline.
    Other(String),
}

impl Dataset {
    /// The file behind the dataset, if it is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Dataset::File(p) | Dataset::Refile(p) => Some(p),
            Dataset::List(_) | Dataset::Other(_) => None,
        }
    }
}

/// Classifies a dataset value (opendkim(8), DATA SETS). Relative file
/// paths are taken relative to `base` (OpenDKIM `chdir`s to
/// `BaseDirectory` before it opens anything), or `/`.
pub fn parse_dataset(value: &str, base: Option<&Path>) -> Dataset {
    let v = value.trim();
    let resolve = |p: &str| match base {
        Some(b) if !p.starts_with('/') => b.join(p),
        _ => Path::new("/").join(p),
    };
    if let Some(p) = v.strip_prefix("file:") {
        return Dataset::File(resolve(p));
    }
    if let Some(p) = v.strip_prefix("refile:") {
        return Dataset::Refile(resolve(p));
    }
    if let Some(l) = v.strip_prefix("csl:") {
        return Dataset::List(split_list(l));
    }
    for kind in [
        "db:",
        "dsn:",
        "ldap:",
        "ldaps:",
        "ldapi:",
        "lua:",
        "memcache:",
        "erlang:",
        "mdb:",
        "repute:",
        "socket:",
    ] {
        if v.starts_with(kind) {
            return Dataset::Other(kind.trim_end_matches(':').to_string());
        }
    }
    if v.ends_with(".db") {
        return Dataset::Other("db".into());
    }
    if v.starts_with('/') {
        return Dataset::File(PathBuf::from(v));
    }
    Dataset::List(split_list(v))
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

/// One non-comment line of a dataset file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLine {
    /// The key (or pattern): the text up to the first whitespace.
    pub key: String,
    /// The rest of the line, trimmed (may be empty).
    pub value: String,
    /// Where the line is.
    pub at: Origin,
}

/// Parses a flat dataset file (`file:` or `refile:`; the syntax is the
/// same, only the meaning of the key differs).
pub fn parse_table(text: &str, path: &Path) -> Vec<TableLine> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((line, ""));
        out.push(TableLine {
            key: key.to_string(),
            value: value.trim().to_string(),
            at: Origin::line(path, i + 1),
        });
    }
    out
}

/// Where a KeyTable entry's private key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file (host path).
    File(PathBuf),
    /// The key itself, written into the table (PEM or base64 DER).
    Inline,
}

/// One signing key OpenDKIM knows: a KeyTable entry, or the single
/// `Domain`/`Selector`/`KeyFile` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The key name the SigningTable refers to (`sel._domainkey.example.com`;
    /// empty for the single-key form).
    pub name: String,
    /// The signing domain (`d=`); `%` means the sender's domain.
    pub domain: String,
    /// The selector (`s=`).
    pub selector: String,
    /// The private key.
    pub key: KeySource,
    /// Where the entry is.
    pub at: Origin,
}

/// Parses one KeyTable line: `NAME DOMAIN:SELECTOR:KEY`. A key that starts
/// with `/`, `./` or `../` is a file (relative to `base`), anything else
/// inline key data (opendkim.conf(5), KeyTable).
pub fn parse_key_line(l: &TableLine, base: Option<&Path>) -> Result<KeyEntry, String> {
    if l.value.is_empty() {
        return Err(format!(
            "\"{}\" has no DOMAIN:SELECTOR:KEYFILE after the key name",
            l.key
        ));
    }
    let mut parts = l.value.splitn(3, ':');
    let domain = parts.next().unwrap_or_default().trim();
    let selector = parts.next().map(str::trim);
    let key = parts.next().map(str::trim);
    let (Some(selector), Some(key)) = (selector, key) else {
        return Err(format!(
            "\"{}\" is not DOMAIN:SELECTOR:KEYFILE (three fields separated by colons)",
            l.value
        ));
    };
    if domain != "%" {
        normalize_domain(domain).map_err(|e| format!("invalid domain \"{domain}\": {e}"))?;
    }
    if !is_selector(&selector.to_ascii_lowercase()) {
        return Err(format!("invalid selector \"{selector}\""));
    }
    if key.is_empty() {
        return Err("the key file is empty".into());
    }
    let source = if key.starts_with('/') {
        KeySource::File(PathBuf::from(key))
    } else if key.starts_with("./") || key.starts_with("../") {
        KeySource::File(base.unwrap_or(Path::new("/")).join(key))
    } else {
        KeySource::Inline
    };
    Ok(KeyEntry {
        name: l.key.clone(),
        domain: domain.to_ascii_lowercase(),
        selector: selector.to_ascii_lowercase(),
        key: source,
        at: l.at.clone(),
    })
}

/// One SigningTable line: which senders sign with which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningEntry {
    /// The sender pattern (a wildcard pattern with `refile:`).
    pub pattern: String,
    /// The KeyTable key name it selects.
    pub key_name: String,
    /// Where the line is.
    pub at: Origin,
}

/// Parses one SigningTable line: `PATTERN KEYNAME [SIGNER]`.
pub fn parse_signing_line(l: &TableLine) -> Result<SigningEntry, String> {
    let key_name = l.value.split_whitespace().next().ok_or_else(|| {
        format!(
            "\"{}\" names no KeyTable key (expected PATTERN KEY-NAME)",
            l.key
        )
    })?;
    Ok(SigningEntry {
        pattern: l.key.clone(),
        key_name: key_name.to_string(),
        at: l.at.clone(),
    })
}

/// What a host list entry denotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An address, CIDR range or fully qualified host name.
    Pattern(HostPattern),
    /// `.example.com`: every host in a domain.
    Domain(String),
    /// A single-label host name (`mailhost`).
    Name(String),
    /// Text no host has (`*.example.com`): a plain file or list compares
    /// it literally with the client's name, so it never matches.
    Literal(String),
}

/// One entry of InternalHosts, ExternalIgnoreList or PeerList.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The entry as written.
    pub text: String,
    /// `!entry`: excluded.
    pub negated: bool,
    /// What it denotes.
    pub host: Host,
    /// Where it is.
    pub at: Origin,
}

/// Parses a host list entry (opendkim.conf(5), PeerList): a host or domain
/// name, `.domain`, an address (IPv6 optionally in brackets), a CIDR
/// range, each optionally negated with `!`.
pub fn parse_host_entry(text: &str, at: &Origin) -> Result<HostEntry, String> {
    let t = text.trim();
    let (negated, rest) = match t.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let unbracketed = match rest.strip_prefix('[') {
        Some(r) => match r.split_once(']') {
            Some((addr, tail)) => format!("{addr}{tail}"),
            None => return Err(format!("\"{t}\" has an unclosed '['")),
        },
        None => rest.to_string(),
    };
    let host = if let Some(domain) = unbracketed.strip_prefix('.') {
        Host::Domain(normalize_domain(domain).map_err(|e| format!("\"{t}\": {e}"))?)
    } else {
        match parse_host_pattern(&unbracketed) {
            Ok(p) => Host::Pattern(p),
            Err(e) => {
                let label = unbracketed.as_str();
                let is_label = !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-');
                let literal = !label.is_empty()
                    && label.contains('*')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.*".contains(&b));
                if is_label {
                    Host::Name(label.to_ascii_lowercase())
                } else if literal {
                    Host::Literal(label.to_ascii_lowercase())
                } else {
                    return Err(format!("\"{t}\": {e}"));
                }
            }
        }
    };
    Ok(HostEntry {
        text: t.to_string(),
        negated,
        host,
        at: at.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> (Vec<ConfLine>, Vec<(ConfProblem, Origin)>) {
        parse_conf(text, Path::new("/etc/opendkim.conf"))
    }

    fn setting(l: &ConfLine) -> (&str, &str, usize) {
        match l {
            ConfLine::Setting(s) => (s.name, s.value.as_str(), s.at.line.unwrap()),
            ConfLine::Include(v, at) => ("Include", v.as_str(), at.line.unwrap()),
        }
    }

    #[test]
    fn conf_lines_as_opendkim_reads_them() {
        let (lines, f) = conf(
            "# comment\n\
             Socket\t\tinet:8891@localhost  # trailing\n\
             \n\
             userid opendkim\r\n\
             \tUMask 002\n\
             Include /etc/opendkim/extra.conf\n",
        );
        assert!(f.is_empty(), "{f:?}");
        let got: Vec<_> = lines.iter().map(setting).collect();
        assert_eq!(
            got,
            [
                ("Socket", "inet:8891@localhost", 2),
                ("UserID", "opendkim", 4),
                ("UMask", "002", 5),
                ("Include", "/etc/opendkim/extra.conf", 6),
            ]
        );
    }

    #[test]
    fn rejected_lines_are_problems_with_their_line() {
        let (lines, p) = conf("RequireSafeKey yes\nSyslog maybe\nUMask 0x\nSocket\nMode sv\n");
        assert_eq!(lines.len(), 1);
        let got: Vec<Option<usize>> = p.iter().map(|(_, at)| at.line).collect();
        assert_eq!(got, [Some(1), Some(2), Some(3), Some(4)]);
        assert_eq!(
            p[0].0,
            ConfProblem::UnknownOption {
                name: "RequireSafeKey".into(),
                suggestion: Some("RequireSafeKeys")
            }
        );
        assert_eq!(p[3].0, ConfProblem::NoValue { name: "Socket" });
    }

    #[test]
    fn c_integers_and_booleans() {
        assert_eq!(parse_c_int("002"), Some(2));
        assert_eq!(parse_c_int("007"), Some(7));
        assert_eq!(parse_c_int("22"), Some(22));
        assert_eq!(parse_c_int("0x1f"), Some(31));
        assert_eq!(parse_c_int("0"), Some(0));
        assert_eq!(parse_c_int("08"), None);
        assert_eq!(parse_c_int("7 "), None);
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("on"), None);
    }

    #[test]
    fn datasets_by_prefix() {
        let base = Some(Path::new("/var/lib/opendkim"));
        assert_eq!(
            parse_dataset("refile:/etc/opendkim/SigningTable", None),
            Dataset::Refile("/etc/opendkim/SigningTable".into())
        );
        assert_eq!(
            parse_dataset("file:KeyTable", base),
            Dataset::File("/var/lib/opendkim/KeyTable".into())
        );
        assert_eq!(
            parse_dataset("/etc/opendkim/TrustedHosts", None),
            Dataset::File("/etc/opendkim/TrustedHosts".into())
        );
        assert_eq!(
            parse_dataset("127.0.0.1, ::1", None),
            Dataset::List(vec!["127.0.0.1".into(), "::1".into()])
        );
        assert_eq!(
            parse_dataset("csl:From", None),
            Dataset::List(vec!["From".into()])
        );
        assert_eq!(
            parse_dataset("dsn:mysql://u@h/db/table=k", None),
            Dataset::Other("dsn".into())
        );
        assert_eq!(
            parse_dataset("/etc/x.db", None),
            Dataset::Other("db".into())
        );
    }

    #[test]
    fn key_and_signing_tables() {
        let p = Path::new("/etc/opendkim/KeyTable");
        let lines = parse_table(
            " \nmyselector._domainkey.example1.com example1.com:myselector:/etc/opendkim/keys/domain1.com/myselector.private\n\
             # comment\n\
             bad example2.com:myselector\n\
             inline example3.com:s1:MIIEvQIBADANBg\n",
            p,
        );
        assert_eq!(lines.len(), 3);
        let first = parse_key_line(&lines[0], None).unwrap();
        assert_eq!(first.domain, "example1.com");
        assert_eq!(first.selector, "myselector");
        assert_eq!(
            first.key,
            KeySource::File("/etc/opendkim/keys/domain1.com/myselector.private".into())
        );
        assert_eq!(first.at.line, Some(2));
        let err = parse_key_line(&lines[1], None).unwrap_err();
        assert!(err.contains("three fields"), "{err}");
        assert_eq!(
            parse_key_line(&lines[2], None).unwrap().key,
            KeySource::Inline
        );

        let s = parse_table(
            "*@example1.com myselector._domainkey.example1.com\nlonely\n",
            p,
        );
        assert_eq!(
            parse_signing_line(&s[0]).unwrap().key_name,
            "myselector._domainkey.example1.com"
        );
        assert!(parse_signing_line(&s[1]).is_err());
    }

    #[test]
    fn host_entries_of_every_form() {
        let at = Origin::line(Path::new("/etc/opendkim/TrustedHosts"), 1);
        let ok = |t: &str| parse_host_entry(t, &at).unwrap().host;
        assert_eq!(
            ok("127.0.0.1"),
            Host::Pattern(HostPattern::Addr([127, 0, 0, 1].into()))
        );
        assert_eq!(
            ok("[::1]"),
            Host::Pattern(HostPattern::Addr("::1".parse().unwrap()))
        );
        assert_eq!(
            ok("localhost"),
            Host::Pattern(HostPattern::Name("localhost".into()))
        );
        assert_eq!(ok("mailhost"), Host::Name("mailhost".into()));
        assert_eq!(ok(".example.com"), Host::Domain("example.com".into()));
        assert!(parse_host_entry("!10.0.0.0/8", &at).unwrap().negated);
        assert_eq!(ok("*.example.com"), Host::Literal("*.example.com".into()));
        assert!(parse_host_entry("<server_ip>", &at).is_err());
    }
}
