//! The raw layer: the TOML document walked table by table into plain
//! values that remember where they came from.
//!
//! We walk a `toml_edit` document by hand instead of deriving serde
//! `Deserialize`: serde stops at the first unknown key or wrong type, and
//! `dkimctl check` must report every problem in one run. Each table is read
//! through a [`TableReader`], which remembers which keys were asked for;
//! whatever remains is an unknown key, reported with a "did you mean".
//!
//! Nothing here judges values (that is [`super::validate`]); this layer
//! only checks the shape: which keys exist and what TOML type they have.

use std::ops::Range;

use toml_edit::{Item, TableLike, Value};

use super::diag::Diagnostics;
use crate::report::did_you_mean;

/// A value and the byte span of its text in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    /// The value.
    pub value: T,
    /// Byte range in the source text.
    pub span: Option<Range<usize>>,
}

impl<T> Sp<T> {
    /// The span, cloned (for diagnostics).
    pub fn at(&self) -> Option<Range<usize>> {
        self.span.clone()
    }
}

/// A `dkim.toml` walked into raw values.
#[derive(Debug, Default)]
pub struct RawConfig {
    /// `[service]`.
    pub service: RawService,
    /// `[defaults]`.
    pub defaults: RawDefaults,
    /// `[trusted]`.
    pub trusted: RawTrusted,
    /// `[[domain]]`, in file order.
    pub domains: Vec<RawDomain>,
    /// `[mta]`.
    pub mta: RawMta,
    /// `[engine]`.
    pub engine: RawEngine,
    /// `[rotation]`.
    pub rotation: RawRotation,
    /// `[dns]`.
    pub dns: RawDns,
}

/// A value that may be written as an integer or a string (umask, sizes).
#[derive(Debug, Clone, PartialEq)]
pub enum IntOrStr {
    /// An integer, in any TOML base.
    Int(i64),
    /// A string.
    Str(String),
}

/// `[service]`.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct RawService {
    pub engine: Option<Sp<String>>,
    pub user: Option<Sp<String>>,
    pub group: Option<Sp<String>>,
    pub socket: Option<Sp<String>>,
    pub socket_group: Option<Sp<String>>,
    pub allow_remote_socket: Option<Sp<bool>>,
    pub umask: Option<Sp<IntOrStr>>,
    pub mode: Option<Sp<String>>,
    pub authserv_id: Option<Sp<String>>,
    pub key_dir: Option<Sp<String>>,
    pub socket_activation: Option<Sp<bool>>,
    pub binary: Option<Sp<String>>,
}

/// DNS record flags (`[defaults.record]`, `record = {...}` of a domain).
#[derive(Debug, Default, Clone)]
#[allow(missing_docs)]
pub struct RawRecord {
    pub testing: Option<Sp<bool>>,
    pub service_email: Option<Sp<bool>>,
    pub hash_sha256: Option<Sp<bool>>,
}

/// `[defaults]`.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct RawDefaults {
    pub canonicalization: Option<Sp<String>>,
    pub algorithms: Option<Sp<Vec<Sp<String>>>>,
    pub rsa_bits: Option<Sp<i64>>,
    pub sign_headers: Option<Sp<Vec<Sp<String>>>>,
    pub oversign_headers: Option<Sp<Vec<Sp<String>>>>,
    pub expire: Option<Sp<String>>,
    pub record: RawRecord,
}

/// `[trusted]`.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct RawTrusted {
    pub internal_hosts: Option<Sp<Vec<Sp<String>>>>,
    pub external_ignore: Option<Sp<Vec<Sp<String>>>>,
}

/// `[[domain.key]]`.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct RawKey {
    pub span: Option<Range<usize>>,
    pub selector: Option<Sp<String>>,
    pub algorithm: Option<Sp<String>>,
    pub path: Option<Sp<String>>,
    pub rsa_bits: Option<Sp<i64>>,
    pub state: Option<Sp<String>>,
    pub created: Option<Sp<String>>,
    pub retire_after: Option<Sp<String>>,
    pub outside_key_dir: Option<Sp<bool>>,
}

