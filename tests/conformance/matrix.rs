//! The signing matrix: every input of `tests/vectors/signing/` (see its
//! `INDEX.tsv`) and a 10 MiB message made here, signed in the four
//! canonicalizations by RSA-2048 and Ed25519 keys from `dkimctl keys
//! generate` (one signature of each per message), once by `dkimctl sign`
//! and once by `dkimctl serve` driven by the project's milter client
//! (`tests/support/client.rs`); then every signature is judged by dkimpy,
//! Mail::DKIM, OpenDKIM (through miltertest) and mail-auth, all asking
//! knotd on loopback for the keys (see [`super::judges`]).
//!
//! Every verdict must be `pass`, except where [`LIMITS`] names a genuine
//! limitation of a verifier (or of the harness in front of it) with the
//! verdict it gives instead; a listed limitation that does not show is a
//! failure too, so the list stays exact. The summary is printed and written
//! to `target/conformance/matrix.txt`.
//!
//! Messages reach the verifiers in wire form, as the MTA transmits them:
//! bare LF turned into CRLF, a final CRLF added where missing. The milter
//! path starts from that form too (an MTA has it before it talks to a
//! milter); `dkimctl sign` gets the input file as it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::judges::{self, Judgement, OpenDkim, Verdict};
use super::{ZoneServer, report, vectors};
use crate::support::client::{LOCAL, one_message, runtime};
use crate::support::configs::{Keyed, config};
use crate::support::knot::zone_text;
use crate::support::message::{canon_of, crlf, tags};
use crate::support::proc::run_bounded;
use crate::support::serve::Serve;
use crate::support::{TempRoot, bin};
use dkimctl::milter::client::apply_replies;

const CANONS: [&str; 4] = [
    "simple/simple",
    "simple/relaxed",
    "relaxed/simple",
    "relaxed/relaxed",
];

/// The two keys of `tests/fixtures/configs/sign-dual-example-com.toml`.
const SELECTORS: [(&str, &str); 2] = [("rsa1", "RSA-2048"), ("ed1", "Ed25519")];

const VERIFIERS: [&str; 4] = ["dkimpy", "Mail::DKIM", "OpenDKIM", "mail-auth"];

/// The name of the input made at run time.
const BIG: &str = "10mib-body (generated)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Signer {
    /// `dkimctl sign FILE`.
    OneShot,
    /// `dkimctl serve`, through the milter client.
    Milter,
}

impl Signer {
    fn name(self) -> &'static str {
        match self {
            Signer::OneShot => "dkimctl sign",
            Signer::Milter => "dkimctl serve",
        }
    }
}

/// One signature of the matrix, as a limitation sees it.
struct Sig<'a> {
    input: &'a str,
    canon: &'a str,
    selector: &'a str,
}

impl Sig<'_> {
    fn simple_header(&self) -> bool {
        self.canon.starts_with("simple/")
    }
    fn relaxed_body(&self) -> bool {
        self.canon.ends_with("/relaxed")
    }
    fn input_is(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.input.starts_with(n))
    }
}

/// A verifier's genuine limitation: where it does not say `pass` to a
/// correct signature, and what it says instead (`says`: its result word;
/// "not given": the message cannot be handed to it at all).
struct Limit {
    verifier: &'static str,
    applies: fn(&Sig) -> bool,
    says: &'static str,
    why: &'static str,
}

/// Inputs with whitespace between a field name and its colon.
const WSP_BEFORE_COLON: &[&str] = &["27-", "44-"];
/// Inputs with a bare CR in the body.
const BARE_CR: &[&str] = &["06-", "07-", "08-"];
/// Inputs whose body ends in whitespace-only lines (or is one).
const TRAILING_WSP_LINES: &[&str] = &["04-", "14-", "37-", "39-"];
/// Inputs with signed fields whose value does not start with a SP.
const NO_SP_AFTER_COLON: &[&str] = &["28-", "43-"];

