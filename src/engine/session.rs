//! One milter connection as a state machine: decoded commands in, encoded
//! replies out.
//!
//! The session owns no socket and reads no clock. The server hands it each
//! [`Command`] with the current time, and it appends the replies for that
//! command (possibly none) to the server's output buffer. Tests drive it
//! with byte vectors and compare the bytes that come out.
//!
//! # A message, from the MTA's side
//!
//! ```text
//! SMFIC_OPTNEG                     -> SMFIR_OPTNEG            (once per connection)
//! SMFIC_MACRO 'C', SMFIC_CONNECT   -> (no reply: NR_CONN)
//! SMFIC_MACRO 'M', SMFIC_MAIL      -> (no reply: NR_MAIL)
//! SMFIC_HEADER × n                 -> (no reply: NR_HDR)
//! SMFIC_EOH                        -> (no reply: NR_EOH)
//! SMFIC_BODY × n                   -> (no reply: NR_BODY)
//! SMFIC_MACRO 'E', SMFIC_BODYEOB   -> SMFIR_INSHEADER..., SMFIR_CONTINUE  (one write)
//! ```
//!
//! # Why the `SMFIP_NR_*` flags
//!
//! Without them every step is a round trip: the MTA sends a header and
//! waits for `SMFIR_CONTINUE` before sending the next. A message with 15
//! header fields and a few body chunks costs twenty-odd round trips, and on
//! TCP each can stall on Nagle's algorithm and delayed ACKs. A DKIM milter
//! decides nothing before end of message, so it asks for "no reply" on
//! every earlier step: the MTA then streams the whole message and waits
//! once, at `SMFIC_BODYEOB`. Two replies per message, the option
//! negotiation once per connection and the end-of-message batch. If the
//! MTA does not offer a flag (older MTAs), the intersection in
//! [`negotiate`] drops it and this session answers that step with
//! `SMFIR_CONTINUE`, as the protocol then requires. Replying to a step
//! whose `NR_*` flag *was* negotiated would be worse than slow: the MTA
//! would take the reply as the answer to its next question.
//!
//! # Why `SMFIP_HDR_LEADSPC`
//!
//! Without it the MTA removes the space after each header's colon before
//! handing the value over, and inserts one in front of every value we add.
//! `simple` header canonicalization hashes the header byte for byte, so the
//! signer must see the original bytes, and the DKIM-Signature we insert
//! must be delivered exactly as we hashed it. With the flag both directions
//! are exact; without it we assume (and add back) the one space that nearly
//! every header has.
//!
//! # Why tempfail by default
//!
//! A message that should be signed but cannot be (key unreadable, signing
//! error) is answered with a 4xx by default (`on_failure.key_unreadable`,
//! `on_failure.sign_error`): the MTA keeps it queued and retries, and
//! nothing leaves unsigned while the admin fixes the key. Accepting would
//! send it unsigned, and with a DMARC policy of reject the receiver would
//! bounce it, far from where the problem is. Verification problems default
//! to accept: a receiving milter reports (Authentication-Results) and
//! leaves the verdict to DMARC.
//!
//! # Errors
//!
//! A protocol error (out-of-order command, failed negotiation) ends this
//! connection only: [`Session::handle`] returns [`SessionError`] and the
//! server closes the socket, so the MTA applies its default action
//! (`milter_default_action`). A problem with one message (no From, no key,
//! a failed signature) is an `on_failure` action on that message.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};

use super::policy::{self, Client, Direction};
use super::{KeySlot, Shared, State};
use crate::config::model::Action;
use crate::dkim::auth_results::{self, claims_authserv_id};
use crate::dkim::crlf;
use crate::dkim::verify::{DkimStatus, VerifyResult};
use crate::dkim::{HeaderField, MessageSigner, MessageVerifier};
use crate::milter::command::{Command, Family};
use crate::milter::negotiate::{Negotiated, Wanted, action, negotiate, protocol, stage};
use crate::milter::{ProtocolError, Reply};

