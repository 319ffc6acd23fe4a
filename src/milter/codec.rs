//! Framing: splitting a byte stream into milter packets, and writing them.
//!
//! Every milter packet, in both directions, is
//!
//! ```text
//! +----------------+------+----------------------+
//! | length: u32 BE | code | data (length-1 bytes)|
//! +----------------+------+----------------------+
//! ```
//!
//! where `length` counts the command byte plus the data, so a well-formed
//! packet has `length >= 1`. The length prefix is the only thing a peer
//! controls before we commit memory, so [`decode_frame`] checks it against
//! the caller's limit (and against 0) *before* reserving anything: a hostile
//! or confused peer announcing a 4 GiB packet costs us four bytes, not 4 GiB.
//!
//! Decoding is zero-copy: a complete packet is split off the front of the
//! caller's [`BytesMut`] with `split_to(..).freeze()`, and every field the
//! command and reply parsers hand out (header names and values, body chunks,
//! macro values) is a [`Bytes`] slice of that same allocation. Nothing is
//! converted to `String`: milter data is raw octets (a Latin-1 `Subject` is
//! legal in the wild and must reach the DKIM hasher unchanged).
//!
//! Encoding appends to a caller's [`BytesMut`], so a session can collect all
//! replies for one protocol step (say, two `SMFIR_ADDHEADER`s and a
//! `SMFIR_CONTINUE`) and send them with a single write.
//!
//! Errors are reported as [`ProtocolError`]; after any error the connection
//! should be dropped, since the stream can no longer be trusted to be in sync.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::command::Command;
use super::reply::Reply;

/// Size of the big-endian length prefix in front of every packet.
pub const LENGTH_PREFIX: usize = 4;

/// The default upper bound for one packet's `length` field (command byte
/// plus data), in bytes: 1 MiB plus 64 KiB of slack.
///
/// Why this number: libmilter's body chunks are at most 64 KiB - 1 by default
/// (`MILTER_MAX_DATA_SIZE`, also Postfix's `MILTER_CHUNK_SIZE`), but an MTA
/// that negotiated `SMFIP_MDS_1M` may send chunks of up to 1 MiB - 1
/// (`MILTER_MDS_1M`). A single header is also one packet, and Postfix allows
/// header fields up to `header_size_limit` (100 KiB by default), which is
/// already past 64 KiB. 1 MiB covers the largest chunk any MTA may send us;
/// the slack covers the command byte and headers or macro packets that are a
/// little larger than a maximal chunk. Anything beyond that is refused
/// before a single byte of buffer is reserved for it.
pub const DEFAULT_MAX_PACKET: usize = (1 << 20) + (64 << 10);

/// Packets of the size of one that does not fit the read buffer that
/// [`decode_frame`] makes room for at once (body chunks: 64 KiB each)...
const READ_AHEAD_PACKETS: usize = 4;

/// ...up to this many bytes (larger packets get room for themselves only).
const READ_AHEAD_MAX: usize = 512 << 10;

/// Largest data a packet can carry at all: the length field is a `u32`.
const WIRE_MAX: usize = u32::MAX as usize;

