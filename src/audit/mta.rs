//! Reading the MTA side: Postfix's main.cf and master.cf, and the
//! `INPUT_MAIL_FILTER` lines of sendmail.mc, as far as the milter is
//! concerned (which milters each service calls, whether it runs
//! chrooted, `milter_protocol`, `milter_default_action`).
//!
//! Implementation note: [`crate::plan`] has its own main.cf/master.cf line
//! handling for merging; its helpers are private to that module, so this
//! file reads the same syntax (postconf(5), master(5)) for the audit's
//! needs: logical lines (continuations start with whitespace; `#` lines
//! are comments), the last setting of a parameter wins, and `$name`,
//! `${name}` and `$(name)` expand to other main.cf parameters.

use std::path::{Path, PathBuf};

use super::findings::{Finding, Origin};
use super::inventory::read_finding;
use crate::host::{ReadError, Reader};

/// Postfix's compiled-in queue directory.
pub const DEFAULT_QUEUE_DIRECTORY: &str = "/var/spool/postfix";

/// One `name = value` parameter of main.cf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter name.
    pub name: String,
    /// The value, continuation lines joined by one space.
    pub value: String,
    /// Its first line.
    pub at: Origin,
}

/// Whether a master.cf service runs chrooted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroot {
    /// Column `y`.
    Yes,
    /// Column `n`.
    No,
    /// Column `-`: the compiled-in default, `y` in Debian's package and
    /// `n` upstream since Postfix 3.0. Resolved by [`Postfix::chroot_of`].
    Default,
}

/// One service of master.cf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Service name (`smtp`, `submission`, `cleanup`).
    pub name: String,
    /// Service type (`inet`, `unix`, `pass`, ...).
    pub kind: String,
    /// The chroot column.
    pub chroot: Chroot,
    /// The command (`smtpd`, `cleanup`, ...).
    pub command: String,
    /// `-o name=value` overrides, each with its line.
    pub overrides: Vec<Param>,
    /// The service's first line.
    pub at: Origin,
}

/// Postfix's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postfix {
    /// Host path of main.cf.
    pub main_path: PathBuf,
    /// Its parameters, in file order.
    pub main: Vec<Param>,
    /// Host path of master.cf.
    pub master_path: PathBuf,
    /// Its services, `None` when master.cf is missing or unreadable.
    pub master: Option<Vec<Service>>,
}

/// Reads main.cf and master.cf from `dir`; `None` when there is no
/// main.cf (no Postfix).
pub fn read_postfix(reader: &Reader, dir: &Path, findings: &mut Vec<Finding>) -> Option<Postfix> {
    let main_path = dir.join("main.cf");
    let master_path = dir.join("master.cf");
    let main = match reader.read(&main_path) {
        Ok(t) => parse_main(&t, &main_path),
        Err(ReadError::Missing) => return None,
        Err(e) => {
            findings.push(read_finding(&main_path, None, "Postfix main.cf", &e));
            Vec::new()
        }
    };
    let master = match reader.read(&master_path) {
        Ok(t) => Some(parse_master(&t, &master_path)),
        Err(ReadError::Missing) => None,
        Err(e) => {
            findings.push(read_finding(&master_path, None, "Postfix master.cf", &e));
            None
        }
    };
    Some(Postfix {
        main_path,
        main,
        master_path,
        master,
    })
}

/// Logical lines: (first line number, joined text).
fn logical(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(trimmed.trim_end());
            }
            continue;
        }
        out.push((i + 1, line.trim_end().to_string()));
    }
    out
}

/// Parses main.cf.
pub fn parse_main(text: &str, path: &Path) -> Vec<Param> {
    logical(text)
        .into_iter()
        .filter_map(|(line, l)| {
            let (name, value) = l.split_once('=')?;
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return None;
            }
            Some(Param {
                name: name.to_string(),
                value: value.trim().to_string(),
                at: Origin::line(path, line),
            })
        })
        .collect()
}

/// Parses master.cf: services and their `-o` overrides (each override
/// keeps the physical line it is on).
pub fn parse_master(text: &str, path: &Path) -> Vec<Service> {
    let mut out: Vec<Service> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = Origin::line(path, i + 1);
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        if !line.starts_with([' ', '\t']) {
            if words.len() < 8 {
                continue;
            }
            let chroot = match words[4] {
                "y" => Chroot::Yes,
                "n" => Chroot::No,
                _ => Chroot::Default,
            };
            let mut svc = Service {
                name: words[0].to_string(),
                kind: words[1].to_string(),
                chroot,
                command: words[7].to_string(),
                overrides: Vec::new(),
                at: at.clone(),
            };
            push_overrides(&mut svc, &words[8..], &at);
            out.push(svc);
        } else if let Some(svc) = out.last_mut() {
            push_overrides(svc, &words, &at);
        }
    }
    out
}

