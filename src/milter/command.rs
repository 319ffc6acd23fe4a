//! MTA-to-milter commands (`SMFIC_*`): what the MTA tells the engine.
//!
//! [`Command::parse`] is the engine side: it turns one packet's command byte
//! and data (as split off by [`super::codec::decode_frame`]) into a
//! [`Command`]. [`Command::encode`] is the MTA side, used by our own test
//! and load client to talk to `dkimctl serve` the way Postfix or sendmail
//! would.
//!
//! Every string field stays raw bytes ([`Bytes`]): header names and values,
//! envelope arguments, macro values and host names are whatever octets the
//! MTA sent, minus the NUL terminator. Nothing is decoded as UTF-8, because
//! the DKIM signature is computed over those exact octets.
//!
//! Parsing is strict about layout: a missing NUL terminator, a short integer
//! or bytes left over after the last field are errors, never guesses. A
//! misparsed header would be signed wrong, which is worse than letting the
//! MTA apply its milter default action.

use bytes::{Bytes, BytesMut};

use super::codec::{Fields, ProtocolError, encode_frame};

/// Command bytes of the MTA-to-milter packets (`SMFIC_*` in libmilter's
/// `mfdef.h`).
pub mod code {
    /// Option negotiation: the first packet on every connection.
    #[doc(alias = "SMFIC_OPTNEG")]
    pub const OPTNEG: u8 = b'O';
    /// Macro definitions for the command that follows.
    #[doc(alias = "SMFIC_MACRO")]
    pub const MACRO: u8 = b'D';
    /// SMTP client connection information.
    #[doc(alias = "SMFIC_CONNECT")]
    pub const CONNECT: u8 = b'C';
    /// `HELO`/`EHLO` argument.
    #[doc(alias = "SMFIC_HELO")]
    pub const HELO: u8 = b'H';
    /// `MAIL FROM` arguments.
    #[doc(alias = "SMFIC_MAIL")]
    pub const MAIL: u8 = b'M';
    /// `RCPT TO` arguments.
    #[doc(alias = "SMFIC_RCPT")]
    pub const RCPT: u8 = b'R';
    /// SMTP `DATA` was received.
    #[doc(alias = "SMFIC_DATA")]
    pub const DATA: u8 = b'T';
    /// One message header field.
    #[doc(alias = "SMFIC_HEADER")]
    pub const HEADER: u8 = b'L';
    /// End of the message header.
    #[doc(alias = "SMFIC_EOH")]
    pub const EOH: u8 = b'N';
    /// One chunk of the message body.
    #[doc(alias = "SMFIC_BODY")]
    pub const BODY: u8 = b'B';
    /// End of the message: the step where modifications are allowed.
    #[doc(alias = "SMFIC_BODYEOB")]
    pub const BODYEOB: u8 = b'E';
    /// The current message is abandoned; the connection stays.
    #[doc(alias = "SMFIC_ABORT")]
    pub const ABORT: u8 = b'A';
    /// The MTA closes this milter connection.
    #[doc(alias = "SMFIC_QUIT")]
    pub const QUIT: u8 = b'Q';
    /// End of this SMTP connection; a new one follows on the same socket.
    #[doc(alias = "SMFIC_QUIT_NC")]
    pub const QUIT_NC: u8 = b'K';
    /// An SMTP command the MTA did not recognise.
    #[doc(alias = "SMFIC_UNKNOWN")]
    pub const UNKNOWN: u8 = b'U';
}

/// Address family of the SMTP client in [`Command::Connect`] (`SMFIA_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `'U'`: no address known (e.g. mail submitted locally with
    /// `sendmail -bs`). The packet then ends after the family byte: no port,
    /// no address.
    #[doc(alias = "SMFIA_UNKNOWN")]
    Unknown,
    /// `'L'`: a Unix-domain socket; the address is its path.
    #[doc(alias = "SMFIA_UNIX")]
    Unix,
    /// `'4'`: IPv4; the address is dotted-quad text.
    #[doc(alias = "SMFIA_INET")]
    Inet,
    /// `'6'`: IPv6; the address is text, without brackets.
    #[doc(alias = "SMFIA_INET6")]
    Inet6,
}

