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
//! dkim.toml -config-> Config -render-> [Artifact] -plan (reads host)-> Plan -apply-> disk
//! host (any setup) -audit-> findings          -import-> dkim.toml
//! Config -rotate (reads DNS)-> Step -apply-> keys + dkim.toml
//! Config -engine-> milter socket: codec -> session -> dkim sign/verify -> replies
//! ```
//!
//! Folders are the data flow; each file format and each side effect has
//! one home. Nothing below `apply` writes to the system (the engine's own
//! socket aside), and no module imports one that imports it back.
//!
//! - [`cli`]: clap definitions and one file per command; thin.
//! - [`config`]: dkim.toml read with every problem at file:line:col,
//!   validated into the typed model; its schema; the text bootstrap writes
//!   and the edits rotate makes.
//! - [`host`]: the system under `--root`, read only: paths, files, owners
//!   and modes, users and groups.
//! - [`formats`]: other programs' files, parsed and edited without I/O:
//!   Postfix, sendmail.mc, opendkim.conf and its tables, systemd units,
//!   passwd/group, sysusers.d; names and host patterns.
//! - [`render`]: model -> artifacts (files, edits, keys); pure.
//! - [`plan`]: artifacts + what is on disk -> every change, accounts
//!   included; pure.
//! - [`apply`]: the only writer: files, directories, keys, accounts,
//!   rotation steps, reloads, through descriptors that never follow a
//!   planted link.
//! - [`rotate`]: decides the next step of a key rotation (by hand, or
//!   every due step with `rotate --auto`).
//! - [`audit`]: findings about any installation; import of OpenDKIM
//!   setups.
//! - [`dns`]: record lookups, judgements, the records to publish and
//!   publishing them (RFC 2136 updates signed with TSIG).
//! - [`keys`]: key generation and loading, record text; no files written.
//! - [`dkim`]: signing, verification and Authentication-Results; no milter
//!   vocabulary.
//! - [`milter`]: the milter protocol codec, engine side and MTA side.
//! - [`engine`]: `dkimctl serve`: server, session, policy, metrics.
//! - [`report`]: severities, findings, places, exit codes, progress.

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
