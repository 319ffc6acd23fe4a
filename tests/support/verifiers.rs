//! Independent verifiers, each asking for the keys itself: dkimpy
//! (`python3-dkim`), Mail::DKIM (`libmail-dkim-perl`, `Net::DNS`; RSA only:
//! Debian 12's version has no Ed25519), and OpenDKIM in verify mode fed by
//! miltertest, its Authentication-Results read back. [`judge`] asks every
//! one that is installed; [`assert_all_pass`] and [`assert_all_fail`] read
//! the verdicts.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::Run;
use super::knot::{Knot, Published};
use super::message::{Msg, show};
use super::miltertest::{Conversation, have_miltertest};
use super::proc::{run_bounded, stop_child, wait_for_socket};

/// A verdict on one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub selector: String,
    pub result: String,
    pub detail: String,
}

/// A python3 that has dkimpy (Debian's python3-dkim lives in the system
/// interpreter, which a pyenv shim on PATH may hide). Under CI its absence
/// fails.
pub fn python_with_dkimpy() -> Option<PathBuf> {
    let found = ["/usr/bin/python3", "python3"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            Command::new(p)
                .args(["-c", "import dkim"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    if found.is_none() {
        assert!(!super::ci(), "dkimpy (python3-dkim) is required under CI");
        eprintln!("skipped: dkimpy (python3-dkim) not found");
    }
    found
}

/// dkimpy's verdict per signature, top first: `RESULT SELECTOR DETAIL`.
/// The keys come from a DNS server on 127.0.0.1 (`dns PORT`) or from the
/// command line (`records NAME=VALUE...`).
const DKIMPY_VERIFY: &str = r#"
import subprocess, sys
import dkim, dkim.util
path, source, args = sys.argv[1], sys.argv[2], sys.argv[3:]

def from_dns(name, port):
    try:
        import dns.resolver
    except ImportError:
        out = subprocess.run(['kdig', '@127.0.0.1', '-p', port, '+short', '+timeout=2',
                              'TXT', name], capture_output=True, check=True)
        lines = out.stdout.decode().strip().splitlines()
        if len(lines) != 1:
            return None
        # kdig prints one record as "string" "string" ...
        return ''.join(lines[0].strip()[1:-1].split('" "')).encode()
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ['127.0.0.1']
    r.port = int(port)
    r.lifetime = 5
    try:
        answer = r.resolve(name, 'TXT')
    except dns.resolver.NXDOMAIN:
        return None
    if len(answer) != 1:
        return None
    return b''.join(answer[0].strings)

records = {}
if source == 'records':
    for a in args:
        name, value = a.split('=', 1)
        records[name.lower()] = value.encode()

def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    if source == 'dns':
        return from_dns(name, args[0])
    return records.get(name.rstrip('.').lower())

msg = open(path, 'rb').read()
d = dkim.DKIM(msg)
sigs = [v for (k, v) in d.headers if k.lower() == b'dkim-signature']
for i, sig in enumerate(sigs):
    detail = '-'
    try:
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        ok, detail = False, str(e).replace(' ', '_') or '-'
    selector = dkim.util.parse_tag_value(sig).get(b's', b'?').decode()
    print('pass' if ok else 'fail', selector, detail)
"#;

/// Mail::DKIM's verdict per signature; the keys come from Knot.
const MAIL_DKIM_VERIFY: &str = r#"
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Net::DNS;
my ($port, $path) = @ARGV;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => ['127.0.0.1'], port => $port, recurse => 0,
    udp_timeout => 5, tcp_timeout => 5, retry => 1));
my $dkim = Mail::DKIM::Verifier->new;
open my $fh, '<:raw', $path or die "$path: $!";
while (my $line = <$fh>) {
    $line =~ s/\015?\012\z//;
    $dkim->PRINT("$line\015\012");
}
$dkim->CLOSE;
for my $s ($dkim->signatures) {
    my $detail = $s->result_detail // '-';
    $detail =~ s/\s+/_/g;
    printf "%s %s %s\n", $s->result, $s->selector // '?', $detail;
}
"#;

fn verdicts(run: &Run) -> Vec<Verdict> {
    run.stdout()
        .lines()
        .map(|l| {
            let mut w = l.splitn(3, ' ');
            Verdict {
                result: w.next().unwrap_or("").to_string(),
                selector: w.next().unwrap_or("").to_string(),
                detail: w.next().unwrap_or("").to_string(),
            }
        })
        .collect()
}

fn message_file(msg: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.eml");
    std::fs::write(&path, msg).unwrap();
    (dir, path)
}

/// dkimpy on `msg`, the keys from Knot; `None` when it is missing outside
/// CI.
pub fn dkimpy(knot: &Knot, msg: &[u8]) -> Option<Vec<Verdict>> {
    run_dkimpy(msg, &["dns".to_string(), knot.port().to_string()])
}

/// dkimpy on `msg`, the keys from `records`: whether each signature passes,
/// top first; `None` when dkimpy is missing outside CI.
pub fn dkimpy_with(msg: &[u8], records: &[Published]) -> Option<Vec<bool>> {
    let mut args = vec!["records".to_string()];
    args.extend(records.iter().map(|r| format!("{}={}", r.name, r.value)));
    let verdicts = run_dkimpy(msg, &args)?;
    Some(verdicts.iter().map(|v| v.result == "pass").collect())
}

fn run_dkimpy(msg: &[u8], source: &[String]) -> Option<Vec<Verdict>> {
    let python = python_with_dkimpy()?;
    let (_dir, path) = message_file(msg);
    let run = run_bounded(
        Command::new(python)
            .args(["-c", DKIMPY_VERIFY])
            .arg(&path)
            .args(source),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(run.code(), 0, "dkimpy failed:\n{}", run.stderr());
    Some(verdicts(&run))
}

/// Whether Perl has Mail::DKIM and Net::DNS (under CI their absence fails).
pub fn have_mail_dkim() -> bool {
    let ok = Command::new("perl")
        .args(["-MMail::DKIM::Verifier", "-MNet::DNS", "-e", "1"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !super::ci(),
            "Mail::DKIM and Net::DNS (libmail-dkim-perl) are required under CI"
        );
        eprintln!("skipped: Mail::DKIM (libmail-dkim-perl) not found");
    }
    ok
}

/// Mail::DKIM on `msg`; `None` when it is missing outside CI.
pub fn mail_dkim(knot: &Knot, msg: &[u8]) -> Option<Vec<Verdict>> {
    if !have_mail_dkim() {
        return None;
    }
    let (_dir, path) = message_file(msg);
    let run = run_bounded(
        Command::new("perl")
            .args(["-e", MAIL_DKIM_VERIFY, &knot.addr().port().to_string()])
            .arg(&path),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(run.code(), 0, "Mail::DKIM failed:\n{}", run.stderr());
    Some(verdicts(&run))
}

/// The `dkim=` results of an Authentication-Results value, each with the
/// selector (`header.s`, or the signature whose `b=` starts with
/// `header.b`).
pub fn ar_results(value: &str, sigs: &[BTreeMap<String, String>]) -> Vec<Verdict> {
    // Drop comments (they may hold ';'), then split into resinfo entries.
    let mut plain = String::new();
    let mut depth = 0usize;
    let mut comments = Vec::new();
    let mut comment = String::new();
    for c in value.chars() {
        match c {
            '(' => {
                depth += 1;
                if depth == 1 {
                    comment.clear();
                    continue;
                }
            }
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    comments.push(comment.clone());
                    plain.push_str(&format!("\u{1}{}\u{1}", comments.len() - 1));
                    continue;
                }
            }
            _ => {}
        }
        if depth > 0 {
            comment.push(c);
        } else {
            plain.push(c);
        }
    }
    let mut out = Vec::new();
    for entry in plain.split(';').skip(1) {
        let words: Vec<&str> = entry.split_whitespace().collect();
        let Some(result) = words.iter().find_map(|w| w.strip_prefix("dkim=")) else {
            continue;
        };
        let prop = |p: &str| {
            words
                .iter()
                .find_map(|w| w.strip_prefix(p))
                .map(str::to_string)
        };
        let selector = prop("header.s=").or_else(|| {
            let b = prop("header.b=")?;
            let b = b.trim_matches('"');
            sigs.iter()
                .find(|s| s.get("b").is_some_and(|sb| sb.starts_with(b)))
                .and_then(|s| s.get("s").cloned())
        });
        let detail: Vec<String> = entry
            .split('\u{1}')
            .skip(1)
            .step_by(2)
            .filter_map(|i| i.parse::<usize>().ok())
            .map(|i| comments[i].clone())
            .collect();
        out.push(Verdict {
            selector: selector.unwrap_or_else(|| "?".into()),
            result: result.to_string(),
            detail: detail.join("; ").replace(' ', "_"),
        });
    }
    out
}

/// OpenDKIM in verify mode on a unix socket in a temporary directory,
/// resolving through Knot; stopped by PID.
pub struct OpenDkimVerifier {
    child: Child,
    dir: tempfile::TempDir,
    milter: String,
}

impl OpenDkimVerifier {
    /// `None` when opendkim or miltertest is missing outside CI.
    pub fn start(knot: &Knot) -> Option<OpenDkimVerifier> {
        if !super::require_tool("opendkim") || !have_miltertest() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("opendkim.sock");
        let conf = dir.path().join("opendkim.conf");
        std::fs::write(
            &conf,
            format!(
                "Mode v\n\
                 Socket local:{}\n\
                 Nameservers 127.0.0.1@{}\n\
                 AuthservID verifier.example\n\
                 AlwaysAddARHeader yes\n\
                 Syslog no\n\
                 SoftwareHeader no\n\
                 UMask 007\n\
                 DNSTimeout 5\n",
                sock.display(),
                knot.addr().port()
            ),
        )
        .unwrap();
        let log = dir.path().join("opendkim.log");
        let child = Command::new(super::which("opendkim").unwrap())
            .arg("-f")
            .arg("-x")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(dir.path().join("opendkim.err")).unwrap())
            .spawn()
            .expect("start opendkim");
        let mut od = OpenDkimVerifier {
            child,
            milter: format!("unix:{}", sock.display()),
            dir,
        };
        assert!(
            wait_for_socket(&sock, &mut od.child, Duration::from_secs(20)),
            "opendkim did not start:\n{}",
            od.log()
        );
        Some(od)
    }

    fn log(&self) -> String {
        ["opendkim.log", "opendkim.err"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect()
    }

    /// OpenDKIM's verdict per signature, from the Authentication-Results
    /// it adds.
    pub fn verify(&self, msg: &Msg) -> Vec<Verdict> {
        let outcome = Conversation::incoming(&self.milter, msg).run();
        assert_eq!(
            outcome.values.len(),
            1,
            "OpenDKIM added no (or several) Authentication-Results:\n{}\n{}",
            outcome.transcript,
            self.log()
        );
        ar_results(&show(&outcome.values[0]), &msg.signatures())
    }
}

impl Drop for OpenDkimVerifier {
    fn drop(&mut self) {
        // libmilter takes about five seconds to wind down after SIGTERM;
        // a verifier has nothing to lose, so one second, then SIGKILL.
        stop_child(&mut self.child, Duration::from_secs(1));
    }
}

/// Every verifier's verdicts on one message.
pub struct Judged {
    what: String,
    by: Vec<(&'static str, Vec<Verdict>)>,
}

impl std::fmt::Display for Judged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}:", self.what)?;
        for (who, vs) in &self.by {
            writeln!(f, "  {who}: {vs:?}")?;
        }
        Ok(())
    }
}

