//! The four independent verifiers of the signing matrix, each run once
//! over a whole batch of signed messages (one python, one perl, a few
//! miltertest runs, mail-auth in this process), each asking knotd on
//! 127.0.0.1:PORT for the keys.
//!
//! Every message is a file in wire form (CRLF line ends). Each verifier
//! returns, per message, one [`Verdict`] per signature it saw, or the
//! reason it could not be given the message at all.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::support::message::tags;
use crate::support::miltertest::{have_miltertest, lua_str};
use crate::support::proc::{run_bounded, stop_child, wait_for_socket};
use crate::support::verifiers::{ar_results, have_mail_dkim, python_with_dkimpy};
use crate::support::{require_tool, which};

/// One verifier's word on one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `s=` of the signature.
    pub selector: String,
    /// The verifier's result word (pass, fail, invalid, permerror, ...).
    pub word: String,
    /// Its explanation, if any.
    pub detail: String,
}

/// Per message: the verdicts, or why the verifier was not given it.
pub type Judgement = Result<Vec<Verdict>, String>;

/// Reads `INDEX\tSELECTOR\tWORD\tDETAIL` lines (and `INDEX\tEND` after
/// each message) into one list per message. Selector `*`: the verifier
/// refused the message as a whole.
fn batch_lines(stdout: &str, messages: usize, who: &str) -> Vec<Judgement> {
    let mut out: Vec<Option<Vec<Verdict>>> = vec![None; messages];
    for line in stdout.lines() {
        let f: Vec<&str> = line.splitn(4, '\t').collect();
        let i: usize = f[0]
            .parse()
            .unwrap_or_else(|_| panic!("{who}: odd line {line:?}"));
        let slot = out[i].get_or_insert_with(Vec::new);
        if f.get(1) == Some(&"END") {
            continue;
        }
        assert_eq!(f.len(), 4, "{who}: odd line {line:?}");
        slot.push(Verdict {
            selector: f[1].to_string(),
            word: f[2].to_string(),
            detail: f[3].to_string(),
        });
    }
    out.into_iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| format!("{who} said nothing about message {i}")))
        .collect()
}

fn manifest(dir: &Path, files: &[PathBuf]) -> PathBuf {
    let path = dir.join("manifest");
    let mut text = Vec::new();
    for f in files {
        text.extend_from_slice(f.as_os_str().as_bytes());
        text.push(b'\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// dkimpy (Debian's python3-dkim) over every file: `verify(idx=N)` per
/// signature, keys through dnspython from knotd.
const DKIMPY: &str = r#"
import sys
import dkim, dkim.util
import dns.resolver
port, manifest = int(sys.argv[1]), sys.argv[2]
r = dns.resolver.Resolver(configure=False)
r.nameservers = ['127.0.0.1']
r.port = port
r.lifetime = 10

def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    try:
        answer = r.resolve(name, 'TXT')
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    if len(answer) != 1:
        return None
    return b''.join(answer[0].strings)

def clean(s):
    return ' '.join(str(s).split()) or '-'

for i, path in enumerate(open(manifest, 'rb').read().decode().splitlines()):
    msg = open(path, 'rb').read()
    try:
        d = dkim.DKIM(msg)
    except dkim.DKIMException as e:
        # The message is refused as a whole: a verdict for every signature.
        print('%d\t*\terror\t%s\n%d\tEND' % (i, clean(e), i))
        continue
    sigs = [v for (k, v) in d.headers if k.strip().lower() == b'dkim-signature']
    for idx, sig in enumerate(sigs):
        detail = '-'
        try:
            ok = d.verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.DKIMException as e:
            ok, detail = False, clean(e)
        selector = dkim.util.parse_tag_value(sig).get(b's', b'?').decode()
        print('%d\t%s\t%s\t%s' % (i, selector, 'pass' if ok else 'fail', detail))
    print('%d\tEND' % i)
    sys.stdout.flush()
"#;

/// dkimpy's verdicts; `None` when it is missing outside CI.
pub fn dkimpy(port: u16, files: &[PathBuf]) -> Option<Vec<Judgement>> {
    let python = python_with_dkimpy()?;
    let dir = tempfile::tempdir().unwrap();
    let list = manifest(dir.path(), files);
    let run = run_bounded(
        Command::new(python)
            .args(["-c", DKIMPY, &port.to_string()])
            .arg(&list),
        None,
        Duration::from_secs(600),
    );
    assert_eq!(run.code(), 0, "dkimpy failed:\n{}", run.stderr());
    Some(batch_lines(&run.stdout(), files.len(), "dkimpy"))
}

/// Mail::DKIM (Debian's libmail-dkim-perl) over every file, fed as it is
/// (the files are CRLF already), keys through Net::DNS from knotd.
const MAIL_DKIM: &str = r#"
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Net::DNS;
my ($port, $manifest) = @ARGV;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => ['127.0.0.1'], port => $port, recurse => 0,
    udp_timeout => 10, tcp_timeout => 10, retry => 1));
