//! An MTA-side milter client: what Postfix does, in small, for tests and
//! the benchmark.
//!
//! It speaks our own codec from the other side: it offers what Postfix
//! offers in option negotiation, sends one message the way Postfix does
//! (macros, connect, MAIL, headers, end of header, body chunks, end of
//! message), honours the negotiated `NO*` and `NR_*` flags (it waits for a
//! reply only where one is due), and returns the replies to end of
//! message. [`apply_replies`] then applies the header modifications to the
//! original message as the MTA would, giving the message as delivered.

use std::io;
use std::net::IpAddr;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::milter::command::{Command, Family, OptNeg};
use crate::milter::negotiate::{Negotiated, protocol};
use crate::milter::{DEFAULT_MAX_PACKET, Reply, decode_reply};

/// A stream the client can talk over.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Largest body chunk sent, as libmilter and Postfix send them.
pub const CHUNK: usize = 65535;

/// A client connection to a milter.
pub struct MilterClient {
    stream: Box<dyn Io>,
    input: BytesMut,
    agreed: Option<OptNeg>,
    connected: bool,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl MilterClient {
    /// Connects to `unix:/path` (or `/path`, `local:/path`), or
    /// `inet:HOST:PORT` (or `HOST:PORT`, `inet:[V6]:PORT`).
    pub async fn connect(addr: &str) -> io::Result<MilterClient> {
        let unix = addr
            .strip_prefix("unix:")
            .or_else(|| addr.strip_prefix("local:"))
            .or_else(|| addr.starts_with('/').then_some(addr));
        let stream: Box<dyn Io> = if let Some(path) = unix {
            Box::new(tokio::net::UnixStream::connect(path).await?)
        } else {
            let rest = addr.strip_prefix("inet:").unwrap_or(addr);
            let rest = rest.replace(['[', ']'], "");
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| invalid(format!("cannot read address {addr}")))?;
            let port: u16 = port.parse().map_err(invalid)?;
            let s = tokio::net::TcpStream::connect((host, port)).await?;
            s.set_nodelay(true)?;
            Box::new(s)
        };
        Ok(MilterClient {
            stream,
            input: BytesMut::with_capacity(8192),
            agreed: None,
            connected: false,
        })
    }

    /// What Postfix 3.x offers: protocol version 6, every action, every
    /// protocol bit up to `SMFIP_HDR_LEADSPC`.
    pub fn postfix_offer() -> OptNeg {
        OptNeg {
            version: 6,
            actions: 0x1ff,
            protocol: 0x1f_ffff,
            macros: Vec::new(),
        }
    }

    /// Negotiates with [`MilterClient::postfix_offer`].
    pub async fn negotiate(&mut self) -> io::Result<OptNeg> {
        self.negotiate_with(Self::postfix_offer()).await
    }

