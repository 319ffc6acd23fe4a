//! Regression tests for fuzz and review finds; each names the malformed
//! input.

use super::{serve_refusing, signing};
use crate::support::TempRoot;
use crate::support::configs::Keyed;

/// RFC 8601 §2.2: the authserv-id is a `value`, a token *or a quoted
/// string*; `"mx.example.net"; dkim=pass` claims our id as much as the
/// bare form does, and downstream filters that unquote it would trust it.
/// Malformed input: a quoted authserv-id.
#[test]
fn auth_results_with_quoted_authserv_id_is_recognised_as_forged() {
    use dkimctl::dkim::auth_results::claims_authserv_id;
    assert!(claims_authserv_id(
        b" \"mx.example.net\"; dkim=pass",
        "mx.example.net"
    ));
    assert!(claims_authserv_id(
        b" (c) \"MX.example.net\" 1; none",
        "mx.example.net"
    ));
}

/// `strtol` stops at the second sign: `--9223372036854775808` is not a
/// number to OpenDKIM; the audit's reader must say so rather than negate
/// `i64::MIN` (an overflow panic in debug builds). Malformed input: an
/// opendkim.conf integer with two minus signs.
#[test]
fn opendkim_conf_integer_with_two_signs_is_not_a_number() {
    use dkimctl::formats::opendkim::parse_c_int;
    assert_eq!(parse_c_int("--9223372036854775808"), None);
    assert_eq!(parse_c_int("--5"), None);
    assert_eq!(parse_c_int("+-5"), None);
    assert_eq!(parse_c_int("-5"), Some(-5));
}

/// A misspelt table (`[serviZe]`) is an error, but `config::parse`
/// still builds a model from the rest (so `check` can run its later
/// checks too); every command must refuse it rather than run with the
/// defaults the misspelt table was meant to override. Found by the
/// `config` fuzz target (a model despite an error diagnostic).
/// Malformed input: a misspelt table name.
#[test]
fn config_with_unknown_top_level_table_is_refused_by_every_command() {
    let root = Keyed::new(&signing("sign")).root;
    let text = signing("sign").text().replace("[service]", "[serviZe]");
    root.write("etc/dkimctl/dkim.toml", &text);
    let source = dkimctl::config::Source::resolve(&dkimctl::host::Root::new(root.path()), None);
    let loaded = dkimctl::config::parse(&text, &source);
    assert!(loaded.diags.has_errors());
    for args in [
        &["check"][..],
        &["plan"],
        &["apply", "--yes", "--no-reload"],
        &["dns", "records"],
    ] {
        let r = root.dkimctl(args);
        assert_ne!(r.code(), 0, "{args:?} accepted a misspelt table");
        assert!(
            r.stderr().contains("serviZe") || r.stderr().contains("error"),
            "{args:?}: {}",
            r.stderr()
        );
    }
    let r = serve_refusing(&root, true);
    let err = r.stderr();
    assert!(
        !r.out.status.success(),
        "serve started with a misspelt table"
    );
    assert!(err.contains("serviZe"), "{err}");
}

/// `dkimctl import` promises output that "always passes `dkimctl check`
/// without errors"; an opendkim.conf that signs nothing (no KeyTable, no
/// Domain/KeyFile) and has a Mode the importer does not understand (`Mode
/// }`) was imported as `mode = "sign+verify"` with no `[[domain]]`, which
/// check refuses (the understood modes are handled). Found by the
/// `opendkim_conf` fuzz target. Malformed input: an unknown Mode in an
/// opendkim.conf that names nothing to sign with.
#[test]
fn import_of_an_opendkim_conf_without_signing_domains_passes_check() {
    let mut failures = Vec::new();
    for mode in ["", "Mode v\n", "Mode sv\n", "Mode s\n", "Mode }\n"] {
        let root = TempRoot::empty();
        root.write(
            "etc/opendkim.conf",
            &format!(
                "Socket local:/var/spool/postfix/opendkim/opendkim.sock\nUserID opendkim\n{mode}"
            ),
        );
        let imported =
            dkimctl::audit::import(&dkimctl::host::Root::new(root.path()), false).expect("import");
        let source = dkimctl::config::Source {
            real: root.join("etc/dkimctl/dkim.toml"),
            host: "/etc/dkimctl/dkim.toml".into(),
            display: "dkim.toml".into(),
        };
        let loaded = dkimctl::config::parse(&imported.toml, &source);
        let errors: Vec<String> = loaded
            .diags
            .iter()
            .filter(|d| d.severity == dkimctl::report::Severity::Error)
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            failures.push(format!("{mode:?}: {errors:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// OpenDKIM's `MTA` list took a name with spaces (and bytes that are not
/// UTF-8); import carried it into `sign_daemon_names`, which check refuses
/// (opendkim.conf cannot carry the space back). Now the name is a loss,
/// named, and import never writes a dkim.toml check refuses. Found by the
/// `opendkim_conf` fuzz target. Malformed input: an `MTA` name with spaces
/// and 0x85 bytes.
#[test]
fn import_of_an_mta_name_with_spaces_names_it_instead_of_writing_it() {
    let root = TempRoot::empty();
    let mut conf =
        b"Socket local:/var/spool/postfix/opendkim/opendkim.sock\nMode sv\nMTA ".to_vec();
    conf.extend_from_slice(&[0x85; 40]);
    conf.extend_from_slice(b"      ORIGINATING\n");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/opendkim.conf"), &conf).unwrap();
    let run = root.dkimctl(&["import"]);
    assert_eq!(run.code(), 1, "{}{}", run.stdout(), run.stderr());
    assert!(
        run.stderr()
            .contains("signing for mail the MTA hands over as daemon"),
        "{}",
        run.stderr()
    );
    let run = root.dkimctl(&["import", "--lossy"]).expect(0);
    root.write("etc/dkimctl/dkim.toml", &run.stdout());
    root.dkimctl(&["check"]).expect(0);
}

/// An authserv-id of dots only matched no Authentication-Results header
/// once its final dot was ignored, so forged results claiming it were
/// kept; it is refused now. Found by the `auth_results` fuzz target.
/// Malformed input: `authserv_id = "."`.
#[test]
fn authserv_id_of_dots_only_is_refused() {
    let root = TempRoot::new(
        "[service]\nauthserv_id = \".\"\n[[domain]]\nname = \"example.com\"\nselector = \"s\"\n[mta]\nkind = \"none\"\n",
    );
    let run = root.dkimctl(&["check"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("invalid authserv-id"),
        "{}",
        run.stderr()
    );
}
