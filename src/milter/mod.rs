//! The milter protocol, engine side (owned by the codec work).