    /// Negotiates with a given offer; returns the milter's answer.
    pub async fn negotiate_with(&mut self, offer: OptNeg) -> io::Result<OptNeg> {
        self.send(&Command::OptNeg(offer)).await?;
        match self.read_reply().await? {
            Some(Reply::OptNeg(answer)) => {
                self.agreed = Some(answer.clone());
                Ok(answer)
            }
            Some(other) => Err(invalid(format!(
                "expected SMFIR_OPTNEG, got {}",
                other.wire_name()
            ))),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "milter closed the connection",
            )),
        }
    }

    /// The negotiated protocol bits.
    pub fn protocol(&self) -> u32 {
        self.agreed.as_ref().map_or(0, |a| a.protocol)
    }

    /// True when `SMFIP_HDR_LEADSPC` was agreed.
    pub fn leading_space(&self) -> bool {
        self.protocol() & protocol::HDR_LEADSPC != 0
    }

    fn negotiated(&self) -> Negotiated {
        let a = self.agreed.clone().unwrap_or_default();
        Negotiated {
            version: a.version,
            actions: a.actions,
            protocol: a.protocol,
            reply: a,
        }
    }

    /// Sends one packet.
    pub async fn send(&mut self, cmd: &Command) -> io::Result<()> {
        let mut out = BytesMut::new();
        cmd.encode(&mut out).map_err(invalid)?;
        self.stream.write_all(&out).await
    }

    /// Sends raw bytes (for malformed-input tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads one reply; `None` when the milter closed the connection.
    pub async fn read_reply(&mut self) -> io::Result<Option<Reply>> {
        loop {
            if let Some(r) = decode_reply(&mut self.input, DEFAULT_MAX_PACKET).map_err(invalid)? {
                return Ok(Some(r));
            }
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Reads replies up to and including a final one.
    async fn read_step(&mut self) -> io::Result<Vec<Reply>> {
        let mut replies = Vec::new();
        loop {
            match self.read_reply().await? {
                Some(r) => {
                    let last = r.is_final();
                    replies.push(r);
                    if last {
                        return Ok(replies);
                    }
                }
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "milter closed the connection",
                    ));
                }
            }
        }
    }

    /// Sends a command and, if the negotiation says one is due, reads its
    /// reply. Returns the replies when they end the message early (a final
    /// reply other than `SMFIR_CONTINUE`).
    async fn step(&mut self, cmd: Command) -> io::Result<Option<Vec<Reply>>> {
        let due = !self.negotiated().no_reply(&cmd);
        self.send(&cmd).await?;
        if !due {
            return Ok(None);
        }
        let replies = self.read_step().await?;
        if replies.last() == Some(&Reply::Continue) {
            Ok(None)
        } else {
            Ok(Some(replies))
        }
    }

    /// Sends one message as Postfix would and returns the replies to end of
    /// message (modifications and the final reply), or the replies that
    /// ended it earlier.
    ///
    /// `macros` are `(name, value)` pairs, each sent at the stage Postfix
    /// sends it: `j`, `{daemon_name}`, `{daemon_addr}`, `{client_*}` at
    /// connect; `{auth_*}`, `{mail_*}` and `i` at MAIL; `i` again at end of
    /// header and end of message. Header values are given as they appear in
    /// the message after the colon (leading space included). The first call
    /// sends `SMFIC_CONNECT`; later calls first send `SMFIC_QUIT_NC`, as an
    /// MTA reusing the connection for a new client does.
    pub async fn send_message(
        &mut self,
        macros: &[(&str, &str)],
        client_ip: IpAddr,
        headers: &[(&[u8], &[u8])],
        body: &[u8],
    ) -> io::Result<Vec<Reply>> {
        if self.agreed.is_none() {
            self.negotiate().await?;
        }
        let proto = self.protocol();
        let stage_of = |name: &str| -> u8 {
            let bare = name.trim_start_matches('{').trim_end_matches('}');
            if bare == "j"
                || bare.starts_with("daemon_")
                || bare.starts_with("client_")
                || bare == "_"
            {
                b'C'
            } else {
                b'M'
            }
        };
        let pairs = |stage: u8| -> Vec<(Bytes, Bytes)> {
            macros
                .iter()
                .filter(|(n, _)| stage_of(n) == stage)
                .map(|(n, v)| {
                    (
                        Bytes::copy_from_slice(n.as_bytes()),
                        Bytes::copy_from_slice(v.as_bytes()),
                    )
                })
                .collect()
        };
        let queue_id: Vec<(Bytes, Bytes)> = macros
            .iter()
            .filter(|(n, _)| *n == "i")
            .map(|(n, v)| {
                (
                    Bytes::copy_from_slice(n.as_bytes()),
                    Bytes::copy_from_slice(v.as_bytes()),
                )
            })
            .collect();

        if self.connected {
            self.send(&Command::QuitNewConnection).await?;
        }
        self.connected = true;
        if proto & protocol::NOCONNECT == 0 {
            self.send(&Command::Macro {
                stage: b'C',
                pairs: pairs(b'C'),
            })
            .await?;
            let family = if client_ip.is_ipv6() {
                Family::Inet6
            } else {
                Family::Inet
            };
            let connect = Command::Connect {
                hostname: Bytes::from_static(b"client.example"),
                family,
                port: 40000,
                address: Bytes::from(client_ip.to_string()),
            };
            if let Some(r) = self.step(connect).await? {
                return Ok(r);
            }
        }
        if proto & protocol::NOHELO == 0
            && let Some(r) = self
                .step(Command::Helo(Bytes::from_static(b"client.example")))
                .await?
        {
            return Ok(r);
        }
        if proto & protocol::NOMAIL == 0 {
            self.send(&Command::Macro {
                stage: b'M',
                pairs: pairs(b'M'),
            })
            .await?;
            let mail = Command::Mail(vec![Bytes::from_static(b"<sender@example.com>")]);
            if let Some(r) = self.step(mail).await? {
                return Ok(r);
            }
        }
        if proto & protocol::NORCPT == 0 {
            let rcpt = Command::Rcpt(vec![Bytes::from_static(b"<rcpt@example.net>")]);
            if let Some(r) = self.step(rcpt).await? {
                return Ok(r);
            }
        }
        if proto & protocol::NODATA == 0
            && let Some(r) = self.step(Command::Data).await?
        {
            return Ok(r);
        }
        if proto & protocol::NOHDRS == 0 {
            let keep_space = proto & protocol::HDR_LEADSPC != 0;
            for (name, value) in headers {
                // Without HDR_LEADSPC the MTA strips the space after the colon.
                let value = if keep_space {
                    *value
                } else {
                    value.strip_prefix(b" ").unwrap_or(value)
                };
                let h = Command::Header {
                    name: Bytes::copy_from_slice(name),
                    value: Bytes::copy_from_slice(value),
                };
                if let Some(r) = self.step(h).await? {
                    return Ok(r);
                }
            }
        }
        if proto & protocol::NOEOH == 0 {
            if !queue_id.is_empty() {
                self.send(&Command::Macro {
                    stage: b'N',
                    pairs: queue_id.clone(),
                })
                .await?;
            }
            if let Some(r) = self.step(Command::EndOfHeaders).await? {
                return Ok(r);
            }
        }
        if proto & protocol::NOBODY == 0 {
            for chunk in body.chunks(CHUNK) {
                if let Some(r) = self
                    .step(Command::Body(Bytes::copy_from_slice(chunk)))
                    .await?
                {
                    return Ok(r);
                }
            }
        }
        if !queue_id.is_empty() {
            self.send(&Command::Macro {
                stage: b'E',
                pairs: queue_id,
            })
            .await?;
        }
        self.send(&Command::EndOfMessage).await?;
        self.read_step().await
    }

    /// Ends the session politely (`SMFIC_QUIT`).
    pub async fn quit(mut self) -> io::Result<()> {
        self.send(&Command::Quit).await?;
        self.stream.shutdown().await
    }
}

