//! `dkimctl check` and `dkimctl render`: the file judged, and the files it
//! becomes.

use std::io::Write;
use std::path::Path;

use super::{Error, Global, load_valid, print_diagnostics};
use crate::config::{self, Source};
use crate::host::Root;
use crate::render;
use crate::report::Severity;

/// `dkimctl check`: 0 valid (warnings allowed), 1 errors found.
pub fn check(root: &Root, source: &Source) -> Result<i32, Error> {
    let mut loaded = config::load(source)?;
    if let (Some(c), Some(raw)) = (&loaded.config, &loaded.raw) {
        config::environment::check(c, raw, root, false, &mut loaded.diags);
    }
    print_diagnostics(&loaded.diags);
    let errors = loaded.diags.count(Severity::Error);
    let warnings = loaded.diags.count(Severity::Warning);
    if errors > 0 {
        eprintln!(
            "{}: {errors} error(s), {warnings} warning(s)",
            source.display
        );
        Ok(1)
    } else {
        println!("{}: valid ({warnings} warning(s))", source.display);
        Ok(0)
    }
}

/// `dkimctl render --out DIR`: every artifact written into DIR (a tree
/// mirroring /), then the owner and mode of each, one a line.
pub fn render(root: &Root, source: &Source, global: &Global, out: &Path) -> Result<i32, Error> {
    let (config, templates) = load_valid(root, source, global)?;
    let artifacts = render::render(&config, &templates)?;
    write_tree(out, &artifacts)?;
    let mut stdout = std::io::stdout().lock();
    for a in &artifacts {
        writeln!(
            stdout,
            "{:04o} {}:{} {}",
            a.mode,
            a.owner,
            a.group,
            a.path.display()
        )?;
    }
    Ok(0)
}

/// Writes artifacts into a directory mirroring their host paths. This is
/// the `--out` directory the admin named, not the system: apply's careful
/// writer is not needed here.
fn write_tree(out: &Path, artifacts: &[render::Artifact]) -> Result<(), Error> {
    let tree = Root::new(out);
    for a in artifacts {
        let path = tree.join(&a.path);
        match a.fragment() {
            Some(bytes) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("failed to create {}: {e}", parent.display()))?;
                }
                std::fs::write(&path, bytes)
                    .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
            }
            None if matches!(a.kind, render::ArtifactKind::Directory) => {
                std::fs::create_dir_all(&path)
                    .map_err(|e| format!("failed to create {}: {e}", path.display()))?;
            }
            None => {}
        }
    }
    Ok(())
}
