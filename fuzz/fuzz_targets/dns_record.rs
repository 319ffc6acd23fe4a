//! The DNS TXT record parser (`keys::parse_record`, used by `dns check`,
//! `rotate` and the audit) and the record splitter, on arbitrary bytes.
//!
//! Checked beyond "never panics":
//! - `character_strings` pieces join back to the value, each at most 255
//!   bytes (one TXT character-string);
//! - a parsed public key, written back as a record by `record_value`,
//!   parses again to the same key (what we publish is what we read).

#![no_main]

use dkimctl::config::model::Algorithm;
use dkimctl::keys::{
    MAX_CHARACTER_STRING, PublicKey, character_strings, parse_record, public_key_matches,
    record_value, zone_form,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let pieces = character_strings(text);
        assert_eq!(pieces.concat(), text, "split pieces do not join back");
        assert!(pieces.iter().all(|p| p.len() <= MAX_CHARACTER_STRING));
        let _ = zone_form("sel._domainkey.example.com", text);
    }

    let Ok(record) = parse_record(data) else {
        return;
    };
    let _ = record.rsa_bits();
    let _ = record.allows_sha256();
    let _ = record.allows_email();
    let Some(raw) = record.public_key.as_deref() else {
        return;
    };
    let key = match record.key_type {
        Algorithm::RsaSha256 => PublicKey::rsa_from_der(raw),
        Algorithm::Ed25519Sha256 => PublicKey::ed25519_from_bytes(raw),
    };
    let Some(key) = key else {
        return;
    };
    assert!(
        public_key_matches(&record, &key),
        "a key does not match its own record"
    );
    let again = parse_record(record_value(key.algorithm(), &key, Default::default()).as_bytes())
        .expect("a record we write parses");
    assert_eq!(again.key_type, record.key_type);
    assert!(
        public_key_matches(&again, &key),
        "the rewritten record lost the key"
    );
});
