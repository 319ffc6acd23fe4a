//! JSON Schema of dkim.toml (owned by the admin-integration work).