/// What the engine asks for in option negotiation.
///
/// - actions: `SMFIF_ADDHDRS` (required: DKIM-Signature and
///   Authentication-Results are inserted) and `SMFIF_CHGHDRS` (optional:
///   removing forged Authentication-Results).
/// - protocol: every `SMFIP_NR_*` (see the module docs), `SMFIP_HDR_LEADSPC`,
///   and the `NO*` bits for steps DKIM has no use for (HELO, RCPT, DATA,
///   unknown commands).
/// - macros (`SMFIF_SETSYMLIST`): `j` and `{daemon_name}` at connect,
///   `{auth_authen}`, `{auth_type}` and the queue id `i` at MAIL, `i` again
///   at end of header and end of message (Postfix assigns the queue id
///   late).
pub fn wanted() -> Wanted {
    Wanted {
        actions: action::ADDHDRS | action::CHGHDRS,
        required_actions: action::ADDHDRS,
        protocol: protocol::ALL_NR
            | protocol::HDR_LEADSPC
            | protocol::NOHELO
            | protocol::NORCPT
            | protocol::NODATA
            | protocol::NOUNKNOWN,
        macros: vec![
            (stage::CONNECT, b"j {daemon_name}"),
            (stage::ENVFROM, b"{auth_authen} {auth_type} i"),
            (stage::EOH, b"i"),
            (stage::EOM, b"i"),
        ],
    }
}

/// Logged once per process when the MTA does not allow header changes.
static WARNED_NO_CHGHDRS: AtomicBool = AtomicBool::new(false);

/// What the server does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Close the connection (after writing what is in the buffer).
    Close,
}

/// A protocol error that ends the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// Negotiation failed or a reply could not be encoded.
    Protocol(ProtocolError),
    /// A command arrived before `SMFIC_OPTNEG`.
    BeforeNegotiation(&'static str),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Protocol(e) => e.fmt(f),
            SessionError::BeforeNegotiation(c) => {
                write!(f, "{c} before option negotiation")
            }
        }
    }
}

impl std::error::Error for SessionError {}

impl From<ProtocolError> for SessionError {
    fn from(e: ProtocolError) -> Self {
        SessionError::Protocol(e)
    }
}

/// Macro values of one stage, later values replacing earlier ones.
#[derive(Debug, Default, Clone)]
struct Macros(Vec<(Bytes, Bytes)>);

impl Macros {
    fn set(&mut self, pairs: Vec<(Bytes, Bytes)>) {
        for (name, value) in pairs {
            match self.0.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => self.0.push((name, value)),
            }
        }
    }

    /// A macro by name; `{x}` and `x` are the same macro.
    fn get(&self, name: &str) -> Option<&Bytes> {
        let bare = name.trim_start_matches('{').trim_end_matches('}');
        self.0
            .iter()
            .find(|(n, _)| {
                let n = n.strip_prefix(b"{").unwrap_or(n);
                let n = n.strip_suffix(b"}").unwrap_or(n);
                n == bare.as_bytes()
            })
            .map(|(_, v)| v)
    }
}

/// What the negotiation means for one command.
#[derive(Debug, Clone, Copy)]
struct Opts {
    /// The command expects a reply (its `NR_*` flag was not agreed).
    answer: bool,
    /// `SMFIP_HDR_LEADSPC` is in force.
    leading_space: bool,
    /// `SMFIF_CHGHDRS` is allowed.
    change_headers: bool,
}

/// What is known about the SMTP client (until `SMFIC_QUIT_NC`).
#[derive(Debug, Default)]
struct Connection {
    ip: Option<IpAddr>,
    /// The client's name as the MTA hands it over (Postfix: the
    /// forward-confirmed name), `None` for the placeholders MTAs send
    /// without one.
    hostname: Option<Vec<u8>>,
    macros: Macros,
}

/// A message being read.
enum Phase {
    /// Between messages.
    Idle,
    /// Reading the header block.
    Headers(Headers),
    /// Past end of header: signing, verifying or already decided.
    Body(Body),
}

