//! Reading the installed setup under the root into one snapshot: the
//! OpenDKIM configuration with its datasets, the systemd units, Postfix's
//! main.cf and master.cf, sendmail.mc and the accounts.
//!
//! Every read goes through [`Reader`], which resolves symbolic links
//! *inside* the root (an absolute link target is a host path, so under
//! `--root` it must not lead out to the machine running the audit), reads
//! regular files only (a fifo would block, a device never ends) and caps
//! their size. A file that cannot be read becomes a finding at the line
//! that names it; gathering never stops early, so one bad file does not
//! hide the rest of the audit. Nothing here writes.

use std::fs::Metadata;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::findings::{Finding, Origin, id};
use super::mta::{self, Postfix, SendmailFilter};
use super::opendkim::{host_entries, parse_conf};
use super::systemd::{self, Unit};
use crate::formats::opendkim::{
    self, ConfLine, Dataset, HostEntry, KeyEntry, KeySource, MAX_INCLUDE_DEPTH, Setting,
    SigningEntry,
};
use crate::host::accounts::{self, Accounts};
use crate::host::{ReadError, Reader, Root};
use crate::report::Severity;

/// Reads a file, turning a failure into a finding at `at` (the line that
/// names the file). `what` names the file in the message.
pub fn read_or_report(
    reader: &Reader,
    host: &Path,
    at: Option<&Origin>,
    what: &str,
    findings: &mut Vec<Finding>,
) -> Option<String> {
    match reader.read(host) {
        Ok(t) => Some(t),
        Err(e) => {
            findings.push(read_finding(host, at, what, &e));
            None
        }
    }
}

/// The finding for a file that could not be read.
pub fn read_finding(host: &Path, at: Option<&Origin>, what: &str, e: &ReadError) -> Finding {
    let fallback = Origin::file(host);
    let at = at.unwrap_or(&fallback);
    match e {
        ReadError::Missing => Finding::new(
            id::MISSING_FILE,
            Severity::Error,
            Some(at),
            format!("{what} {} does not exist", host.display()),
            "OpenDKIM (or Postfix) cannot start or cannot find what it is told to use",
            format!("create {} or correct the path", host.display()),
        ),
        ReadError::Unreadable(why) => Finding::new(
            id::UNREADABLE_FILE,
            Severity::Error,
            Some(at),
            format!("{what} {} cannot be read: {why}", host.display()),
            "whatever it holds was not audited, and the service reading it may fail the same way",
            format!(
                "make {} a readable regular file (check its mode and owner)",
                host.display()
            ),
        ),
    }
}

/// The OpenDKIM installation: its configuration and the datasets it
/// names, read and parsed.
#[derive(Debug, Clone, Default)]
pub struct OpenDkim {
    /// Host path of the main configuration file.
    pub conf_path: PathBuf,
    /// Every accepted setting, includes expanded, in file order.
    pub settings: Vec<Setting>,
    /// `-x`, `-p`, `-u` from the unit's `ExecStart=`, which override the
    /// file (opendkim(8)).
    pub cmdline: CmdLine,
    /// Keys: the KeyTable's entries, or the single Domain/Selector/KeyFile
    /// key (one per domain of `Domain`).
    pub keys: Vec<KeyEntry>,
    /// True when the keys came from a KeyTable.
    pub key_table: bool,
    /// True when the KeyTable was read (so a key missing from it is
    /// really missing).
    pub key_table_read: bool,
    /// True when the SigningTable was read.
    pub signing_table_read: bool,
    /// The SigningTable's entries.
    pub signing: Vec<SigningEntry>,
    /// InternalHosts entries, when set and readable.
    pub internal_hosts: Option<Vec<HostEntry>>,
    /// ExternalIgnoreList entries, when set and readable.
    pub external_ignore: Option<Vec<HostEntry>>,
}

/// Command-line options of the unit's `opendkim` invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdLine {
    /// `-x FILE`.
    pub config: Option<(String, Origin)>,
    /// `-p SOCKET`.
    pub socket: Option<(String, Origin)>,
    /// `-u USER[:GROUP]`.
    pub user: Option<(String, Origin)>,
}

