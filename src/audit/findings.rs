//! The stable ids audit findings carry ([`crate::report::Finding`] is the
//! finding itself). An id never changes once released: scripts and
//! `--json` consumers match on it. The table in the module docs of
//! [`super`] lists every id; a unit test keeps the two in step.

use crate::report::Severity;
pub use crate::report::{Finding, Origin, clean};

/// Every finding id, with the severity it usually has. Some ids take a
/// lower or higher severity depending on the case (see the table in
/// [`super`]); the severity here is the most common one.
pub const IDS: &[(&str, Severity)] = &[
    (id::UNREADABLE_FILE, Severity::Error),
    (id::MISSING_FILE, Severity::Error),
    (id::UNKNOWN_OPTION, Severity::Error),
    (id::OPTION_VALUE, Severity::Error),
    (id::DATASET_NOT_CHECKED, Severity::Info),
    (id::TABLE_SYNTAX, Severity::Error),
    (id::RUNS_AS_ROOT, Severity::Error),
    (id::UNKNOWN_USER, Severity::Error),
    (id::TEMPORARY_DIRECTORY, Severity::Warning),
    (id::BASE_DIRECTORY, Severity::Info),
    (id::NO_SOCKET, Severity::Error),
    (id::TCP_SOCKET, Severity::Warning),
    (id::REMOTE_SOCKET, Severity::Error),
    (id::SOCKET_MISMATCH, Severity::Error),
    (id::MTA_NOT_CONNECTED, Severity::Error),
    (id::SOCKET_OUTSIDE_CHROOT, Severity::Error),
    (id::SOCKET_CHROOT_PATH, Severity::Error),
    (id::SOCKET_UMASK, Severity::Error),
    (id::SOCKET_DIRECTORY, Severity::Error),
    (id::MTA_NOT_IN_GROUP, Severity::Error),
    (id::MILTER_PROTOCOL, Severity::Error),
    (id::MILTER_DEFAULT_ACTION, Severity::Warning),
    (id::KEY_PERMISSIONS, Severity::Error),
    (id::KEY_UNSAFE_DIRECTORY, Severity::Error),
    (id::KEY_OWNER, Severity::Error),
    (id::KEY_MISSING, Severity::Error),
    (id::KEY_INVALID, Severity::Error),
    (id::KEY_WEAK, Severity::Warning),
    (id::KEY_ALGORITHM_MISMATCH, Severity::Error),
    (id::SIGNING_TABLE_UNKNOWN_KEY, Severity::Error),
    (id::SIGNING_TABLE_CATCH_ALL, Severity::Warning),
    (id::SIGNING_TABLE_NOT_REFILE, Severity::Error),
    (id::KEY_TABLE_REFILE, Severity::Warning),
    (id::KEY_TABLE_UNUSED, Severity::Info),
    (id::SINGLE_KEY_IGNORED, Severity::Warning),
    (id::SIGNING_INCOMPLETE, Severity::Error),
    (id::NO_SIGNING_KEYS, Severity::Info),
    (id::INTERNAL_HOSTS_PUBLIC, Severity::Warning),
    (id::INTERNAL_HOSTS_EVERYONE, Severity::Error),
    (id::TRUSTED_LISTS_DIFFER, Severity::Info),
    (id::CANONICALIZATION, Severity::Warning),
    (id::OVERSIGN_FROM, Severity::Warning),
    (id::MODE_VERIFY_ONLY, Severity::Warning),
    (id::UNSAFE_KEYS_ALLOWED, Severity::Warning),
    (id::SECRET_READABLE, Severity::Error),
    (id::UNIT_EXPOSURE, Severity::Warning),
    (id::UNIT_EXPOSURE_UNCHECKED, Severity::Info),
    (id::UNIT_HARDENING, Severity::Warning),
    (id::UNIT_FILE_PERMISSIONS, Severity::Error),
    (id::CREDENTIAL_MISSING, Severity::Error),
    (id::KEY_ORPHANED, Severity::Warning),
    (id::NO_UNIT, Severity::Info),
    (id::NO_MTA, Severity::Info),
    (id::SENDMAIL_CF_STALE, Severity::Error),
    (id::TWO_DKIM_MILTERS, Severity::Error),
    (id::SENDMAIL_FILTER_DOWN, Severity::Error),
    (id::DRIFT, Severity::Warning),
    (id::KEY_OVERDUE, Severity::Warning),
    (id::DNS_RECORD, Severity::Error),
    (id::DNS_UNAVAILABLE, Severity::Info),
    (id::ENGINE_NOT_RUNNING, Severity::Error),
    (id::MILTER_NOT_ANSWERING, Severity::Error),
    (id::SOCKET_TAKEN, Severity::Error),
    (id::ENGINE_STALE, Severity::Warning),
    (id::ENGINE_REPLACED, Severity::Warning),
    (id::RELOAD_FAILED, Severity::Warning),
];