struct Headers {
    state: Arc<State>,
    direction: Direction,
    fields: Vec<HeaderField>,
    size: u64,
    too_large: bool,
}

enum Body {
    Sign {
        state: Arc<State>,
        domain: String,
        // Boxed: the hash state is large next to the other variants.
        signer: Box<MessageSigner>,
    },
    Verify {
        state: Arc<State>,
        // Boxed: one hash state per distinct body canonicalization.
        verifier: Box<MessageVerifier>,
        /// Bytes seen so far (header block and body).
        size: u64,
        /// Why the message will not be verified, if it will not.
        skipped: Option<&'static str>,
    },
    /// Decided at end of header; the body is ignored.
    Settled(Outcome),
}

/// The end-of-message answer for a message decided early.
struct Outcome {
    replies: Vec<Reply>,
    log: String,
    /// The same outcome as fields, for the journal and the metrics.
    event: Event,
}

impl Outcome {
    /// Puts the removal of the forged Authentication-Results fields at
    /// `forged` first among the modifications, when the message is
    /// accepted (a tempfail or reject carries none: the MTA keeps nothing
    /// of the message). Removals go from the last occurrence up: deleting
    /// occurrence 1 would renumber the ones after it, and a header we
    /// insert at the top must not be counted among them.
    fn remove_forged(&mut self, forged: &[u32], allowed: bool) {
        if self.replies.last() != Some(&Reply::Continue) {
            return;
        }
        if !allowed {
            self.log.push_str(&format!(
                "; {} forged Authentication-Results kept (the MTA does not allow SMFIF_CHGHDRS)",
                forged.len()
            ));
            return;
        }
        let removals = forged.iter().rev().map(|&index| Reply::ChangeHeader {
            index,
            name: Bytes::from_static(auth_results::NAME.as_bytes()),
            value: Bytes::new(),
        });
        self.replies.splice(0..0, removals);
        self.log.push_str(&format!(
            "; removed {} forged Authentication-Results",
            forged.len()
        ));
    }
}

/// What happened to one message, as structured fields: journald gets them
/// as `DOMAIN=`, `SELECTOR=`, `RESULT=`, `ERROR=`, and the metrics count
/// them.
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// `signed`, `verified` or `skipped`; with a failure, the action taken
    /// (`accepted`, `tempfail`, `reject`).
    pub result: &'static str,
    /// The signing domain, or the first signature's `d=`.
    pub domain: String,
    /// Selectors (comma-separated) that signed or were checked.
    pub selector: String,
    /// Per-signature verification results (comma-separated), if verified.
    pub dkim: String,
    /// The failure case (`bad_from`, `no_key`, `key_unreadable`,
    /// `sign_error`, `dns_error`, `bad_signature`, `no_signature`,
    /// `oversized`), if any.
    pub error: &'static str,
}

impl Event {
    fn failure(action: Action, error: &'static str, domain: &str) -> Event {
        Event {
            result: match action {
                Action::Accept => "accepted",
                Action::Tempfail => "tempfail",
                Action::Reject => "reject",
            },
            domain: domain.to_string(),
            error,
            ..Event::default()
        }
    }
}

/// One milter connection.
pub struct Session {
    shared: Shared,
    negotiated: Option<Negotiated>,
    conn: Connection,
    msg_macros: Macros,
    phase: Phase,
    /// The current message's Authentication-Results fields, counted as
    /// they stream in.
    results: ResultsScan,
}

/// Authentication-Results fields of one message, counted as each header
/// arrives, whatever happens to the message (signed, verified, passed
/// through, or its header block too large to keep): a header claiming our
/// authserv-id is forged in every direction, and is removed whenever the
/// message is accepted (RFC 8601 §5).
#[derive(Debug, Default)]
struct ResultsScan {
    /// Authentication-Results fields seen so far.
    seen: u32,
    /// Positions (1-based among them, the index `SMFIR_CHGHEADER` takes)
    /// of those claiming our authserv-id. At most one entry per field
    /// of at least 27 bytes, so bounded by the header block the MTA
    /// accepts.
    forged: Vec<u32>,
}

