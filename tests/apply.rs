//! plan and apply against temporary roots: idempotency, drift, secrets,
//! nothing written on invalid input, and Postfix's own checks of the
//! merged main.cf and master.cf.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::*;

const BUNDLED: &str = r#"
[service]
engine = "bundled"
authserv_id = "mail.example.com"

[defaults]
algorithms = ["rsa-sha256", "ed25519-sha256"]

[[domain]]
name = "example.com"

[[domain.key]]
selector = "rsa1"
algorithm = "rsa-sha256"

[[domain.key]]
selector = "ed1"
algorithm = "ed25519-sha256"

[mta]
kind = "postfix"
"#;

#[test]
fn apply_then_plan_is_empty_and_second_apply_changes_nothing() {
    let root = TempRoot::new(BUNDLED);
    // An empty sandbox: everything is to be created.
    let plan = root.dkimctl(&["plan"]).expect(1);
    assert!(plan.stdout().contains("create"), "{}", plan.stdout());
    assert!(
        plan.stdout().contains("secret"),
        "keys must show as secret: {}",
        plan.stdout()
    );
    root.dkimctl(&["apply", "--yes"]).expect(0);
    // Keys exist with their final mode.
    let key = root.join("etc/dkimctl/keys/example.com/rsa1.private");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    // The service user was created in the root's own passwd.
    assert!(
        root.read("etc/passwd").contains("dkimctl:"),
        "{}",
        root.read("etc/passwd")
    );
    // Nothing left to do.
    root.dkimctl(&["plan"]).expect(0);
    let again = root.dkimctl(&["apply", "--yes"]).expect(0);
    assert!(
        again.stdout().contains("Nothing to change"),
        "{}",
        again.stdout()
    );
}

#[test]
fn plan_reports_a_corrupted_mode_and_apply_fixes_it() {
    let root = TempRoot::new(BUNDLED);
    root.dkimctl(&["apply", "--yes"]).expect(0);
    let unit = root.join("etc/systemd/system/dkimctl.service");
    std::fs::set_permissions(&unit, std::fs::Permissions::from_mode(0o666)).unwrap();
    let plan = root.dkimctl(&["plan"]).expect(1);
    assert!(
        plan.stdout().contains("0666") && plan.stdout().contains("0644"),
        "{}",
        plan.stdout()
    );
    let json = root.dkimctl(&["plan", "--json"]).expect(1);
    let v: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(v["changed"], true);
    root.dkimctl(&["apply", "--yes"]).expect(0);
    assert_eq!(
        std::fs::metadata(&unit).unwrap().permissions().mode() & 0o7777,
        0o644
    );
    root.dkimctl(&["plan"]).expect(0);
}

