//! Option negotiation (`SMFIC_OPTNEG` / `SMFIR_OPTNEG`): agreeing with the
//! MTA on protocol version, allowed modifications and skipped steps.
//!
//! Every milter connection starts with the MTA's offer: a version, the
//! actions it allows (`SMFIF_*`, [`action`]) and the protocol features it
//! supports (`SMFIP_*`, [`protocol`]). The milter answers with a subset of
//! each; from then on both sides hold to the answer. [`negotiate`] computes
//! that answer from what the engine wants ([`Wanted`]); the resulting
//! [`Negotiated`] then tells the session which commands to answer at all
//! ([`Negotiated::no_reply`]).
//!
//! The protocol bits are a mixed bag, and it pays to know the three kinds:
//!
//! - `NO*` bits ask the MTA *not to send* a step (`SMFIP_NOHELO`: no
//!   `SMFIC_HELO`). Fewer packets, but the step's information is lost.
//! - `NR_*` bits (protocol version 6) say the milter *will not reply* to a
//!   step (`SMFIP_NR_HDR`: no answer per header). The step is still sent.
//!   This is what turns ~15 round trips per message into 2: with every
//!   `NR_*` flag set, only `SMFIC_OPTNEG` (once per connection) and
//!   `SMFIC_BODYEOB` are answered. Once negotiated, a reply to such a step
//!   is a protocol violation: the MTA would read it as the answer to a later
//!   step.
//! - Capability bits: `SMFIP_SKIP` (the MTA understands `SMFIR_SKIP`),
//!   `SMFIP_RCPT_REJ` (also send rejected recipients), `SMFIP_HDR_LEADSPC`
//!   (header values keep their leading space, in both directions) and the
//!   `SMFIP_MDS_*` sizes (the MTA may send body chunks larger than 64 KiB).
//!
//! Only bits the MTA offered may be set in the answer. Older MTAs (version
//! 2 to 5) offer no `NR_*` bits, so the intersection quietly falls back to
//! answering every step, which the session must then do.

use bytes::Bytes;

use super::codec::ProtocolError;
use super::command::{Command, OptNeg};

/// Action flags (`SMFIF_*`): the modifications a milter may request.
pub mod action {
    /// Add header fields (`SMFIR_ADDHEADER`, and `SMFIR_INSHEADER`).
    #[doc(alias = "SMFIF_ADDHDRS")]
    pub const ADDHDRS: u32 = 0x01;
    /// Replace the body (`SMFIR_REPLBODY`).
    #[doc(alias = "SMFIF_CHGBODY")]
    pub const CHGBODY: u32 = 0x02;
    /// Add recipients (`SMFIR_ADDRCPT`).
    #[doc(alias = "SMFIF_ADDRCPT")]
    pub const ADDRCPT: u32 = 0x04;
    /// Remove recipients (`SMFIR_DELRCPT`).
    #[doc(alias = "SMFIF_DELRCPT")]
    pub const DELRCPT: u32 = 0x08;
    /// Change or delete header fields (`SMFIR_CHGHEADER`).
    #[doc(alias = "SMFIF_CHGHDRS")]
    pub const CHGHDRS: u32 = 0x10;
    /// Quarantine the message (`SMFIR_QUARANTINE`).
    #[doc(alias = "SMFIF_QUARANTINE")]
    pub const QUARANTINE: u32 = 0x20;
    /// Change the envelope sender (`SMFIR_CHGFROM`).
    #[doc(alias = "SMFIF_CHGFROM")]
    pub const CHGFROM: u32 = 0x40;
    /// Add recipients with ESMTP parameters (`SMFIR_ADDRCPT_PAR`).
    #[doc(alias = "SMFIF_ADDRCPT_PAR")]
    pub const ADDRCPT_PAR: u32 = 0x80;
    /// Send macro lists in the `SMFIR_OPTNEG` answer (choose which macros
    /// the MTA sends at each stage).
    #[doc(alias = "SMFIF_SETSYMLIST")]
    pub const SETSYMLIST: u32 = 0x100;

