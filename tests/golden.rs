//! Golden trees: each example renders to an expected tree of files plus a
//! manifest of owners and modes (tests/golden/<example>/). Re-bless with
//! BLESS=1 and review the diff in the commit.

use crate::support::*;

const EXAMPLES: &[&str] = &["single-domain", "multi-domain", "hardened", "bundled-dual"];

#[test]
fn examples_render_to_their_golden_trees() {
    for ex in EXAMPLES {
        let out = tempfile::tempdir().unwrap();
        let tree_dir = out.path().join("tree");
        let config = repo().join(format!("examples/{ex}.toml"));
        let r = dkimctl(&[
            "--root",
            "/nonexistent-root",
            "--config",
            &config.display().to_string(),
            "render",
            "--out",
            &tree_dir.display().to_string(),
        ])
        .expect(0);
        std::fs::write(tree_dir.join("MODES"), r.stdout()).unwrap();
        assert_tree(&tree_dir, &repo().join(format!("tests/golden/{ex}")));
    }
}

#[test]
fn rendering_is_deterministic() {
    let config = repo()
        .join("examples/bundled-dual.toml")
        .display()
        .to_string();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [&a, &b] {
        dkimctl(&[
            "--root",
            "/nonexistent-root",
            "--config",
            &config,
            "render",
            "--out",
            &d.path().display().to_string(),
        ])
        .expect(0);
    }
    assert_eq!(tree(a.path()), tree(b.path()));
}

#[test]
fn rendered_files_name_dkimctl_and_the_source() {
    let out = tempfile::tempdir().unwrap();
    let config = repo()
        .join("examples/multi-domain.toml")
        .display()
        .to_string();
    dkimctl(&[
        "--root",
        "/nonexistent-root",
        "--config",
        &config,
        "render",
        "--out",
        &out.path().display().to_string(),
    ])
    .expect(0);
    for (name, bytes) in tree(out.path()) {
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("managed by dkimctl") || text.contains("Managed by dkimctl"),
            "{name} lacks the header"
        );
    }
}