/// Collects `-o name=value`, `-o name = value` and `-o { name = value }`.
fn push_overrides(svc: &mut Service, words: &[&str], at: &Origin) {
    let mut i = 0;
    while i < words.len() {
        if words[i] != "-o" {
            i += 1;
            continue;
        }
        // Re-join what follows `-o` up to the next `-o`.
        let mut j = i + 1;
        while j < words.len() && words[j] != "-o" {
            j += 1;
        }
        let text = words[i + 1..j].join(" ");
        let text = text.trim();
        let inner = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(text);
        if let Some((name, value)) = inner.split_once('=') {
            svc.overrides.push(Param {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
                at: at.clone(),
            });
        }
        i = j;
    }
}

impl Postfix {
    /// The last setting of a main.cf parameter.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.main.iter().rev().find(|p| p.name == name)
    }

    /// `$name`, `${name}`, `$(name)`, `${name?text}` and `${name:text}`
    /// expanded with main.cf's values (unset parameters expand to nothing,
    /// which is right for the milter lists; nesting is cut at 10 levels).
    pub fn expand(&self, value: &str) -> String {
        self.expand_depth(value, 0)
    }

    fn expand_depth(&self, value: &str, depth: usize) -> String {
        if depth > 10 {
            return value.to_string();
        }
        let lookup = |name: &str| {
            self.param(name)
                .map(|p| self.expand_depth(&p.value, depth + 1))
                .unwrap_or_default()
        };
        let mut out = String::new();
        let mut rest = value;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let (open, close) = match after.chars().next() {
                Some('{') => (Some('{'), '}'),
                Some('(') => (Some('('), ')'),
                _ => (None, ' '),
            };
            match open {
                Some(_) => match after[1..].find(close) {
                    Some(end) => {
                        let inner = &after[1..1 + end];
                        if let Some((name, text)) = inner.split_once('?') {
                            if !lookup(name).is_empty() {
                                out.push_str(&self.expand_depth(text, depth + 1));
                            }
                        } else if let Some((name, text)) = inner.split_once(':') {
                            if lookup(name).is_empty() {
                                out.push_str(&self.expand_depth(text, depth + 1));
                            }
                        } else {
                            out.push_str(&lookup(inner));
                        }
                        rest = &after[end + 2..];
                    }
                    None => {
                        out.push_str(&rest[pos..]);
                        rest = "";
                    }
                },
                None => {
                    let len = after
                        .bytes()
                        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                        .count();
                    if len == 0 {
                        out.push('$');
                        rest = after;
                    } else {
                        out.push_str(&lookup(&after[..len]));
                        rest = &after[len..];
                    }
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Postfix's queue directory, the chroot of its daemons.
    pub fn queue_directory(&self) -> PathBuf {
        self.param("queue_directory")
            .map(|p| PathBuf::from(self.expand(&p.value)))
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_QUEUE_DIRECTORY))
    }

    /// True when main.cf is shaped like Debian's or Ubuntu's package
    /// wrote it (its `smtpd_banner` names the distribution).
    pub fn looks_debian(&self) -> bool {
        self.param("smtpd_banner")
            .is_some_and(|p| p.value.contains("(Debian") || p.value.contains("(Ubuntu"))
    }

    /// The effective chroot of a service: `-` resolved to `y` on Debian
    /// (its package's default; `debian` is true when the root has
    /// `/etc/debian_version` or main.cf [looks like Debian's](Self::looks_debian)),
    /// left as [`Chroot::Default`] elsewhere.
    pub fn chroot_of(&self, svc: &Service, debian: bool) -> Chroot {
        match svc.chroot {
            Chroot::Default if debian || self.looks_debian() => Chroot::Yes,
            c => c,
        }
    }

    /// The services that run `command` (`smtpd`, `cleanup`).
    pub fn services_running(&self, command: &str) -> Vec<&Service> {
        self.master
            .iter()
            .flatten()
            .filter(|s| s.command == command)
            .collect()
    }
}

/// Splits a milter list into its entries: separated by commas or
/// whitespace; a `{ address, name = value, ... }` group (Postfix 3.0
/// per-milter settings) is one entry.
pub fn milter_entries(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in list.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
                if depth == 0 {
                    out.push(std::mem::take(&mut cur).trim().to_string());
                }
            }
            ',' | ' ' | '\t' | '\n' if depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(std::mem::take(&mut cur).trim().to_string());
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The address of a milter list entry and its per-milter settings.
pub fn entry_parts(entry: &str) -> (String, Vec<(String, String)>) {
    let Some(inner) = entry.strip_prefix('{') else {
        return (entry.to_string(), Vec::new());
    };
    let inner = inner.strip_suffix('}').unwrap_or(inner);
    let mut parts = inner.split(',').map(str::trim).filter(|p| !p.is_empty());
    let address = parts.next().unwrap_or_default().to_string();
    let settings = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    (address, settings)
}

