//! Races against root: a racing process running as the service user
//! (uid 65534, `nobody`) swaps entries of the directories it owns for
//! symbolic links to a victim, as fast as it can, while root runs `serve`,
//! `keys generate`, `rotate` and `apply`; afterwards the victim must be
//! exactly as it was. Also an image whose parent directories are links,
//! and a hard link in place of a key.
//!
//! The racer is bounded twice: by the test, which stops it by PID after a
//! fixed number of runs, and by its own deadline. Path-based code (chmod,
//! chown, open or rename by name after a check) loses these races within
//! a few dozen runs; descriptor-based code cannot lose them.
//!
//! See: issue 15, items 1, 2, 8 and 12.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::proc::{stop_child, unique};
use crate::support::serve::Serve;
use crate::support::{TempRoot, require_root, require_tool};

/// The uid and gid the racer runs as, and that owns the directories it
/// attacks.
const SERVICE_ID: u32 = 65534;

/// The longest a racer may run, whatever the test does.
const RACER_LIMIT: Duration = Duration::from_secs(120);

/// The racing helper (Python, as the service user). `watch` mode: whenever
/// the path is a socket, replace it by a link to the victim at once.
/// `toggle` mode: for each path, move the real entry aside and put a link
/// to its victim in its place, then put the real entry back, over and over.
/// It prints the number of swaps when stopped (SIGTERM) or at its deadline.
const RACER: &str = r#"
import os, signal, stat, sys, time
mode, deadline = sys.argv[1], time.time() + float(sys.argv[2])
pairs = [(sys.argv[i], sys.argv[i + 1]) for i in range(3, len(sys.argv), 2)]
swaps = 0
def done(*_):
    print(swaps, flush=True)
    os._exit(0)
signal.signal(signal.SIGTERM, done)
def link(victim, at):
    try:
        os.symlink(victim, at)
    except FileExistsError:
        pass
if mode == "watch":
    path, victim = pairs[0]
    tmp = path + ".link"
    link(victim, tmp)
    while time.time() < deadline:
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.rename(tmp, path)
                swaps += 1
                link(victim, tmp)
        except OSError:
            pass
else:
    while time.time() < deadline:
        for path, victim in pairs:
            real, tmp = path + ".real", path + ".link"
            link(victim, tmp)
            try:
                os.rename(path, real)
            except OSError:
                continue
            try:
                os.rename(tmp, path)
                swaps += 1
                os.rename(path, tmp)
            except OSError:
                pass
            try:
                os.rename(real, path)
            except OSError:
                pass
done()
"#;

/// A running racer.
struct Racer {
    child: Option<Child>,
    out: PathBuf,
}

impl Racer {
    /// Starts the racer as the service user in `mode` over (path, victim)
    /// pairs.
    fn start(mode: &str, pairs: &[(&Path, &Path)]) -> Racer {
        let out = std::env::temp_dir().join(format!(
            "dkimctl-racer-{}-{}.out",
            std::process::id(),
            unique()
        ));
        let mut cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={SERVICE_ID}"),
            &format!("--regid={SERVICE_ID}"),
            "--clear-groups",
            "--",
            "/usr/bin/python3",
            "-c",
            RACER,
            mode,
            &RACER_LIMIT.as_secs().to_string(),
        ]);
        for (path, victim) in pairs {
            cmd.arg(path).arg(victim);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("racer output"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the racer");
        Racer {
            child: Some(child),
            out,
        }
    }

    /// Stops the racer by its PID; the number of swaps it made.
    fn stop(mut self) -> u64 {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let _ = std::fs::remove_file(&self.out);
        text.trim().parse().unwrap_or(0)
    }
}

impl Drop for Racer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
        let _ = std::fs::remove_file(&self.out);
    }
}

/// Type, owner, group, mode and content of everything under `dir`
/// (without following links), by relative path.
fn snapshot(dir: &Path) -> BTreeMap<String, (u32, u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = std::fs::symlink_metadata(&d).expect("stat");
        let rel = d.strip_prefix(dir).unwrap().display().to_string();
        let content = if m.is_file() {
            std::fs::read(&d).unwrap_or_default()
        } else {
            Vec::new()
        };
        out.insert(rel, (m.uid(), m.gid(), m.mode(), content));
        if m.is_dir() {
            for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
                stack.push(e.path());
            }
        }
    }
    out
}

