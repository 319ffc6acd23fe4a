//! main.cf: its parameters as Postfix reads them ([`MainCf`]: the last
//! setting wins, `$name` expands), and merging dkimctl's settings into it
//! the way `postconf -e` would, keeping every other byte ([`merge_main`]).

use std::path::PathBuf;

use super::PostfixMainEdit;
use super::master_cf::Chroot;
use super::milter::{self, Endpoint, MARKER_PREFIX, View, endpoint, entry_parts, milter_entries};
use super::syntax::{Logical, logical_lines, param_value, replace_logical, squash};
use crate::formats::lines::{self, Lines};

/// Postfix's compiled-in queue directory.
pub const DEFAULT_QUEUE_DIRECTORY: &str = "/var/spool/postfix";

/// How deep `$name` references are followed (Postfix itself stops at
/// 100; real files nest two or three).
const MAX_EXPANSION_DEPTH: usize = 10;

/// One `name = value` parameter (of main.cf, or a master.cf `-o`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter name.
    pub name: String,
    /// The value, continuation lines joined by one space.
    pub value: String,
    /// 1-based number of its first line.
    pub line: usize,
}

/// main.cf's parameters, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MainCf {
    /// Every `name = value` logical line.
    pub params: Vec<Param>,
}

impl MainCf {
    /// Parses main.cf text (any bytes; invalid UTF-8 is replaced).
    pub fn parse(text: &[u8]) -> MainCf {
        MainCf::from_lines(&lines::split(text))
    }

    pub(super) fn from_lines(lines: &Lines) -> MainCf {
        let params = logical_lines(lines)
            .iter()
            .filter_map(|l| {
                let value = param_value(lines, l)?;
                let name = String::from_utf8_lossy(&l.name).into_owned();
                (!name.is_empty()).then_some(Param {
                    name,
                    value,
                    line: l.head + 1,
                })
            })
            .collect();
        MainCf { params }
    }