/// Everything that can go wrong while framing, parsing, encoding or
/// negotiating milter packets.
///
/// The `code` carried by several variants is the packet's command byte (for
/// example `b'L'` for `SMFIC_HEADER` or `b'h'` for `SMFIR_ADDHEADER`); the
/// `&'static str` fields name the part of the packet concerned, so the
/// message points at the offending bytes without echoing peer data into logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The length prefix announces a packet larger than the limit; nothing
    /// was consumed or reserved. When encoding, the packet would not fit the
    /// 32-bit length field.
    TooLarge {
        /// The announced (or, when encoding, the required) length.
        len: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// The length prefix is 0, so the packet lacks even its command byte.
    Empty,
    /// The packet's data ends before a required field is complete (a
    /// fixed-size integer is cut short, or a string has no NUL terminator).
    Truncated {
        /// The packet's command byte.
        code: u8,
        /// The field that is missing, e.g. `"NUL-terminated header value"`.
        what: &'static str,
    },
    /// An MTA-to-milter packet with a command byte this codec does not know.
    /// The packet has been consumed.
    UnknownCommand(u8),
    /// A milter-to-MTA packet with a reply byte this codec does not know.
    /// The packet has been consumed.
    UnknownReply(u8),
    /// The packet is complete but malformed (bad address family, unexpected
    /// trailing bytes, a variant that cannot be encoded, ...).
    Invalid {
        /// The packet's command byte.
        code: u8,
        /// What is wrong, e.g. `"unknown address family"`.
        why: &'static str,
    },
    /// Encoding refused a string field containing a NUL byte: on the wire
    /// that NUL would end the string early and shift every following field,
    /// so the MTA would read a different packet than the one we meant.
    EmbeddedNul {
        /// The packet's command byte.
        code: u8,
        /// The string field concerned, e.g. `"header value"`.
        what: &'static str,
    },
    /// Option negotiation: the MTA speaks a protocol version older than 2,
    /// the oldest libmilter (and this codec) supports.
    UnsupportedVersion(u32),
    /// Option negotiation: the MTA does not allow actions (`SMFIF_*` bits)
    /// we cannot work without.
    MissingActions {
        /// The required action bits the MTA did not offer.
        missing: u32,
    },
}

/// Shows a packet code as `'L'` when printable, as `0x00` otherwise.
struct Code(u8);

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", char::from(self.0))
        } else {
            write!(f, "{:#04x}", self.0)
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(
                    f,
                    "milter packet of {len} bytes exceeds the {max}-byte limit"
                )
            }
            Self::Empty => f.write_str("milter packet has length 0 (no command byte)"),
            Self::Truncated { code, what } => {
                write!(
                    f,
                    "truncated milter packet {}: expected {what}",
                    Code(*code)
                )
            }
            Self::UnknownCommand(code) => write!(f, "unknown milter command {}", Code(*code)),
            Self::UnknownReply(code) => write!(f, "unknown milter reply {}", Code(*code)),
            Self::Invalid { code, why } => {
                write!(f, "invalid milter packet {}: {why}", Code(*code))
            }
            Self::EmbeddedNul { code, what } => write!(
                f,
                "cannot encode milter packet {}: NUL byte inside {what}",
                Code(*code)
            ),
            Self::UnsupportedVersion(v) => write!(
                f,
                "milter protocol version {v} offered by the MTA is older than 2"
            ),
            Self::MissingActions { missing } => write!(
                f,
                "the MTA does not allow required milter actions {missing:#x} ({})",
                super::negotiate::action::names(*missing)
            ),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Splits one complete packet off the front of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole packet; nothing is
/// consumed then, but capacity for the rest of the packet is reserved (only
/// after the length passed the checks), so the next read can fill it without
/// reallocating; when the packet does not fit what is left of the buffer,
/// room for a few more of its size (at most 512 KiB) comes with it. On success exactly one packet is removed from `buf` and
/// returned as its command byte and data; the data shares `buf`'s allocation.
///
/// # Errors
///
/// [`ProtocolError::Empty`] for a length of 0 and [`ProtocolError::TooLarge`]
/// for a length above `max`; in both cases `buf` is left untouched (neither
/// consumed nor grown), and the caller should close the connection.
pub fn decode_frame(buf: &mut BytesMut, max: usize) -> Result<Option<(u8, Bytes)>, ProtocolError> {
    let Some((prefix, _)) = buf.split_first_chunk::<LENGTH_PREFIX>() else {
        return Ok(None);
    };
    // `u32` always fits `usize` on the 32- and 64-bit targets we build for;
    // saturate rather than panic if it ever did not.
    let len = usize::try_from(u32::from_be_bytes(*prefix)).unwrap_or(usize::MAX);
    if len == 0 {
        return Err(ProtocolError::Empty);
    }
    if len > max {
        return Err(ProtocolError::TooLarge { len, max });
    }
    // Only overflows if `max` is within 4 of `usize::MAX`; refuse, don't wrap.
    let Some(total) = len.checked_add(LENGTH_PREFIX) else {
        return Err(ProtocolError::TooLarge { len, max });
    };
    if buf.len() < total {
        let missing = total - buf.len();
        if buf.capacity() - buf.len() < missing {
            // The packet does not fit in what is left of the buffer, so
            // what was read of it moves to a larger (or reclaimed) one.
            // Make that room for a few packets of its size, with slack for
            // the macro packet Postfix sends before each body chunk: reads
            // then take several chunks at once, and the next move, at the
            // end of that room, carries a few bytes, not a chunk.
            let room = (READ_AHEAD_PACKETS * (total + 1024)).min(READ_AHEAD_MAX);
            buf.reserve(room.max(total) - buf.len());
        }
        return Ok(None);
    }
    // `total >= LENGTH_PREFIX + 1` and `buf.len() >= total`: both splits are
    // in bounds.
    let mut frame = buf.split_to(total);
    frame.advance(LENGTH_PREFIX);
    let mut data = frame.freeze();
    let Some(&code) = data.first() else {
        return Err(ProtocolError::Empty);
    };
    data.advance(1);
    Ok(Some((code, data)))
}