impl OpenDkim {
    /// The effective value of a parameter: its last occurrence.
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.name == name)
    }

    /// The directory relative paths are resolved against.
    pub fn base_directory(&self) -> Option<PathBuf> {
        self.get("BaseDirectory")
            .map(|s| PathBuf::from(&s.value))
            .filter(|p| p.is_absolute())
    }

    /// The socket as configured (`-p` wins over `Socket`).
    pub fn socket(&self) -> Option<(String, Origin)> {
        self.cmdline
            .socket
            .clone()
            .or_else(|| self.get("Socket").map(|s| (s.value.clone(), s.at.clone())))
    }

    /// `Mode` includes signing (the default `sv` does).
    pub fn signs(&self) -> bool {
        self.get("Mode").is_none_or(|m| m.value.contains('s'))
    }

    /// The dataset a parameter names.
    pub fn dataset(&self, name: &str) -> Option<(Dataset, Origin)> {
        let s = self.get(name)?;
        Some((
            opendkim::parse_dataset(&s.value, self.base_directory().as_deref()),
            s.at.clone(),
        ))
    }
}

/// Everything the audit and the import look at.
#[derive(Debug, Clone)]
pub struct System {
    /// How to read more.
    pub reader: Reader,
    /// `/etc/debian_version` exists: Debian's defaults apply (chrooted
    /// Postfix, `/etc/opendkim.conf`).
    pub debian: bool,
    /// Users and groups; `None` when `/etc/passwd` is absent (user checks
    /// are skipped then).
    pub accounts: Option<Accounts>,
    /// The OpenDKIM installation, if one was found.
    pub opendkim: Option<OpenDkim>,
    /// The units found: `opendkim.service`, `dkimctl.service`,
    /// `dkimctl.socket`.
    pub units: Vec<Unit>,
    /// Postfix, if main.cf exists.
    pub postfix: Option<Postfix>,
    /// sendmail.mc and its filter lines, if it exists.
    pub sendmail: Option<(PathBuf, Vec<SendmailFilter>)>,
    /// sendmail.cf and sendmail.mc's includes, when sendmail.mc exists.
    pub sendmail_side: Option<super::sendmail::Side>,
    /// Problems met while reading.
    pub findings: Vec<Finding>,
}

/// Where to look, beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct Places {
    /// Postfix's configuration directory (default `/etc/postfix`).
    pub postfix_dir: Option<PathBuf>,
    /// sendmail.mc (default `/etc/mail/sendmail.mc`).
    pub sendmail_mc: Option<PathBuf>,
    /// The configuration file OpenDKIM is expected to read (dkim.toml's
    /// rendered one), tried before the defaults.
    pub opendkim_conf: Option<PathBuf>,
    /// The MTA dkim.toml names, when it names one: the other MTA's files
    /// (a leftover main.cf on a Sendmail host) are not read.
    pub only_mta: Option<MtaKind>,
}

/// An MTA whose files the audit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtaKind {
    /// Postfix: main.cf and master.cf.
    Postfix,
    /// Sendmail: sendmail.mc, sendmail.cf.
    Sendmail,
}

/// The units the audit looks for.
pub const UNITS: [&str; 3] = ["opendkim.service", "dkimctl.service", "dkimctl.socket"];

impl System {
    /// Reads everything under the root.
    pub fn gather(root: &Root, places: &Places) -> System {
        let reader = Reader::new(root);
        let mut findings = Vec::new();
        let debian = reader.exists(Path::new("/etc/debian_version"));
        let accounts = if reader.exists(Path::new("/etc/passwd")) {
            match accounts::load(root) {
                Ok(a) => Some(a),
                Err(e) => {
                    findings.push(read_finding(
                        Path::new("/etc/passwd"),
                        None,
                        "account file",
                        &ReadError::Unreadable(e.to_string()),
                    ));
                    None
                }
            }
        } else {
            None
        };
        let mut units = Vec::new();
        for name in UNITS {
            if let Some(u) = systemd::find_unit(&reader, name, &mut findings) {
                units.push(u);
            }
        }
        let unit = units.iter().find(|u| u.name == "opendkim.service");
        let opendkim = gather_opendkim(&reader, unit, debian, places, &mut findings);
        let postfix_dir = places
            .postfix_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/postfix"));
        let postfix = match places.only_mta {
            Some(MtaKind::Sendmail) => None,
            _ => mta::read_postfix(&reader, &postfix_dir, &mut findings),
        };
        let mc = places
            .sendmail_mc
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/mail/sendmail.mc"));
        let mut sendmail_side = None;
        let read_mc = match places.only_mta {
            Some(MtaKind::Postfix) => Err(ReadError::Missing),
            _ => reader.read(&mc),
        };
        let sendmail = match read_mc {
            Ok(text) => {
                let side = super::sendmail::gather(&reader, &mc, &text, &mut findings);
                let mut filters = mta::parse_sendmail_mc(&text, &mc);
                // Filters defined in included files (Debian's opendkim
                // package writes /etc/mail/m4/opendkim.m4) count as if
                // written in sendmail.mc.
                for (inc, f) in &side.included {
                    filters.push(mta::SendmailFilter {
                        name: f.name.clone(),
                        socket: f.socket.clone(),
                        flags: f.flags.clone(),
                        at: Origin::line(inc, f.line),
                    });
                }
                sendmail_side = Some(side);
                Some((mc.clone(), filters))
            }
            Err(ReadError::Missing) => None,
            Err(e) => {
                findings.push(read_finding(&mc, None, "sendmail.mc", &e));
                None
            }
        };
        System {
            reader,
            debian,
            accounts,
            opendkim,
            units,
            postfix,
            sendmail,
            sendmail_side,
            findings,
        }
    }

