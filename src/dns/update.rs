//! RFC 2136 dynamic updates, signed with TSIG (RFC 8945): the one way
//! dkimctl changes a DNS server.
//!
//! An [`Update`] replaces the TXT RRset at each of its names with one
//! record: the update section holds, per name, "delete the TXT RRset"
//! (class ANY, RFC 2136 §2.5.2) followed by "add this RR" (§2.5.1), which
//! the server applies in order and atomically. Nothing else is ever sent:
//! no other type, no other name.
//!
//! The message is built and signed with hickory-proto (its TSIG signer:
//! HMAC-SHA256/512 over the message and the TSIG variables, §4.3.3) and
//! sent over TCP (two-byte length prefix, RFC 1035 §4.2.2), so a large
//! RSA record never meets UDP truncation. The answer's TSIG is verified
//! (§5.3.2); an error answer is turned into a message that says what the
//! server meant (NOTAUTH + BADSIG: the secret differs, REFUSED: the
//! update policy does not allow the key, ...).

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_resolver::proto::op::{Message, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_resolver::proto::rr::rdata::TXT;
use hickory_resolver::proto::rr::rdata::tsig::{TsigAlgorithm as HickoryAlg, TsigError};
use hickory_resolver::proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};

use crate::formats::tsig::{TsigAlgorithm, TsigKey};
use crate::keys;

/// Seconds of clock difference the server may accept (RFC 8945 §10
/// recommends 300).
const FUDGE: u16 = 300;

/// Largest answer read (the TCP length prefix allows no more).
const MAX_ANSWER: usize = 65_535;

/// One update message: the TXT RRset at each name replaced by one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The zone (its apex), the update's zone section.
    pub zone: String,
    /// TTL of the added records.
    pub ttl: u32,
    /// (owner name, joined TXT value), in order.
    pub records: Vec<(String, String)>,
}

impl Update {
    /// The update in nsupdate(1) syntax (for `--dry-run` and reports):
    /// the same operations, readable, without the key.
    pub fn describe(&self, server: SocketAddr) -> String {
        let mut s = format!(
            "server {} {}\nzone {}.\n",
            server.ip(),
            server.port(),
            self.zone
        );
        for (name, value) in &self.records {
            s.push_str(&format!("update delete {name}. TXT\n"));
            let strings: Vec<String> = keys::character_strings(value)
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect();
            s.push_str(&format!(
                "update add {name}. {} TXT {}\n",
                self.ttl,
                strings.join(" ")
            ));
        }
        s.push_str("send\n");
        s
    }

    /// The unsigned message.
    fn message(&self) -> Result<Message, UpdateError> {
        let name = |n: &str| {
            Name::from_ascii(format!("{}.", n.trim_end_matches('.')))
                .map_err(|e| UpdateError::Encode(format!("invalid name {n}: {e}")))
        };
        let mut zone = Query::new();
        zone.set_name(name(&self.zone)?)
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.recursion_desired = false;
        message.add_zone(zone);
        for (owner, value) in &self.records {
            let owner = name(owner)?;
            // RFC 2136 §2.5.2: delete an RRset: class ANY, TTL 0, no RDATA.
            let mut delete = Record::from_rdata(owner.clone(), 0, RData::Update0(RecordType::TXT));
            delete.dns_class = DNSClass::ANY;
            message.add_update(delete);
            let pieces = keys::character_strings(value);
            let txt = TXT::from_bytes(pieces.iter().map(|p| p.as_bytes()).collect());
            message.add_update(Record::from_rdata(owner, self.ttl, RData::TXT(txt)));
        }
        Ok(message)
    }
}

