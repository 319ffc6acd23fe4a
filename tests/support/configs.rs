//! dkim.toml fixtures: the configurations several test files share live in
//! `tests/fixtures/configs/NAME.toml`; a test loads one by name and changes
//! what its scenario needs (`set`, `without`), keeping the rest as the
//! file says. Configurations that are the point of a test stay inline in
//! that test.

use std::fmt;
use std::path::PathBuf;

use toml_edit::{DocumentMut, Item, Table};

use super::TempRoot;
use super::knot::{Published, published};

/// A dkim.toml fixture, as loaded and then changed.
#[derive(Clone)]
pub struct Config {
    name: String,
    doc: DocumentMut,
}

/// `tests/fixtures/configs/NAME.toml`.
pub fn config(name: &str) -> Config {
    let path = super::repo()
        .join("tests/fixtures/configs")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no configuration fixture {}: {e}", path.display()));
    let doc = text
        .parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()));
    Config {
        name: name.to_string(),
        doc,
    }
}

/// A TOML array of strings, for [`Config::set`].
pub fn list<S: AsRef<str>>(items: &[S]) -> toml_edit::Array {
    items.iter().map(|s| s.as_ref()).collect()
}

impl Config {
    /// Sets the value at a dotted path (`"service.mode"`,
    /// `"engine.on_failure.dns_error"`), creating the tables on the way.
    pub fn set(mut self, path: &str, value: impl Into<toml_edit::Value>) -> Config {
        let (tables, key) = path.rsplit_once('.').unwrap_or(("", path));
        let mut table: &mut Table = self.doc.as_table_mut();
        for name in tables.split('.').filter(|n| !n.is_empty()) {
            table = table
                .entry(name)
                .or_insert_with(|| Item::Table(Table::new()))
                .as_table_mut()
                .unwrap_or_else(|| panic!("{name} is not a table in {}", self.name));
        }
        match table.get_mut(key) {
            // In place: the key keeps its comments.
            Some(item) => *item = Item::Value(value.into()),
            None => {
                table.insert(key, Item::Value(value.into()));
            }
        }
        self
    }

    /// Removes a top-level key or table (`"domain"`).
    pub fn without(mut self, key: &str) -> Config {
        assert!(
            self.doc.remove(key).is_some(),
            "{} has no {key} to remove",
            self.name
        );
        self
    }

    /// The dkim.toml text.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// A temporary root with this configuration as its dkim.toml.
    pub fn root(&self) -> TempRoot {
        TempRoot::new(&self.text())
    }

    /// Writes this configuration over the root's dkim.toml.
    pub fn write_to(&self, root: &TempRoot) {
        root.write("etc/dkimctl/dkim.toml", &self.text());
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.doc)
    }
}

/// A root whose keys `dkimctl keys generate` made, with the records
/// `dkimctl dns records --json` prints for them (what a resolver in the
/// test serves).
pub struct Keyed {
    pub root: TempRoot,
    pub records: Vec<Published>,
}

impl Keyed {
    pub fn new(config: &Config) -> Keyed {
        let root = config.root();
        root.dkimctl(&["keys", "generate"]).expect(0);
        let records = published(&root);
        Keyed { root, records }
    }
}

/// Where dkimctl keeps the key of `selector` for `domain`.
pub fn key_path(root: &TempRoot, domain: &str, selector: &str) -> PathBuf {
    root.join(&format!("etc/dkimctl/keys/{domain}/{selector}.private"))
}
