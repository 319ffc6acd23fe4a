//! Sendmail's milter definitions, in both files that hold them:
//!
//! - sendmail.mc, the m4 source the admin edits: `INPUT_MAIL_FILTER(`name',
//!   `S=..., F=...')` and `MAIL_FILTER(...)` calls, possibly spread over
//!   several lines, read ([`parse_filters`], audit and import) and merged
//!   ([`merge_mc`], plan) by one parser; its `include(...)` lines
//!   ([`includes`]), which may define filters too (Debian's opendkim
//!   package ships `/etc/mail/m4/opendkim.m4` for that).
//! - sendmail.cf, what m4 makes of it and sendmail runs: `Xname, S=...`
//!   lines and `O InputMailFilters=` ([`parse_cf`], audit).
//!
//! Our filter is the one with our name, one whose `S=` reaches our socket
//! under any spelling ([`super::postfix::endpoint`]: sendmail takes
//! OpenDKIM's notation), or one with the name dkimctl gives the other
//! engine's filter ([`SendmailMcEdit::replaces`]), so that a switch of
//! engine leaves one DKIM filter, never two. The first of them is
//! replaced in place and the others are removed; a new line goes after the
//! last `FEATURE(` line, where the m4 macros for filters belong, or before
//! the first `MAILER(` line (filters must be defined before the mailers),
//! or at the end. Every other line stays byte for byte.

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
    /// Names of filters this one replaces: the name dkimctl gives the
    /// filter of the engine dkim.toml does not use. After a switch of
    /// engine the old engine's filter goes, so sendmail never calls a
    /// stopped milter with `F=T` (which would refuse all mail).
    pub replaces: Vec<String>,
}

/// One `INPUT_MAIL_FILTER` or `MAIL_FILTER` call of sendmail.mc, or one
/// `X` line of sendmail.cf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The filter's name.
    pub name: String,
    /// The `S=` socket, if given.
    pub socket: Option<String>,
    /// The `F=` flags (`T` tempfail, `R` reject when unreachable).
    pub flags: Option<String>,
    /// `true` when sendmail calls the filter for every message: an
    /// `INPUT_MAIL_FILTER` call (sendmail.mc), a name listed in
    /// `InputMailFilters` (sendmail.cf). `false` for `MAIL_FILTER`, which
    /// only defines it.
    pub input: bool,
    /// 1-based line number (of the first line of a call spread over
    /// several).
    pub line: usize,
}

impl Filter {
    /// True when the flags make sendmail tempfail (`T`) or reject (`R`)
    /// mail while the filter cannot be reached, rather than pass it on.
    pub fn holds_mail(&self) -> bool {
        self.flags
            .as_deref()
            .is_some_and(|f| f.contains('T') || f.contains('R'))
    }
}

/// A filter call spread over lines `first..=last` (0-based).
struct Call {
    filter: Filter,
    first: usize,
    last: usize,
}

/// Strips one pair of m4 quotes (`` `text' ``) and surrounding blanks.
fn unquote(s: &str) -> String {
    let s = s.trim();
    let s = s.strip_prefix('`').unwrap_or(s);
    let s = s.strip_suffix('\'').unwrap_or(s);
    s.trim().to_string()
}

/// `S=`, `F=` of a filter's equates (`S=..., F=..., T=...`).
fn equates(text: &str) -> (Option<String>, Option<String>) {
    let mut socket = None;
    let mut flags = None;
    for part in text.split(',') {
        let part = part.trim();
        if let Some(s) = part.strip_prefix("S=") {
            socket = Some(s.trim().to_string());
        } else if let Some(f) = part.strip_prefix("F=") {
            flags = Some(f.trim().to_string());
        }
    }
    (socket, flags)
}

/// The filter call starting at line `i`, if that line starts one (not
/// commented out with `dnl` or `#`). The call ends at the `)` that
/// closes it outside m4 quotes, on this line or a later one; an unclosed
/// call ends at the last line.
fn parse_call(lines: &lines::Lines, i: usize) -> Option<Call> {
    let first = String::from_utf8_lossy(lines::body(&lines[i]));
    let t = first.trim_start();
    let (input, rest) = match t.strip_prefix("INPUT_MAIL_FILTER(") {
        Some(a) => (true, a),
        None => (false, t.strip_prefix("MAIL_FILTER(")?),
    };
    let mut args = String::new();
    let mut quote = 0usize;
    let mut k = i;
    let mut text = rest.to_string();
    'lines: loop {
        for c in text.chars() {
            match c {
                '`' => quote += 1,
                '\'' if quote > 0 => quote -= 1,
                ')' if quote == 0 => break 'lines,
                _ => {}
            }
            args.push(c);
        }
        if k + 1 >= lines.len() {
            break;
        }
        k += 1;
        args.push(' ');
        text = String::from_utf8_lossy(lines::body(&lines[k])).into_owned();
    }
    let (name, rest) = args.split_once(',').unwrap_or((&args, ""));
    let name = unquote(name);
    let (socket, flags) = equates(&unquote(rest));
    (!name.is_empty()).then_some(Call {
        filter: Filter {
            name,
            socket,
            flags,
            input,
            line: i + 1,
        },
        first: i,
        last: k,
    })
}