/// Why an update was not done.
#[derive(Debug)]
pub enum UpdateError {
    /// The message could not be built (a bug or an impossible name).
    Encode(String),
    /// The server could not be reached or the exchange broke off.
    Io {
        /// The server.
        server: SocketAddr,
        /// What was being done.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The server answered with an error.
    Rejected(Box<Rejection>),
    /// The answer could not be trusted or understood.
    BadAnswer {
        /// The server.
        server: SocketAddr,
        /// Why.
        why: String,
    },
}

/// An error answer to an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The server.
    pub server: SocketAddr,
    /// The zone.
    pub zone: String,
    /// The key's name.
    pub key: String,
    /// The answer's RCODE (`NOTAUTH`, `REFUSED`, ...).
    pub rcode: String,
    /// The TSIG error of the answer, if any (`BADSIG`, ...).
    pub tsig_error: Option<String>,
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Encode(why) => write!(f, "failed to build the update: {why}"),
            UpdateError::Io { server, what, .. } => {
                write!(f, "failed to {what} the DNS server {server}")
            }
            UpdateError::Rejected(r) => {
                let Rejection {
                    server,
                    zone,
                    key,
                    rcode,
                    tsig_error,
                } = r.as_ref();
                let answered = match tsig_error {
                    Some(t) => format!("{rcode} (TSIG error {t})"),
                    None => rcode.clone(),
                };
                let why = match (rcode.as_str(), tsig_error.as_deref()) {
                    (_, Some("BADSIG")) => {
                        format!("the secret of key {key} differs from the one the server has")
                    }
                    (_, Some("BADKEY")) => format!(
                        "the server does not know key {key} with this algorithm; compare the key \
                         name and algorithm with the server's configuration"
                    ),
                    (_, Some("BADTIME")) => "the clocks of this host and the server differ by \
                                             more than 5 minutes; check NTP"
                        .to_string(),
                    ("NOTAUTH", _) => format!(
                        "the server is not authoritative for {zone}, or does not accept key {key} \
                         for it"
                    ),
                    ("REFUSED", _) => format!(
                        "its update policy does not allow key {key} to change {zone} (check the \
                         zone's update ACL)"
                    ),
                    ("NOTZONE", _) => format!("a record name lies outside zone {zone}"),
                    ("NOTIMP", _) => "the server does not accept dynamic updates".to_string(),
                    ("SERVFAIL", _) => "the server failed to apply it (see its log)".to_string(),
                    _ => "see the server's log".to_string(),
                };
                write!(
                    f,
                    "the DNS server {server} rejected the update of {zone}: it answered \
                     {answered}: {why}"
                )
            }
            UpdateError::BadAnswer { server, why } => {
                write!(
                    f,
                    "the answer of the DNS server {server} cannot be trusted: {why}"
                )
            }
        }
    }
}