#[test]
fn a_hand_edit_shows_as_a_diff_and_keys_never_do() {
    let root = TempRoot::new(BUNDLED);
    root.dkimctl(&["apply", "--yes"]).expect(0);
    let unit = "etc/systemd/system/dkimctl.service";
    let edited = root
        .read(unit)
        .replace("NoNewPrivileges=yes", "NoNewPrivileges=no");
    root.write(unit, &edited);
    let plan = root.dkimctl(&["plan"]).expect(1);
    assert!(
        plan.stdout().contains("-NoNewPrivileges=no")
            && plan.stdout().contains("+NoNewPrivileges=yes"),
        "{}",
        plan.stdout()
    );
    // A key with the wrong mode: reported, its bytes never shown.
    let key = root.join("etc/dkimctl/keys/example.com/rsa1.private");
    let pem = std::fs::read_to_string(&key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let plan = root.dkimctl(&["plan", "--json"]).expect(1);
    let body: String = pem.lines().nth(1).unwrap().to_string();
    assert!(
        !plan.stdout().contains(&body) && !plan.stderr().contains(&body),
        "key material leaked into plan output"
    );
}

#[test]
fn invalid_configuration_writes_nothing() {
    let root =
        TempRoot::new(&BUNDLED.replace("ed25519-sha256\"]", "ed25519-sha256\", \"rsa-sha1\"]"));
    let r = root.dkimctl(&["apply", "--yes"]).expect(2);
    assert!(r.stderr().contains("rsa-sha1"), "{}", r.stderr());
    // Only the configuration itself is in the root.
    let files: Vec<String> = tree(root.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(files, vec!["etc/dkimctl/dkim.toml".to_string()]);
}

/// The Postfix side: the merged main.cf and master.cf pass Postfix's own
/// checks with no warnings, and everything the admin had is kept.
#[test]
fn postfix_accepts_the_merged_configuration() {
    if !require_tool("postconf") || !require_root("postfix check needs root") {
        return;
    }
    let root = TempRoot::new(&BUNDLED.replace(
        "kind = \"postfix\"",
        "kind = \"postfix\"\nservices = [\"smtpd\", \"non_smtpd\", \"submission\"]",
    ));
    let queue = root.join("var/spool/postfix");
    std::fs::create_dir_all(&queue).unwrap();
    // The admin's existing files: Debian's defaults plus a submission service.
    let main = format!(
        "# my own comment\nmyhostname = mail.example.com\ncompatibility_level = 3.6\nqueue_directory = {}\ndata_directory = {}\nsmtpd_milters = inet:127.0.0.1:11332\n",
        queue.display(),
        root.join("var/lib/postfix").display()
    );
    std::fs::create_dir_all(root.join("var/lib/postfix")).unwrap();
    root.write("etc/postfix/main.cf", &main);
    let master = std::fs::read_to_string("/usr/share/postfix/master.cf.dist")
        .or_else(|_| std::fs::read_to_string("/etc/postfix/master.cf"))
        .unwrap()
        + "submission inet n       -       y       -       -       smtpd\n  -o syslog_name=postfix/submission\n";
    root.write("etc/postfix/master.cf", &master);
    for f in ["dynamicmaps.cf", "postfix-files"] {
        let _ = std::fs::copy(
            format!("/etc/postfix/{f}"),
            root.join(&format!("etc/postfix/{f}")),
        );
    }
    root.dkimctl(&["apply", "--yes"]).expect(0);
    let merged = root.read("etc/postfix/main.cf");
    assert!(
        merged.starts_with("# my own comment\nmyhostname = mail.example.com\n"),
        "{merged}"
    );
    assert!(
        merged.contains("smtpd_milters = unix:/dkimctl/dkimctl.sock"),
        "{merged}"
    );
    assert!(
        merged.contains("inet:127.0.0.1:11332"),
        "the other milter must be kept: {merged}"
    );
    assert!(merged.contains("milter_protocol = 6"), "{merged}");
    let master_out = root.read("etc/postfix/master.cf");
    assert!(
        master_out.contains("  -o smtpd_milters=unix:/dkimctl/dkimctl.sock"),
        "{master_out}"
    );
    let dir = root.join("etc/postfix").display().to_string();
    let r = run(Command::new("postconf").args(["-c", &dir, "-n"]));
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let stderr = r.stderr();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .map(str::trim)
        .collect();
    assert!(
        warnings.is_empty(),
        "postconf warned:\n{}",
        warnings.join("\n")
    );
    let r = run(Command::new("postconf").args(["-c", &dir, "-M"]));
    assert!(!r.stderr().contains("warning"), "{}", r.stderr());
    // A second apply leaves the admin's files alone.
    root.dkimctl(&["plan"]).expect(0);
}

/// Switching engines keeps each selector's key (the one DNS publishes):
/// the new engine's key files are copies of the old engine's, never new
/// keys; the files dkimctl rendered for the old engine are removed (saved
/// under /var/backups/dkimctl first), and a file the admin wrote is not.
#[test]
fn switching_engines_keeps_the_published_keys_and_removes_the_old_engines_files() {
    let opendkim = BUNDLED
        .replace("engine = \"bundled\"", "engine = \"opendkim\"")
        .replace(
            "algorithms = [\"rsa-sha256\", \"ed25519-sha256\"]",
            "algorithms = [\"rsa-sha256\"]",
        )
        .replace(
            "\n[[domain.key]]\nselector = \"ed1\"\nalgorithm = \"ed25519-sha256\"\n",
            "",
        );
    let root = TempRoot::new(&opendkim);
    root.dkimctl(&["apply", "--yes"]).expect(0);
    let old_key = std::fs::read(root.join("etc/opendkim/keys/example.com/rsa1.private")).unwrap();
    let records = root.dkimctl(&["dns", "records"]).expect(0).stdout();
    // The admin's own TrustedHosts (no managed mark) is theirs to keep.
    root.write("etc/opendkim/TrustedHosts", "127.0.0.1\n10.0.0.0/8\n");

    let bundled = opendkim.replace("engine = \"opendkim\"", "engine = \"bundled\"");
    root.write("etc/dkimctl/dkim.toml", &bundled);
    let plan = root.dkimctl(&["plan"]).expect(1).stdout();
    assert!(
        plan.contains("copied from /etc/opendkim/keys/example.com/rsa1.private"),
        "{plan}"
    );
    assert!(
        plan.contains("remove    /etc/opendkim/opendkim.conf"),
        "{plan}"
    );
    assert!(
        !plan.contains("remove    /etc/opendkim/TrustedHosts"),
        "{plan}"
    );
    root.dkimctl(&["apply", "--yes"]).expect(0);
    let new_key = std::fs::read(root.join("etc/dkimctl/keys/example.com/rsa1.private")).unwrap();
    assert!(old_key == new_key, "the switch made a new key for rsa1");
    assert_eq!(
        root.dkimctl(&["dns", "records"]).expect(0).stdout(),
        records,
        "the records to publish changed with the engine"
    );
    assert!(!root.join("etc/opendkim/opendkim.conf").exists());
    assert!(!root.join("etc/systemd/system/opendkim.service").exists());
    assert!(
        root.join("var/backups/dkimctl/etc/opendkim/opendkim.conf")
            .exists()
    );
    assert_eq!(
        root.read("etc/opendkim/TrustedHosts"),
        "127.0.0.1\n10.0.0.0/8\n"
    );
    root.dkimctl(&["plan"]).expect(0);
}

/// Without `--yes`, apply and bootstrap ask on a terminal; with stdin not a
/// terminal (a script, `dkimctl apply | tee log`) they exit 2 and change
/// nothing, as `terraform apply` without `-auto-approve`.
#[test]
fn without_yes_and_without_a_terminal_nothing_is_written() {
    let root = TempRoot::new(BUNDLED);
    let before = tree(root.path());
    let r = root.dkimctl(&["apply"]).expect(2);
    assert!(r.stderr().contains("--yes"), "{}", r.stderr());
    assert_eq!(tree(root.path()), before, "apply wrote without --yes");

    let empty = TempRoot::empty();
    let r = empty
        .dkimctl(&["bootstrap", "--domain", "example.com", "--mta", "none"])
        .expect(2);
    assert!(r.stderr().contains("--yes"), "{}", r.stderr());
    assert!(
        tree(empty.path()).is_empty(),
        "bootstrap wrote without --yes"
    );
}

/// bootstrap shows the warnings `check` would give on the file it writes
/// (the admin has not seen it yet): here, a resolv.conf the hardened unit
/// cannot use.
#[test]
fn bootstrap_shows_what_check_warns_about() {
    let root = TempRoot::empty();
    root.write("etc/resolv.conf", "nameserver 192.0.2.53\n");
    let r = root
        .dkimctl(&[
            "bootstrap",
            "--domain",
            "example.com",
            "--mta",
            "none",
            "--yes",
        ])
        .expect(0);
    assert!(
        r.stderr()
            .contains("resolv.conf names remote name servers (192.0.2.53)"),
        "{}",
        r.stderr()
    );
    assert!(!r.stderr().contains("does not exist yet"), "{}", r.stderr());
}
