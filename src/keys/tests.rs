//! Cross-module tests: generate → PEM → load → sign → verify, OpenSSL
//! interop, and "no key bytes in any output".

use std::path::{Path, PathBuf};
use std::process::Command;

use mail_auth::common::crypto::{DkimKey, HashContext, HashImpl, Sha256, SigningKey};
use mail_auth::common::headers::Writer;

use super::*;
use crate::config::model::{Algorithm, RecordFlags};

const OPENSSL: &str = "/usr/bin/openssl";

/// True when OpenSSL can be used. Without it, the test fails on CI
/// (`CI=true`) and is skipped with a note elsewhere.
fn have_openssl(test: &str) -> bool {
    if Path::new(OPENSSL).exists() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {OPENSSL} is required on CI");
    }
    eprintln!("note: {test} skipped: {OPENSSL} not found");
    false
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new(OPENSSL)
        .args(args)
        .output()
        .expect("run openssl")
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Writes a key file for a test fixture (plain std::fs: only the tests
/// write outside [`crate::apply`]).
pub(crate) fn write_test_key(path: &Path, pem: &Secret, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("key dir");
    }
    std::fs::write(path, pem.expose()).expect("write key");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod key");
}

fn write_key(dir: &Path, name: &str, pem: &Secret) -> PathBuf {
    let path = dir.join(name);
    write_test_key(&path, pem, 0o600);
    path
}

/// The base64 body lines of a PEM (what must never leak).
fn body_lines(pem: &Secret) -> Vec<String> {
    pem.expose_str()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_string)
        .collect()
}

fn assert_no_leak(text: &str, pem: &Secret) {
    assert!(
        !text.contains("BEGIN PRIVATE KEY"),
        "leak of the PEM header: {text}"
    );
    for line in body_lines(pem) {
        // Any 16-character run of the body would be a leak.
        for chunk in line.as_bytes().chunks(16).filter(|c| c.len() == 16) {
            let chunk = std::str::from_utf8(chunk).unwrap();
            assert!(!text.contains(chunk), "leak of key bytes in: {text}");
        }
    }
}

/// Signs with the mail-auth key and checks the signature with the public
/// key through aws-lc (mail-auth's own verifier needs a resolver).
fn sign_and_verify(signing: &DkimKey, public: &PublicKey) {
    let message: &[u8] = b"From: a@example.com\r\nSubject: hi\r\n";
    let sig = signing.sign(message).expect("sign");
    // mail-auth's Ed25519 signs SHA-256(data) (RFC 8463); RSA signs data
    // with RSASSA-PKCS1-v1_5/SHA-256.
    let signed_input = match signing {
        DkimKey::Rsa(_) => message.to_vec(),
        DkimKey::Ed25519(_) => {
            let mut h = Sha256::hasher();
            h.write(message);
            h.complete().as_ref().to_vec()
        }
    };
    assert!(public.verify(&signed_input, &sig), "signature must verify");
    assert!(
        !public.verify(b"other bytes", &sig),
        "wrong message must fail"
    );
}

