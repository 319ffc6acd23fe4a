//! Merging the `INPUT_MAIL_FILTER` line into sendmail.mc.
//!
//! The line for our filter (found by its name) is replaced; a new one goes
//! after the last `FEATURE(` line, where the m4 macros for filters belong,
//! or before the first `MAILER(` line (filters must be defined before the
//! mailers), or at the end. Every other line stays byte for byte.

use super::lines;
use crate::render::artifact::SendmailMcEdit;

/// True when `line` is `INPUT_MAIL_FILTER(`name'...` (or with the name
/// unquoted) for the filter `name`.
fn is_filter_line(line: &[u8], name: &str) -> bool {
    let body = lines::trim_start(lines::body(line));
    let Some(rest) = body.strip_prefix(b"INPUT_MAIL_FILTER(") else {
        return false;
    };
    let rest = lines::trim_start(rest);
    let (rest, quoted) = match rest.strip_prefix(b"`") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let Some(after) = rest.strip_prefix(name.as_bytes()) else {
        return false;
    };
    match after.first() {
        Some(b'\'') => quoted,
        Some(b',') | Some(b' ') | Some(b'\t') | Some(b')') => !quoted,
        _ => false,
    }
}

/// sendmail.mc with the filter line merged in.
pub(crate) fn merge_mc(old: &[u8], edit: &SendmailMcEdit) -> Vec<u8> {
    let mut lines = lines::split(old);
    let line = edit.line.trim_end_matches(['\n', '\r']);
    if let Some(i) = lines
        .iter()
        .position(|l| is_filter_line(l, &edit.filter_name))
    {
        if lines::body(&lines[i]) != line.as_bytes() {
            let eol = lines::eol(&lines[i]);
            lines[i] = lines::with_eol(line, eol);
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
        }
    }

    fn merge(old: &str, e: &SendmailMcEdit) -> String {
        let out = merge_mc(old.as_bytes(), e);
        assert_eq!(merge_mc(&out, e), out, "not idempotent");
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
    fn filter_names_match_exactly() {
        assert!(is_filter_line(
            b"INPUT_MAIL_FILTER(`dkimctl', `S=x')",
            "dkimctl"
        ));
        assert!(is_filter_line(
            b"  INPUT_MAIL_FILTER(dkimctl, `S=x')",
            "dkimctl"
        ));
        assert!(!is_filter_line(
            b"INPUT_MAIL_FILTER(`dkimctl2', `S=x')",
            "dkimctl"
        ));
        assert!(!is_filter_line(
            b"dnl INPUT_MAIL_FILTER(`dkimctl', `S=x')",
            "dkimctl"
        ));
    }
}