/// Decodes one MTA-to-milter command from the front of `buf` (engine side).
///
/// `Ok(None)` means "read more bytes"; see [`decode_frame`] for the framing
/// rules and `max`. Once a whole packet is present it is consumed even if
/// parsing it fails, so `buf` always stays on a packet boundary.
///
/// # Errors
///
/// Framing errors from [`decode_frame`], then [`Command::parse`]'s errors,
/// including [`ProtocolError::UnknownCommand`] for an unknown command byte.
pub fn decode_command(buf: &mut BytesMut, max: usize) -> Result<Option<Command>, ProtocolError> {
    match decode_frame(buf, max)? {
        Some((code, data)) => Command::parse(code, data).map(Some),
        None => Ok(None),
    }
}

/// Decodes one milter-to-MTA reply from the front of `buf` (MTA side, for
/// our test and load client).
///
/// Same contract as [`decode_command`], with [`Reply::parse`] as the parser.
///
/// # Errors
///
/// Framing errors from [`decode_frame`], then [`Reply::parse`]'s errors,
/// including [`ProtocolError::UnknownReply`] for an unknown reply byte.
pub fn decode_reply(buf: &mut BytesMut, max: usize) -> Result<Option<Reply>, ProtocolError> {
    match decode_frame(buf, max)? {
        Some((code, data)) => Reply::parse(code, data).map(Some),
        None => Ok(None),
    }
}

/// A cursor over one packet's data, handing out fields front to back.
///
/// Every accessor checks the remaining length first, so no input can make
/// it panic; strings are returned as zero-copy [`Bytes`] slices without their
/// NUL terminator.
#[derive(Debug)]
pub(crate) struct Fields {
    code: u8,
    data: Bytes,
}

impl Fields {
    /// Starts reading the data of a packet with command byte `code`.
    pub(crate) fn new(code: u8, data: Bytes) -> Self {
        Self { code, data }
    }

    fn truncated(&self, what: &'static str) -> ProtocolError {
        ProtocolError::Truncated {
            code: self.code,
            what,
        }
    }