    /// The unit with this name, if found.
    pub fn unit(&self, name: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.name == name)
    }
}

/// Finds and reads opendkim.conf and its datasets.
fn gather_opendkim(
    reader: &Reader,
    unit: Option<&Unit>,
    debian: bool,
    places: &Places,
    findings: &mut Vec<Finding>,
) -> Option<OpenDkim> {
    let cmdline = unit.map(opendkim_cmdline).unwrap_or_default();
    let mut candidates: Vec<(PathBuf, Option<Origin>)> = Vec::new();
    if let Some((path, at)) = &cmdline.config {
        candidates.push((PathBuf::from(path), Some(at.clone())));
    } else {
        if let Some(p) = &places.opendkim_conf {
            candidates.push((p.clone(), None));
        }
        // The compiled-in default: Debian's package reads /etc/opendkim.conf,
        // upstream and Arch /etc/opendkim/opendkim.conf.
        let (first, second) = if debian {
            ("/etc/opendkim.conf", "/etc/opendkim/opendkim.conf")
        } else {
            ("/etc/opendkim/opendkim.conf", "/etc/opendkim.conf")
        };
        candidates.push((PathBuf::from(first), None));
        candidates.push((PathBuf::from(second), None));
    }
    let mut chosen = None;
    for (path, at) in &candidates {
        match reader.read(path) {
            Ok(text) => {
                chosen = Some((path.clone(), text));
                break;
            }
            Err(ReadError::Missing) if at.is_none() => continue,
            Err(e) => {
                findings.push(read_finding(
                    path,
                    at.as_ref(),
                    "OpenDKIM configuration",
                    &e,
                ));
                return None;
            }
        }
    }
    let (conf_path, text) = chosen?;
    let mut settings = Vec::new();
    load_conf(reader, &conf_path, &text, 0, &mut settings, findings);
    let mut od = OpenDkim {
        conf_path,
        settings,
        cmdline,
        ..OpenDkim::default()
    };
    gather_keys(reader, &mut od, findings);
    od.internal_hosts = gather_hosts(reader, &od, "InternalHosts", findings);
    od.external_ignore = gather_hosts(reader, &od, "ExternalIgnoreList", findings);
    Some(od)
}

/// Most bytes read through `Include`s of one configuration, the main file
/// included: far above any real setup, far below what a file including
/// itself at every level would make a naive walk read.
pub const MAX_INCLUDED_BYTES: usize = 16 << 20;

/// The state of one walk through a configuration and its `Include`s.
struct IncludeWalk {
    /// Every file read so far (real paths, links resolved in the root):
    /// each is read once. A repeat would only add settings that come
    /// after the first copy's, and OpenDKIM takes the first.
    read: std::collections::HashSet<PathBuf>,
    /// The files being read, outermost first, to tell a loop from a
    /// repeat.
    stack: Vec<PathBuf>,
    /// Bytes read so far.
    bytes: usize,
    /// [`MAX_INCLUDED_BYTES`] was reached (and reported).
    exhausted: bool,
}

/// Parses one configuration file into `out`, following `Include`s: each
/// file once, at most [`MAX_INCLUDE_DEPTH`] deep, at most
/// [`MAX_INCLUDED_BYTES`] in all (issue 15, item 7: a file including
/// itself 16 times grew as 16^depth).
fn load_conf(
    reader: &Reader,
    path: &Path,
    text: &str,
    depth: usize,
    out: &mut Vec<Setting>,
    findings: &mut Vec<Finding>,
) {
    let real = reader
        .resolve(path)
        .unwrap_or_else(|_| reader.root().join(path));
    let mut walk = IncludeWalk {
        read: std::collections::HashSet::from([real.clone()]),
        stack: vec![real],
        bytes: text.len(),
        exhausted: false,
    };
    load_conf_in(reader, path, text, depth, out, findings, &mut walk);
}