impl Family {
    /// The byte that stands for this family on the wire.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Unknown => b'U',
            Self::Unix => b'L',
            Self::Inet => b'4',
            Self::Inet6 => b'6',
        }
    }

    /// The family a wire byte stands for, if any.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            b'U' => Some(Self::Unknown),
            b'L' => Some(Self::Unix),
            b'4' => Some(Self::Inet),
            b'6' => Some(Self::Inet6),
            _ => None,
        }
    }
}

/// The body of an option-negotiation packet, shared by both directions:
/// the MTA's offer (`SMFIC_OPTNEG`) and the milter's answer
/// (`SMFIR_OPTNEG`, same byte `'O'`).
///
/// On the wire: three big-endian `u32`s, then (answer only, and only if
/// `SMFIF_SETSYMLIST` is among the actions) any number of macro requests,
/// each a `u32` stage (`SMFIM_*`, see [`super::negotiate::stage`]) followed
/// by a NUL-terminated, space-separated list of macro names such as
/// `{auth_authen} i`. The MTA's offer never carries macro requests, but the
/// parser accepts them in either direction so both round-trip.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[doc(alias = "SMFIC_OPTNEG")]
#[doc(alias = "SMFIR_OPTNEG")]
pub struct OptNeg {
    /// Protocol version; 6 is current (sendmail 8.14+, Postfix 2.6+).
    pub version: u32,
    /// Action bits (`SMFIF_*`, see [`super::negotiate::action`]): in the
    /// offer, the modifications the MTA allows; in the answer, those the
    /// milter will use.
    pub actions: u32,
    /// Protocol bits (`SMFIP_*`, see [`super::negotiate::protocol`]): in
    /// the offer, the steps the MTA can skip or leave unanswered; in the
    /// answer, the ones the milter asks for.
    pub protocol: u32,
    /// Requested macro lists, as (`SMFIM_*` stage, space-separated names).
    pub macros: Vec<(u32, Bytes)>,
}

impl OptNeg {
    /// Reads an option-negotiation body (after the `'O'` byte).
    pub(crate) fn parse_fields(mut f: Fields) -> Result<Self, ProtocolError> {
        let version = f.u32("u32 protocol version")?;
        let actions = f.u32("u32 action flags")?;
        let protocol = f.u32("u32 protocol flags")?;
        let mut macros = Vec::new();
        while !f.is_empty() {
            let stage = f.u32("u32 macro stage")?;
            let names = f.cstr("NUL-terminated macro list")?;
            macros.push((stage, names));
        }
        Ok(Self {
            version,
            actions,
            protocol,
            macros,
        })
    }

    /// Appends this as an `'O'` packet (either direction; the byte is the
    /// same).
    pub(crate) fn encode_packet(&self, out: &mut BytesMut) -> Result<(), ProtocolError> {
        let hint = 12 + self.macros.iter().map(|(_, m)| 5 + m.len()).sum::<usize>();
        encode_frame(out, code::OPTNEG, hint, |w| {
            w.u32(self.version);
            w.u32(self.actions);
            w.u32(self.protocol);
            for (stage, names) in &self.macros {
                w.u32(*stage);
                w.cstr(names, "macro list")?;
            }
            Ok(())
        })
    }
}

