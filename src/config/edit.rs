//! Editing `dkim.toml` in place with `toml_edit`, so the admin's comments,
//! blank lines, key order and quoting survive a rotation.
//!
//! Only two edits exist: add `[[domain.key]]` tables to one domain
//! ([`add_keys`]) and set string fields of existing key tables
//! ([`set_fields`]). Both take and return the whole text; the caller
//! validates the result with [`crate::config::parse`] before anything is
//! written.
//!
//! Both the usual table form (`[[domain]]`, `[[domain.key]]`) and the
//! inline form (`domain = [{ name = ..., key = [{ ... }] }]`) are edited in
//! their own style.
//!
//! Implementation note: a table added with `toml_edit` has no position in
//! the document; when printing, `toml_edit` places it right after the table
//! visited before it, i.e. after the domain's last key table. That keeps
//! the new `[[domain.key]]` header under the right `[[domain]]` (a header
//! printed after the next `[[domain]]` would attach the key to that
//! domain).

use std::fmt;

use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, TableLike, Value};

use crate::config::validate::normalize_domain;

/// A key table to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// Fields in order, e.g. `selector`, `algorithm`, `state`, `created`.
    pub fields: Vec<(&'static str, String)>,
}

/// What an edit did besides its main job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditNotes {
    /// The domain's `selector = "x"` short form was turned into a
    /// `[[domain.key]]` table (the selector named here, state active).
    pub converted_selector: Option<String>,
}

/// Why the file could not be edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// The text is not TOML (it was valid when loaded; changed since?).
    Parse(String),
    /// No `[[domain]]` with this name.
    NoDomain(String),
    /// The domain has no key table with this selector.
    NoKey {
        /// The domain.
        domain: String,
        /// The selector.
        selector: String,
    },
    /// The file has a shape the editor does not handle.
    Shape(String),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Parse(why) => write!(f, "the file no longer parses as TOML: {why}"),
            EditError::NoDomain(d) => write!(f, "no [[domain]] named {d} in the file"),
            EditError::NoKey { domain, selector } => {
                write!(
                    f,
                    "no [[domain.key]] with selector \"{selector}\" under {domain}"
                )
            }
            EditError::Shape(what) => write!(f, "cannot edit the file: {what}"),
        }
    }
}

impl std::error::Error for EditError {}

/// Adds key tables to `domain`, converting a `selector = "x"` short form
/// first (the converted key keeps the selector line's comments).
pub fn add_keys(
    text: &str,
    domain: &str,
    keys: &[NewKey],
) -> Result<(String, EditNotes), EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Parse(e.message().trim().to_string()))?;
    let mut notes = EditNotes::default();
    {
        let (table, inline) = domain_table(&mut doc, domain)?;
        if table.contains_key("selector") {
            notes.converted_selector = Some(convert_shorthand(table, inline)?);
        }
        for key in keys {
            push_key(table, inline, &key.fields)?;
        }
    }
    Ok((doc.to_string(), notes))
}

/// Sets string fields of existing key tables of `domain`: each change is
/// `(selector, field, value)`. A changed value keeps its comments; a new
/// field is appended to its table.
pub fn set_fields(
    text: &str,
    domain: &str,
    changes: &[(String, &'static str, String)],
) -> Result<String, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Parse(e.message().trim().to_string()))?;
    {
        let (table, _) = domain_table(&mut doc, domain)?;
        for (selector, field, value) in changes {
            let key = key_table(table, selector).ok_or_else(|| EditError::NoKey {
                domain: domain.to_string(),
                selector: selector.clone(),
            })?;
            set_string(key, field, value);
        }
    }
    Ok(doc.to_string())
}

