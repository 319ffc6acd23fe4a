//! Merging dkimctl's settings into Postfix's main.cf and master.cf, the
//! way `postconf -e` and `postconf -P` would, keeping every other byte.
//!
//! # Postfix's line syntax (postconf(5), master(5))
//!
//! A logical line starts with non-whitespace text; a physical line that
//! starts with whitespace continues it. Blank lines and lines whose first
//! non-whitespace character is `#` are comments: they end nothing and are
//! part of no value. When a parameter is set twice, the last one counts.
//!
//! # The marker
//!
//! Milter lists hold other milters too, so dkimctl must know which entry
//! is its own when the socket moves. It keeps one comment line,
//! `# dkimctl: DKIM milter is <address>`, directly above the first milter
//! list it manages (in main.cf, and in master.cf above the first service
//! whose `smtpd_milters` it manages). The next merge removes the entry
//! named there if it is no longer ours, instead of leaving a dead milter
//! behind.

use super::lines::{self, Lines};
use crate::render::artifact::{PostfixMainEdit, PostfixMasterEdit};

/// The marker comment, up to the address.
pub const MARKER_PREFIX: &str = "# dkimctl: DKIM milter is ";

/// A logical line: its first physical line and its continuations.
#[derive(Debug, Clone)]
struct Logical {
    /// First token of the first line (a parameter or service name).
    name: Vec<u8>,
    /// Index of the first physical line.
    head: usize,
    /// Indexes of the continuation lines (comments in between excluded).
    conts: Vec<usize>,
}

impl Logical {
    fn last(&self) -> usize {
        self.conts.last().copied().unwrap_or(self.head)
    }
}

/// The logical lines of a file (continuations before the first logical
/// line belong to nothing and are skipped, as Postfix warns and does).
fn logical_lines(lines: &Lines) -> Vec<Logical> {
    let mut out: Vec<Logical> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = lines::body(line);
        let trimmed = lines::trim_start(body);
        if trimmed.is_empty() || trimmed[0] == b'#' {
            continue;
        }
        if lines::is_blank(body[0]) {
            if let Some(l) = out.last_mut() {
                l.conts.push(i);
            }
            continue;
        }
        let name_len = body
            .iter()
            .take_while(|&&b| !b.is_ascii_whitespace() && b != b'=')
            .count();
        out.push(Logical {
            name: body[..name_len].to_vec(),
            head: i,
            conts: Vec::new(),
        });
    }
    out
}

/// The value of a main.cf logical line that is `name = value`: the text
/// after `=` and every continuation, trimmed and joined by one space.
fn param_value(lines: &Lines, l: &Logical) -> Option<String> {
    let head = lines::body(lines.get(l.head)?);
    let rest = lines::trim_start(&head[l.name.len()..]);
    let rest = rest.strip_prefix(b"=")?;
    let mut parts = vec![String::from_utf8_lossy(rest).trim().to_string()];
    for &c in &l.conts {
        parts.push(
            String::from_utf8_lossy(lines::body(&lines[c]))
                .trim()
                .to_string(),
        );
    }
    parts.retain(|p| !p.is_empty());
    Some(parts.join(" "))
}

/// The last `name = value` logical line for `name`, and its value.
fn find_param(lines: &Lines, name: &str) -> Option<(Logical, String)> {
    logical_lines(lines)
        .into_iter()
        .filter(|l| l.name == name.as_bytes())
        .filter_map(|l| param_value(lines, &l).map(|v| (l, v)))
        .next_back()
}

