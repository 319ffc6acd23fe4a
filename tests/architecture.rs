//! The source tree's rules, checked over src/ as text: folders import each
//! other without a circle, nothing below the CLI imports the writer, and
//! only the writer (and the engine, for its own socket) writes, renames,
//! removes, chmods or chowns files. Test code (`#[cfg(test)] mod` blocks and
//! `tests.rs` files) is left out: tests make their own fixtures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every non-test `.rs` file under src/, with its text cut before its
/// first `#[cfg(test)]` module and its comments removed line by line.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs") {
                out.push(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let mut code = String::new();
            let mut lines = text.lines().peekable();
            while let Some(line) = lines.next() {
                let t = line.trim_start();
                if t.starts_with("#[cfg(test)]")
                    && lines
                        .peek()
                        .is_some_and(|n| n.trim_start().contains("mod "))
                {
                    break;
                }
                let without_comment = match t.find("//") {
                    Some(i) => &t[..i],
                    None => t,
                };
                code.push_str(without_comment);
                code.push('\n');
            }
            (p.strip_prefix(&src).unwrap().to_path_buf(), code)
        })
        .collect()
}

/// The top folder (or file) of a path under src/: `dkim/verify.rs` ->
/// `dkim`, `lib.rs` -> `lib`.
fn top(p: &Path) -> String {
    let first = p.components().next().unwrap().as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Folder -> folders it names as `crate::X`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, code) in sources() {
        let from = top(&path);
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != from {
                edges.entry(from.clone()).or_default().insert(name);
            }
        }
    }
    edges
}

#[test]
fn folders_import_each_other_without_a_circle() {
    let edges = imports();
    // Depth-first search for a back edge; the path names the circle.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut circle = path[i..].to_vec();
            circle.push(n.to_string());
            return Some(circle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(circle) = visit(n, &edges, &mut Vec::new(), &mut done) {
            panic!("circle of imports: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn only_the_cli_imports_the_writer() {
    for (from, to) in imports() {
        if to.contains("apply") {
            assert!(
                from == "cli" || from == "lib",
                "src/{from}/ imports crate::apply; only the CLI may"
            );
        }
    }
}

#[test]
fn only_apply_writes_to_the_system() {
    const WRITERS: &[&str] = &[
        "fs::rename",
        "fs::write",
        "remove_file",
        "remove_dir",
        "set_permissions",
        "hard_link",
        "fchown",
        "fchmod",
        "chown(",
        "File::create",
        "create_dir",
    ];
    for (path, code) in sources() {
        let allowed = path.starts_with("apply")
            // The engine binds, owns and removes its own socket.
            || path == Path::new("engine/server.rs")
            // `check --render-to DIR` and `docs --out DIR` write into the
            // directory they are given, never the managed system.
            || path == Path::new("cli/check.rs")
            || path == Path::new("cli/docs.rs");
        if allowed {
            continue;
        }
        for w in WRITERS {
            assert!(
                !code.contains(w),
                "src/{} calls {w}: only src/apply/ writes to the system",
                path.display()
            );
        }
    }
}
