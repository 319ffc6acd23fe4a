//! Reading the MTA side: Postfix's main.cf and master.cf, and the
//! `INPUT_MAIL_FILTER` lines of sendmail.mc, as far as the milter is
//! concerned (which milters each service calls, whether it runs
//! chrooted, `milter_protocol`, `milter_default_action`).
//!
//! The files are parsed by [`crate::formats::postfix`], the same code plan
//! merges with, so audit and plan read them alike.

use std::path::{Path, PathBuf};

use crate::formats::postfix::{MainCf, parse_master};

use super::findings::{Finding, Origin};
use super::inventory::read_finding;
use crate::host::{ReadError, Reader};

pub use crate::formats::postfix::{Chroot, DEFAULT_QUEUE_DIRECTORY, Param, Service};

/// Postfix's configuration as the audit read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postfix {
    /// Host path of main.cf.
    pub main_path: PathBuf,
    /// Its parameters.
    pub main: MainCf,
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
        Ok(t) => MainCf::parse(t.as_bytes()),
        Err(ReadError::Missing) => return None,
        Err(e) => {
            findings.push(read_finding(&main_path, None, "Postfix main.cf", &e));
            MainCf::default()
        }
    };
    let master = match reader.read(&master_path) {
        Ok(t) => Some(parse_master(t.as_bytes())),
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

impl Postfix {
    /// The last setting of a main.cf parameter.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.main.param(name)
    }

    /// Where a main.cf parameter is.
    pub fn main_at(&self, p: &Param) -> Origin {
        Origin::line(&self.main_path, p.line)
    }

    /// Where a master.cf service or override is.
    pub fn master_at(&self, line: usize) -> Origin {
        Origin::line(&self.master_path, line)
    }

    /// `$name` references expanded with main.cf's values.
    pub fn expand(&self, value: &str) -> String {
        self.main.expand(value)
    }

    /// Postfix's queue directory, the chroot of its daemons.
    pub fn queue_directory(&self) -> PathBuf {
        self.main.queue_directory()
    }

    /// True when main.cf is shaped like Debian's package wrote it.
    pub fn looks_debian(&self) -> bool {
        self.main.looks_debian()
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

/// One filter line of sendmail.mc, with its place.
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

/// The `INPUT_MAIL_FILTER` (and `MAIL_FILTER`) lines of sendmail.mc
/// ([`crate::formats::sendmail::parse_filters`]).
pub fn parse_sendmail_mc(text: &str, path: &Path) -> Vec<SendmailFilter> {
    crate::formats::sendmail::parse_filters(text.as_bytes())
        .into_iter()
        .map(|f| SendmailFilter {
            name: f.name,
            socket: f.socket,
            flags: f.flags,
            at: Origin::line(path, f.line),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendmail_filters() {
        let f = parse_sendmail_mc(
            "FEATURE(`x')dnl\nINPUT_MAIL_FILTER(`opendkim', `S=inet:8891@localhost')\n",
            Path::new("/etc/mail/sendmail.mc"),
        );
        assert_eq!(f[0].name, "opendkim");
        assert_eq!(f[0].socket.as_deref(), Some("inet:8891@localhost"));
        assert_eq!(f[0].at.line, Some(2));
    }
}