/// Replaces all physical lines of a logical line by one line of text at
/// its position, keeping the terminator of its last physical line (so a
/// file without a final newline keeps lacking one). Comments between its
/// continuations stay.
fn replace_logical(lines: &mut Lines, l: &Logical, text: &str) {
    let eol = lines::eol(&lines[l.last()]);
    for &i in l.conts.iter().rev() {
        lines.remove(i);
    }
    lines[l.head] = lines::with_eol(text, eol);
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

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits a milter list into its entries: separated by commas and/or
/// whitespace, with `{ ... }` groups (per-milter settings, Postfix 3.0)
/// and `${name}` references kept whole.
pub(crate) fn parse_list(v: &str) -> Vec<String> {
    let b = v.as_bytes();
    let is_sep = |c: u8| c == b',' || c.is_ascii_whitespace();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if is_sep(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut depth = 0usize;
        while i < b.len() {
            let c = b[i];
            if c == b'{' {
                depth += 1;
            } else if c == b'}' {
                depth = depth.saturating_sub(1);
                if depth == 0 && b[start] == b'{' {
                    i += 1;
                    break;
                }
            } else if depth == 0 && is_sep(c) {
                break;
            }
            i += 1;
        }
        if let Some(entry) = v.get(start..i) {
            out.push(entry.to_string());
        }
    }
    out
}

/// The address of a list entry: the entry itself, or the first item of a
/// `{ address, setting = value, ... }` group.
fn entry_address(e: &str) -> String {
    match e.strip_prefix('{') {
        Some(inner) => {
            let inner = inner.strip_suffix('}').unwrap_or(inner);
            parse_list(inner).into_iter().next().unwrap_or_default()
        }
        None => e.to_string(),
    }
}

/// An address in comparable form: the scheme in lower case, `unix:` and a
/// bare path alike, everything else as written (`localhost` and
/// `127.0.0.1` are different addresses to us).
pub(crate) fn address_key(a: &str) -> String {
    match a.split_once(':') {
        Some((scheme, rest))
            if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            let scheme = scheme.to_ascii_lowercase();
            if scheme == "unix" {
                rest.to_string()
            } else {
                format!("{scheme}:{rest}")
            }
        }
        _ => a.to_string(),
    }
}

fn is_ours(entry: &str, ours: &str) -> bool {
    address_key(&entry_address(entry)) == address_key(ours)
}

fn is_smtpd_milters_ref(entry: &str) -> bool {
    matches!(
        entry,
        "$smtpd_milters" | "${smtpd_milters}" | "$(smtpd_milters)"
    )
}

/// The address in the first marker line, if any.
fn find_marker(lines: &Lines) -> Option<String> {
    lines.iter().find_map(|l| {
        let body = String::from_utf8_lossy(lines::body(l));
        body.strip_prefix(MARKER_PREFIX)
            .map(|a| a.trim().to_string())
    })
}

fn is_marker(line: &[u8]) -> bool {
    lines::body(line).starts_with(MARKER_PREFIX.as_bytes())
}

/// Puts exactly one marker line directly above line `above` (an index
/// into `lines` before any marker was removed).
fn place_marker(lines: &mut Lines, ours: &str, anchor: impl Fn(&Lines) -> Option<usize>) {
    lines.retain(|l| !is_marker(l));
    if let Some(i) = anchor(lines) {
        lines.insert(i, lines::with_eol(&format!("{MARKER_PREFIX}{ours}"), b"\n"));
    }
}

/// Merges a milter list: every entry is kept except the stale one (our
/// previous address), and `ours` is put first unless present (or, with
/// `via_ref`, reached through a `$smtpd_milters` reference). Returns
/// `None` when the list needs no change.
fn merge_list(
    value: &str,
    ours: &str,
    stale: Option<&str>,
    via_ref: bool,
    sep: &str,
) -> Option<String> {
    let entries = parse_list(value);
    let kept: Vec<String> = entries
        .iter()
        .filter(|e| stale.is_none_or(|s| address_key(&entry_address(e)) != address_key(s)))
        .cloned()
        .collect();
    let removed = kept.len() != entries.len();
    let has = kept.iter().any(|e| is_ours(e, ours))
        || (via_ref && kept.iter().any(|e| is_smtpd_milters_ref(e)));
    if has && !removed {
        return None;
    }
    let mut new = kept;
    if !has {
        new.insert(0, ours.to_string());
    }
    Some(new.join(sep))
}

/// main.cf with `edit` merged in.
pub(crate) fn merge_main(old: &[u8], edit: &PostfixMainEdit) -> Vec<u8> {
    let mut lines = lines::split(old);
    for (name, value) in &edit.set {
        set_param(&mut lines, name, value);
    }
    if edit.milter_lists.is_empty() {
        return lines::join(&lines);
    }
    let ours = edit.milter.as_str();
    let stale = find_marker(&lines).filter(|a| address_key(a) != address_key(ours));
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
    for param in &order {
        match find_param(&lines, param) {
            None => lines::append(&mut lines, &format!("{param} = {ours}")),
            Some((l, value)) => {
                let via_ref = *param != "smtpd_milters"
                    && find_param(&lines, "smtpd_milters")
                        .is_some_and(|(_, v)| parse_list(&v).iter().any(|e| is_ours(e, ours)));
                if let Some(new) = merge_list(&value, ours, stale.as_deref(), via_ref, ", ") {
                    replace_logical(&mut lines, &l, &format!("{param} = {new}"));
                }
            }
        }
    }
    place_marker(&mut lines, ours, |lines| {
        order
            .iter()
            .filter_map(|p| find_param(lines, p).map(|(l, _)| l.head))
            .min()
    });
    lines::join(&lines)
}