/// The finding ids, as constants so a typo is a compile error.
#[allow(missing_docs)]
pub mod id {
    pub const UNREADABLE_FILE: &str = "unreadable-file";
    pub const MISSING_FILE: &str = "missing-file";
    pub const UNKNOWN_OPTION: &str = "unknown-option";
    pub const OPTION_VALUE: &str = "option-value";
    pub const DATASET_NOT_CHECKED: &str = "dataset-not-checked";
    pub const TABLE_SYNTAX: &str = "table-syntax";
    pub const RUNS_AS_ROOT: &str = "runs-as-root";
    pub const UNKNOWN_USER: &str = "unknown-user";
    pub const TEMPORARY_DIRECTORY: &str = "temporary-directory";
    pub const BASE_DIRECTORY: &str = "base-directory";
    pub const NO_SOCKET: &str = "no-socket";
    pub const TCP_SOCKET: &str = "tcp-socket";
    pub const REMOTE_SOCKET: &str = "remote-socket";
    pub const SOCKET_MISMATCH: &str = "socket-mismatch";
    pub const MTA_NOT_CONNECTED: &str = "mta-not-connected";
    pub const SOCKET_OUTSIDE_CHROOT: &str = "socket-outside-chroot";
    pub const SOCKET_CHROOT_PATH: &str = "socket-chroot-path";
    pub const SOCKET_UMASK: &str = "socket-umask";
    pub const SOCKET_DIRECTORY: &str = "socket-directory";
    pub const MTA_NOT_IN_GROUP: &str = "mta-not-in-group";
    pub const MILTER_PROTOCOL: &str = "milter-protocol";
    pub const MILTER_DEFAULT_ACTION: &str = "milter-default-action";
    pub const KEY_PERMISSIONS: &str = "key-permissions";
    pub const KEY_UNSAFE_DIRECTORY: &str = "key-unsafe-directory";
    pub const KEY_OWNER: &str = "key-owner";
    pub const KEY_MISSING: &str = "key-missing";
    pub const KEY_INVALID: &str = "key-invalid";
    pub const KEY_WEAK: &str = "key-weak";
    pub const KEY_ALGORITHM_MISMATCH: &str = "key-algorithm-mismatch";
    pub const SIGNING_TABLE_UNKNOWN_KEY: &str = "signing-table-unknown-key";
    pub const SIGNING_TABLE_CATCH_ALL: &str = "signing-table-catch-all";
    pub const SIGNING_TABLE_NOT_REFILE: &str = "signing-table-not-refile";
    pub const KEY_TABLE_REFILE: &str = "key-table-refile";
    pub const KEY_TABLE_UNUSED: &str = "key-table-unused";
    pub const SINGLE_KEY_IGNORED: &str = "single-key-ignored";
    pub const SIGNING_INCOMPLETE: &str = "signing-incomplete";
    pub const NO_SIGNING_KEYS: &str = "no-signing-keys";
    pub const INTERNAL_HOSTS_PUBLIC: &str = "internal-hosts-public";
    pub const INTERNAL_HOSTS_EVERYONE: &str = "internal-hosts-everyone";
    pub const TRUSTED_LISTS_DIFFER: &str = "trusted-lists-differ";
    pub const CANONICALIZATION: &str = "canonicalization";
    pub const OVERSIGN_FROM: &str = "oversign-from";
    pub const MODE_VERIFY_ONLY: &str = "mode-verify-only";
    pub const UNSAFE_KEYS_ALLOWED: &str = "unsafe-keys-allowed";
    pub const SECRET_READABLE: &str = "secret-readable";
    pub const UNIT_EXPOSURE: &str = "unit-exposure";
    pub const UNIT_EXPOSURE_UNCHECKED: &str = "unit-exposure-unchecked";
    pub const UNIT_HARDENING: &str = "unit-hardening";
    pub const UNIT_FILE_PERMISSIONS: &str = "unit-file-permissions";
    pub const CREDENTIAL_MISSING: &str = "credential-missing";
    pub const KEY_ORPHANED: &str = "key-orphaned";
    pub const NO_UNIT: &str = "no-unit";
    pub const NO_MTA: &str = "no-mta";
    pub const SENDMAIL_CF_STALE: &str = "sendmail-cf-stale";
    pub const TWO_DKIM_MILTERS: &str = "two-dkim-milters";
    pub const SENDMAIL_FILTER_DOWN: &str = "sendmail-filter-down";
    pub const DRIFT: &str = "drift";
    pub const KEY_OVERDUE: &str = "key-overdue";
    pub const DNS_RECORD: &str = "dns-record";
    pub const DNS_UNAVAILABLE: &str = "dns-unavailable";
    // The running system (defined with the plan's service actions).
    pub use crate::plan::live::id::{
        ENGINE_NOT_RUNNING, ENGINE_REPLACED, ENGINE_STALE, MILTER_NOT_ANSWERING, RELOAD_FAILED,
        SOCKET_TAKEN,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_is_documented_once_and_unique() {
        let docs = include_str!("mod.rs");
        let mut seen = std::collections::BTreeSet::new();
        for (id, _) in IDS {
            assert!(seen.insert(*id), "{id} is listed twice");
            assert!(
                docs.contains(&format!("//! | `{id}` |")),
                "{id} is missing from the table in src/audit/mod.rs"
            );
        }
        let rows = docs
            .lines()
            .filter(|l| l.starts_with("//! | `") && l.contains("` |"))
            .count();
        assert_eq!(rows, IDS.len(), "the id table has rows for unknown ids");
    }
}