$| = 1;
open my $list, '<:raw', $manifest or die "$manifest: $!";
my $i = 0;
while (my $path = <$list>) {
    chomp $path;
    my $dkim = Mail::DKIM::Verifier->new;
    open my $fh, '<:raw', $path or die "$path: $!";
    while (read($fh, my $chunk, 65536)) {
        $dkim->PRINT($chunk);
    }
    close $fh;
    $dkim->CLOSE;
    for my $s ($dkim->signatures) {
        my $detail = $s->result_detail // '-';
        $detail =~ s/\s+/ /g;
        printf "%d\t%s\t%s\t%s\n", $i, $s->selector // '?', $s->result, $detail;
    }
    print "$i\tEND\n";
    $i++;
}
"#;

/// Mail::DKIM's verdicts; `None` when it is missing outside CI.
pub fn mail_dkim(port: u16, files: &[PathBuf]) -> Option<Vec<Judgement>> {
    if !have_mail_dkim() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let list = manifest(dir.path(), files);
    let run = run_bounded(
        Command::new("perl")
            .args(["-e", MAIL_DKIM, &port.to_string()])
            .arg(&list),
        None,
        Duration::from_secs(600),
    );
    assert_eq!(run.code(), 0, "Mail::DKIM failed:\n{}", run.stderr());
    Some(batch_lines(&run.stdout(), files.len(), "Mail::DKIM"))
}

/// mail-auth 0.13's own verifier (`MessageAuthenticator::verify_dkim`), in
/// this process, its hickory resolver pointed at knotd.
pub fn mail_auth(port: u16, files: &[PathBuf]) -> Vec<Judgement> {
    use hickory_resolver::TokioResolver;
    use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut udp = ConnectionConfig::udp();
        udp.port = port;
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = port;
        let server = NameServerConfig::new([127, 0, 0, 1].into(), true, vec![udp, tcp]);
        let mut builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![server]),
            TokioRuntimeProvider::default(),
        );
        builder.options_mut().timeout = Duration::from_secs(10);
        let auth = Arc::new(MessageAuthenticator(
            builder.build().expect("hickory resolver"),
        ));
        let mut out = Vec::new();
        for path in files {
            let bytes = std::fs::read(path).unwrap();
            let Some(message) = AuthenticatedMessage::parse(&bytes) else {
                out.push(Err("mail-auth cannot parse the message".to_string()));
                continue;
            };
            let verdicts = auth
                .verify_dkim(&message)
                .await
                .iter()
                .map(|o| {
                    let (word, detail) = match o.result() {
                        DkimResult::Pass => ("pass", String::from("-")),
                        DkimResult::Neutral(e) => ("neutral", e.to_string()),
                        DkimResult::Fail(e) => ("fail", e.to_string()),
                        DkimResult::PermError(e) => ("permerror", e.to_string()),
                        DkimResult::TempError(e) => ("temperror", e.to_string()),
                        DkimResult::None => ("none", String::from("-")),
                    };
                    Verdict {
                        selector: o.signature().map_or("?".into(), |s| s.s.clone()),
                        word: word.to_string(),
                        detail,
                    }
                })
                .collect();
            out.push(Ok(verdicts));
        }
        out
    })
}

/// Most bytes miltertest 1.6.0 puts into one header command: `mt.header`
/// copies name, value and a space into a 1024-byte stack buffer.
const MILTERTEST_HEADER_MAX: usize = 1000;

/// Body bytes per `mt.bodyfile` call (libmilter's limit is 65535 per
/// command).
const BODY_CHUNK: usize = 65_000;

/// OpenDKIM 2.11 in verify mode on a unix socket, resolving through
/// knotd; fed by miltertest, its Authentication-Results read back.
pub struct OpenDkim {
    child: Child,
    dir: tempfile::TempDir,
}