impl Session {
    /// A session that reads the current configuration from `shared` at the
    /// start of each message.
    pub fn new(shared: Shared) -> Session {
        Session {
            shared,
            negotiated: None,
            conn: Connection::default(),
            msg_macros: Macros::default(),
            phase: Phase::Idle,
            results: ResultsScan::default(),
        }
    }

    /// True between messages (nothing would be lost by closing now).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle)
    }

    /// The option negotiation in force, once done.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The queue id for log lines (`i` macro), or `NOQUEUE`.
    pub fn queue_id(&self) -> String {
        self.macro_value("i")
            .map(|v| v.escape_ascii().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "NOQUEUE".to_string())
    }

    fn macro_value(&self, name: &str) -> Option<&Bytes> {
        self.msg_macros
            .get(name)
            .or_else(|| self.conn.macros.get(name))
    }

    fn reset_message(&mut self) {
        self.phase = Phase::Idle;
        self.msg_macros = Macros::default();
        self.results = ResultsScan::default();
    }

    /// Handles one command, appending its replies (if any) to `out`. `now`
    /// is the time in Unix seconds, used for `t=` at end of message.
    ///
    /// # Errors
    ///
    /// A [`SessionError`] means the connection must be closed.
    pub async fn handle(
        &mut self,
        cmd: Command,
        now: u64,
        out: &mut BytesMut,
    ) -> Result<Flow, SessionError> {
        let opts = match (&cmd, &self.negotiated) {
            (Command::OptNeg(offer), _) => {
                let n = negotiate(offer, &wanted())?;
                if !n.has_action(action::CHGHDRS)
                    && !WARNED_NO_CHGHDRS.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(
                        "the MTA does not allow milters to change headers (SMFIF_CHGHDRS): \
                         forged Authentication-Results headers will not be removed"
                    );
                }
                Reply::OptNeg(n.reply.clone()).encode(out)?;
                self.negotiated = Some(n);
                return Ok(Flow::Continue);
            }
            (Command::Quit, _) => return Ok(Flow::Close),
            (_, Some(n)) => Opts {
                // Steps whose NR flag was negotiated get no reply; the
                // others get SMFIR_CONTINUE (every step but end of
                // message, which answers itself below).
                answer: !n.no_reply(&cmd),
                leading_space: n.leading_space_kept(),
                change_headers: n.has_action(action::CHGHDRS),
            },
            (other, None) => return Err(SessionError::BeforeNegotiation(other.wire_name())),
        };
        match cmd {
            Command::OptNeg(_) | Command::Quit => {}
            Command::Macro { stage, pairs } => {
                // Connect-stage macros ({daemon_name}, j) describe the
                // connection; the others belong to the current message.
                if stage == b'C' {
                    self.conn.macros.set(pairs);
                } else {
                    self.msg_macros.set(pairs);
                }
            }
            Command::Connect {
                hostname,
                family,
                address,
                ..
            } => {
                self.conn.ip = match family {
                    Family::Inet | Family::Inet6 => parse_ip(&address),
                    Family::Unix | Family::Unknown => None,
                };
                self.conn.hostname = policy::client_name(&hostname);
            }
            Command::Mail(_) => {
                // A new transaction. A message left unfinished (no
                // SMFIC_ABORT) is dropped; its macros were replaced already.
                self.phase = Phase::Idle;
                self.results = ResultsScan::default();
            }
            Command::Helo(_) | Command::Rcpt(_) | Command::Data | Command::Unknown(_) => {}
            Command::Header { name, value } => self.header(&name, &value, opts),
            Command::EndOfHeaders => self.end_of_headers(),
            Command::Body(chunk) => self.body(&chunk),
            Command::EndOfMessage => {
                self.end_of_message(now, opts, out).await?;
                return Ok(Flow::Continue);
            }
            Command::Abort => {
                self.reset_message();
                return Ok(Flow::Continue);
            }
            Command::QuitNewConnection => {
                // The MTA reuses this socket for another SMTP connection:
                // everything but the negotiated options starts over.
                self.conn = Connection::default();
                self.reset_message();
                return Ok(Flow::Continue);
            }
        }
        if opts.answer {
            Reply::Continue.encode(out)?;
        }
        Ok(Flow::Continue)
    }

    /// Starts a message at its first header: takes a snapshot of the
    /// configuration and decides sign / verify / pass.
    fn start_message(&mut self) {
        if !matches!(self.phase, Phase::Headers(_)) {
            let state = self.shared.current();
            let client = Client {
                ip: self.conn.ip,
                hostname: self.conn.hostname.clone(),
                daemon_name: self.macro_value("daemon_name").map(|v| v.to_vec()),
                auth_authen: self.macro_value("auth_authen").map(|v| v.to_vec()),
            };
            let direction = policy::direction(&state.config, &client);
            self.phase = Phase::Headers(Headers {
                state,
                direction,
                fields: Vec::new(),
                size: 0,
                too_large: false,
            });
        }
    }

    fn header(&mut self, name: &[u8], value: &[u8], opts: Opts) {
        if matches!(self.phase, Phase::Body(_)) {
            // A header after end of header: out of order; ignore it, the
            // signature covers what was seen at end of header.
            return;
        }
        self.start_message();
        let Phase::Headers(h) = &mut self.phase else {
            return;
        };
        if name.eq_ignore_ascii_case(auth_results::NAME.as_bytes()) {
            let r = &mut self.results;
            r.seen = r.seen.saturating_add(1);
            if claims_authserv_id(value, &h.state.authserv_id) {
                r.forged.push(r.seen);
            }
        }
        if h.direction == Direction::Pass || h.too_large {
            return;
        }
        let field = header_from_milter(name, value, opts.leading_space);
        h.size += field.wire_len() as u64;
        if h.size > h.state.config.engine.max_header_size {
            h.too_large = true;
            h.fields = Vec::new();
            return;
        }
        h.fields.push(field);
    }

    fn end_of_headers(&mut self) {
        if matches!(self.phase, Phase::Body(_)) {
            return;
        }
        self.start_message();
        let Phase::Headers(mut h) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        if h.direction == Direction::Sign && !self.results.forged.is_empty() {
            // They are removed at end of message; signing them would
            // break the signature.
            h.fields = without_forged(h.fields, &self.results.forged);
        }
        self.phase = Phase::Body(match h.direction {
            Direction::Pass => Body::Settled(Outcome {
                replies: vec![Reply::Continue],
                event: Event {
                    result: "skipped",
                    ..Event::default()
                },
                log: if h.state.config.service.mode.verifies() {
                    "not verified: client in trusted.external_ignore".into()
                } else {
                    "not signed: client not trusted (service.mode = \"sign\")".into()
                },
            }),
            Direction::Sign => decide_signing(h),
            Direction::Verify => start_verifying(h),
        });
    }

    fn body(&mut self, chunk: &[u8]) {
        if !matches!(self.phase, Phase::Body(_)) {
            self.end_of_headers();
        }
        match &mut self.phase {
            Phase::Body(Body::Sign { signer, .. }) => signer.write_body(chunk),
            Phase::Body(Body::Verify {
                state,
                verifier,
                size,
                skipped,
                ..
            }) if skipped.is_none() => {
                *size = size.saturating_add(chunk.len() as u64);
                if *size > state.config.engine.verify_max_size {
                    *skipped = Some("message too large to verify");
                } else {
                    verifier.write_body(chunk);
                }
            }
            _ => {}
        }
    }

    async fn end_of_message(
        &mut self,
        now: u64,
        opts: Opts,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        if !matches!(self.phase, Phase::Body(_)) {
            self.end_of_headers();
        }
        let qid = self.queue_id();
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        let outcome = match phase {
            Phase::Body(Body::Settled(o)) => o,
            Phase::Body(Body::Sign {
                state,
                domain,
                signer,
            }) => finish_signing(&state, &domain, signer, now, opts),
            Phase::Body(Body::Verify {
                state,
                verifier,
                skipped,
                ..
            }) => finish_verifying(&state, *verifier, skipped, now, opts).await,
            // end_of_headers always leaves a Body phase.
            Phase::Idle | Phase::Headers(_) => Outcome {
                replies: vec![Reply::Continue],
                log: "empty message".into(),
                event: Event {
                    result: "skipped",
                    ..Event::default()
                },
            },
        };
        let mut outcome = outcome;
        let forged = std::mem::take(&mut self.results.forged);
        if !forged.is_empty() {
            outcome.remove_forged(&forged, opts.change_headers);
        }
        let e = &outcome.event;
        tracing::info!(
            queue_id = %qid,
            result = e.result,
            domain = %e.domain,
            selector = %e.selector,
            dkim = %e.dkim,
            error = e.error,
            "{qid}: {}",
            outcome.log
        );
        self.shared.metrics().record(e, &self.shared.current());
        // All replies of this step go into the buffer now and leave in one
        // write (see server.rs); encode failures truncate cleanly.
        for r in &outcome.replies {
            r.encode(out)?;
        }
        self.reset_message();
        Ok(())
    }
}