fn load_conf_in(
    reader: &Reader,
    path: &Path,
    text: &str,
    depth: usize,
    out: &mut Vec<Setting>,
    findings: &mut Vec<Finding>,
    walk: &mut IncludeWalk,
) {
    for line in parse_conf(text, path, findings) {
        match line {
            ConfLine::Setting(s) => out.push(s),
            ConfLine::Include(_, _) if walk.exhausted => {}
            ConfLine::Include(file, at) => {
                let inc = PathBuf::from(&file);
                let real = reader
                    .resolve(&inc)
                    .unwrap_or_else(|_| reader.root().join(&inc));
                if walk.stack.contains(&real) {
                    findings.push(Finding::new(
                        id::OPTION_VALUE,
                        Severity::Error,
                        Some(&at),
                        format!("Include {file} includes a file that is including it"),
                        "OpenDKIM refuses to start: \"configuration error: nesting too deep\"",
                        "remove the Include that closes the loop",
                    ));
                    continue;
                }
                if depth + 1 > MAX_INCLUDE_DEPTH {
                    findings.push(Finding::new(
                        id::OPTION_VALUE,
                        Severity::Error,
                        Some(&at),
                        format!("Include {file} nests more than {MAX_INCLUDE_DEPTH} levels deep"),
                        "OpenDKIM refuses to start: \"configuration error: nesting too deep\"",
                        "flatten the includes",
                    ));
                    continue;
                }
                if !walk.read.insert(real.clone()) {
                    // Read already: its settings are in, first ones win.
                    continue;
                }
                let Some(t) = read_or_report(reader, &inc, Some(&at), "included file", findings)
                else {
                    continue;
                };
                walk.bytes = walk.bytes.saturating_add(t.len());
                if walk.bytes > MAX_INCLUDED_BYTES {
                    walk.exhausted = true;
                    findings.push(Finding::new(
                        id::OPTION_VALUE,
                        Severity::Error,
                        Some(&at),
                        format!(
                            "Include {file}: the configuration and its includes exceed {} MiB; not read further",
                            MAX_INCLUDED_BYTES >> 20
                        ),
                        "settings beyond this point are not audited",
                        "flatten the includes",
                    ));
                    return;
                }
                walk.stack.push(real);
                load_conf_in(reader, &inc, &t, depth + 1, out, findings, walk);
                walk.stack.pop();
            }
        }
    }
}

/// `-x`, `-p` and `-u` of the `opendkim` command in `ExecStart=`.
fn opendkim_cmdline(unit: &Unit) -> CmdLine {
    let mut c = CmdLine::default();
    let Some(exec) = unit.get("Service", "ExecStart") else {
        return c;
    };
    let args = systemd::split_command(&exec.value);
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match (a.get(..2), a.get(2..)) {
            (Some(f), Some(rest)) if f.starts_with('-') && f != "--" && !rest.is_empty() => {
                (f, Some(rest.to_string()))
            }
            _ => (a.as_str(), None),
        };
        let slot = match flag {
            "-x" => &mut c.config,
            "-p" => &mut c.socket,
            "-u" => &mut c.user,
            _ => continue,
        };
        let value = inline.or_else(|| it.next().cloned());
        if let Some(v) = value {
            *slot = Some((v, exec.at.clone()));
        }
    }
    c
}

/// The lines of a file dataset, or the entries of a list, each with its
/// place; `None` when unset, unreadable or not readable offline.
fn dataset_lines(
    reader: &Reader,
    od: &OpenDkim,
    name: &str,
    findings: &mut Vec<Finding>,
) -> Option<(Dataset, Origin, Vec<opendkim::TableLine>)> {
    let (ds, at) = od.dataset(name)?;
    match &ds {
        Dataset::File(p) | Dataset::Refile(p) => {
            let text = read_or_report(reader, p, Some(&at), name, findings)?;
            let lines = opendkim::parse_table(&text, p);
            Some((ds, at, lines))
        }
        Dataset::List(items) => {
            let lines = items
                .iter()
                .map(|i| {
                    let (key, value) = match i.split_once('=') {
                        Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                        None => (i.clone(), String::new()),
                    };
                    opendkim::TableLine {
                        key,
                        value,
                        at: at.clone(),
                    }
                })
                .collect();
            Some((ds, at, lines))
        }
        Dataset::Other(kind) => {
            findings.push(Finding::new(
                id::DATASET_NOT_CHECKED,
                Severity::Info,
                Some(&at),
                format!("{name} is a {kind}: dataset, which the audit cannot read"),
                "its entries were not checked",
                "check them by hand, or move them into a file: dataset",
            ));
            None
        }
    }
}

