//! Judging answers: one TXT answer + the configured key -> one finding.
//!
//! Pure functions, no I/O: the caller looks the names up and loads the
//! private keys, so every rule here is tested with fixed answers. The rules
//! run in a fixed order and the first that applies is the selector's one
//! finding; the order puts what stops verification (no record, several
//! records, bad syntax, wrong key) before what only weakens it (key size,
//! testing flag).

use crate::config::model::{Algorithm, Domain, Key, KeyState};
use crate::keys::{self, ParsedRecord, PublicKey};

use super::lookup::{LookupError, TxtAnswer, TxtRecord, shown};
use super::report::{DomainFinding, PolicyRecord, PolicyStatus, SelectorFinding, Severity, Status};

/// How much of an untrusted record is quoted in a report.
const QUOTE_MAX: usize = 80;

/// What is known about a key's private half: its public key, or why it
/// could not be loaded (a message that names the file).
pub type PrivateState = Result<PublicKey, String>;

/// Judges the answer at `key`'s record name under `domain` (the signing
/// domain, `d=`; for a `key_from` domain its own name, not the owner's).
///
/// `private` is only consulted for keys that sign or may sign (every state
/// but retired).
pub fn judge_selector(
    domain: &Domain,
    key: &Key,
    answer: &Result<TxtAnswer, LookupError>,
    private: &PrivateState,
) -> SelectorFinding {
    let name = keys::record_name(&key.selector, &domain.name);
    let mut f = SelectorFinding {
        name: name.clone(),
        domain: domain.name.clone(),
        selector: key.selector.clone(),
        state: key.state,
        algorithm: key.algorithm,
        status: Status::Ok,
        severity: Severity::Ok,
        message: String::new(),
        detail: Vec::new(),
        fix: None,
        bits: None,
    };
    let expected = expected_record(domain, key, private);
    let publish =
        |value: &str| format!("publish ONE TXT record:\n{}", keys::zone_form(&name, value));

    // An empty record list is no record (a resolver should say NoData,
    // but records are indexed below, so make sure).
    let answer = match answer {
        Ok(TxtAnswer::Records(list)) if list.is_empty() => &Ok(TxtAnswer::NoData),
        other => other,
    };
    let records = match answer {
        Err(e) => {
            f.set(Status::DnsError, Severity::Error, e.to_string());
            f.fix =
                Some("check that the name server is reachable, then run the check again".into());
            return f;
        }
        Ok(TxtAnswer::NxDomain) | Ok(TxtAnswer::NoData) if key.state == KeyState::Retired => {
            f.set(
                Status::Ok,
                Severity::Ok,
                "retired, no record; an empty p= record would state the revocation explicitly",
            );
            return f;
        }
        Ok(TxtAnswer::NxDomain) => {
            f.set(
                Status::Missing,
                Severity::Error,
                format!("no TXT record at {name} (the name does not exist)"),
            );
            f.fix = expected.as_deref().map(publish);
            return f;
        }
        Ok(TxtAnswer::NoData) => {
            f.set(
                Status::Missing,
                Severity::Error,
                format!("no TXT record at {name} (the name exists, but holds no TXT record)"),
            );
            f.fix = expected.as_deref().map(publish);
            return f;
        }
        Ok(TxtAnswer::Records(records)) => records,
    };

    if records.len() > 1 {
        f.set(
            Status::SeveralRecords,
            Severity::Error,
            format!(
                "{} TXT records at {name}; receivers join them in any order and fail with \
                 'bad format' (the ArchWiki page's case)",
                records.len()
            ),
        );
        f.detail = describe_records(records);
        f.fix = expected.as_deref().map(|v| {
            format!(
                "replace them with ONE TXT record; its strings are joined in order:\n{}",
                keys::zone_form(&name, v)
            )
        });
        return f;
    }
    let record = &records[0];
    let parsed = match keys::parse_record(&record.joined()) {
        Ok(p) => p,
        Err(e) => {
            f.set(
                Status::Syntax,
                Severity::Error,
                format!("the TXT record at {name} is not a DKIM key record: {e}"),
            );
            f.detail = describe_records(records);
            f.fix = expected.as_deref().map(publish);
            return f;
        }
    };
    f.bits = parsed.rsa_bits();

    if key.state == KeyState::Retired {
        if parsed.is_revoked() {
            f.set(Status::Ok, Severity::Ok, "retired, revoked: p= is empty");
        } else {
            f.set(
                Status::NotRevoked,
                Severity::Warning,
                format!("the key is retired but {name} still publishes a public key"),
            );
            f.fix = Some(format!(
                "publish the revoked record in its place:\n{}",
                keys::zone_form(&name, &keys::revoked_record_value(parsed.key_type))
            ));
        }
        return f;
    }
    if parsed.is_revoked() {
        f.set(
            Status::Revoked,
            Severity::Error,
            format!(
                "{name} is revoked (empty p=) but the key is {}: mail it signs fails",
                key.state.as_str()
            ),
        );
        f.fix = expected.as_deref().map(publish);
        return f;
    }
    if let Some(problem) = unusable(&parsed) {
        f.set(
            Status::Unusable,
            Severity::Error,
            format!("{name}: {problem}"),
        );
        f.fix = expected.as_deref().map(publish);
        return f;
    }
    let wanted = match private {
        Ok(public) => public.algorithm(),
        Err(_) => key.algorithm,
    };
    if parsed.key_type != wanted {
        f.set(
            Status::AlgorithmMismatch,
            Severity::Error,
            format!(
                "{name} publishes k={} but the key is {}",
                parsed.key_type.key_type(),
                key_kind(wanted)
            ),
        );
        f.fix = expected.as_deref().map(publish);
        return f;
    }
    let public = match private {
        Ok(public) => public,
        Err(why) => {
            f.set(
                Status::NoPrivateKey,
                Severity::Error,
                format!("cannot compare {name} with the private key: {why}"),
            );
            f.fix = Some(format!(
                "restore {} (or run `dkimctl keys generate` and publish its record)",
                key.path.display()
            ));
            return f;
        }
    };
    if !keys::public_key_matches(&parsed, public) {
        f.set(
            Status::Mismatch,
            Severity::Error,
            format!(
                "{name} publishes a different public key than {} holds: every signature fails",
                key.path.display()
            ),
        );
        f.fix = expected.as_deref().map(publish);
        return f;
    }
    if let Some(bits) = f.bits {
        if bits < 1024 {
            f.set(
                Status::WeakKey,
                Severity::Error,
                format!("{name} publishes a {bits}-bit RSA key; verifiers reject keys below 1024 bits (RFC 8301)"),
            );
            f.fix = Some(format!(
                "run `dkimctl rotate {}` to replace it with a 2048-bit key",
                key.owner_domain
            ));
            return f;
        }
        if bits < 2048 {
            f.set(
                Status::WeakKey,
                Severity::Warning,
                format!("{name} publishes a {bits}-bit RSA key; 2048 bits is the recommended minimum (RFC 8301)"),
            );
            f.fix = Some(format!(
                "run `dkimctl rotate {}` to replace it with a 2048-bit key",
                key.owner_domain
            ));
            return f;
        }
    }
    if parsed.testing && !domain.record.testing {
        f.set(
            Status::Testing,
            Severity::Warning,
            format!("{name} has t=y (testing): receivers may treat failing mail as unsigned"),
        );
        f.fix = expected.as_deref().map(|v| {
            format!(
                "publish the record without t=y (or set record.testing = true in dkim.toml if \
                 testing is intended):\n{}",
                keys::zone_form(&name, v)
            )
        });
        return f;
    }
    let mut what = match f.bits {
        Some(bits) => format!("rsa {bits}"),
        None => parsed.key_type.key_type().to_string(),
    };
    match key.state {
        KeyState::Active => {}
        KeyState::Retiring => match &key.retire_after {
            Some(d) => what.push_str(&format!(", retiring after {d}")),
            None => what.push_str(", retiring"),
        },
        other => {
            what.push_str(", ");
            what.push_str(other.as_str());
        }
    }
    if parsed.testing {
        what.push_str(", testing");
    }
    f.set(Status::Ok, Severity::Ok, what);
    f
}