/// An IP from `SMFIC_CONNECT` (`192.0.2.1`, `2001:db8::1`,
/// `IPv6:2001:db8::1`, `[...]`).
fn parse_ip(address: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(address).ok()?;
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let s = if s.len() > 5 && s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("ipv6:")) {
        s.get(5..)?
    } else {
        s
    };
    s.parse().ok()
}

/// The answer for a failure action. `Accept` keeps the modifications;
/// tempfail and reject carry an SMTP reply (RFC 3463 status 4.7.1 or
/// 5.7.1: a security or policy reason) and no modifications, which the MTA
/// would discard anyway.
fn act(action: Action, text: &str, mods: Vec<Reply>) -> Vec<Reply> {
    match action {
        Action::Accept => {
            let mut r = mods;
            r.push(Reply::Continue);
            r
        }
        Action::Tempfail => vec![Reply::ReplyCode(Bytes::from(format!("451 4.7.1 {text}")))],
        Action::Reject => vec![Reply::ReplyCode(Bytes::from(format!("550 5.7.1 {text}")))],
    }
}

fn settled(action: Action, error: &'static str, domain: &str, text: &str, log: String) -> Body {
    Body::Settled(Outcome {
        replies: act(action, text, Vec::new()),
        log: format!("{}: {log}", action_word(action)),
        event: Event::failure(action, error, domain),
    })
}

