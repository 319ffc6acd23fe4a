//! master.cf (master(5)): its services with their chroot column and `-o`
//! overrides ([`parse_master`]), and merging dkimctl's overrides into
//! chosen services, keeping every other byte ([`merge_master`]).

use super::PostfixMasterEdit;
use super::main_cf::{ListMerge, MainCf, Param, find_marker, merge_list, place_marker};
use super::milter::{View, endpoint};
use super::syntax::{Logical, logical_lines};
use crate::formats::lines::{self, Lines};

/// The fields before the command's arguments on a service line: name,
/// type, private, unpriv, chroot, wakeup, maxproc, command.
const SERVICE_FIELDS: usize = 8;

/// Whether a master.cf service runs chrooted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroot {
    /// Column `y`.
    Yes,
    /// Column `n`.
    No,
    /// Column `-`: the compiled-in default, `y` in Debian's package and
    /// `n` upstream since Postfix 3.0.
    Default,
}

impl Chroot {
    /// `-` resolved to what the caller knows of the build.
    pub fn or_default(self, chrooted_by_default: bool) -> Chroot {
        match self {
            Chroot::Default if chrooted_by_default => Chroot::Yes,
            Chroot::Default => Chroot::No,
            c => c,
        }
    }
}

/// One service of master.cf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Service name (`smtp`, `submission`, `127.0.0.1:10025`).
    pub name: String,
    /// Service type (`inet`, `unix`, `pass`, ...).
    pub kind: String,
    /// The chroot column.
    pub chroot: Chroot,
    /// The command (`smtpd`, `cleanup`, ...).
    pub command: String,
    /// `-o name=value` overrides (also `-o name = value` and
    /// `-o { name = value }`), each with the line it is on.
    pub overrides: Vec<Param>,
    /// 1-based number of its first line.
    pub line: usize,
}

impl Service {
    /// The last override of `name`.
    pub fn override_of(&self, name: &str) -> Option<&Param> {
        self.overrides.iter().rev().find(|o| o.name == name)
    }
}

/// One `-o` option: its name and value, and where its text sits.
struct Override {
    name: String,
    value: String,
    /// Physical line index.
    line: usize,
    /// Physical line index and byte range of a one-token `name=value`
    /// (the form merges edit in place); `None` for the spaced and braced
    /// forms.
    token: Option<(usize, (usize, usize))>,
}

/// The `-o` options of a service, in order.
fn overrides(lines: &Lines, l: &Logical) -> Vec<Override> {
    // (physical line, token range) of every token after the fixed fields.
    let mut toks: Vec<(usize, (usize, usize))> = Vec::new();
    for idx in l.indexes() {
        let body = lines::body(&lines[idx]);
        let skip = if idx == l.head { SERVICE_FIELDS } else { 0 };
        toks.extend(lines::tokens(body).into_iter().skip(skip).map(|t| (idx, t)));
    }
    let text = |(idx, (a, b)): (usize, (usize, usize))| {
        String::from_utf8_lossy(&lines::body(&lines[idx])[a..b]).into_owned()
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if text(toks[i]) != "-o" {
            i += 1;
            continue;
        }
        let line = toks[i].0;
        let mut j = i + 1;
        while j < toks.len() && text(toks[j]) != "-o" {
            j += 1;
        }
        let words: Vec<String> = toks[i + 1..j].iter().map(|&t| text(t)).collect();
        let joined = words.join(" ");
        let inner = joined
            .trim()
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(joined.trim());
        if let Some((name, value)) = inner.split_once('=') {
            out.push(Override {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
                line,
                token: (j == i + 2 && !words[0].starts_with('{')).then(|| toks[i + 1]),
            });
        }
        i = j;
    }
    out
}

/// Parses master.cf: services (lines with at least the eight fixed
/// fields) and their `-o` overrides.
pub fn parse_master(text: &[u8]) -> Vec<Service> {
    let lines = lines::split(text);
    logical_lines(&lines)
        .iter()
        .filter_map(|l| {
            let body = lines::body(&lines[l.head]);
            let fields: Vec<String> = lines::tokens(body)
                .into_iter()
                .take(SERVICE_FIELDS)
                .map(|(a, b)| String::from_utf8_lossy(&body[a..b]).into_owned())
                .collect();
            if fields.len() < SERVICE_FIELDS {
                return None;
            }
            let chroot = match fields[4].as_str() {
                "y" => Chroot::Yes,
                "n" => Chroot::No,
                _ => Chroot::Default,
            };
            Some(Service {
                name: fields[0].clone(),
                kind: fields[1].clone(),
                chroot,
                command: fields[7].clone(),
                overrides: overrides(&lines, l)
                    .into_iter()
                    .map(|o| Param {
                        name: o.name,
                        value: o.value,
                        line: o.line + 1,
                    })
                    .collect(),
                line: l.head + 1,
            })
        })
        .collect()
}

/// A master.cf edit names a service that master.cf does not define.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingService(pub String);

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