/// One `INPUT_MAIL_FILTER(`name', `S=...')` line of sendmail.mc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendmailFilter {
    /// The filter's name.
    pub name: String,
    /// The `S=` socket, if given.
    pub socket: Option<String>,
    /// The `F=` flags (`T` tempfail, `R` reject when unreachable).
    pub flags: Option<String>,
    /// Where the line is.
    pub at: Origin,
}

/// Finds the `INPUT_MAIL_FILTER` (and `MAIL_FILTER`) lines of sendmail.mc.
pub fn parse_sendmail_mc(text: &str, path: &Path) -> Vec<SendmailFilter> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim();
        let Some(args) = line
            .strip_prefix("INPUT_MAIL_FILTER(")
            .or_else(|| line.strip_prefix("MAIL_FILTER("))
        else {
            continue;
        };
        let args = args.split(')').next().unwrap_or_default();
        let unquote = |s: &str| {
            s.trim()
                .trim_start_matches('`')
                .trim_end_matches('\'')
                .trim()
                .to_string()
        };
        let (name, rest) = args.split_once(',').unwrap_or((args, ""));
        let mut socket = None;
        let mut flags = None;
        for part in unquote(rest).split(',') {
            let part = part.trim();
            if let Some(s) = part.strip_prefix("S=") {
                socket = Some(s.trim().to_string());
            } else if let Some(f) = part.strip_prefix("F=") {
                flags = Some(f.trim().to_string());
            }
        }
        out.push(SendmailFilter {
            name: unquote(name),
            socket,
            flags,
            at: Origin::line(path, i + 1),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_cf_logical_lines_and_expansion() {
        let p = Path::new("/etc/postfix/main.cf");
        let main = parse_main(
            "# For use by dkim milter\n\
             smtpd_milters = unix:/run/opendkim/opendkim.sock,\n\
             \x20               unix:/run/opendmarc/opendmarc.sock\n\
             non_smtpd_milters = $smtpd_milters\n\
             other = ${missing?x}${missing:y}$(smtpd_milters)\n",
            p,
        );
        let pf = Postfix {
            main_path: p.into(),
            main,
            master_path: "/etc/postfix/master.cf".into(),
            master: None,
        };
        let v = pf.param("smtpd_milters").unwrap();
        assert_eq!(v.at.line, Some(2));
        assert_eq!(
            milter_entries(&pf.expand("$non_smtpd_milters")),
            [
                "unix:/run/opendkim/opendkim.sock",
                "unix:/run/opendmarc/opendmarc.sock"
            ]
        );
        assert!(pf.expand("$other").starts_with("yunix:"));
    }

    #[test]
    fn master_cf_services_and_overrides() {
        let p = Path::new("/etc/postfix/master.cf");
        let s = parse_master(
            "smtp      inet  n       -       y       -       -       smtpd\n\
             \x20 -o smtpd_client_connection_count_limit=10\n\
             \x20 -o smtpd_milters=inet:127.0.0.1:8891\n\
             #comment\n\
             submission inet n       -       -       -       -       smtpd\n\
             \x20 -o { smtpd_milters = inet:127.0.0.1:8891 }\n\
             cleanup   unix  n       -       y       -       0       cleanup\n",
            p,
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].chroot, Chroot::Yes);
        assert_eq!(s[0].overrides[1].name, "smtpd_milters");
        assert_eq!(s[0].overrides[1].at.line, Some(3));
        assert_eq!(s[1].chroot, Chroot::Default);
        assert_eq!(s[1].overrides[0].value, "inet:127.0.0.1:8891");
        assert_eq!(s[2].command, "cleanup");
    }

    #[test]
    fn milter_groups_and_sendmail_filters() {
        let e = milter_entries("{ inet:localhost:8891, default_action = accept }, unix:/x");
        assert_eq!(e.len(), 2);
        let (addr, settings) = entry_parts(&e[0]);
        assert_eq!(addr, "inet:localhost:8891");
        assert_eq!(settings, [("default_action".into(), "accept".into())]);
        let f = parse_sendmail_mc(
            "FEATURE(`x')dnl\nINPUT_MAIL_FILTER(`opendkim', `S=inet:8891@localhost')\n",
            Path::new("/etc/mail/sendmail.mc"),
        );
        assert_eq!(f[0].name, "opendkim");
        assert_eq!(f[0].socket.as_deref(), Some("inet:8891@localhost"));
        assert_eq!(f[0].at.line, Some(2));
    }
}