/// One MTA-to-milter command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `SMFIC_OPTNEG` `'O'`: the MTA's offer of protocol version, allowed
    /// actions and skippable steps. Answered with `SMFIR_OPTNEG`; see
    /// [`super::negotiate::negotiate`].
    #[doc(alias = "SMFIC_OPTNEG")]
    OptNeg(OptNeg),
    /// `SMFIC_MACRO` `'D'`: macro values for the command that follows.
    ///
    /// Note the two numbering schemes: `stage` here is the *command byte*
    /// the macros belong to (`b'C'` for connect, `b'M'` for `MAIL`, `b'E'`
    /// for end of message, ...), while the macro requests in
    /// [`OptNeg::macros`] use the `SMFIM_*` numbers 0..=6. Names arrive as
    /// the MTA spells them: `i`, `{auth_authen}`. Never answered.
    ///
    /// Unlike the other commands' fields, names and values are copies, not
    /// slices of the read buffer: a session keeps them for the rest of the
    /// message or connection, and a slice would keep the whole buffer it
    /// came in alive (with the body chunk read along with it), so that
    /// every chunk that follows is copied to a new buffer.
    #[doc(alias = "SMFIC_MACRO")]
    Macro {
        /// Command byte of the command these macros belong to.
        stage: u8,
        /// (name, value) pairs in the MTA's order.
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// `SMFIC_CONNECT` `'C'`: the SMTP client connected.
    #[doc(alias = "SMFIC_CONNECT")]
    Connect {
        /// The client's host name as the MTA knows it; without a verified
        /// reverse name MTAs send a placeholder such as the bracketed
        /// address (`[192.0.2.1]`) or `unknown`.
        hostname: Bytes,
        /// Address family; with [`Family::Unknown`] `port` is 0 and
        /// `address` empty, as nothing else is on the wire.
        family: Family,
        /// Client port (network order on the wire).
        port: u16,
        /// Client address as text (or the socket path for [`Family::Unix`]).
        address: Bytes,
    },
    /// `SMFIC_HELO` `'H'`: the `HELO`/`EHLO` argument.
    #[doc(alias = "SMFIC_HELO")]
    Helo(Bytes),
    /// `SMFIC_MAIL` `'M'`: the `MAIL FROM` address (with angle brackets,
    /// `<>` for bounces) followed by any ESMTP parameters such as
    /// `SIZE=1234`, one element each. Never empty.
    #[doc(alias = "SMFIC_MAIL")]
    Mail(Vec<Bytes>),
    /// `SMFIC_RCPT` `'R'`: one `RCPT TO` address and its ESMTP parameters,
    /// laid out like [`Command::Mail`]. Never empty.
    #[doc(alias = "SMFIC_RCPT")]
    Rcpt(Vec<Bytes>),
    /// `SMFIC_DATA` `'T'`: the client sent `DATA`.
    #[doc(alias = "SMFIC_DATA")]
    Data,
    /// `SMFIC_HEADER` `'L'`: one header field, unfolded neither by the MTA
    /// nor by us. `value` keeps embedded CRLF of folded lines, and keeps its
    /// leading space only if `SMFIP_HDR_LEADSPC` was negotiated (otherwise
    /// the MTA strips one space after the colon; for `simple` header
    /// canonicalization we need it back).
    #[doc(alias = "SMFIC_HEADER")]
    Header {
        /// Field name, without the colon.
        name: Bytes,
        /// Field value, raw octets (8-bit bytes arrive untouched).
        value: Bytes,
    },
    /// `SMFIC_EOH` `'N'`: all header fields have been sent.
    #[doc(alias = "SMFIC_EOH")]
    EndOfHeaders,
    /// `SMFIC_BODY` `'B'`: a chunk of the body, any bytes, CRLF line ends.
    /// Chunk boundaries are arbitrary (they can split a CRLF).
    #[doc(alias = "SMFIC_BODY")]
    Body(Bytes),
    /// `SMFIC_BODYEOB` `'E'`: end of message; the only step at which a
    /// milter may send modifications (`SMFIR_ADDHEADER` ...).
    ///
    /// libmilter would treat data in this packet as a last body chunk; no
    /// MTA we know sends any (Postfix and sendmail send all body data in
    /// `SMFIC_BODY`), so rather than silently dropping body bytes (and
    /// signing the wrong body) [`Command::parse`] rejects such a packet.
    #[doc(alias = "SMFIC_BODYEOB")]
    EndOfMessage,
    /// `SMFIC_ABORT` `'A'`: forget the current message, keep the
    /// connection (and its connect/HELO state). Never answered.
    #[doc(alias = "SMFIC_ABORT")]
    Abort,
    /// `SMFIC_QUIT` `'Q'`: the MTA is done with this milter connection.
    /// Never answered.
    #[doc(alias = "SMFIC_QUIT")]
    Quit,
    /// `SMFIC_QUIT_NC` `'K'`: this SMTP session ended, but the MTA reuses
    /// the milter connection for a new one (next comes `SMFIC_CONNECT`,
    /// not `SMFIC_OPTNEG`). Never answered.
    #[doc(alias = "SMFIC_QUIT_NC")]
    QuitNewConnection,
    /// `SMFIC_UNKNOWN` `'U'`: an SMTP command line the MTA did not
    /// recognise.
    #[doc(alias = "SMFIC_UNKNOWN")]
    Unknown(Bytes),
}