fn table_syntax(at: &Origin, what: &str, why: String) -> Finding {
    Finding::new(
        id::TABLE_SYNTAX,
        Severity::Error,
        Some(at),
        format!("{what} line does not parse: {why}"),
        "OpenDKIM skips or rejects the line, so the key or rule it meant is not used",
        "fix the line (see opendkim.conf(5)) or remove it",
    )
}

/// Keys from the KeyTable (or the single-key settings) and SigningTable
/// entries.
fn gather_keys(reader: &Reader, od: &mut OpenDkim, findings: &mut Vec<Finding>) {
    let base = od.base_directory();
    if od.get("KeyTable").is_some() {
        od.key_table = true;
        if let Some((_, _, lines)) = dataset_lines(reader, od, "KeyTable", findings) {
            od.key_table_read = true;
            for l in &lines {
                match opendkim::parse_key_line(l, base.as_deref()) {
                    Ok(k) => od.keys.push(k),
                    Err(why) => findings.push(table_syntax(&l.at, "KeyTable", why)),
                }
            }
        }
    } else if let (Some(domain), Some(selector), Some(file)) = (
        od.get("Domain").cloned(),
        od.get("Selector").cloned(),
        od.get("KeyFile").cloned(),
    ) {
        let path = match base.as_deref() {
            Some(b) if !file.value.starts_with('/') => b.join(&file.value),
            _ => Path::new("/").join(&file.value),
        };
        let domains = match opendkim::parse_dataset(&domain.value, base.as_deref()) {
            Dataset::List(items) => items.into_iter().map(|d| (d, domain.at.clone())).collect(),
            Dataset::File(p) | Dataset::Refile(p) => {
                read_or_report(reader, &p, Some(&domain.at), "Domain", findings)
                    .map(|t| {
                        opendkim::parse_table(&t, &p)
                            .into_iter()
                            .map(|l| (l.key, l.at))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Dataset::Other(_) => Vec::new(),
        };
        for (d, at) in domains {
            od.keys.push(KeyEntry {
                name: String::new(),
                domain: d.to_ascii_lowercase(),
                selector: selector.value.to_ascii_lowercase(),
                key: KeySource::File(path.clone()),
                at,
            });
        }
    }
    if let Some((_, _, lines)) = dataset_lines(reader, od, "SigningTable", findings) {
        od.signing_table_read = true;
        for l in &lines {
            match opendkim::parse_signing_line(l) {
                Ok(s) => od.signing.push(s),
                Err(why) => findings.push(table_syntax(&l.at, "SigningTable", why)),
            }
        }
    }
}

fn gather_hosts(
    reader: &Reader,
    od: &OpenDkim,
    name: &str,
    findings: &mut Vec<Finding>,
) -> Option<Vec<HostEntry>> {
    let (ds, _, lines) = dataset_lines(reader, od, name, findings)?;
    let globs = matches!(ds, Dataset::Refile(_));
    Some(host_entries(&lines, globs, findings, name))
}

/// Owner, group and mode of a path, from the inode.
pub fn owner_mode(meta: &Metadata) -> (u32, u32, u32) {
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::opendkim;

    #[test]
    fn links_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(dir.path().join("etc/opendkim")).unwrap();
        std::fs::write(dir.path().join("etc/opendkim/real.conf"), "Syslog yes\n").unwrap();
        std::os::unix::fs::symlink(
            "/etc/opendkim/real.conf",
            dir.path().join("etc/opendkim.conf"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("etc/escape")).unwrap();
        let r = Reader::new(&root);
        assert_eq!(
            r.read(Path::new("/etc/opendkim.conf")).unwrap(),
            "Syslog yes\n"
        );
        // An absolute link target is a host path under the root, never the
        // auditing machine's own /etc/passwd.
        assert_eq!(r.read(Path::new("/etc/escape")), Err(ReadError::Missing));
        assert!(matches!(
            r.read(Path::new("/etc/opendkim")),
            Err(ReadError::Unreadable(_))
        ));
    }

    /// Issue 15, item 7: files including themselves and each other 16
    /// times at every level are each read once; the loop is reported.
    #[test]
    fn an_include_bomb_reads_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(dir.path().join("etc/opendkim")).unwrap();
        let a = "Syslog yes\n".to_string()
            + &"Include /etc/opendkim/opendkim.conf\nInclude /etc/opendkim/b.conf\n".repeat(16);
        let b = "Mode sv\n".to_string()
            + &"Include /etc/opendkim/b.conf\nInclude /etc/opendkim/opendkim.conf\n".repeat(16);
        std::fs::write(dir.path().join("etc/opendkim/opendkim.conf"), &a).unwrap();
        std::fs::write(dir.path().join("etc/opendkim/b.conf"), &b).unwrap();
        let reader = Reader::new(&root);
        let (mut out, mut findings) = (Vec::new(), Vec::new());
        let started = std::time::Instant::now();
        load_conf(
            &reader,
            Path::new("/etc/opendkim/opendkim.conf"),
            &a,
            0,
            &mut out,
            &mut findings,
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let names: Vec<&str> = out.iter().map(|s| s.name).collect();
        assert_eq!(names, ["Syslog", "Mode"]);
        let loops = findings
            .iter()
            .filter(|f| f.message.contains("includes a file that is including it"))
            .count();
        // Each Include line closing a loop, once per file: 16 in a, 32 in b.
        assert_eq!(loops, 48, "{findings:?}");
    }

    #[test]
    fn hostile_text_never_panics() {
        use crate::audit::{mta, systemd};
        let nasty = [
            "",
            "\n",
            "$",
            "${",
            "$(x",
            "${a?",
            "${a:b",
            "$$$",
            "[",
            "]",
            "\\",
            "-o",
            "-o {",
            "é",
            "-é",
            "Socket é",
            "UMask -",
            "UMask +",
            "UMask 0x",
            "Include",
            "smtp inet n - y - - smtpd -o",
            "INPUT_MAIL_FILTER(",
            "INPUT_MAIL_FILTER(`x', `S=')",
            "a = ${a}",
            "x\r\n\r",
            "\u{0}\u{1b}[31m",
            "*@*",
            "k d:s",
            "k :::",
            "! [",
            "[::1",
            "ExecStart=\\",
            "ExecStart='",
            "[Service]\nExecStart=-é -x",
        ];
        // Plus pseudo-random strings over the characters the parsers treat
        // specially (a fixed LCG, so failures reproduce).
        let alphabet: Vec<char> = "${}()[]\\\n\r\t #=-oé:@*/!.0x'\"`,SF;".chars().collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut random: Vec<String> = Vec::new();
        for _ in 0..400 {
            let mut t = String::new();
            for _ in 0..(seed % 40) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                t.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            random.push(t);
        }
        let p = Path::new("/f");
        for t in nasty
            .iter()
            .copied()
            .chain(random.iter().map(String::as_str))
        {
            let mut f = Vec::new();
            let _ = parse_conf(t, p, &mut f);
            for l in opendkim::parse_table(t, p) {
                let _ = opendkim::parse_key_line(&l, None);
                let _ = opendkim::parse_signing_line(&l);
            }
            let _ = opendkim::parse_host_entry(t, &Origin::file(p));
            let _ = opendkim::parse_dataset(t, Some(Path::new("/b")));
            let _ = opendkim::parse_c_int(t);
            let main = crate::formats::postfix::MainCf::parse(t.as_bytes());
            let pf = mta::Postfix {
                main_path: p.into(),
                main,
                master_path: p.into(),
                master: Some(crate::formats::postfix::parse_master(t.as_bytes())),
            };
            let _ = pf.expand(t);
            let _ = pf.queue_directory();
            let _ = crate::formats::postfix::milter_entries(t);
            let _ = crate::formats::postfix::entry_parts(t);
            let _ = mta::parse_sendmail_mc(t, p);
            let d = systemd::parse_unit(t, p);
            let u = systemd::Unit {
                name: "x.service".into(),
                fragment: p.into(),
                dropins: Vec::new(),
                directives: d,
            };
            let _ = opendkim_cmdline(&u);
            let _ = systemd::missing_hardening(&u);
            let _ = systemd::split_command(t);
            let _ = systemd::parse_exposure(t);
        }
    }

    #[test]
    fn a_fifo_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        nix::unistd::mkfifo(
            &dir.path().join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let r = Reader::new(&root);
        assert!(matches!(
            r.read(Path::new("/fifo")),
            Err(ReadError::Unreadable(_))
        ));
    }
}
