//! Golden trees: each example renders to an expected tree of files plus a
//! manifest of owners and modes (tests/golden/<example>/). Re-bless with
//! BLESS=1 and review the diff in the commit.

use std::path::Path;

use crate::support::*;

const EXAMPLES: &[&str] = &[
    "single-domain",
    "multi-domain",
    "hardened",
    "bundled-dual",
    "hands-off",
];

/// `dkimctl render` of examples/NAME.toml into `out`, outside any root.
fn render_example(name: &str, out: &Path) -> Run {
    let config = repo().join(format!("examples/{name}.toml"));
    dkimctl(&[
        "--root",
        "/nonexistent-root",
        "--config",
        &config.display().to_string(),
        "render",
        "--out",
        &out.display().to_string(),
    ])
    .expect(0)
}

#[test]
fn examples_render_to_their_golden_trees() {
    for ex in EXAMPLES {
        let out = tempfile::tempdir().unwrap();
        let tree_dir = out.path().join("tree");
        let r = render_example(ex, &tree_dir);
        std::fs::write(tree_dir.join("MODES"), r.stdout()).unwrap();
        assert_tree(&tree_dir, &repo().join(format!("tests/golden/{ex}")));
    }
}

#[test]
fn rendering_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [&a, &b] {
        render_example("bundled-dual", d.path());
    }
    assert_eq!(tree(a.path()), tree(b.path()));
}

#[test]
fn rendered_files_name_dkimctl_and_the_source() {
    let out = tempfile::tempdir().unwrap();
    render_example("multi-domain", out.path());
    for (name, bytes) in tree(out.path()) {
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("managed by dkimctl") || text.contains("Managed by dkimctl"),
            "{name} lacks the header"
        );
    }
}
