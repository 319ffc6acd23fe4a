//! The one integration-test crate (one link step on a two-core machine).
//! Each module covers one area; the binary under test is run for real and
//! real tools (OpenDKIM, Postfix, systemd-analyze, DNS servers, verifiers)
//! judge its output. The harnesses they share live in `support/`, one file
//! per concern; the dkim.toml files several tests share in
//! `fixtures/configs/`.

mod support;

mod admin;
mod adoption;
mod apply;
mod architecture;
mod audit;
mod check;
mod cli;
mod conformance;
mod day2;
mod dns;
mod engine;
mod golden;
mod interop;
mod publish;
mod realtools;
mod reliability;
mod sendmail;
mod systemd;
