//! The real OpenDKIM run from a tree dkimctl rendered or applied, with
//! the tree as / : a chroot in a private mount namespace with the host's
//! /usr bound read-only inside, so the absolute paths the rendered files
//! name resolve exactly as on a real host and nothing on the host is
//! touched.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::message::Msg;
use super::miltertest::Conversation;
use super::proc::{private_mounts, stop_child, wait_for_socket};

/// Waits until `inet:PORT@127.0.0.1` accepts connections (false when
/// `child` exited or after `limit`).
fn wait_for_port(milter: &str, child: &mut Child, limit: Duration) -> bool {
    let port: u16 = milter
        .strip_prefix("inet:")
        .and_then(|r| r.split('@').next())
        .and_then(|p| p.parse().ok())
        .expect("inet:PORT@HOST");
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Makes `tree` ready to be / for the host's opendkim: the directories it
/// runs in, /usr to bind the host's onto, the `lib`, `lib64`, `bin` and
/// `sbin` links into it, and the host's `host_files` (such as
/// `etc/ld.so.cache`) copied in.
pub fn prepare_chroot(tree: &Path, host_files: &[&str]) {
    for d in ["usr", "etc", "dev", "run/opendkim", "var/lib/opendkim"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    for (link, target) in [
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
    ] {
        let _ = std::os::unix::fs::symlink(target, tree.join(link));
    }
    for f in host_files {
        let _ = std::fs::copy(Path::new("/").join(f), tree.join(f));
    }
}

/// `/usr/sbin/opendkim ARGS` in `tree` (made ready by [`prepare_chroot`]),
/// as `userspec` (`UID:GID`) or root.
pub fn opendkim_in_chroot(tree: &Path, userspec: Option<&str>, args: &str) -> Command {
    let user = userspec.map_or(String::new(), |ids| format!("--userspec={ids} "));
    let script = format!(
        "mount --bind /usr {t}/usr && mount -o remount,bind,ro {t}/usr && \
         exec chroot {user}{t} /usr/sbin/opendkim {args}",
        t = tree.display()
    );
    private_mounts(&script)
}

/// The real OpenDKIM started from a tree dkimctl applied, as its unit
/// starts it: `opendkim -f -x /etc/opendkim/opendkim.conf` as the service
/// user, with the tree as / (a chroot in a private mount namespace; the
/// host's /usr bound read-only inside). Stopped by PID.
pub struct RenderedOpenDkim {
    child: Child,
    /// The socket in miltertest's notation, as seen from the host.
    milter: String,
    log: PathBuf,
}

impl RenderedOpenDkim {
    pub fn start(tree: &Path) -> RenderedOpenDkim {
        let conf_path = tree.join("etc/opendkim/opendkim.conf");
        let conf = std::fs::read_to_string(&conf_path).unwrap();
        let socket = conf
            .lines()
            .find_map(|l| l.strip_prefix("Socket"))
            .map(|s| s.trim().to_string())
            .expect("a Socket line");
        // A unix socket is reached through the tree; a TCP socket's fixed
        // port (8891) is moved to a free one, so that tests running at
        // the same time never meet on it. Nothing else is changed.
        let (milter, host_path) = match socket.strip_prefix("local:") {
            Some(path) => {
                let host_path = tree.join(path.trim_start_matches('/'));
                (format!("unix:{}", host_path.display()), Some(host_path))
            }
            None => {
                let port = super::proc::free_port();
                let moved = format!("inet:{port}@127.0.0.1");
                let text = conf.replace(
                    &format!("Socket                  {socket}"),
                    &format!("Socket                  {moved}"),
                );
                assert_ne!(text, conf, "the Socket line is rewritten");
                std::fs::write(&conf_path, text).unwrap();
                (moved, None)
            }
        };
        let passwd = std::fs::read_to_string(tree.join("etc/passwd")).unwrap();
        let ids = passwd
            .lines()
            .find(|l| l.starts_with("opendkim:"))
            .map(|l| l.split(':').skip(2).take(2).collect::<Vec<_>>().join(":"))
            .expect("apply created the opendkim user");
        prepare_chroot(tree, &["etc/ld.so.cache", "etc/nsswitch.conf", "etc/hosts"]);
        // What the unit's RuntimeDirectory= and StateDirectory= provide.
        let (uid, gid) = ids.split_once(':').unwrap();
        for d in ["run/opendkim", "var/lib/opendkim"] {
            nix::unistd::chown(
                &tree.join(d),
                Some(nix::unistd::Uid::from_raw(uid.parse().unwrap())),
                Some(nix::unistd::Gid::from_raw(gid.parse().unwrap())),
            )
            .unwrap();
            std::fs::set_permissions(tree.join(d), std::fs::Permissions::from_mode(0o750)).unwrap();
        }
        let log = tree.join("opendkim.log");
        let child = opendkim_in_chroot(tree, Some(&ids), "-f -x /etc/opendkim/opendkim.conf")
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(tree.join("opendkim.err")).unwrap())
            .spawn()
            .expect("start opendkim");
        let mut od = RenderedOpenDkim { child, milter, log };
        let up = match &host_path {
            Some(p) => wait_for_socket(p, &mut od.child, Duration::from_secs(20)),
            None => wait_for_port(&od.milter, &mut od.child, Duration::from_secs(20)),
        };
        assert!(
            up,
            "opendkim did not start from the rendered tree:\n{}",
            od.log_text()
        );
        od
    }

    pub fn log_text(&self) -> String {
        let err = self.log.with_file_name("opendkim.err");
        std::fs::read_to_string(&self.log).unwrap_or_default()
            + &std::fs::read_to_string(err).unwrap_or_default()
    }

    /// Has OpenDKIM sign `msg` for a client on 127.0.0.1 (an internal
    /// host); returns the reply and the message as delivered.
    pub fn sign(&self, msg: &Msg) -> (char, Msg, String) {
        let outcome = Conversation {
            milter: &self.milter,
            client_ip: "127.0.0.1",
            mail_macros: &[],
            msg,
            collect: "DKIM-Signature",
            protocol: None,
        }
        .run();
        let signed = outcome.inserted_into(msg, "DKIM-Signature");
        (outcome.reply, signed, outcome.transcript)
    }
}

impl Drop for RenderedOpenDkim {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(10));
    }
}
