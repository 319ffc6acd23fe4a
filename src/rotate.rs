//! Key rotation (owned by the rotation work).