/// A master.cf edit names a service that master.cf does not define.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingService(pub String);

/// Where an `-o key=value` override sits: line index and the byte range
/// of its `key=value` token.
fn find_override(lines: &Lines, l: &Logical, key: &str) -> Option<(usize, (usize, usize))> {
    let prefix = format!("{key}=");
    let mut found = None;
    for idx in std::iter::once(l.head).chain(l.conts.iter().copied()) {
        let body = lines::body(&lines[idx]);
        let toks = lines::tokens(body);
        // The first eight fields of a service line are name, type,
        // private, unpriv, chroot, wakeup, maxproc and command.
        let skip = if idx == l.head { 8 } else { 0 };
        let toks: Vec<(usize, usize)> = toks.into_iter().skip(skip).collect();
        for pair in toks.windows(2) {
            let (o, v) = (pair[0], pair[1]);
            if &body[o.0..o.1] == b"-o" && body[v.0..v.1].starts_with(prefix.as_bytes()) {
                found = Some((idx, v));
            }
        }
    }
    found
}

/// The indentation for a new `-o` line: that of the service's first `-o`
/// line, else of any in the file, else two spaces.
fn override_indent(lines: &Lines, l: &Logical) -> Vec<u8> {
    let indent_of = |idx: usize| -> Option<Vec<u8>> {
        let body = lines::body(&lines[idx]);
        let rest = lines::trim_start(body);
        (rest.starts_with(b"-o") && rest.len() < body.len())
            .then(|| body[..body.len() - rest.len()].to_vec())
    };
    l.conts
        .iter()
        .find_map(|&i| indent_of(i))
        .or_else(|| {
            logical_lines(lines)
                .iter()
                .flat_map(|l| l.conts.clone())
                .find_map(indent_of)
        })
        .unwrap_or_else(|| b"  ".to_vec())
}

/// master.cf with `edit` merged in. `main_has_ours` says that main.cf's
/// `smtpd_milters` will contain our milter, so a `$smtpd_milters`
/// reference in an override counts as containing it.
pub(crate) fn merge_master(
    old: &[u8],
    edit: &PostfixMasterEdit,
    main_has_ours: bool,
) -> Result<Vec<u8>, MissingService> {
    let mut lines = lines::split(old);
    let ours = edit.milter.as_str();
    let stale = find_marker(&lines).filter(|a| address_key(a) != address_key(ours));
    let mut milter_services: Vec<&str> = Vec::new();
    for (svc, opts) in &edit.services {
        let count = logical_lines(&lines)
            .iter()
            .filter(|l| l.name == svc.as_bytes())
            .count();
        if count == 0 {
            return Err(MissingService(svc.clone()));
        }
        for (key, value) in opts {
            if key == "smtpd_milters" {
                milter_services.push(svc);
            }
            // Every entry with this name (e.g. `submission inet` and a
            // second `submission` for another address) gets the override.
            for k in 0..count {
                let Some(l) = logical_lines(&lines)
                    .into_iter()
                    .filter(|l| l.name == svc.as_bytes())
                    .nth(k)
                else {
                    break;
                };
                set_override(
                    &mut lines,
                    &l,
                    key,
                    value,
                    ours,
                    stale.as_deref(),
                    main_has_ours,
                );
            }
        }
    }
    if !milter_services.is_empty() {
        place_marker(&mut lines, ours, |lines| {
            logical_lines(lines)
                .iter()
                .find(|l| milter_services.iter().any(|s| l.name == s.as_bytes()))
                .map(|l| l.head)
        });
    }
    Ok(lines::join(&lines))
}