/// `[[domain]]`.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct RawDomain {
    pub span: Option<Range<usize>>,
    pub name: Option<Sp<String>>,
    pub selector: Option<Sp<String>>,
    pub keys: Vec<RawKey>,
    pub algorithms: Option<Sp<Vec<Sp<String>>>>,
    pub subdomains: Option<Sp<bool>>,
    pub key_from: Option<Sp<String>>,
    pub record: RawRecord,
}

/// `[mta]`.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct RawMta {
    pub kind: Option<Sp<String>>,
    pub config_dir: Option<Sp<String>>,
    pub queue_directory: Option<Sp<String>>,
    pub chroot: Option<Sp<bool>>,
    pub services: Option<Sp<Vec<Sp<String>>>>,
    pub default_action: Option<Sp<String>>,
    pub sendmail_mc: Option<Sp<String>>,
}

/// `[engine.on_failure]`.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct RawFailure {
    pub no_key: Option<Sp<String>>,
    pub key_unreadable: Option<Sp<String>>,
    pub sign_error: Option<Sp<String>>,
    pub dns_error: Option<Sp<String>>,
    pub bad_signature: Option<Sp<String>>,
    pub no_signature: Option<Sp<String>>,
    pub bad_from: Option<Sp<String>>,
    pub oversized: Option<Sp<String>>,
}

/// `[engine]`.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct RawEngine {
    pub sign_daemon_names: Option<Sp<Vec<Sp<String>>>>,
    pub max_connections: Option<Sp<i64>>,
    pub idle_timeout: Option<Sp<String>>,
    pub dns_timeout: Option<Sp<String>>,
    pub nameservers: Option<Sp<Vec<Sp<String>>>>,
    pub verify_max_size: Option<Sp<IntOrStr>>,
    pub max_header_size: Option<Sp<IntOrStr>>,
    pub require_safe_keys: Option<Sp<bool>>,
    pub metrics: Option<Sp<String>>,
    pub on_failure: RawFailure,
}

/// `[rotation]`.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct RawRotation {
    pub grace: Option<Sp<String>>,
    pub retired_keys: Option<Sp<String>>,
    pub every: Option<Sp<String>>,
    pub selector: Option<Sp<String>>,
    pub publish_retired: Option<Sp<String>>,
    pub publish_retired_url: Option<Sp<String>>,
}

/// `[dns]`.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct RawDns {
    pub span: Option<Range<usize>>,
    pub update: Option<Sp<String>>,
    pub server: Option<Sp<String>>,
    pub zone: Option<Sp<String>>,
    pub tsig_key_file: Option<Sp<String>>,
    pub zonefile: Option<Sp<String>>,
    pub reload: Option<Sp<Vec<Sp<String>>>>,
    pub ttl: Option<Sp<String>>,
    pub authoritative: Option<Sp<Vec<Sp<String>>>>,
}

