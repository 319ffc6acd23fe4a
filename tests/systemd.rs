//! The rendered units under real systemd: a throw-away container booted by
//! systemd-nspawn on an overlay of / inside a private mount namespace
//! (nothing touches the host), where `dkimctl apply` lays out the setup,
//! systemd starts the engine as PID 1 would, and a probe unit inside the
//! container has a message signed over the socket (`dkimctl selftest`) and
//! records the sandbox the engine runs in.

use crate::support::proc::private_mounts;
use crate::support::*;

const PROBE: &str = r#"#!/bin/sh
# Runs inside the container, after the engine's units.
out=/results
/usr/local/bin/dkimctl selftest --local-keys > $out/selftest 2>&1
echo $? > $out/selftest.rc
pid=$(systemctl show -p MainPID --value dkimctl.service)
echo "$pid" > $out/pid
systemctl show -p ActiveState,Type,NRestarts dkimctl.service > $out/show
grep -E '^(CapEff|CapPrm|NoNewPrivs|Uid)' /proc/$pid/status > $out/status 2>&1
# The engine's view of / and /etc: read-only under ProtectSystem=strict.
awk '$5 == "/" || $5 == "/etc" { print $5, $6 }' /proc/$pid/mountinfo > $out/mounts 2>&1
journalctl -u dkimctl.service --no-pager -o cat > $out/journal 2>&1
# Structured fields of the per-message entries.
journalctl -u dkimctl.service --no-pager -o export | grep -aE '^(QUEUE_ID|RESULT|DOMAIN|SELECTOR)=' > $out/fields 2>&1
# The OpenMetrics endpoint, when configured.
curl -sf http://127.0.0.1:9177/metrics > $out/metrics 2>&1 || true
# An outside sender's message carrying a forged Authentication-Results that
# names this host (the engine's default authserv-id), when asked for.
hostname > $out/hostname
if [ -f $out/forged.lua ]; then
  sed "s/@HOST@/$(hostname)/" $out/forged.lua > /tmp/forged.lua
  miltertest -s /tmp/forged.lua > $out/forged 2>&1
  echo $? > $out/forged.rc
fi
# A test's own checks, when given.
if [ -f $out/extra.sh ]; then sh $out/extra.sh > $out/extra 2>&1; fi
systemctl poweroff
"#;

const PROBE_UNIT: &str = "[Unit]\nAfter=multi-user.target dkimctl.service dkimctl.socket\n\
[Service]\nType=oneshot\nExecStart=/bin/sh /results/probe.sh\n[Install]\nWantedBy=multi-user.target\n";

/// A milter conversation from an outside client (192.0.2.1) whose message
/// carries `Authentication-Results: <this host>; dkim=pass`, as a forger
/// would write it; prints "deleted" when the engine removes that header.
const FORGED_AR: &str = r#"local conn = mt.connect("unix:/run/dkimctl/dkimctl.sock")
if conn == nil then error("connect") end
mt.set_timeout(10)
local e = mt.negotiate(conn, nil, nil, nil)
if e ~= nil then error("negotiate: " .. e) end
mt.macro(conn, SMFIC_CONNECT, "j", "@HOST@", "{daemon_name}", "smtpd")
if mt.conninfo(conn, "outside.example", "192.0.2.1") ~= nil then error("conninfo") end
mt.macro(conn, SMFIC_MAIL, "i", "FORGED1")
if mt.mailfrom(conn, "<a@outside.example>") ~= nil then error("mailfrom") end
-- The engine negotiates SMFIP_NORCPT; miltertest refuses to send RCPT then.
if not mt.test_option(conn, SMFIP_NORCPT) and mt.rcptto(conn, "<b@example.com>") ~= nil then
  error("rcptto")
end
mt.header(conn, "From", "a@outside.example")
mt.header(conn, "Authentication-Results", "@HOST@; dkim=pass header.d=bank.example")
mt.header(conn, "Subject", "forged")
mt.eoh(conn)
mt.bodystring(conn, "hello\r\n")
if mt.eom(conn) ~= nil then error("eom") end
if mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results") then print("deleted") end
mt.disconnect(conn)
"#;

/// Boots a container whose /etc/dkimctl/dkim.toml is `config`, applied
/// with `dkimctl apply`; `enable` names the unit to enable. Returns the
/// results directory's files as (name, text).
fn boot(config: &str, enable: &str) -> std::collections::BTreeMap<String, String> {
    boot_with(config, enable, &[], "")
}

