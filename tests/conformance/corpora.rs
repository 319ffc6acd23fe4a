//! `dkimctl verify` on the peers' own DKIM test corpora.
//!
//! `scripts/peer-corpora.sh` builds `target/peer-corpora/<corpus>/`
//! (messages, zone files, `cases.tsv`, `knot.conf.in`) from pinned
//! downloads; it does nothing when they are current. Each corpus gets its
//! own knotd on loopback (the corpora publish different records under the
//! same names). Every message is verified by the real binary; the result
//! word of every signature is compared with
//! `tests/vectors/peers/expectations.tsv`: the `rfc` column, or the
//! `dkimctl` column where dkimctl deliberately answers another word the
//! RFCs allow (the reason column says why). Any other answer fails, as does
//! a case without an expectation, an expectation without a case, or a
//! signature that is not reported at all.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{ZoneServer, report, signature_fields, vectors};
use crate::support::configs::config;
use crate::support::proc::run_bounded;
use crate::support::{TempRoot, bin, repo, require_tool};

const CORPORA: [&str; 4] = ["mail-dkim", "dkimpy", "mail-auth", "rfc"];

/// One row of expectations.tsv.
#[derive(Debug, Clone)]
struct Expectation {
    corpus: String,
    case: String,
    sig: String,
    peer: String,
    rfc: String,
    alt: String,
    dkimctl: String,
    reason: String,
}

impl Expectation {
    /// The word `dkimctl verify` must give.
    fn wanted(&self) -> &str {
        if self.dkimctl == "-" {
            &self.rfc
        } else {
            &self.dkimctl
        }
    }
}

fn expectations() -> Vec<Expectation> {
    let path = vectors("peers/expectations.tsv");
    let text = std::fs::read_to_string(&path).expect("expectations.tsv");
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() || line.starts_with("corpus\t") {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            f.len(),
            8,
            "{}:{}: 8 columns expected",
            path.display(),
            n + 1
        );
        let e = Expectation {
            corpus: f[0].into(),
            case: f[1].into(),
            sig: f[2].into(),
            peer: f[3].into(),
            rfc: f[4].into(),
            alt: f[5].into(),
            dkimctl: f[6].into(),
            reason: f[7].into(),
        };
        if e.dkimctl != "-" {
            assert!(
                e.alt.split(',').any(|a| a == e.dkimctl),
                "{}:{}: dkimctl answers {} where the RFCs allow only {} ({})",
                path.display(),
                n + 1,
                e.dkimctl,
                e.rfc,
                e.alt
            );
        }
        rows.push(e);
    }
    rows
}

/// One row of a corpus's cases.tsv: case-id, message, signature, peer.
struct Case {
    id: String,
    message: String,
    sig: String,
}

fn cases(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("cases.tsv")).expect("cases.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "{}: {l}", dir.display());
            Case {
                id: f[0].into(),
                message: f[1].into(),
                sig: f[2].into(),
            }
        })
        .collect()
}

/// Builds the corpora (or finds them current). `None` when a tool the
/// script needs is missing outside CI.
fn prepare() -> Option<PathBuf> {
    for tool in ["curl", "tar", "flock", "sha256sum"] {
        if !require_tool(tool) {
            return None;
        }
    }
    let run = run_bounded(
        Command::new("bash")
            .arg(repo().join("scripts/peer-corpora.sh"))
            .current_dir(repo()),
        None,
        Duration::from_secs(600),
    );
    assert_eq!(
        run.code(),
        0,
        "scripts/peer-corpora.sh failed:\n{}{}",
        run.stdout(),
        run.stderr()
    );
    Some(repo().join("target/peer-corpora"))
}

/// A zone knotd loads (one with an SOA), to know when it answers.
fn probe_zone(zone_dir: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(zone_dir)
        .expect("zone dir")
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(" SOA ")))
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .expect("a zone with an SOA")
}

/// `dkimctl verify`'s result words, one per line it printed.
fn verify(root: &TempRoot, ns: &str, message: &Path) -> Vec<String> {
    let run = run_bounded(
        Command::new(bin())
            .args(["--root", &root.root_arg(), "verify", "--nameserver", ns])
            .arg(message),
        None,
        Duration::from_secs(60),
    );
    assert!(
        matches!(run.code(), 0 | 1),
        "dkimctl verify {} exited {}:\n{}{}",
        message.display(),
        run.code(),
        run.stdout(),
        run.stderr()
    );
    let words: Vec<String> = run
        .stdout()
        .lines()
        .map(|l| {
            l.strip_prefix("dkim=")
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_else(|| panic!("not a result line: {l}"))
                .to_string()
        })
        .collect();
    words
}

/// Per corpus: what was checked and how it came out.
#[derive(Default)]
struct Tally {
    messages: usize,
    /// Rows compared: one per signature, one per unsigned message.
    verdicts: usize,
    agree: usize,
    listed: usize,
    rfc_not_peer: usize,
}

/// Whether the peer's own expectation means "passes" (`None`: it asserts
/// nothing).
fn peer_passes(peer: &str) -> Option<bool> {
    let p = peer.strip_prefix("skipped:").unwrap_or(peer);
    match p {
        "-" => None,
        _ => Some(p == "pass" || p.starts_with("True") || p.starts_with("pass")),
    }
}

