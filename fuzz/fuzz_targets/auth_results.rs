//! The engine's handling of incoming header data: Authentication-Results
//! recognition, the Authentication-Results we write, From parsing, the
//! header splitter, line-end normalisation, and verification of arbitrary
//! messages (mail-auth's parser behind our glue) against a fixed resolver.
//!
//! Input: `authserv-id \0 message`. Checked beyond "never panics":
//! - the Authentication-Results we build from whatever the signatures
//!   claim (`d=`, `s=`, reasons) stays one header field: every line break
//!   is CRLF followed by a tab, so a forged `d=` cannot start a header;
//! - normalising line ends chunk by chunk equals normalising at once, for
//!   every split point tried;
//! - a value that starts with our authserv-id and `;` is recognised as
//!   claiming it (so it is removed from incoming mail).

#![no_main]

use std::sync::OnceLock;

use dkimctl::dkim::auth_results::{authentication_results, claims_authserv_id};
use dkimctl::dkim::split_message;
use dkimctl::dkim::verify::{DkimStatus, VerifyResult};
use dkimctl::dkim::{CrlfNormalizer, crlf};
use dkimctl::dns::resolver::Resolver;
use dkimctl::dns::{Fixed, LookupErrorKind};
use dkimctl::engine::session::{header_from_milter, milter_value};
use dkimctl::engine::{message_from_domain, policy};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fn runtime() -> &'static (tokio::runtime::Runtime, Arc<Resolver>) {
    static R: OnceLock<(tokio::runtime::Runtime, Arc<Resolver>)> = OnceLock::new();
    R.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let table = Fixed::new()
            .record(
                "ed1._domainkey.example.com",
                &["v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="],
            )
            .fail("tmp._domainkey.example.com", LookupErrorKind::Timeout);
        let resolver = Arc::new(Resolver::fixed(table));
        (rt, resolver)
    })
}

/// Every line break in `v` is CRLF + WSP (folding), never a new line.
fn assert_one_field(v: &[u8]) {
    for (i, &b) in v.iter().enumerate() {
        match b {
            b'\r' => assert!(
                v.get(i + 1) == Some(&b'\n') && matches!(v.get(i + 2), Some(b' ' | b'\t')),
                "bare CR or unfolded line in {:?}",
                String::from_utf8_lossy(v)
            ),
            b'\n' => assert!(
                i > 0 && v.get(i - 1) == Some(&b'\r'),
                "bare LF in {:?}",
                String::from_utf8_lossy(v)
            ),
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (id, message) = match data.iter().position(|&b| b == 0) {
        Some(n) => (&data[..n], &data[n + 1..]),
        None => (&b"mx.example.net"[..], data),
    };
    let id = String::from_utf8_lossy(id);

    // Recognition of forged headers.
    let _ = claims_authserv_id(message, &id);
    let ours = format!(" {id}; dkim=pass");
    // An id of dots only names no host (validation refuses it).
    if id.bytes().any(|b| b != b'.')
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"();\"\\".contains(&b))
    {
        assert!(
            claims_authserv_id(ours.as_bytes(), &id),
            "{ours:?} not recognised as claiming {id:?}"
        );
    }

    // Line ends: chunked equals whole.
    let whole = crlf(message);
    for split in [1usize, 2, 3, 7, 64] {
        let mut n = CrlfNormalizer::new();
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        for chunk in message.chunks(split) {
            out.extend_from_slice(n.normalize(chunk, &mut scratch));
        }
        assert_eq!(out, whole, "chunks of {split} normalise differently");
    }

    // Header handling.
    let (fields, body_at) = split_message(message);
    assert!(body_at <= message.len());
    let _ = message_from_domain(&fields);
    for f in &fields {
        if f.is("From") {
            let _ = policy::from_domain(&f.value);
        }
        let again = header_from_milter(&f.name, &f.value, true);
        let _ = milter_value(&again.value, false);
    }

    // Verification of whatever this is, and the header we would add.
    let (rt, resolver) = runtime();
    let normalized = crlf(message);
    let mut results = rt.block_on(dkimctl::dkim::verify(resolver, &normalized, 1_700_000_000));
    // Attacker-chosen text where signatures put theirs.
    let text = String::from_utf8_lossy(message).into_owned();
    results.push(VerifyResult {
        status: DkimStatus::Fail,
        domain: Some(text.clone()),
        selector: Some(text.clone()),
        algorithm: Some("rsa-sha256"),
        signature_prefix: Some(text.chars().take(8).collect()),
        reason: Some(text.clone()),
    });
    let safe_id: String = id
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != ';')
        .collect();
    let safe_id = if safe_id.is_empty() {
        "mx".to_string()
    } else {
        safe_id
    };
    let value = authentication_results(&safe_id, &results, Some(&text));
    assert_one_field(value.as_bytes());
    let value = authentication_results(&safe_id, &[], Some(&text));
    assert_one_field(value.as_bytes());
});