/// Parses the TOML text and walks it. A syntax error is reported and
/// yields `None`: nothing after it can be trusted.
pub fn read(source: &str, diags: &mut Diagnostics) -> Option<RawConfig> {
    let doc = match toml_edit::ImDocument::parse(source) {
        Ok(doc) => doc,
        Err(e) => {
            let msg = e.message().trim().to_string();
            diags.error(e.span(), format!("invalid TOML: {msg}"));
            return None;
        }
    };
    let mut top = TableReader::new(doc.as_table(), "the top level", None);
    let mut raw = RawConfig::default();

    if let Some(mut t) = top.table(diags, "service") {
        let s = &mut raw.service;
        s.engine = t.string(diags, "engine");
        s.user = t.string(diags, "user");
        s.group = t.string(diags, "group");
        s.socket = t.string(diags, "socket");
        s.socket_group = t.string(diags, "socket_group");
        s.allow_remote_socket = t.boolean(diags, "allow_remote_socket");
        s.umask = t.int_or_string(diags, "umask");
        s.mode = t.string(diags, "mode");
        s.authserv_id = t.string(diags, "authserv_id");
        s.key_dir = t.string(diags, "key_dir");
        s.socket_activation = t.boolean(diags, "socket_activation");
        s.binary = t.string(diags, "binary");
        t.finish(diags);
    }
    if let Some(mut t) = top.table(diags, "defaults") {
        let d = &mut raw.defaults;
        d.canonicalization = t.string(diags, "canonicalization");
        d.algorithms = t.strings(diags, "algorithms");
        d.rsa_bits = t.integer(diags, "rsa_bits");
        d.sign_headers = t.strings(diags, "sign_headers");
        d.oversign_headers = t.strings(diags, "oversign_headers");
        d.expire = t.string(diags, "expire");
        d.record = read_record(&mut t, diags);
        t.finish(diags);
    }
    if let Some(mut t) = top.table(diags, "trusted") {
        raw.trusted.internal_hosts = t.strings(diags, "internal_hosts");
        raw.trusted.external_ignore = t.strings(diags, "external_ignore");
        t.finish(diags);
    }
    for mut t in top.tables(diags, "domain") {
        let mut d = RawDomain {
            span: t.span.clone(),
            ..RawDomain::default()
        };
        d.name = t.string(diags, "name");
        d.selector = t.string(diags, "selector");
        d.algorithms = t.strings(diags, "algorithms");
        d.subdomains = t.boolean(diags, "subdomains");
        d.key_from = t.string(diags, "key_from");
        d.record = read_record(&mut t, diags);
        for mut k in t.tables(diags, "key") {
            let key = RawKey {
                span: k.span.clone(),
                selector: k.string(diags, "selector"),
                algorithm: k.string(diags, "algorithm"),
                path: k.string(diags, "path"),
                rsa_bits: k.integer(diags, "rsa_bits"),
                state: k.string(diags, "state"),
                created: k.string(diags, "created"),
                retire_after: k.string(diags, "retire_after"),
                outside_key_dir: k.boolean(diags, "outside_key_dir"),
            };
            k.finish(diags);
            d.keys.push(key);
        }
        t.finish(diags);
        raw.domains.push(d);
    }
    if let Some(mut t) = top.table(diags, "mta") {
        let m = &mut raw.mta;
        m.kind = t.string(diags, "kind");
        m.config_dir = t.string(diags, "config_dir");
        m.queue_directory = t.string(diags, "queue_directory");
        m.chroot = t.boolean(diags, "chroot");
        m.services = t.strings(diags, "services");
        m.default_action = t.string(diags, "default_action");
        m.sendmail_mc = t.string(diags, "sendmail_mc");
        t.finish(diags);
    }
    if let Some(mut t) = top.table(diags, "engine") {
        let e = &mut raw.engine;
        e.sign_daemon_names = t.strings(diags, "sign_daemon_names");
        e.max_connections = t.integer(diags, "max_connections");
        e.idle_timeout = t.string(diags, "idle_timeout");
        e.dns_timeout = t.string(diags, "dns_timeout");
        e.nameservers = t.strings(diags, "nameservers");
        e.verify_max_size = t.int_or_string(diags, "verify_max_size");
        e.max_header_size = t.int_or_string(diags, "max_header_size");
        e.require_safe_keys = t.boolean(diags, "require_safe_keys");
        e.metrics = t.string(diags, "metrics");
        if let Some(mut f) = t.table(diags, "on_failure") {
            let o = &mut e.on_failure;
            o.no_key = f.string(diags, "no_key");
            o.key_unreadable = f.string(diags, "key_unreadable");
            o.sign_error = f.string(diags, "sign_error");
            o.dns_error = f.string(diags, "dns_error");
            o.bad_signature = f.string(diags, "bad_signature");
            o.no_signature = f.string(diags, "no_signature");
            o.bad_from = f.string(diags, "bad_from");
            o.oversized = f.string(diags, "oversized");
            f.finish(diags);
        }
        t.finish(diags);
    }
    if let Some(mut t) = top.table(diags, "rotation") {
        raw.rotation.grace = t.string(diags, "grace");
        raw.rotation.retired_keys = t.string(diags, "retired_keys");
        raw.rotation.every = t.string(diags, "every");
        raw.rotation.selector = t.string(diags, "selector");
        raw.rotation.publish_retired = t.string(diags, "publish_retired");
        raw.rotation.publish_retired_url = t.string(diags, "publish_retired_url");
        t.finish(diags);
    }
    if let Some(mut t) = top.table(diags, "dns") {
        let d = &mut raw.dns;
        d.span = t.span.clone();
        d.update = t.string(diags, "update");
        d.server = t.string(diags, "server");
        d.zone = t.string(diags, "zone");
        d.tsig_key_file = t.string(diags, "tsig_key_file");
        d.zonefile = t.string(diags, "zonefile");
        d.reload = t.strings(diags, "reload");
        d.ttl = t.string(diags, "ttl");
        d.authoritative = t.strings(diags, "authoritative");
        t.finish(diags);
    }
    top.finish(diags);
    Some(raw)
}

