//! A private Postfix on 127.0.0.1: config, queue and data directories in a
//! temporary root, no chroot, mail to localhost delivered into files by a
//! `pipe` transport. Stopped with `postfix -c DIR stop`, then its master
//! killed by the PID in its own pid file if it is still there.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::proc::{free_port, run_bounded, wait_until};
use super::{Run, TempRoot, which};

pub struct Postfix {
    config_dir: PathBuf,
    queue_dir: PathBuf,
    log: PathBuf,
    delivered: PathBuf,
    smtp_port: u16,
    started: bool,
}

impl Postfix {
    /// The admin's Postfix in `root`: its own main.cf and master.cf (smtpd
    /// on a free loopback port), Debian's meta files, an empty queue, the
    /// delivery script. The root becomes 0755: Postfix's processes (user
    /// postfix, pipe as nobody) walk into it. Nothing runs until
    /// [`Postfix::start`], so `dkimctl apply` can merge its milter
    /// settings first.
    pub fn prepare(root: &TempRoot) -> Postfix {
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = root.path();
        let smtp_port = free_port();
        let config_dir = root.join("etc/postfix");
        std::fs::create_dir_all(&config_dir).unwrap();
        root.write("etc/postfix/main.cf", &main_cf(dir));
        root.write("etc/postfix/master.cf", &master_cf(dir, smtp_port));
        for f in [
            "dynamicmaps.cf",
            "postfix-files",
            "postfix-script",
            "post-install",
        ] {
            let from = Path::new("/etc/postfix").join(f);
            if from.exists() {
                std::fs::copy(&from, config_dir.join(f)).unwrap();
            }
        }
        for d in ["dynamicmaps.cf.d", "postfix-files.d"] {
            let from = Path::new("/etc/postfix").join(d);
            std::fs::create_dir_all(config_dir.join(d)).unwrap();
            for e in std::fs::read_dir(&from).into_iter().flatten().flatten() {
                std::fs::copy(e.path(), config_dir.join(d).join(e.file_name())).unwrap();
            }
        }
        for d in ["spool", "log"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let delivered = dir.join("delivered");
        std::fs::create_dir_all(&delivered).unwrap();
        nix::unistd::chown(
            &delivered,
            nix::unistd::User::from_name("nobody")
                .unwrap()
                .map(|u| u.uid),
            None,
        )
        .unwrap();
        root.write(
            "deliver",
            &format!(
                "#!/bin/sh\n# pipe(8) hands the message on stdin; one file per queue id.\n\
                 umask 022\nout={}\ncat > \"$out/$1.tmp\" && mv \"$out/$1.tmp\" \"$out/$1.eml\"\n",
                delivered.display()
            ),
        );
        std::fs::set_permissions(root.join("deliver"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        Postfix {
            config_dir,
            queue_dir: dir.join("spool"),
            log: dir.join("log/postfix.log"),
            delivered,
            smtp_port,
            started: false,
        }
    }

    /// `postfix start`; returns once smtpd listens.
    pub fn start(&mut self) {
        self.started = true;
        let start = run_bounded(
            Command::new(which("postfix").unwrap())
                .arg("-c")
                .arg(&self.config_dir)
                .arg("start"),
            None,
            Duration::from_secs(60),
        );
        assert_eq!(
            start.code(),
            0,
            "postfix start failed:\n{}{}\n{}",
            start.stdout(),
            start.stderr(),
            self.log_text()
        );
        let port = self.smtp_port;
        assert!(
            wait_until(Duration::from_secs(20), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "smtpd does not listen on 127.0.0.1:{port}:\n{}",
            self.log_text()
        );
    }

    /// The port smtpd listens on (127.0.0.1).
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port
    }

    /// The maillog.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Postfix's `sendmail -i -f FROM TO` with the message in `input`.
    pub fn sendmail(&self, input: &Path, from: &str, to: &str) -> Run {
        run_bounded(
            Command::new(which("sendmail").unwrap())
                .arg("-C")
                .arg(&self.config_dir)
                .args(["-i", "-f", from, to]),
            Some(input),
            Duration::from_secs(60),
        )
    }

    /// The delivered messages' files, sorted.
    pub fn delivered(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.delivered)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        v.sort();
        v
    }

    fn master_pid(&self) -> Option<nix::unistd::Pid> {
        let text = std::fs::read_to_string(self.queue_dir.join("pid/master.pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        Some(nix::unistd::Pid::from_raw(pid))
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if !self.started {
            return;
        }
        let pid = self.master_pid();
        let _ = run_bounded(
            Command::new(which("postfix").unwrap())
                .arg("-c")
                .arg(&self.config_dir)
                .arg("stop"),
            None,
            Duration::from_secs(30),
        );
        if let Some(pid) = pid {
            let alive = || nix::sys::signal::kill(pid, None).is_ok();
            if !wait_until(Duration::from_secs(10), || !alive()) {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// main.cf before `dkimctl apply` merges the milter settings into it.
fn main_cf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "# A private instance for dkimctl's tests.\n\
         compatibility_level = 3.6\n\
         queue_directory = {d}/spool\n\
         data_directory = {d}/data\n\
         meta_directory = {d}/etc/postfix\n\
         mail_owner = postfix\n\
         setgid_group = postdrop\n\
         myhostname = mx.example.com\n\
         mydomain = example.com\n\
         myorigin = example.com\n\
         mydestination = localhost\n\
         inet_interfaces = 127.0.0.1\n\
         inet_protocols = ipv4\n\
         mynetworks = 127.0.0.0/8\n\
         local_transport = filedrop\n\
         local_recipient_maps =\n\
         alias_maps =\n\
         alias_database =\n\
         relayhost =\n\
         default_transport = error:no mail leaves this test instance\n\
         maillog_file = {d}/log/postfix.log\n\
         maillog_file_prefixes = {d}\n\
         biff = no\n"
    )
}

/// master.cf: smtpd on 127.0.0.1:PORT, nothing chrooted, local mail
/// written into `DIR/delivered` by a pipe transport running as nobody.
fn master_cf(dir: &Path, port: u16) -> String {
    let services = [
        format!("127.0.0.1:{port} inet n - n - - smtpd"),
        "pickup unix n - n 60 1 pickup".into(),
        "cleanup unix n - n - 0 cleanup".into(),
        "qmgr unix n - n 300 1 qmgr".into(),
        "rewrite unix - - n - - trivial-rewrite".into(),
        "bounce unix - - n - 0 bounce".into(),
        "defer unix - - n - 0 bounce".into(),
        "trace unix - - n - 0 bounce".into(),
        "verify unix - - n - 1 verify".into(),
        "flush unix n - n 1000? 0 flush".into(),
        "proxymap unix - - n - - proxymap".into(),
        "proxywrite unix - - n - 1 proxymap".into(),
        "showq unix n - n - - showq".into(),
        "error unix - - n - - error".into(),
        "retry unix - - n - - error".into(),
        "discard unix - - n - - discard".into(),
        "anvil unix - - n - 1 anvil".into(),
        "scache unix - - n - 1 scache".into(),
        "postlog unix-dgram n - n - 1 postlogd".into(),
        format!(
            "filedrop unix - n n - - pipe\n  user=nobody argv={}/deliver ${{queue_id}}",
            dir.display()
        ),
    ];
    services.join("\n") + "\n"
}