    /// Whether all data has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        if self.data.is_empty() {
            return Err(self.truncated(what));
        }
        Ok(self.data.get_u8())
    }

    /// Reads a big-endian (network order) `u16`.
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, ProtocolError> {
        if self.data.remaining() < 2 {
            return Err(self.truncated(what));
        }
        Ok(self.data.get_u16())
    }

    /// Reads a big-endian (network order) `u32`.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        if self.data.remaining() < 4 {
            return Err(self.truncated(what));
        }
        Ok(self.data.get_u32())
    }

    /// Reads a NUL-terminated string, returning it without the NUL.
    pub(crate) fn cstr(&mut self, what: &'static str) -> Result<Bytes, ProtocolError> {
        let Some(nul) = self.data.iter().position(|&b| b == 0) else {
            return Err(self.truncated(what));
        };
        let s = self.data.split_to(nul);
        self.data.advance(1);
        Ok(s)
    }

    /// Reads NUL-terminated strings until the data is exhausted; at least
    /// one is required (SMTP `MAIL`/`RCPT` always carry the address).
    pub(crate) fn cstrs(mut self, what: &'static str) -> Result<Vec<Bytes>, ProtocolError> {
        if self.data.is_empty() {
            return Err(self.truncated(what));
        }
        let mut out = Vec::new();
        while !self.data.is_empty() {
            out.push(self.cstr(what)?);
        }
        Ok(out)
    }

    /// Takes all remaining data as it is (body chunks).
    pub(crate) fn rest(self) -> Bytes {
        self.data
    }

    /// Checks that nothing is left over. Trailing bytes mean the peer and we
    /// disagree about the packet layout, and guessing would risk acting on
    /// misparsed data (Postfix likewise treats surplus bytes after a reply
    /// as a protocol error).
    pub(crate) fn finish(self, why: &'static str) -> Result<(), ProtocolError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::Invalid {
                code: self.code,
                why,
            })
        }
    }
}