#[test]
fn rsa_2048_round_trip() {
    let pair = generate(Algorithm::RsaSha256, 2048).expect("generate");
    assert_eq!(pair.algorithm, Algorithm::RsaSha256);
    assert_eq!(pair.bits, 2048);
    assert_eq!(pair.public.bits(), 2048);
    let text = pair.private_pem.expose_str().unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(text.lines().all(|l| l.len() <= 64));

    let loaded = parse_private_key(pair.private_pem.expose(), Path::new("mem.pem")).unwrap();
    assert_eq!(loaded.algorithm, Algorithm::RsaSha256);
    assert_eq!(loaded.bits, 2048);
    assert_eq!(loaded.format, PrivateKeyFormat::Pkcs8);
    assert_eq!(loaded.public, pair.public);
    sign_and_verify(loaded.signing_key().unwrap(), &pair.public);
    sign_and_verify(&loaded.new_signing_key().unwrap(), &pair.public);

    // p= is the SubjectPublicKeyInfo: the usual MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A head.
    assert!(
        pair.public
            .record_base64()
            .starts_with("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")
    );
    assert_eq!(rsa_bits_of_spki(pair.public.record_bytes()), Some(2048));
    let value = record_value(Algorithm::RsaSha256, &pair.public, RecordFlags::default());
    let parsed = parse_record(value.as_bytes()).unwrap();
    assert!(public_key_matches(&parsed, &pair.public));
    assert_eq!(parsed.rsa_bits(), Some(2048));
    // 392 bytes of p=: one TXT record of several character-strings.
    let strings = character_strings(&value);
    assert_eq!(strings[0], "v=DKIM1; k=rsa; ");
    assert!(strings.len() >= 3);
    assert!(strings.iter().all(|s| s.len() <= MAX_CHARACTER_STRING));
    assert_eq!(strings.concat(), value);
    let zone = zone_form(&record_name("sel", "example.com"), &value);
    assert!(
        zone.starts_with("sel._domainkey.example.com. IN TXT ( \"v=DKIM1; k=rsa; \"\n\t\"p=MIIB")
    );
    assert_eq!(zone.matches(" IN TXT ").count(), 1);
    for quoted in zone.split('"').skip(1).step_by(2) {
        assert!(quoted.len() <= MAX_CHARACTER_STRING);
    }
    sign_and_verify(&loaded.into_signing_key().unwrap(), &pair.public);
}

#[test]
fn ed25519_round_trip() {
    let pair = generate(Algorithm::Ed25519Sha256, 0).expect("generate");
    assert_eq!(pair.bits, 256);
    // PKCS#8 v1: the 48-byte DER is the fixed prefix + seed, which is
    // always "MC4CAQAwBQYDK2VwBCIEI" in base64.
    let text = pair.private_pem.expose_str().unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"));
    assert_eq!(text.lines().count(), 3);

    let loaded = parse_private_key(pair.private_pem.expose(), Path::new("mem.pem")).unwrap();
    assert_eq!(loaded.algorithm, Algorithm::Ed25519Sha256);
    assert_eq!(loaded.bits, 256);
    assert_eq!(loaded.public, pair.public);
    sign_and_verify(loaded.signing_key().unwrap(), &pair.public);

    // p= is the raw 32-byte key (RFC 8463), 44 base64 characters.
    assert_eq!(pair.public.record_bytes().len(), 32);
    assert_eq!(pair.public.record_base64().len(), 44);
    let value = record_value(
        Algorithm::Ed25519Sha256,
        &pair.public,
        RecordFlags::default(),
    );
    let parsed = parse_record(value.as_bytes()).unwrap();
    assert_eq!(parsed.key_type, Algorithm::Ed25519Sha256);
    assert!(public_key_matches(&parsed, &pair.public));
    assert_eq!(parsed.rsa_bits(), None);
}

#[test]
fn other_rsa_sizes() {
    assert_eq!(
        generate_rsa(1024).unwrap_err(),
        GenerateError::UnsupportedRsaBits(1024)
    );
    assert_eq!(
        generate_rsa(2047).unwrap_err(),
        GenerateError::UnsupportedRsaBits(2047)
    );
    assert!(generate_rsa(8192).is_err());
    let msg = GenerateError::UnsupportedRsaBits(1024).to_string();
    assert!(msg.contains("1024") && msg.contains("2048"), "{msg}");
    let pair = generate_rsa(3072).unwrap();
    assert_eq!(pair.bits, 3072);
    let loaded = parse_private_key(pair.private_pem.expose(), Path::new("k")).unwrap();
    assert_eq!(loaded.public, pair.public);
    let key = crate::config::model::Key {
        selector: "s".into(),
        algorithm: Algorithm::RsaSha256,
        path: "/k".into(),
        rsa_bits: 4096,
        state: crate::config::model::KeyState::Pending,
        created: None,
        retire_after: None,
        owner_domain: "example.com".into(),
    };
    let pair = generate(key.algorithm, key.rsa_bits).unwrap();
    assert_eq!(pair.bits, 4096);
    let value = record_value(Algorithm::RsaSha256, &pair.public, RecordFlags::default());
    let strings = character_strings(&value);
    assert!(strings.iter().all(|s| s.len() <= MAX_CHARACTER_STRING));
    assert_eq!(strings.concat(), value);
    assert!(strings.len() >= 4, "{}", strings.len());
}