/// The domain's table (and whether it is an inline table).
fn domain_table<'a>(
    doc: &'a mut DocumentMut,
    domain: &str,
) -> Result<(&'a mut dyn TableLike, bool), EditError> {
    let matches = |t: &dyn TableLike| {
        t.get("name")
            .and_then(Item::as_str)
            .and_then(|n| normalize_domain(n).ok())
            .is_some_and(|n| n == domain)
    };
    let item = doc
        .get_mut("domain")
        .ok_or_else(|| EditError::NoDomain(domain.to_string()))?;
    match item {
        Item::ArrayOfTables(aot) => aot
            .iter_mut()
            .find(|t| matches(&**t))
            .map(|t| (t as &mut dyn TableLike, false))
            .ok_or_else(|| EditError::NoDomain(domain.to_string())),
        Item::Value(Value::Array(array)) => array
            .iter_mut()
            .filter_map(Value::as_inline_table_mut)
            .find(|t| matches(&**t))
            .map(|t| (t as &mut dyn TableLike, true))
            .ok_or_else(|| EditError::NoDomain(domain.to_string())),
        _ => Err(EditError::Shape(
            "`domain` is not an array of tables".into(),
        )),
    }
}

/// The key table of `selector` in a domain table.
fn key_table<'a>(domain: &'a mut dyn TableLike, selector: &str) -> Option<&'a mut dyn TableLike> {
    let is = |t: &dyn TableLike| {
        t.get("selector")
            .and_then(Item::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case(selector))
    };
    match domain.get_mut("key")? {
        Item::ArrayOfTables(aot) => aot
            .iter_mut()
            .find(|t| is(&**t))
            .map(|t| t as &mut dyn TableLike),
        Item::Value(Value::Array(array)) => array
            .iter_mut()
            .filter_map(Value::as_inline_table_mut)
            .find(|t| is(&**t))
            .map(|t| t as &mut dyn TableLike),
        _ => None,
    }
}

/// Turns `selector = "x"` into a first key table `{selector = "x", state =
/// "active"}`; returns the selector.
fn convert_shorthand(domain: &mut dyn TableLike, inline: bool) -> Result<String, EditError> {
    // The comment lines above `selector = ...` belong to it; they move
    // above the new table header.
    let comments = domain
        .key("selector")
        .and_then(|k| k.leaf_decor().prefix())
        .and_then(|p| p.as_str())
        .map(str::to_string)
        .filter(|p| p.trim_start().starts_with('#'));
    let item = domain
        .remove("selector")
        .ok_or_else(|| EditError::Shape("selector vanished".into()))?;
    let selector = item
        .as_str()
        .ok_or_else(|| EditError::Shape("`selector` is not a string".into()))?
        .to_string();
    if inline {
        let mut t = InlineTable::new();
        if let Item::Value(v) = item {
            t.insert("selector", v);
        }
        t.insert("state", Value::from("active"));
        push_inline(domain, t)
    } else {
        let mut t = Table::new();
        if let Some(c) = comments {
            t.decor_mut()
                .set_prefix(format!("\n{}", c.trim_start_matches('\n')));
        }
        t.insert("selector", item);
        t.insert("state", toml_edit::value("active"));
        push_table(domain, t)
    }?;
    Ok(selector)
}