/// The record value the key should have, if it can be worked out.
fn expected_record(domain: &Domain, key: &Key, private: &PrivateState) -> Option<String> {
    if key.state == KeyState::Retired {
        return Some(keys::revoked_record_value(key.algorithm));
    }
    let public = private.as_ref().ok()?;
    Some(keys::record_value(
        public.algorithm(),
        public,
        domain.record,
    ))
}

/// A record that parses but cannot verify dkimctl's signatures.
fn unusable(parsed: &ParsedRecord) -> Option<&'static str> {
    if !parsed.allows_sha256() {
        Some("h= does not allow sha256, so no rsa-sha256 or ed25519-sha256 signature verifies")
    } else if !parsed.allows_email() {
        Some("s= does not include email, so receivers ignore the key for mail")
    } else {
        None
    }
}

fn key_kind(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::RsaSha256 => "an RSA key",
        Algorithm::Ed25519Sha256 => "an Ed25519 key",
    }
}

/// One line per record found, quoted safely.
fn describe_records(records: &[TxtRecord]) -> Vec<String> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "record {}: {} string(s), {} bytes: \"{}\"",
                i + 1,
                r.strings.len(),
                r.joined().len(),
                r.shown(QUOTE_MAX)
            )
        })
        .collect()
}

/// Judges the SPF answer at a domain and the DMARC answer at
/// `_dmarc.<domain>` (informational: dkimctl does not manage either).
pub fn judge_domain(
    domain: &str,
    spf: &Result<TxtAnswer, LookupError>,
    dmarc: &Result<TxtAnswer, LookupError>,
) -> DomainFinding {
    DomainFinding {
        domain: domain.to_string(),
        spf: policy(spf, b"v=spf1", None),
        dmarc: policy(dmarc, b"v=DMARC1", Some("p")),
    }
}