/// Every filter call of sendmail.mc, with the lines it spans.
fn calls(lines: &lines::Lines) -> Vec<Call> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        match parse_call(lines, i) {
            Some(c) => {
                i = c.last + 1;
                out.push(c);
            }
            None => i += 1,
        }
    }
    out
}

/// Every filter of sendmail.mc text (or of a file it includes).
pub fn parse_filters(text: &[u8]) -> Vec<Filter> {
    calls(&lines::split(text))
        .into_iter()
        .map(|c| c.filter)
        .collect()
}

/// The files sendmail.mc includes with `include(`path')`, with their
/// 1-based line numbers (not the ones commented out).
pub fn includes(text: &[u8]) -> Vec<(String, usize)> {
    lines::split(text)
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let body = String::from_utf8_lossy(lines::body(l));
            let rest = body.trim_start().strip_prefix("include(")?;
            let path = unquote(rest.split(')').next()?);
            (!path.is_empty()).then_some((path, i + 1))
        })
        .collect()
}

/// What sendmail.cf says about milters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cf {
    /// Every `X` line; `input` is whether `InputMailFilters` names it.
    pub filters: Vec<Filter>,
    /// `O InputMailFilters=`: the names, in the order sendmail calls
    /// them, and the line (`None` when the option is not set).
    pub input_filters: Option<(Vec<String>, usize)>,
}

