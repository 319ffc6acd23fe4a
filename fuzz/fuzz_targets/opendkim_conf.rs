//! The parsers behind `dkimctl audit` and `dkimctl import`: opendkim.conf,
//! its datasets (KeyTable, SigningTable, host lists), Postfix's main.cf
//! and master.cf, sendmail.mc and systemd units; then `import` end to end
//! on a temporary root built from the input.
//!
//! Input: a flag byte, then up to four texts separated by NUL: the
//! opendkim.conf, the KeyTable, the SigningTable and the TrustedHosts
//! file. With flag bit 0 set, lines naming those three files are put in
//! front of the opendkim.conf (so later lines of the input can override
//! them, as OpenDKIM takes the last value).
//!
//! Checked beyond "never panics": what `import` writes passes `dkimctl
//! check`'s parser and validator without errors (the import module
//! promises that its output "always passes `dkimctl check` without
//! errors").

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dkimctl::audit::{ImportError, import};
use dkimctl::config::{Source, parse};
use dkimctl::formats::{opendkim, postfix, sendmail, systemd};
use dkimctl::host::Root;
use libfuzzer_sys::fuzz_target;

const TABLES: &str = "KeyTable file:/etc/opendkim/KeyTable\n\
SigningTable refile:/etc/opendkim/SigningTable\n\
InternalHosts /etc/opendkim/TrustedHosts\n\
ExternalIgnoreList refile:/etc/opendkim/TrustedHosts\n\
Socket local:/var/spool/postfix/opendkim/opendkim.sock\n";

fn root() -> &'static PathBuf {
    static R: OnceLock<PathBuf> = OnceLock::new();
    R.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dkimctl-fuzz-import-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc/opendkim")).expect("root");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(4, '\0');
    let conf = parts.next().unwrap_or_default();
    let key_table = parts.next().unwrap_or_default();
    let signing_table = parts.next().unwrap_or_default();
    let hosts = parts.next().unwrap_or_default();

    // The pure parsers: the conf-shaped ones on the first text, the
    // table-shaped ones on the others (each unknown opendkim.conf option
    // costs a did-you-mean search, so feeding tables to parse_conf only
    // slows the target down).
    let p = Path::new("/etc/opendkim.conf");
    let mut findings = Vec::new();
    let _ = dkimctl::audit::opendkim::parse_conf(conf, p, &mut findings);
    let _ = opendkim::parse_bool(conf);
    let _ = opendkim::parse_c_int(conf);
    let main = postfix::MainCf::parse(conf.as_bytes());
    let _ = main.expand(conf);
    let _ = postfix::parse_master(conf.as_bytes());
    let _ = sendmail::parse_filters(conf.as_bytes());
    for entry in postfix::milter_entries(conf) {
        let _ = postfix::entry_parts(&entry);
    }
    let _ = systemd::parse_unit(conf, Path::new("/etc/systemd/system/opendkim.service"));
    let _ = systemd::split_command(conf);
    for t in [key_table, signing_table, hosts] {
        let _ = opendkim::parse_dataset(t, Some(Path::new("/etc/opendkim")));
        let _ = opendkim::parse_dataset(t, None);
        let lines = opendkim::parse_table(t, p);
        for l in &lines {
            let _ = opendkim::parse_key_line(l, Some(Path::new("/etc/opendkim")));
            let _ = opendkim::parse_signing_line(l);
        }
        let _ = dkimctl::audit::opendkim::host_entries(&lines, false, &mut findings, "InternalHosts");
        let _ = dkimctl::audit::opendkim::host_entries(&lines, true, &mut findings, "InternalHosts");
    }
    for f in &findings {
        let _ = f.to_json();
    }

    // Import end to end.
    let dir = root();
    let conf_text = if flags & 1 == 1 {
        format!("{TABLES}{conf}")
    } else {
        conf.to_string()
    };
    let write = |rel: &str, t: &str| std::fs::write(dir.join(rel), t).expect("write");
    write("etc/opendkim.conf", &conf_text);
    write("etc/opendkim/KeyTable", key_table);
    write("etc/opendkim/SigningTable", signing_table);
    write("etc/opendkim/TrustedHosts", hosts);
    let result = match import(&Root::new(dir), flags & 2 == 2) {
        Ok(r) => r,
        // import checks its own output and refuses what check would
        // refuse. A value the rendered files cannot hold (a socket path
        // with a space) is a fair refusal; any other is a value the writer
        // should have carried or named, so the target reports it.
        Err(ImportError::Refused { reasons }) => {
            let invalid: Vec<&String> = reasons
                .iter()
                .filter(|r| {
                    r.starts_with("the dkim.toml it would write does not pass check")
                        && !r.contains("cannot be written into the rendered files")
                })
                .collect();
            assert!(
                invalid.is_empty(),
                "import made a dkim.toml that check refuses: {invalid:?}\n--- opendkim.conf\n{conf_text}"
            );
            return;
        }
        Err(_) => return,
    };
    let source = Source {
        real: dir.join("etc/dkimctl/dkim.toml"),
        host: "/etc/dkimctl/dkim.toml".into(),
        display: "dkim.toml".into(),
    };
    let loaded = parse(&result.toml, &source);
    if loaded.diags.has_errors() {
        panic!(
            "import wrote a dkim.toml that check refuses:\n{}\n--- dkim.toml\n{}\n--- opendkim.conf\n{conf_text}",
            loaded
                .diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            result.toml
        );
    }
});
