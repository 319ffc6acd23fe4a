//! Conversations driven by Debian's `miltertest` (OpenDKIM's MTA
//! simulator, Lua scripts): the MTA side for `dkimctl serve` and for
//! OpenDKIM alike.
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

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::message::{Msg, show};
use super::proc::run_bounded;
use super::serve::Serve;

/// A Lua string literal holding `b` exactly (decimal escapes for anything
/// but printable ASCII).
pub fn lua_str(b: &[u8]) -> String {
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
pub struct Conversation<'a> {
    /// The milter's socket (`unix:/path`, `inet:PORT@HOST`).
    pub milter: &'a str,
    /// The SMTP client's address (`mt.conninfo`).
    pub client_ip: &'a str,
    /// Macros sent before MAIL (`{auth_authen}` marks a signing session).
    pub mail_macros: &'a [(&'a str, &'a str)],
    pub msg: &'a Msg,
    /// The header whose inserted or added values are collected.
    pub collect: &'a str,
    /// The protocol bits (`SMFIP_*`) offered in option negotiation;
    /// `None`: miltertest's default, everything libmilter knows (as
    /// Postfix offers).
    pub protocol: Option<u32>,
}

/// What the milter did at end of message.
#[derive(Debug)]
pub struct Outcome {
    /// The final reply to end of message (`SMFIR_*` letter).
    pub reply: char,
    /// Whether the milter asked for leading spaces (`SMFIP_HDR_LEADSPC`).
    pub leading_space: bool,
    /// Whether the milter deleted a field of the collected header.
    pub deleted: bool,
    /// Values of the collected header the milter added or inserted, in
    /// the order they end up top to bottom when each is inserted first.
    pub values: Vec<Vec<u8>>,
    /// miltertest's output, for failure messages.
    pub transcript: String,
}

impl Outcome {
    /// `msg` as delivered: the collected values inserted on top as `name`
    /// fields, as the MTA writes them ("name: value").
    pub fn inserted_into(&self, msg: &Msg, name: &str) -> Msg {
        let mut out = msg.clone();
        // getheader's index 0 is the last insertion, which is on top when
        // each is inserted at index 0.
        for v in self.values.iter().rev() {
            let mut value = v.clone();
            if !self.leading_space {
                value.insert(0, b' ');
            }
            out.headers.insert(0, (name.as_bytes().to_vec(), value));
        }
        out
    }
}

impl<'a> Conversation<'a> {
    /// `msg` from an unauthenticated client outside the internal hosts
    /// (192.0.2.25), the Authentication-Results the milter adds collected:
    /// a verify conversation.
    pub fn incoming(milter: &'a str, msg: &'a Msg) -> Conversation<'a> {
        Conversation {
            milter,
            client_ip: "192.0.2.25",
            mail_macros: &[],
            msg,
            collect: "Authentication-Results",
            protocol: None,
        }
    }

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
mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.com", "{{daemon_name}}", "smtpd")
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
    pub fn run(&self) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("conversation.lua");
        std::fs::write(&script, self.script(dir.path())).unwrap();
        let run = run_bounded(
            Command::new(super::which("miltertest").expect("miltertest"))
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
pub fn have_miltertest() -> bool {
    super::require_tool("miltertest")
}

/// Has `dkimctl serve` sign `msg` in a conversation from an authenticated
/// client (offering `protocol`, default: all); returns the message as
/// delivered (signatures on top).
pub fn sign_with_miltertest(serve: &Serve, msg: &Msg, protocol: Option<u32>) -> Msg {
    let milter = serve.milter();
    let outcome = Conversation {
        milter: &milter,
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
    outcome.inserted_into(msg, "DKIM-Signature")
}

/// `SMFIP_HDR_LEADSPC` (0x100000), the last protocol bit libmilter knows.
pub const SMFIP_HDR_LEADSPC: u32 = 0x10_0000;
