//! dkimctl: a hardened DKIM setup from one declarative file, and a bundled
//! signing milter.
//!
//! This library exists to structure the binary and to let the integration
//! tests reach its parts; it is not a public API and makes no stability
//! promise.
//!
//! # Layout
//!
//! Two pipelines share one source of truth, `dkim.toml`:
//!
//! ```text
//! dkim.toml -load-> config::raw -validate-> config::Config (the model)
//! Config -render-> [render::Artifact] -plan (vs --root)-> plan::Plan -apply-> disk
//! Config -keys-> key files + DNS TXT records; -dns check-> findings
//! Config -serve-> milter::server -> codec -> session -> dkim sign/verify
//! ```
//!
//! - [`root`]: every host path resolves through a `Root` (`--root`).
//! - [`config`]: the file format, diagnostics with `file:line:col`, validation.
//! - [`render`]: model -> artifacts (pure; no filesystem access).
//! - [`plan`]: artifacts + what is on disk -> a plan of changes.
//! - [`apply`]: carries a plan out atomically, then reloads.
//! - [`keys`]: key generation and DNS TXT record text.
//! - [`milter`]: the milter protocol codec (engine side).

pub mod apply;
pub mod audit;
pub mod cli;
pub mod config;
pub mod dkim;
pub mod dns;
pub mod engine;
pub mod formats;
pub mod host;
pub mod keys;
pub mod milter;
pub mod plan;
pub mod render;
pub mod report;
pub mod rotate;
