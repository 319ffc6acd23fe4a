//! Milter-to-MTA replies (`SMFIR_*`): what the engine answers.
//!
//! [`Reply::encode`] is the engine side: it appends one reply packet to a
//! caller's buffer, so all replies of one step (for example an
//! `SMFIR_INSHEADER` carrying the `DKIM-Signature` and the final
//! `SMFIR_CONTINUE` at end of message) go out in a single write.
//! [`Reply::parse`] is the MTA side, used by our own test and load client.
//!
//! A protocol step is answered by exactly one *final* reply (see
//! [`Reply::is_final`]), optionally preceded by modification requests and
//! progress notes. Modifications are only legal in answer to
//! `SMFIC_BODYEOB`, and only if the matching `SMFIF_*` action was
//! negotiated ([`Reply::required_action`]). Steps for which an `SMFIP_NR_*`
//! flag was negotiated get no reply at all; see
//! [`super::negotiate::Negotiated::no_reply`].

use bytes::{Bytes, BytesMut};

use super::codec::{Fields, ProtocolError, encode_frame};
use super::command::OptNeg;
use super::negotiate::action;

/// Reply bytes of the milter-to-MTA packets (`SMFIR_*` in libmilter's
/// `mfdef.h`).
pub mod code {
    /// Option negotiation answer (same byte as `SMFIC_OPTNEG`).
    #[doc(alias = "SMFIR_OPTNEG")]
    pub const OPTNEG: u8 = b'O';
    /// Go on with the next step.
    #[doc(alias = "SMFIR_CONTINUE")]
    pub const CONTINUE: u8 = b'c';
    /// Accept the message (or connection) without further filtering.
    #[doc(alias = "SMFIR_ACCEPT")]
    pub const ACCEPT: u8 = b'a';
    /// Reject with the MTA's default 5xx.
    #[doc(alias = "SMFIR_REJECT")]
    pub const REJECT: u8 = b'r';
    /// Temporary failure with the MTA's default 4xx.
    #[doc(alias = "SMFIR_TEMPFAIL")]
    pub const TEMPFAIL: u8 = b't';
    /// Accept but silently drop the message.
    #[doc(alias = "SMFIR_DISCARD")]
    pub const DISCARD: u8 = b'd';
    /// Reject or tempfail with an explicit SMTP reply text.
    #[doc(alias = "SMFIR_REPLYCODE")]
    pub const REPLYCODE: u8 = b'y';
    /// Skip the remaining events of this kind (body chunks).
    #[doc(alias = "SMFIR_SKIP")]
    pub const SKIP: u8 = b's';
    /// Still working: resets the MTA's timeout.
    #[doc(alias = "SMFIR_PROGRESS")]
    pub const PROGRESS: u8 = b'p';
    /// Append a header field.
    #[doc(alias = "SMFIR_ADDHEADER")]
    pub const ADDHEADER: u8 = b'h';
    /// Insert a header field at a position.
    #[doc(alias = "SMFIR_INSHEADER")]
    pub const INSHEADER: u8 = b'i';
    /// Change or delete a header field.
    #[doc(alias = "SMFIR_CHGHEADER")]
    pub const CHGHEADER: u8 = b'm';
    /// Replace (a chunk of) the body.
    #[doc(alias = "SMFIR_REPLBODY")]
    pub const REPLBODY: u8 = b'b';
    /// Put the message on hold (Postfix: the hold queue).
    #[doc(alias = "SMFIR_QUARANTINE")]
    pub const QUARANTINE: u8 = b'q';
    /// Add a recipient (not emitted by us; decoded as [`super::Reply::Other`]).
    #[doc(alias = "SMFIR_ADDRCPT")]
    pub const ADDRCPT: u8 = b'+';
    /// Remove a recipient (not emitted by us; decoded as
    /// [`super::Reply::Other`]).
    #[doc(alias = "SMFIR_DELRCPT")]
    pub const DELRCPT: u8 = b'-';
    /// Add a recipient with ESMTP parameters (not emitted by us; decoded as
    /// [`super::Reply::Other`]).
    #[doc(alias = "SMFIR_ADDRCPT_PAR")]
    pub const ADDRCPT_PAR: u8 = b'2';
    /// Change the envelope sender (not emitted by us; decoded as
    /// [`super::Reply::Other`]).
    #[doc(alias = "SMFIR_CHGFROM")]
    pub const CHGFROM: u8 = b'e';
}