    /// What a version-1 MTA allows when it offers 0: libmilter reads an
    /// all-zero action field as "the V1 set" (`SMFI_V1_ACTS`).
    #[doc(alias = "SMFI_V1_ACTS")]
    pub const V1_DEFAULT: u32 = 0x0F;

    const NAMES: [(u32, &str); 9] = [
        (ADDHDRS, "SMFIF_ADDHDRS"),
        (CHGBODY, "SMFIF_CHGBODY"),
        (ADDRCPT, "SMFIF_ADDRCPT"),
        (DELRCPT, "SMFIF_DELRCPT"),
        (CHGHDRS, "SMFIF_CHGHDRS"),
        (QUARANTINE, "SMFIF_QUARANTINE"),
        (CHGFROM, "SMFIF_CHGFROM"),
        (ADDRCPT_PAR, "SMFIF_ADDRCPT_PAR"),
        (SETSYMLIST, "SMFIF_SETSYMLIST"),
    ];

    /// The `SMFIF_*` names of the bits set in `flags`, joined by `|`
    /// (unknown bits as hex), for messages.
    #[must_use]
    pub fn names(flags: u32) -> String {
        let mut parts: Vec<String> = NAMES
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, name)| (*name).to_owned())
            .collect();
        let known = NAMES.iter().fold(0, |acc, (bit, _)| acc | bit);
        if flags & !known != 0 {
            parts.push(format!("{:#x}", flags & !known));
        }
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join("|")
        }
    }
}

/// Protocol flags (`SMFIP_*`): steps to skip, steps not to answer, and
/// capabilities.
pub mod protocol {
    /// Don't send `SMFIC_CONNECT`.
    #[doc(alias = "SMFIP_NOCONNECT")]
    pub const NOCONNECT: u32 = 0x1;
    /// Don't send `SMFIC_HELO`.
    #[doc(alias = "SMFIP_NOHELO")]
    pub const NOHELO: u32 = 0x2;
    /// Don't send `SMFIC_MAIL`.
    #[doc(alias = "SMFIP_NOMAIL")]
    pub const NOMAIL: u32 = 0x4;
    /// Don't send `SMFIC_RCPT`.
    #[doc(alias = "SMFIP_NORCPT")]
    pub const NORCPT: u32 = 0x8;
    /// Don't send `SMFIC_BODY`.
    #[doc(alias = "SMFIP_NOBODY")]
    pub const NOBODY: u32 = 0x10;
    /// Don't send `SMFIC_HEADER`.
    #[doc(alias = "SMFIP_NOHDRS")]
    pub const NOHDRS: u32 = 0x20;
    /// Don't send `SMFIC_EOH`.
    #[doc(alias = "SMFIP_NOEOH")]
    pub const NOEOH: u32 = 0x40;
    /// No reply to `SMFIC_HEADER` (older name: `SMFIP_NOHREPL`).
    #[doc(alias = "SMFIP_NR_HDR")]
    #[doc(alias = "SMFIP_NOHREPL")]
    pub const NR_HDR: u32 = 0x80;
    /// Don't send `SMFIC_UNKNOWN`.
    #[doc(alias = "SMFIP_NOUNKNOWN")]
    pub const NOUNKNOWN: u32 = 0x100;
    /// Don't send `SMFIC_DATA`.
    #[doc(alias = "SMFIP_NODATA")]
    pub const NODATA: u32 = 0x200;
    /// The MTA understands `SMFIR_SKIP`.
    #[doc(alias = "SMFIP_SKIP")]
    pub const SKIP: u32 = 0x400;
    /// Also send recipients the MTA already rejected.
    #[doc(alias = "SMFIP_RCPT_REJ")]
    pub const RCPT_REJ: u32 = 0x800;
    /// No reply to `SMFIC_CONNECT`.
    #[doc(alias = "SMFIP_NR_CONN")]
    pub const NR_CONN: u32 = 0x1000;
    /// No reply to `SMFIC_HELO`.
    #[doc(alias = "SMFIP_NR_HELO")]
    pub const NR_HELO: u32 = 0x2000;
    /// No reply to `SMFIC_MAIL`.
    #[doc(alias = "SMFIP_NR_MAIL")]
    pub const NR_MAIL: u32 = 0x4000;
    /// No reply to `SMFIC_RCPT`.
    #[doc(alias = "SMFIP_NR_RCPT")]
    pub const NR_RCPT: u32 = 0x8000;
    /// No reply to `SMFIC_DATA`.
    #[doc(alias = "SMFIP_NR_DATA")]
    pub const NR_DATA: u32 = 0x1_0000;
    /// No reply to `SMFIC_UNKNOWN`.
    #[doc(alias = "SMFIP_NR_UNKN")]
    pub const NR_UNKN: u32 = 0x2_0000;
    /// No reply to `SMFIC_EOH`.
    #[doc(alias = "SMFIP_NR_EOH")]
    pub const NR_EOH: u32 = 0x4_0000;
    /// No reply to `SMFIC_BODY`.
    #[doc(alias = "SMFIP_NR_BODY")]
    pub const NR_BODY: u32 = 0x8_0000;
    /// Header values keep their leading whitespace exactly as in the
    /// message, in `SMFIC_HEADER` and in our header modifications. Without
    /// it the MTA strips one leading space from values it sends and inserts
    /// one after the colon in fields we add; `simple` header
    /// canonicalization needs the original bytes, so we want this.
    #[doc(alias = "SMFIP_HDR_LEADSPC")]
    pub const HDR_LEADSPC: u32 = 0x10_0000;
    /// The MTA may send packets of up to 256 KiB.
    #[doc(alias = "SMFIP_MDS_256K")]
    pub const MDS_256K: u32 = 0x1000_0000;
    /// The MTA may send packets of up to 1 MiB; only request this when the
    /// decoder's limit is at least [`super::super::codec::DEFAULT_MAX_PACKET`].
    #[doc(alias = "SMFIP_MDS_1M")]
    pub const MDS_1M: u32 = 0x2000_0000;

