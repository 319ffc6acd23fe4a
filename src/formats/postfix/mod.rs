//! Postfix's main.cf and master.cf: read (audit, import) and merged
//! (plan) by the same code.
//!
//! - [`syntax`](self): logical lines, shared by both files.
//! - [`MainCf`], [`merge_main`]: parameters, `$name` expansion, the queue
//!   directory; setting dkimctl's parameters and milter lists as
//!   `postconf -e` would.
//! - [`parse_master`], [`merge_master`]: services, their chroot column and
//!   `-o` overrides; adding dkimctl's overrides as `postconf -P` would.
//! - [`milter_entries`], [`endpoint`], [`Endpoint::same`]: milter lists
//!   and the one rule for when two addresses reach the same milter.
//!
//! Every merge keeps each byte it does not need to change, keeps other
//! milters and their order, recognises our milter under any spelling, and
//! keeps a marker comment ([`MARKER_PREFIX`]) naming our entry so that a
//! moved socket replaces the old entry in place.

use std::path::PathBuf;

mod main_cf;
mod master_cf;
mod milter;
mod syntax;

pub use main_cf::{DEFAULT_QUEUE_DIRECTORY, MainCf, Param, merge_main};
pub use master_cf::{Chroot, MissingService, Service, merge_master, parse_master};
pub use milter::{
    Endpoint, MARKER_PREFIX, View, endpoint, entry_parts, entry_reference, hosts_match,
    milter_entries,
};

/// Managed main.cf parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PostfixMainEdit {
    /// Parameters set to exactly this value (`milter_protocol = 6`).
    pub set: Vec<(String, String)>,
    /// Milter-list parameters (`smtpd_milters`, `non_smtpd_milters`) that
    /// must contain `milter`; other milters in them are kept.
    pub milter_lists: Vec<String>,
    /// Our milter address as Postfix names it.
    pub milter: String,
    /// Postfix's queue directory (relative and chrooted milter paths are
    /// resolved against it when lists are compared).
    pub queue_directory: PathBuf,
    /// True when smtpd and cleanup run chrooted.
    pub chroot: bool,
}

/// Managed master.cf service overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct PostfixMasterEdit {
    /// For each service name: `-o name=value` overrides it must carry. A
    /// `smtpd_milters` override is merged as a milter list.
    pub services: Vec<(String, Vec<(String, String)>)>,
    /// Our milter address as Postfix names it.
    pub milter: String,
    /// Postfix's queue directory.
    pub queue_directory: PathBuf,
    /// What master.cf's chroot column `-` means here.
    pub chroot: bool,
}

/// Test vectors shared by the readers of these files (audit and plan).
#[cfg(test)]
pub(crate) mod vectors {
    /// One case of tests/vectors/postfix-milters.toml.
    pub(crate) struct PostfixVector {
        pub name: String,
        pub socket: crate::config::model::Socket,
        pub chroot: bool,
        pub main_cf: String,
        pub reaches: bool,
    }

    /// Every case of tests/vectors/postfix-milters.toml, the vectors audit
    /// and plan share.
    pub(crate) fn postfix_vectors() -> Vec<PostfixVector> {
        let text = include_str!("../../../tests/vectors/postfix-milters.toml");
        let doc: toml::Table = toml::from_str(text).expect("vectors parse");
        doc["case"]
            .as_array()
            .expect("[[case]]")
            .iter()
            .map(|c| PostfixVector {
                name: c["name"].as_str().expect("name").to_string(),
                socket: crate::config::validate::parse_socket(
                    c["socket"].as_str().expect("socket"),
                )
                .expect("socket parses"),
                chroot: c["chroot"].as_bool().expect("chroot"),
                main_cf: c["main_cf"].as_str().expect("main_cf").to_string(),
                reaches: c["reaches"].as_bool().expect("reaches"),
            })
            .collect()
    }
}
