//! sendmail.mc's milter lines: `INPUT_MAIL_FILTER(`name', `S=..., F=...')`
//! and `MAIL_FILTER(...)` read ([`parse_filters`], audit and import) and
//! merged ([`merge_mc`], plan) by one parser.
//!
//! Our filter is the one with our name, or one whose `S=` reaches our
//! socket under any spelling ([`super::postfix::endpoint`]: sendmail
//! takes OpenDKIM's notation). Its line is replaced in place; a new one
//! goes after the last `FEATURE(` line, where the m4 macros for filters
//! belong, or before the first `MAILER(` line (filters must be defined
//! before the mailers), or at the end. Every other line stays byte for
//! byte.

use std::path::Path;

use super::lines;
use super::postfix::{Chroot, View, endpoint};

/// The managed sendmail.mc line.
#[derive(Debug, Clone, PartialEq)]
pub struct SendmailMcEdit {
    /// The filter's name in `INPUT_MAIL_FILTER(`name', ...)`.
    pub filter_name: String,
    /// The whole line.
    pub line: String,
    /// The `S=` socket in it (another filter reaching the same socket is
    /// the same milter).
    pub socket: String,
}

/// One `INPUT_MAIL_FILTER` or `MAIL_FILTER` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The filter's name.
    pub name: String,
    /// The `S=` socket, if given.
    pub socket: Option<String>,
    /// The `F=` flags (`T` tempfail, `R` reject when unreachable).
    pub flags: Option<String>,
    /// `true` for `INPUT_MAIL_FILTER` (the filter is also added to
    /// `InputMailFilters`), `false` for `MAIL_FILTER`.
    pub input: bool,
    /// 1-based line number.
    pub line: usize,
}

/// How many physical lines one filter definition may span (m4 lets an
/// argument continue on the next line, as Debian's opendkim.m4 does).
const MAX_DEFINITION_LINES: usize = 5;

/// The filter a line defines, if it is a filter line (not commented out
/// with `dnl` or `#`).
fn parse_line(body: &[u8], line: usize) -> Option<Filter> {
    parse_definition(&String::from_utf8_lossy(body), line)
}

/// The filter a definition (one or more joined lines) defines.
fn parse_definition(text: &str, line: usize) -> Option<Filter> {
    let t = text.trim();
    let (input, args) = match t.strip_prefix("INPUT_MAIL_FILTER(") {
        Some(a) => (true, a),
        None => (false, t.strip_prefix("MAIL_FILTER(")?),
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
    let name = unquote(name);
    (!name.is_empty()).then_some(Filter {
        name,
        socket,
        flags,
        input,
        line,
    })
}

/// Every filter definition of sendmail.mc (or an included .m4) text; a
/// definition whose arguments continue on the next lines is read whole
/// and placed at its first line.
pub fn parse_filters(text: &[u8]) -> Vec<Filter> {
    let all = lines::split(text);
    let bodies: Vec<String> = all
        .iter()
        .map(|l| String::from_utf8_lossy(lines::body(l)).into_owned())
        .collect();
    let mut out = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let t = body.trim_start();
        if !(t.starts_with("INPUT_MAIL_FILTER(") || t.starts_with("MAIL_FILTER(")) {
            continue;
        }
        let mut joined = body.clone();
        let mut k = i + 1;
        while !joined.contains(')') && k < bodies.len() && k < i + MAX_DEFINITION_LINES {
            joined.push(' ');
            joined.push_str(bodies[k].trim());
            k += 1;
        }
        out.extend(parse_definition(&joined, i + 1));
    }
    out
}

/// The files sendmail.mc includes (`include(`/etc/mail/m4/x.m4')`), in
/// order; m4 reads their definitions as if they were written in place.
pub fn includes(text: &[u8]) -> Vec<std::path::PathBuf> {
    lines::split(text)
        .iter()
        .filter_map(|l| {
            let body = String::from_utf8_lossy(lines::body(l));
            let arg = body.trim().strip_prefix("include(")?;
            let path = arg
                .trim_start_matches('`')
                .split(['\'', ')'])
                .next()?
                .trim();
            path.starts_with('/')
                .then(|| std::path::PathBuf::from(path))
        })
        .collect()
}

