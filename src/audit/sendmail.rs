//! Sendmail: what sendmail runs (sendmail.cf) against what the admin
//! wrote (sendmail.mc and the files it includes), and whether the milters
//! it calls answer.
//!
//! sendmail reads sendmail.cf, not sendmail.mc: an edit of the mc does
//! nothing until sendmail.cf is rebuilt and sendmail reloads. The checks
//! here name the gaps that leave mail unsigned or refused:
//!
//! - `sendmail-cf-stale`: sendmail.cf is older than sendmail.mc (or a
//!   file it includes), or calls other filters than the mc defines;
//! - `socket-mismatch`: a DKIM filter in sendmail.cf points at another
//!   socket than the milter's;
//! - `two-dkim-milters`: sendmail calls two DKIM milters (after a switch
//!   of engine done by hand: both sign, and both must answer);
//! - `sendmail-filter-down` (live): a filter with `F=T` (or `F=R`) does not
//!   answer, so sendmail refuses every message (451) until it does.
//!
//! The mc's own filter lines are judged in [`super::checks`].

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::AuditOptions;
use super::findings::{Finding, Origin, id};
use crate::config::model::Socket;
use crate::formats::sendmail::{self, Cf, Filter};
use crate::host::{ReadError, Reader};
use crate::report::Severity;

/// sendmail.cf next to sendmail.mc, and the filters sendmail.mc's
/// includes define.
#[derive(Debug, Clone)]
pub struct Side {
    /// sendmail.mc.
    pub mc: PathBuf,
    /// Its own filter lines.
    pub mc_filters: Vec<Filter>,
    /// sendmail.cf (host path) and what it says; `None` when it does not
    /// exist.
    pub cf: Option<(PathBuf, Cf)>,
    /// Filters defined in files sendmail.mc includes (outside
    /// /usr/share, where sendmail's own m4 macros are), with the file.
    pub included: Vec<(PathBuf, Filter)>,
    /// sendmail.mc, or a file it includes, changed after sendmail.cf was
    /// built (by modification time): the newest such file.
    pub newer_than_cf: Option<PathBuf>,
}

/// Reads sendmail.cf and the files sendmail.mc includes, when sendmail.mc
/// (`mc_text`, read from `mc`) exists. A file that cannot be read becomes
/// a finding.
pub fn gather(reader: &Reader, mc: &Path, mc_text: &str, findings: &mut Vec<Finding>) -> Side {
    let mut included = Vec::new();
    let mut sources = vec![mc.to_path_buf()];
    for (path, line) in sendmail::includes(mc_text.as_bytes()) {
        let path = PathBuf::from(path);
        if !path.is_absolute() || path.starts_with("/usr/share") {
            continue;
        }
        match reader.read(&path) {
            Ok(text) => {
                for f in sendmail::parse_filters(text.as_bytes()) {
                    included.push((path.clone(), f));
                }
                sources.push(path);
            }
            Err(e) => findings.push(super::inventory::read_finding(
                &path,
                Some(&Origin::line(mc, line)),
                "file included by sendmail.mc",
                &e,
            )),
        }
    }
    let cf_path = mc.with_file_name("sendmail.cf");
    let cf = match reader.read(&cf_path) {
        Ok(text) => Some((cf_path.clone(), sendmail::parse_cf(text.as_bytes()))),
        Err(ReadError::Missing) => None,
        Err(e) => {
            findings.push(super::inventory::read_finding(
                &cf_path,
                None,
                "sendmail.cf",
                &e,
            ));
            None
        }
    };
    let mtime = |p: &Path| reader.metadata(p).ok().map(|m| (m.mtime(), m.mtime_nsec()));
    let newer_than_cf = cf.as_ref().and_then(|_| {
        let built = mtime(&cf_path)?;
        sources
            .iter()
            .filter_map(|s| Some((mtime(s)?, s)))
            .filter(|(t, _)| *t > built)
            .max()
            .map(|(_, s)| s.clone())
    });
    Side {
        mc: mc.to_path_buf(),
        mc_filters: sendmail::parse_filters(mc_text.as_bytes()),
        cf,
        included,
        newer_than_cf,
    }
}

/// A filter that is a DKIM milter: one that reaches the milter's socket,
/// or one whose name says so (`opendkim`, `dkimctl`, `dkim-filter`, ...).
fn is_dkim(f: &Filter, ours: Option<&Socket>) -> bool {
    f.name.to_ascii_lowercase().contains("dkim")
        || ours.is_some_and(|s| sendmail::reaches(f, &s.opendkim()))
}

/// A filter's identity for comparing the mc with the cf.
fn shape(f: &Filter) -> String {
    format!(
        "{} (S={}, F={})",
        f.name,
        f.socket.as_deref().unwrap_or(""),
        f.flags.as_deref().unwrap_or("")
    )
}