const LIMITS: &[Limit] = &[
    Limit {
        verifier: "Mail::DKIM",
        applies: |s| s.selector == "ed1",
        says: "invalid",
        why: "Debian 12's Mail::DKIM 1.20230212 has no Ed25519 (\"unsupported algorithm \
              ed25519-sha256\"; RFC 8463 support came in 1.20230630)",
    },
    Limit {
        verifier: "dkimpy",
        applies: |s| s.input_is(WSP_BEFORE_COLON),
        says: "error",
        why: "dkimpy 1.1.4 refuses the whole message when whitespace separates a field name \
              from its colon (\"Unexpected characters in RFC822 header\"), syntax RFC 5322 4.5 \
              says a receiver must accept",
    },
    Limit {
        verifier: "mail-auth",
        applies: |s| s.input_is(WSP_BEFORE_COLON),
        says: "fail",
        why: "mail-auth 0.13 compares h= names with the field name including the whitespace \
              before the colon (\"To \" is not \"To\"), so it hashes the field as absent \
              (issue 12, defect 3)",
    },
    Limit {
        verifier: "mail-auth",
        applies: |s| s.input_is(BARE_CR),
        says: "neutral",
        why: "mail-auth 0.13 drops a bare CR from the body before hashing, in both body \
              canonicalizations: body hash mismatch (issue 12, defect 2)",
    },
    Limit {
        verifier: "mail-auth",
        applies: |s| s.input_is(TRAILING_WSP_LINES) && s.relaxed_body(),
        says: "neutral",
        why: "mail-auth 0.13's relaxed body canonicalization keeps whitespace-only lines at the \
              end of the body, which RFC 6376 3.4.4 ignores: body hash mismatch (issue 12, \
              defect 1)",
    },
    Limit {
        verifier: "OpenDKIM",
        applies: |s| s.input_is(&["06-"]) && s.relaxed_body(),
        says: "fail",
        why: "OpenDKIM 2.11's relaxed body canonicalization drops a bare CR inside a line \
              (signing `ab` and sending `a<CR>b` passes there); RFC 6376 3.4.4 changes only \
              WSP, and dkimpy and Mail::DKIM hash the CR",
    },
    Limit {
        verifier: "OpenDKIM",
        applies: |s| s.input_is(&["44-"]),
        says: "not given",
        why: "OpenDKIM 2.11 answers accept at end of header and adds no Authentication-Results \
              when a TAB comes before a field's colon (a SP, input 27, is fine)",
    },
    Limit {
        verifier: "OpenDKIM",
        applies: |s| s.input_is(NO_SP_AFTER_COLON) && s.simple_header(),
        says: "fail",
        why: "harness, not OpenDKIM: miltertest 1.6.0 puts a SP after the colon of every field \
              it sends, so a field without one (`Subject:x`, `From:<TAB>...`) cannot reach \
              OpenDKIM byte for byte; simple header canonicalization then fails, relaxed passes",
    },
    Limit {
        verifier: "OpenDKIM",
        applies: |s| s.input_is(&["32-"]),
        says: "not given",
        why: "harness, not OpenDKIM: miltertest 1.6.0 copies each field into a 1 KiB buffer, \
              and this References field is 1.6 KB",
    },
];

/// A signed message of the matrix.
struct Signed {
    input: usize,
    canon: usize,
    signer: Signer,
    file: PathBuf,
}