/// A root-owned victim under the temporary root: a 0755 directory holding
/// a 0600 file, neither of which dkimctl has any business touching.
fn victim(root: &TempRoot) -> (PathBuf, PathBuf) {
    let dir = root.join("victim");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, "root's secret\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, file)
}

/// The temporary root and the directories on the way to `dirs` made
/// traversable (0755), and `dirs` created and given to the service user,
/// as its key and socket directories are.
fn give_to_service_user(root: &TempRoot, dirs: &[&str]) {
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in dirs {
        let p = root.join(d);
        std::fs::create_dir_all(&p).unwrap();
        let mut anc = p.parent();
        while let Some(a) = anc {
            if !a.starts_with(root.path()) || a == root.path() {
                break;
            }
            std::fs::set_permissions(a, std::fs::Permissions::from_mode(0o755)).unwrap();
            anc = a.parent();
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let id = Some(nix::unistd::Uid::from_raw(SERVICE_ID));
        nix::unistd::chown(&p, id, Some(nix::unistd::Gid::from_raw(SERVICE_ID))).unwrap();
    }
}

/// The root's own account files, with `nobody` as the service user.
fn nobody_accounts(root: &TempRoot) {
    root.write(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    );
    root.write("etc/group", "root:x:0:\nnogroup:x:65534:\n");
}

/// Whether the racing tests can run: root (to switch users and own the
/// victim), setpriv and python3.
fn racing_possible() -> bool {
    require_root("races between root and the service user")
        && require_tool("setpriv")
        && require_tool("python3")
}

/// `serve` started as root binds its socket in a directory the service
/// user owns; the racer replaces the new socket by a link to a root-owned
/// 0600 file the moment it appears. Over 30 starts the file keeps its
/// owner and mode: the socket is born with its owner and mode, and nothing
/// is changed by name after bind.
#[test]
fn serve_as_root_never_chmods_or_chowns_a_link_swapped_in_for_its_socket() {
    if !racing_possible() {
        return;
    }
    const STARTS: usize = 30;
    let root = TempRoot::new(
        r#"[service]
engine = "bundled"
mode = "verify"
user = "nobody"
group = "nogroup"
socket_group = "nogroup"
authserv_id = "mx.example.net"
socket = "unix:/run/dkimctl/dkimctl.sock"
[engine]
nameservers = ["127.0.0.1:9"]
[mta]
kind = "none"
"#,
    );
    give_to_service_user(&root, &["run/dkimctl"]);
    let (victim_dir, victim_file) = victim(&root);
    let before = snapshot(&victim_dir);
    let socket = root.join("run/dkimctl/dkimctl.sock");
    let racer = Racer::start("watch", &[(&socket, &victim_file)]);
    let started = Instant::now();
    let mut owners = Vec::new();
    for _ in 0..STARTS {
        let _ = std::fs::remove_file(&socket);
        let d = Serve::launch(&root)
            .configured_socket()
            .allow_root(false)
            .start();
        if let Ok(m) = std::fs::symlink_metadata(&socket)
            && m.file_type().is_socket()
        {
            owners.push((m.uid(), m.gid(), m.mode() & 0o777));
        }
        assert!(d.stop().success());
        assert_eq!(
            snapshot(&victim_dir),
            before,
            "the victim changed: serve followed a link at its socket's name"
        );
    }
    let swaps = racer.stop();
    let elapsed = started.elapsed();
    // Without the racer: the socket as it was born.
    let _ = std::fs::remove_file(&socket);
    let d = Serve::launch(&root)
        .configured_socket()
        .allow_root(false)
        .start();
    let m = std::fs::symlink_metadata(&socket).expect("the socket");
    owners.push((m.uid(), m.gid(), m.mode() & 0o777));
    assert!(m.file_type().is_socket());
    assert!(d.stop().success());
    eprintln!(
        "serve socket race: {STARTS} starts in {:.1}s, {swaps} sockets replaced by a link; \
         socket owner/group/mode as born: {:?}",
        elapsed.as_secs_f64(),
        owners.last()
    );
    assert!(
        swaps > 0,
        "the racer never replaced the socket: no race ran"
    );
    assert!(
        owners.iter().all(|&o| o == (SERVICE_ID, SERVICE_ID, 0o770)),
        "the socket was not born owned by the service user, mode 0770: {owners:?}"
    );
}

/// An Ed25519 configuration whose service user is `nobody`; `extra` is
/// appended (more keys, rotation state).
fn nobody_keys(extra: &str) -> String {
    format!(
        r#"[service]
engine = "bundled"
mode = "sign"
user = "nobody"
group = "nogroup"
authserv_id = "mx.example.net"
socket = "inet:127.0.0.1:8891"
[defaults]
algorithms = ["ed25519-sha256"]
[[domain]]
name = "example.com"
{extra}
[mta]
kind = "none"
"#
    )
}

/// Runs `args` as root against `root` until `limit` or `runs` runs;
/// returns (runs, exit codes seen). Only 0 (done) and 2 (refused) are
/// acceptable exits.
fn run_repeatedly(
    root: &TempRoot,
    args: &[&str],
    runs: usize,
    limit: Duration,
) -> (usize, Vec<i32>) {
    let started = Instant::now();
    let mut codes = Vec::new();
    let mut n = 0;
    while n < runs && started.elapsed() < limit {
        let r = root.dkimctl(args);
        assert!(
            matches!(r.code(), 0 | 2),
            "{} exited {}:\n{}",
            r.cmd,
            r.code(),
            r.stderr()
        );
        if !codes.contains(&r.code()) {
            codes.push(r.code());
        }
        n += 1;
    }
    (n, codes)
}

/// `keys generate`, `keys generate --force` and `apply` as root while the
/// racer swaps the service user's domain key directory and the key file
/// for links to a root-owned directory and file: no key is ever written
/// into the victim directory, and the victim file keeps its content, owner
/// and mode.
#[test]
fn keys_and_apply_never_follow_links_the_service_user_swaps_in() {
    if !racing_possible() {
        return;
    }
    let root = TempRoot::new(&nobody_keys("selector = \"ed1\""));
    nobody_accounts(&root);
    give_to_service_user(&root, &["etc/dkimctl/keys", "etc/dkimctl/keys/example.com"]);
    root.dkimctl(&["apply", "--yes", "--no-reload"]).expect(0);
    let (victim_dir, victim_file) = victim(&root);
    let before = snapshot(&victim_dir);
    let domain_dir = root.join("etc/dkimctl/keys/example.com");
    let key = domain_dir.join("ed1.private");
    let racer = Racer::start(
        "toggle",
        &[(&domain_dir, &victim_dir), (&key, &victim_file)],
    );
    let mut report = Vec::new();
    for args in [
        &["keys", "generate", "--force"][..],
        &["keys", "generate"][..],
        &["apply", "--yes", "--no-reload"][..],
    ] {
        let (n, codes) = run_repeatedly(&root, args, 40, Duration::from_secs(20));
        assert_eq!(
            snapshot(&victim_dir),
            before,
            "`{}` changed the victim through a link",
            args.join(" ")
        );
        report.push(format!("{} x{n} (exits {codes:?})", args.join(" ")));
    }
    let swaps = racer.stop();
    eprintln!("key directory race: {}; {swaps} swaps", report.join(", "));
    assert!(swaps > 0, "the racer never swapped anything: no race ran");
    assert_eq!(snapshot(&victim_dir), before);
}

/// `rotate --continue` as root retiring a key while the racer swaps the
/// `retired/` archive directory and the retiring key file for links to a
/// root-owned directory and file: the victim directory is never chmod-ed
/// 0700 and nothing is moved into it.
#[test]
fn rotate_never_archives_into_a_link_the_service_user_swaps_in() {
    if !racing_possible() {
        return;
    }
    let toml = nobody_keys(
        r#"[[domain.key]]
selector = "old"
state = "retiring"
retire_after = "2026-01-01"
[[domain.key]]
selector = "new"
state = "active""#,
    );
    let root = TempRoot::new(&toml);
    nobody_accounts(&root);
    give_to_service_user(
        &root,
        &[
            "etc/dkimctl/keys",
            "etc/dkimctl/keys/example.com",
            "etc/dkimctl/keys/example.com/retired",
        ],
    );
    root.dkimctl(&["keys", "generate"]).expect(0);
    let domain_dir = root.join("etc/dkimctl/keys/example.com");
    let old_key = domain_dir.join("old.private");
    let pem = std::fs::read(&old_key).unwrap();
    let (victim_dir, victim_file) = victim(&root);
    let before = snapshot(&victim_dir);
    let retired = domain_dir.join("retired");
    let racer = Racer::start(
        "toggle",
        &[(&retired, &victim_dir), (&old_key, &victim_file)],
    );
    let started = Instant::now();
    let (mut runs, mut archived, mut refused) = (0, 0, 0);
    while runs < 40 && started.elapsed() < Duration::from_secs(30) {
        // The state before retirement: dkim.toml says retiring, the key
        // file is in place (the racer may hold it aside for a moment).
        root.write("etc/dkimctl/dkim.toml", &toml);
        let _ = std::fs::remove_file(retired.join("old.private"));
        // O_EXCL: never through a link the racer put there meanwhile.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&old_key)
        {
            f.write_all(&pem).unwrap();
        }
        let r = root.dkimctl(&[
            "rotate",
            "example.com",
            "--continue",
            "--today",
            "2026-02-01",
            "--nameserver",
            "127.0.0.1:9",
        ]);
        match r.code() {
            0 => archived += 1,
            2 => refused += 1,
            c => panic!("rotate exited {c}:\n{}\n{}", r.stdout(), r.stderr()),
        }
        runs += 1;
        assert_eq!(
            snapshot(&victim_dir),
            before,
            "rotate --continue changed the victim through a link:\n{}",
            r.stderr()
        );
    }
    let swaps = racer.stop();
    eprintln!(
        "retired/ race: rotate --continue x{runs} ({archived} archived, {refused} refused); {swaps} swaps"
    );
    assert!(swaps > 0, "the racer never swapped anything: no race ran");
}

/// `--root IMAGE` whose `/etc/systemd` is an absolute link to
/// `/srv/dkimctl-image-…/systemd` (as images carry) and whose
/// `/var/lib` is a relative link climbing far above the image: apply
/// writes the units and its state inside the image, where the links lead
/// when resolved inside it, and nothing on the host.
#[test]
fn apply_resolves_an_image_s_parent_links_inside_the_image() {
    let host_elsewhere = PathBuf::from(format!(
        "/srv/dkimctl-image-{}-{}",
        std::process::id(),
        unique()
    ));
    assert!(!host_elsewhere.exists());
    let root = TempRoot::new(&nobody_keys("selector = \"ed1\""));
    nobody_accounts(&root);
    std::os::unix::fs::symlink(host_elsewhere.join("systemd"), root.join("etc/systemd")).unwrap();
    std::fs::create_dir_all(root.join("var")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../../opt/image-lib",
        root.join("var/lib"),
    )
    .unwrap();
    let image_dir = root.join(host_elsewhere.to_str().unwrap());
    std::fs::create_dir_all(image_dir.join("systemd")).unwrap();
    std::fs::create_dir_all(root.join("opt/image-lib")).unwrap();
    root.dkimctl(&["apply", "--yes", "--no-reload"]).expect(0);
    assert!(
        !host_elsewhere.exists(),
        "apply wrote to the host's {}",
        host_elsewhere.display()
    );
    assert!(
        image_dir.join("systemd/system/dkimctl.service").is_file(),
        "the unit is not where the image's link leads inside the image"
    );
    assert!(
        root.join("opt/image-lib/dkimctl/applied.conf").is_file(),
        "the state file is not where the image's relative link leads inside the image"
    );
    assert!(!Path::new("/opt/image-lib/dkimctl/applied.conf").exists());
    root.dkimctl(&["plan"]).expect(0);
}

/// A hard link to a root-owned file in place of a key (what a service user
/// can plant where `fs.protected_hardlinks` is 0; root plants it here):
/// apply refuses to chown or chmod it, names it, and the linked file keeps
/// its owner and mode.
#[test]
fn apply_refuses_a_hard_linked_key() {
    if !require_root("chown to the service user") {
        return;
    }
    let root = TempRoot::new(&nobody_keys("selector = \"ed1\""));
    nobody_accounts(&root);
    root.dkimctl(&["apply", "--yes", "--no-reload"]).expect(0);
    let key = root.join("etc/dkimctl/keys/example.com/ed1.private");
    let (victim_dir, victim_file) = victim(&root);
    // A loadable key, so that only the link count is wrong.
    std::fs::copy(&key, &victim_file).unwrap();
    std::fs::set_permissions(&victim_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = snapshot(&victim_dir);
    std::fs::remove_file(&key).unwrap();
    std::fs::hard_link(&victim_file, &key).unwrap();
    let r = root.dkimctl(&["apply", "--yes", "--no-reload"]).expect(2);
    assert!(
        r.stderr().contains("hard links") && r.stderr().contains(&key.display().to_string()),
        "{}",
        r.stderr()
    );
    assert_eq!(
        snapshot(&victim_dir),
        before,
        "apply changed the linked file"
    );
}
