//! Privilege: the engine never runs as root and holds no capabilities.

use std::os::unix::fs::PermissionsExt;

use super::{BODY, HEADERS, ed1_key, resolver, serve_refusing, signed_and_verifies, signing};
use crate::support::client::{LOCAL, one_message, runtime};
use crate::support::configs::Keyed;
use crate::support::proc::proc_status;
use crate::support::require_root;
use crate::support::serve::Serve;

/// As root: without `--allow-root` and with no service user to switch to,
/// serve refuses to run; with `service.user = "nobody"` it binds, then
/// runs as nobody with no capabilities (effective, permitted, ambient).
#[test]
fn engine_never_runs_as_root_and_holds_no_capabilities_after_binding() {
    if !require_root("switching users") {
        return;
    }
    let s = Keyed::new(&signing("sign"));
    let root = &s.root;
    signing("sign")
        .set("service.user", "dkimctl-no-such-user")
        .write_to(root);
    let r = serve_refusing(root, false);
    assert_ne!(r.code(), 0);
    assert!(
        r.stderr().contains("refusing to run as root"),
        "{}",
        r.stderr()
    );

    signing("sign")
        .set("service.user", "nobody")
        .set("service.group", "nogroup")
        .write_to(root);
    // nobody reads its key through the (0755) directories.
    for dir in [
        "",
        "etc",
        "etc/dkimctl",
        "etc/dkimctl/keys",
        "etc/dkimctl/keys/example.com",
    ] {
        std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    nix::unistd::chown(
        &ed1_key(root),
        Some(nix::unistd::Uid::from_raw(65534)),
        None,
    )
    .unwrap();
    let d = Serve::launch(root).allow_root(false).start();
    let status = |f: &str| proc_status(d.pid(), f).unwrap_or_default();
    let (uid, eff, prm, amb) = (
        status("Uid:"),
        status("CapEff:"),
        status("CapPrm:"),
        status("CapAmb:"),
    );
    eprintln!("privilege: Uid {uid}; CapEff {eff}; CapPrm {prm}; CapAmb {amb}");
    assert!(uid.split_whitespace().all(|u| u == "65534"), "Uid: {uid}");
    for (name, v) in [("CapEff", &eff), ("CapPrm", &prm), ("CapAmb", &amb)] {
        assert!(v.trim_start_matches('0').is_empty(), "{name}: {v}");
    }
    let rt = runtime();
    let (r, ls) = rt.block_on(one_message(d.addr(), None, LOCAL, HEADERS, BODY));
    assert!(
        rt.block_on(signed_and_verifies(&r, ls, &resolver(&s.records))),
        "{r:?}"
    );
    assert!(d.stop().success());
}
