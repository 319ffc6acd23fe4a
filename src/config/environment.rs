//! Checks of the configuration against the system under the root: users
//! and groups, key files. Read-only.

use super::Diagnostics;
use super::model::Config;
use super::raw::RawConfig;
use crate::root::Root;

/// Adds findings about the system under `root` to `diags`.
pub fn check(_config: &Config, _raw: &RawConfig, _root: &Root, _diags: &mut Diagnostics) {}