/// Finds the records starting with `version` (RFC 7208 §4.5, RFC 7489
/// §6.6.3: other TXT records at the name are ignored).
fn policy(
    answer: &Result<TxtAnswer, LookupError>,
    version: &[u8],
    tag: Option<&str>,
) -> PolicyRecord {
    // An empty record list is no record (a resolver should say NoData,
    // but records are indexed below, so make sure).
    let answer = match answer {
        Ok(TxtAnswer::Records(list)) if list.is_empty() => &Ok(TxtAnswer::NoData),
        other => other,
    };
    let records = match answer {
        Err(e) => {
            return PolicyRecord {
                status: PolicyStatus::DnsError,
                record: None,
                policy: None,
                error: Some(e.to_string()),
            };
        }
        Ok(TxtAnswer::NxDomain | TxtAnswer::NoData) => Vec::new(),
        Ok(TxtAnswer::Records(list)) => list
            .iter()
            .map(TxtRecord::joined)
            .filter(|v| starts_with_version(v, version))
            .collect(),
    };
    let status = match records.len() {
        0 => PolicyStatus::Missing,
        1 => PolicyStatus::Present,
        _ => PolicyStatus::Several,
    };
    let first = records.first();
    PolicyRecord {
        status,
        record: first.map(|r| shown(r, 200)),
        policy: tag.and_then(|t| first.and_then(|r| tag_value(r, t))),
        error: None,
    }
}

