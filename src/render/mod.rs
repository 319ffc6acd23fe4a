//! Rendering: the model -> the list of artifacts (pure; no filesystem).

pub mod artifact;

pub use artifact::{Artifact, ArtifactKind, Reload};