fn set_override(
    lines: &mut Lines,
    l: &Logical,
    key: &str,
    value: &str,
    ours: &str,
    stale: Option<&str>,
    main_has_ours: bool,
) {
    match find_override(lines, l, key) {
        Some((idx, (start, end))) => {
            let line = &lines[idx];
            let token = String::from_utf8_lossy(&line[start..end]).into_owned();
            let current = token.get(key.len() + 1..).unwrap_or_default();
            let new = if key == "smtpd_milters" {
                // `-o` values cannot hold spaces: commas only.
                match merge_list(current, ours, stale, main_has_ours, ",") {
                    Some(n) => n,
                    None => return,
                }
            } else {
                value.to_string()
            };
            if new == current {
                return;
            }
            let mut out = line[..start].to_vec();
            out.extend_from_slice(format!("{key}={new}").as_bytes());
            out.extend_from_slice(&line[end..]);
            lines[idx] = out;
        }
        None => {
            let last = l.last();
            let mut new = override_indent(lines, l);
            new.extend_from_slice(format!("-o {key}={value}\n").as_bytes());
            lines::terminate(lines, last);
            lines.insert(last + 1, new);
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

    #[test]
    fn main_cf_merge_table() {
        let both = ["smtpd_milters", "non_smtpd_milters"];
        let cases: &[(&str, &str, &[&str], &str)] = &[
            (
                "absent file",
                "",
                &both,
                "milter_default_action = tempfail\n\
                 milter_protocol = 6\n\
                 # dkimctl: DKIM milter is unix:/dkimctl/milter.sock\n\
                 smtpd_milters = unix:/dkimctl/milter.sock\n\
                 non_smtpd_milters = unix:/dkimctl/milter.sock\n",
            ),
            (
                "replaced in place, continuation lines included",
                "# top comment\n\
                 myhostname = mail.example.com\n\
                 milter_default_action =\n    accept\n\
                 \n\
                 relayhost =\n",
                &[],
                "# top comment\n\
                 myhostname = mail.example.com\n\
                 milter_default_action = tempfail\n\
                 \n\
                 relayhost =\n\
                 milter_protocol = 6\n",
            ),
            (
                "comment between continuation lines stays",
                "milter_protocol = 2,\n# note\n  3\nx = y",
                &[],
                "milter_protocol = 6\n# note\nx = y\nmilter_default_action = tempfail\n",
            ),
            (
                "duplicate parameter: the last one is changed",
                "milter_protocol = 2\nfoo = bar\nmilter_protocol = 4\n",
                &[],
                "milter_protocol = 2\nfoo = bar\nmilter_protocol = 6\n\
                 milter_default_action = tempfail\n",
            ),
            (
                "equal values keep their spelling",
                "milter_protocol=6\nmilter_default_action   =   tempfail   \n",
                &[],
                "milter_protocol=6\nmilter_default_action   =   tempfail   \n",
            ),
            (
                "no final newline is kept when nothing is appended",
                "milter_default_action = accept\nmilter_protocol = 6",
                &[],
                "milter_default_action = tempfail\nmilter_protocol = 6",
            ),
            (
                "another milter is kept and ours prepended",
                "smtpd_milters = inet:localhost:8892\n",
                &["smtpd_milters"],
                "# dkimctl: DKIM milter is unix:/dkimctl/milter.sock\n\
                 smtpd_milters = unix:/dkimctl/milter.sock, inet:localhost:8892\n\
                 milter_default_action = tempfail\nmilter_protocol = 6\n",
            ),
            (
                "non_smtpd_milters = $smtpd_milters is left alone",
                "smtpd_milters = inet:localhost:8892\nnon_smtpd_milters = $smtpd_milters\n",
                &both,
                "# dkimctl: DKIM milter is unix:/dkimctl/milter.sock\n\
                 smtpd_milters = unix:/dkimctl/milter.sock, inet:localhost:8892\n\
                 non_smtpd_milters = $smtpd_milters\n\
                 milter_default_action = tempfail\nmilter_protocol = 6\n",
            ),
            (
                "${smtpd_milters} reference, multi-line list",
                "non_smtpd_milters = ${smtpd_milters}\nsmtpd_milters =\n  unix:/dkimctl/milter.sock\n  inet:127.0.0.1:9000\n",
                &both,
                "# dkimctl: DKIM milter is unix:/dkimctl/milter.sock\n\
                 non_smtpd_milters = ${smtpd_milters}\nsmtpd_milters =\n  unix:/dkimctl/milter.sock\n  inet:127.0.0.1:9000\n\
                 milter_default_action = tempfail\nmilter_protocol = 6\n",
            ),
            (
                "socket moved: the old entry named by the marker is replaced",
                "# dkimctl: DKIM milter is inet:127.0.0.1:8891\n\
                 smtpd_milters = inet:127.0.0.1:8891, { inet:localhost:8892, connect_timeout=10s }\n\
                 non_smtpd_milters = INET:127.0.0.1:8891\n",
                &both,
                "# dkimctl: DKIM milter is unix:/dkimctl/milter.sock\n\
                 smtpd_milters = unix:/dkimctl/milter.sock, { inet:localhost:8892, connect_timeout=10s }\n\
                 non_smtpd_milters = unix:/dkimctl/milter.sock\n\
                 milter_default_action = tempfail\nmilter_protocol = 6\n",
            ),
            (
                "unix: and bare path are the same address",
                "smtpd_milters = /dkimctl/milter.sock\n",
                &["smtpd_milters"],
                "# dkimctl: DKIM milter is unix:/dkimctl/milter.sock\n\
                 smtpd_milters = /dkimctl/milter.sock\n\
                 milter_default_action = tempfail\nmilter_protocol = 6\n",
            ),
            (
                "duplicate milter list: the last one is merged",
                "smtpd_milters = a\nsmtpd_milters = b\n",
                &["smtpd_milters"],
                "smtpd_milters = a\n\
                 # dkimctl: DKIM milter is unix:/dkimctl/milter.sock\n\
                 smtpd_milters = unix:/dkimctl/milter.sock, b\n\
                 milter_default_action = tempfail\nmilter_protocol = 6\n",
            ),
        ];
        for (name, old, lists, want) in cases {
            let got = merge(old, &main_edit(OURS, lists));
            assert_eq!(got, *want, "case: {name}");
        }
    }

    #[test]
    fn main_cf_unrelated_bytes_survive() {
        let old: &[u8] = b"# \xe9t\xe9 latin-1 comment\r\n\
                           smtpd_banner = $myhostname ESMTP\n\
                           \tweird continuation of banner\n\
                           alias_maps = hash:/etc/aliases\n";
        let out = merge_main(old, &main_edit(OURS, &[]));
        assert!(out.starts_with(old));
    }

    #[test]
    fn main_cf_does_not_panic_on_odd_input() {
        for old in [
            "  orphan continuation\n",
            "=\n",
            "smtpd_milters\n",
            "smtpd_milters = {{{\n",
            "smtpd_milters = }}} ,, \n",
            "\n\n\n",
            "#",
        ] {
            let e = main_edit(OURS, &["smtpd_milters", "non_smtpd_milters"]);
            let out = merge_main(old.as_bytes(), &e);
            assert_eq!(merge_main(&out, &e), out, "input {old:?}");
        }
    }

    #[test]
    fn list_parsing() {
        assert_eq!(
            parse_list("a, b c,,{ inet:x:1, y=2 } ${smtpd_milters},$(x)"),
            vec![
                "a",
                "b",
                "c",
                "{ inet:x:1, y=2 }",
                "${smtpd_milters}",
                "$(x)"
            ]
        );
        assert_eq!(address_key("UNIX:/x"), "/x");
        assert_eq!(address_key("Inet:LOCALHOST:1"), "inet:LOCALHOST:1");
        assert_ne!(
            address_key("inet:localhost:8891"),
            address_key("inet:127.0.0.1:8891")
        );
    }

    const ARCH_MASTER: &str = "\
smtp      inet  n       -       n       -       -       smtpd
  -o smtpd_client_connection_count_limit=10
  -o smtpd_milters=inet:127.0.0.1:8891

submission inet n       -       n       -       -       smtpd
  -o smtpd_enforce_tls=no
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sasl_path=smtpd
  -o cyrus_sasl_config_path=/etc/sasl2
  -o smtpd_milters=inet:127.0.0.1:8891
pickup    unix  n       -       y       60      1       pickup
";

    fn master_edit(milter: &str, services: &[(&str, &[(&str, &str)])]) -> PostfixMasterEdit {
        PostfixMasterEdit {
            services: services
                .iter()
                .map(|(s, o)| {
                    (
                        s.to_string(),
                        o.iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    )
                })
                .collect(),
            milter: milter.into(),
        }
    }

    fn merge_m(old: &str, edit: &PostfixMasterEdit) -> String {
        let out = merge_master(old.as_bytes(), edit, false).expect("merge");
        let again = merge_master(&out, edit, false).expect("merge again");
        assert_eq!(
            String::from_utf8_lossy(&again),
            String::from_utf8_lossy(&out),
            "not idempotent"
        );
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn master_cf_same_milter_changes_only_the_marker() {
        let e = master_edit(
            "inet:127.0.0.1:8891",
            &[
                ("smtp", &[("smtpd_milters", "inet:127.0.0.1:8891")]),
                ("submission", &[("smtpd_milters", "inet:127.0.0.1:8891")]),
            ],
        );
        let got = merge_m(ARCH_MASTER, &e);
        assert_eq!(
            got,
            format!("# dkimctl: DKIM milter is inet:127.0.0.1:8891\n{ARCH_MASTER}")
        );
    }

    #[test]
    fn master_cf_overrides_added_and_replaced() {
        let e = master_edit(
            OURS,
            &[
                (
                    "smtp",
                    &[
                        ("smtpd_milters", OURS),
                        ("milter_macro_daemon_name", "ORIGINATING"),
                    ],
                ),
                (
                    "submission",
                    &[("smtpd_milters", OURS), ("smtpd_sasl_auth_enable", "no")],
                ),
            ],
        );
        let got = merge_m(ARCH_MASTER, &e);
        let want = "\
# dkimctl: DKIM milter is unix:/dkimctl/milter.sock
smtp      inet  n       -       n       -       -       smtpd
  -o smtpd_client_connection_count_limit=10
  -o smtpd_milters=unix:/dkimctl/milter.sock,inet:127.0.0.1:8891
  -o milter_macro_daemon_name=ORIGINATING

submission inet n       -       n       -       -       smtpd
  -o smtpd_enforce_tls=no
  -o smtpd_sasl_auth_enable=no
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sasl_path=smtpd
  -o cyrus_sasl_config_path=/etc/sasl2
  -o smtpd_milters=unix:/dkimctl/milter.sock,inet:127.0.0.1:8891
pickup    unix  n       -       y       60      1       pickup
";
        assert_eq!(got, want);

        // Moving the socket again replaces our entry, keeps the other.
        let moved = master_edit(
            "inet:127.0.0.1:9999",
            &[("smtp", &[("smtpd_milters", "inet:127.0.0.1:9999")])],
        );
        let got2 = merge_m(&got, &moved);
        assert!(got2.contains("-o smtpd_milters=inet:127.0.0.1:9999,inet:127.0.0.1:8891\n"));
        assert!(got2.starts_with("# dkimctl: DKIM milter is inet:127.0.0.1:9999\nsmtp "));
        assert_eq!(got2.matches("# dkimctl:").count(), 1);
    }

    #[test]
    fn master_cf_insert_without_continuations_and_indent() {
        let old = "smtp inet n - y - - smtpd\nrelay unix - - y - - smtp\n\t-o syslog_name=relay";
        let e = master_edit(OURS, &[("relay", &[("a", "b")]), ("smtp", &[("c", "d")])]);
        let got = merge_m(old, &e);
        assert_eq!(
            got,
            "smtp inet n - y - - smtpd\n\t-o c=d\nrelay unix - - y - - smtp\n\t-o syslog_name=relay\n\t-o a=b\n"
        );
    }

    #[test]
    fn master_cf_head_line_options_and_host_port_names() {
        let old = "127.0.0.1:10025 inet n - n - - smtpd -o smtpd_milters=\n";
        let e = master_edit(OURS, &[("127.0.0.1:10025", &[("smtpd_milters", OURS)])]);
        let got = merge_m(old, &e);
        assert_eq!(
            got,
            "# dkimctl: DKIM milter is unix:/dkimctl/milter.sock\n\
             127.0.0.1:10025 inet n - n - - smtpd -o smtpd_milters=unix:/dkimctl/milter.sock\n"
        );
    }

    #[test]
    fn master_cf_missing_service_is_an_error() {
        let commented = "#submission inet n - y - - smtpd\n#  -o syslog_name=x\n";
        let e = master_edit(OURS, &[("submission", &[("smtpd_milters", OURS)])]);
        assert_eq!(
            merge_master(commented.as_bytes(), &e, false),
            Err(MissingService("submission".into()))
        );
    }

    #[test]
    fn master_cf_smtpd_milters_reference() {
        let old = "submission inet n - y - - smtpd\n  -o smtpd_milters=$smtpd_milters\n";
        let e = master_edit(OURS, &[("submission", &[("smtpd_milters", OURS)])]);
        let out = merge_master(old.as_bytes(), &e, true).expect("merge");
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("# dkimctl: DKIM milter is {OURS}\n{old}")
        );
        let out = merge_master(old.as_bytes(), &e, false).expect("merge");
        assert!(
            String::from_utf8_lossy(&out)
                .contains(&format!("smtpd_milters={OURS},$smtpd_milters\n"))
        );
    }
}