impl Command {
    /// The command byte (`SMFIC_*`) of this command.
    #[must_use]
    pub fn code(&self) -> u8 {
        match self {
            Self::OptNeg(_) => code::OPTNEG,
            Self::Macro { .. } => code::MACRO,
            Self::Connect { .. } => code::CONNECT,
            Self::Helo(_) => code::HELO,
            Self::Mail(_) => code::MAIL,
            Self::Rcpt(_) => code::RCPT,
            Self::Data => code::DATA,
            Self::Header { .. } => code::HEADER,
            Self::EndOfHeaders => code::EOH,
            Self::Body(_) => code::BODY,
            Self::EndOfMessage => code::BODYEOB,
            Self::Abort => code::ABORT,
            Self::Quit => code::QUIT,
            Self::QuitNewConnection => code::QUIT_NC,
            Self::Unknown(_) => code::UNKNOWN,
        }
    }

    /// The libmilter name of this command, e.g. `"SMFIC_HEADER"`, for logs.
    #[must_use]
    pub fn wire_name(&self) -> &'static str {
        match self {
            Self::OptNeg(_) => "SMFIC_OPTNEG",
            Self::Macro { .. } => "SMFIC_MACRO",
            Self::Connect { .. } => "SMFIC_CONNECT",
            Self::Helo(_) => "SMFIC_HELO",
            Self::Mail(_) => "SMFIC_MAIL",
            Self::Rcpt(_) => "SMFIC_RCPT",
            Self::Data => "SMFIC_DATA",
            Self::Header { .. } => "SMFIC_HEADER",
            Self::EndOfHeaders => "SMFIC_EOH",
            Self::Body(_) => "SMFIC_BODY",
            Self::EndOfMessage => "SMFIC_BODYEOB",
            Self::Abort => "SMFIC_ABORT",
            Self::Quit => "SMFIC_QUIT",
            Self::QuitNewConnection => "SMFIC_QUIT_NC",
            Self::Unknown(_) => "SMFIC_UNKNOWN",
        }
    }

    /// Parses the data of one packet with command byte `code` (engine
    /// side). `data` excludes the length prefix and the command byte; the
    /// returned fields are zero-copy slices of it.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::UnknownCommand`] for a command byte not listed in
    /// [`code`]; [`ProtocolError::Truncated`] when a field is cut short or a
    /// string lacks its NUL; [`ProtocolError::Invalid`] for an unknown
    /// address family, data in a packet that takes none (including
    /// `SMFIC_BODYEOB`, see [`Command::EndOfMessage`]) or bytes after the
    /// last field.
    pub fn parse(code: u8, data: Bytes) -> Result<Command, ProtocolError> {
        let mut f = Fields::new(code, data);
        let cmd = match code {
            code::OPTNEG => Self::OptNeg(OptNeg::parse_fields(f)?),
            code::MACRO => {
                let stage = f.u8("macro stage byte")?;
                let mut pairs = Vec::new();
                while !f.is_empty() {
                    let name = f.cstr("NUL-terminated macro name")?;
                    let value = f.cstr("NUL-terminated macro value")?;
                    pairs.push((
                        Bytes::copy_from_slice(&name),
                        Bytes::copy_from_slice(&value),
                    ));
                }
                Self::Macro { stage, pairs }
            }
            code::CONNECT => {
                let hostname = f.cstr("NUL-terminated client hostname")?;
                let byte = f.u8("address family byte")?;
                let family = Family::from_code(byte).ok_or(ProtocolError::Invalid {
                    code,
                    why: "unknown address family",
                })?;
                if family == Family::Unknown {
                    f.finish("trailing bytes after address family 'U'")?;
                    Self::Connect {
                        hostname,
                        family,
                        port: 0,
                        address: Bytes::new(),
                    }
                } else {
                    let port = f.u16("u16 client port")?;
                    let address = f.cstr("NUL-terminated client address")?;
                    f.finish("trailing bytes after the client address")?;
                    Self::Connect {
                        hostname,
                        family,
                        port,
                        address,
                    }
                }
            }
            code::HELO => {
                let helo = f.cstr("NUL-terminated HELO name")?;
                f.finish("trailing bytes after the HELO name")?;
                Self::Helo(helo)
            }
            code::MAIL => Self::Mail(f.cstrs("NUL-terminated sender argument")?),
            code::RCPT => Self::Rcpt(f.cstrs("NUL-terminated recipient argument")?),
            code::DATA => {
                f.finish("unexpected data in SMFIC_DATA")?;
                Self::Data
            }
            code::HEADER => {
                let name = f.cstr("NUL-terminated header name")?;
                let value = f.cstr("NUL-terminated header value")?;
                f.finish("trailing bytes after the header value")?;
                Self::Header { name, value }
            }
            code::EOH => {
                f.finish("unexpected data in SMFIC_EOH")?;
                Self::EndOfHeaders
            }
            code::BODY => Self::Body(f.rest()),
            code::BODYEOB => {
                f.finish("body data inside SMFIC_BODYEOB is not supported")?;
                Self::EndOfMessage
            }
            code::ABORT => {
                f.finish("unexpected data in SMFIC_ABORT")?;
                Self::Abort
            }
            code::QUIT => {
                f.finish("unexpected data in SMFIC_QUIT")?;
                Self::Quit
            }
            code::QUIT_NC => {
                f.finish("unexpected data in SMFIC_QUIT_NC")?;
                Self::QuitNewConnection
            }
            code::UNKNOWN => {
                let line = f.cstr("NUL-terminated SMTP command")?;
                f.finish("trailing bytes after the SMTP command")?;
                Self::Unknown(line)
            }
            other => return Err(ProtocolError::UnknownCommand(other)),
        };
        Ok(cmd)
    }

    /// Appends this command as one packet to `out` (MTA side: our test and
    /// load client). Several commands can be appended and sent in one write.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::EmbeddedNul`] if a string field contains a NUL
    /// byte; [`ProtocolError::Invalid`] for a [`Command::Connect`] with
    /// [`Family::Unknown`] but a port or address (neither can be sent),
    /// for an empty [`Command::Mail`]/[`Command::Rcpt`] (the receiver
    /// would refuse it); [`ProtocolError::TooLarge`] past 4 GiB. On error
    /// `out` is left as it was.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), ProtocolError> {
        let code = self.code();
        match self {
            Self::OptNeg(opt) => opt.encode_packet(out),
            Self::Macro { stage, pairs } => {
                let hint = 1 + pairs
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + 2)
                    .sum::<usize>();
                encode_frame(out, code, hint, |w| {
                    w.u8(*stage);
                    for (name, value) in pairs {
                        w.cstr(name, "macro name")?;
                        w.cstr(value, "macro value")?;
                    }
                    Ok(())
                })
            }
            Self::Connect {
                hostname,
                family,
                port,
                address,
            } => {
                if *family == Family::Unknown && (*port != 0 || !address.is_empty()) {
                    return Err(ProtocolError::Invalid {
                        code,
                        why: "port or address given with address family 'U'",
                    });
                }
                let hint = hostname.len() + address.len() + 5;
                encode_frame(out, code, hint, |w| {
                    w.cstr(hostname, "client hostname")?;
                    w.u8(family.code());
                    if *family != Family::Unknown {
                        w.u16(*port);
                        w.cstr(address, "client address")?;
                    }
                    Ok(())
                })
            }
            Self::Helo(s) => one_string(out, code, s, "HELO name"),
            Self::Unknown(s) => one_string(out, code, s, "SMTP command"),
            Self::Mail(args) | Self::Rcpt(args) => {
                if args.is_empty() {
                    return Err(ProtocolError::Invalid {
                        code,
                        why: "no envelope address",
                    });
                }
                let hint = args.iter().map(|a| a.len() + 1).sum();
                encode_frame(out, code, hint, |w| {
                    for arg in args {
                        w.cstr(arg, "envelope argument")?;
                    }
                    Ok(())
                })
            }
            Self::Header { name, value } => {
                encode_frame(out, code, name.len() + value.len() + 2, |w| {
                    w.cstr(name, "header name")?;
                    w.cstr(value, "header value")
                })
            }
            Self::Body(chunk) => encode_frame(out, code, chunk.len(), |w| {
                w.raw(chunk);
                Ok(())
            }),
            Self::Data
            | Self::EndOfHeaders
            | Self::EndOfMessage
            | Self::Abort
            | Self::Quit
            | Self::QuitNewConnection => encode_frame(out, code, 0, |_| Ok(())),
        }
    }
}