/// Has every available verifier judge `msg`.
pub fn judge(what: &str, knot: &Knot, opendkim: Option<&OpenDkimVerifier>, msg: &Msg) -> Judged {
    let bytes = msg.to_bytes();
    let mut by = Vec::new();
    if let Some(v) = dkimpy(knot, &bytes) {
        by.push(("dkimpy", v));
    }
    if let Some(v) = mail_dkim(knot, &bytes) {
        by.push(("Mail::DKIM", v));
    }
    if let Some(od) = opendkim {
        by.push(("OpenDKIM", od.verify(msg)));
    }
    Judged {
        what: what.to_string(),
        by,
    }
}

/// Mail::DKIM in Debian 12 cannot check Ed25519 (RFC 8463): it reports
/// such signatures (of `msg`) as not verifiable, never as passing or
/// failing on their content.
fn mail_dkim_lacks_ed25519(v: &Verdict, msg: &Msg) -> bool {
    let ed25519 = msg.signatures().iter().any(|s| {
        s.get("s") == Some(&v.selector) && s.get("a").map(String::as_str) == Some("ed25519-sha256")
    });
    ed25519 && v.result != "pass" && v.result != "fail"
}

/// Asserts that every verifier passes every signature of `msg` (one per
/// selector in `selectors`).
pub fn assert_all_pass(j: &Judged, selectors: &[&str], msg: &Msg) {
    let context = || format!("{j}--- message\n{}", show(&msg.to_bytes()));
    for (who, vs) in &j.by {
        let mut got: Vec<&str> = vs.iter().map(|v| v.selector.as_str()).collect();
        got.sort_unstable();
        let mut want = selectors.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{who} saw other signatures\n{}", context());
        for v in vs {
            if *who == "Mail::DKIM" && mail_dkim_lacks_ed25519(v, msg) {
                eprintln!("note: Mail::DKIM cannot verify Ed25519: {v:?}");
                continue;
            }
            assert_eq!(
                v.result,
                "pass",
                "{who} does not pass s={}\n{}",
                v.selector,
                context()
            );
        }
    }
}

/// Asserts that no verifier passes any signature of `msg`, and that each
/// one that can check the algorithm says "fail".
pub fn assert_all_fail(j: &Judged, signatures: usize, msg: &Msg) {
    let context = || format!("{j}--- message\n{}", show(&msg.to_bytes()));
    for (who, vs) in &j.by {
        assert_eq!(vs.len(), signatures, "{who}\n{}", context());
        for v in vs {
            assert_ne!(
                v.result,
                "pass",
                "{who} passes a changed message\n{}",
                context()
            );
            if *who == "Mail::DKIM" && mail_dkim_lacks_ed25519(v, msg) {
                continue;
            }
            assert_eq!(v.result, "fail", "{who} on s={}\n{}", v.selector, context());
        }
    }
}