/// One milter-to-MTA reply.
///
/// String fields must not contain NUL bytes (the NUL is their terminator on
/// the wire); [`Reply::encode`] refuses them rather than emit a packet the
/// MTA would split differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `SMFIR_OPTNEG` `'O'`: the answer to `SMFIC_OPTNEG`; build it with
    /// [`super::negotiate::negotiate`].
    #[doc(alias = "SMFIR_OPTNEG")]
    OptNeg(OptNeg),
    /// `SMFIR_CONTINUE` `'c'`: proceed to the next step. At end of message:
    /// deliver, with any modifications sent before it.
    #[doc(alias = "SMFIR_CONTINUE")]
    Continue,
    /// `SMFIR_ACCEPT` `'a'`: accept; the MTA stops sending this message (or
    /// connection, if sent at connect/HELO) to the milter.
    #[doc(alias = "SMFIR_ACCEPT")]
    Accept,
    /// `SMFIR_REJECT` `'r'`: reject with the MTA's default 5xx reply.
    #[doc(alias = "SMFIR_REJECT")]
    Reject,
    /// `SMFIR_TEMPFAIL` `'t'`: fail temporarily with the MTA's default 4xx.
    #[doc(alias = "SMFIR_TEMPFAIL")]
    TempFail,
    /// `SMFIR_DISCARD` `'d'`: claim acceptance, then drop the message.
    #[doc(alias = "SMFIR_DISCARD")]
    Discard,
    /// `SMFIR_REPLYCODE` `'y'`: reject or tempfail with this SMTP reply,
    /// e.g. `451 4.7.1 try again later`. The first digit (4 or 5) decides
    /// which; MTAs refuse text that does not start with a 4xx/5xx code, so
    /// the caller must build it well-formed (this codec only checks for
    /// NULs). Multi-line replies separate lines with CRLF.
    #[doc(alias = "SMFIR_REPLYCODE")]
    ReplyCode(Bytes),
    /// `SMFIR_SKIP` `'s'`: in answer to a body chunk, skip the rest of the
    /// body (only if the MTA offered `SMFIP_SKIP`).
    #[doc(alias = "SMFIR_SKIP")]
    Skip,
    /// `SMFIR_PROGRESS` `'p'`: "still working", resets the MTA's reply
    /// timeout; not an answer by itself.
    #[doc(alias = "SMFIR_PROGRESS")]
    Progress,
    /// `SMFIR_ADDHEADER` `'h'`: append a header field at the end of the
    /// header (needs `SMFIF_ADDHDRS`).
    ///
    /// If `SMFIP_HDR_LEADSPC` was negotiated the MTA writes `name:value`
    /// verbatim, so `value` should start with its space; otherwise the MTA
    /// inserts one space after the colon itself.
    #[doc(alias = "SMFIR_ADDHEADER")]
    AddHeader {
        /// Field name, without the colon.
        name: Bytes,
        /// Field value; folded lines separated by CRLF plus whitespace.
        value: Bytes,
    },
    /// `SMFIR_INSHEADER` `'i'`: insert a header field before the field at
    /// position `index` among all fields; 0 inserts at the very top, which
    /// is where a `DKIM-Signature` belongs. Needs `SMFIF_ADDHDRS`, not
    /// `SMFIF_CHGHDRS` (libmilter's `smfi_insheader` checks `ADDHDRS`;
    /// supported by sendmail since 8.13 and Postfix since 2.6).
    /// Same leading-space rule as [`Reply::AddHeader`].
    ///
    /// Note that the index counts the fields the MTA has, which may include
    /// fields it added itself (for example its own `Received:`).
    #[doc(alias = "SMFIR_INSHEADER")]
    InsertHeader {
        /// Position among all header fields, 0 = top.
        index: u32,
        /// Field name, without the colon.
        name: Bytes,
        /// Field value.
        value: Bytes,
    },
    /// `SMFIR_CHGHEADER` `'m'`: replace the `index`-th occurrence (1-based,
    /// counted among fields named `name`, case-insensitively) of a field;
    /// an empty `value` deletes it. This is how a verifier removes a forged
    /// `Authentication-Results`. Needs `SMFIF_CHGHDRS`. Postfix treats
    /// index 0 as 1, for sendmail compatibility.
    #[doc(alias = "SMFIR_CHGHEADER")]
    ChangeHeader {
        /// Occurrence among fields with this name, 1-based.
        index: u32,
        /// Field name, without the colon.
        name: Bytes,
        /// New value; empty deletes the field.
        value: Bytes,
    },
    /// `SMFIR_REPLBODY` `'b'`: (a chunk of) the replacement body, raw bytes
    /// with CRLF line ends; several packets concatenate. Needs
    /// `SMFIF_CHGBODY`.
    #[doc(alias = "SMFIR_REPLBODY")]
    ReplaceBody(Bytes),
    /// `SMFIR_QUARANTINE` `'q'`: hold the message, with a reason. Needs
    /// `SMFIF_QUARANTINE`.
    #[doc(alias = "SMFIR_QUARANTINE")]
    Quarantine(Bytes),
    /// A recipient or sender modification this codec does not model
    /// (`SMFIR_ADDRCPT` `'+'`, `SMFIR_DELRCPT` `'-'`, `SMFIR_ADDRCPT_PAR`
    /// `'2'`, `SMFIR_CHGFROM` `'e'`), kept as raw data so our client can
    /// talk to milters that send them. The engine never emits these.
    Other {
        /// One of the four reply bytes above.
        code: u8,
        /// The packet data, unparsed.
        data: Bytes,
    },
}