/// Appends a packet whose data is exactly one NUL-terminated string.
fn one_string(
    out: &mut BytesMut,
    code: u8,
    s: &[u8],
    what: &'static str,
) -> Result<(), ProtocolError> {
    encode_frame(out, code, s.len() + 1, |w| w.cstr(s, what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milter::codec::{DEFAULT_MAX_PACKET, decode_command};

    fn b(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    /// Parses one complete frame and checks it consumed everything.
    fn parse_frame(frame: &[u8]) -> Result<Command, ProtocolError> {
        let mut buf = BytesMut::from(frame);
        let cmd = decode_command(&mut buf, DEFAULT_MAX_PACKET)?.expect("complete frame");
        assert!(buf.is_empty(), "frame not fully consumed");
        Ok(cmd)
    }

    fn encoded(cmd: &Command) -> Vec<u8> {
        let mut out = BytesMut::new();
        cmd.encode(&mut out).unwrap();
        out.to_vec()
    }

    /// (exact wire bytes, command) pairs: parse and encode must agree.
    fn vectors() -> Vec<(&'static [u8], Command)> {
        vec![
            (
                b"\x00\x00\x00\x0dO\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xff\xff",
                Command::OptNeg(OptNeg {
                    version: 6,
                    actions: 0x1ff,
                    protocol: 0x1f_ffff,
                    macros: vec![],
                }),
            ),
            (
                b"\x00\x00\x00\x1eDCj\x00mx.example\x00{daemon_name}\x00\x00",
                Command::Macro {
                    stage: b'C',
                    pairs: vec![(b(b"j"), b(b"mx.example")), (b(b"{daemon_name}"), b(b""))],
                },
            ),
            (
                b"\x00\x00\x00\x02DE",
                Command::Macro {
                    stage: b'E',
                    pairs: vec![],
                },
            ),
            (
                b"\x00\x00\x00\x1bCmail.example\x004\x00\x19192.0.2.1\x00",
                Command::Connect {
                    hostname: b(b"mail.example"),
                    family: Family::Inet,
                    port: 25,
                    address: b(b"192.0.2.1"),
                },
            ),
            (
                b"\x00\x00\x00\x0cClocalhost\x00U",
                Command::Connect {
                    hostname: b(b"localhost"),
                    family: Family::Unknown,
                    port: 0,
                    address: b(b""),
                },
            ),
            (
                b"\x00\x00\x00\x15Clocalhost\x00L\x00\x00/run/s\x00",
                Command::Connect {
                    hostname: b(b"localhost"),
                    family: Family::Unix,
                    port: 0,
                    address: b(b"/run/s"),
                },
            ),
            (
                b"\x00\x00\x00\x0cHmx.example\x00",
                Command::Helo(b(b"mx.example")),
            ),
            (
                b"\x00\x00\x00\x18M<a@example.org>\x00SIZE=9\x00",
                Command::Mail(vec![b(b"<a@example.org>"), b(b"SIZE=9")]),
            ),
            (b"\x00\x00\x00\x04M<>\x00", Command::Mail(vec![b(b"<>")])),
            (
                b"\x00\x00\x00\x11R<b@example.net>\x00",
                Command::Rcpt(vec![b(b"<b@example.net>")]),
            ),
            (b"\x00\x00\x00\x01T", Command::Data),
            (
                b"\x00\x00\x00\x11LSubject\x00 hi\r\n x\x00",
                Command::Header {
                    name: b(b"Subject"),
                    value: b(b" hi\r\n x"),
                },
            ),
            (b"\x00\x00\x00\x01N", Command::EndOfHeaders),
            (
                b"\x00\x00\x00\x05B\x00\xff\r\n",
                Command::Body(b(b"\x00\xff\r\n")),
            ),
            (b"\x00\x00\x00\x01B", Command::Body(b(b""))),
            (b"\x00\x00\x00\x01E", Command::EndOfMessage),
            (b"\x00\x00\x00\x01A", Command::Abort),
            (b"\x00\x00\x00\x01Q", Command::Quit),
            (b"\x00\x00\x00\x01K", Command::QuitNewConnection),
            (
                b"\x00\x00\x00\x09UXYZZY a\x00",
                Command::Unknown(b(b"XYZZY a")),
            ),
        ]
    }

    #[test]
    fn exact_bytes_parse_and_encode() {
        for (wire, cmd) in vectors() {
            assert_eq!(parse_frame(wire).as_ref(), Ok(&cmd), "parse {wire:?}");
            assert_eq!(encoded(&cmd), wire, "encode {cmd:?}");
        }
    }

    #[test]
    fn inet6_connect() {
        let wire = b"\x00\x00\x00\x1eC[2001:db8::1]\x006\x01\xd12001:db8::1\x00";
        let cmd = Command::Connect {
            hostname: b(b"[2001:db8::1]"),
            family: Family::Inet6,
            port: 465,
            address: b(b"2001:db8::1"),
        };
        assert_eq!(parse_frame(wire), Ok(cmd.clone()));
        assert_eq!(encoded(&cmd), wire);
    }

    #[test]
    fn every_variant_round_trips() {
        let mut all: Vec<Command> = vectors().into_iter().map(|(_, c)| c).collect();
        all.push(Command::OptNeg(OptNeg {
            version: 6,
            actions: 0x101,
            protocol: 0x10_0000,
            macros: vec![(0, b(b"j {daemon_name}")), (5, b(b"i"))],
        }));
        // All fifteen variants are present.
        let mut codes: Vec<u8> = all.iter().map(Command::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 15);
        // Encode them back to back into one buffer, then decode in order.
        let mut buf = BytesMut::new();
        for cmd in &all {
            cmd.encode(&mut buf).unwrap();
        }
        for cmd in &all {
            assert_eq!(
                decode_command(&mut buf, DEFAULT_MAX_PACKET).as_ref(),
                Ok(&Some(cmd.clone()))
            );
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn raw_header_bytes_survive_exactly() {
        // Latin-1 "é" (0xE9), a leading space, a folded line and a bare 0x80:
        // none of it is valid UTF-8 and all of it must come back unchanged.
        let value: &'static [u8] = b" Caf\xe9 cr\xe8me\r\n\tsuite \x80";
        let cmd = Command::Header {
            name: b(b"Subject"),
            value: b(value),
        };
        let mut buf = BytesMut::new();
        cmd.encode(&mut buf).unwrap();
        let Some(Command::Header { name, value: got }) =
            decode_command(&mut buf, DEFAULT_MAX_PACKET).unwrap()
        else {
            panic!("not a header");
        };
        assert_eq!(&name[..], b"Subject");
        assert_eq!(&got[..], value);
        assert_eq!(got.first(), Some(&b' '), "leading space kept");
    }

    #[test]
    fn missing_terminators() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (
                b"\x00\x00\x00\x08LSubject",
                ProtocolError::Truncated {
                    code: b'L',
                    what: "NUL-terminated header name",
                },
            ),
            (
                b"\x00\x00\x00\x0bLSubject\x00hi",
                ProtocolError::Truncated {
                    code: b'L',
                    what: "NUL-terminated header value",
                },
            ),
            (
                b"\x00\x00\x00\x03Hmx",
                ProtocolError::Truncated {
                    code: b'H',
                    what: "NUL-terminated HELO name",
                },
            ),
            (
                b"\x00\x00\x00\x01M",
                ProtocolError::Truncated {
                    code: b'M',
                    what: "NUL-terminated sender argument",
                },
            ),
            (
                b"\x00\x00\x00\x07R<a>\x00xy",
                ProtocolError::Truncated {
                    code: b'R',
                    what: "NUL-terminated recipient argument",
                },
            ),
            (
                b"\x00\x00\x00\x04DCj\x00",
                ProtocolError::Truncated {
                    code: b'D',
                    what: "NUL-terminated macro value",
                },
            ),
            (
                b"\x00\x00\x00\x01D",
                ProtocolError::Truncated {
                    code: b'D',
                    what: "macro stage byte",
                },
            ),
            (
                b"\x00\x00\x00\x03Cho",
                ProtocolError::Truncated {
                    code: b'C',
                    what: "NUL-terminated client hostname",
                },
            ),
            (
                b"\x00\x00\x00\x03Ch\x00",
                ProtocolError::Truncated {
                    code: b'C',
                    what: "address family byte",
                },
            ),
            (
                b"\x00\x00\x00\x05Ch\x004\x00",
                ProtocolError::Truncated {
                    code: b'C',
                    what: "u16 client port",
                },
            ),
            (
                b"\x00\x00\x00\x09Ch\x004\x00\x191.2",
                ProtocolError::Truncated {
                    code: b'C',
                    what: "NUL-terminated client address",
                },
            ),
            (
                b"\x00\x00\x00\x03Uab",
                ProtocolError::Truncated {
                    code: b'U',
                    what: "NUL-terminated SMTP command",
                },
            ),
            (
                b"\x00\x00\x00\x09O\x00\x00\x00\x06\x00\x00\x01\xff",
                ProtocolError::Truncated {
                    code: b'O',
                    what: "u32 protocol flags",
                },
            ),
        ];
        for (wire, want) in cases {
            assert_eq!(parse_frame(wire).as_ref(), Err(want), "{wire:?}");
        }
    }

    #[test]
    fn invalid_layouts() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x00\x00\x00\x04Ch\x00X", "unknown address family"),
            (
                b"\x00\x00\x00\x05Ch\x00U\x00",
                "trailing bytes after address family 'U'",
            ),
            (
                b"\x00\x00\x00\x09Ch\x004\x00\x19a\x00b",
                "trailing bytes after the client address",
            ),
            (
                b"\x00\x00\x00\x06La\x00b\x00c",
                "trailing bytes after the header value",
            ),
            (b"\x00\x00\x00\x02TT", "unexpected data in SMFIC_DATA"),
            (
                b"\x00\x00\x00\x02Ex",
                "body data inside SMFIC_BODYEOB is not supported",
            ),
            (b"\x00\x00\x00\x02Q\x00", "unexpected data in SMFIC_QUIT"),
        ];
        for (wire, why) in cases {
            let code = wire[4];
            assert_eq!(
                parse_frame(wire),
                Err(ProtocolError::Invalid { code, why }),
                "{wire:?}"
            );
        }
    }

    #[test]
    fn encode_refuses_what_cannot_be_framed() {
        let mut out = BytesMut::new();
        let nul_header = Command::Header {
            name: b(b"X\0Y"),
            value: b(b"v"),
        };
        assert_eq!(
            nul_header.encode(&mut out),
            Err(ProtocolError::EmbeddedNul {
                code: b'L',
                what: "header name"
            })
        );
        let unknown_with_port = Command::Connect {
            hostname: b(b"h"),
            family: Family::Unknown,
            port: 25,
            address: b(b""),
        };
        assert!(matches!(
            unknown_with_port.encode(&mut out),
            Err(ProtocolError::Invalid { code: b'C', .. })
        ));
        assert!(matches!(
            Command::Rcpt(vec![]).encode(&mut out),
            Err(ProtocolError::Invalid { code: b'R', .. })
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn family_codes_round_trip() {
        for f in [Family::Unknown, Family::Unix, Family::Inet, Family::Inet6] {
            assert_eq!(Family::from_code(f.code()), Some(f));
        }
        assert_eq!(Family::from_code(b'x'), None);
    }

    #[test]
    fn wire_names_match_codes() {
        for (_, cmd) in vectors() {
            assert!(cmd.wire_name().starts_with("SMFIC_"));
        }
        assert_eq!(Command::EndOfMessage.wire_name(), "SMFIC_BODYEOB");
    }
}
