//! The system under `--root`, read only.
//!
//! Every host path the tool looks at resolves through here: [`Root`] joins
//! host paths to the directory standing for `/`; [`Reader`] reads regular
//! files (size-capped, links resolved inside the root); [`inspect`] gives
//! the type, owner and mode of a managed path without following a link at
//! it; [`accounts`] reads users and groups. Nothing in this module writes:
//! [`crate::apply`] is the only writer.

pub mod accounts;
pub mod inspect;
pub mod live;
mod read;
mod root;

pub use accounts::Accounts;
pub use read::{ReadError, Reader};
pub use root::Root;
