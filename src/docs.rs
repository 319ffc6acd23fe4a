//! Man pages and completions (owned by the admin-integration work).