fn read_record(t: &mut TableReader<'_>, diags: &mut Diagnostics) -> RawRecord {
    let Some(mut r) = t.table(diags, "record") else {
        return RawRecord::default();
    };
    let rec = RawRecord {
        testing: r.boolean(diags, "testing"),
        service_email: r.boolean(diags, "service_email"),
        hash_sha256: r.boolean(diags, "hash_sha256"),
    };
    r.finish(diags);
    rec
}

/// Reads one table, remembering which keys were asked for.
pub struct TableReader<'a> {
    table: &'a dyn TableLike,
    /// How the table is named in messages (`[service]`, `[[domain]]`).
    name: String,
    /// Span of the table header, if any.
    pub span: Option<Range<usize>>,
    asked: Vec<&'static str>,
}

impl<'a> TableReader<'a> {
    fn new(table: &'a dyn TableLike, name: &str, span: Option<Range<usize>>) -> Self {
        TableReader {
            table,
            name: name.to_string(),
            span,
            asked: Vec::new(),
        }
    }

    /// The item under `key`, with the key's span and the value's span.
    fn item(&mut self, key: &'static str) -> Option<(&'a Item, Option<Range<usize>>)> {
        self.asked.push(key);
        let (k, item) = self.table.get_key_value(key)?;
        let span = item.span().or_else(|| k.span());
        Some((item, span))
    }

    fn type_error(
        &self,
        diags: &mut Diagnostics,
        key: &str,
        span: Option<Range<usize>>,
        want: &str,
        item: &Item,
    ) {
        diags.error(
            span,
            format!(
                "`{key}` in {} must be {want}, found {}",
                self.name,
                type_name(item)
            ),
        );
    }

    /// A string value.
    pub fn string(&mut self, diags: &mut Diagnostics, key: &'static str) -> Option<Sp<String>> {
        let (item, span) = self.item(key)?;
        match item.as_str() {
            Some(s) => Some(Sp {
                value: s.to_string(),
                span,
            }),
            None => {
                self.type_error(diags, key, span, "a string", item);
                None
            }
        }
    }

    /// A boolean value.
    pub fn boolean(&mut self, diags: &mut Diagnostics, key: &'static str) -> Option<Sp<bool>> {
        let (item, span) = self.item(key)?;
        match item.as_bool() {
            Some(b) => Some(Sp { value: b, span }),
            None => {
                self.type_error(diags, key, span, "true or false", item);
                None
            }
        }
    }