    /// The last setting of a parameter.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().rev().find(|p| p.name == name)
    }

    /// `$name`, `${name}`, `$(name)`, `${name?text}` and `${name:text}`
    /// expanded with main.cf's values (unset parameters expand to nothing,
    /// which is right for the milter lists; nesting is cut at 10 levels).
    pub fn expand(&self, value: &str) -> String {
        self.expand_depth(value, 0)
    }

    fn expand_depth(&self, value: &str, depth: usize) -> String {
        if depth > MAX_EXPANSION_DEPTH {
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
            let close = match after.chars().next() {
                Some('{') => Some('}'),
                Some('(') => Some(')'),
                _ => None,
            };
            match close {
                Some(close) => match after[1..].find(close) {
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

    /// True when the list `value` (entries, `$name` references followed)
    /// has an entry that reaches `target` from `view`.
    pub fn list_reaches(&self, value: &str, target: &Endpoint, view: &View<'_>) -> bool {
        self.list_reaches_depth(value, target, view, 0)
    }

    fn list_reaches_depth(
        &self,
        value: &str,
        target: &Endpoint,
        view: &View<'_>,
        depth: usize,
    ) -> bool {
        milter_entries(value).iter().any(|e| {
            if let Some(name) = milter::entry_reference(e) {
                depth < MAX_EXPANSION_DEPTH
                    && self
                        .param(name)
                        .is_some_and(|p| self.list_reaches_depth(&p.value, target, view, depth + 1))
            } else {
                let value = self.expand(e);
                milter_entries(&value)
                    .iter()
                    .any(|e| endpoint(&entry_parts(e).0, view).is_some_and(|ep| ep.same(target)))
            }
        })
    }
}

/// The last `name = value` logical line for `name`, and its value.
fn find_param(lines: &Lines, name: &str) -> Option<(Logical, String)> {
    logical_lines(lines)
        .into_iter()
        .filter(|l| l.name == name.as_bytes())
        .filter_map(|l| param_value(lines, &l).map(|v| (l, v)))
        .next_back()
}

/// Sets `name = value` as `postconf -e` does: the last occurrence is
/// replaced in place, or the parameter is appended. A value that is
/// already equal (up to whitespace) is left as written.
fn set_param(lines: &mut Lines, name: &str, value: &str) {
    match find_param(lines, name) {
        Some((l, current)) => {
            if squash(&current) != squash(value) {
                replace_logical(lines, &l, &format!("{name} = {value}"));
            }
        }
        None => lines::append(lines, &format!("{name} = {value}")),
    }
}

/// The address in the first marker line, if any.
pub(super) fn find_marker(lines: &Lines) -> Option<String> {
    lines.iter().find_map(|l| {
        let body = String::from_utf8_lossy(lines::body(l));
        body.strip_prefix(MARKER_PREFIX)
            .map(|a| a.trim().to_string())
    })
}

/// Puts exactly one marker line directly above the line `anchor` finds
/// (after every old marker is removed).
pub(super) fn place_marker(
    lines: &mut Lines,
    ours: &str,
    anchor: impl Fn(&Lines) -> Option<usize>,
) {
    lines.retain(|l| !lines::body(l).starts_with(MARKER_PREFIX.as_bytes()));
    if let Some(i) = anchor(lines) {
        lines.insert(i, lines::with_eol(&format!("{MARKER_PREFIX}{ours}"), b"\n"));
    }
}

/// What a list must become.
pub(super) struct ListMerge<'a> {
    /// Our address as Postfix should name it.
    pub ours: &'a str,
    /// Where it leads.
    pub ours_at: Endpoint,
    /// Where our previous address (the marker's) led, if it moved.
    pub stale: Option<Endpoint>,
    /// Add ours when the list does not reach it (false: only replace a
    /// stale entry, as in a parameter a managed list refers to).
    pub insert: bool,
}

/// Merges one milter list. Every entry is kept, in order, except a stale
/// one (our previous address), which is replaced in place by ours (or
/// dropped when ours is already there); `ours` goes first when the list
/// does not reach it at all. An entry that reaches our milter under
/// another spelling (`localhost` for `127.0.0.1`, a relative path, a
/// `$name` reference) counts as ours and stays as written. Returns `None`
/// when the list needs no change.
pub(super) fn merge_list(
    value: &str,
    m: &ListMerge<'_>,
    main: &MainCf,
    view: &View<'_>,
    sep: &str,
) -> Option<String> {
    let entries = milter_entries(value);
    let direct = |e: &str, target: &Endpoint| {
        milter::entry_reference(e).is_none()
            && endpoint(&entry_parts(e).0, view).is_some_and(|ep| ep.same(target))
    };
    let has_ours = main.list_reaches(value, &m.ours_at, view);
    let stale_at: Vec<usize> = match &m.stale {
        Some(s) => entries
            .iter()
            .enumerate()
            .filter(|(_, e)| direct(e, s) && !direct(e, &m.ours_at))
            .map(|(i, _)| i)
            .collect(),
        None => Vec::new(),
    };
    if stale_at.is_empty() && (has_ours || !m.insert) {
        return None;
    }
    let mut new: Vec<String> = Vec::with_capacity(entries.len() + 1);
    let mut placed = has_ours;
    for (i, e) in entries.iter().enumerate() {
        if !stale_at.contains(&i) {
            new.push(e.clone());
        } else if !placed {
            // Replace the address, keeping a group's settings.
            let (addr, _) = entry_parts(e);
            new.push(if e.starts_with('{') {
                e.replacen(&addr, m.ours, 1)
            } else {
                m.ours.to_string()
            });
            placed = true;
        }
    }
    if !placed {
        new.insert(0, m.ours.to_string());
    }
    Some(new.join(sep))
}

/// The view of the services a main.cf list serves: the queue directory
/// and chroot the edit was rendered for.
pub(super) fn view_of(edit_queue: &std::path::Path, chroot: bool) -> View<'_> {
    View {
        queue_directory: edit_queue,
        chroot: if chroot { Chroot::Yes } else { Chroot::No },
    }
}

/// main.cf with `edit` merged in.
pub fn merge_main(old: &[u8], edit: &PostfixMainEdit) -> Vec<u8> {
    let mut lines = lines::split(old);
    for (name, value) in &edit.set {
        set_param(&mut lines, name, value);
    }
    if edit.milter_lists.is_empty() {
        return lines::join(&lines);
    }
    let view = view_of(&edit.queue_directory, edit.chroot);
    let Some(ours_at) = endpoint(&edit.milter, &view) else {
        return lines::join(&lines);
    };
    let stale = find_marker(&lines)
        .and_then(|a| endpoint(&a, &view))
        .filter(|s| !s.same(&ours_at));
    // smtpd_milters first, so that a `$smtpd_milters` reference in
    // another list sees its merged value.
    let mut order: Vec<&str> = Vec::new();
    for p in edit
        .milter_lists
        .iter()
        .filter(|p| p.as_str() == "smtpd_milters")
        .chain(
            edit.milter_lists
                .iter()
                .filter(|p| p.as_str() != "smtpd_milters"),
        )
    {
        if !order.contains(&p.as_str()) {
            order.push(p);
        }
    }
    // A parameter a managed list refers to (`smtpd_milters = $dkim_milter`)
    // gets the stale entry replaced, but never a new entry of its own.
    if stale.is_some() {
        let main = MainCf::from_lines(&lines);
        let mut referenced: Vec<String> = Vec::new();
        for param in &order {
            if let Some(p) = main.param(param) {
                for e in milter_entries(&p.value) {
                    if let Some(r) = milter::entry_reference(&e)
                        && !order.contains(&r)
                        && !referenced.iter().any(|x| x == r)
                    {
                        referenced.push(r.to_string());
                    }
                }
            }
        }
        for param in &referenced {
            merge_param(&mut lines, param, edit, &ours_at, &stale, false, &view);
        }
    }
    for param in &order {
        merge_param(&mut lines, param, edit, &ours_at, &stale, true, &view);
    }
    place_marker(&mut lines, &edit.milter, |lines| {
        order
            .iter()
            .filter_map(|p| find_param(lines, p).map(|(l, _)| l.head))
            .min()
    });
    lines::join(&lines)
}

fn merge_param(
    lines: &mut Lines,
    param: &str,
    edit: &PostfixMainEdit,
    ours_at: &Endpoint,
    stale: &Option<Endpoint>,
    insert: bool,
    view: &View<'_>,
) {
    let m = ListMerge {
        ours: &edit.milter,
        ours_at: ours_at.clone(),
        stale: stale.clone(),
        insert,
    };
    match find_param(lines, param) {
        None if insert => lines::append(lines, &format!("{param} = {}", edit.milter)),
        None => {}
        Some((l, value)) => {
            let main = MainCf::from_lines(lines);
            if let Some(new) = merge_list(&value, &m, &main, view, ", ") {
                replace_logical(lines, &l, &format!("{param} = {new}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main_edit(milter: &str, lists: &[&str]) -> PostfixMainEdit {
        PostfixMainEdit {
            set: vec![
                ("milter_default_action".into(), "tempfail".into()),
                ("milter_protocol".into(), "6".into()),
            ],
            milter_lists: lists.iter().map(|s| s.to_string()).collect(),
            milter: milter.into(),
            queue_directory: DEFAULT_QUEUE_DIRECTORY.into(),
            chroot: true,
        }
    }

    fn merge(old: &str, edit: &PostfixMainEdit) -> String {
        let out = merge_main(old.as_bytes(), edit);
        // Idempotent: merging the result again changes nothing.
        assert_eq!(
            String::from_utf8_lossy(&merge_main(&out, edit)),
            String::from_utf8_lossy(&out),
            "merge is not idempotent"
        );
        String::from_utf8(out).expect("utf8")
    }

    const OURS: &str = "unix:/dkimctl/milter.sock";
    const MARK: &str = "# dkimctl: DKIM milter is unix:/dkimctl/milter.sock\n";
    const TAIL: &str = "milter_default_action = tempfail\nmilter_protocol = 6\n";

    #[test]
    fn merge_table() {
        let both = ["smtpd_milters", "non_smtpd_milters"];
        let cases: Vec<(&str, &str, &[&str], String)> = vec![
            (
                "absent file",
                "",
                &both,
                format!(
                    "milter_default_action = tempfail\nmilter_protocol = 6\n{MARK}\
                     smtpd_milters = {OURS}\nnon_smtpd_milters = {OURS}\n"
                ),
            ),
            (
                "replaced in place, continuation lines included",
                "# top comment\nmyhostname = mail.example.com\nmilter_default_action =\n    accept\n\nrelayhost =\n",
                &[],
                "# top comment\nmyhostname = mail.example.com\nmilter_default_action = tempfail\n\nrelayhost =\nmilter_protocol = 6\n".into(),
            ),
            (
                "comment between continuation lines stays",
                "milter_protocol = 2,\n# note\n  3\nx = y",
                &[],
                "milter_protocol = 6\n# note\nx = y\nmilter_default_action = tempfail\n".into(),
            ),
            (
                "duplicate parameter: the last one is changed",
                "milter_protocol = 2\nfoo = bar\nmilter_protocol = 4\n",
                &[],
                "milter_protocol = 2\nfoo = bar\nmilter_protocol = 6\nmilter_default_action = tempfail\n".into(),
            ),
            (
                "equal values keep their spelling",
                "milter_protocol=6\nmilter_default_action   =   tempfail   \n",
                &[],
                "milter_protocol=6\nmilter_default_action   =   tempfail   \n".into(),
            ),
            (
                "no final newline is kept when nothing is appended",
                "milter_default_action = accept\nmilter_protocol = 6",
                &[],
                "milter_default_action = tempfail\nmilter_protocol = 6".into(),
            ),
            (
                "another milter is kept and ours prepended",
                "smtpd_milters = inet:localhost:8892\n",
                &["smtpd_milters"],
                format!("{MARK}smtpd_milters = {OURS}, inet:localhost:8892\n{TAIL}"),
            ),
            (
                "non_smtpd_milters = $smtpd_milters is left alone",
                "smtpd_milters = inet:localhost:8892\nnon_smtpd_milters = $smtpd_milters\n",
                &both,
                format!(
                    "{MARK}smtpd_milters = {OURS}, inet:localhost:8892\nnon_smtpd_milters = $smtpd_milters\n{TAIL}"
                ),
            ),
            (
                "${smtpd_milters} reference, multi-line list",
                "non_smtpd_milters = ${smtpd_milters}\nsmtpd_milters =\n  unix:/dkimctl/milter.sock\n  inet:127.0.0.1:9000\n",
                &both,
                format!(
                    "{MARK}non_smtpd_milters = ${{smtpd_milters}}\nsmtpd_milters =\n  unix:/dkimctl/milter.sock\n  inet:127.0.0.1:9000\n{TAIL}"
                ),
            ),
            (
                "socket moved: the old entry named by the marker is replaced in place",
                "# dkimctl: DKIM milter is inet:127.0.0.1:8891\n\
                 smtpd_milters = { inet:localhost:8892, connect_timeout=10s }, inet:127.0.0.1:8891\n\
                 non_smtpd_milters = INET:127.0.0.1:8891\n",
                &both,
                format!(
                    "{MARK}smtpd_milters = {{ inet:localhost:8892, connect_timeout=10s }}, {OURS}\n\
                     non_smtpd_milters = {OURS}\n{TAIL}"
                ),
            ),
            (
                "unix: and bare path are the same address",
                "smtpd_milters = /dkimctl/milter.sock\n",
                &["smtpd_milters"],
                format!("{MARK}smtpd_milters = /dkimctl/milter.sock\n{TAIL}"),
            ),
            (
                "a relative path under the queue directory is the same socket",
                "smtpd_milters = unix:dkimctl/milter.sock, local:other/x.sock\n",
                &["smtpd_milters"],
                format!(
                    "{MARK}smtpd_milters = unix:dkimctl/milter.sock, local:other/x.sock\n{TAIL}"
                ),
            ),
            (
                "reached through a $parameter (docker-mailserver)",
                "dkim_milter = unix:/dkimctl/milter.sock\ndmarc_milter = inet:localhost:8893\n\
                 smtpd_milters = $dkim_milter,$dmarc_milter\nnon_smtpd_milters = $dkim_milter\n",
                &both,
                format!(
                    "dkim_milter = unix:/dkimctl/milter.sock\ndmarc_milter = inet:localhost:8893\n\
                     {MARK}smtpd_milters = $dkim_milter,$dmarc_milter\nnon_smtpd_milters = $dkim_milter\n{TAIL}"
                ),
            ),
            (
                "socket moved behind a $parameter: the parameter is edited",
                "# dkimctl: DKIM milter is inet:localhost:8891\ndkim_milter = inet:localhost:8891\n\
                 smtpd_milters = $dkim_milter, inet:localhost:8893\n",
                &["smtpd_milters"],
                format!(
                    "dkim_milter = {OURS}\n{MARK}smtpd_milters = $dkim_milter, inet:localhost:8893\n{TAIL}"
                ),
            ),
            (
                "duplicate milter list: the last one is merged",
                "smtpd_milters = a\nsmtpd_milters = b\n",
                &["smtpd_milters"],
                format!("smtpd_milters = a\n{MARK}smtpd_milters = {OURS}, b\n{TAIL}"),
            ),
        ];
        for (name, old, lists, want) in cases {
            let got = merge(old, &main_edit(OURS, lists));
            assert_eq!(got, want, "case: {name}");
        }
    }

    #[test]
    fn tcp_spellings_are_the_same_milter() {
        for existing in [
            "inet:localhost:8891",
            "inet:127.0.0.1:8891",
            "{ inet:localhost:8891, default_action = tempfail }",
        ] {
            let old = format!("smtpd_milters = {existing}, unix:/opendmarc/o.sock\n");
            let got = merge(&old, &main_edit("inet:127.0.0.1:8891", &["smtpd_milters"]));
            assert!(
                got.contains(&format!(
                    "smtpd_milters = {existing}, unix:/opendmarc/o.sock\n"
                )),
                "{existing}: {got}"
            );
            assert_eq!(got.matches("8891").count(), 2, "{got}");
        }
    }

    #[test]
    fn unrelated_bytes_survive() {
        let old: &[u8] = b"# \xe9t\xe9 latin-1 comment\r\n\
                           smtpd_banner = $myhostname ESMTP\n\
                           \tweird continuation of banner\n\
                           alias_maps = hash:/etc/aliases\n";
        let out = merge_main(old, &main_edit(OURS, &[]));
        assert!(out.starts_with(old));
    }

    #[test]
    fn odd_input_does_not_panic() {
        for old in [
            "  orphan continuation\n",
            "=\n",
            "smtpd_milters\n",
            "smtpd_milters = {{{\n",
            "smtpd_milters = }}} ,, \n",
            "smtpd_milters = $smtpd_milters\n",
            "a = $b\nb = $a\nsmtpd_milters = $a\n",
            "\n\n\n",
            "#",
        ] {
            let e = main_edit(OURS, &["smtpd_milters", "non_smtpd_milters"]);
            let out = merge_main(old.as_bytes(), &e);
            assert_eq!(merge_main(&out, &e), out, "input {old:?}");
        }
    }

    #[test]
    fn parameters_and_expansion() {
        let main = MainCf::parse(
            b"# For use by dkim milter\n\
              smtpd_milters = unix:/run/opendkim/opendkim.sock,\n\
              \x20               unix:/run/opendmarc/opendmarc.sock\n\
              non_smtpd_milters = $smtpd_milters\n\
              other = ${missing?x}${missing:y}$(smtpd_milters)\n\
              queue_directory = /var/spool/pf\n",
        );
        assert_eq!(main.param("smtpd_milters").map(|p| p.line), Some(2));
        assert_eq!(
            milter_entries(&main.expand("$non_smtpd_milters")),
            [
                "unix:/run/opendkim/opendkim.sock",
                "unix:/run/opendmarc/opendmarc.sock"
            ]
        );
        assert!(main.expand("$other").starts_with("yunix:"));
        assert_eq!(main.queue_directory(), PathBuf::from("/var/spool/pf"));
    }
}