/// Like [`boot`], with extra files put into the results directory first
/// (`forged.lua` runs [`FORGED_AR`], `extra.sh` runs before poweroff,
/// its output in `extra`) and `setup`, shell lines run on the host after
/// apply with `$M` the container's root and `$R` the results directory.
fn boot_with(
    config: &str,
    enable: &str,
    extra: &[(&str, &str)],
    setup: &str,
) -> std::collections::BTreeMap<String, String> {
    // One container at a time: with --keep-unit each container's systemd
    // takes over the cgroup of the test process, which two cannot share.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display().to_string();
    std::fs::write(work.path().join("dkim.toml"), config).unwrap();
    std::fs::create_dir_all(work.path().join("results")).unwrap();
    std::fs::write(work.path().join("results/probe.sh"), PROBE).unwrap();
    for (name, text) in extra {
        std::fs::write(work.path().join("results").join(name), text).unwrap();
    }
    std::fs::write(work.path().join("probe.service"), PROBE_UNIT).unwrap();
    let wants = if enable.ends_with(".socket") {
        "sockets.target.wants"
    } else {
        "multi-user.target.wants"
    };
    let machine = format!(
        "dkimctl-test-{}-{}",
        std::process::id(),
        enable.replace('.', "-")
    );
    let script = format!(
        r#"set -e
B={w}/ovl
mkdir -p $B && mount -t tmpfs tmpfs $B
mkdir -p $B/upper $B/work $B/merged
mount -t overlay overlay -o lowerdir=/,upperdir=$B/upper,workdir=$B/work $B/merged
M=$B/merged
install -D -m 0755 {bin} $M/usr/local/bin/dkimctl
install -D -m 0644 {w}/dkim.toml $M/etc/dkimctl/dkim.toml
{bin} --root $M apply --yes --no-reload > {w}/results/apply 2>&1
R={w}/results
{setup}
mkdir -p $M/etc/systemd/system/{wants} $M/etc/systemd/system/multi-user.target.wants
ln -sf /etc/systemd/system/{enable} $M/etc/systemd/system/{wants}/{enable}
install -m 0644 {w}/probe.service $M/etc/systemd/system/probe.service
ln -sf /etc/systemd/system/probe.service $M/etc/systemd/system/multi-user.target.wants/probe.service
timeout 120 systemd-nspawn -q -D $M --machine={machine} --boot --register=no --keep-unit --bind={w}/results:/results > {w}/results/console 2>&1 || true
"#,
        bin = bin().display(),
    );
    let r = run(&mut private_mounts(&script));
    assert_eq!(
        r.code(),
        0,
        "container setup failed:\n{}{}",
        r.stdout(),
        r.stderr()
    );
    let mut files = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(work.path().join("results"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        files.insert(e.file_name().to_string_lossy().into_owned(), text);
    }
    files
}

fn can_boot() -> bool {
    require_tool("systemd-nspawn") && require_root("systemd-nspawn boots a container")
}

fn assert_sandboxed(r: &std::collections::BTreeMap<String, String>) {
    let dump = || format!("{r:#?}");
    assert_eq!(
        r.get("selftest.rc").map(|s| s.trim()),
        Some("0"),
        "selftest failed: {}",
        dump()
    );
    let status = &r["status"];
    assert!(
        status.contains("CapEff:\t0000000000000000"),
        "the engine holds capabilities: {}",
        dump()
    );
    assert!(
        status.contains("NoNewPrivs:\t1"),
        "NoNewPrivs not set: {}",
        dump()
    );
    assert!(
        !status.contains("Uid:\t0\t"),
        "the engine runs as root: {}",
        dump()
    );
    let mounts = &r["mounts"];
    assert!(
        mounts.lines().any(|l| l.starts_with("/ ro")),
        "/ is writable for the engine: {}",
        dump()
    );
}

#[test]
fn bundled_engine_boots_signs_and_is_sandboxed_under_systemd() {
    if !can_boot() {
        return;
    }
    let config = r#"
[service]
mode = "sign+verify"
socket = "unix:/run/dkimctl/dkimctl.sock"
binary = "/usr/local/bin/dkimctl"
authserv_id = "mail.example.com"
[engine]
nameservers = ["127.0.0.1:53"]
metrics = "127.0.0.1:9177"
[defaults]
algorithms = ["rsa-sha256", "ed25519-sha256"]
[[domain]]
name = "example.com"
[[domain.key]]
selector = "r1"
algorithm = "rsa-sha256"
created = "2026-01-01"
[[domain.key]]
selector = "e1"
algorithm = "ed25519-sha256"
created = "2026-01-01"
[mta]
kind = "none"
"#;
    let r = boot(config, "dkimctl.service");
    assert!(r["show"].contains("ActiveState=active"), "{r:#?}");
    assert!(r["show"].contains("Type=notify"), "{r:#?}");
    assert_sandboxed(&r);
    // The journal has the message's outcome as fields, not only as text.
    let fields = &r["fields"];
    for want in [
        "QUEUE_ID=SELFTEST",
        "RESULT=signed",
        "DOMAIN=example.com",
        "SELECTOR=r1,e1",
    ] {
        assert!(fields.contains(want), "journal lacks {want}: {r:#?}");
    }
    // Scraped with curl: the probe message is counted, keys have an age.
    let metrics = &r["metrics"];
    assert!(
        metrics.contains("dkimctl_messages_total{result=\"signed\",domain=\"example.com\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("dkimctl_eom_seconds_count 1"), "{metrics}");
    assert!(
        metrics.contains("dkimctl_key_age_days{domain=\"example.com\",selector=\"r1\"}"),
        "{metrics}"
    );
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
}

/// The default authserv-id is the real host name under the rendered unit
/// (ProcSubset=pid hides /proc/sys/kernel/hostname), so a forged
/// Authentication-Results naming this host is removed, not delivered.
/// Regression test for issue 14, point 2.
#[test]
fn forged_authentication_results_naming_the_host_is_removed_under_the_unit() {
    if !can_boot() || !require_tool("miltertest") {
        return;
    }
    let config = r#"
[service]
mode = "sign+verify"
socket = "unix:/run/dkimctl/dkimctl.sock"
binary = "/usr/local/bin/dkimctl"
[engine]
nameservers = ["127.0.0.1:53"]
[[domain]]
name = "example.com"
selector = "s1"
[mta]
kind = "none"
"#;
    let r = boot_with(config, "dkimctl.service", &[("forged.lua", FORGED_AR)], "");
    assert!(r["show"].contains("ActiveState=active"), "{r:#?}");
    assert_eq!(r.get("forged.rc").map(|s| s.trim()), Some("0"), "{r:#?}");
    assert!(
        r["forged"].contains("deleted"),
        "the forged A-R naming {} was kept: {r:#?}",
        r["hostname"].trim()
    );
}

#[test]
fn socket_activated_sign_only_engine_boots_and_signs() {
    if !can_boot() {
        return;
    }
    let config = r#"
[service]
mode = "sign"
socket_activation = true
socket = "unix:/run/dkimctl/dkimctl.sock"
binary = "/usr/local/bin/dkimctl"
[[domain]]
name = "example.com"
selector = "s1"
[mta]
kind = "none"
"#;
    let r = boot(config, "dkimctl.socket");
    assert_sandboxed(&r);
}

/// Waits (inside the container) until the rotation the timer started has
/// finished, then records what it did and how the engine took it.
const ROTATION_CHECK: &str = r#"out=/results
for i in $(seq 1 120); do
  state=$(systemctl show -p ActiveState --value dkimctl-rotate.service)
  ran=$(systemctl show -p ExecMainExitTimestampMonotonic --value dkimctl-rotate.service)
  if [ "$state" != activating ] && [ "$ran" != 0 ]; then break; fi
  sleep 0.5
done
systemctl show -p Result,ExecMainStatus,ActiveState dkimctl-rotate.service > $out/rotate.show
systemctl show -p LastTriggerUSecMonotonic dkimctl-rotate.timer > $out/timer.show
journalctl -u dkimctl-rotate.service --no-pager -o cat > $out/rotate.journal 2>&1
systemctl show -p ActiveState,NRestarts,MainPID dkimctl.service > $out/engine.show
journalctl -u dkimctl.service --no-pager -o cat > $out/engine.journal 2>&1
cp /etc/dkimctl/dkim.toml $out/dkim.toml.after
/usr/local/bin/dkimctl selftest --local-keys > $out/selftest.after 2>&1
echo $? > $out/selftest.after.rc
# The next day's run switches to the new key: the engine, reloaded again,
# reads it from its file (it is not among the unit's credentials yet).
/usr/local/bin/dkimctl rotate --auto --today $(date -u -d tomorrow +%F) > $out/rotate2 2>&1
echo $? > $out/rotate2.rc
/usr/local/bin/dkimctl selftest --local-keys > $out/selftest2 2>&1
echo $? > $out/selftest2.rc
systemctl show -p ActiveState,NRestarts dkimctl.service > $out/engine2.show
"#;

/// The rotation timer fires under real systemd (Persistent=true catches up
/// a missed day at boot), its service runs `rotate --auto` in its sandbox
/// with the TSIG key as a credential, publishes the new record to Knot on
/// the host, and reloads the engine without restarting it.
#[test]
fn rotation_timer_fires_publishes_and_reloads_the_engine() {
    use crate::support::knot::{Knot, TsigKey};
    if !can_boot() {
        return;
    }
    let key = TsigKey::random("dkimctl-container");
    let Some(knot) = Knot::updatable("", &key) else {
        return;
    };
    let ns = knot.ns();
    let config = format!(
        r#"
[service]
mode = "sign"
socket = "unix:/run/dkimctl/dkimctl.sock"
binary = "/usr/local/bin/dkimctl"
[[domain]]
name = "example.com"
[[domain.key]]
selector = "old"
created = "2020-01-01"
[mta]
kind = "none"
[engine]
nameservers = ["{ns}"]
[rotation]
every = "90d"
[dns]
update = "rfc2136"
server = "{ns}"
zone = "example.com"
tsig_key_file = "/etc/dkimctl/tsig.key"
authoritative = ["{ns}"]
"#
    );
    // The timer is enabled as apply would, fires at boot (its last run
    // was three days ago), without the random delay.
    let setup = r#"
install -D -m 0600 $R/tsig.key $M/etc/dkimctl/tsig.key
rm $R/tsig.key
mkdir -p $M/etc/systemd/system/timers.target.wants $M/etc/systemd/system/dkimctl-rotate.timer.d $M/var/lib/systemd/timers
ln -sf /etc/systemd/system/dkimctl-rotate.timer $M/etc/systemd/system/timers.target.wants/dkimctl-rotate.timer
printf '[Timer]\nRandomizedDelaySec=0\n' > $M/etc/systemd/system/dkimctl-rotate.timer.d/test.conf
touch -d '3 days ago' $M/var/lib/systemd/timers/stamp-dkimctl-rotate.timer
"#;
    let r = boot_with(
        &config,
        "dkimctl.service",
        &[("extra.sh", ROTATION_CHECK), ("tsig.key", &key.file_text())],
        setup,
    );
    let dump = || format!("{r:#?}\n--- knot\n{}", knot.log_text());
    assert!(r["apply"].contains("dkimctl-rotate.timer"), "{}", dump());
    let show = r.get("rotate.show").cloned().unwrap_or_default();
    assert!(
        show.contains("Result=success") && show.contains("ExecMainStatus=0"),
        "the rotation did not run cleanly: {}",
        dump()
    );
    let journal = &r["rotate.journal"];
    assert!(journal.contains("example.com: start:"), "{}", dump());
    assert!(
        // The old key's record and the new one's: Knot started empty.
        journal.contains("publish: 2 record(s) changed, 0 unchanged (rfc2136)"),
        "{}",
        dump()
    );
    assert!(
        journal.contains("ran systemctl reload dkimctl.service")
            && !journal.contains("restart dkimctl.service"),
        "{}",
        dump()
    );
    assert!(
        !journal.contains(&key.secret),
        "the TSIG secret is in the journal"
    );
    // The engine was reloaded, not restarted, and still signs.
    let engine = &r["engine.show"];
    assert!(
        engine.contains("ActiveState=active") && engine.contains("NRestarts=0"),
        "{}",
        dump()
    );
    assert!(
        r["engine.journal"].contains("reloaded configuration"),
        "{}",
        dump()
    );
    assert_eq!(
        r.get("selftest.after.rc").map(|s| s.trim()),
        Some("0"),
        "{}",
        dump()
    );
    // The pending key's record is at Knot, the one dkim.toml names.
    let after = &r["dkim.toml.after"];
    let selector = after
        .split("[[domain.key]]")
        .find(|t| t.contains("state = \"pending\""))
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("selector = ")))
        .map(|s| s.trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("no pending key in:\n{after}"));
    let value = knot.txt_value(&format!("{selector}._domainkey.example.com"));
    assert!(value.starts_with("v=DKIM1; k=rsa; p=MII"), "{value}");
    // The next day: switched, reloaded (not restarted), signing with it.
    assert_eq!(
        r.get("rotate2.rc").map(|s| s.trim()),
        Some("0"),
        "{}",
        dump()
    );
    assert!(r["rotate2"].contains("is now active"), "{}", dump());
    assert_eq!(
        r.get("selftest2.rc").map(|s| s.trim()),
        Some("0"),
        "{}",
        dump()
    );
    assert!(
        r["selftest2"].contains(&format!("{selector}._domainkey.example.com")),
        "{}",
        dump()
    );
    assert!(r["engine2.show"].contains("NRestarts=0"), "{}", dump());
}