impl Reply {
    /// The reply byte (`SMFIR_*`) of this reply.
    #[must_use]
    pub fn code(&self) -> u8 {
        match self {
            Self::OptNeg(_) => code::OPTNEG,
            Self::Continue => code::CONTINUE,
            Self::Accept => code::ACCEPT,
            Self::Reject => code::REJECT,
            Self::TempFail => code::TEMPFAIL,
            Self::Discard => code::DISCARD,
            Self::ReplyCode(_) => code::REPLYCODE,
            Self::Skip => code::SKIP,
            Self::Progress => code::PROGRESS,
            Self::AddHeader { .. } => code::ADDHEADER,
            Self::InsertHeader { .. } => code::INSHEADER,
            Self::ChangeHeader { .. } => code::CHGHEADER,
            Self::ReplaceBody(_) => code::REPLBODY,
            Self::Quarantine(_) => code::QUARANTINE,
            Self::Other { code, .. } => *code,
        }
    }

    /// The libmilter name of this reply, e.g. `"SMFIR_INSHEADER"`, for logs.
    #[must_use]
    pub fn wire_name(&self) -> &'static str {
        match self {
            Self::OptNeg(_) => "SMFIR_OPTNEG",
            Self::Continue => "SMFIR_CONTINUE",
            Self::Accept => "SMFIR_ACCEPT",
            Self::Reject => "SMFIR_REJECT",
            Self::TempFail => "SMFIR_TEMPFAIL",
            Self::Discard => "SMFIR_DISCARD",
            Self::ReplyCode(_) => "SMFIR_REPLYCODE",
            Self::Skip => "SMFIR_SKIP",
            Self::Progress => "SMFIR_PROGRESS",
            Self::AddHeader { .. } => "SMFIR_ADDHEADER",
            Self::InsertHeader { .. } => "SMFIR_INSHEADER",
            Self::ChangeHeader { .. } => "SMFIR_CHGHEADER",
            Self::ReplaceBody(_) => "SMFIR_REPLBODY",
            Self::Quarantine(_) => "SMFIR_QUARANTINE",
            Self::Other { code, .. } => match *code {
                code::ADDRCPT => "SMFIR_ADDRCPT",
                code::DELRCPT => "SMFIR_DELRCPT",
                code::ADDRCPT_PAR => "SMFIR_ADDRCPT_PAR",
                code::CHGFROM => "SMFIR_CHGFROM",
                _ => "SMFIR_?",
            },
        }
    }

    /// Whether this reply ends the MTA's wait for the current step.
    ///
    /// True for the verdicts (`Continue`, `Accept`, `Reject`, `TempFail`,
    /// `Discard`, `ReplyCode`), for `Skip` (the answer to a body chunk) and
    /// for `OptNeg` (the whole answer to `SMFIC_OPTNEG`). False for
    /// modifications, `Quarantine` and `Progress`, which the MTA collects
    /// while it keeps waiting for the verdict. A client reads replies until
    /// the first final one.
    #[must_use]
    pub fn is_final(&self) -> bool {
        match self {
            Self::OptNeg(_)
            | Self::Continue
            | Self::Accept
            | Self::Reject
            | Self::TempFail
            | Self::Discard
            | Self::ReplyCode(_)
            | Self::Skip => true,
            Self::Progress
            | Self::AddHeader { .. }
            | Self::InsertHeader { .. }
            | Self::ChangeHeader { .. }
            | Self::ReplaceBody(_)
            | Self::Quarantine(_)
            | Self::Other { .. } => false,
        }
    }

    /// The `SMFIF_*` action bit that must have been negotiated before this
    /// reply may be sent, if any. An MTA receiving a modification it did
    /// not allow treats it as a protocol error.
    #[must_use]
    pub fn required_action(&self) -> Option<u32> {
        match self {
            Self::AddHeader { .. } | Self::InsertHeader { .. } => Some(action::ADDHDRS),
            Self::ChangeHeader { .. } => Some(action::CHGHDRS),
            Self::ReplaceBody(_) => Some(action::CHGBODY),
            Self::Quarantine(_) => Some(action::QUARANTINE),
            Self::Other { code, .. } => match *code {
                code::ADDRCPT => Some(action::ADDRCPT),
                code::DELRCPT => Some(action::DELRCPT),
                code::ADDRCPT_PAR => Some(action::ADDRCPT_PAR),
                code::CHGFROM => Some(action::CHGFROM),
                _ => None,
            },
            _ => None,
        }
    }

    /// Appends this reply as one packet to `out` (engine side).
    ///
    /// # Errors
    ///
    /// [`ProtocolError::EmbeddedNul`] if a header name or value, the reply
    /// text or the quarantine reason contains a NUL byte (it would end the
    /// string early on the wire and shift the rest of the packet);
    /// [`ProtocolError::Invalid`] for an [`Reply::Other`] whose code is not
    /// one of the four unmodelled replies; [`ProtocolError::TooLarge`] past
    /// 4 GiB. On error `out` is left exactly as it was, so replies already
    /// collected for this step are intact.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), ProtocolError> {
        let code = self.code();
        match self {
            Self::OptNeg(opt) => opt.encode_packet(out),
            Self::Continue
            | Self::Accept
            | Self::Reject
            | Self::TempFail
            | Self::Discard
            | Self::Skip
            | Self::Progress => encode_frame(out, code, 0, |_| Ok(())),
            Self::ReplyCode(text) => {
                encode_frame(out, code, text.len() + 1, |w| w.cstr(text, "reply text"))
            }
            Self::Quarantine(reason) => encode_frame(out, code, reason.len() + 1, |w| {
                w.cstr(reason, "quarantine reason")
            }),
            Self::AddHeader { name, value } => {
                encode_frame(out, code, name.len() + value.len() + 2, |w| {
                    w.cstr(name, "header name")?;
                    w.cstr(value, "header value")
                })
            }
            Self::InsertHeader { index, name, value }
            | Self::ChangeHeader { index, name, value } => {
                encode_frame(out, code, name.len() + value.len() + 6, |w| {
                    w.u32(*index);
                    w.cstr(name, "header name")?;
                    w.cstr(value, "header value")
                })
            }
            Self::ReplaceBody(chunk) => encode_frame(out, code, chunk.len(), |w| {
                w.raw(chunk);
                Ok(())
            }),
            Self::Other { data, .. } => {
                if !is_unmodelled(code) {
                    return Err(ProtocolError::Invalid {
                        code,
                        why: "Reply::Other only carries SMFIR_ADDRCPT, DELRCPT, ADDRCPT_PAR or CHGFROM",
                    });
                }
                encode_frame(out, code, data.len(), |w| {
                    w.raw(data);
                    Ok(())
                })
            }
        }
    }

    /// Parses the data of one reply packet with reply byte `code` (MTA
    /// side). `data` excludes the length prefix and the reply byte.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::UnknownReply`] for a reply byte not listed in
    /// [`code`]; [`ProtocolError::Truncated`] for a cut-short field or a
    /// missing NUL; [`ProtocolError::Invalid`] for data after the last field
    /// (Postfix likewise rejects surplus reply bytes).
    pub fn parse(code: u8, data: Bytes) -> Result<Reply, ProtocolError> {
        let mut f = Fields::new(code, data);
        let reply = match code {
            code::OPTNEG => Self::OptNeg(OptNeg::parse_fields(f)?),
            code::CONTINUE => no_data(f, Self::Continue)?,
            code::ACCEPT => no_data(f, Self::Accept)?,
            code::REJECT => no_data(f, Self::Reject)?,
            code::TEMPFAIL => no_data(f, Self::TempFail)?,
            code::DISCARD => no_data(f, Self::Discard)?,
            code::SKIP => no_data(f, Self::Skip)?,
            code::PROGRESS => no_data(f, Self::Progress)?,
            code::REPLYCODE => {
                let text = f.cstr("NUL-terminated reply text")?;
                f.finish("trailing bytes after the reply text")?;
                Self::ReplyCode(text)
            }
            code::QUARANTINE => {
                let reason = f.cstr("NUL-terminated quarantine reason")?;
                f.finish("trailing bytes after the quarantine reason")?;
                Self::Quarantine(reason)
            }
            code::ADDHEADER => {
                let name = f.cstr("NUL-terminated header name")?;
                let value = f.cstr("NUL-terminated header value")?;
                f.finish("trailing bytes after the header value")?;
                Self::AddHeader { name, value }
            }
            code::INSHEADER | code::CHGHEADER => {
                let index = f.u32("u32 header index")?;
                let name = f.cstr("NUL-terminated header name")?;
                let value = f.cstr("NUL-terminated header value")?;
                f.finish("trailing bytes after the header value")?;
                if code == code::INSHEADER {
                    Self::InsertHeader { index, name, value }
                } else {
                    Self::ChangeHeader { index, name, value }
                }
            }
            code::REPLBODY => Self::ReplaceBody(f.rest()),
            other if is_unmodelled(other) => Self::Other {
                code: other,
                data: f.rest(),
            },
            other => return Err(ProtocolError::UnknownReply(other)),
        };
        Ok(reply)
    }
}