impl std::error::Error for UpdateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpdateError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The wire name of an RCODE (as dig prints it).
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        ResponseCode::BADSIG => "BADSIG".into(),
        ResponseCode::BADKEY => "BADKEY".into(),
        ResponseCode::BADTIME => "BADTIME".into(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

fn tsig_error_name(e: TsigError) -> String {
    match e {
        TsigError::BadSig => "BADSIG".into(),
        TsigError::BadKey => "BADKEY".into(),
        TsigError::BadTime => "BADTIME".into(),
        TsigError::BadTrunc => "BADTRUNC".into(),
        TsigError::Unknown(n) => format!("error {n}"),
    }
}

/// Sends `update` to `server`, signed with `key`; returns once the server
/// confirmed it (NOERROR, with a valid TSIG). `timeout` bounds connecting
/// and each read and write.
pub fn send(
    server: SocketAddr,
    update: &Update,
    key: &TsigKey,
    timeout: Duration,
) -> Result<(), UpdateError> {
    let algorithm = match key.algorithm {
        TsigAlgorithm::HmacSha256 => HickoryAlg::HmacSha256,
        TsigAlgorithm::HmacSha512 => HickoryAlg::HmacSha512,
    };
    let key_name = Name::from_ascii(format!("{}.", key.name))
        .map_err(|e| UpdateError::Encode(format!("invalid key name {}: {e}", key.name)))?;
    let signer = TSigner::new(key.secret.expose().to_vec(), algorithm, key_name, FUDGE)
        .map_err(|e| UpdateError::Encode(e.to_string()))?;
    let mut message = update.message()?;
    // The TSIG time is the real clock: the server compares it with its own.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut verifier = message
        .finalize(&signer, now)
        .map_err(|e| UpdateError::Encode(e.to_string()))?
        .ok_or_else(|| UpdateError::Encode("the signer gave no verifier".into()))?;
    let bytes = message
        .to_vec()
        .map_err(|e| UpdateError::Encode(e.to_string()))?;
    let answer = exchange(server, &bytes, timeout)?;

    let bad = |why: String| UpdateError::BadAnswer { server, why };
    let decoded = Message::from_vec(&answer).map_err(|e| bad(format!("malformed answer: {e}")))?;
    if decoded.metadata.id != message.metadata.id {
        return Err(bad("the answer's id is not the update's".into()));
    }
    let rcode = decoded.metadata.response_code;
    let tsig_error = decoded
        .signature()
        .and_then(|s| s.data.error)
        .map(tsig_error_name);
    if rcode != ResponseCode::NoError || tsig_error.is_some() {
        // Error answers to a key the server rejects are unsigned (RFC
        // 8945 §5.3.2), so they are reported as they are: nothing changed.
        return Err(UpdateError::Rejected(Box::new(Rejection {
            server,
            zone: update.zone.clone(),
            key: key.name.clone(),
            rcode: rcode_name(rcode),
            tsig_error,
        })));
    }
    if decoded.signature().is_none() {
        return Err(bad("the answer is not signed with the key".into()));
    }
    verifier
        .verify(&answer)
        .map_err(|e| bad(format!("its TSIG does not verify ({e})")))?;
    Ok(())
}

/// One request and its answer over TCP.
fn exchange(server: SocketAddr, request: &[u8], timeout: Duration) -> Result<Vec<u8>, UpdateError> {
    let io = |what: &'static str| {
        move |source| UpdateError::Io {
            server,
            what,
            source,
        }
    };
    let len = u16::try_from(request.len())
        .map_err(|_| UpdateError::Encode("the update is larger than 64 KiB".into()))?;
    let mut stream = TcpStream::connect_timeout(&server, timeout).map_err(io("connect to"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(io("talk to"))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(io("talk to"))?;
    let mut framed = Vec::with_capacity(request.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(request);
    stream
        .write_all(&framed)
        .map_err(io("send the update to"))?;
    let mut prefix = [0u8; 2];
    stream
        .read_exact(&mut prefix)
        .map_err(io("read the answer of"))?;
    let n = usize::from(u16::from_be_bytes(prefix));
    let mut answer = vec![0u8; n.min(MAX_ANSWER)];
    stream
        .read_exact(&mut answer)
        .map_err(io("read the answer of"))?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update() -> Update {
        Update {
            zone: "example.com".into(),
            ttl: 3600,
            records: vec![(
                "s1._domainkey.example.com".into(),
                format!("v=DKIM1; k=rsa; p={}", "A".repeat(300)),
            )],
        }
    }

    #[test]
    fn the_message_replaces_one_rrset_with_one_record() {
        let m = update().message().unwrap();
        assert_eq!(m.metadata.op_code, OpCode::Update);
        let zones = m.zones();
        assert_eq!(zones.len(), 1);
        assert_eq!(zones[0].name().to_ascii(), "example.com.");
        let ups = m.updates();
        assert_eq!(ups.len(), 2);
        assert_eq!(ups[0].dns_class, DNSClass::ANY);
        assert_eq!(ups[0].ttl, 0);
        assert_eq!(ups[1].dns_class, DNSClass::IN);
        assert_eq!(ups[1].ttl, 3600);
        let RData::TXT(txt) = &ups[1].data else {
            panic!("{:?}", ups[1]);
        };
        // One record of several strings, none longer than 255 bytes.
        assert_eq!(txt.txt_data.len(), 3);
        assert!(txt.txt_data.iter().all(|s| s.len() <= 255));
        let joined: Vec<u8> = txt
            .txt_data
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect();
        assert_eq!(joined, update().records[0].1.as_bytes());
    }

    #[test]
    fn describe_is_nsupdate_syntax() {
        let text = update().describe("127.0.0.1:5353".parse().unwrap());
        assert!(
            text.starts_with("server 127.0.0.1 5353\nzone example.com.\n"),
            "{text}"
        );
        assert!(
            text.contains("update delete s1._domainkey.example.com. TXT\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "update add s1._domainkey.example.com. 3600 TXT \"v=DKIM1; k=rsa; \" \"p=AAA"
            ),
            "{text}"
        );
        assert!(text.ends_with("send\n"));
    }

    #[test]
    fn rejections_say_what_the_server_meant() {
        let e = UpdateError::Rejected(Box::new(Rejection {
            server: "127.0.0.1:53".parse().unwrap(),
            zone: "example.com".into(),
            key: "dkimctl".into(),
            rcode: "NOTAUTH".into(),
            tsig_error: Some("BADSIG".into()),
        }));
        assert_eq!(
            e.to_string(),
            "the DNS server 127.0.0.1:53 rejected the update of example.com: it answered NOTAUTH \
             (TSIG error BADSIG): the secret of key dkimctl differs from the one the server has"
        );
    }

    #[test]
    fn an_unreachable_server_is_an_io_error() {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let key = crate::formats::tsig::parse(
            "key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0\"; };",
        )
        .unwrap();
        let server = SocketAddr::from(([127, 0, 0, 1], port));
        let e = send(server, &update(), &key, Duration::from_secs(2)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("failed to connect to the DNS server {server}")
        );
    }
}