    /// Every "no reply" bit.
    pub const ALL_NR: u32 =
        NR_CONN | NR_HELO | NR_MAIL | NR_RCPT | NR_DATA | NR_UNKN | NR_HDR | NR_EOH | NR_BODY;

    /// What a version-1 MTA supports when it offers 0: libmilter reads an
    /// all-zero protocol field as "the V1 set" (`SMFI_V1_PROT`, the six
    /// `NO*` bits from `NOCONNECT` to `NOHDRS`).
    #[doc(alias = "SMFI_V1_PROT")]
    pub const V1_DEFAULT: u32 = 0x3F;
}

/// Macro stages (`SMFIM_*`) for the macro lists in the `SMFIR_OPTNEG`
/// answer. Not to be confused with the stage byte of `SMFIC_MACRO`, which is
/// the command byte (`b'C'`, `b'M'`, ...).
pub mod stage {
    /// Macros sent with `SMFIC_CONNECT`.
    #[doc(alias = "SMFIM_CONNECT")]
    pub const CONNECT: u32 = 0;
    /// Macros sent with `SMFIC_HELO`.
    #[doc(alias = "SMFIM_HELO")]
    pub const HELO: u32 = 1;
    /// Macros sent with `SMFIC_MAIL`.
    #[doc(alias = "SMFIM_ENVFROM")]
    pub const ENVFROM: u32 = 2;
    /// Macros sent with `SMFIC_RCPT`.
    #[doc(alias = "SMFIM_ENVRCPT")]
    pub const ENVRCPT: u32 = 3;
    /// Macros sent with `SMFIC_DATA`.
    #[doc(alias = "SMFIM_DATA")]
    pub const DATA: u32 = 4;
    /// Macros sent with `SMFIC_BODYEOB`.
    #[doc(alias = "SMFIM_EOM")]
    pub const EOM: u32 = 5;
    /// Macros sent with `SMFIC_EOH`.
    #[doc(alias = "SMFIM_EOH")]
    pub const EOH: u32 = 6;
}

