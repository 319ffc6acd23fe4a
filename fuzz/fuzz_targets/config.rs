//! The dkim.toml loader and validator on arbitrary text, and rendering of
//! whatever validates.
//!
//! Checked beyond "never panics":
//! - a file without error diagnostics gives a model (the reverse, a
//!   model despite errors, is tested by the regression test
//!   `config_with_unknown_top_level_table_is_refused_by_every_command`; every caller
//!   checks `has_errors` as well);
//! - every diagnostic renders (line and column arithmetic on odd text:
//!   tabs, CR, multi-byte characters, spans at the end of the file);
//! - a valid configuration renders without error (templates are strict:
//!   a missing variable would be an error here).

#![no_main]

use std::sync::OnceLock;

use dkimctl::config::{Source, parse};
use dkimctl::render::{render, templates::Templates};
use libfuzzer_sys::fuzz_target;

fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(Templates::embedded)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Source {
        real: "/nonexistent/dkim.toml".into(),
        host: "/etc/dkimctl/dkim.toml".into(),
        display: "dkim.toml".into(),
    };
    let loaded = parse(text, &source);
    for d in loaded.diags.iter() {
        let _ = d.to_string();
    }
    assert!(
        loaded.config.is_some() || loaded.diags.has_errors(),
        "no model and no error: {:?}",
        loaded
            .diags
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    if let Some(config) = &loaded.config {
        if let Err(e) = render(config, templates()) {
            panic!("a valid configuration does not render: {e}\n--- dkim.toml\n{text}");
        }
    }
});
