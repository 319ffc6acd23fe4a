//! Key generation and DNS TXT record text (owned by the keys work).