/// The protocol version this codec speaks (`SMFI_PROT_VERSION`).
pub const VERSION: u32 = 6;

/// The oldest protocol version accepted, as in libmilter
/// (`SMFI_PROT_VERSION_MIN`).
pub const MIN_VERSION: u32 = 2;

/// What the engine would like from option negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Actions (`SMFIF_*`) we would use if allowed.
    pub actions: u32,
    /// Actions we cannot work without: if the MTA does not offer all of
    /// them, [`negotiate`] fails (and the session should close the
    /// connection, so the MTA applies its milter default action). A signer
    /// needs [`action::ADDHDRS`]; a verifier that removes forged
    /// `Authentication-Results` also needs [`action::CHGHDRS`].
    pub required_actions: u32,
    /// Protocol bits (`SMFIP_*`) we would like: the `NR_*` bits for every
    /// step we never answer, the `NO*` bits for steps we don't need, and
    /// [`protocol::HDR_LEADSPC`].
    pub protocol: u32,
    /// Macro lists to request, as (`SMFIM_*` stage, space-separated names).
    /// Sent only if the MTA offers [`action::SETSYMLIST`]; otherwise it sends
    /// its configured defaults. A list replaces the MTA's defaults for that
    /// stage, so it must name every macro the session reads.
    pub macros: Vec<(u32, &'static [u8])>,
}

impl Wanted {
    /// The protocol bits a DKIM signer/verifier asks for: no reply to any
    /// step before end of message, original header bytes, and none of the
    /// steps DKIM has no use for (`HELO`, unknown commands, `DATA`). It keeps
    /// `SMFIC_CONNECT` (client address), `SMFIC_MAIL` (authentication
    /// macros), `SMFIC_RCPT`, headers, `SMFIC_EOH` and body.
    pub const DKIM_PROTOCOL: u32 = protocol::ALL_NR
        | protocol::HDR_LEADSPC
        | protocol::NOHELO
        | protocol::NOUNKNOWN
        | protocol::NODATA;

    /// A request suited to a DKIM milter: [`Wanted::DKIM_PROTOCOL`], the
    /// header actions (`SMFIF_ADDHDRS | SMFIF_CHGHDRS`, plus whatever
    /// `required_actions` adds), and macro lists naming the daemon, the
    /// client, the authenticated sender and the queue id. The session may
    /// adjust the public fields before negotiating.
    #[must_use]
    pub fn dkim(required_actions: u32) -> Self {
        Self {
            actions: action::ADDHDRS | action::CHGHDRS | required_actions,
            required_actions,
            protocol: Self::DKIM_PROTOCOL,
            macros: vec![
                (
                    stage::CONNECT,
                    b"j {daemon_name} {daemon_addr} {client_addr}",
                ),
                (
                    stage::ENVFROM,
                    b"i {auth_type} {auth_authen} {auth_author} {mail_addr}",
                ),
                (stage::EOM, b"i"),
            ],
        }
    }
}

/// The outcome of option negotiation: what both sides now hold to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Agreed protocol version: the lower of the MTA's and ours.
    pub version: u32,
    /// Actions we may use: wanted and offered.
    pub actions: u32,
    /// Protocol bits in force: wanted and offered.
    pub protocol: u32,
    /// The `SMFIR_OPTNEG` answer to send (`Reply::OptNeg(reply)`).
    pub reply: OptNeg,
}

impl Negotiated {
    /// Whether action bit(s) `flag` were agreed (all of them, if several).
    #[must_use]
    pub fn has_action(&self, flag: u32) -> bool {
        self.actions & flag == flag
    }