/// `v=spf1` followed by a space or the end; case-insensitive.
fn starts_with_version(value: &[u8], version: &[u8]) -> bool {
    let v = trim_start(value);
    v.len() >= version.len()
        && v[..version.len()].eq_ignore_ascii_case(version)
        && v.get(version.len())
            .is_none_or(|b| matches!(b, b' ' | b';' | b'\t'))
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

/// The value of `tag` in a `tag=value; ...` list, lower-cased and shown
/// safely.
fn tag_value(record: &[u8], tag: &str) -> Option<String> {
    record.split(|&b| b == b';').find_map(|spec| {
        let eq = spec.iter().position(|&b| b == b'=')?;
        let name = String::from_utf8_lossy(&spec[..eq]);
        (name.trim() == tag).then(|| shown(spec[eq + 1..].trim_ascii(), 40).to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::RecordFlags;
    use crate::dns::lookup::LookupErrorKind;

    /// A 1024-bit RSA public key (SubjectPublicKeyInfo), made with
    /// `openssl genrsa 1024`; aws-lc does not generate keys this small.
    const RSA_1024_SPKI: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCvJmwDWuzcD9f/gcGUriIVYTiYlWGSFHABMDNgbAAfPLr9m0LJqwWx0eWtYRVHxo8qvzXVd7TIu5p6qF6g+7cMAs2WF8yg0v6J4a9YHfVuhngH5wjDMdhv2hxj9/MQqjAbG1ZhKFxDbhgS1xzYedNXz/wrUBhVzYJp5GIP5jlFYwIDAQAB";

    fn domain(testing: bool) -> Domain {
        Domain {
            name: "example.com".into(),
            subdomains: false,
            algorithms: vec![Algorithm::RsaSha256],
            keys: Vec::new(),
            key_from: None,
            record: RecordFlags {
                testing,
                ..RecordFlags::default()
            },
        }
    }

    fn key(state: KeyState, algorithm: Algorithm) -> Key {
        Key {
            selector: "sel".into(),
            algorithm,
            path: "/etc/dkimctl/keys/example.com/sel.private".into(),
            rsa_bits: 2048,
            state,
            created: None,
            retire_after: None,
            owner_domain: "example.com".into(),
        }
    }

    fn ed() -> PublicKey {
        keys::generate_ed25519().unwrap().public
    }

    fn answer(values: &[&[&str]]) -> Result<TxtAnswer, LookupError> {
        Ok(TxtAnswer::Records(
            values.iter().map(|s| TxtRecord::new(s)).collect(),
        ))
    }

    fn judge(
        k: &Key,
        ans: Result<TxtAnswer, LookupError>,
        private: PrivateState,
    ) -> SelectorFinding {
        judge_selector(&domain(false), k, &ans, &private)
    }

    #[test]
    fn each_rule_gives_its_finding() {
        let pk = ed();
        let other = ed();
        let flags = RecordFlags::default();
        let good = keys::record_value(Algorithm::Ed25519Sha256, &pk, flags);
        let wrong = keys::record_value(Algorithm::Ed25519Sha256, &other, flags);
        let testing = keys::record_value(
            Algorithm::Ed25519Sha256,
            &pk,
            RecordFlags {
                testing: true,
                ..flags
            },
        );
        let k = key(KeyState::Active, Algorithm::Ed25519Sha256);
        let rsa_key = key(KeyState::Active, Algorithm::RsaSha256);
        let dns_error = Err(LookupError {
            name: "sel._domainkey.example.com".into(),
            kind: LookupErrorKind::Timeout,
        });
        /// Key, answer, private key -> expected status and severity.
        type Case<'a> = (
            &'a Key,
            Result<TxtAnswer, LookupError>,
            PrivateState,
            Status,
            Severity,
        );
        let cases: Vec<Case> = vec![
            (
                &k,
                answer(&[&[&good]]),
                Ok(pk.clone()),
                Status::Ok,
                Severity::Ok,
            ),
            (
                &k,
                Ok(TxtAnswer::NxDomain),
                Ok(pk.clone()),
                Status::Missing,
                Severity::Error,
            ),
            (
                &k,
                Ok(TxtAnswer::NoData),
                Ok(pk.clone()),
                Status::Missing,
                Severity::Error,
            ),
            (
                &k,
                answer(&[&[&good[..20]], &[&good[20..]]]),
                Ok(pk.clone()),
                Status::SeveralRecords,
                Severity::Error,
            ),
            (
                &k,
                answer(&[&["v=DKIM1; k=ed25519; p=!!"]]),
                Ok(pk.clone()),
                Status::Syntax,
                Severity::Error,
            ),
            (
                &k,
                answer(&[&[&wrong]]),
                Ok(pk.clone()),
                Status::Mismatch,
                Severity::Error,
            ),
            (
                &k,
                answer(&[&["v=DKIM1; k=ed25519; p="]]),
                Ok(pk.clone()),
                Status::Revoked,
                Severity::Error,
            ),
            (
                &k,
                answer(&[&[&testing]]),
                Ok(pk.clone()),
                Status::Testing,
                Severity::Warning,
            ),
            (
                &k,
                answer(&[&[&good]]),
                Err("no such file".into()),
                Status::NoPrivateKey,
                Severity::Error,
            ),
            (
                &rsa_key,
                answer(&[&[&good]]),
                Err("x".into()),
                Status::AlgorithmMismatch,
                Severity::Error,
            ),
            (
                &k,
                dns_error,
                Ok(pk.clone()),
                Status::DnsError,
                Severity::Error,
            ),
            (
                &k,
                answer(&[&[&format!(
                    "v=DKIM1; h=sha1; k=ed25519; p={}",
                    pk.record_base64()
                )]]),
                Ok(pk.clone()),
                Status::Unusable,
                Severity::Error,
            ),
        ];
        for (i, (k, ans, private, status, severity)) in cases.into_iter().enumerate() {
            let f = judge(k, ans, private);
            assert_eq!(
                (f.status, f.severity),
                (status, severity),
                "case {i}: {}",
                f.message
            );
        }
    }

    #[test]
    fn several_records_says_what_the_archwiki_page_says() {
        let pk = ed();
        let good = keys::record_value(Algorithm::Ed25519Sha256, &pk, RecordFlags::default());
        let k = key(KeyState::Active, Algorithm::Ed25519Sha256);
        let f = judge(
            &k,
            answer(&[&[&good[..10]], &[&good[10..30]], &[&good[30..]]]),
            Ok(pk),
        );
        assert_eq!(
            f.message,
            "3 TXT records at sel._domainkey.example.com; receivers join them in any order and \
             fail with 'bad format' (the ArchWiki page's case)"
        );
        let fix = f.fix.unwrap();
        assert!(
            fix.contains(&keys::zone_form("sel._domainkey.example.com", &good)),
            "{fix}"
        );
        assert_eq!(f.detail.len(), 3);
    }

    #[test]
    fn testing_is_fine_when_configured() {
        let pk = ed();
        let value = keys::record_value(
            Algorithm::Ed25519Sha256,
            &pk,
            RecordFlags {
                testing: true,
                ..RecordFlags::default()
            },
        );
        let k = key(KeyState::Active, Algorithm::Ed25519Sha256);
        let f = judge_selector(&domain(true), &k, &answer(&[&[&value]]), &Ok(pk));
        assert_eq!(f.status, Status::Ok, "{}", f.message);
        assert_eq!(f.message, "ed25519, testing");
    }

    #[test]
    fn retired_keys_want_an_empty_p() {
        let pk = ed();
        let good = keys::record_value(Algorithm::Ed25519Sha256, &pk, RecordFlags::default());
        let k = key(KeyState::Retired, Algorithm::Ed25519Sha256);
        let none: PrivateState = Err("archived".into());
        let f = judge(&k, answer(&[&["v=DKIM1; k=ed25519; p="]]), none.clone());
        assert_eq!(f.status, Status::Ok);
        let f = judge(&k, Ok(TxtAnswer::NxDomain), none.clone());
        assert_eq!(f.status, Status::Ok);
        let f = judge(&k, answer(&[&[&good]]), none);
        assert_eq!(
            (f.status, f.severity),
            (Status::NotRevoked, Severity::Warning)
        );
        let revoked = keys::zone_form("sel._domainkey.example.com", "v=DKIM1; k=ed25519; p=");
        assert!(f.fix.unwrap().contains(&revoked));
    }

    #[test]
    fn weak_published_rsa_keys() {
        // A 1024-bit key that the private key matches: a warning.
        use base64::Engine as _;
        let spki = base64::engine::general_purpose::STANDARD
            .decode(RSA_1024_SPKI)
            .unwrap();
        let pk = PublicKey::rsa_from_der(&spki).unwrap();
        let value = keys::record_value(Algorithm::RsaSha256, &pk, RecordFlags::default());
        let k = key(KeyState::Active, Algorithm::RsaSha256);
        let f = judge(&k, answer(&[&keys::character_strings(&value)]), Ok(pk));
        assert_eq!(
            (f.status, f.severity),
            (Status::WeakKey, Severity::Warning),
            "{}",
            f.message
        );
        assert_eq!(f.bits, Some(1024));
    }

    #[test]
    fn pending_and_retiring_keys_are_checked_too() {
        let pk = ed();
        let other = ed();
        let wrong = keys::record_value(Algorithm::Ed25519Sha256, &other, RecordFlags::default());
        for state in [KeyState::Pending, KeyState::Retiring] {
            let k = key(state, Algorithm::Ed25519Sha256);
            assert_eq!(
                judge(&k, answer(&[&[&wrong]]), Ok(pk.clone())).status,
                Status::Mismatch
            );
            assert_eq!(
                judge(&k, Ok(TxtAnswer::NxDomain), Ok(pk.clone())).status,
                Status::Missing
            );
        }
    }

    #[test]
    fn an_empty_record_list_is_missing() {
        let pk = ed();
        let k = key(KeyState::Active, Algorithm::Ed25519Sha256);
        let f = judge(&k, Ok(TxtAnswer::Records(Vec::new())), Ok(pk));
        assert_eq!(f.status, Status::Missing);
    }

    #[test]
    fn hostile_records_never_panic() {
        let pk = ed();
        let k = key(KeyState::Active, Algorithm::Ed25519Sha256);
        let inputs: &[&[u8]] = &[
            b"",
            b";;;;",
            b"v=DKIM1; k=rsa; p=\xff\xfe",
            b"\x00\x01\x02=",
            b"p",
            b"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
            &[b'a'; 4000],
        ];
        for input in inputs {
            let ans = Ok(TxtAnswer::Records(vec![TxtRecord {
                strings: vec![input.to_vec()],
            }]));
            let f = judge(&k, ans, Ok(pk.clone()));
            assert_ne!(f.status, Status::Ok);
            assert!(
                f.message.chars().all(|c| !c.is_control()),
                "{:?}",
                f.message
            );
        }
    }

    #[test]
    fn spf_and_dmarc() {
        let spf = answer(&[&["google-site-verification=abc"], &["v=spf1 mx -all"]]);
        let dmarc = answer(&[&["v=DMARC1; p=Reject; rua=mailto:d@example.com"]]);
        let d = judge_domain("example.com", &spf, &dmarc);
        assert_eq!(d.spf.status, PolicyStatus::Present);
        assert_eq!(d.spf.record.as_deref(), Some("v=spf1 mx -all"));
        assert_eq!(d.dmarc.status, PolicyStatus::Present);
        assert_eq!(d.dmarc.policy.as_deref(), Some("reject"));

        let none = judge_domain(
            "example.com",
            &Ok(TxtAnswer::NxDomain),
            &answer(&[&["v=spf1x"]]),
        );
        assert_eq!(none.spf.status, PolicyStatus::Missing);
        assert_eq!(none.dmarc.status, PolicyStatus::Missing);
        let two = judge_domain(
            "example.com",
            &answer(&[&["v=spf1 a"], &["v=spf1 mx"]]),
            &Ok(TxtAnswer::NoData),
        );
        assert_eq!(two.spf.status, PolicyStatus::Several);
    }
}
