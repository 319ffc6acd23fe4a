//! Interoperability: every signature `dkimctl serve` makes is judged by
//! independent verifiers, and the engine is driven by real MTA-side
//! software.
//!
//! - Keys come from `dkimctl keys generate`, their TXT records from
//!   `dkimctl dns records --json`, served by a private Knot on loopback
//!   (the [`Knot`] harness of `tests/dns.rs`).
//! - The signer is the real binary (`dkimctl serve`), driven by Debian's
//!   `miltertest` (OpenDKIM's MTA simulator, Lua scripts): a signing
//!   conversation from an authenticated client, the inserted
//!   DKIM-Signature fields read back with `mt.getheader`.
//! - Verifiers, each asking Knot for the keys: dkimpy (`python3-dkim`, a
//!   `dnsfunc` with dnspython, or kdig without it), Mail::DKIM
//!   (`libmail-dkim-perl`, `Net::DNS` pointed at Knot; RSA only: Debian
//!   12's version has no Ed25519), OpenDKIM itself (`opendkim` in verify
//!   mode with `Nameservers 127.0.0.1@PORT`, fed by `miltertest`, its
//!   Authentication-Results read back), and the engine's own verify
//!   conversation. A changed body or Subject fails in all of them.
//! - A private Postfix on 127.0.0.1 (config, queue and data directories in
//!   a temporary directory, no chroot, delivery into files through a
//!   `pipe` transport) whose milter settings are the ones `dkimctl apply`
//!   merges into its main.cf. One message over SMTP (swaks) and one through
//!   Postfix's `sendmail`, both delivered and verified; once over loopback
//!   TCP, once over a unix socket.
//!
//! Messages carry folded headers and raw 8-bit bytes (a Latin-1 Subject
//! and body). Every process is started by the test and stopped by PID (or,
//! for Postfix, by its configuration directory); every wait has a deadline.
//!
//! What Debian 12's miltertest (1.6.0) does that its manual page does not
//! say, and the scripts here allow for:
//! - When the milter asks for `SMFIP_HDR_LEADSPC`, `mt.header` puts a
//!   space before the value itself (as Postfix does), so values are given
//!   without it; passing " value" would send two spaces.
//! - `mt.negotiate(conn, version, protocol, actions)`: protocol bits come
//!   before actions. Only an explicit `mt.negotiate` records the milter's
//!   `SMFIP_NR_*` answer; without it miltertest waits for replies that
//!   never come.
//! - Header commands and replies pass through 1 KiB stack buffers: header
//!   fields sent stay well below that (checked), and so must what the
//!   milter adds (an RSA-2048 DKIM-Signature is about 600 bytes).

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dns::{Knot, free_port};
use crate::support::{self, Run, TempRoot};

// ---- the message -----------------------------------------------------------

/// A message as an MTA holds it: header fields (name, value after the
/// colon with its leading space, folds as LF + white space, the way
/// Postfix hands them to a milter) and a CRLF body.
#[derive(Debug, Clone)]
struct Msg {
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

/// The message every conversation sends: folded To and Subject, raw
/// Latin-1 bytes in Subject and body, trailing white space and blank lines
/// that canonicalization treats specially.
fn message() -> Msg {
    let h = |n: &str, v: &[u8]| (n.as_bytes().to_vec(), v.to_vec());
    Msg {
        headers: vec![
            h("From", b" =?iso-8859-1?q?Jos=E9?= <jose@example.com>"),
            h(
                "To",
                b" Someone <someone@example.net>,\n\tOther <other@example.net>",
            ),
            h("Subject", b" Caf\xe9  cr\xe8me\n\t br\xfbl\xe9e  "),
            h("Date", b" Mon, 01 Jan 2024 10:00:00 +0000"),
            h("Message-ID", b" <interop-1@example.com>"),
            h("MIME-Version", b" 1.0"),
            h("Content-Type", b" text/plain; charset=iso-8859-1"),
            h("Content-Transfer-Encoding", b" 8bit"),
        ],
        body: b"Ol\xe9,\r\n\r\nla cr\xe8me  br\xfbl\xe9e \t\r\nest pr\xeate.\r\n\r\n\r\n".to_vec(),
    }
}

/// Every LF not preceded by CR becomes CRLF.
fn crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + 16);
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' && (i == 0 || b[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

impl Msg {
    /// The message on the wire: CRLF line ends.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in &self.headers {
            out.extend_from_slice(n);
            out.push(b':');
            out.extend_from_slice(&crlf(v));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&crlf(&self.body));
        out
    }

    /// Splits a message (CRLF or LF line ends) back into fields, as an MTA
    /// does before talking to a milter.
    fn parse(text: &[u8]) -> Msg {
        let text = crlf(text);
        let split = text
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of header in:\n{}", show(&text)));
        let (head, body) = (&text[..split + 2], &text[split + 4..]);
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for line in head.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                let last = headers.last_mut().expect("continuation line first");
                last.1.push(b'\n');
                last.1.extend_from_slice(line);
            } else {
                let colon = line
                    .iter()
                    .position(|&b| b == b':')
                    .unwrap_or_else(|| panic!("not a header line: {}", show(line)));
                headers.push((line[..colon].to_vec(), line[colon + 1..].to_vec()));
            }
        }
        Msg {
            headers,
            body: body.to_vec(),
        }
    }

    fn values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The signatures, top first, as tag maps.
    fn signatures(&self) -> Vec<BTreeMap<String, String>> {
        self.values("DKIM-Signature")
            .iter()
            .map(|v| tags(v))
            .collect()
    }

    /// A copy whose body differs in one byte ("crème" becomes "crèma").
    fn body_changed(&self) -> Msg {
        let mut m = self.clone();
        let at = find(&m.body, b"cr\xe8me").expect("body has cr\\xe8me") + 4;
        m.body[at] = b'a';
        m
    }

    /// A copy whose Subject reads "Cof..." instead of "Caf...".
    fn subject_changed(&self) -> Msg {
        let mut m = self.clone();
        let subject = m
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"Subject"))
            .expect("a Subject");
        let at = find(&subject.1, b"Caf").expect("Subject has Caf") + 1;
        subject.1[at] = b'o';
        m
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A tag=value list (DKIM-Signature) as a map; values without white space.
fn tags(value: &str) -> BTreeMap<String, String> {
    value
        .split(';')
        .filter_map(|t| {
            let (k, v) = t.split_once('=')?;
            let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            Some((k.trim().to_string(), v))
        })
        .collect()
}