    /// Whether protocol bit(s) `flag` are in force (all of them, if several).
    #[must_use]
    pub fn has_protocol(&self, flag: u32) -> bool {
        self.protocol & flag == flag
    }

    /// Whether header values arrive (and must be sent) with their leading
    /// whitespace intact (`SMFIP_HDR_LEADSPC`). If not, the MTA stripped one
    /// leading space from each `SMFIC_HEADER` value; a `simple`-canonical
    /// signer must then assume it was there.
    #[must_use]
    pub fn leading_space_kept(&self) -> bool {
        self.has_protocol(protocol::HDR_LEADSPC)
    }

    /// Whether the MTA expects *no* reply to `cmd`.
    ///
    /// `SMFIC_MACRO`, `SMFIC_ABORT`, `SMFIC_QUIT` and `SMFIC_QUIT_NC` are
    /// never answered. Connect, HELO, MAIL, RCPT, DATA, unknown, header,
    /// end-of-header and body commands are answered unless their `NR_*` bit
    /// was negotiated. `SMFIC_OPTNEG` and `SMFIC_BODYEOB` are always
    /// answered. Sending a reply where none is expected desynchronises the
    /// stream: the MTA takes it as the answer to its next command.
    #[must_use]
    pub fn no_reply(&self, cmd: &Command) -> bool {
        let bit = match cmd {
            Command::Macro { .. } | Command::Abort | Command::Quit | Command::QuitNewConnection => {
                return true;
            }
            Command::OptNeg(_) | Command::EndOfMessage => return false,
            Command::Connect { .. } => protocol::NR_CONN,
            Command::Helo(_) => protocol::NR_HELO,
            Command::Mail(_) => protocol::NR_MAIL,
            Command::Rcpt(_) => protocol::NR_RCPT,
            Command::Data => protocol::NR_DATA,
            Command::Unknown(_) => protocol::NR_UNKN,
            Command::Header { .. } => protocol::NR_HDR,
            Command::EndOfHeaders => protocol::NR_EOH,
            Command::Body(_) => protocol::NR_BODY,
        };
        self.has_protocol(bit)
    }
}