impl OpenDkim {
    /// `None` when opendkim or miltertest is missing outside CI.
    pub fn start(port: u16) -> Option<OpenDkim> {
        if !require_tool("opendkim") || !have_miltertest() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("opendkim.sock");
        let conf = dir.path().join("opendkim.conf");
        std::fs::write(
            &conf,
            format!(
                "Mode v\nSocket local:{}\nNameservers 127.0.0.1@{port}\n\
                 AuthservID verifier.example\nAlwaysAddARHeader yes\nSyslog no\n\
                 SoftwareHeader no\nUMask 007\nDNSTimeout 10\n",
                sock.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(which("opendkim").expect("opendkim"))
            .arg("-f")
            .arg("-x")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("opendkim.err")).unwrap())
            .spawn()
            .expect("start opendkim");
        assert!(
            wait_for_socket(&sock, &mut child, Duration::from_secs(20)),
            "opendkim did not start: {}",
            std::fs::read_to_string(dir.path().join("opendkim.err")).unwrap_or_default()
        );
        Some(OpenDkim { child, dir })
    }

    /// OpenDKIM's verdicts on every file, a batch of messages per
    /// miltertest run, one milter connection per message.
    pub fn judge(&self, files: &[PathBuf]) -> Vec<Judgement> {
        let sock = self.dir.path().join("opendkim.sock");
        let mut out = Vec::with_capacity(files.len());
        for (n, batch) in files.chunks(64).enumerate() {
            let work = tempfile::tempdir().unwrap();
            let mut script = String::new();
            let _ = writeln!(
                script,
                "local out = {}\n\
                 local function put(name, text)\n  \
                   local f = assert(io.open(out .. \"/\" .. name, \"wb\"))\n  \
                   f:write(text)\n  f:close()\nend",
                lua_str(work.path().as_os_str().as_bytes())
            );
            let mut refused = BTreeMap::new();
            for (i, file) in batch.iter().enumerate() {
                let message = std::fs::read(file).unwrap();
                match conversation(&sock, &message, work.path(), i) {
                    Ok(lua) => script.push_str(&lua),
                    Err(why) => {
                        refused.insert(i, why);
                    }
                }
            }
            let path = work.path().join("batch.lua");
            std::fs::write(&path, &script).unwrap();
            let run = run_bounded(
                Command::new(which("miltertest").expect("miltertest"))
                    .arg("-s")
                    .arg(&path),
                None,
                Duration::from_secs(600),
            );
            assert_eq!(
                run.code(),
                0,
                "miltertest batch {n} failed:\n{}{}\n--- opendkim\n{}",
                run.stdout(),
                run.stderr(),
                std::fs::read_to_string(self.dir.path().join("opendkim.err")).unwrap_or_default()
            );
            for (i, file) in batch.iter().enumerate() {
                if let Some(why) = refused.remove(&i) {
                    out.push(Err(why));
                    continue;
                }
                let read = |name: &str| std::fs::read(work.path().join(format!("{i}.{name}")));
                // OpenDKIM ends a message it has judged with accept.
                let reply =
                    String::from_utf8_lossy(&read("reply").unwrap_or_default()).into_owned();
                let stage =
                    String::from_utf8_lossy(&read("stage").unwrap_or_default()).into_owned();
                if stage != "eom" || (reply != "c" && reply != "a") {
                    out.push(Err(format!(
                        "OpenDKIM answered {reply:?} at {stage}, no verdict"
                    )));
                    continue;
                }
                let Ok(ar) = read("ar") else {
                    out.push(Err("OpenDKIM added no Authentication-Results".into()));
                    continue;
                };
                let message = std::fs::read(file).unwrap();
                let sigs: Vec<BTreeMap<String, String>> = fields(&message)
                    .iter()
                    .filter(|(n, _)| n.trim_ascii_end().eq_ignore_ascii_case(b"DKIM-Signature"))
                    .map(|(_, v)| tags(&String::from_utf8_lossy(v)))
                    .collect();
                let verdicts = ar_results(&String::from_utf8_lossy(&ar), &sigs)
                    .into_iter()
                    .map(|v| Verdict {
                        selector: v.selector,
                        word: v.result,
                        detail: v.detail.replace('_', " "),
                    })
                    .collect();
                out.push(Ok(verdicts));
            }
        }
        out
    }
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        // libmilter winds down slowly after SIGTERM; a verifier has nothing
        // to lose.
        stop_child(&mut self.child, Duration::from_secs(1));
    }
}

/// Header fields as (name, value after the colon with LF folds, as an MTA
/// hands them to a milter).
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The header fields of a wire-form message.
pub fn fields(message: &[u8]) -> Fields {
    split(message).0
}

