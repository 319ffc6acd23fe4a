//! An artifact: one thing on disk that the model asks for.
//!
//! `render` produces the list, `plan` compares each with what is under the
//! root, `apply` makes it so. Most artifacts are whole files whose bytes
//! render decides; some are edits of files the admin owns (Postfix's
//! main.cf and master.cf, sendmail.mc), where only the managed settings
//! change; directories and private keys carry only owner and mode (a key's
//! bytes are created by `keys generate` and never shown).

use std::path::PathBuf;

use crate::config::model::Algorithm;
pub use crate::formats::postfix::{PostfixMainEdit, PostfixMasterEdit};
pub use crate::formats::sendmail::SendmailMcEdit;

/// One managed thing on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// Host path (e.g. `/etc/opendkim/opendkim.conf`).
    pub path: PathBuf,
    /// What it is and what it must contain.
    pub kind: ArtifactKind,
    /// Owning user name.
    pub owner: String,
    /// Owning group name.
    pub group: String,
    /// Permission bits (e.g. 0o644).
    pub mode: u32,
    /// What a change to it requires of running services.
    pub reload: Reload,
}

/// The content side of an artifact.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactKind {
    /// A directory.
    Directory,
    /// A whole file with exactly these bytes.
    File(Vec<u8>),
    /// A private key: secret, created when missing, never overwritten or
    /// shown by plan/apply.
    PrivateKey {
        /// Algorithm of the key to generate.
        algorithm: Algorithm,
        /// RSA size to generate.
        rsa_bits: u32,
        /// Where the same selector's key may already be (the other
        /// engine's default key directory): `plan` copies it from there
        /// instead of generating a key DNS does not know.
        reuse: Vec<PathBuf>,
    },
    /// Settings merged into Postfix's main.cf.
    PostfixMain(PostfixMainEdit),
    /// `-o` overrides merged into services of Postfix's master.cf.
    PostfixMaster(PostfixMasterEdit),
    /// An `INPUT_MAIL_FILTER` line merged into sendmail.mc.
    SendmailMc(SendmailMcEdit),
}

/// What a change to an artifact requires of running services, from least
/// to most disruptive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reload {
    /// Nothing.
    None,
    /// `systemctl daemon-reload`, and `enable --now` for a timer that is
    /// new; the engine is not touched (the rotation timer and service).
    Timers,
    /// The milter re-reads its configuration (SIGHUP / SIGUSR1).
    Engine,
    /// The milter must restart (socket, user or umask changed).
    RestartEngine,
    /// `systemctl daemon-reload`, then restart the units.
    Units,
    /// `postfix reload`.
    Postfix,
    /// Rebuild sendmail.cf and have sendmail read it (Debian: reload).
    Sendmail,
}

impl Artifact {
    /// True for private keys, whose content is never shown.
    pub fn is_secret(&self) -> bool {
        matches!(self.kind, ArtifactKind::PrivateKey { .. })
    }

    /// The bytes `render --out` writes for this artifact: the file itself,
    /// or for edits of admin-owned files the fragment that gets merged.
    /// `None` for directories and keys.
    pub fn fragment(&self) -> Option<Vec<u8>> {
        match &self.kind {
            ArtifactKind::Directory | ArtifactKind::PrivateKey { .. } => None,
            ArtifactKind::File(b) => Some(b.clone()),
            ArtifactKind::PostfixMain(e) => {
                let mut s = String::from(
                    "# Postfix main.cf settings managed by dkimctl; `dkimctl apply` merges\n\
                     # them into main.cf and keeps everything else as it is.\n",
                );
                for l in &e.milter_lists {
                    s.push_str(&format!("{l} = {}\n", e.milter));
                }
                for (k, v) in &e.set {
                    s.push_str(&format!("{k} = {v}\n"));
                }
                Some(s.into_bytes())
            }
            ArtifactKind::PostfixMaster(e) => {
                let mut s = String::from(
                    "# Postfix master.cf overrides managed by dkimctl; `dkimctl apply`\n\
                     # adds them to these services and keeps everything else as it is.\n",
                );
                for (svc, opts) in &e.services {
                    s.push_str(&format!("# service {svc}\n"));
                    for (k, v) in opts {
                        s.push_str(&format!("  -o {k}={v}\n"));
                    }
                }
                Some(s.into_bytes())
            }
            ArtifactKind::SendmailMc(e) => Some(format!(
                "dnl sendmail.mc line managed by dkimctl; `dkimctl apply` puts it after the last FEATURE line.\n{}\n",
                e.line
            )
            .into_bytes()),
        }
    }
}