/// Appends one packet to `out`: the length prefix, `code`, then whatever
/// `body` writes. `hint` is the expected data size, used to reserve once.
///
/// If `body` fails, or the packet would not fit the 32-bit length field,
/// `out` is truncated back to its original length: a failed encode never
/// leaves half a packet behind to corrupt the stream.
pub(crate) fn encode_frame(
    out: &mut BytesMut,
    code: u8,
    hint: usize,
    body: impl FnOnce(&mut FrameWriter<'_>) -> Result<(), ProtocolError>,
) -> Result<(), ProtocolError> {
    let start = out.len();
    out.reserve(hint.saturating_add(LENGTH_PREFIX + 1));
    out.put_u32(0); // placeholder, patched below
    out.put_u8(code);
    let written = body(&mut FrameWriter { out, code }).and_then(|()| {
        let len = out.len() - start - LENGTH_PREFIX;
        u32::try_from(len).map_err(|_| ProtocolError::TooLarge { len, max: WIRE_MAX })
    });
    match written {
        Ok(len) => {
            if let Some(prefix) = out.get_mut(start..start + LENGTH_PREFIX) {
                prefix.copy_from_slice(&len.to_be_bytes());
            }
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Writes the fields of one packet; see [`encode_frame`].
pub(crate) struct FrameWriter<'a> {
    out: &'a mut BytesMut,
    code: u8,
}

impl FrameWriter<'_> {
    /// Writes one byte.
    pub(crate) fn u8(&mut self, v: u8) {
        self.out.put_u8(v);
    }

    /// Writes a big-endian `u16`.
    pub(crate) fn u16(&mut self, v: u16) {
        self.out.put_u16(v);
    }

    /// Writes a big-endian `u32`.
    pub(crate) fn u32(&mut self, v: u32) {
        self.out.put_u32(v);
    }

    /// Writes `s` followed by a NUL terminator, refusing an `s` that itself
    /// contains a NUL (see [`ProtocolError::EmbeddedNul`]).
    pub(crate) fn cstr(&mut self, s: &[u8], what: &'static str) -> Result<(), ProtocolError> {
        if s.contains(&0) {
            return Err(ProtocolError::EmbeddedNul {
                code: self.code,
                what,
            });
        }
        self.out.put_slice(s);
        self.out.put_u8(0);
        Ok(())
    }

    /// Writes raw bytes (body chunks), any value allowed.
    pub(crate) fn raw(&mut self, s: &[u8]) {
        self.out.put_slice(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milter::command::Command;
    use crate::milter::reply::Reply;

    #[test]
    fn partial_prefix_needs_more() {
        let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
        assert_eq!(decode_command(&mut buf, DEFAULT_MAX_PACKET), Ok(None));
        assert_eq!(&buf[..], &[0, 0, 0]);
    }

    #[test]
    fn empty_buffer_needs_more() {
        let mut buf = BytesMut::new();
        assert_eq!(decode_command(&mut buf, DEFAULT_MAX_PACKET), Ok(None));
        assert_eq!(decode_reply(&mut buf, DEFAULT_MAX_PACKET), Ok(None));
    }

    #[test]
    fn truncated_frame_consumes_nothing() {
        // SMFIC_HEADER "From\0x\0" announced as 8 bytes, only 5 present.
        let full: &[u8] = b"\x00\x00\x00\x08LFrom\x00x\x00";
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(
                decode_command(&mut buf, DEFAULT_MAX_PACKET),
                Ok(None),
                "cut {cut}"
            );
            assert_eq!(&buf[..], &full[..cut], "cut {cut} consumed bytes");
        }
        let mut buf = BytesMut::from(full);
        assert!(
            decode_command(&mut buf, DEFAULT_MAX_PACKET)
                .unwrap()
                .is_some()
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn zero_length_is_empty() {
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x00Q"[..]);
        assert_eq!(
            decode_command(&mut buf, DEFAULT_MAX_PACKET),
            Err(ProtocolError::Empty)
        );
        assert_eq!(buf.len(), 5, "nothing consumed");
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x00"[..]);
        assert_eq!(
            decode_reply(&mut buf, DEFAULT_MAX_PACKET),
            Err(ProtocolError::Empty)
        );
    }

    #[test]
    fn oversized_is_refused_before_allocating() {
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(&u32::MAX.to_be_bytes());
        buf.extend_from_slice(b"B");
        let cap = buf.capacity();
        assert_eq!(
            decode_command(&mut buf, DEFAULT_MAX_PACKET),
            Err(ProtocolError::TooLarge {
                len: u32::MAX as usize,
                max: DEFAULT_MAX_PACKET
            })
        );
        assert_eq!(buf.capacity(), cap, "buffer grew for a refused packet");
        assert_eq!(buf.len(), 5, "nothing consumed");

        // Just above a small limit, on the reply side too.
        let mut buf = BytesMut::with_capacity(8);
        buf.extend_from_slice(&11u32.to_be_bytes());
        let cap = buf.capacity();
        assert_eq!(
            decode_reply(&mut buf, 10),
            Err(ProtocolError::TooLarge { len: 11, max: 10 })
        );
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn body_chunks_are_not_moved_in_the_read_buffer() {
        // What Postfix sends for a 2.5 MB body: a macro packet and a 64 KiB
        // chunk, 40 times, read as `read_buf` reads (as much as the buffer
        // has room for, at most what the socket holds). The session keeps
        // the macros, as it does. Then the chunks land in place, several
        // per read: a macro value that kept its read buffer alive would
        // make every chunk that follows it be copied to a new one, and
        // room for one chunk at a time would take a read per chunk.
        let mut stream = BytesMut::new();
        for i in 0..40u8 {
            Command::Macro {
                stage: b'B',
                pairs: vec![(Bytes::from_static(b"i"), Bytes::from_static(b"4BenchQ1d"))],
            }
            .encode(&mut stream)
            .unwrap();
            Command::Body(Bytes::from(vec![i; 65535]))
                .encode(&mut stream)
                .unwrap();
        }
        for socket_holds in [50_000, 212_992, 4 << 20] {
            let mut buf = BytesMut::with_capacity(16 * 1024);
            let (mut pos, mut moved, mut chunks, mut reads) = (0, 0, 0u8, 0);
            let mut kept = Vec::new();
            while pos < stream.len() {
                if buf.capacity() == buf.len() {
                    buf.reserve(64);
                }
                let n = (buf.capacity() - buf.len())
                    .min(socket_holds)
                    .min(stream.len() - pos);
                buf.extend_from_slice(&stream[pos..pos + n]);
                pos += n;
                reads += 1;
                loop {
                    let before = (buf.as_ptr(), buf.len());
                    match decode_command(&mut buf, DEFAULT_MAX_PACKET).unwrap() {
                        Some(Command::Macro { pairs, .. }) => kept = pairs,
                        Some(Command::Body(chunk)) => {
                            assert!(chunk.iter().all(|&b| b == chunks));
                            chunks += 1;
                        }
                        Some(other) => panic!("unexpected {other:?}"),
                        None => {
                            if buf.as_ptr() != before.0 {
                                moved += before.1;
                            }
                            break;
                        }
                    }
                }
            }
            assert_eq!((chunks, kept.len()), (40, 1));
            assert!(
                moved < 70_000,
                "{moved} bytes moved of {} (socket {socket_holds})",
                stream.len()
            );
            // Several chunks a read when the socket holds them (TCP).
            if socket_holds > 1 << 20 {
                assert!(reads <= 12, "{reads} reads (socket {socket_holds})");
            }
        }
    }

    #[test]
    fn limit_is_inclusive() {
        // length 10 = 'B' + 9 bytes, with max 10: accepted.
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x0aB123456789"[..]);
        assert_eq!(
            decode_command(&mut buf, 10),
            Ok(Some(Command::Body(Bytes::from_static(b"123456789"))))
        );
    }

    #[test]
    fn incomplete_frame_reserves_only_after_checks() {
        let mut buf = BytesMut::from(&b"\x00\x00\x10\x00B"[..]); // 4096 announced
        assert_eq!(decode_command(&mut buf, DEFAULT_MAX_PACKET), Ok(None));
        assert!(buf.capacity() >= 4 + 4096);
        assert_eq!(buf.len(), 5);
    }

    #[test]
    fn two_frames_decode_one_at_a_time() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"\x00\x00\x00\x01T");
        buf.extend_from_slice(b"\x00\x00\x00\x06HmxA\x00\x00");
        buf.extend_from_slice(b"\x00\x00"); // start of a third
        assert_eq!(
            decode_command(&mut buf, DEFAULT_MAX_PACKET),
            Ok(Some(Command::Data))
        );
        assert_eq!(buf.len(), 10 + 2);
        assert_eq!(
            decode_command(&mut buf, DEFAULT_MAX_PACKET),
            Err(ProtocolError::Invalid {
                code: b'H',
                why: "trailing bytes after the HELO name"
            })
        );
        assert_eq!(
            &buf[..],
            b"\x00\x00",
            "the bad frame was consumed, the next kept"
        );
        assert_eq!(decode_command(&mut buf, DEFAULT_MAX_PACKET), Ok(None));
    }

    #[test]
    fn replies_decode_one_at_a_time() {
        let mut buf = BytesMut::new();
        Reply::AddHeader {
            name: Bytes::from_static(b"X-A"),
            value: Bytes::from_static(b" 1"),
        }
        .encode(&mut buf)
        .unwrap();
        Reply::Continue.encode(&mut buf).unwrap();
        assert!(matches!(
            decode_reply(&mut buf, DEFAULT_MAX_PACKET),
            Ok(Some(Reply::AddHeader { .. }))
        ));
        assert_eq!(
            decode_reply(&mut buf, DEFAULT_MAX_PACKET),
            Ok(Some(Reply::Continue))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn unknown_codes() {
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x01Z"[..]);
        assert_eq!(
            decode_command(&mut buf, DEFAULT_MAX_PACKET),
            Err(ProtocolError::UnknownCommand(b'Z'))
        );
        assert!(buf.is_empty(), "unknown packet consumed to stay in sync");
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x01Z"[..]);
        assert_eq!(
            decode_reply(&mut buf, DEFAULT_MAX_PACKET),
            Err(ProtocolError::UnknownReply(b'Z'))
        );
    }

    #[test]
    fn decoded_data_shares_the_buffer() {
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x05Babcd"[..]);
        let base = buf.as_ptr() as usize;
        let Some(Command::Body(chunk)) = decode_command(&mut buf, DEFAULT_MAX_PACKET).unwrap()
        else {
            panic!("not a body");
        };
        assert_eq!(chunk.as_ptr() as usize, base + 5, "body was copied");
    }

    #[test]
    fn failed_encode_leaves_output_untouched() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let err = Reply::AddHeader {
            name: Bytes::from_static(b"X-Bad"),
            value: Bytes::from_static(b"a\0b"),
        }
        .encode(&mut out)
        .unwrap_err();
        assert_eq!(
            err,
            ProtocolError::EmbeddedNul {
                code: b'h',
                what: "header value"
            }
        );
        assert_eq!(&out[..], b"prefix");
    }

    #[test]
    fn display_is_one_lower_case_clause() {
        let cases = [
            ProtocolError::TooLarge { len: 9, max: 8 },
            ProtocolError::Empty,
            ProtocolError::Truncated {
                code: b'L',
                what: "NUL-terminated header value",
            },
            ProtocolError::UnknownCommand(0),
            ProtocolError::UnknownReply(b'z'),
            ProtocolError::Invalid {
                code: b'C',
                why: "unknown address family",
            },
            ProtocolError::EmbeddedNul {
                code: b'h',
                what: "header name",
            },
            ProtocolError::UnsupportedVersion(1),
            ProtocolError::MissingActions { missing: 0x11 },
        ];
        for e in cases {
            let s = e.to_string();
            let first = s.chars().next().unwrap();
            assert!(!first.is_uppercase(), "{s}");
            assert!(!s.ends_with('.') && !s.contains('\n'), "{s}");
        }
        assert_eq!(
            ProtocolError::Truncated {
                code: b'L',
                what: "NUL-terminated header value"
            }
            .to_string(),
            "truncated milter packet 'L': expected NUL-terminated header value"
        );
        assert_eq!(
            ProtocolError::UnknownCommand(0).to_string(),
            "unknown milter command 0x00"
        );
        assert_eq!(
            ProtocolError::MissingActions { missing: 0x11 }.to_string(),
            "the MTA does not allow required milter actions 0x11 (SMFIF_ADDHDRS|SMFIF_CHGHDRS)"
        );
    }

    /// A tiny xorshift64 generator: deterministic, no extra crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let codes = b"ODCHMRTLNBEAQKUcartdyspbhimq+-2eZ\0";
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let mut buf = BytesMut::new();
            let frames = rng.next() % 4 + 1;
            for _ in 0..frames {
                let data_len = usize::try_from(rng.next() % 40).unwrap();
                // Mostly honest lengths, sometimes lies (short, long, 0, huge).
                let announced: u32 = match rng.next() % 8 {
                    0 => 0,
                    1 => u32::try_from(rng.next() % 64).unwrap(),
                    2 => u32::MAX,
                    _ => u32::try_from(data_len + 1).unwrap(),
                };
                buf.extend_from_slice(&announced.to_be_bytes());
                let code_idx = usize::try_from(rng.next()).unwrap() % codes.len();
                buf.extend_from_slice(&codes[code_idx..=code_idx]);
                for _ in 0..data_len {
                    // Bias towards NULs and family bytes so parsers go deep.
                    let b = match rng.next() % 4 {
                        0 => 0,
                        1 => b"UL46"[usize::try_from(rng.next() % 4).unwrap()],
                        _ => rng.next().to_le_bytes()[0],
                    };
                    buf.extend_from_slice(&[b]);
                }
            }
            let mut replies = buf.clone();
            // Drain until error or starvation; every step must terminate.
            for _ in 0..16 {
                match decode_command(&mut buf, 256) {
                    Ok(Some(cmd)) => {
                        // Whatever parsed must re-encode and parse back equal.
                        let mut again = BytesMut::new();
                        cmd.encode(&mut again).unwrap();
                        assert_eq!(decode_command(&mut again, 256), Ok(Some(cmd)));
                    }
                    Ok(None) | Err(ProtocolError::Empty | ProtocolError::TooLarge { .. }) => break,
                    Err(_) => {}
                }
            }
            for _ in 0..16 {
                match decode_reply(&mut replies, 256) {
                    Ok(Some(reply)) => {
                        let mut again = BytesMut::new();
                        reply.encode(&mut again).unwrap();
                        assert_eq!(decode_reply(&mut again, 256), Ok(Some(reply)));
                    }
                    Ok(None) | Err(ProtocolError::Empty | ProtocolError::TooLarge { .. }) => break,
                    Err(_) => {}
                }
            }
        }
    }
}
