//! The words of the benchmarks' plain-text bodies (benches/milter.rs and
//! benches/canon.rs): short mail vocabulary, joined by single spaces
//! into lines of at most 74 characters.

/// The words, picked in an order each benchmark chooses.
pub const WORDS: &[&str] = &[
    "mail",
    "signature",
    "relaxed",
    "canonical",
    "header",
    "body",
    "hash",
    "domain",
    "selector",
    "milter",
    "postfix",
    "socket",
    "the",
    "a",
    "of",
    "benchmark",
    "key",
    "record",
];
