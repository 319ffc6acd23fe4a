//! The template registry: handlebars in strict mode with HTML escaping
//! off (these are configuration files, not pages; dotter does the same).
//! Templates are embedded at build time; a directory can override any of
//! them by file name.

use std::path::Path;

use handlebars::Handlebars;
use serde_json::Value;

use super::RenderError;

/// Every embedded template: (file name, text).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "opendkim.conf.hbs",
        include_str!("../../templates/opendkim.conf.hbs"),
    ),
    ("KeyTable.hbs", include_str!("../../templates/KeyTable.hbs")),
    (
        "SigningTable.hbs",
        include_str!("../../templates/SigningTable.hbs"),
    ),
    (
        "TrustedHosts.hbs",
        include_str!("../../templates/TrustedHosts.hbs"),
    ),
    (
        "sysusers.conf.hbs",
        include_str!("../../templates/sysusers.conf.hbs"),
    ),
    (
        "tmpfiles.conf.hbs",
        include_str!("../../templates/tmpfiles.conf.hbs"),
    ),
    (
        "applied.conf.hbs",
        include_str!("../../templates/applied.conf.hbs"),
    ),
    (
        "dkimctl.service.hbs",
        include_str!("../../units/dkimctl.service.hbs"),
    ),
    (
        "dkimctl.socket.hbs",
        include_str!("../../units/dkimctl.socket.hbs"),
    ),
    (
        "opendkim.service.hbs",
        include_str!("../../units/opendkim.service.hbs"),
    ),
    (
        "dkimctl-rotate.service.hbs",
        include_str!("../../units/dkimctl-rotate.service.hbs"),
    ),
    (
        "dkimctl-rotate.timer.hbs",
        include_str!("../../units/dkimctl-rotate.timer.hbs"),
    ),
];

/// The compiled templates.
pub struct Templates {
    hb: Handlebars<'static>,
}

impl Templates {
    /// The embedded templates.
    pub fn embedded() -> Templates {
        Templates::with_overrides(None).expect("embedded templates compile")
    }

    /// The embedded templates, with any file of the same name in `dir`
    /// taking precedence.
    pub fn with_overrides(dir: Option<&Path>) -> Result<Templates, RenderError> {
        let mut hb = Handlebars::new();
        // A missing variable is an error, not an empty string.
        hb.set_strict_mode(true);
        // Configuration files, not HTML.
        hb.register_escape_fn(handlebars::no_escape);
        for (name, text) in EMBEDDED {
            let text = match dir.map(|d| d.join(name)) {
                Some(p) if p.exists() => std::fs::read_to_string(&p).map_err(|e| RenderError {
                    template: p.display().to_string(),
                    message: e.to_string(),
                })?,
                _ => text.to_string(),
            };
            hb.register_template_string(name, text)
                .map_err(|e| RenderError {
                    template: name.to_string(),
                    message: e.to_string(),
                })?;
        }
        Ok(Templates { hb })
    }

    /// Renders one template; the result ends with exactly one newline.
    pub fn render(&self, name: &str, ctx: &Value) -> Result<String, RenderError> {
        let mut s = self.hb.render(name, ctx).map_err(|e| RenderError {
            template: name.to_string(),
            message: e.to_string(),
        })?;
        while s.ends_with("\n\n") {
            s.pop();
        }
        if !s.ends_with('\n') {
            s.push('\n');
        }
        Ok(s)
    }
}