fn action_word(a: Action) -> &'static str {
    match a {
        Action::Accept => "accepted unsigned",
        Action::Tempfail => "tempfail",
        Action::Reject => "reject",
    }
}

/// `fields` without the Authentication-Results fields at the (1-based,
/// ascending) positions `forged`.
fn without_forged(fields: Vec<HeaderField>, forged: &[u32]) -> Vec<HeaderField> {
    let mut seen = 0u32;
    fields
        .into_iter()
        .filter(|f| {
            if !f.is(auth_results::NAME) {
                return true;
            }
            seen = seen.saturating_add(1);
            forged.binary_search(&seen).is_err()
        })
        .collect()
}

/// End of header on the signing side: From, domain, keys.
fn decide_signing(h: Headers) -> Body {
    let f = h.state.config.engine.on_failure;
    if h.too_large {
        return settled(
            f.sign_error,
            "sign_error",
            "",
            "header block too large to sign",
            format!(
                "header block over engine.max_header_size ({} bytes)",
                h.state.config.engine.max_header_size
            ),
        );
    }
    let from = match super::message_from_domain(&h.fields) {
        Ok(d) => d,
        Err(e) => {
            return settled(
                f.bad_from,
                "bad_from",
                "",
                "message must have exactly one From header with one address domain",
                format!("not signed: {e} (RFC 6376 section 8.15)"),
            );
        }
    };
    let Some(domain) = policy::signing_domain(&h.state.config, &from) else {
        return settled(
            f.no_key,
            "no_key",
            &from,
            "no DKIM key for the sender domain",
            format!("no signing domain for {from}"),
        );
    };
    let domain_name = domain.name.clone();
    let mut ready = Vec::new();
    for slot in h.state.keys_for(&domain_name) {
        match slot {
            KeySlot::Ready(s) => ready.push(Arc::clone(s)),
            KeySlot::Unusable { reason, .. } => {
                return settled(
                    f.key_unreadable,
                    "key_unreadable",
                    &domain_name,
                    "DKIM key unavailable, try again later",
                    format!("key unreadable for {domain_name}: {reason}"),
                );
            }
        }
    }
    if ready.is_empty() {
        return settled(
            f.no_key,
            "no_key",
            &domain_name,
            "no DKIM key for the sender domain",
            format!("no active key for {domain_name}"),
        );
    }
    let signer = Box::new(super::message_signer(&h.state.config, ready, h.fields));
    Body::Sign {
        state: h.state,
        domain: domain_name,
        signer,
    }
}