/// [`fields`] and the body.
pub fn split(message: &[u8]) -> (Fields, Vec<u8>) {
    let (head, body) = match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&message[..at + 2], message[at + 4..].to_vec()),
        None => (message, Vec::new()),
    };
    let mut out: Fields = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if matches!(line[0], b' ' | b'\t') {
            let last = out.last_mut().expect("a continuation line first");
            last.1.push(b'\n');
            last.1.extend_from_slice(line);
        } else {
            let colon = line.iter().position(|&b| b == b':').expect("a header line");
            out.push((line[..colon].to_vec(), line[colon + 1..].to_vec()));
        }
    }
    (out, body)
}

/// The Lua for one message over its own connection: headers as literals
/// (three-digit decimal escapes, [`lua_str`]), the body from a file with
/// `mt.bodyfile` (binary safe, sent in 64 KiB chunks). Err when
/// miltertest cannot carry the message.
fn conversation(sock: &Path, message: &[u8], work: &Path, i: usize) -> Result<String, String> {
    let (headers, body) = split(message);
    // mt.bodyfile sends what it reads in 64 KiB reads as one body command
    // each, and libmilter refuses commands over 65535 bytes: one file per
    // chunk below that (and one, empty, for an empty body).
    let mut body_files = Vec::new();
    for (n, chunk) in body.chunks(BODY_CHUNK).enumerate() {
        let f = work.join(format!("{i}.body.{n}"));
        std::fs::write(&f, chunk).unwrap();
        body_files.push(f);
    }
    if body_files.is_empty() {
        let f = work.join(format!("{i}.body.0"));
        std::fs::write(&f, b"").unwrap();
        body_files.push(f);
    }
    let mut s = format!(
        "do\n\
         local conn = mt.connect({sock})\n\
         if conn == nil then error(\"cannot connect to OpenDKIM\") end\n\
         local e = mt.negotiate(conn, nil, nil, nil)\n\
         if e ~= nil then error(\"negotiate: \" .. e) end\n\
         local ok, skip = true, false\n\
         local function step(what, err)\n  \
           if err ~= nil then error(what .. \": \" .. err) end\n  \
           local r = mt.getreply(conn)\n  \
           if what == \"body\" and r == SMFIR_SKIP then skip = true return end\n  \
           if r ~= SMFIR_CONTINUE then\n    \
             put(\"{i}.reply\", string.char(r))\n    put(\"{i}.stage\", what)\n    ok = false\n  \
           end\n\
         end\n\
         mt.macro(conn, SMFIC_CONNECT, \"j\", \"mx.example.net\", \"{{daemon_name}}\", \"smtpd\")\n\
         step(\"conninfo\", mt.conninfo(conn, \"client.example\", \"192.0.2.25\"))\n\
         mt.macro(conn, SMFIC_MAIL, \"i\", \"4ABCDEF\")\n\
         if ok then step(\"mailfrom\", mt.mailfrom(conn, \"<sender@example.com>\")) end\n\
         if ok then step(\"rcptto\", mt.rcptto(conn, \"<rcpt@example.net>\")) end\n",
        sock = lua_str(format!("unix:{}", sock.display()).as_bytes()),
    );
    for (name, value) in &headers {
        if name.len() + value.len() >= MILTERTEST_HEADER_MAX {
            return Err(format!(
                "miltertest cannot send a {}-byte {} field (its 1 KiB header buffer)",
                name.len() + value.len() + 1,
                String::from_utf8_lossy(name)
            ));
        }
        // miltertest puts the space after the colon back itself when the
        // milter negotiated SMFIP_HDR_LEADSPC, as OpenDKIM does; a field
        // without that space cannot be sent byte for byte (the limitation
        // is recorded where it matters, in matrix.rs).
        let bare = value.strip_prefix(b" ").unwrap_or(value);
        let _ = writeln!(
            s,
            "if ok then step(\"header\", mt.header(conn, {}, {})) end",
            lua_str(name),
            lua_str(bare)
        );
    }
    let _ = writeln!(s, "if ok then step(\"eoh\", mt.eoh(conn)) end");
    for f in &body_files {
        let _ = writeln!(
            s,
            "if ok and not skip then step(\"body\", mt.bodyfile(conn, {})) end",
            lua_str(f.as_os_str().as_bytes())
        );
    }
    let _ = write!(
        s,
        "if ok then\n  \
           e = mt.eom(conn)\n  \
           if e ~= nil then error(\"eom: \" .. e) end\n  \
           put(\"{i}.reply\", string.char(mt.getreply(conn)))\n  \
           put(\"{i}.stage\", \"eom\")\n  \
           local ar = mt.getheader(conn, \"Authentication-Results\", 0)\n  \
           if ar ~= nil then put(\"{i}.ar\", ar) end\n\
         end\n\
         mt.disconnect(conn)\n\
         end\n"
    );
    Ok(s)
}