/// The inputs: the files of tests/vectors/signing, then [`BIG`].
fn inputs() -> Vec<(String, Vec<u8>)> {
    let dir = vectors("signing");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/vectors/signing")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    assert!(names.len() >= 40, "only {} signing inputs", names.len());
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    let mut out: Vec<(String, Vec<u8>)> = names
        .into_iter()
        .map(|n| {
            assert!(
                index.lines().any(|l| l.starts_with(&format!("{n}\t"))),
                "{n} is not described in tests/vectors/signing/INDEX.tsv"
            );
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    out.push((BIG.to_string(), big_message()));
    out
}

/// A 10 MiB message: text lines of every length up to 998 octets, 8-bit
/// octets, runs of SP and HTAB inside and at the end of lines, empty
/// lines; the same bytes on every run.
fn big_message() -> Vec<u8> {
    let mut m = b"From: Jose Tester <jose@example.com>\r\nTo: someone@example.net\r\n\
        Subject: ten mebibytes\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n\
        Message-ID: <big@example.com>\r\nMIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"
        .to_vec();
    let words: [&[u8]; 8] = [
        b"lorem",
        b"ipsum",
        b"cr\xe8me",
        b"br\xfbl\xe9e",
        b"\t",
        b"  ",
        b"dolor",
        b"\xa9",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let target = m.len() + (10 << 20);
    while m.len() < target {
        let len = match next(20) {
            0 => 0,
            1 => 998,
            _ => next(120) as usize,
        };
        let start = m.len();
        while m.len() - start < len {
            let w = words[next(words.len() as u64) as usize];
            let room = len - (m.len() - start);
            m.extend_from_slice(&w[..w.len().min(room)]);
            if m.len() - start < len {
                m.push(b' ');
            }
        }
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"end\r\n");
    m
}

/// The message as the MTA transmits it: bare LF as CRLF, a final CRLF.
fn wire(message: &[u8]) -> Vec<u8> {
    let mut w = crlf(message);
    if !w.is_empty() && !w.ends_with(b"\n") {
        w.extend_from_slice(b"\r\n");
    }
    w
}

/// A root with both keys, and a configuration file per canonicalization
/// for `dkimctl sign --config`.
fn keyed_root() -> (TempRoot, Vec<PathBuf>) {
    let base = config("sign-dual-example-com");
    let keyed = Keyed::new(&base);
    // RSA-2048: a 294-byte SubjectPublicKeyInfo, 392 characters of base64.
    let rsa = keyed
        .records
        .iter()
        .find(|r| r.name.starts_with("rsa1."))
        .expect("the rsa1 record");
    let p = rsa.value.rsplit("p=").next().unwrap_or_default();
    assert_eq!(p.len(), 392, "not an RSA-2048 key: {}", rsa.value);
    let configs = CANONS
        .iter()
        .map(|c| {
            let name = format!("etc/dkimctl/{}.toml", c.replace('/', "-"));
            keyed.root.write(
                &name,
                &base.clone().set("defaults.canonicalization", *c).text(),
            );
            keyed.root.join(&name)
        })
        .collect();
    (keyed.root, configs)
}

/// knotd serving example.com with the records `dkimctl dns records`
/// prints for the root.
fn serve_zone(root: &TempRoot) -> Option<(ZoneServer, tempfile::TempDir)> {
    let zones = tempfile::tempdir().unwrap();
    let records = zone_text(&crate::support::knot::published(root));
    std::fs::write(
        zones.path().join("example.com.zone"),
        format!(
            "$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns hostmaster 1 60 60 600 60\n\
             @ IN NS ns\nns IN A 127.0.0.1\n{records}"
        ),
    )
    .unwrap();
    let conf_in = std::fs::read_to_string(vectors("peers/knot.conf.in"))
        .unwrap()
        .replace(
            "@ZONES@\n",
            "  - domain: example.com\n    file: \"example.com.zone\"\n",
        );
    let server = ZoneServer::start(&conf_in, zones.path(), "example.com")?;
    Some((server, zones))
}

/// `dkimctl sign` of every input in every canonicalization, two at a time.
fn sign_one_shot(
    root: &TempRoot,
    configs: &[PathBuf],
    inputs: &[(String, Vec<u8>)],
    work: &Path,
) -> Vec<Signed> {
    let big = work.join("big.eml");
    std::fs::write(&big, &inputs.last().expect("inputs").1).unwrap();
    let jobs: Vec<(usize, usize)> = (0..CANONS.len())
        .flat_map(|c| (0..inputs.len()).map(move |i| (c, i)))
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(2))
            .map(|part| {
                let big = &big;
                s.spawn(move || {
                    part.iter()
                        .map(|&(c, i)| {
                            let (name, _) = &inputs[i];
                            let file = if name == BIG {
                                big.clone()
                            } else {
                                vectors("signing").join(name)
                            };
                            let run = run_bounded(
                                Command::new(bin())
                                    .args(["--root", &root.root_arg(), "--config"])
                                    .arg(&configs[c])
                                    .arg("sign")
                                    .arg(&file),
                                None,
                                Duration::from_secs(120),
                            );
                            assert_eq!(
                                run.code(),
                                0,
                                "dkimctl sign {name} ({}) failed:\n{}",
                                CANONS[c],
                                run.stderr()
                            );
                            let out = work.join(format!("sign-{c}-{i}.eml"));
                            std::fs::write(&out, wire(&run.out.stdout)).unwrap();
                            Signed {
                                input: i,
                                canon: c,
                                signer: Signer::OneShot,
                                file: out,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect()
    })
}

/// `dkimctl serve` signs every input, one canonicalization after the
/// other (the engine reads it from dkim.toml at start).
fn sign_milter(root: &TempRoot, inputs: &[(String, Vec<u8>)], work: &Path) -> Vec<Signed> {
    let rt = runtime();
    let mut out = Vec::new();
    for (c, canon) in CANONS.iter().enumerate() {
        config("sign-dual-example-com")
            .set("defaults.canonicalization", *canon)
            .write_to(root);
        let serve = Serve::start_unix(root);
        for (i, (name, bytes)) in inputs.iter().enumerate() {
            let (headers, body) = judges::split(&wire(bytes));
            let fields: Vec<(&[u8], &[u8])> = headers
                .iter()
                .map(|(n, v)| (n.as_slice(), v.as_slice()))
                .collect();
            let (replies, leading_space) =
                rt.block_on(one_message(serve.addr(), None, LOCAL, &fields, &body));
            let signed = apply_replies(&fields, &body, &replies, leading_space);
            let sigs = super::signature_fields(&signed);
            assert_eq!(
                sigs,
                2,
                "dkimctl serve ({canon}) made {sigs} signatures for {name}: {replies:?}\n--- log\n{}",
                serve.log_text()
            );
            let file = work.join(format!("serve-{c}-{i}.eml"));
            std::fs::write(&file, signed).unwrap();
            out.push(Signed {
                input: i,
                canon: c,
                signer: Signer::Milter,
                file,
            });
        }
        serve.stop();
    }
    out
}

/// Counts per verifier.
#[derive(Default, Clone)]
struct Count {
    judged: usize,
    pass: usize,
    limited: usize,
}

#[test]
fn every_signature_verifies_at_four_verifiers() {
    let started = Instant::now();
    let inputs = inputs();
    let (root, configs) = keyed_root();
    let Some((zone, _zones)) = serve_zone(&root) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (mut signed, milter) = std::thread::scope(|s| {
        let one_shot = s.spawn(|| sign_one_shot(&root, &configs, &inputs, work.path()));
        let milter = s.spawn(|| sign_milter(&root, &inputs, work.path()));
        (
            one_shot.join().expect("one-shot signing"),
            milter.join().expect("milter signing"),
        )
    });
    signed.extend(milter);
    let signing_time = started.elapsed();
    // Each message carries one signature per key, in the canonicalization
    // asked for.
    for m in &signed {
        let sigs: Vec<_> = judges::fields(&std::fs::read(&m.file).unwrap())
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"DKIM-Signature"))
            .map(|(_, v)| tags(&String::from_utf8_lossy(v)))
            .collect();
        let mut got: Vec<(String, String, String)> = sigs
            .iter()
            .map(|t| (t["s"].clone(), t["a"].clone(), canon_of(t)))
            .collect();
        got.sort();
        let canon = CANONS[m.canon].to_string();
        assert_eq!(
            got,
            [
                ("ed1".into(), "ed25519-sha256".into(), canon.clone()),
                ("rsa1".into(), "rsa-sha256".into(), canon),
            ],
            "{}",
            m.file.display()
        );
    }
    let files: Vec<PathBuf> = signed.iter().map(|s| s.file.clone()).collect();
    let port = zone.port();
    let mut by: BTreeMap<&str, Vec<Judgement>> = BTreeMap::new();
    let mut times: BTreeMap<&str, Duration> = BTreeMap::new();
    let files = &files;
    std::thread::scope(|s| {
        let handles: Vec<_> = VERIFIERS
            .iter()
            .map(|&who| {
                s.spawn(move || {
                    let t = Instant::now();
                    let verdicts = match who {
                        "dkimpy" => judges::dkimpy(port, files),
                        "Mail::DKIM" => judges::mail_dkim(port, files),
                        "OpenDKIM" => OpenDkim::start(port).map(|od| od.judge(files)),
                        _ => Some(judges::mail_auth(port, files)),
                    };
                    (who, verdicts, t.elapsed())
                })
            })
            .collect();
        for h in handles {
            let (who, verdicts, t) = h.join().expect("verifier thread");
            times.insert(who, t);
            if let Some(v) = verdicts {
                by.insert(who, v);
            }
        }
    });
    let mut counts: BTreeMap<&str, Count> = BTreeMap::new();
    let mut limit_hits = vec![0usize; LIMITS.len()];
    let mut failures = Vec::new();
    for who in VERIFIERS {
        let Some(judgements) = by.get(who) else {
            continue;
        };
        let count = counts.entry(who).or_default();
        for (m, judgement) in signed.iter().zip(judgements) {
            let (name, _) = &inputs[m.input];
            let what = format!(
                "{name} {} {} ({})",
                CANONS[m.canon],
                m.signer.name(),
                m.file.display()
            );
            for (selector, _) in SELECTORS {
                count.judged += 1;
                let sig = Sig {
                    input: name,
                    canon: CANONS[m.canon],
                    selector,
                };
                let limit = LIMITS
                    .iter()
                    .position(|l| l.verifier == who && (l.applies)(&sig));
                let said = match judgement {
                    Err(why) => format!("not given ({why})"),
                    Ok(verdicts) => {
                        let mine: Vec<&Verdict> = verdicts
                            .iter()
                            .filter(|v| v.selector == selector || v.selector == "*")
                            .collect();
                        match mine.as_slice() {
                            [v] => format!("{} ({})", v.word, v.detail),
                            _ => format!("{} verdicts for s={selector}: {verdicts:?}", mine.len()),
                        }
                    }
                };
                let word = said.split(" (").next().unwrap_or_default();
                match limit {
                    None if word == "pass" => count.pass += 1,
                    None => failures.push(format!("{who}: s={selector} {what}: {said}")),
                    Some(l) if word == LIMITS[l].says => {
                        count.limited += 1;
                        limit_hits[l] += 1;
                    }
                    Some(l) => failures.push(format!(
                        "{who}: s={selector} {what}: {said}, where the listed limitation \
                         predicts {} ({})",
                        LIMITS[l].says, LIMITS[l].why
                    )),
                }
            }
        }
    }
    for (l, hits) in LIMITS.iter().zip(&limit_hits) {
        if *hits == 0 && by.contains_key(l.verifier) {
            failures.push(format!(
                "{}: listed limitation never seen (remove it): {}",
                l.verifier, l.why
            ));
        }
    }
    let summary = summary(
        &inputs,
        signed.len(),
        &counts,
        &limit_hits,
        signing_time,
        &times,
    );
    println!("{summary}");
    report("matrix.txt", &summary);
    assert!(
        failures.is_empty(),
        "{} unexpected verdict(s):\n{}\n{summary}",
        failures.len(),
        failures.join("\n")
    );
}

fn summary(
    inputs: &[(String, Vec<u8>)],
    messages: usize,
    counts: &BTreeMap<&str, Count>,
    limit_hits: &[usize],
    signing: Duration,
    times: &BTreeMap<&str, Duration>,
) -> String {
    let algorithms: Vec<&str> = SELECTORS.iter().map(|(_, a)| *a).collect();
    let mut t = format!(
        "signing matrix: {} inputs x {} canonicalizations x {} algorithms ({}) \
         x 2 signers (dkimctl sign, dkimctl serve) = {messages} messages, {} signatures; \
         signed in {:.1} s\n\
         verifier      judged    pass  listed limitation  time\n",
        inputs.len(),
        CANONS.len(),
        SELECTORS.len(),
        algorithms.join(", "),
        messages * SELECTORS.len(),
        signing.as_secs_f64()
    );
    for who in VERIFIERS {
        let c = counts.get(who).cloned().unwrap_or_default();
        let time = times.get(who).map_or(0.0, Duration::as_secs_f64);
        let _ = writeln!(
            t,
            "{who:<12} {:>7} {:>7} {:>18} {:>5.1} s{}",
            c.judged,
            c.pass,
            c.limited,
            time,
            if counts.contains_key(who) {
                ""
            } else {
                "  (not installed)"
            }
        );
    }
    for (l, hits) in LIMITS.iter().zip(limit_hits) {
        let _ = writeln!(t, "  {}: {hits} x {}: {}", l.verifier, l.says, l.why);
    }
    t
}
