//! The declarative file `dkim.toml`: loading, diagnostics and validation.
//!
//! [`load`] reads the file under a [`crate::host::Root`], [`raw`] walks the
//! TOML document and collects every shape problem (unknown keys, wrong
//! types) with its span, and [`validate`] turns the raw values into the
//! checked [`model::Config`], collecting every semantic problem as well.
//! Nothing here writes to the system; [`environment`] only reads it (users,
//! groups and key files under the root).

pub mod diag;
pub mod edit;
pub mod emit;
pub mod environment;
pub mod model;
pub mod raw;
pub mod schema;
pub mod types;
pub mod validate;

pub use diag::{Diagnostic, Diagnostics};
pub use model::Config;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::host::Root;

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The real path read (under the root, or as given with `--config`).
    pub real: PathBuf,
    /// The host path named in rendered headers.
    pub host: PathBuf,
    /// The name used in diagnostics (as the user wrote it).
    pub display: String,
}

impl Source {
    /// Resolves `--config` (or the default) against the root. An explicit
    /// path is taken as given (relative to the working directory); its host
    /// path is its place under the root when it lies there.
    pub fn resolve(root: &Root, explicit: Option<&Path>) -> Source {
        match explicit {
            None => {
                let host = PathBuf::from(validate::DEFAULT_CONFIG);
                let real = root.join(&host);
                Source {
                    display: real.display().to_string(),
                    real,
                    host,
                }
            }
            Some(p) => {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
                let host = root
                    .host_path(&abs)
                    .unwrap_or_else(|| PathBuf::from(validate::DEFAULT_CONFIG));
                Source {
                    display: p.display().to_string(),
                    real: p.to_path_buf(),
                    host,
                }
            }
        }
    }
}

/// The file could not be read at all.
#[derive(Debug)]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "failed to read configuration from {}",
            self.path.display()
        )
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A loaded file: the model when it is valid, and every diagnostic.
#[derive(Debug)]
pub struct Loaded {
    /// The model, when no error was found.
    pub config: Option<Config>,
    /// The raw values (for spans in later checks), when the TOML parsed.
    pub raw: Option<raw::RawConfig>,
    /// Every problem found.
    pub diags: Diagnostics,
}

/// Reads, walks and validates a `dkim.toml` given as text.
pub fn parse(text: &str, source: &Source) -> Loaded {
    let mut diags = Diagnostics::new(source.display.clone(), text);
    let raw = raw::read(text, &mut diags);
    let config = match &raw {
        Some(r) => validate::validate(r, &source.host, &mut diags),
        None => None,
    };
    Loaded { config, raw, diags }
}

/// Reads and validates the file; checks against the system under `root`
/// are left to [`environment::check`].
pub fn load(source: &Source) -> Result<Loaded, LoadError> {
    Ok(parse(&read_text(source)?, source))
}

/// The file's text.
pub fn read_text(source: &Source) -> Result<String, LoadError> {
    std::fs::read_to_string(&source.real).map_err(|e| LoadError {
        path: source.real.clone(),
        source: e,
    })
}