/// The canonicalization a signature states, in full (`c=` defaults).
fn canon_of(sig: &BTreeMap<String, String>) -> String {
    match sig.get("c").map(String::as_str) {
        None => "simple/simple".into(),
        Some(c) if !c.contains('/') => format!("{c}/simple"),
        Some(c) => c.to_string(),
    }
}

// ---- running things with deadlines -----------------------------------------------

/// Runs a command with stdin from `input` (or nothing), stopping it by PID
/// when it outlives `limit`.
fn run_bounded(cmd: &mut Command, input: Option<&Path>, limit: Duration) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    cmd.stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap());
    match input {
        Some(p) => cmd.stdin(File::open(p).unwrap()),
        None => cmd.stdin(Stdio::null()),
    };
    let text = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("failed to run {text}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{text} did not finish within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        cmd: text,
        out: Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        },
    }
}

/// Polls `ready` every 50 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ready()
}

/// Sends SIGTERM to our own child by PID, waits up to `limit`, then
/// SIGKILL.
fn stop_child(child: &mut Child, limit: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    if !wait_until(limit, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

// ---- dkimctl: configuration, keys, records -----------------------------------------------

const RSA: (&str, &str) = ("rsa1", "rsa-sha256");
const ED: (&str, &str) = ("ed1", "ed25519-sha256");

/// A dkim.toml for example.com with the given keys (selector, algorithm).
fn dkim_toml(
    mode: &str,
    canon: &str,
    keys: &[(&str, &str)],
    socket: &str,
    mta: &str,
    extra: &str,
) -> String {
    let algorithms: Vec<String> = keys.iter().map(|(_, a)| format!("\"{a}\"")).collect();
    let key_tables: String = keys
        .iter()
        .map(|(s, a)| format!("\n[[domain.key]]\nselector = \"{s}\"\nalgorithm = \"{a}\"\n"))
        .collect();
    format!(
        r#"[service]
engine = "bundled"
# No such user on the host: as root the engine stays root (--allow-root)
# and reads the keys apply chowned to the root's own service user.
user = "dkimctl-interop"
mode = "{mode}"
authserv_id = "mx.example.com"
socket = "{socket}"

[defaults]
canonicalization = "{canon}"
algorithms = [{}]

[[domain]]
name = "example.com"
{key_tables}
[mta]
{mta}
{extra}
"#,
        algorithms.join(", ")
    )
}

/// `dkimctl dns records --json` as zone-file text (what an admin pastes).
fn published_zone(root: &TempRoot) -> String {
    let run = root.dkimctl(&["dns", "records", "--json"]).expect(0);
    let json: Value = serde_json::from_str(&run.stdout()).expect("dns records --json");
    json["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| format!("{}\n", r["zone"].as_str().expect("zone")))
        .collect()
}

/// A root with keys for `keys` generated by `dkimctl keys generate`, and a
/// Knot serving the records `dkimctl dns records` prints. `None` when a
/// tool is missing outside CI.
fn keys_and_dns(canon: &str, keys: &[(&str, &str)]) -> Option<(TempRoot, Knot)> {
    let root = TempRoot::new(&dkim_toml(
        "sign",
        canon,
        keys,
        "inet:127.0.0.1:8891",
        "kind = \"none\"",
        "",
    ));
    root.dkimctl(&["keys", "generate"]).expect(0);
    let knot = Knot::start(&published_zone(&root))?;
    Some((root, knot))
}

// ---- dkimctl serve ---------------------------------------------------------------

/// `dkimctl serve` as a child process, stopped with SIGTERM by PID.
struct Serve {
    child: Child,
    log: PathBuf,
    /// The socket in miltertest's notation.
    milter: String,
}

impl Serve {
    /// Starts `dkimctl --root ROOT serve [--socket SOCKET]` and waits until
    /// it listens. `Err(log)` if it exits first.
    fn try_start(root: &TempRoot, socket: Option<&str>) -> Result<Serve, String> {
        let log = root.join(&format!("serve-{}.log", unique()));
        let mut cmd = Command::new(support::bin());
        cmd.args(["--root", &root.root_arg(), "serve"]);
        if let Some(s) = socket {
            cmd.args(["--socket", s]);
        }
        if support::is_root() {
            // The service user exists only in the temporary root.
            cmd.arg("--allow-root");
        }
        cmd.env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        let child = cmd.spawn().expect("start dkimctl serve");
        let mut serve = Serve {
            child,
            log,
            milter: String::new(),
        };
        let up = wait_until(Duration::from_secs(20), || {
            serve.log_text().contains("listening on")
                || matches!(serve.child.try_wait(), Ok(Some(_)))
        });
        let text = serve.log_text();
        if !up || !text.contains("listening on") {
            stop_child(&mut serve.child, Duration::from_secs(5));
            return Err(serve.log_text());
        }
        // "listening on unix:/path (...)" or "listening on inet:HOST:PORT (...)".
        let at = text.find("listening on ").unwrap() + "listening on ".len();
        let addr = text[at..].split_whitespace().next().unwrap().to_string();
        serve.milter = if let Some(path) = addr.strip_prefix("unix:") {
            format!("unix:{path}")
        } else {
            let hostport = addr.strip_prefix("inet:").unwrap_or(&addr);
            let (host, port) = hostport.rsplit_once(':').unwrap();
            format!("inet:{port}@{host}")
        };
        Ok(serve)
    }

    /// Starts the engine on a fresh unix socket in the root or a free
    /// loopback port (the socket given with `--socket`), retrying when the
    /// port was taken in between.
    fn start(root: &TempRoot, unix: bool) -> Serve {
        let mut last = String::new();
        for _ in 0..5 {
            let socket = if unix {
                format!(
                    "unix:{}",
                    root.join(&format!("milter-{}.sock", unique())).display()
                )
            } else {
                format!("inet:127.0.0.1:{}", free_port())
            };
            match Serve::try_start(root, Some(&socket)) {
                Ok(s) => return s,
                Err(log) => last = log,
            }
        }
        panic!("dkimctl serve did not start:\n{last}");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(10));
    }
}

/// A number unique within this process (file names of parallel tests).
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

// ---- miltertest ----------------------------------------------------------------

/// A Lua string literal holding `b` exactly (decimal escapes for anything
/// but printable ASCII).
fn lua_str(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(c as char);
            }
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\{c:03}")),
        }
    }
    s.push('"');
    s
}