fn finish_signing(
    state: &State,
    domain: &str,
    signer: Box<MessageSigner>,
    now: u64,
    opts: Opts,
) -> Outcome {
    match signer.finish(now) {
        Ok(sigs) => {
            let leading_space = opts.leading_space;
            // SMFIR_INSHEADER at index 0 puts a header on top; the last one
            // sent ends up first, so send in reverse to keep key order.
            let mut replies: Vec<Reply> = sigs
                .iter()
                .rev()
                .map(|s| Reply::InsertHeader {
                    index: 0,
                    name: Bytes::from_static(b"DKIM-Signature"),
                    value: milter_value(s.value.as_bytes(), leading_space),
                })
                .collect();
            replies.push(Reply::Continue);
            let log = sigs
                .iter()
                .map(|s| format!("d={} s={} a={}", s.domain, s.selector, s.algorithm.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            let selector = sigs
                .iter()
                .map(|s| s.selector.as_str())
                .collect::<Vec<_>>()
                .join(",");
            Outcome {
                replies,
                log: format!("signed {log}"),
                event: Event {
                    result: "signed",
                    domain: domain.to_string(),
                    selector,
                    ..Event::default()
                },
            }
        }
        Err(e) => {
            let a = state.config.engine.on_failure.sign_error;
            Outcome {
                replies: act(a, "DKIM signing failed, try again later", Vec::new()),
                log: format!("{}: signing for {domain} failed: {e}", action_word(a)),
                event: Event::failure(a, "sign_error", domain),
            }
        }
    }
}

fn start_verifying(h: Headers) -> Body {
    let max = h.state.config.engine.verify_max_size;
    let size = 2 + h.fields.iter().map(HeaderField::wire_len).sum::<usize>();
    let skipped = if h.too_large {
        Some("header block too large to verify")
    } else if size as u64 > max {
        Some("message too large to verify")
    } else {
        None
    };
    Body::Verify {
        state: h.state,
        verifier: Box::new(MessageVerifier::new(h.fields)),
        size: size as u64,
        skipped,
    }
}

async fn finish_verifying(
    state: &State,
    verifier: MessageVerifier,
    skipped: Option<&'static str>,
    now: u64,
    opts: Opts,
) -> Outcome {
    let f = state.config.engine.on_failure;
    let (results, action, text, log) = match skipped {
        Some(why) => (Vec::new(), f.oversized, why, format!("not verified: {why}")),
        None => {
            let results = match &state.resolver {
                Some(r) => verifier.finish(r, now).await,
                None => Vec::new(),
            };
            let (action, text) = verify_action(state, &results);
            let log = if results.is_empty() {
                "verified dkim=none".to_string()
            } else {
                let parts: Vec<String> = results.iter().map(ToString::to_string).collect();
                format!("verified {}", parts.join(", "))
            };
            (results, action, text, log)
        }
    };
    let mut mods = Vec::new();
    let value = auth_results::authentication_results(&state.authserv_id, &results, skipped);
    mods.push(Reply::InsertHeader {
        index: 0,
        name: Bytes::from_static(b"Authentication-Results"),
        value: milter_value(value.as_bytes(), opts.leading_space),
    });
    let error = verify_error(state, &results, skipped.is_some());
    let mut event = if action == Action::Accept && error.is_empty() {
        Event {
            result: "verified",
            ..Event::default()
        }
    } else {
        Event::failure(action, error, "")
    };
    if action == Action::Accept {
        event.result = "verified";
    }
    event.domain = results
        .iter()
        .find_map(|r| r.domain.clone())
        .unwrap_or_default();
    event.selector = results
        .iter()
        .filter_map(|r| r.selector.clone())
        .collect::<Vec<_>>()
        .join(",");
    event.dkim = if results.is_empty() {
        "none".to_string()
    } else {
        results
            .iter()
            .map(|r| r.status.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let log = match action {
        Action::Accept => log,
        a => format!("{}: {log}", action_word(a)),
    };
    Outcome {
        replies: act(action, text, mods),
        log,
        event,
    }
}

/// The failure case of verification results, for the metrics ("" when a
/// signature passed).
fn verify_error(_state: &State, results: &[VerifyResult], skipped: bool) -> &'static str {
    if skipped {
        return "oversized";
    }
    if results.iter().any(|r| r.status == DkimStatus::Pass) {
        return "";
    }
    if results.is_empty() || results.iter().all(|r| r.status == DkimStatus::None) {
        return "no_signature";
    }
    if results.iter().any(|r| r.status == DkimStatus::TempError) {
        return "dns_error";
    }
    "bad_signature"
}

/// The `on_failure` action for verification results: any passing
/// signature accepts; else a DNS problem is `dns_error` (it may pass
/// later), a broken signature `bad_signature`, none at all `no_signature`.
fn verify_action(state: &State, results: &[VerifyResult]) -> (Action, &'static str) {
    let f = state.config.engine.on_failure;
    if results.iter().any(|r| r.status == DkimStatus::Pass) {
        return (Action::Accept, "");
    }
    if results.is_empty() || results.iter().all(|r| r.status == DkimStatus::None) {
        return (f.no_signature, "message is not DKIM-signed");
    }
    if results.iter().any(|r| r.status == DkimStatus::TempError) {
        return (f.dns_error, "DKIM key lookup failed, try again later");
    }
    (f.bad_signature, "DKIM signature did not verify")
}

/// A header field from a milter `SMFIC_HEADER`. With `leading_space_kept`
/// (`SMFIP_HDR_LEADSPC`) the value is exactly what followed the colon;
/// without it the MTA removed the space after the colon, and we put one
/// back (the form nearly every message has).
pub fn header_from_milter(name: &[u8], value: &[u8], leading_space_kept: bool) -> HeaderField {
    let mut v = Vec::with_capacity(value.len() + 3);
    if !leading_space_kept {
        v.push(b' ');
    }
    v.extend_from_slice(&crlf(value));
    v.extend_from_slice(b"\r\n");
    HeaderField {
        name: Bytes::copy_from_slice(name),
        value: v,
    }
}

/// Shapes a header value for a milter modification (`SMFIR_INSHEADER`).
///
/// `value` is the value as it was hashed: text after the colon, folded
/// with CRLF + TAB, with no line end at the end. The MTA expects bare LF
/// inside milter header values (it writes CRLF when it transmits). With
/// `SMFIP_HDR_LEADSPC` the MTA inserts the value right after the colon, so
/// the leading space must be ours; without it the MTA adds one space
/// itself, so ours is dropped. Either way the delivered header is the hashed
/// text byte for byte, which `simple` header canonicalization requires.
pub fn milter_value(value: &[u8], leading_space_kept: bool) -> Bytes {
    let mut out = Vec::with_capacity(value.len() + 1);
    let body = match value.strip_prefix(b" ") {
        Some(rest) => rest,
        None => value,
    };
    if leading_space_kept {
        out.push(b' ');
    }
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        if b == b'\r' && body.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