    /// An integer value.
    pub fn integer(&mut self, diags: &mut Diagnostics, key: &'static str) -> Option<Sp<i64>> {
        let (item, span) = self.item(key)?;
        match item.as_integer() {
            Some(i) => Some(Sp { value: i, span }),
            None => {
                self.type_error(diags, key, span, "an integer", item);
                None
            }
        }
    }

    /// An integer or a string (`umask = 0o007` or `umask = "007"`).
    pub fn int_or_string(
        &mut self,
        diags: &mut Diagnostics,
        key: &'static str,
    ) -> Option<Sp<IntOrStr>> {
        let (item, span) = self.item(key)?;
        if let Some(i) = item.as_integer() {
            return Some(Sp {
                value: IntOrStr::Int(i),
                span,
            });
        }
        if let Some(s) = item.as_str() {
            return Some(Sp {
                value: IntOrStr::Str(s.to_string()),
                span,
            });
        }
        self.type_error(diags, key, span, "an integer or a string", item);
        None
    }

    /// An array of strings; each element keeps its own span.
    pub fn strings(
        &mut self,
        diags: &mut Diagnostics,
        key: &'static str,
    ) -> Option<Sp<Vec<Sp<String>>>> {
        let (item, span) = self.item(key)?;
        let Some(array) = item.as_array() else {
            self.type_error(diags, key, span, "an array of strings", item);
            return None;
        };
        let mut out = Vec::new();
        for v in array.iter() {
            match v.as_str() {
                Some(s) => out.push(Sp {
                    value: s.to_string(),
                    span: v.span(),
                }),
                None => diags.error(
                    v.span(),
                    format!(
                        "`{key}` in {} must hold strings, found {}",
                        self.name,
                        value_type_name(v)
                    ),
                ),
            }
        }
        Some(Sp { value: out, span })
    }

    /// A sub-table (`[a.b]` or `b = { ... }`).
    pub fn table(&mut self, diags: &mut Diagnostics, key: &'static str) -> Option<TableReader<'a>> {
        let (item, span) = self.item(key)?;
        let name = format!("[{key}]");
        match item.as_table_like() {
            Some(t) if !item.is_array_of_tables() => Some(TableReader::new(t, &name, span)),
            _ => {
                self.type_error(diags, key, span, "a table", item);
                None
            }
        }
    }

    /// An array of tables (`[[domain]]`), or an array of inline tables.
    pub fn tables(&mut self, diags: &mut Diagnostics, key: &'static str) -> Vec<TableReader<'a>> {
        let Some((item, span)) = self.item(key) else {
            return Vec::new();
        };
        let name = format!("[[{key}]]");
        if let Some(aot) = item.as_array_of_tables() {
            return aot
                .iter()
                .map(|t| TableReader::new(t as &dyn TableLike, &name, t.span()))
                .collect();
        }
        if let Some(array) = item.as_array() {
            let mut out = Vec::new();
            for v in array.iter() {
                match v.as_inline_table() {
                    Some(t) => out.push(TableReader::new(t as &dyn TableLike, &name, t.span())),
                    None => diags.error(
                        v.span(),
                        format!("`{key}` must hold tables, found {}", value_type_name(v)),
                    ),
                }
            }
            return out;
        }
        self.type_error(diags, key, span, "an array of tables", item);
        Vec::new()
    }

    /// Reports every key that nobody asked for.
    pub fn finish(self, diags: &mut Diagnostics) {
        for (key, _) in self.table.iter() {
            if self.asked.contains(&key) {
                continue;
            }
            let span = self.table.get_key_value(key).and_then(|(k, _)| k.span());
            let msg = format!("unknown key `{key}` in {}", self.name);
            match did_you_mean(key, &self.asked) {
                Some(s) => diags.error_help(span, msg, format!("did you mean `{s}`?")),
                None => {
                    diags.error_help(span, msg, format!("known keys: {}", self.asked.join(", ")))
                }
            }
        }
    }
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => value_type_name(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}