/// True when the filter's `S=` reaches `socket` (both in sendmail's
/// notation; sendmail does not chroot).
pub fn reaches(filter: &Filter, socket: &str) -> bool {
    let view = View {
        queue_directory: Path::new("/"),
        chroot: Chroot::No,
    };
    match (
        filter.socket.as_deref().and_then(|s| endpoint(s, &view)),
        endpoint(socket, &view),
    ) {
        (Some(a), Some(b)) => a.same(&b),
        _ => false,
    }
}

/// sendmail.mc with the filter line merged in. `included` are the
/// filters of the files sendmail.mc includes ([`includes`]): when one of
/// them is already our milter, it stays the one definition and nothing is
/// added (a second line would call the milter twice).
pub fn merge_mc(old: &[u8], edit: &SendmailMcEdit, included: &[Filter]) -> Vec<u8> {
    let mut lines = lines::split(old);
    let line = edit.line.trim_end_matches(['\n', '\r']);
    let is_ours = |f: &Filter| f.name == edit.filter_name || reaches(f, &edit.socket);
    let ours = |l: &Vec<u8>| parse_line(lines::body(l), 0).is_some_and(|f| is_ours(&f));
    if included.iter().any(is_ours) {
        lines.retain(|l| !ours(l));
    } else if let Some(i) = lines.iter().position(ours) {
        if lines::body(&lines[i]) != line.as_bytes() {
            let eol = lines::eol(&lines[i]);
            lines[i] = lines::with_eol(line, eol);
        }
        // Only one definition of our filter survives.
        let mut k = i + 1;
        while k < lines.len() {
            if ours(&lines[k]) {
                lines.remove(k);
            } else {
                k += 1;
            }
        }
    } else if let Some(i) = lines.iter().rposition(|l| l.starts_with(b"FEATURE(")) {
        lines::terminate(&mut lines, i);
        lines.insert(i + 1, lines::with_eol(line, b"\n"));
    } else if let Some(i) = lines.iter().position(|l| l.starts_with(b"MAILER(")) {
        lines.insert(i, lines::with_eol(line, b"\n"));
    } else {
        lines::append(&mut lines, line);
    }
    lines::join(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn edit(socket: &str) -> SendmailMcEdit {
        SendmailMcEdit {
            filter_name: "dkimctl".into(),
            line: format!("INPUT_MAIL_FILTER(`dkimctl', `S={socket}, F=T, T=R:2m')dnl"),
            socket: socket.into(),
        }
    }

    fn merge(old: &str, e: &SendmailMcEdit) -> String {
        let out = merge_mc(old.as_bytes(), e, &[]);
        assert_eq!(merge_mc(&out, e, &[]), out, "not idempotent");
        String::from_utf8(out).expect("utf8")
    }

    const MC: &str = "divert(-1)dnl\n\
        include(`/usr/share/sendmail/cf/m4/cf.m4')dnl\n\
        FEATURE(`no_default_msa')dnl\n\
        dnl FEATURE(`commented')dnl\n\
        FEATURE(`access_db', , `skip')dnl\n\
        INPUT_MAIL_FILTER(`other', `S=local:/run/other.sock')dnl\n\
        MAILER(`local')dnl\n\
        MAILER(`smtp')dnl\n";

    #[test]
    fn inserted_after_the_last_feature_line() {
        let got = merge(MC, &edit("local:/run/dkimctl/milter.sock"));
        let want = MC.replace(
            "FEATURE(`access_db', , `skip')dnl\n",
            "FEATURE(`access_db', , `skip')dnl\n\
             INPUT_MAIL_FILTER(`dkimctl', `S=local:/run/dkimctl/milter.sock, F=T, T=R:2m')dnl\n",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn existing_line_replaced_in_place() {
        let first = merge(MC, &edit("inet:8891@localhost"));
        let second = merge(&first, &edit("local:/run/dkimctl/milter.sock"));
        assert_eq!(second, merge(MC, &edit("local:/run/dkimctl/milter.sock")));
        assert!(second.contains("`other'"));
        assert_eq!(second.matches("`dkimctl'").count(), 1);
    }

    #[test]
    fn the_same_socket_under_another_name_or_macro_is_ours() {
        // The ArchWiki line (another name, the same socket spelled
        // differently) and a MAIL_FILTER definition are replaced, not
        // doubled.
        for existing in [
            "INPUT_MAIL_FILTER(`opendkim', `S=inet:8891@127.0.0.1')dnl\n",
            "MAIL_FILTER(`dkimctl', `S=inet:9999@localhost')dnl\n",
        ] {
            let old = MC.replace("MAILER(`local')", &format!("{existing}MAILER(`local')"));
            let got = merge(&old, &edit("inet:8891@localhost"));
            assert!(!got.contains(existing), "{got}");
            assert_eq!(got.matches("MAIL_FILTER(`dkimctl'").count(), 1, "{got}");
            assert!(got.contains("`other'"));
        }
    }

    #[test]
    fn without_feature_lines() {
        assert_eq!(
            merge("divert(0)\nMAILER(`smtp')\n", &edit("x")),
            "divert(0)\nINPUT_MAIL_FILTER(`dkimctl', `S=x, F=T, T=R:2m')dnl\nMAILER(`smtp')\n"
        );
        assert_eq!(
            merge("divert(0)", &edit("x")),
            "divert(0)\nINPUT_MAIL_FILTER(`dkimctl', `S=x, F=T, T=R:2m')dnl\n"
        );
    }

    #[test]
    fn a_filter_in_an_included_file_is_not_added_again() {
        // Debian's opendkim package: sendmail.mc includes opendkim.m4, whose
        // definition spans two lines.
        let m4 = b"INPUT_MAIL_FILTER(`opendkim',\n        `S=local:/run/opendkim/opendkim.sock, F=, T=S:4m;R:4m;E:10m')dnl\n";
        let included = parse_filters(m4);
        assert_eq!(included.len(), 1);
        assert_eq!(
            included[0].socket.as_deref(),
            Some("local:/run/opendkim/opendkim.sock")
        );
        assert_eq!(included[0].flags.as_deref(), Some(""));
        let mc = "include(`/etc/mail/m4/opendkim.m4')dnl\nFEATURE(`x')dnl\nMAILER(`local')dnl\n";
        assert_eq!(
            includes(mc.as_bytes()),
            [PathBuf::from("/etc/mail/m4/opendkim.m4")]
        );
        let e = edit("local:/run/opendkim/opendkim.sock");
        assert_eq!(merge_mc(mc.as_bytes(), &e, &included), mc.as_bytes());
        // Another socket in the included file: ours is added as usual.
        let other = parse_filters(b"INPUT_MAIL_FILTER(`x', `S=inet:9@localhost')\n");
        assert!(
            String::from_utf8(merge_mc(mc.as_bytes(), &e, &other))
                .unwrap()
                .contains("`dkimctl'")
        );
    }

    #[test]
    fn filter_lines_parse() {
        let f = parse_filters(
            b"FEATURE(`x')dnl\nINPUT_MAIL_FILTER(`opendkim', `S=inet:8891@localhost, F=T')\n\
              dnl INPUT_MAIL_FILTER(`off', `S=x')\n  MAIL_FILTER(dkimctl, `S=local:/r/s')\n\
              INPUT_MAIL_FILTER(`dkimctl2', `S=x')\n",
        );
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].name, "opendkim");
        assert_eq!(f[0].socket.as_deref(), Some("inet:8891@localhost"));
        assert_eq!(f[0].flags.as_deref(), Some("T"));
        assert_eq!(f[0].line, 2);
        assert!(f[0].input);
        assert_eq!(f[1].name, "dkimctl");
        assert!(!f[1].input);
        assert_eq!(f[2].name, "dkimctl2");
    }
}