/// Connects to `address` (any notation [`MilterClient::connect`] takes),
/// negotiates the options Postfix offers and quits, as the MTA would start
/// a conversation; no message is sent. `timeout` bounds the whole
/// exchange. `Err` says why the milter does not answer. Blocking: it runs
/// its own small runtime (do not call it from inside one).
pub fn probe(address: &str, timeout: std::time::Duration) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async {
        let talk = async {
            let mut client = MilterClient::connect(address).await?;
            client.negotiate().await?;
            client.quit().await
        };
        match tokio::time::timeout(timeout, talk).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
        }
    })
}

/// The message as the MTA delivers it after `replies`: header insertions
/// (`SMFIR_INSHEADER`, `SMFIR_ADDHEADER`) and changes or deletions
/// (`SMFIR_CHGHEADER`, 1-based occurrence index among fields of that name)
/// applied in order, line ends CRLF. `leading_space` is whether
/// `SMFIP_HDR_LEADSPC` was negotiated (otherwise the MTA puts a space after
/// the colon of added fields). Header values are as in the message, after
/// the colon.
pub fn apply_replies(
    headers: &[(&[u8], &[u8])],
    body: &[u8],
    replies: &[Reply],
    leading_space: bool,
) -> Vec<u8> {
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect();
    let added = |value: &[u8]| -> Vec<u8> {
        let mut v = Vec::with_capacity(value.len() + 1);
        if !leading_space {
            v.push(b' ');
        }
        v.extend_from_slice(value);
        v
    };
    for r in replies {
        match r {
            Reply::InsertHeader { index, name, value } => {
                let at = usize::try_from(*index)
                    .unwrap_or(usize::MAX)
                    .min(fields.len());
                fields.insert(at, (name.to_vec(), added(value)));
            }
            Reply::AddHeader { name, value } => fields.push((name.to_vec(), added(value))),
            Reply::ChangeHeader { index, name, value } => {
                let pos = fields
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, _))| n.eq_ignore_ascii_case(name))
                    .nth(
                        usize::try_from(*index)
                            .unwrap_or(usize::MAX)
                            .saturating_sub(1),
                    )
                    .map(|(i, _)| i);
                if let Some(pos) = pos {
                    if value.is_empty() {
                        fields.remove(pos);
                    } else if let Some(f) = fields.get_mut(pos) {
                        f.1 = added(value);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (name, value) in fields {
        out.extend_from_slice(&name);
        out.push(b':');
        out.extend_from_slice(&crate::dkim::crlf(&value));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&crate::dkim::crlf(body));
    out
}