/// The replies decoded as [`Reply::Other`].
fn is_unmodelled(code: u8) -> bool {
    matches!(
        code,
        code::ADDRCPT | code::DELRCPT | code::ADDRCPT_PAR | code::CHGFROM
    )
}

/// Checks that a reply which carries no data has none.
fn no_data(f: Fields, reply: Reply) -> Result<Reply, ProtocolError> {
    f.finish("unexpected data in a reply that takes none")?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milter::codec::{DEFAULT_MAX_PACKET, decode_reply};

    fn b(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    fn encoded(reply: &Reply) -> Vec<u8> {
        let mut out = BytesMut::new();
        reply.encode(&mut out).unwrap();
        out.to_vec()
    }

    /// (exact wire bytes, reply) pairs covering every variant.
    fn vectors() -> Vec<(&'static [u8], Reply)> {
        vec![
            (
                b"\x00\x00\x00\x0dO\x00\x00\x00\x06\x00\x00\x00\x11\x00\x1f\xf0\x80",
                Reply::OptNeg(OptNeg {
                    version: 6,
                    actions: 0x11,
                    protocol: 0x1f_f080,
                    macros: vec![],
                }),
            ),
            (
                b"\x00\x00\x00\x1fO\x00\x00\x00\x06\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x02{auth_authen}\x00",
                Reply::OptNeg(OptNeg {
                    version: 6,
                    actions: 0x101,
                    protocol: 0,
                    macros: vec![(2, b(b"{auth_authen}"))],
                }),
            ),
            (b"\x00\x00\x00\x01c", Reply::Continue),
            (b"\x00\x00\x00\x01a", Reply::Accept),
            (b"\x00\x00\x00\x01r", Reply::Reject),
            (b"\x00\x00\x00\x01t", Reply::TempFail),
            (b"\x00\x00\x00\x01d", Reply::Discard),
            (
                b"\x00\x00\x00\x11y451 4.7.1 later\x00",
                Reply::ReplyCode(b(b"451 4.7.1 later")),
            ),
            (b"\x00\x00\x00\x01s", Reply::Skip),
            (b"\x00\x00\x00\x01p", Reply::Progress),
            (
                b"\x00\x00\x00\x0bhX-Seen\x00 1\x00",
                Reply::AddHeader {
                    name: b(b"X-Seen"),
                    value: b(b" 1"),
                },
            ),
            (
                b"\x00\x00\x00\x1di\x00\x00\x00\x00DKIM-Signature\x00 v=1; a=\x00",
                Reply::InsertHeader {
                    index: 0,
                    name: b(b"DKIM-Signature"),
                    value: b(b" v=1; a="),
                },
            ),
            (
                b"\x00\x00\x00\x1dm\x00\x00\x00\x02Authentication-Results\x00\x00",
                Reply::ChangeHeader {
                    index: 2,
                    name: b(b"Authentication-Results"),
                    value: b(b""),
                },
            ),
            (b"\x00\x00\x00\x04bx\x00\r", Reply::ReplaceBody(b(b"x\x00\r"))),
            (b"\x00\x00\x00\x06qspam\x00", Reply::Quarantine(b(b"spam"))),
            (b"\x00\x00\x00\x05+<a>\x00", Reply::Other {
                code: b'+',
                data: b(b"<a>\x00"),
            }),
        ]
    }

    #[test]
    fn exact_bytes_encode_and_parse() {
        for (wire, reply) in vectors() {
            assert_eq!(encoded(&reply), wire, "encode {reply:?}");
            let mut buf = BytesMut::from(wire);
            assert_eq!(
                decode_reply(&mut buf, DEFAULT_MAX_PACKET),
                Ok(Some(reply.clone())),
                "parse {wire:?}"
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn every_variant_round_trips_in_one_buffer() {
        let all: Vec<Reply> = vectors().into_iter().map(|(_, r)| r).collect();
        let mut codes: Vec<u8> = all.iter().map(Reply::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 15, "all fifteen variants covered");
        let mut buf = BytesMut::new();
        for r in &all {
            r.encode(&mut buf).unwrap();
        }
        for r in &all {
            assert_eq!(
                decode_reply(&mut buf, DEFAULT_MAX_PACKET),
                Ok(Some(r.clone()))
            );
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn eight_bit_header_value_is_byte_exact() {
        let value: &'static [u8] = b" Ren\xe9e \xff\xfe";
        let reply = Reply::InsertHeader {
            index: 0,
            name: b(b"X-Latin1"),
            value: b(value),
        };
        let mut buf = BytesMut::new();
        reply.encode(&mut buf).unwrap();
        let Some(Reply::InsertHeader { value: got, .. }) =
            decode_reply(&mut buf, DEFAULT_MAX_PACKET).unwrap()
        else {
            panic!("not an insert");
        };
        assert_eq!(&got[..], value);
    }

    #[test]
    fn nul_bytes_are_refused_on_encode() {
        let cases = [
            (Reply::ReplyCode(b(b"550 5.7.1 \0no")), "reply text", b'y'),
            (Reply::Quarantine(b(b"\0")), "quarantine reason", b'q'),
            (
                Reply::ChangeHeader {
                    index: 1,
                    name: b(b"A\0"),
                    value: b(b""),
                },
                "header name",
                b'm',
            ),
            (
                Reply::InsertHeader {
                    index: 0,
                    name: b(b"A"),
                    value: b(b"x\0"),
                },
                "header value",
                b'i',
            ),
        ];
        for (reply, what, code) in cases {
            let mut out = BytesMut::from(&b"\x00\x00\x00\x01c"[..]);
            assert_eq!(
                reply.encode(&mut out),
                Err(ProtocolError::EmbeddedNul { code, what })
            );
            assert_eq!(&out[..], b"\x00\x00\x00\x01c", "earlier replies intact");
        }
        // Raw body bytes may contain NUL.
        assert!(
            Reply::ReplaceBody(b(b"\0"))
                .encode(&mut BytesMut::new())
                .is_ok()
        );
    }

    #[test]
    fn other_with_a_modelled_code_is_refused() {
        let reply = Reply::Other {
            code: b'c',
            data: Bytes::new(),
        };
        assert!(matches!(
            reply.encode(&mut BytesMut::new()),
            Err(ProtocolError::Invalid { code: b'c', .. })
        ));
    }

    #[test]
    fn malformed_replies() {
        assert_eq!(
            Reply::parse(b'c', b(b"x")),
            Err(ProtocolError::Invalid {
                code: b'c',
                why: "unexpected data in a reply that takes none"
            })
        );
        assert_eq!(
            Reply::parse(b'i', b(b"\x00\x00\x00")),
            Err(ProtocolError::Truncated {
                code: b'i',
                what: "u32 header index"
            })
        );
        assert_eq!(
            Reply::parse(b'h', b(b"X\x00v")),
            Err(ProtocolError::Truncated {
                code: b'h',
                what: "NUL-terminated header value"
            })
        );
        assert_eq!(
            Reply::parse(b'y', b(b"451")),
            Err(ProtocolError::Truncated {
                code: b'y',
                what: "NUL-terminated reply text"
            })
        );
        assert_eq!(
            Reply::parse(
                b'O',
                b(b"\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
            ),
            Err(ProtocolError::Truncated {
                code: b'O',
                what: "u32 macro stage"
            })
        );
        assert_eq!(
            Reply::parse(b'f', Bytes::new()),
            Err(ProtocolError::UnknownReply(b'f'))
        );
    }

    #[test]
    fn finality_and_required_actions() {
        for (_, r) in vectors() {
            let final_ = matches!(
                r,
                Reply::OptNeg(_)
                    | Reply::Continue
                    | Reply::Accept
                    | Reply::Reject
                    | Reply::TempFail
                    | Reply::Discard
                    | Reply::ReplyCode(_)
                    | Reply::Skip
            );
            assert_eq!(r.is_final(), final_, "{r:?}");
            assert!(r.wire_name().starts_with("SMFIR_"));
            if r.is_final() {
                assert_eq!(r.required_action(), None);
            }
        }
        let ins = Reply::InsertHeader {
            index: 0,
            name: Bytes::new(),
            value: Bytes::new(),
        };
        assert_eq!(ins.required_action(), Some(action::ADDHDRS));
        let chg = Reply::ChangeHeader {
            index: 1,
            name: Bytes::new(),
            value: Bytes::new(),
        };
        assert_eq!(chg.required_action(), Some(action::CHGHDRS));
        assert!(!Reply::Progress.is_final());
    }
}
