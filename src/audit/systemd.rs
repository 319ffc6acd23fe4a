//! systemd units as the audit sees them: the fragment systemd would load
//! plus its drop-ins, parsed into directives that keep their file and
//! line; the hardening directives a milter unit should carry; and the
//! exposure score of `systemd-analyze security --offline=true`.
//!
//! Search order (systemd.unit(5), "Unit File Load Path", system manager):
//! `/etc/systemd/system`, `/run/systemd/system`, `/usr/local/lib/systemd/system`,
//! `/usr/lib/systemd/system`, `/lib/systemd/system`. The first fragment
//! found wins; drop-ins (`NAME.d/*.conf`) are collected from every
//! directory, a file name in an earlier directory hiding the same name in
//! a later one, and applied in file name order.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::findings::{Finding, Origin, id};
use super::inventory::{ReadError, Reader, read_finding};
use crate::config::Severity;
use crate::root::Root;

/// Unit directories, most important first.
pub const UNIT_DIRS: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// Exposure above which a milter unit is reported (systemd-analyze's
/// "MEDIUM" band starts at 5.0 and "EXPOSED" at 7.0).
pub const MAX_EXPOSURE: f64 = 5.0;

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

/// Finds and reads a unit and its drop-ins. A masked unit (a link to
/// `/dev/null`) is reported and treated as absent.
pub fn find_unit(reader: &Reader, name: &str, findings: &mut Vec<Finding>) -> Option<Unit> {
    let mut fragment = None;
    for dir in UNIT_DIRS {
        let host = Path::new(dir).join(name);
        let real = reader.root().join(&host);
        if std::fs::read_link(&real).is_ok_and(|t| t == Path::new("/dev/null")) {
            findings.push(Finding::new(
                id::NO_UNIT,
                Severity::Info,
                Some(&Origin::file(&host)),
                format!("{name} is masked"),
                "systemd will not start it",
                format!("systemctl unmask {name} if it should run"),
            ));
            return None;
        }
        match reader.read(&host) {
            Ok(text) => {
                fragment = Some((host, text));
                break;
            }
            Err(ReadError::Missing) => continue,
            Err(e) => {
                findings.push(read_finding(&host, None, "unit file", &e));
                return None;
            }
        }
    }
    let (fragment, text) = fragment?;
    let mut directives = parse_unit(&text, &fragment);
    let mut dropin_names: Vec<(String, PathBuf)> = Vec::new();
    for dir in UNIT_DIRS {
        let d = Path::new(dir).join(format!("{name}.d"));
        for f in reader.list_dir(&d) {
            if f.ends_with(".conf") && !dropin_names.iter().any(|(n, _)| *n == f) {
                dropin_names.push((f.clone(), d.join(&f)));
            }
        }
    }
    dropin_names.sort();
    let mut dropins = Vec::new();
    for (_, path) in dropin_names {
        if let Some(t) = reader.read_or_report(&path, None, "drop-in", findings) {
            directives.extend(parse_unit(&t, &path));
            dropins.push(path);
        }
    }
    Some(Unit {
        name: name.to_string(),
        fragment,
        dropins,
        directives,
    })
}

/// Splits a command line the way systemd does for `ExecStart=` (words,
/// with double and single quotes), dropping the `@-:+!` prefixes of the
/// first word.
pub fn split_command(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
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

/// The hardening directives a milter needs and this unit lacks (unset,
/// or set to a value that turns the protection off). `CapabilityBoundingSet=`
/// counts when assigned at all: the empty value is the strongest.
pub fn missing_hardening(u: &Unit) -> Vec<&'static str> {
    let s = "Service";
    let val = |k: &str| u.get(s, k).map(|d| d.value.to_ascii_lowercase());
    let boolean = |k: &str| val(k).is_some_and(|v| is_true(&v));
    let mut missing = Vec::new();
    let checks: [(&'static str, bool); 19] = [
        (
            "User=",
            val("User").is_some_and(|v| v != "root" && v != "0") || boolean("DynamicUser"),
        ),
        ("NoNewPrivileges=", boolean("NoNewPrivileges")),
        (
            "ProtectSystem=",
            val("ProtectSystem").is_some_and(|v| v == "strict" || v == "full" || is_true(&v)),
        ),
        (
            "ProtectHome=",
            val("ProtectHome").is_some_and(|v| v == "read-only" || v == "tmpfs" || is_true(&v)),
        ),
        ("PrivateTmp=", boolean("PrivateTmp")),
        ("PrivateDevices=", boolean("PrivateDevices")),
        (
            "CapabilityBoundingSet=",
            u.assigned(s, "CapabilityBoundingSet").is_some(),
        ),
        ("ProtectKernelTunables=", boolean("ProtectKernelTunables")),
        ("ProtectKernelModules=", boolean("ProtectKernelModules")),
        ("ProtectKernelLogs=", boolean("ProtectKernelLogs")),
        ("ProtectControlGroups=", boolean("ProtectControlGroups")),
        ("ProtectClock=", boolean("ProtectClock")),
        ("ProtectHostname=", boolean("ProtectHostname")),
        (
            "RestrictAddressFamilies=",
            !u.all(s, "RestrictAddressFamilies").is_empty(),
        ),
        ("RestrictNamespaces=", boolean("RestrictNamespaces")),
        ("RestrictSUIDSGID=", boolean("RestrictSUIDSGID")),
        ("LockPersonality=", boolean("LockPersonality")),
        ("MemoryDenyWriteExecute=", boolean("MemoryDenyWriteExecute")),
        (
            "SystemCallFilter=",
            !u.all(s, "SystemCallFilter").is_empty(),
        ),
    ];
    for (name, ok) in checks {
        if !ok {
            missing.push(name);
        }
    }
    missing
}

/// How to find `systemd-analyze`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Analyzer {
    /// Look on `PATH` (and in `/usr/bin`, `/bin`).
    #[default]
    Auto,
    /// Use this binary.
    Path(PathBuf),
    /// Do not run it (reported as unchecked).
    Skip,
}

impl Analyzer {
    /// The binary to run, if any.
    pub fn binary(&self) -> Option<PathBuf> {
        match self {
            Analyzer::Skip => None,
            Analyzer::Path(p) => Some(p.clone()),
            Analyzer::Auto => {
                let path = std::env::var("PATH").unwrap_or_default();
                path.split(':')
                    .filter(|d| !d.is_empty())
                    .chain(["/usr/bin", "/bin"])
                    .map(|d| Path::new(d).join("systemd-analyze"))
                    .find(|p| p.is_file())
            }
        }
    }
}

/// The overall exposure of a unit under `root`, from
/// `systemd-analyze security --offline=true --root=ROOT UNIT`. The tool
/// only reads the unit files.
pub fn exposure(binary: &Path, root: &Root, unit: &str) -> Result<f64, String> {
    let root_dir = std::path::absolute(root.dir()).unwrap_or_else(|_| root.dir().to_path_buf());
    let out = Command::new(binary)
        .arg("security")
        .arg("--offline=true")
        .arg(format!("--root={}", root_dir.display()))
        .arg("--no-pager")
        .arg(unit)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("failed to run {}: {e}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    parse_exposure(&stdout).ok_or_else(|| {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .next()
            .unwrap_or("no overall exposure in its output");
        format!("systemd-analyze security failed: {first}")
    })
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
        let missing = missing_hardening(&u);
        assert!(missing.contains(&"SystemCallFilter="));
        assert!(!missing.contains(&"CapabilityBoundingSet="));
        assert!(missing.contains(&"User="));
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
