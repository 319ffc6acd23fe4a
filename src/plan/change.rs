//! One planned change: what `apply` will do to one artifact, and why.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::render::artifact::{Artifact, ArtifactKind, Reload};

/// What happens to an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Nothing is there: create it.
    Create,
    /// The content differs: replace it (owner and mode may change too).
    Update,
    /// Only owner, group or mode differ.
    Metadata,
    /// Already as wanted.
    Unchanged,
    /// A file dkimctl rendered for the engine dkim.toml no longer uses:
    /// remove it (after that engine is stopped).
    Remove,
}

impl Action {
    /// The word in the JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Metadata => "metadata",
            Action::Unchanged => "unchanged",
            Action::Remove => "remove",
        }
    }
}

/// A change of owner and group, as `user:group` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerChange {
    /// Current owner and group (`None` when the path does not exist).
    pub from: Option<String>,
    /// Wanted owner and group.
    pub to: String,
    /// The wanted user or group does not exist yet; apply creates it from
    /// the sysusers.d artifact first.
    pub pending: bool,
}

impl OwnerChange {
    /// `to`, with `(created by apply)` when pending.
    pub fn target(&self) -> String {
        if self.pending {
            format!("{} (created by apply)", self.to)
        } else {
            self.to.clone()
        }
    }
}

/// A change of permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeChange {
    /// Current bits (`None` when the path does not exist).
    pub from: Option<u32>,
    /// Wanted bits.
    pub to: u32,
}

/// The planned change of one artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The artifact, as rendered.
    pub artifact: Artifact,
    /// Its real path under the root.
    pub path: PathBuf,
    /// What happens to it.
    pub action: Action,
    /// The bytes apply writes (whole files and merged edits, on create and
    /// update); `None` for directories, keys and unchanged content.
    pub content: Option<Vec<u8>>,
    /// Unified diff of the content (never for secrets).
    pub diff: Option<String>,
    /// Owner/group change, if any (on create: the owner it gets).
    pub owner: Option<OwnerChange>,
    /// Mode change, if any (on create: the mode it gets).
    pub mode: Option<ModeChange>,
    /// What the change requires of running services (the artifact's own,
    /// raised to [`Reload::RestartEngine`] when a setting that needs a
    /// restart changed).
    pub reload: Reload,
    /// A private key to create is copied from this host path (the same
    /// selector's key where the other engine keeps it) instead of being
    /// generated: its public half is what DNS has.
    pub copy_from: Option<PathBuf>,
}

impl Change {
    /// The host path (`/etc/...`).
    pub fn host_path(&self) -> &Path {
        &self.artifact.path
    }

    /// True for private keys: never shown, never overwritten.
    pub fn secret(&self) -> bool {
        self.artifact.is_secret()
    }

    /// True unless unchanged.
    pub fn is_change(&self) -> bool {
        self.action != Action::Unchanged
    }

    /// The artifact kind as named in JSON.
    pub fn kind_name(&self) -> &'static str {
        match self.artifact.kind {
            ArtifactKind::File(_) => "file",
            ArtifactKind::Directory => "directory",
            ArtifactKind::PrivateKey { .. } => "key",
            ArtifactKind::PostfixMain(_) => "postfix-main",
            ArtifactKind::PostfixMaster(_) => "postfix-master",
            ArtifactKind::SendmailMc(_) => "sendmail-mc",
        }
    }

    /// The JSON form (see [`super::Plan::to_json`]).
    pub fn to_json(&self) -> Value {
        let owner = self
            .owner
            .as_ref()
            .map(|o| json!({"from": o.from, "to": o.to, "pending": o.pending}));
        let mode = self
            .mode
            .map(|m| json!({"from": m.from.map(mode_string), "to": mode_string(m.to)}));
        json!({
            "path": self.host_path().display().to_string(),
            "kind": self.kind_name(),
            "action": self.action.as_str(),
            "secret": self.secret(),
            "owner": owner,
            "mode": mode,
            "diff": if self.secret() { None } else { self.diff.clone() },
            "copy_from": self.copy_from.as_ref().map(|p| p.display().to_string()),
        })
    }
}

/// Permission bits as four octal digits (`0644`).
pub fn mode_string(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// The name of a reload in JSON and text.
pub fn reload_name(r: Reload) -> &'static str {
    match r {
        Reload::None => "none",
        Reload::Timers => "timers",
        Reload::Engine => "engine",
        Reload::RestartEngine => "restart-engine",
        Reload::Units => "units",
        Reload::Postfix => "postfix",
        Reload::Sendmail => "sendmail",
    }
}
