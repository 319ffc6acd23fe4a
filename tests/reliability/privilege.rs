//! Privilege: the engine never runs as root and holds no capabilities;
//! no process can dump core.

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

/// Issue 15, item 14: no dkimctl process can leave a core file with key
/// material in it. `serve` as root (`--allow-root`, where a crash used to
/// write the Ed25519 seed to disk) runs with a core size limit of 0, and
/// `serve` started as an ordinary user is not dumpable: its /proc entries
/// belong to root, so neither a core file nor another process of that
/// user can read its memory.
#[test]
fn no_command_can_dump_core() {
    use std::os::unix::fs::MetadataExt;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use crate::support::proc::{stop_child, wait_for_socket};
    use crate::support::{TempRoot, bin, require_tool};

    if !require_root("switching users") || !require_tool("setpriv") {
        return;
    }
    let core_limit = |pid: i32| -> String {
        std::fs::read_to_string(format!("/proc/{pid}/limits"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .map(|l| {
                l.split_whitespace()
                    .skip(4)
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let s = Keyed::new(&signing("sign"));
    let d = Serve::start_unix(&s.root);
    let as_root = core_limit(d.pid());
    assert!(d.stop().success());

    let root = TempRoot::new(
        "[service]\nmode = \"verify\"\nauthserv_id = \"mx.example.net\"\n\
         [engine]\nnameservers = [\"127.0.0.1:9\"]\n[mta]\nkind = \"none\"\n",
    );
    for dir in ["", "etc", "etc/dkimctl", "run"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(
        root.join("etc/dkimctl/dkim.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    nix::unistd::chown(
        &root.join("run"),
        Some(nix::unistd::Uid::from_raw(65534)),
        None,
    )
    .unwrap();
    let socket = root.join("run/milter.sock");
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin())
        .args(["--root", &root.root_arg(), "serve", "--socket"])
        .arg(format!("unix:{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve as nobody");
    let up = wait_for_socket(&socket, &mut child, Duration::from_secs(30));
    let pid = i32::try_from(child.id()).unwrap();
    let status_owner = std::fs::metadata(format!("/proc/{pid}/status")).map(|m| m.uid());
    let uid = proc_status(pid, "Uid:").unwrap_or_default();
    let as_user = core_limit(pid);
    stop_child(&mut child, Duration::from_secs(10));
    eprintln!(
        "core dumps: serve as root, core limit {as_root:?}; as nobody (Uid {uid}), core limit {as_user:?}, /proc entries owned by uid {status_owner:?}"
    );
    assert_eq!(
        as_root, "0 0",
        "core file size (soft hard) of serve as root"
    );
    assert!(up, "serve as nobody did not start");
    assert!(uid.split_whitespace().all(|u| u == "65534"), "Uid: {uid}");
    assert_eq!(as_user, "0 0");
    assert_eq!(
        status_owner.ok(),
        Some(0),
        "serve as nobody is dumpable: its /proc entries belong to it"
    );
}