/// The Sendmail checks; `ours` is the DKIM milter's socket, when known.
pub fn check(
    side: &Side,
    ours: Option<&Socket>,
    reader: &Reader,
    opts: &AuditOptions,
) -> Vec<Finding> {
    let mut out = Vec::new();
    // What sendmail.mc asks for: its own lines and its includes'.
    let wanted: Vec<(Origin, &Filter)> = side
        .mc_filters
        .iter()
        .map(|f| (Origin::line(&side.mc, f.line), f))
        .chain(
            side.included
                .iter()
                .map(|(p, f)| (Origin::line(p, f.line), f)),
        )
        .collect();
    let dkim_in_mc: Vec<&(Origin, &Filter)> = wanted
        .iter()
        .filter(|(_, f)| f.input && is_dkim(f, ours))
        .collect();
    if dkim_in_mc.len() > 1 {
        let names: Vec<&str> = dkim_in_mc.iter().map(|(_, f)| f.name.as_str()).collect();
        out.push(two_dkim(&dkim_in_mc[1].0, &names, "sendmail.mc defines"));
    }
    // Without sendmail.cf (a tree copied without its generated files)
    // there is nothing sendmail runs to compare.
    let Some((cf_path, cf)) = &side.cf else {
        return out;
    };
    let running: Vec<&Filter> = cf.filters.iter().filter(|f| f.input).collect();
    let mut asked: Vec<String> = wanted
        .iter()
        .filter(|(_, f)| f.input)
        .map(|(_, f)| shape(f))
        .collect();
    let mut runs: Vec<String> = running.iter().map(|f| shape(f)).collect();
    asked.sort();
    runs.sort();
    let at_cf = cf
        .input_filters
        .as_ref()
        .map_or_else(|| Origin::file(cf_path), |(_, l)| Origin::line(cf_path, *l));
    if asked != runs {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        out.push(Finding::new(
            id::SENDMAIL_CF_STALE,
            Severity::Error,
            Some(&at_cf),
            format!(
                "sendmail.cf calls the filters {}, sendmail.mc asks for {}: sendmail.cf was not rebuilt from it",
                list(&runs),
                list(&asked)
            ),
            "sendmail runs sendmail.cf: the filters of sendmail.mc are not in effect",
            rebuild_hint(&side.mc),
        ));
    } else if let Some(newer) = &side.newer_than_cf {
        out.push(Finding::new(
            id::SENDMAIL_CF_STALE,
            Severity::Warning,
            Some(&Origin::file(cf_path)),
            format!("{} changed after sendmail.cf was built", newer.display()),
            "sendmail runs sendmail.cf: the change is not in effect",
            rebuild_hint(&side.mc),
        ));
    }
    let dkim_running: Vec<&&Filter> = running.iter().filter(|f| is_dkim(f, ours)).collect();
    if dkim_running.len() > 1 {
        let names: Vec<&str> = dkim_running.iter().map(|f| f.name.as_str()).collect();
        out.push(two_dkim(&at_cf, &names, "sendmail.cf calls"));
    }
    if let Some(ours) = ours {
        let target = ours.opendkim();
        for f in &dkim_running {
            if !sendmail::reaches(f, &target) {
                out.push(Finding::new(
                    id::SOCKET_MISMATCH,
                    Severity::Error,
                    Some(&Origin::line(cf_path, f.line)),
                    format!(
                        "sendmail.cf's filter {} uses S={}, not the DKIM milter's {target}",
                        f.name,
                        f.socket.as_deref().unwrap_or("(none)")
                    ),
                    "sendmail connects elsewhere: mail is not signed by this milter, or refused when nothing answers there",
                    format!(
                        "S={target} in sendmail.mc, then {}",
                        rebuild_hint(&side.mc)
                    ),
                ));
            }
        }
    }
    if opts.live {
        for f in running.iter().filter(|f| f.holds_mail()) {
            if let Some(why) = not_answering(f, reader) {
                out.push(Finding::new(
                    id::SENDMAIL_FILTER_DOWN,
                    Severity::Error,
                    Some(&Origin::line(cf_path, f.line)),
                    format!(
                        "the filter {} (F={}) does not answer on {}: {why}",
                        f.name,
                        f.flags.as_deref().unwrap_or(""),
                        f.socket.as_deref().unwrap_or("(no socket)")
                    ),
                    "with F=T sendmail refuses every message (451) while the filter is unreachable",
                    format!(
                        "start the milter behind it, or remove the filter from sendmail.mc and {}",
                        rebuild_hint(&side.mc)
                    ),
                ));
            }
        }
    }
    out
}

fn two_dkim(at: &Origin, names: &[&str], verb: &str) -> Finding {
    Finding::new(
        id::TWO_DKIM_MILTERS,
        Severity::Error,
        Some(at),
        format!("{verb} {} DKIM milters: {}", names.len(), names.join(", ")),
        "each one signs (two sets of signatures, one of them from keys nobody may publish), and with F=T mail is refused whenever either is down",
        "keep one INPUT_MAIL_FILTER for the DKIM milter in sendmail.mc (`dkimctl apply` does), then rebuild sendmail.cf",
    )
}

fn rebuild_hint(mc: &Path) -> String {
    let dir = mc.parent().unwrap_or(Path::new("/etc/mail"));
    format!(
        "rebuild sendmail.cf (Debian: make -C {}, then /etc/init.d/sendmail reload)",
        dir.display()
    )
}

/// Why the filter's socket does not negotiate the milter protocol, or
/// `None` when it does (or cannot be asked). On a root other than `/` only
/// a unix socket file inside the root is asked (a TCP port would be the
/// machine's own).
fn not_answering(f: &Filter, reader: &Reader) -> Option<String> {
    let socket = crate::config::validate::parse_socket(f.socket.as_deref()?).ok()?;
    let root = reader.root();
    let address = match &socket {
        Socket::Unix(p) if root.is_live() => format!("unix:{}", p.display()),
        Socket::Unix(p) => {
            // Not on the live root: only a socket file that is there.
            reader.metadata(p).ok()?;
            format!("unix:{}", root.join(p).display())
        }
        Socket::Inet { .. } if root.is_live() => socket.to_string(),
        Socket::Inet { .. } => return None,
    };
    crate::milter::client::probe(&address, Duration::from_secs(3)).err()
}
