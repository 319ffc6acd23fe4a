//! Writing dkim.toml text: the commented file `dkimctl bootstrap` starts a
//! host with. (`dkimctl rotate` edits an existing file with toml_edit in
//! [`super::edit`]; `dkimctl import` writes its own in
//! [`mod@crate::audit::import`].)

use std::fmt::Write as _;

/// The engine and MTA a new dkim.toml is written for.
#[derive(Debug, Clone, Copy)]
pub struct Choices {
    /// `true` for OpenDKIM, `false` for the bundled engine.
    pub opendkim: bool,
    /// `postfix`, `sendmail` or `none`.
    pub mta: &'static str,
}

/// A commented dkim.toml for `domains` with safe defaults: RSA-2048 and
/// Ed25519 dual signing under date-based selectors.
pub fn initial_config(domains: &[String], date: &str, choices: Choices) -> String {
    let stamp: String = date.chars().filter(char::is_ascii_digit).collect();
    let mut s = String::new();
    s.push_str(
        "# dkim.toml — the whole DKIM setup of this host, written by `dkimctl bootstrap`.\n\
         # Edit it, then run `dkimctl plan` to see the change and `dkimctl apply` to make it.\n\
         # Reference: the README's \"dkim.toml reference\" section.\n\n",
    );
    s.push_str("[service]\n");
    if choices.opendkim {
        s.push_str("# OpenDKIM serves the milter; dkimctl renders its configuration.\nengine = \"opendkim\"\n");
    } else {
        s.push_str(
            "# The bundled engine (`dkimctl serve`) signs and verifies.\nengine = \"bundled\"\n",
        );
    }
    s.push_str("# Sign mail from trusted hosts and authenticated users; verify the rest.\nmode = \"sign+verify\"\n\n");
    if choices.opendkim {
        s.push_str(
            "[defaults]\n\
             # OpenDKIM signs every key with one algorithm, so RSA only: every\n\
             # receiver verifies it. For RSA + Ed25519 (RFC 8463) dual signing\n\
             # use engine = \"bundled\".\n\
             algorithms = [\"rsa-sha256\"]\n\
             canonicalization = \"relaxed/relaxed\"\n\
             rsa_bits = 2048\n\n",
        );
    } else {
        s.push_str(
            "[defaults]\n\
             # Two signatures per message: RSA for every receiver, Ed25519 (RFC 8463)\n\
             # for those that support it.\n\
             algorithms = [\"rsa-sha256\", \"ed25519-sha256\"]\n\
             canonicalization = \"relaxed/relaxed\"\n\
             rsa_bits = 2048\n\n",
        );
    }
    s.push_str(
        "[trusted]\n\
         # Hosts whose mail is signed. Add your own relays (addresses or CIDR ranges).\n\
         internal_hosts = [\"127.0.0.1\", \"::1\"]\n\n",
    );
    for d in domains {
        let _ = write!(
            s,
            "[[domain]]\nname = \"{d}\"\n\n\
             [[domain.key]]\nselector = \"{stamp}r\"\nalgorithm = \"rsa-sha256\"\ncreated = \"{date}\"\n\n"
        );
        if !choices.opendkim {
            let _ = write!(
                s,
                "[[domain.key]]\nselector = \"{stamp}e\"\nalgorithm = \"ed25519-sha256\"\ncreated = \"{date}\"\n\n"
            );
        }
    }
    let _ = write!(s, "[mta]\nkind = \"{}\"\n", choices.mta);
    if choices.mta == "postfix" {
        s.push_str("# smtpd: mail received over SMTP; non_smtpd: mail from the sendmail command.\nservices = [\"smtpd\", \"non_smtpd\"]\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_config_is_valid() {
        for opendkim in [false, true] {
            let text = initial_config(
                &["example.com".into(), "example.org".into()],
                "2026-11-28",
                Choices {
                    opendkim,
                    mta: "postfix",
                },
            );
            let source =
                crate::config::Source::resolve(&crate::host::Root::new("/nonexistent"), None);
            let loaded = crate::config::parse(&text, &source);
            assert!(!loaded.diags.has_errors(), "{:?}", loaded.diags.sorted());
            let c = loaded.config.unwrap();
            assert_eq!(c.domains.len(), 2);
            assert_eq!(c.domains[0].keys[0].selector, "20261128r");
            // OpenDKIM signs with one algorithm (issue 17, point 1).
            assert_eq!(c.domains[0].keys.len(), if opendkim { 1 } else { 2 });
        }
    }
}
