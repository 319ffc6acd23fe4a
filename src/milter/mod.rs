//! The Sendmail milter protocol (version 6), engine side and MTA side.
//!
//! Postfix and sendmail hand each message to a "milter" over a socket, one
//! length-prefixed packet per SMTP step: connection, `HELO`, `MAIL`, `RCPT`,
//! each header field, body chunks, end of message. The milter answers with
//! verdicts and, at end of message, modification requests such as "insert
//! this `DKIM-Signature` at the top". This module is our own codec for it,
//! written instead of using an existing crate for three reasons that matter
//! to a DKIM signer:
//!
//! - **Raw bytes end to end.** Header names and values, body chunks and
//!   macro values are [`bytes::Bytes`], never `String`. A Latin-1 `Subject`
//!   decoded lossily as UTF-8 would be signed as U+FFFD and every verifier
//!   would see a broken signature.
//! - **No-reply negotiation.** The `SMFIP_NR_*` flags let a milter skip the
//!   reply to every step it does not act on: two replies per message
//!   (option negotiation once, end of message) instead of fifteen.
//! - **Batching and bounded memory.** Replies are appended to a caller's
//!   buffer so a step's replies leave in one write; incoming packets are
//!   checked against a size limit before any memory is reserved, and split
//!   off the read buffer without copying.
//!
//! Layout:
//!
//! - [`codec`]: framing ([`decode_command`], [`decode_reply`]), the size
//!   limit ([`DEFAULT_MAX_PACKET`]) and [`ProtocolError`].
//! - [`command`]: MTA-to-milter packets (`SMFIC_*`), [`Command`].
//! - [`reply`]: milter-to-MTA packets (`SMFIR_*`), [`Reply`].
//! - [`negotiate`](mod@negotiate): option negotiation and the `SMFIF_*`/`SMFIP_*`/`SMFIM_*`
//!   flag constants.
//!
//! A session loop on the engine side, in outline:
//!
//! ```text
//! read into buf; while let Some(cmd) = decode_command(&mut buf, DEFAULT_MAX_PACKET)? {
//!     OptNeg(offer)  => n = negotiate(&offer, &wanted)?; Reply::OptNeg(n.reply).encode(&mut out)?
//!     other          => handle; if !n.no_reply(&other) { reply.encode(&mut out)? }
//! }
//! write out in one go
//! ```
//!
//! Nothing here does I/O; the server and session code drive sockets.

pub mod client;
pub mod codec;
pub mod command;
pub mod negotiate;
pub mod reply;

pub use codec::{DEFAULT_MAX_PACKET, ProtocolError, decode_command, decode_frame, decode_reply};
pub use command::{Command, Family, OptNeg};
pub use negotiate::{Negotiated, Wanted, negotiate};
pub use reply::Reply;