/// One MTA-side conversation for miltertest.
struct Conversation<'a> {
    /// The milter's socket (`unix:/path`, `inet:PORT@HOST`).
    milter: &'a str,
    /// The SMTP client's address (`mt.conninfo`).
    client_ip: &'a str,
    /// Macros sent before MAIL (`{auth_authen}` marks a signing session).
    mail_macros: &'a [(&'a str, &'a str)],
    msg: &'a Msg,
    /// The header whose inserted or added values are collected.
    collect: &'a str,
    /// The protocol bits (`SMFIP_*`) offered in option negotiation;
    /// `None`: miltertest's default, everything libmilter knows (as
    /// Postfix offers).
    protocol: Option<u32>,
}

/// What the milter did at end of message.
#[derive(Debug)]
struct Outcome {
    /// The final reply to end of message (`SMFIR_*` letter).
    reply: char,
    /// Whether the milter asked for leading spaces (`SMFIP_HDR_LEADSPC`).
    leading_space: bool,
    /// Whether the milter deleted a field of the collected header.
    deleted: bool,
    /// Values of the collected header the milter added or inserted, in
    /// the order they end up top to bottom when each is inserted first.
    values: Vec<Vec<u8>>,
    /// miltertest's output, for failure messages.
    transcript: String,
}

impl Conversation<'_> {
    fn script(&self, out: &Path) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            r#"local out = {out}
local function put(name, text)
  local f = assert(io.open(out .. "/" .. name, "wb"))
  f:write(text)
  f:close()
end
local conn = mt.connect({milter})
if conn == nil then error("cannot connect to " .. {milter}) end
local e = mt.negotiate(conn, nil, {protocol}, nil)
if e ~= nil then error("negotiate: " .. e) end
if SMFIP_HDR_LEADSPC ~= nil and mt.test_option(conn, SMFIP_HDR_LEADSPC) then
  put("leadspc", "1")
end
local function step(what, err)
  if err ~= nil then error(what .. ": " .. err) end
  local r = mt.getreply(conn)
  if r ~= SMFIR_CONTINUE and not (what == "body" and r == SMFIR_SKIP) then
    error(what .. ": reply " .. string.char(r))
  end
end
mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.net", "{{daemon_name}}", "smtpd")
step("conninfo", mt.conninfo(conn, "client.example", {ip}))
"#,
            out = lua_str(out.as_os_str().as_bytes()),
            milter = lua_str(self.milter.as_bytes()),
            ip = lua_str(self.client_ip.as_bytes()),
            // Debian's miltertest takes (conn, version, protocol, actions),
            // whatever its manual page says.
            protocol = self.protocol.map_or("nil".to_string(), |p| p.to_string()),
        ));
        let mut macros = vec![lua_str(b"i"), lua_str(b"4ABCDEF")];
        for (n, v) in self.mail_macros {
            macros.push(lua_str(n.as_bytes()));
            macros.push(lua_str(v.as_bytes()));
        }
        s.push_str(&format!(
            "mt.macro(conn, SMFIC_MAIL, {})\n\
             step(\"mailfrom\", mt.mailfrom(conn, \"<sender@example.com>\"))\n\
             if not mt.test_option(conn, SMFIP_NORCPT) then\n  \
               step(\"rcptto\", mt.rcptto(conn, \"<rcpt@example.net>\"))\n\
             end\n",
            macros.join(", ")
        ));
        // mt.header takes the value after ": ", as an MTA without
        // SMFIP_HDR_LEADSPC sends it; when the milter asked for
        // HDR_LEADSPC, miltertest puts the space back itself (as Postfix
        // does). So each value must start with exactly that one space.
        for (n, v) in &self.msg.headers {
            let bare = v.strip_prefix(b" ").unwrap_or_else(|| {
                panic!(
                    "miltertest cannot send {}:{} byte for byte (no space after the colon)",
                    show(n),
                    show(v)
                )
            });
            assert!(
                n.len() + v.len() < 1000,
                "miltertest's 1 KiB buffer cannot take {}",
                show(n)
            );
            s.push_str(&format!(
                "step(\"header {}\", mt.header(conn, {}, {}))\n",
                show(n),
                lua_str(n),
                lua_str(bare)
            ));
        }
        s.push_str(&format!(
            r#"step("eoh", mt.eoh(conn))
step("body", mt.bodystring(conn, {body}))
e = mt.eom(conn)
if e ~= nil then error("eom: " .. e) end
put("reply", string.char(mt.getreply(conn)))
if mt.eom_check(conn, MT_HDRDELETE, {name}) then put("deleted", "1") end
local i = 0
while true do
  local h = mt.getheader(conn, {name}, i)
  if h == nil then break end
  put("value." .. i, h)
  i = i + 1
end
mt.disconnect(conn)
"#,
            body = lua_str(&self.msg.body),
            name = lua_str(self.collect.as_bytes()),
        ));
        s
    }

    /// Runs the conversation; panics with miltertest's output when it
    /// fails.
    fn run(&self) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("conversation.lua");
        std::fs::write(&script, self.script(dir.path())).unwrap();
        let run = run_bounded(
            Command::new(support::which("miltertest").expect("miltertest"))
                .arg("-s")
                .arg(&script),
            None,
            Duration::from_secs(60),
        );
        let transcript = format!("{}\n{}{}", run.cmd, run.stdout(), run.stderr());
        assert_eq!(
            run.code(),
            0,
            "miltertest failed talking to {}:\n{transcript}\n--- script\n{}",
            self.milter,
            std::fs::read_to_string(&script).unwrap()
        );
        let reply = std::fs::read(dir.path().join("reply"))
            .ok()
            .and_then(|r| r.first().copied())
            .map_or('?', char::from);
        let mut values = Vec::new();
        while let Ok(v) = std::fs::read(dir.path().join(format!("value.{}", values.len()))) {
            values.push(v);
        }
        Outcome {
            reply,
            leading_space: dir.path().join("leadspc").exists(),
            deleted: dir.path().join("deleted").exists(),
            values,
            transcript,
        }
    }
}

/// Whether miltertest is there (under CI its absence fails).
fn have_miltertest() -> bool {
    support::require_tool("miltertest")
}

