//! Audit of a live installation (owned by the audit work).