fn push_key(
    domain: &mut dyn TableLike,
    inline: bool,
    fields: &[(&'static str, String)],
) -> Result<(), EditError> {
    let uses_inline = inline || matches!(domain.get("key"), Some(Item::Value(Value::Array(_))));
    if uses_inline {
        let mut t = InlineTable::new();
        for (k, v) in fields {
            t.insert(*k, Value::from(v.as_str()));
        }
        push_inline(domain, t)
    } else {
        let mut t = Table::new();
        for (k, v) in fields {
            t.insert(k, toml_edit::value(v.as_str()));
        }
        push_table(domain, t)
    }
}

fn push_table(domain: &mut dyn TableLike, table: Table) -> Result<(), EditError> {
    match domain.get_mut("key") {
        None => {
            let mut aot = ArrayOfTables::new();
            aot.push(table);
            domain.insert("key", Item::ArrayOfTables(aot));
            Ok(())
        }
        Some(Item::ArrayOfTables(aot)) => {
            aot.push(table);
            Ok(())
        }
        Some(_) => Err(EditError::Shape("`key` is not an array of tables".into())),
    }
}

fn push_inline(domain: &mut dyn TableLike, table: InlineTable) -> Result<(), EditError> {
    match domain.get_mut("key") {
        None => {
            let mut array = toml_edit::Array::new();
            array.push(table);
            domain.insert("key", Item::Value(Value::Array(array)));
            Ok(())
        }
        Some(Item::Value(Value::Array(array))) => {
            array.push(table);
            Ok(())
        }
        Some(Item::ArrayOfTables(aot)) => {
            aot.push(table.into_table());
            Ok(())
        }
        Some(_) => Err(EditError::Shape("`key` is not an array of tables".into())),
    }
}

/// Sets a string value, keeping the old value's comments and spacing.
fn set_string(table: &mut dyn TableLike, field: &str, value: &str) {
    match table.get_mut(field).and_then(Item::as_value_mut) {
        Some(v) => {
            let decor = v.decor().clone();
            *v = Value::from(value);
            *v.decor_mut() = decor;
        }
        None => {
            table.insert(field, toml_edit::value(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# Mail signing for our domains.
[service]
engine = "bundled"   # the bundled milter

# The main domain.
[[domain]]
name = "Example.COM"
# chosen in 2024
selector = "myselector"  # keep this comment
subdomains = true

[[domain]]
name = "example.org"

[[domain.key]]
selector = "a"   # the a key
state = "active"

[rotation]
grace = "7d"
"#;

    fn pending(sel: &str) -> NewKey {
        NewKey {
            fields: vec![
                ("selector", sel.to_string()),
                ("algorithm", "rsa-sha256".to_string()),
                ("state", "pending".to_string()),
                ("created", "2026-11-28".to_string()),
            ],
        }
    }

    #[test]
    fn converts_the_short_form_and_keeps_comments() {
        let (text, notes) = add_keys(FILE, "example.com", &[pending("20261128")]).unwrap();
        assert_eq!(notes.converted_selector.as_deref(), Some("myselector"));
        let want = r#"# Mail signing for our domains.
[service]
engine = "bundled"   # the bundled milter

# The main domain.
[[domain]]
name = "Example.COM"
subdomains = true

# chosen in 2024
[[domain.key]]
selector = "myselector"  # keep this comment
state = "active"

[[domain.key]]
selector = "20261128"
algorithm = "rsa-sha256"
state = "pending"
created = "2026-11-28"

[[domain]]
name = "example.org"

[[domain.key]]
selector = "a"   # the a key
state = "active"

[rotation]
grace = "7d"
"#;
        assert_eq!(text, want);
    }

    #[test]
    fn adds_under_the_right_domain_and_sets_fields() {
        let (text, notes) = add_keys(FILE, "example.org", &[pending("b")]).unwrap();
        assert_eq!(notes.converted_selector, None);
        let text = set_fields(
            &text,
            "example.org",
            &[
                ("a".into(), "state", "retiring".into()),
                ("a".into(), "retire_after", "2026-12-05".into()),
                ("b".into(), "state", "active".into()),
            ],
        )
        .unwrap();
        let tail = text.split("name = \"example.org\"").nth(1).unwrap();
        assert_eq!(
            tail,
            r#"

[[domain.key]]
selector = "a"   # the a key
state = "retiring"
retire_after = "2026-12-05"

[[domain.key]]
selector = "b"
algorithm = "rsa-sha256"
state = "active"
created = "2026-11-28"

[rotation]
grace = "7d"
"#
        );
        assert_eq!(
            set_fields(&text, "example.org", &[("zz".into(), "state", "x".into())]),
            Err(EditError::NoKey {
                domain: "example.org".into(),
                selector: "zz".into()
            })
        );
        assert_eq!(
            add_keys(FILE, "example.net", &[]).unwrap_err(),
            EditError::NoDomain("example.net".into())
        );
    }

    #[test]
    fn inline_domains_stay_inline() {
        let file = "domain = [{ name = \"example.com\", selector = \"s1\" }]\n";
        let (text, _) = add_keys(file, "example.com", &[pending("s2")]).unwrap();
        let doc: DocumentMut = text.parse().unwrap();
        let keys = doc["domain"][0]["key"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys.get(0).unwrap().as_inline_table().unwrap()["state"].as_str(),
            Some("active")
        );
        assert_eq!(
            keys.get(1).unwrap().as_inline_table().unwrap()["selector"].as_str(),
            Some("s2")
        );
        let text = set_fields(
            &text,
            "example.com",
            &[("s2".into(), "state", "active".into())],
        )
        .unwrap();
        assert!(text.contains("state = \"active\""), "{text}");
    }
}