/// Reads sendmail.cf's `Xname, S=..., F=...` lines and its
/// `O InputMailFilters=` option (the file m4 made of sendmail.mc).
pub fn parse_cf(text: &[u8]) -> Cf {
    let mut cf = Cf::default();
    for (i, l) in lines::split(text).iter().enumerate() {
        let body = String::from_utf8_lossy(lines::body(l));
        if let Some(list) = body.strip_prefix("O InputMailFilters=") {
            let names = list
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect();
            cf.input_filters = Some((names, i + 1));
        } else if let Some(rest) = body.strip_prefix('X') {
            let (name, rest) = rest.split_once(',').unwrap_or((rest, ""));
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            let (socket, flags) = equates(rest);
            cf.filters.push(Filter {
                name: name.to_string(),
                socket,
                flags,
                input: false,
                line: i + 1,
            });
        }
    }
    if let Some((names, _)) = &cf.input_filters {
        for f in &mut cf.filters {
            f.input = names.contains(&f.name);
        }
    }
    cf
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

/// sendmail.mc with the filter line merged in: the first filter that is
/// ours (by name, by socket, or a name in [`SendmailMcEdit::replaces`])
/// becomes our line, every other one is removed. When a file sendmail.mc
/// includes already defines our filter (`included`: Debian's opendkim
/// package writes /etc/mail/m4/opendkim.m4), sendmail.mc gets no line of
/// its own: m4 reads the included definition in place.
pub fn merge_mc(old: &[u8], edit: &SendmailMcEdit, included: &[Filter]) -> Vec<u8> {
    let mut lines = lines::split(old);
    let line = edit.line.trim_end_matches(['\n', '\r']);
    let defined_elsewhere = included
        .iter()
        .any(|f| f.name == edit.filter_name || reaches(f, &edit.socket));
    let ours = |f: &Filter| {
        f.name == edit.filter_name || reaches(f, &edit.socket) || edit.replaces.contains(&f.name)
    };
    let spans: Vec<(usize, usize)> = calls(&lines)
        .into_iter()
        .filter(|c| ours(&c.filter))
        .map(|c| (c.first, c.last))
        .collect();
    if defined_elsewhere {
        for &(a, b) in spans.iter().rev() {
            lines.drain(a..=b);
        }
    } else if let Some(&(first, last)) = spans.first() {
        // Later definitions first, so the earlier indexes stay valid.
        for &(a, b) in spans[1..].iter().rev() {
            lines.drain(a..=b);
        }
        let current: Vec<u8> = lines[first..=last].concat();
        let eol = lines::eol(&lines[last]);
        if lines::body(&current) != line.as_bytes() {
            lines.splice(first..=last, [lines::with_eol(line, eol)]);
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

    fn edit(socket: &str) -> SendmailMcEdit {
        SendmailMcEdit {
            filter_name: "dkimctl".into(),
            line: format!("INPUT_MAIL_FILTER(`dkimctl', `S={socket}, F=T, T=R:2m')dnl"),
            socket: socket.into(),
            replaces: vec!["opendkim".into()],
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
            "INPUT_MAIL_FILTER(`opendkim-filter', `S=inet:8891@127.0.0.1')dnl\n",
            "MAIL_FILTER(`dkimctl', `S=inet:9999@localhost')dnl\n",
        ] {
            let old = MC.replace("MAILER(`local')", &format!("{existing}MAILER(`local')"));
            let got = merge(&old, &edit("inet:8891@localhost"));
            assert!(!got.contains(existing), "{got}");
            assert_eq!(got.matches("MAIL_FILTER(`dkimctl'").count(), 1, "{got}");
            assert!(got.contains("`other'"));
        }
    }

    /// A switch of engine: the other engine's filter (another name, another
    /// socket) is replaced where it stood, and a second definition of it
    /// goes; sendmail is left with one DKIM filter.
    #[test]
    fn a_switch_of_engine_leaves_one_dkim_filter() {
        let opendkim = "INPUT_MAIL_FILTER(`opendkim', `S=local:/run/opendkim/opendkim.sock, F=T, T=S:4m;R:4m;E:10m')dnl\n";
        let old = MC.replace(
            "INPUT_MAIL_FILTER(`other'",
            &format!("{opendkim}INPUT_MAIL_FILTER(`other'"),
        ) + "MAIL_FILTER(`opendkim', `S=inet:8891@localhost')dnl\n";
        let got = merge(&old, &edit("local:/run/dkimctl/dkimctl.sock"));
        let want = MC.replace(
            "INPUT_MAIL_FILTER(`other'",
            "INPUT_MAIL_FILTER(`dkimctl', `S=local:/run/dkimctl/dkimctl.sock, F=T, T=R:2m')dnl\n\
             INPUT_MAIL_FILTER(`other'",
        );
        assert_eq!(got, want);
        let names: Vec<String> = parse_filters(got.as_bytes())
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["dkimctl", "other"]);
    }

    /// A call spread over two lines (as Debian's opendkim.m4 writes it) is
    /// replaced whole: no continuation line is left behind for m4.
    #[test]
    fn a_call_over_several_lines_is_replaced_whole() {
        let old = MC.replace(
            "INPUT_MAIL_FILTER(`other'",
            "INPUT_MAIL_FILTER(`opendkim',\n        `S=local:/run/opendkim/opendkim.sock, F=, T=S:4m;R:4m;E:10m')dnl\n\
             INPUT_MAIL_FILTER(`other'",
        );
        let f = parse_filters(old.as_bytes());
        assert_eq!(f[0].name, "opendkim");
        assert_eq!(
            f[0].socket.as_deref(),
            Some("local:/run/opendkim/opendkim.sock")
        );
        assert_eq!(f[0].flags.as_deref(), Some(""));
        assert!(!f[0].holds_mail());
        assert_eq!(f[1].name, "other");
        assert_eq!(f[1].line, f[0].line + 2);
        let got = merge(&old, &edit("local:/run/dkimctl/dkimctl.sock"));
        assert!(!got.contains("opendkim"), "{got}");
        assert!(!got.contains("        `S="), "{got}");
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
            [("/etc/mail/m4/opendkim.m4".to_string(), 1)]
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
        assert!(f[0].holds_mail());
        assert_eq!(f[0].line, 2);
        assert!(f[0].input);
        assert_eq!(f[1].name, "dkimctl");
        assert!(!f[1].input);
        assert_eq!(f[2].name, "dkimctl2");
    }

    #[test]
    fn includes_are_listed() {
        assert_eq!(
            includes(
                b"include(`/usr/share/sendmail/cf/m4/cf.m4')dnl\ndnl include(`/off')\n\
                  include(`/etc/mail/m4/opendkim.m4')dnl\n"
            ),
            vec![
                ("/usr/share/sendmail/cf/m4/cf.m4".to_string(), 1),
                ("/etc/mail/m4/opendkim.m4".to_string(), 3)
            ]
        );
    }

    /// The lines m4 makes of Debian's sendmail.mc with two filters (as
    /// sendmail 8.17's cf/m4/proto.m4 writes them).
    #[test]
    fn sendmail_cf_filters() {
        let cf = parse_cf(
            b"#O InputMailFilters\nO InputMailFilters=opendkim, dkimctl\n\
              O Milter.LogLevel=9\n\
              Xopendkim, S=local:/run/opendkim/opendkim.sock, F=T, T=S:4m;R:4m;E:10m\n\
              Xdkimctl, S=local:/run/dkimctl/dkimctl.sock, F=T, T=S:4m;R:4m;E:10m\n\
              Xspare, S=inet:9999@localhost\n",
        );
        assert_eq!(
            cf.input_filters,
            Some((vec!["opendkim".to_string(), "dkimctl".to_string()], 2))
        );
        let names: Vec<(&str, bool, usize)> = cf
            .filters
            .iter()
            .map(|f| (f.name.as_str(), f.input, f.line))
            .collect();
        assert_eq!(
            names,
            [
                ("opendkim", true, 4),
                ("dkimctl", true, 5),
                ("spare", false, 6)
            ]
        );
        assert!(reaches(&cf.filters[1], "unix:/run/dkimctl/dkimctl.sock"));
        assert!(cf.filters[1].holds_mail());
        assert!(!cf.filters[2].holds_mail());
        assert_eq!(parse_cf(b"#O InputMailFilters\n"), Cf::default());
    }
}