/// master.cf with `edit` merged in. `main` is main.cf as it will be
/// after the merge: `$name` references in overrides (`-o
/// smtpd_milters=$smtpd_milters`) expand with its values.
pub fn merge_master(
    old: &[u8],
    edit: &PostfixMasterEdit,
    main: &MainCf,
) -> Result<Vec<u8>, MissingService> {
    let mut lines = lines::split(old);
    let ours = edit.milter.as_str();
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
                let service_line = lines::body(&lines[l.head]);
                let chroot = lines::tokens(service_line)
                    .get(4)
                    .map(|&(a, b)| match &service_line[a..b] {
                        b"y" => Chroot::Yes,
                        b"n" => Chroot::No,
                        _ => Chroot::Default,
                    })
                    .unwrap_or(Chroot::Default)
                    .or_default(edit.chroot);
                let view = View {
                    queue_directory: &edit.queue_directory,
                    chroot,
                };
                set_override(&mut lines, &l, key, value, ours, main, &view);
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
    main: &MainCf,
    view: &View<'_>,
) {
    let found = overrides(lines, l)
        .into_iter()
        .rev()
        .find(|o| o.name == key && o.token.is_some());
    match found {
        Some(o) => {
            let (at, (start, end)) = o.token.unwrap_or_default();
            let current = o.value.as_str();
            let new = if key == "smtpd_milters" {
                let Some(ours_at) = endpoint(ours, view) else {
                    return;
                };
                let stale = find_marker(lines)
                    .and_then(|a| endpoint(&a, view))
                    .filter(|s| !s.same(&ours_at));
                let m = ListMerge {
                    ours,
                    ours_at,
                    stale,
                    insert: true,
                };
                // `-o` values cannot hold spaces: commas only.
                match merge_list(current, &m, main, view, ",") {
                    Some(n) => n,
                    None => return,
                }
            } else {
                value.to_string()
            };
            if new == current {
                return;
            }
            let line = &lines[at];
            let mut out = line[..start].to_vec();
            out.extend_from_slice(format!("{key}={new}").as_bytes());
            out.extend_from_slice(&line[end..]);
            lines[at] = out;
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
    use crate::formats::postfix::DEFAULT_QUEUE_DIRECTORY;

    const OURS: &str = "unix:/dkimctl/milter.sock";

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
            queue_directory: DEFAULT_QUEUE_DIRECTORY.into(),
            chroot: true,
        }
    }

    fn merge_m(old: &str, edit: &PostfixMasterEdit) -> String {
        let main = MainCf::default();
        let out = merge_master(old.as_bytes(), edit, &main).expect("merge");
        let again = merge_master(&out, edit, &main).expect("merge again");
        assert_eq!(
            String::from_utf8_lossy(&again),
            String::from_utf8_lossy(&out),
            "not idempotent"
        );
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn services_and_overrides_parse() {
        let s = parse_master(
            b"smtp      inet  n       -       y       -       -       smtpd\n\
              \x20 -o smtpd_client_connection_count_limit=10\n\
              \x20 -o smtpd_milters=inet:127.0.0.1:8891\n\
              #comment\n\
              submission inet n       -       -       -       -       smtpd\n\
              \x20 -o { smtpd_milters = inet:127.0.0.1:8891 }\n\
              \x20 -o milter_macro_daemon_name = ORIGINATING\n\
              cleanup   unix  n       -       y       -       0       cleanup\n",
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].chroot, Chroot::Yes);
        assert_eq!(s[0].overrides[1].name, "smtpd_milters");
        assert_eq!(s[0].overrides[1].line, 3);
        assert_eq!(s[1].chroot, Chroot::Default);
        assert_eq!(s[1].overrides[0].value, "inet:127.0.0.1:8891");
        assert_eq!(
            s[1].override_of("milter_macro_daemon_name")
                .map(|o| o.value.as_str()),
            Some("ORIGINATING")
        );
        assert_eq!(s[2].command, "cleanup");
        assert_eq!(s[2].line, 8);
    }

    #[test]
    fn same_milter_changes_only_the_marker() {
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
        // Another spelling of the same socket is the same milter.
        let e = master_edit(
            "inet:localhost:8891",
            &[("smtp", &[("smtpd_milters", "inet:localhost:8891")])],
        );
        assert!(merge_m(ARCH_MASTER, &e).contains("-o smtpd_milters=inet:127.0.0.1:8891\n"));
    }

    #[test]
    fn overrides_added_and_replaced() {
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

        // Moving the socket again replaces our entry in place, keeps the
        // other.
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
    fn insert_without_continuations_and_indent() {
        let old = "smtp inet n - y - - smtpd\nrelay unix - - y - - smtp\n\t-o syslog_name=relay";
        let e = master_edit(OURS, &[("relay", &[("a", "b")]), ("smtp", &[("c", "d")])]);
        let got = merge_m(old, &e);
        assert_eq!(
            got,
            "smtp inet n - y - - smtpd\n\t-o c=d\nrelay unix - - y - - smtp\n\t-o syslog_name=relay\n\t-o a=b\n"
        );
    }

    #[test]
    fn head_line_options_and_host_port_names() {
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
    fn missing_service_is_an_error() {
        let commented = "#submission inet n - y - - smtpd\n#  -o syslog_name=x\n";
        let e = master_edit(OURS, &[("submission", &[("smtpd_milters", OURS)])]);
        assert_eq!(
            merge_master(commented.as_bytes(), &e, &MainCf::default()),
            Err(MissingService("submission".into()))
        );
    }

    #[test]
    fn smtpd_milters_reference() {
        let old = "submission inet n - y - - smtpd\n  -o smtpd_milters=$smtpd_milters\n";
        let e = master_edit(OURS, &[("submission", &[("smtpd_milters", OURS)])]);
        let with_ours = MainCf::parse(format!("smtpd_milters = {OURS}\n").as_bytes());
        let out = merge_master(old.as_bytes(), &e, &with_ours).expect("merge");
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("# dkimctl: DKIM milter is {OURS}\n{old}")
        );
        let out = merge_master(old.as_bytes(), &e, &MainCf::default()).expect("merge");
        assert!(
            String::from_utf8_lossy(&out)
                .contains(&format!("smtpd_milters={OURS},$smtpd_milters\n"))
        );
    }
}
