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
use super::inventory::{read_finding, read_or_report};
pub use crate::formats::systemd::{
    Directive, Unit, is_true, parse_exposure, parse_unit, split_command,
};
use crate::host::Root;
use crate::host::{ReadError, Reader};
use crate::report::Severity;

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
        if let Some(t) = read_or_report(reader, &path, None, "drop-in", findings) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardening_of_a_plain_unit() {
        let p = Path::new("/etc/systemd/system/opendkim.service");
        let u = Unit {
            name: "opendkim.service".into(),
            fragment: p.into(),
            dropins: vec![],
            directives: parse_unit(
                "[Service]\nExecStart=/usr/sbin/opendkim\nSystemCallFilter=@system-service\n\
                 SystemCallFilter=\nCapabilityBoundingSet=\n",
                p,
            ),
        };
        let missing = missing_hardening(&u);
        assert!(missing.contains(&"SystemCallFilter="));
        assert!(!missing.contains(&"CapabilityBoundingSet="));
        assert!(missing.contains(&"User="));
    }
}