#[test]
fn peer_corpora_verify_as_the_rfcs_say() {
    let Some(out) = prepare() else {
        return;
    };
    let expected = expectations();
    let root = config("sign-rsa-example-com").root();
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut listed = Vec::new();
    let mut covered = vec![false; expected.len()];
    for corpus in CORPORA {
        let dir = out.join(corpus);
        let zone_dir = dir.join("zone");
        let conf_in = std::fs::read_to_string(dir.join("knot.conf.in")).expect("knot.conf.in");
        let Some(knot) = ZoneServer::start(&conf_in, &zone_dir, &probe_zone(&zone_dir)) else {
            return;
        };
        let cases = cases(&dir);
        // Every message once, two at a time.
        let mut messages: Vec<&str> = cases.iter().map(|c| c.message.as_str()).collect();
        messages.sort_unstable();
        messages.dedup();
        let results: BTreeMap<&str, Vec<String>> = std::thread::scope(|s| {
            let halves: Vec<_> = messages
                .chunks(messages.len().div_ceil(2))
                .map(|part| {
                    let (root, dir, ns) = (&root, &dir, knot.ns());
                    s.spawn(move || {
                        part.iter()
                            .map(|m| (*m, verify(root, &ns, &dir.join(m))))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            halves
                .into_iter()
                .flat_map(|h| h.join().expect("verify thread"))
                .collect()
        });
        let tally = tallies.entry(corpus).or_default();
        tally.messages = messages.len();
        // Nothing vanishes: one result per DKIM-Signature field.
        for (m, words) in &results {
            let fields = signature_fields(&std::fs::read(dir.join(m)).unwrap());
            let reported = if words.as_slice() == ["none"] {
                0
            } else {
                words.len()
            };
            if reported != fields {
                failures.push(format!(
                    "{corpus}/{m}: {fields} DKIM-Signature fields, {reported} results {words:?}"
                ));
            }
        }
        for case in &cases {
            let Some(i) = expected
                .iter()
                .position(|e| e.corpus == corpus && e.case == case.id && e.sig == case.sig)
            else {
                failures.push(format!(
                    "{corpus} {} sig {}: no row in expectations.tsv",
                    case.id, case.sig
                ));
                continue;
            };
            covered[i] = true;
            let e = &expected[i];
            let words = &results[case.message.as_str()];
            let got = match e.sig.as_str() {
                // A verdict on the message as a whole, which DKIM does not
                // define (several signatures): nothing to compare.
                "*" if e.rfc == "-" => continue,
                "*" => words.join(","),
                n => {
                    let n: usize = n.parse().expect("signature index");
                    words.get(n).cloned().unwrap_or_else(|| "(missing)".into())
                }
            };
            tally.verdicts += 1;
            if peer_passes(&e.peer).is_some_and(|p| p != (e.rfc == "pass")) {
                tally.rfc_not_peer += 1;
            }
            if got != e.wanted() {
                failures.push(format!(
                    "{corpus} {} sig {}: dkimctl says {got}, expected {} (rfc {}, alt {}): {}",
                    e.case,
                    e.sig,
                    e.wanted(),
                    e.rfc,
                    e.alt,
                    e.reason
                ));
            } else if e.dkimctl != "-" {
                tally.listed += 1;
                let why = e
                    .reason
                    .split_once("dkimctl: ")
                    .map_or(e.reason.as_str(), |(_, w)| w);
                listed.push(format!(
                    "{corpus} {} sig {}: {} where the RFC answer is {}: {why}",
                    e.case, e.sig, e.dkimctl, e.rfc
                ));
            } else {
                tally.agree += 1;
            }
        }
    }
    for (e, seen) in expected.iter().zip(&covered) {
        if !seen {
            failures.push(format!(
                "expectations.tsv: {} {} sig {} is no case of the corpus",
                e.corpus, e.case, e.sig
            ));
        }
    }
    let table = table(&tallies, &listed);
    println!("{table}");
    report("corpora.txt", &table);
    assert!(
        failures.is_empty(),
        "{} disagreement(s) with tests/vectors/peers/expectations.tsv:\n{}\n{table}",
        failures.len(),
        failures.join("\n")
    );
}

fn table(tallies: &BTreeMap<&str, Tally>, listed: &[String]) -> String {
    let mut t = String::from(
        "peer corpora, dkimctl verify vs tests/vectors/peers/expectations.tsv\n\
         corpus     messages    verdicts  agree  disagree (listed)  RFC today != peer's own verdict\n",
    );
    let mut sum = Tally::default();
    for (corpus, x) in tallies {
        let _ = writeln!(
            t,
            "{corpus:<10} {:>8}  {:>10}  {:>5}  {:>17}  {:>31}",
            x.messages, x.verdicts, x.agree, x.listed, x.rfc_not_peer
        );
        sum.messages += x.messages;
        sum.verdicts += x.verdicts;
        sum.agree += x.agree;
        sum.listed += x.listed;
        sum.rfc_not_peer += x.rfc_not_peer;
    }
    let _ = writeln!(
        t,
        "{:<10} {:>8}  {:>10}  {:>5}  {:>17}  {:>31}",
        "total", sum.messages, sum.verdicts, sum.agree, sum.listed, sum.rfc_not_peer
    );
    for l in listed {
        let _ = writeln!(t, "  listed: {l}");
    }
    t
}