#[test]
fn openssl_reads_generated_keys() {
    if !have_openssl("openssl_reads_generated_keys") {
        return;
    }
    let dir = temp_dir();
    let rsa = generate_rsa(2048).unwrap();
    let ed = generate_ed25519().unwrap();
    let rsa_path = write_key(dir.path(), "rsa.private", &rsa.private_pem);
    let ed_path = write_key(dir.path(), "ed.private", &ed.private_pem);

    for path in [&rsa_path, &ed_path] {
        let out = openssl(&["pkey", "-in", path.to_str().unwrap(), "-noout"]);
        assert!(
            out.status.success(),
            "openssl rejects {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // RSA: OpenSSL's SPKI equals ours byte for byte.
    let out = openssl(&[
        "pkey",
        "-in",
        rsa_path.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    assert!(out.status.success());
    assert_eq!(out.stdout, rsa.public.record_bytes());
    // Ed25519: the last 32 bytes of OpenSSL's SPKI are our raw key.
    let out = openssl(&[
        "pkey",
        "-in",
        ed_path.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 44);
    assert_eq!(&out.stdout[12..], ed.public.record_bytes());

    // And keys OpenSSL generates load, with the same public key.
    let gen_path = dir.path().join("openssl-ed.pem");
    let out = openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        gen_path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let loaded = load_private_key(&gen_path).unwrap();
    let out = openssl(&[
        "pkey",
        "-in",
        gen_path.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    assert_eq!(&out.stdout[12..], loaded.public.record_bytes());
}

#[test]
fn loads_pkcs1_rsa_from_openssl() {
    if !have_openssl("loads_pkcs1_rsa_from_openssl") {
        return;
    }
    let dir = temp_dir();
    let path = dir.path().join("legacy.private");
    let out = openssl(&[
        "genrsa",
        "-traditional",
        "-out",
        path.to_str().unwrap(),
        "2048",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("-----BEGIN RSA PRIVATE KEY-----"));

    let loaded = load_private_key(&path).unwrap();
    assert_eq!(loaded.format, PrivateKeyFormat::Pkcs1);
    assert_eq!(loaded.algorithm, Algorithm::RsaSha256);
    assert_eq!(loaded.bits, 2048);
    let out = openssl(&[
        "rsa",
        "-in",
        path.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    assert!(out.status.success());
    assert_eq!(out.stdout, loaded.public.record_bytes());
    sign_and_verify(loaded.signing_key().unwrap(), &loaded.public);
}

#[test]
fn small_rsa_key_loads_but_cannot_sign() {
    if !have_openssl("small_rsa_key_loads_but_cannot_sign") {
        return;
    }
    let dir = temp_dir();
    let path = dir.path().join("old.private");
    let out = openssl(&[
        "genrsa",
        "-traditional",
        "-out",
        path.to_str().unwrap(),
        "1024",
    ]);
    assert!(out.status.success());
    let loaded = load_private_key(&path).unwrap();
    assert_eq!(loaded.bits, 1024);
    assert_eq!(loaded.public.bits(), 1024);
    let Err(err) = loaded.signing_key() else {
        panic!("a 1024-bit key must not sign")
    };
    let msg = err.to_string();
    assert!(msg.contains("1024") && msg.contains("old.private"), "{msg}");
    assert!(matches!(
        err.kind,
        LoadErrorKind::CannotSign { bits: 1024, .. }
    ));
    assert!(format!("{loaded:?}").contains("unusable"));

    let pkcs8 = dir.path().join("old8.private");
    let out = openssl(&[
        "pkey",
        "-in",
        path.to_str().unwrap(),
        "-out",
        pkcs8.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let again = load_private_key(&pkcs8).unwrap();
    assert_eq!(again.format, PrivateKeyFormat::Pkcs8);
    assert_eq!(again.public, loaded.public);
}

#[test]
fn load_errors_name_the_file() {
    let dir = temp_dir();
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty", b"", "not a PEM private key"),
        ("text", b"hello\n", "not a PEM private key"),
        (
            "pub",
            b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
            "PUBLIC KEY",
        ),
        (
            "ec",
            b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            "unsupported key format",
        ),
        (
            "enc",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted",
        ),
        ("cut", b"-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n", "no END line"),
        (
            "junk",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "not a PKCS#8",
        ),
        (
            "x25519",
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n",
            "X25519",
        ),
    ];
    for (name, content, expect) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let err = load_private_key(&path).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(path.to_str().unwrap()), "{msg}");
        assert!(msg.contains(expect), "{name}: {msg}");
    }
    let missing = dir.path().join("missing");
    let err = load_private_key(&missing).unwrap_err();
    assert!(err.to_string().contains("cannot read key file"));
    assert!(std::error::Error::source(&err).is_some());

    // A damaged key (one byte of the modulus changed) is rejected.
    let pair = generate_rsa(2048).unwrap();
    let block = super::pem::decode_private_key(pair.private_pem.expose()).unwrap();
    let mut der = block.der.expose().to_vec();
    der[40] ^= 0x01; // inside n
    let damaged = super::pem::encode("PRIVATE KEY", &der);
    let err = parse_private_key(damaged.expose(), Path::new("bad.key")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("bad.key: "), "{msg}");
    assert_no_leak(&msg, &pair.private_pem);
}

#[test]
fn no_key_bytes_in_output() {
    for pair in [generate_rsa(2048).unwrap(), generate_ed25519().unwrap()] {
        let debug = format!("{pair:?}");
        assert!(debug.contains("<secret>"), "{debug}");
        assert_no_leak(&debug, &pair.private_pem);
        assert_no_leak(&format!("{}", pair.private_pem), &pair.private_pem);
        let loaded = parse_private_key(pair.private_pem.expose(), Path::new("k")).unwrap();
        assert_no_leak(&format!("{loaded:?}"), &pair.private_pem);

        // Errors from the writer.
        let dir = temp_dir();
        let root = crate::host::Root::new(dir.path());
        let host = Path::new("/k");
        write_key(dir.path(), "k", &pair.private_pem);
        for (mode, replace) in [(0o644, true), (0o600, false)] {
            let r = crate::apply::keys::write_key(
                &root,
                host,
                Path::new("/"),
                &pair.private_pem,
                (None, None),
                mode,
                replace,
            );
            if let Err(err) = r {
                assert_no_leak(&err.to_string(), &pair.private_pem);
                assert_no_leak(&format!("{err:?}"), &pair.private_pem);
            }
        }

        // Errors from the loader, on truncated copies of the key.
        let text = pair.private_pem.expose();
        for cut in [10, text.len() / 2, text.len() - 30] {
            if let Err(e) = parse_private_key(&text[..cut], Path::new("k")) {
                assert_no_leak(&e.to_string(), &pair.private_pem);
                assert_no_leak(&format!("{e:?}"), &pair.private_pem);
            }
        }
    }
}

#[test]
fn loaded_keys_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LoadedKey>();
    assert_send_sync::<KeyPair>();
    assert_send_sync::<DkimKey>();
}