/// Computes the engine's answer to the MTA's `SMFIC_OPTNEG` offer.
///
/// - version: the lower of the MTA's and [`VERSION`]; below
///   [`MIN_VERSION`] is refused.
/// - actions: `wanted.actions & offered`; every bit of
///   `wanted.required_actions` must be offered. An offer of 0 means the V1
///   set ([`action::V1_DEFAULT`]), as in libmilter.
/// - protocol: `wanted.protocol & offered` (0 offered means
///   [`protocol::V1_DEFAULT`]): we never claim a bit the MTA did not offer,
///   so against an MTA without `NR_*` support every step gets a reply.
/// - macros: `wanted.macros`, with [`action::SETSYMLIST`] added to the
///   actions, if the MTA offers `SETSYMLIST`; none otherwise.
///
/// # Errors
///
/// [`ProtocolError::UnsupportedVersion`] for versions below 2;
/// [`ProtocolError::MissingActions`] if a required action is not offered.
pub fn negotiate(mta: &OptNeg, wanted: &Wanted) -> Result<Negotiated, ProtocolError> {
    if mta.version < MIN_VERSION {
        return Err(ProtocolError::UnsupportedVersion(mta.version));
    }
    let version = mta.version.min(VERSION);

    let offered_actions = match mta.actions {
        0 => action::V1_DEFAULT,
        a => a,
    };
    let offered_protocol = match mta.protocol {
        0 => protocol::V1_DEFAULT,
        p => p,
    };

    let missing = wanted.required_actions & !offered_actions;
    if missing != 0 {
        return Err(ProtocolError::MissingActions { missing });
    }

    // SETSYMLIST is managed here: set exactly when we send macro lists.
    let mut actions =
        (wanted.actions | wanted.required_actions) & offered_actions & !action::SETSYMLIST;
    let protocol = wanted.protocol & offered_protocol;

    let macros = if !wanted.macros.is_empty() && offered_actions & action::SETSYMLIST != 0 {
        actions |= action::SETSYMLIST;
        wanted
            .macros
            .iter()
            .map(|(stage, names)| (*stage, Bytes::from_static(names)))
            .collect()
    } else {
        Vec::new()
    };

    Ok(Negotiated {
        version,
        actions,
        protocol,
        reply: OptNeg {
            version,
            actions,
            protocol,
            macros,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milter::reply::Reply;
    use bytes::BytesMut;

    fn postfix_offer() -> OptNeg {
        OptNeg {
            version: 6,
            actions: 0x1ff,
            protocol: 0x1f_ffff,
            macros: vec![],
        }
    }

    #[test]
    fn postfix_offer_gets_every_no_reply_flag() {
        let n = negotiate(&postfix_offer(), &Wanted::dkim(action::ADDHDRS)).unwrap();
        assert_eq!(n.version, 6);
        assert_eq!(
            n.actions,
            action::ADDHDRS | action::CHGHDRS | action::SETSYMLIST
        );
        assert_eq!(n.protocol, Wanted::DKIM_PROTOCOL);
        assert!(n.has_protocol(protocol::ALL_NR));
        assert!(n.leading_space_kept());
        assert_eq!(n.reply.macros.len(), 3);
        assert_eq!(n.reply.version, n.version);
        assert_eq!(n.reply.actions, n.actions);
        assert_eq!(n.reply.protocol, n.protocol);

        // Only OPTNEG and end of message are answered: 2 replies per message.
        let silent = [
            Command::Connect {
                hostname: Bytes::new(),
                family: crate::milter::command::Family::Unknown,
                port: 0,
                address: Bytes::new(),
            },
            Command::Helo(Bytes::new()),
            Command::Mail(vec![Bytes::new()]),
            Command::Rcpt(vec![Bytes::new()]),
            Command::Data,
            Command::Header {
                name: Bytes::new(),
                value: Bytes::new(),
            },
            Command::EndOfHeaders,
            Command::Body(Bytes::new()),
            Command::Unknown(Bytes::new()),
            Command::Macro {
                stage: b'C',
                pairs: vec![],
            },
            Command::Abort,
            Command::Quit,
            Command::QuitNewConnection,
        ];
        for cmd in &silent {
            assert!(n.no_reply(cmd), "{}", cmd.wire_name());
        }
        assert!(!n.no_reply(&Command::EndOfMessage));
        assert!(!n.no_reply(&Command::OptNeg(postfix_offer())));
    }

    #[test]
    fn answer_encodes_with_macro_lists() {
        let n = negotiate(&postfix_offer(), &Wanted::dkim(action::ADDHDRS)).unwrap();
        let mut out = BytesMut::new();
        Reply::OptNeg(n.reply.clone()).encode(&mut out).unwrap();
        let want: &[u8] = b"O\x00\x00\x00\x06\x00\x00\x01\x11\x00\x1f\xf3\x82\
            \x00\x00\x00\x00j {daemon_name} {daemon_addr} {client_addr}\x00\
            \x00\x00\x00\x02i {auth_type} {auth_authen} {auth_author} {mail_addr}\x00\
            \x00\x00\x00\x05i\x00";
        assert_eq!(out.get(4..), Some(want));
    }

    #[test]
    fn version_2_mta_without_nr_flags() {
        // sendmail 8.13-era offer: version 2, V2 actions, V2 protocol bits.
        let old = OptNeg {
            version: 2,
            actions: 0x3f,
            protocol: 0x7f,
            macros: vec![],
        };
        let n = negotiate(&old, &Wanted::dkim(action::ADDHDRS)).unwrap();
        assert_eq!(n.version, 2);
        assert_eq!(n.protocol & protocol::ALL_NR, 0, "no NR flags offered");
        assert!(!n.leading_space_kept());
        assert_eq!(n.actions, action::ADDHDRS | action::CHGHDRS);
        assert!(n.reply.macros.is_empty(), "no SETSYMLIST offered");
        // NOHELO was offered (in 0x7f) and wanted; NODATA/NOUNKNOWN were not.
        assert_eq!(n.protocol, protocol::NOHELO);
        // Every step must now be answered.
        assert!(!n.no_reply(&Command::Header {
            name: Bytes::new(),
            value: Bytes::new()
        }));
        assert!(!n.no_reply(&Command::Body(Bytes::new())));
        assert!(n.no_reply(&Command::Abort));
    }

    #[test]
    fn zero_offers_mean_v1_defaults() {
        let v1 = OptNeg {
            version: 2,
            actions: 0,
            protocol: 0,
            macros: vec![],
        };
        let n = negotiate(&v1, &Wanted::dkim(action::ADDHDRS)).unwrap();
        assert_eq!(n.actions, action::ADDHDRS, "CHGHDRS not in the V1 set");
        assert_eq!(n.protocol, protocol::NOHELO);
    }

    #[test]
    fn missing_required_action_is_refused() {
        let stingy = OptNeg {
            version: 6,
            actions: action::CHGBODY | action::CHGHDRS,
            protocol: 0x1f_ffff,
            macros: vec![],
        };
        assert_eq!(
            negotiate(&stingy, &Wanted::dkim(action::ADDHDRS)),
            Err(ProtocolError::MissingActions {
                missing: action::ADDHDRS
            })
        );
        let no_chg = OptNeg {
            actions: action::ADDHDRS,
            ..stingy
        };
        assert_eq!(
            negotiate(&no_chg, &Wanted::dkim(action::ADDHDRS | action::CHGHDRS)),
            Err(ProtocolError::MissingActions {
                missing: action::CHGHDRS
            })
        );
        // CHGHDRS merely wanted, not required: negotiation succeeds without it.
        let n = negotiate(&no_chg, &Wanted::dkim(action::ADDHDRS)).unwrap();
        assert_eq!(n.actions, action::ADDHDRS);
    }

    #[test]
    fn old_versions_are_refused_and_new_ones_capped() {
        let mut offer = postfix_offer();
        offer.version = 1;
        assert_eq!(
            negotiate(&offer, &Wanted::dkim(0)),
            Err(ProtocolError::UnsupportedVersion(1))
        );
        offer.version = 9;
        assert_eq!(negotiate(&offer, &Wanted::dkim(0)).unwrap().version, 6);
    }

    #[test]
    fn only_offered_bits_are_claimed() {
        let offer = OptNeg {
            version: 6,
            actions: action::ADDHDRS,
            protocol: protocol::NR_HDR | protocol::NOHELO,
            macros: vec![],
        };
        let wanted = Wanted {
            actions: 0x1ff,
            required_actions: 0,
            protocol: u32::MAX,
            macros: vec![],
        };
        let n = negotiate(&offer, &wanted).unwrap();
        assert_eq!(n.actions, action::ADDHDRS);
        assert_eq!(n.protocol, protocol::NR_HDR | protocol::NOHELO);
        assert!(n.no_reply(&Command::Header {
            name: Bytes::new(),
            value: Bytes::new()
        }));
        assert!(!n.no_reply(&Command::EndOfHeaders));
    }

    #[test]
    fn setsymlist_only_with_macros() {
        let wanted = Wanted {
            actions: action::ADDHDRS | action::SETSYMLIST,
            required_actions: 0,
            protocol: 0,
            macros: vec![],
        };
        let n = negotiate(&postfix_offer(), &wanted).unwrap();
        assert!(!n.has_action(action::SETSYMLIST));
        assert!(n.reply.macros.is_empty());
    }

    #[test]
    fn action_names() {
        assert_eq!(action::names(0), "none");
        assert_eq!(
            action::names(action::ADDHDRS | action::SETSYMLIST | 0x1000),
            "SMFIF_ADDHDRS|SMFIF_SETSYMLIST|0x1000"
        );
    }
}
