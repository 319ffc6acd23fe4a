//! The root every host path resolves under (`--root`, default `/`).
//!
//! The model speaks of host paths (`/etc/opendkim/opendkim.conf`); only
//! here are they joined to the root the command works on, so the whole
//! tool runs unprivileged against a sandbox directory, and image builders
//! can point it at a tree they are assembling (as zram-generator does with
//! `ZRAM_GENERATOR_ROOT`).

use std::path::{Component, Path, PathBuf};

/// A directory that stands for `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// A root at `dir` (`/` for the live system).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Root { dir: dir.into() }
    }

    /// The directory standing for `/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when this is the live system's root.
    pub fn is_live(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// The real path of a host path under this root. Relative host paths
    /// are taken as relative to `/`; `..` components cannot climb out of
    /// the root.
    pub fn join(&self, host: &Path) -> PathBuf {
        let mut out = self.dir.clone();
        for c in host.components() {
            match c {
                Component::Normal(part) => out.push(part),
                Component::ParentDir => {
                    if out != self.dir {
                        out.pop();
                    }
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        out
    }

    /// The host path of a real path under this root, if it is under it.
    pub fn host_path(&self, real: &Path) -> Option<PathBuf> {
        real.strip_prefix(&self.dir)
            .ok()
            .map(|rel| Path::new("/").join(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_host_paths_under_the_root() {
        let r = Root::new("/tmp/r");
        assert_eq!(r.join(Path::new("/etc/x")), PathBuf::from("/tmp/r/etc/x"));
        assert_eq!(
            r.join(Path::new("/../../etc/x")),
            PathBuf::from("/tmp/r/etc/x")
        );
        assert_eq!(
            Root::new("/").join(Path::new("/etc/x")),
            PathBuf::from("/etc/x")
        );
        assert_eq!(
            r.host_path(Path::new("/tmp/r/etc/x")),
            Some(PathBuf::from("/etc/x"))
        );
    }
}