/// Has `dkimctl serve` sign `msg` in a conversation from an authenticated
/// client (offering `protocol`, default: all); returns the message as
/// delivered (signatures on top).
fn sign_with_miltertest(serve: &Serve, msg: &Msg, protocol: Option<u32>) -> Msg {
    let outcome = Conversation {
        milter: &serve.milter,
        client_ip: "192.0.2.25",
        mail_macros: &[("{auth_authen}", "jose"), ("{auth_type}", "PLAIN")],
        msg,
        collect: "DKIM-Signature",
        protocol,
    }
    .run();
    assert_eq!(
        outcome.reply,
        'c',
        "end of message not answered SMFIR_CONTINUE:\n{}\n--- engine log\n{}",
        outcome.transcript,
        serve.log_text()
    );
    let offered_leading_space = protocol.is_none_or(|p| p & SMFIP_HDR_LEADSPC != 0);
    assert_eq!(
        outcome.leading_space, offered_leading_space,
        "the engine asks for SMFIP_HDR_LEADSPC when offered"
    );
    let mut signed = msg.clone();
    // getheader's index 0 is the last insertion, which is on top when each
    // is inserted at index 0.
    for v in outcome.values.iter().rev() {
        let mut value = v.clone();
        if !outcome.leading_space {
            // The MTA writes "name: value".
            value.insert(0, b' ');
        }
        signed
            .headers
            .insert(0, (b"DKIM-Signature".to_vec(), value));
    }
    signed
}

// ---- verifiers ---------------------------------------------------------------

/// A verdict on one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    selector: String,
    result: String,
    detail: String,
}

/// A python3 that has dkimpy (Debian's python3-dkim lives in the system
/// interpreter, which a pyenv shim on PATH may hide). Under CI its absence
/// fails.
fn python_with_dkimpy() -> Option<PathBuf> {
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
        assert!(!support::ci(), "dkimpy (python3-dkim) is required under CI");
        eprintln!("skipped: dkimpy (python3-dkim) not found");
    }
    found
}

/// dkimpy's verdict per signature, top first; the keys come from Knot.
const DKIMPY_VERIFY: &str = r#"
import subprocess, sys
import dkim, dkim.util
port, path = sys.argv[1], sys.argv[2]

def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
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

/// dkimpy on `msg`; `None` when it is missing outside CI.
fn dkimpy(knot: &Knot, msg: &[u8]) -> Option<Vec<Verdict>> {
    let python = python_with_dkimpy()?;
    let (_dir, path) = message_file(msg);
    let run = run_bounded(
        Command::new(python)
            .args(["-c", DKIMPY_VERIFY, &knot.addr().port().to_string()])
            .arg(&path),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(run.code(), 0, "dkimpy failed:\n{}", run.stderr());
    Some(verdicts(&run))
}

/// Whether Perl has Mail::DKIM and Net::DNS (under CI their absence fails).
fn have_mail_dkim() -> bool {
    let ok = Command::new("perl")
        .args(["-MMail::DKIM::Verifier", "-MNet::DNS", "-e", "1"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !support::ci(),
            "Mail::DKIM and Net::DNS (libmail-dkim-perl) are required under CI"
        );
        eprintln!("skipped: Mail::DKIM (libmail-dkim-perl) not found");
    }
    ok
}

/// Mail::DKIM on `msg`; `None` when it is missing outside CI.
fn mail_dkim(knot: &Knot, msg: &[u8]) -> Option<Vec<Verdict>> {
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
fn ar_results(value: &str, sigs: &[BTreeMap<String, String>]) -> Vec<Verdict> {
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
struct OpenDkim {
    child: Child,
    dir: tempfile::TempDir,
    milter: String,
}

impl OpenDkim {
    /// `None` when opendkim or miltertest is missing outside CI.
    fn start(knot: &Knot) -> Option<OpenDkim> {
        if !support::require_tool("opendkim") || !have_miltertest() {
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
        let child = Command::new(support::which("opendkim").unwrap())
            .arg("-f")
            .arg("-x")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(dir.path().join("opendkim.err")).unwrap())
            .spawn()
            .expect("start opendkim");
        let mut od = OpenDkim {
            child,
            milter: format!("unix:{}", sock.display()),
            dir,
        };
        let up = wait_until(Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
                || matches!(od.child.try_wait(), Ok(Some(_)))
        });
        assert!(
            up && std::os::unix::net::UnixStream::connect(&sock).is_ok(),
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
    fn verify(&self, msg: &Msg) -> Vec<Verdict> {
        let outcome = Conversation {
            milter: &self.milter,
            client_ip: "192.0.2.25",
            mail_macros: &[],
            msg,
            collect: "Authentication-Results",
            protocol: None,
        }
        .run();
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

impl Drop for OpenDkim {
    fn drop(&mut self) {
        // libmilter takes about five seconds to wind down after SIGTERM;
        // a verifier has nothing to lose, so one second, then SIGKILL.
        stop_child(&mut self.child, Duration::from_secs(1));
    }
}

/// Every verifier's verdicts on one message.
struct Judged {
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
fn judge(what: &str, knot: &Knot, opendkim: Option<&OpenDkim>, msg: &Msg) -> Judged {
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
/// such signatures as not verifiable, never as passing or failing on
/// their content.
fn mail_dkim_lacks_ed25519(v: &Verdict) -> bool {
    v.selector == ED.0 && v.result != "pass" && v.result != "fail"
}

/// Asserts that every verifier passes every signature of `msg` (one per
/// selector in `selectors`).
fn assert_all_pass(j: &Judged, selectors: &[&str], msg: &Msg) {
    let context = || format!("{j}--- message\n{}", show(&msg.to_bytes()));
    for (who, vs) in &j.by {
        let mut got: Vec<&str> = vs.iter().map(|v| v.selector.as_str()).collect();
        got.sort_unstable();
        let mut want = selectors.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{who} saw other signatures\n{}", context());
        for v in vs {
            if *who == "Mail::DKIM" && mail_dkim_lacks_ed25519(v) {
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
fn assert_all_fail(j: &Judged, signatures: usize, msg: &Msg) {
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
            if *who == "Mail::DKIM" && mail_dkim_lacks_ed25519(v) {
                continue;
            }
            assert_eq!(v.result, "fail", "{who} on s={}\n{}", v.selector, context());
        }
    }
}

// ---- interop: sign with dkimctl serve, verify everywhere ------------------------------------

/// Signs the message with `dkimctl serve` (driven by miltertest) with
/// `keys` and `canon`, then has dkimpy, Mail::DKIM and OpenDKIM verify it
/// against Knot, and a changed body and Subject fail in all of them.
fn signed_by_serve_verified_everywhere(
    canon: &str,
    keys: &[(&str, &str)],
    unix: bool,
    protocol: Option<u32>,
) {
    if !have_miltertest() {
        return;
    }
    let Some((root, knot)) = keys_and_dns(canon, keys) else {
        return;
    };
    let serve = Serve::start(&root, unix);
    let signed = sign_with_miltertest(&serve, &message(), protocol);
    let sigs = signed.signatures();
    assert_eq!(
        sigs.len(),
        keys.len(),
        "one signature per key:\n{}\n--- engine log\n{}",
        show(&signed.to_bytes()),
        serve.log_text()
    );
    for (sel, alg) in keys {
        let sig = sigs
            .iter()
            .find(|s| s.get("s").map(String::as_str) == Some(*sel))
            .unwrap_or_else(|| panic!("no signature with s={sel}: {sigs:?}"));
        assert_eq!(sig.get("a").map(String::as_str), Some(*alg), "{sig:?}");
        assert_eq!(sig.get("d").map(String::as_str), Some("example.com"));
        assert_eq!(canon_of(sig), canon, "{sig:?}");
    }
    let opendkim = OpenDkim::start(&knot);
    let selectors: Vec<&str> = keys.iter().map(|(s, _)| *s).collect();

    let j = judge("as signed", &knot, opendkim.as_ref(), &signed);
    eprint!("{canon} {selectors:?} {j}");
    assert_all_pass(&j, &selectors, &signed);
    for (what, tampered) in [
        ("body changed", signed.body_changed()),
        ("Subject changed", signed.subject_changed()),
    ] {
        let j = judge(what, &knot, opendkim.as_ref(), &tampered);
        eprint!("{canon} {selectors:?} {j}");
        assert_all_fail(&j, keys.len(), &tampered);
    }
}

#[test]
fn rsa_relaxed_relaxed_verifies_everywhere() {
    signed_by_serve_verified_everywhere("relaxed/relaxed", &[RSA], false, None);
}

#[test]
fn ed25519_relaxed_relaxed_verifies_everywhere() {
    signed_by_serve_verified_everywhere("relaxed/relaxed", &[ED], true, None);
}

#[test]
fn rsa_simple_simple_verifies_everywhere() {
    signed_by_serve_verified_everywhere("simple/simple", &[RSA], true, None);
}

#[test]
fn ed25519_simple_simple_verifies_everywhere() {
    signed_by_serve_verified_everywhere("simple/simple", &[ED], false, None);
}

#[test]
fn dual_relaxed_simple_verifies_everywhere() {
    signed_by_serve_verified_everywhere("relaxed/simple", &[RSA, ED], false, None);
}

#[test]
fn dual_simple_relaxed_verifies_everywhere() {
    signed_by_serve_verified_everywhere("simple/relaxed", &[RSA, ED], true, None);
}

#[test]
fn dual_relaxed_relaxed_verifies_everywhere() {
    signed_by_serve_verified_everywhere("relaxed/relaxed", &[RSA, ED], true, None);
}

#[test]
fn dual_simple_simple_verifies_everywhere() {
    signed_by_serve_verified_everywhere("simple/simple", &[RSA, ED], false, None);
}

/// `SMFIP_HDR_LEADSPC` (0x100000), the last protocol bit libmilter knows.
const SMFIP_HDR_LEADSPC: u32 = 0x10_0000;

/// An MTA that does not offer `SMFIP_HDR_LEADSPC` (Sendmail before 8.14,
/// Postfix before 2.6) strips the space after each colon; a simple
/// header canonicalization must put it back. Every other bit up to
/// `SMFIP_NR_BODY` is offered.
#[test]
fn mta_without_leading_space_dual_simple_simple_verifies_everywhere() {
    signed_by_serve_verified_everywhere("simple/simple", &[RSA, ED], true, Some(0xF_FFFF));
}

/// miltertest drives `dkimctl serve` through a verify conversation: an
/// unauthenticated client outside the internal hosts, the engine asking
/// Knot for the keys. One Authentication-Results with a result per
/// signature, a forged one claiming our authserv-id removed, and failures
/// for a changed body or Subject.
fn verify_conversation(canon: &str) {
    if !have_miltertest() {
        return;
    }
    let keys = [RSA, ED];
    let Some((root, knot)) = keys_and_dns(canon, &keys) else {
        return;
    };
    let mut signed = {
        let signer = Serve::start(&root, true);
        sign_with_miltertest(&signer, &message(), None)
    };
    assert_eq!(signed.signatures().len(), 2);
    // Arrives from outside with a forged verdict in our name.
    signed.headers.push((
        b"Authentication-Results".to_vec(),
        b" mx.example.com; dkim=pass header.d=example.com".to_vec(),
    ));
    let extra = format!(
        "\n[engine]\nnameservers = [\"{}\"]\ndns_timeout = \"2s\"\n",
        knot.ns()
    );
    root.write(
        "etc/dkimctl/dkim.toml",
        &dkim_toml(
            "verify",
            canon,
            &keys,
            "inet:127.0.0.1:8891",
            "kind = \"none\"",
            &extra,
        ),
    );
    let verifier = Serve::start(&root, false);
    let verify = |msg: &Msg| {
        let outcome = Conversation {
            milter: &verifier.milter,
            client_ip: "192.0.2.25",
            mail_macros: &[],
            msg,
            collect: "Authentication-Results",
            protocol: None,
        }
        .run();
        let context = format!(
            "{}\n--- engine log\n{}",
            outcome.transcript,
            verifier.log_text()
        );
        assert_eq!(outcome.reply, 'c', "{context}");
        assert!(
            outcome.deleted,
            "forged Authentication-Results kept:\n{context}"
        );
        assert_eq!(
            outcome.values.len(),
            1,
            "one Authentication-Results:\n{context}"
        );
        let ar = show(&outcome.values[0]);
        assert!(ar.starts_with(" mx.example.com;"), "{ar}");
        let mut got: Vec<(String, String)> = ar_results(&ar, &msg.signatures())
            .into_iter()
            .map(|v| (v.selector, v.result))
            .collect();
        got.sort();
        (got, format!("{ar}\n{context}"))
    };
    let pass = |s: &str| (s.to_string(), "pass".to_string());
    let fail = |s: &str| (s.to_string(), "fail".to_string());
    let (got, context) = verify(&signed);
    assert_eq!(got, [pass("ed1"), pass("rsa1")], "{context}");
    for tampered in [signed.body_changed(), signed.subject_changed()] {
        let (got, context) = verify(&tampered);
        assert_eq!(got, [fail("ed1"), fail("rsa1")], "{context}");
    }
}

#[test]
fn miltertest_verify_conversation_relaxed_relaxed() {
    verify_conversation("relaxed/relaxed");
}

#[test]
fn miltertest_verify_conversation_simple_simple() {
    verify_conversation("simple/simple");
}

// ---- a real Postfix ------------------------------------------------------------

/// A private Postfix instance; stopped with `postfix -c DIR stop`, then its
/// master killed by the PID in its own pid file if it is still there.
struct Postfix {
    config_dir: PathBuf,
    queue_dir: PathBuf,
    log: PathBuf,
}

impl Postfix {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn master_pid(&self) -> Option<nix::unistd::Pid> {
        let text = std::fs::read_to_string(self.queue_dir.join("pid/master.pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        Some(nix::unistd::Pid::from_raw(pid))
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let pid = self.master_pid();
        let _ = run_bounded(
            Command::new(support::which("postfix").unwrap())
                .arg("-c")
                .arg(&self.config_dir)
                .arg("stop"),
            None,
            Duration::from_secs(30),
        );
        if let Some(pid) = pid {
            let alive = || nix::sys::signal::kill(pid, None).is_ok();
            if !wait_until(Duration::from_secs(10), || !alive()) {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// main.cf before `dkimctl apply` merges the milter settings into it.
fn postfix_main_cf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "# A private instance for dkimctl's interoperability tests.\n\
         compatibility_level = 3.6\n\
         queue_directory = {d}/spool\n\
         data_directory = {d}/data\n\
         meta_directory = {d}/etc/postfix\n\
         mail_owner = postfix\n\
         setgid_group = postdrop\n\
         myhostname = mx.example.com\n\
         mydomain = example.com\n\
         myorigin = example.com\n\
         mydestination = localhost\n\
         inet_interfaces = 127.0.0.1\n\
         inet_protocols = ipv4\n\
         mynetworks = 127.0.0.0/8\n\
         local_transport = filedrop\n\
         local_recipient_maps =\n\
         alias_maps =\n\
         alias_database =\n\
         relayhost =\n\
         default_transport = error:no mail leaves this test instance\n\
         maillog_file = {d}/log/postfix.log\n\
         maillog_file_prefixes = {d}\n\
         biff = no\n"
    )
}

/// master.cf: smtpd on 127.0.0.1:PORT, nothing chrooted, local mail
/// written into `DIR/delivered` by a pipe transport running as nobody.
fn postfix_master_cf(dir: &Path, port: u16) -> String {
    let services = [
        format!("127.0.0.1:{port} inet n - n - - smtpd"),
        "pickup unix n - n 60 1 pickup".into(),
        "cleanup unix n - n - 0 cleanup".into(),
        "qmgr unix n - n 300 1 qmgr".into(),
        "rewrite unix - - n - - trivial-rewrite".into(),
        "bounce unix - - n - 0 bounce".into(),
        "defer unix - - n - 0 bounce".into(),
        "trace unix - - n - 0 bounce".into(),
        "verify unix - - n - 1 verify".into(),
        "flush unix n - n 1000? 0 flush".into(),
        "proxymap unix - - n - - proxymap".into(),
        "proxywrite unix - - n - 1 proxymap".into(),
        "showq unix n - n - - showq".into(),
        "error unix - - n - - error".into(),
        "retry unix - - n - - error".into(),
        "discard unix - - n - - discard".into(),
        "anvil unix - - n - 1 anvil".into(),
        "scache unix - - n - 1 scache".into(),
        "postlog unix-dgram n - n - 1 postlogd".into(),
        format!(
            "filedrop unix - n n - - pipe\n  user=nobody argv={}/deliver ${{queue_id}}",
            dir.display()
        ),
    ];
    services.join("\n") + "\n"
}

/// The message handed to Postfix's sendmail: the interop message with LF
/// line ends, as a local program writes it.
fn sendmail_message() -> Vec<u8> {
    let mut m = message();
    for (n, v) in &mut m.headers {
        if n == b"Message-ID" {
            *v = b" <interop-sendmail@example.com>".to_vec();
        }
    }
    m.to_bytes()
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(&b'\n')
}

/// A private Postfix on 127.0.0.1 configured by `dkimctl apply`, with
/// `dkimctl serve` as its smtpd and non-smtpd milter: one message over
/// SMTP (swaks), one through sendmail; both delivered, both verified by
/// dkimpy, Mail::DKIM and OpenDKIM against Knot.
fn postfix_end_to_end(unix: bool, canon: &str) {
    if !support::require_root("Postfix runs as root and drops to its own user")
        || !support::require_tool("postfix")
        || !support::require_tool("postconf")
        || !support::require_tool("sendmail")
        || !support::require_tool("swaks")
    {
        return;
    }
    let keys = [RSA, ED];
    let Some((root, knot)) = keys_and_dns(canon, &keys) else {
        return;
    };
    // Postfix's processes (user postfix, pipe as nobody) walk into it.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = root.path().to_path_buf();

    // The milter socket. A unix socket lives in a directory of its own
    // under /run: dkim.toml names it as Postfix sees it (a real path; the
    // validation refuses /tmp), and `serve --socket` binds that path
    // rather than one under the temporary root.
    let run_dir = tempfile::Builder::new()
        .prefix("dkimctl-interop-")
        .tempdir_in("/run")
        .expect("a directory under /run");
    std::fs::set_permissions(run_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = if unix {
        format!("unix:{}/dkimctl.sock", run_dir.path().display())
    } else {
        format!("inet:127.0.0.1:{}", free_port())
    };
    let extra = format!(
        "\n[engine]\nnameservers = [\"{}\"]\ndns_timeout = \"2s\"\n",
        knot.ns()
    );
    root.write(
        "etc/dkimctl/dkim.toml",
        &dkim_toml(
            "sign+verify",
            canon,
            &keys,
            &socket,
            "kind = \"postfix\"\nconfig_dir = \"/etc/postfix\"\nchroot = false",
            &extra,
        ),
    );

    // The admin's Postfix: its own main.cf and master.cf, Debian's meta
    // files, an empty queue.
    let smtp_port = free_port();
    let config_dir = root.join("etc/postfix");
    std::fs::create_dir_all(&config_dir).unwrap();
    root.write("etc/postfix/main.cf", &postfix_main_cf(&dir));
    root.write("etc/postfix/master.cf", &postfix_master_cf(&dir, smtp_port));
    for f in [
        "dynamicmaps.cf",
        "postfix-files",
        "postfix-script",
        "post-install",
    ] {
        let from = Path::new("/etc/postfix").join(f);
        if from.exists() {
            std::fs::copy(&from, config_dir.join(f)).unwrap();
        }
    }
    for d in ["dynamicmaps.cf.d", "postfix-files.d"] {
        let from = Path::new("/etc/postfix").join(d);
        std::fs::create_dir_all(config_dir.join(d)).unwrap();
        for e in std::fs::read_dir(&from).into_iter().flatten().flatten() {
            std::fs::copy(e.path(), config_dir.join(d).join(e.file_name())).unwrap();
        }
    }
    for d in ["spool", "log"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let delivered = dir.join("delivered");
    std::fs::create_dir_all(&delivered).unwrap();
    nix::unistd::chown(
        &delivered,
        nix::unistd::User::from_name("nobody")
            .unwrap()
            .map(|u| u.uid),
        None,
    )
    .unwrap();
    root.write(
        "deliver",
        &format!(
            "#!/bin/sh\n# pipe(8) hands the message on stdin; one file per queue id.\n\
             umask 022\nout={}\ncat > \"$out/$1.tmp\" && mv \"$out/$1.tmp\" \"$out/$1.eml\"\n",
            delivered.display()
        ),
    );
    std::fs::set_permissions(root.join("deliver"), std::fs::Permissions::from_mode(0o755)).unwrap();

    // dkimctl merges the milter settings into that main.cf.
    root.dkimctl(&["apply", "--yes", "--no-reload"]).expect(0);
    let main_cf = root.read("etc/postfix/main.cf");
    for want in [
        format!("smtpd_milters = {socket}"),
        format!("non_smtpd_milters = {socket}"),
        "milter_default_action = tempfail".into(),
        "milter_protocol = 6".into(),
    ] {
        assert!(main_cf.contains(&want), "{want} missing:\n{main_cf}");
    }

    let serve = if unix {
        Serve::try_start(&root, Some(&socket))
    } else {
        Serve::try_start(&root, None)
    }
    .unwrap_or_else(|log| panic!("dkimctl serve did not start:\n{log}"));

    let postfix = Postfix {
        config_dir: config_dir.clone(),
        queue_dir: dir.join("spool"),
        log: dir.join("log/postfix.log"),
    };
    let start = run_bounded(
        Command::new(support::which("postfix").unwrap())
            .arg("-c")
            .arg(&config_dir)
            .arg("start"),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(
        start.code(),
        0,
        "postfix start failed:\n{}{}\n{}",
        start.stdout(),
        start.stderr(),
        postfix.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect((
            "127.0.0.1",
            smtp_port
        ))
        .is_ok()),
        "smtpd does not listen on 127.0.0.1:{smtp_port}:\n{}",
        postfix.log_text()
    );

    // One message over SMTP from 127.0.0.1 (an internal host: signed).
    let mut swaks = Command::new(support::which("swaks").unwrap());
    swaks
        .args(["--server", "127.0.0.1", "--port", &smtp_port.to_string()])
        .args(["--from", "a@example.com", "--to", "u@localhost"])
        .args(["--helo", "client.example"])
        .arg("--header")
        .arg(std::ffi::OsStr::from_bytes(
            b"Subject: Caf\xe9  cr\xe8me\n\t br\xfbl\xe9e (swaks)",
        ))
        .arg("--header")
        .arg("X-Folded: first line\\n second line")
        .arg("--body")
        .arg(std::ffi::OsStr::from_bytes(
            b"Ol\xe9,\n\nla cr\xe8me  br\xfbl\xe9e \t\nest pr\xeate.\n",
        ));
    let sent = run_bounded(&mut swaks, None, Duration::from_secs(60));
    assert!(
        sent.code() == 0 && sent.stdout().contains("250 2.0.0 Ok: queued"),
        "swaks:\n{}{}\n--- maillog\n{}\n--- engine log\n{}",
        sent.stdout(),
        sent.stderr(),
        postfix.log_text(),
        serve.log_text()
    );

    // One through Postfix's sendmail (pickup, cleanup: non_smtpd_milters).
    let input = dir.join("sendmail-input.eml");
    std::fs::write(&input, sendmail_message()).unwrap();
    let sm = run_bounded(
        Command::new(support::which("sendmail").unwrap())
            .arg("-C")
            .arg(&config_dir)
            .args(["-i", "-f", "a@example.com", "u@localhost"]),
        Some(&input),
        Duration::from_secs(60),
    );
    assert_eq!(
        sm.code(),
        0,
        "sendmail:\n{}{}\n{}",
        sm.stdout(),
        sm.stderr(),
        postfix.log_text()
    );

    let files = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&delivered)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        v.sort();
        v
    };
    assert!(
        wait_until(Duration::from_secs(60), || files().len() >= 2),
        "not delivered within 60 s ({:?}):\n--- maillog\n{}\n--- engine log\n{}",
        files(),
        postfix.log_text(),
        serve.log_text()
    );

    let opendkim = OpenDkim::start(&knot);
    let mut seen = Vec::new();
    for f in files() {
        let msg = Msg::parse(&std::fs::read(&f).unwrap());
        let via = if msg.values("X-Mailer").iter().any(|v| v.contains("swaks")) {
            "smtp"
        } else {
            "sendmail"
        };
        seen.push(via);
        let sigs = msg.signatures();
        assert_eq!(
            sigs.len(),
            2,
            "{via}: one signature per key:\n{}\n--- engine log\n{}",
            show(&msg.to_bytes()),
            serve.log_text()
        );
        assert!(sigs.iter().all(|s| canon_of(s) == canon), "{sigs:?}");
        let j = judge(
            &format!("delivered via {via}"),
            &knot,
            opendkim.as_ref(),
            &msg,
        );
        eprint!("{canon} {j}");
        assert_all_pass(&j, &["rsa1", "ed1"], &msg);
        let tampered = msg.body_changed();
        let j = judge(
            &format!("delivered via {via}, body changed"),
            &knot,
            opendkim.as_ref(),
            &tampered,
        );
        assert_all_fail(&j, 2, &tampered);
    }
    seen.sort_unstable();
    assert_eq!(seen, ["sendmail", "smtp"]);
    let log = serve.log_text();
    assert!(
        log.matches("signed d=example.com s=rsa1 a=rsa-sha256")
            .count()
            >= 2,
        "{log}"
    );
    drop(postfix);
    drop(serve);
}

#[test]
fn postfix_over_tcp_signs_smtp_and_sendmail_mail() {
    postfix_end_to_end(false, "relaxed/relaxed");
}

#[test]
fn postfix_over_unix_socket_signs_smtp_and_sendmail_mail() {
    postfix_end_to_end(true, "simple/simple");
}

// ---- OpenDKIM started from a rendered tree --------------------------------------

/// The real OpenDKIM started from a tree dkimctl applied, as its unit
/// starts it: `opendkim -f -x /etc/opendkim/opendkim.conf` as the service
/// user, with the tree as / (a chroot in a private mount namespace; the
/// host's /usr bound read-only inside). Stopped by PID.
struct RenderedOpenDkim {
    child: Child,
    /// The socket in miltertest's notation, as seen from the host.
    milter: String,
    log: PathBuf,
}

impl RenderedOpenDkim {
    fn start(tree: &Path) -> RenderedOpenDkim {
        let conf = std::fs::read_to_string(tree.join("etc/opendkim/opendkim.conf")).unwrap();
        let socket = conf
            .lines()
            .find_map(|l| l.strip_prefix("Socket"))
            .map(|s| s.trim().to_string())
            .expect("a Socket line");
        let path = socket.strip_prefix("local:").expect("a unix socket");
        let passwd = std::fs::read_to_string(tree.join("etc/passwd")).unwrap();
        let ids = passwd
            .lines()
            .find(|l| l.starts_with("opendkim:"))
            .map(|l| l.split(':').skip(2).take(2).collect::<Vec<_>>().join(":"))
            .expect("apply created the opendkim user");
        // What the unit's RuntimeDirectory= and StateDirectory= provide.
        for d in ["usr", "run/opendkim", "var/lib/opendkim", "dev"] {
            std::fs::create_dir_all(tree.join(d)).unwrap();
        }
        let (uid, gid) = ids.split_once(':').unwrap();
        for d in ["run/opendkim", "var/lib/opendkim"] {
            nix::unistd::chown(
                &tree.join(d),
                Some(nix::unistd::Uid::from_raw(uid.parse().unwrap())),
                Some(nix::unistd::Gid::from_raw(gid.parse().unwrap())),
            )
            .unwrap();
            std::fs::set_permissions(tree.join(d), std::fs::Permissions::from_mode(0o750)).unwrap();
        }
        for (link, target) in [
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("bin", "usr/bin"),
        ] {
            let _ = std::os::unix::fs::symlink(target, tree.join(link));
        }
        for f in ["etc/ld.so.cache", "etc/nsswitch.conf"] {
            let _ = std::fs::copy(Path::new("/").join(f), tree.join(f));
        }
        let log = tree.join("opendkim.log");
        let script = format!(
            "mount --bind /usr {t}/usr && mount -o remount,bind,ro {t}/usr && \
             exec chroot --userspec={ids} {t} /usr/sbin/opendkim -f -x /etc/opendkim/opendkim.conf",
            t = tree.display()
        );
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(tree.join("opendkim.err")).unwrap())
            .spawn()
            .expect("start opendkim");
        let host_path = tree.join(path.trim_start_matches('/'));
        let mut od = RenderedOpenDkim {
            child,
            milter: format!("unix:{}", host_path.display()),
            log,
        };
        let up = wait_until(Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(&host_path).is_ok()
                || matches!(od.child.try_wait(), Ok(Some(_)))
        });
        assert!(
            up && std::os::unix::net::UnixStream::connect(&host_path).is_ok(),
            "opendkim did not start from the rendered tree:\n{}",
            od.log_text()
        );
        od
    }

    fn log_text(&self) -> String {
        let err = self.log.with_file_name("opendkim.err");
        std::fs::read_to_string(&self.log).unwrap_or_default()
            + &std::fs::read_to_string(err).unwrap_or_default()
    }

    /// Has OpenDKIM sign `msg` for a client on 127.0.0.1 (an internal
    /// host); returns the reply and the message as delivered.
    fn sign(&self, msg: &Msg) -> (char, Msg, String) {
        let outcome = Conversation {
            milter: &self.milter,
            client_ip: "127.0.0.1",
            mail_macros: &[],
            msg,
            collect: "DKIM-Signature",
            protocol: None,
        }
        .run();
        let mut signed = msg.clone();
        for v in outcome.values.iter().rev() {
            let mut value = v.clone();
            if !outcome.leading_space {
                value.insert(0, b' ');
            }
            signed
                .headers
                .insert(0, (b"DKIM-Signature".to_vec(), value));
        }
        (outcome.reply, signed, outcome.transcript)
    }
}

impl Drop for RenderedOpenDkim {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(10));
    }
}

/// `bootstrap --opendkim` renders a setup the real OpenDKIM signs with:
/// its defaults once made OpenDKIM answer 451 to every message (an
/// Ed25519 key beside the RSA key under one global SignatureAlgorithm).
/// The signature verifies with dkimpy and Mail::DKIM against the records
/// `dns records` prints. Regression test for issue 17, point 1.
#[test]
fn opendkim_signs_with_bootstrap_defaults() {
    if !support::require_tool("opendkim")
        || !have_miltertest()
        || !support::require_root("chroot and mount namespaces for opendkim")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = TempRoot { dir };
    root.dkimctl(&[
        "bootstrap",
        "--opendkim",
        "--mta",
        "none",
        "--domain",
        "example.com",
        "--yes",
        "--no-reload",
    ])
    .expect(0);
    let Some(knot) = Knot::start(&published_zone(&root)) else {
        return;
    };
    let od = RenderedOpenDkim::start(root.path());
    let (reply, signed, transcript) = od.sign(&message());
    assert!(
        reply == 'c' || reply == 'a',
        "OpenDKIM answered {reply:?} instead of signing:\n{transcript}\n--- opendkim\n{}",
        od.log_text()
    );
    let sigs = signed.signatures();
    assert_eq!(sigs.len(), 1, "{transcript}");
    let selector = sigs[0]["s"].clone();
    let j = judge("OpenDKIM, bootstrap defaults", &knot, None, &signed);
    assert_all_pass(&j, &[selector.as_str()], &signed);
}
