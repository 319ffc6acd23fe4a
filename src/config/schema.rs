//! The JSON Schema of `dkim.toml` (draft-07, as taplo and the Even Better
//! TOML editor extension read it): every table and key, its type, allowed
//! words, default and meaning, taken from the README's reference.
//!
//! Editors validate and complete `dkim.toml` with it when the file starts
//! with `#:schema ../dkim.schema.json` (a path relative to the file) or the
//! installed copy, `#:schema file:///usr/share/dkimctl/dkim.schema.json`.
//! The committed `dkim.schema.json` at the top of the repository is this
//! function's output (`dkimctl schema`); a test fails when it is stale.
//!
//! The schema can never drift from the reader: the tests feed
//! [`crate::config::parse`] an unknown key in every table and compare the
//! "known keys" it lists with the schema's properties, a value of every
//! wrong type to every key, and every allowed word (and one that is not)
//! to every key with a closed set of values.

use serde_json::{Map, Value, json};

use crate::config::validate::DEFAULT_SIGN_HEADERS;

/// The `$schema` dialect the schema is written in.
pub const DIALECT: &str = "http://json-schema.org/draft-07/schema#";

/// The file name of the committed schema (at the repository's top level)
/// and of the installed copy (`/usr/share/dkimctl/`).
pub const FILE_NAME: &str = "dkim.schema.json";

/// The JSON Schema of `dkim.toml`.
pub fn json_schema() -> Value {
    let mut root = table(
        "dkimctl's declarative DKIM configuration (dkim.toml(5)). Every table and key is \
         optional unless marked; unknown keys are errors.",
        vec![
            ("service", service()),
            ("defaults", defaults()),
            ("trusted", trusted()),
            ("domain", domains()),
            ("mta", mta()),
            ("engine", engine()),
            ("rotation", rotation()),
            ("dns", dns()),
        ],
    );
    let obj = root.as_object_mut().expect("an object");
    obj.insert("$schema".into(), json!(DIALECT));
    obj.insert("title".into(), json!("dkim.toml"));
    root
}

/// The schema as the committed file holds it: pretty JSON and a newline.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("JSON");
    text.push('\n');
    text
}

fn service() -> Value {
    table(
        "[service]: the milter that signs and verifies.",
        vec![
            (
                "engine",
                choice(
                    &["bundled", "opendkim"],
                    Some("bundled"),
                    "\"bundled\" (`dkimctl serve`) or \"opendkim\".",
                ),
            ),
            (
                "user",
                string(
                    "System user the milter runs as (never root). Default: \"dkimctl\" with the \
                     bundled engine, \"opendkim\" with OpenDKIM.",
                ),
            ),
            (
                "group",
                string(
                    "Its group (default: the user's name); the MTA's user is added to it to \
                     reach the socket.",
                ),
            ),
            (
                "socket",
                string(
                    "Where the milter listens: unix:/path, local:/path, /path, inet:PORT@HOST \
                     (OpenDKIM) or inet:HOST:PORT (Postfix); both notations are normalised. \
                     Default: with Postfix chrooted, \
                     /var/spool/postfix/dkimctl/dkimctl.sock (seen by smtpd and cleanup as \
                     unix:/dkimctl/dkimctl.sock); otherwise /run/dkimctl/dkimctl.sock \
                     (/run/opendkim/opendkim.sock for OpenDKIM).",
                ),
            ),
            (
                "allow_remote_socket",
                boolean(false, "Permit a TCP socket on a non-loopback address."),
            ),
            (
                "socket_group",
                string(
                    "Group of the socket's directory. Default: the MTA's group (\"postfix\" with Postfix), else the service's group (Sendmail talks to milters as root).",
                ),
            ),
            (
                "umask",
                typed(
                    &["string", "integer"],
                    Some(json!("007")),
                    "Octal umask of the socket, as a string (\"007\") or an integer (0o007); \
                     007 lets owner and group use the socket.",
                ),
            ),
            (
                "mode",
                choice(
                    &["sign+verify", "sign", "verify"],
                    Some("sign+verify"),
                    "What the milter does: \"sign\", \"verify\" or \"sign+verify\".",
                ),
            ),
            (
                "authserv_id",
                string(
                    "authserv-id of the Authentication-Results header field (RFC 8601). \
                     Default: the host name.",
                ),
            ),
            (
                "key_dir",
                string(
                    "Directory of the keys, one folder per domain below it. Default: \
                     /etc/dkimctl/keys with the bundled engine, /etc/opendkim/keys with \
                     OpenDKIM.",
                ),
            ),
            (
                "socket_activation",
                boolean(
                    false,
                    "Bundled engine: systemd creates the socket (dkimctl.socket).",
                ),
            ),
            (
                "binary",
                string_default("/usr/bin/dkimctl", "The binary the systemd units run."),
            ),
        ],
    )
}

/// The DNS record flags, `[defaults.record]` and a domain's `record`.
fn record(what: &str) -> Value {
    table(
        what,
        vec![
            (
                "testing",
                boolean(false, "Publish t=y: receivers treat signatures as a test."),
            ),
            (
                "service_email",
                boolean(false, "Publish s=email: the key signs only email."),
            ),
            (
                "hash_sha256",
                boolean(
                    false,
                    "Publish h=sha256: the key is used only with SHA-256.",
                ),
            ),
        ],
    )
}

fn algorithms(default: Option<&[&str]>, what: &str) -> Value {
    let mut v = json!({
        "type": "array",
        "description": what,
        "items": {
            "type": "string",
            "enum": ["rsa-sha256", "ed25519-sha256", "rsa", "ed25519"],
        },
        "minItems": 1,
        "uniqueItems": true,
    });
    if let Some(d) = default {
        v["default"] = json!(d);
    }
    v
}

fn rsa_bits(what: &str, default: Option<i64>) -> Value {
    let mut v = json!({
        "type": "integer",
        "description": what,
        "enum": [2048, 3072, 4096],
    });
    if let Some(d) = default {
        v["default"] = json!(d);
    }
    v
}

fn defaults() -> Value {
    table(
        "[defaults]: how mail is signed.",
        vec![
            (
                "canonicalization",
                choice(
                    &[
                        "relaxed/relaxed",
                        "relaxed/simple",
                        "simple/relaxed",
                        "simple/simple",
                        "relaxed",
                        "simple",
                    ],
                    Some("relaxed/relaxed"),
                    "HEADER/BODY, each simple or relaxed (e.g. the ArchWiki page's \
                     \"relaxed/simple\"); a single word applies to the header, with a simple \
                     body, as OpenDKIM reads it.",
                ),
            ),
            (
                "algorithms",
                algorithms(
                    Some(&["rsa-sha256"]),
                    "Signing algorithms; add \"ed25519-sha256\" for dual signing (RFC 8463). \
                     \"rsa\" and \"ed25519\" are accepted as short forms.",
                ),
            ),
            (
                "rsa_bits",
                rsa_bits("Size of new RSA keys: 2048, 3072 or 4096.", Some(2048)),
            ),
            (
                "sign_headers",
                strings(
                    Some(DEFAULT_SIGN_HEADERS),
                    "Header fields to sign (default: RFC 6376 §5.4.1's list); must include From.",
                ),
            ),
            (
                "oversign_headers",
                strings(
                    Some(&["From"]),
                    "Header fields signed once more than present, so none can be added; must \
                     include From, and each must be signed too.",
                ),
            ),
            (
                "expire",
                string(
                    "Signature lifetime (x=), a number and a unit: \"30s\", \"5m\", \"12h\", \
                     \"7d\", \"2w\". Default: none.",
                ),
            ),
            (
                "record",
                record(
                    "Flags of the published DNS records (all false by default): testing → t=y, \
                     service_email → s=email, hash_sha256 → h=sha256.",
                ),
            ),
        ],
    )
}

fn trusted() -> Value {
    table(
        "[trusted]: which hosts' mail is signed and which is not verified.",
        vec![
            (
                "internal_hosts",
                strings(
                    Some(&["127.0.0.1", "::1"]),
                    "Hosts whose mail is signed: addresses, CIDR ranges, host names \
                     (OpenDKIM's InternalHosts).",
                ),
            ),
            (
                "external_ignore",
                strings(
                    None,
                    "Hosts whose mail is not verified. Default: the same as internal_hosts.",
                ),
            ),
        ],
    )
}

fn key() -> Value {
    let mut t = table(
        "[[domain.key]]: one key of the domain.",
        vec![
            (
                "selector",
                string("The selector (required): the key's record is SELECTOR._domainkey.DOMAIN."),
            ),
            (
                "algorithm",
                choice(
                    &["rsa-sha256", "ed25519-sha256", "rsa", "ed25519"],
                    None,
                    "The key's algorithm. Default: the domain's single algorithm (required \
                     when the domain signs with two).",
                ),
            ),
            (
                "path",
                string(
                    "The private key file. Default: KEY_DIR/DOMAIN/SELECTOR.private. It must \
                     lie below key_dir unless outside_key_dir is true.",
                ),
            ),
            (
                "outside_key_dir",
                boolean(
                    false,
                    "path names a file outside key_dir on purpose. dkimctl gives a key file \
                     to the service user (owner, mode 0600), so set this only for a file \
                     that is a DKIM key and nothing else (never a TLS key).",
                ),
            ),
            (
                "rsa_bits",
                rsa_bits("Size of this RSA key (default: [defaults] rsa_bits).", None),
            ),
            (
                "state",
                choice(
                    &["active", "pending", "retiring", "retired"],
                    Some("active"),
                    "Where the key is in its rotation: \"active\" signs; \"pending\" is \
                     published before it signs; \"retiring\" stays published after it stopped \
                     signing; \"retired\" is gone. Each algorithm a domain signs with needs \
                     exactly one active key.",
                ),
            ),
            ("created", string("When the key was created, YYYY-MM-DD.")),
            (
                "retire_after",
                string("When the key may be retired, YYYY-MM-DD."),
            ),
        ],
    );
    t["required"] = json!(["selector"]);
    t
}

fn domains() -> Value {
    let mut d = table(
        "[[domain]]: one signing domain.",
        vec![
            (
                "name",
                string("The domain (required); IDN names are converted to punycode."),
            ),
            (
                "selector",
                string("Short form for one key with the domain's single algorithm."),
            ),
            (
                "key",
                json!({
                    "type": "array",
                    "description": "[[domain.key]]: one table per key.",
                    "items": key(),
                }),
            ),
            (
                "key_from",
                string(
                    "Sign with the keys of another configured domain (the ArchWiki page's example3.com).",
                ),
            ),
            ("subdomains", boolean(false, "Also sign mail from *.name.")),
            (
                "algorithms",
                algorithms(None, "Override [defaults] algorithms for this domain."),
            ),
            (
                "record",
                record("Override [defaults] record for this domain."),
            ),
        ],
    );
    d["required"] = json!(["name"]);
    json!({
        "type": "array",
        "description": "[[domain]]: one table per signing domain.",
        "items": d,
    })
}

fn mta() -> Value {
    table(
        "[mta]: the mail server the milter is wired into.",
        vec![
            (
                "kind",
                choice(
                    &["postfix", "sendmail", "none"],
                    Some("postfix"),
                    "\"postfix\", \"sendmail\" or \"none\" (no MTA integration).",
                ),
            ),
            (
                "config_dir",
                string_default("/etc/postfix", "Postfix's configuration directory."),
            ),
            (
                "queue_directory",
                string_default(
                    "/var/spool/postfix",
                    "Postfix's queue directory, its chroot.",
                ),
            ),
            (
                "chroot",
                boolean(
                    true,
                    "Postfix's smtpd and cleanup run chrooted (as on Debian).",
                ),
            ),
            ("services", {
                let mut s = strings(
                    Some(&["smtpd", "non_smtpd"]),
                    "Where Postfix calls the milter: smtpd → main.cf smtpd_milters; \
                         non_smtpd → non_smtpd_milters; any other name → -o smtpd_milters= on \
                         that master.cf service (e.g. submission).",
                );
                s["minItems"] = json!(1);
                s["uniqueItems"] = json!(true);
                s
            }),
            (
                "default_action",
                choice(
                    &["tempfail", "accept", "reject"],
                    Some("tempfail"),
                    "milter_default_action: with tempfail, nothing leaves unsigned while the \
                     milter is down.",
                ),
            ),
            (
                "sendmail_mc",
                string_default(
                    "/etc/mail/sendmail.mc",
                    "sendmail.mc to add the INPUT_MAIL_FILTER line to (kind = \"sendmail\").",
                ),
            ),
        ],
    )
}

fn action(default: &str, what: &str) -> Value {
    choice(&["accept", "tempfail", "reject"], Some(default), what)
}

fn engine() -> Value {
    table(
        "[engine]: the bundled engine at run time.",
        vec![
            (
                "sign_daemon_names",
                strings(
                    Some(&["ORIGINATING"]),
                    "{daemon_name} macro values whose mail is signed (Postfix's \
                     milter_macro_daemon_name, Sendmail's DAEMON_OPTIONS Name=). \
                     Default with the bundled engine: [\"ORIGINATING\"] with Postfix, \
                     [\"MSP-v4\", \"MSP-v6\"] (the submission daemons) with Sendmail; \
                     none with OpenDKIM (which signs authenticated senders and \
                     internal hosts by itself).",
                ),
            ),
            ("max_connections", {
                let mut v = typed(
                    &["integer"],
                    Some(json!(4096)),
                    "Connections served at once.",
                );
                v["minimum"] = json!(1);
                v["maximum"] = json!(1_000_000);
                v
            }),
            (
                "idle_timeout",
                string_default("5m", "Idle connections are closed after this long."),
            ),
            (
                "dns_timeout",
                string_default("5s", "Timeout of each DNS query when verifying."),
            ),
            (
                "nameservers",
                strings(
                    None,
                    "Name servers, IP or IP:PORT (e.g. \"127.0.0.1:53\"); also opened in the \
                     unit's IP allow list. Default: the system resolver.",
                ),
            ),
            (
                "verify_max_size",
                typed(
                    &["string", "integer"],
                    Some(json!("32M")),
                    "Larger messages are not verified (stated in Authentication-Results): \
                     bytes, or a size such as \"32M\".",
                ),
            ),
            (
                "max_header_size",
                typed(
                    &["string", "integer"],
                    Some(json!("1M")),
                    "Larger header blocks are refused: bytes, or a size such as \"1M\".",
                ),
            ),
            (
                "require_safe_keys",
                boolean(true, "Refuse keys readable by others."),
            ),
            (
                "metrics",
                string(
                    "Loopback address of an OpenMetrics endpoint, e.g. \"127.0.0.1:9177\". \
                     Default: off.",
                ),
            ),
            (
                "on_failure",
                table(
                    "[engine.on_failure]: accept, tempfail or reject, per failure.",
                    vec![
                        (
                            "no_key",
                            action("accept", "No key for the sender's domain."),
                        ),
                        (
                            "key_unreadable",
                            action("tempfail", "The key cannot be read."),
                        ),
                        ("sign_error", action("tempfail", "Signing failed.")),
                        (
                            "dns_error",
                            action("accept", "A DNS lookup failed while verifying."),
                        ),
                        (
                            "bad_signature",
                            action("accept", "A signature does not verify."),
                        ),
                        (
                            "no_signature",
                            action("accept", "Incoming mail is not signed."),
                        ),
                        (
                            "bad_from",
                            action("reject", "No From header field, or several."),
                        ),
                        (
                            "oversized",
                            action("accept", "The message exceeds verify_max_size."),
                        ),
                    ],
                ),
            ),
        ],
    )
}

fn rotation() -> Value {
    table(
        "[rotation]: how `dkimctl rotate` replaces keys.",
        vec![
            (
                "grace",
                string_default("7d", "How long a replaced key stays published."),
            ),
            (
                "retired_keys",
                choice(
                    &["archive", "delete"],
                    Some("archive"),
                    "\"archive\" (moved to retired/) or \"delete\".",
                ),
            ),
            (
                "every",
                string(
                    "`rotate --auto` starts a rotation once the active key is this old (e.g. \
                     \"90d\"; M3AAWG recommends at most 6 months); with it, apply installs the \
                     daily dkimctl-rotate.timer. Default: no automatic rotation.",
                ),
            ),
            (
                "selector",
                string_default(
                    "{date}",
                    "How new selectors are named: {date} (YYYYMMDD, required) and {host} (the \
                     short host name; one selector prefix per host in a fleet), e.g. \
                     \"{host}-{date}\".",
                ),
            ),
            (
                "publish_retired",
                string(
                    "Deniability (opt-in): a directory a web server publishes; retired private \
                     keys are written there after the grace period, and the revoked record's n= \
                     names their URL. Needs publish_retired_url.",
                ),
            ),
            (
                "publish_retired_url",
                string("The URL of the publish_retired directory (http:// or https://)."),
            ),
        ],
    )
}

fn dns() -> Value {
    table(
        "[dns]: how `dkimctl dns publish` and `rotate --auto` publish records.",
        vec![
            (
                "update",
                choice(
                    &["manual", "rfc2136", "zonefile"],
                    Some("manual"),
                    "\"manual\" (records are printed), \"rfc2136\" (dynamic updates signed \
                     with TSIG) or \"zonefile\" (a zone file written, then `reload` run).",
                ),
            ),
            (
                "server",
                string(
                    "rfc2136: the primary server, IP or IP:PORT. Default: the zone's SOA MNAME, \
                     port 53.",
                ),
            ),
            (
                "zone",
                string(
                    "The zone the records lie in (every domain must be inside it). Default: \
                     found by an SOA lookup per domain.",
                ),
            ),
            (
                "tsig_key_file",
                string(
                    "rfc2136 (required): the TSIG key as `tsig-keygen -a hmac-sha256 NAME` \
                     writes it (hmac-sha256 or hmac-sha512), mode 0600; never printed.",
                ),
            ),
            (
                "zonefile",
                string(
                    "zonefile (required): the file dkimctl writes the records into (a zone \
                     file of a delegated _domainkey zone, or a fragment the zone $INCLUDEs).",
                ),
            ),
            (
                "reload",
                strings(
                    None,
                    "zonefile: the command that makes the server load the file, as a list of \
                     words (no shell), e.g. [\"knotc\", \"zone-reload\", \"example.com\"].",
                ),
            ),
            (
                "ttl",
                string_default("1h", "TTL of the published records (at most a day)."),
            ),
            (
                "authoritative",
                strings(
                    None,
                    "Servers (IP or IP:PORT) that must serve a new record before `rotate --auto` \
                     switches to its key. Default: the zone's name servers (NS), port 53.",
                ),
            ),
        ],
    )
}

fn table(description: &str, props: Vec<(&str, Value)>) -> Value {
    let mut properties = Map::new();
    for (k, v) in props {
        properties.insert(k.to_string(), v);
    }
    json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": false,
    })
}

fn typed(types: &[&str], default: Option<Value>, description: &str) -> Value {
    let mut v = json!({ "description": description });
    v["type"] = if types.len() == 1 {
        json!(types[0])
    } else {
        json!(types)
    };
    if let Some(d) = default {
        v["default"] = d;
    }
    v
}

fn string(description: &str) -> Value {
    typed(&["string"], None, description)
}

fn string_default(default: &str, description: &str) -> Value {
    typed(&["string"], Some(json!(default)), description)
}

fn boolean(default: bool, description: &str) -> Value {
    typed(&["boolean"], Some(json!(default)), description)
}

fn choice(words: &[&str], default: Option<&str>, description: &str) -> Value {
    let mut v = typed(&["string"], default.map(|d| json!(d)), description);
    v["enum"] = json!(words);
    v
}

fn strings(default: Option<&[&str]>, description: &str) -> Value {
    let mut v = json!({
        "type": "array",
        "description": description,
        "items": { "type": "string" },
    });
    if let Some(d) = default {
        v["default"] = json!(d);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use crate::config::{self, Source};
    use crate::report::Severity;

    // ---- a validator for the subset of JSON Schema the schema uses ----

    /// Keywords that only annotate.
    const ANNOTATIONS: &[&str] = &["$schema", "title", "description", "default"];
    /// Keywords [`check`] implements; the schema may use no other.
    const KEYWORDS: &[&str] = &[
        "type",
        "enum",
        "properties",
        "additionalProperties",
        "required",
        "items",
        "minItems",
        "uniqueItems",
        "minimum",
        "maximum",
    ];

    fn type_of(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Validates `v` against `schema`, pushing "path: problem" lines.
    fn check(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
        let s = schema.as_object().expect("a schema is an object");
        for k in s.keys() {
            assert!(
                KEYWORDS.contains(&k.as_str()) || ANNOTATIONS.contains(&k.as_str()),
                "{path}: the test validator does not implement keyword {k}"
            );
        }
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                Value::String(t) => vec![t.as_str()],
                Value::Array(a) => a.iter().map(|t| t.as_str().unwrap()).collect(),
                _ => panic!("{path}: bad type keyword"),
            };
            let actual = type_of(v);
            let ok = types
                .iter()
                .any(|t| *t == actual || (*t == "number" && actual == "integer"));
            if !ok {
                errors.push(format!("{path}: expected {types:?}, found {actual}"));
                return;
            }
        }
        if let Some(Value::Array(words)) = s.get("enum")
            && !words.contains(v)
        {
            errors.push(format!("{path}: {v} is not one of {words:?}"));
        }
        if let Some(n) = v.as_f64() {
            if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                errors.push(format!("{path}: {n} < minimum {min}"));
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                errors.push(format!("{path}: {n} > maximum {max}"));
            }
        }
        if let Value::Object(obj) = v {
            let props = s.get("properties").and_then(Value::as_object);
            for (k, child) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => check(ps, child, &format!("{path}.{k}"), errors),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            errors.push(format!("{path}: unknown key {k}"));
                        }
                        Some(extra @ Value::Object(_)) => {
                            check(extra, child, &format!("{path}.{k}"), errors);
                        }
                        _ => {}
                    },
                }
            }
            if let Some(Value::Array(req)) = s.get("required") {
                for r in req {
                    let r = r.as_str().unwrap();
                    if !obj.contains_key(r) {
                        errors.push(format!("{path}: missing required key {r}"));
                    }
                }
            }
        }
        if let Value::Array(items) = v {
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                errors.push(format!("{path}: fewer than {min} items"));
            }
            if s.get("uniqueItems") == Some(&Value::Bool(true)) {
                for (i, a) in items.iter().enumerate() {
                    if items[..i].contains(a) {
                        errors.push(format!("{path}: {a} is listed twice"));
                    }
                }
            }
            if let Some(item) = s.get("items") {
                for (i, x) in items.iter().enumerate() {
                    check(item, x, &format!("{path}[{i}]"), errors);
                }
            }
        }
    }

    /// TOML to JSON as taplo sees it, except that a date-time stays a
    /// distinct type (dkimctl wants dates as strings, and so does the
    /// schema).
    fn to_json(t: &toml::Value) -> Value {
        match t {
            toml::Value::String(s) => json!(s),
            toml::Value::Integer(i) => json!(i),
            toml::Value::Float(f) => json!(f),
            toml::Value::Boolean(b) => json!(b),
            toml::Value::Datetime(d) => json!({ "$toml-datetime": d.to_string() }),
            toml::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
            toml::Value::Table(t) => Value::Object(
                t.iter()
                    .map(|(k, v)| (k.clone(), to_json(v)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }

    fn schema_errors(text: &str) -> Vec<String> {
        let doc: toml::Value = toml::from_str(text).expect("valid TOML");
        let mut errors = Vec::new();
        check(&json_schema(), &to_json(&doc), "dkim.toml", &mut errors);
        errors
    }

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// Every example configuration: examples/*.toml and the Ansible one.
    fn examples() -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in ["examples", "examples/ansible"] {
            for e in std::fs::read_dir(repo().join(dir)).unwrap().flatten() {
                if e.path().extension().is_some_and(|x| x == "toml") {
                    out.push(e.path());
                }
            }
        }
        out.sort();
        assert!(out.len() >= 4, "examples not found: {out:?}");
        out
    }

    fn parse(text: &str) -> config::Loaded {
        let root = crate::host::Root::new("/nonexistent");
        config::parse(text, &Source::resolve(&root, None))
    }

    // ---- the schema itself ----

    #[test]
    fn every_example_validates_against_the_schema() {
        for path in examples() {
            let text = std::fs::read_to_string(&path).unwrap();
            let errors = schema_errors(&text);
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            // ...and dkimctl's reader agrees the example is valid.
            let loaded = parse(&text);
            assert!(
                !loaded.diags.has_errors(),
                "{}: {:#?}",
                path.display(),
                loaded.diags.sorted()
            );
        }
    }

    #[test]
    fn every_example_names_the_schema_for_editors() {
        for path in examples() {
            let text = std::fs::read_to_string(&path).unwrap();
            let rel = if path.parent().unwrap().ends_with("ansible") {
                "../../dkim.schema.json"
            } else {
                "../dkim.schema.json"
            };
            let want = format!("#:schema {rel}");
            assert_eq!(
                text.lines().next(),
                Some(want.as_str()),
                "{} must start with `{want}` (taplo / Even Better TOML read it)",
                path.display()
            );
        }
    }

    #[test]
    fn the_validator_catches_what_the_reader_rejects() {
        for (text, what) in [
            ("[service]\nengine = \"postfix\"\n", "not one of"),
            ("[service]\nengin = \"bundled\"\n", "unknown key engin"),
            ("[service]\nsocket_activation = \"yes\"\n", "expected"),
            ("[defaults]\nrsa_bits = 1024\n", "not one of"),
            ("[defaults]\nalgorithms = []\n", "fewer than 1"),
            ("[defaults]\nalgorithms = [\"rsa\", \"rsa\"]\n", "twice"),
            (
                "[[domain]]\nselector = \"s\"\n",
                "missing required key name",
            ),
            (
                "[[domain]]\nname = \"example.com\"\n[[domain.key]]\nstate = \"active\"\n",
                "missing required key selector",
            ),
            (
                "[[domain]]\nname = \"example.com\"\n[[domain.key]]\nselector = \"s\"\ncreated = 2026-01-01\n",
                "expected",
            ),
            ("[engine]\nmax_connections = 0\n", "minimum"),
            ("[engine.on_failure]\nbad_from = \"drop\"\n", "not one of"),
            ("[mta]\nservices = [\"smtpd\", 25]\n", "expected"),
        ] {
            let errors = schema_errors(text);
            assert!(
                errors.iter().any(|e| e.contains(what)),
                "{text:?}: expected an error with {what:?}, got {errors:?}"
            );
            assert!(
                parse(text).diags.has_errors(),
                "{text:?}: dkimctl accepts it"
            );
        }
    }

    #[test]
    fn every_key_is_documented() {
        fn walk(s: &Value, path: &str) {
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                assert_eq!(
                    s.get("additionalProperties"),
                    Some(&Value::Bool(false)),
                    "{path}: unknown keys must be errors"
                );
                for (k, v) in props {
                    let desc = v.get("description").and_then(Value::as_str).unwrap_or("");
                    assert!(desc.len() > 10, "{path}.{k} has no description");
                    walk(v, &format!("{path}.{k}"));
                }
            }
            if let Some(items) = s.get("items") {
                walk(items, path);
            }
        }
        walk(&json_schema(), "dkim.toml");
    }

    /// The committed dkim.schema.json is `json_schema()`; BLESS=1 rewrites it.
    #[test]
    fn committed_schema_is_current() {
        bless_or_compare(&repo().join(FILE_NAME), &schema_text());
    }

    fn bless_or_compare(path: &Path, want: &str) {
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(path, want).unwrap();
            return;
        }
        let got = std::fs::read_to_string(path).unwrap_or_default();
        if got != want {
            let diff = similar::TextDiff::from_lines(got.as_str(), want)
                .unified_diff()
                .header("committed", "generated")
                .to_string();
            panic!(
                "{} is stale (BLESS=1 cargo test --lib schema:: to rewrite it):\n{diff}",
                path.display()
            );
        }
    }

    // ---- the schema against dkimctl's reader ----

    /// Every table of the schema: its path of keys and its schema.
    fn tables() -> Vec<(Vec<String>, Value)> {
        fn walk(s: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
            let s = match s.get("type").and_then(Value::as_str) {
                Some("array") if s["items"].get("properties").is_some() => &s["items"],
                _ => s,
            };
            let Some(props) = s.get("properties").and_then(Value::as_object) else {
                return;
            };
            out.push((path.clone(), s.clone()));
            for (k, v) in props {
                path.push(k.clone());
                walk(v, path, out);
                path.pop();
            }
        }
        let mut out = Vec::new();
        walk(&json_schema(), &mut Vec::new(), &mut out);
        out
    }

    /// True when the schema at `path` (from the top) is an array of tables.
    fn is_array_of_tables(path: &[String]) -> bool {
        let (last, parents) = path.split_last().expect("a path");
        let mut s = json_schema();
        for k in parents {
            s = s["properties"][k].clone();
            if s["type"] == "array" {
                s = s["items"].clone();
            }
        }
        s["properties"][last]["type"] == "array"
    }

    /// A document that opens the table at `path` (with every required
    /// key of the tables on the way filled in) and writes `body` into it.
    /// Returns the text and the 1-based line of the body's first line.
    fn document(path: &[String], body: &str) -> (String, usize) {
        let mut text = String::new();
        for i in 1..=path.len() {
            let name = path[..i].join(".");
            if is_array_of_tables(&path[..i]) {
                text.push_str(&format!("[[{name}]]\n"));
                // Required keys, so the validator looks inside the table
                // (unless the body writes that key itself).
                let required = match path[i - 1].as_str() {
                    "domain" => "name = \"example.com\"",
                    "key" => "selector = \"s1\"",
                    _ => "",
                };
                let own = i == path.len()
                    && required
                        .split_once(" = ")
                        .is_some_and(|(k, _)| body.starts_with(&format!("{k} = ")));
                if !required.is_empty() && !own {
                    text.push_str(required);
                    text.push('\n');
                }
            } else if i == path.len() {
                text.push_str(&format!("[{name}]\n"));
            }
        }
        let line = text.lines().count() + 1;
        text.push_str(body);
        text.push('\n');
        (text, line)
    }

    fn name(path: &[String]) -> String {
        if path.is_empty() {
            "the top level".into()
        } else {
            format!("[{}]", path.join("."))
        }
    }

    #[test]
    fn schema_tables_and_keys_equal_the_readers() {
        let tables = tables();
        // service, defaults (+ record), trusted, domain (+ key, record),
        // mta, engine (+ on_failure), rotation, dns, and the top level.
        assert_eq!(
            tables.len(),
            13,
            "{:?}",
            tables.iter().map(|t| &t.0).collect::<Vec<_>>()
        );
        for (path, schema) in tables {
            let (text, _) = document(&path, "zzz_unknown = 1");
            let loaded = parse(&text);
            let help = loaded
                .diags
                .iter()
                .find(|d| d.message.contains("unknown key `zzz_unknown`"))
                .and_then(|d| d.help.clone())
                .unwrap_or_else(|| panic!("{}: no unknown-key error for:\n{text}", name(&path)));
            let known: BTreeSet<String> = help
                .strip_prefix("known keys: ")
                .unwrap_or_else(|| panic!("unexpected help {help:?}"))
                .split(", ")
                .map(String::from)
                .collect();
            let props: BTreeSet<String> = schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            assert_eq!(
                props,
                known,
                "{}: schema properties (left) differ from the keys dkimctl reads (right)",
                name(&path)
            );
        }
    }

    /// A JSON type and a TOML value of that type.
    const SAMPLES: &[(&str, &str)] = &[
        ("string", "\"x\""),
        ("integer", "7"),
        ("boolean", "true"),
        ("array", "[\"x\"]"),
        ("object", "{ }"),
    ];

    fn errors_on_line(text: &str, line: usize) -> Vec<String> {
        parse(text)
            .diags
            .iter()
            .filter(|d| d.severity == Severity::Error && d.line == line)
            .map(|d| format!("{}: {}", d.message, d.help.clone().unwrap_or_default()))
            .collect()
    }

    fn types(s: &Value) -> Vec<String> {
        match &s["type"] {
            Value::String(t) => vec![t.clone()],
            Value::Array(a) => a.iter().map(|t| t.as_str().unwrap().to_string()).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn schema_types_equal_the_readers() {
        for (path, table) in tables() {
            for (key, s) in table["properties"].as_object().unwrap() {
                let want = types(s);
                if want == ["object"] || s["items"].get("properties").is_some() {
                    continue; // tables: covered by the key test above
                }
                for (ty, sample) in SAMPLES {
                    let (text, line) = document(&path, &format!("{key} = {sample}"));
                    // The reader's type errors: "`key` in [table] must be ...".
                    let type_errors: Vec<String> = errors_on_line(&text, line)
                        .into_iter()
                        .filter(|e| {
                            e.starts_with(&format!("`{key}` in "))
                                && (e.contains(" must be ") || e.contains(" must hold "))
                        })
                        .collect();
                    let accepted = want.iter().any(|w| w == ty);
                    assert_eq!(
                        type_errors.is_empty(),
                        accepted,
                        "{} {key} = {sample}: schema says {want:?}, dkimctl says {type_errors:?}",
                        name(&path)
                    );
                }
                if s["items"]["type"] == "string" {
                    let (text, line) = document(&path, &format!("{key} = [1]"));
                    assert!(
                        errors_on_line(&text, line)
                            .iter()
                            .any(|e| e.contains("must hold strings")),
                        "{} {key}: dkimctl accepts non-strings in the array",
                        name(&path)
                    );
                }
            }
        }
    }

    /// For every key with a closed set of values: each allowed value is
    /// accepted where it is written, a value outside the set is not, and
    /// where dkimctl lists the choices, the list is the schema's.
    #[test]
    fn schema_enums_equal_the_validators() {
        let mut seen = 0;
        for (path, table) in tables() {
            for (key, s) in table["properties"].as_object().unwrap() {
                let (words, in_array) = match (&s["enum"], &s["items"]["enum"]) {
                    (Value::Array(w), _) => (w.clone(), false),
                    (_, Value::Array(w)) => (w.clone(), true),
                    _ => continue,
                };
                seen += 1;
                let toml = |v: &Value| {
                    let v = v.to_string(); // JSON strings and integers are TOML too
                    if in_array { format!("[{v}]") } else { v }
                };
                for w in &words {
                    let (text, line) = document(&path, &format!("{key} = {}", toml(w)));
                    let errors = errors_on_line(&text, line);
                    assert!(
                        errors.is_empty(),
                        "{} {key} = {w}: allowed by the schema, rejected by dkimctl: {errors:?}",
                        name(&path)
                    );
                }
                let outside = if words[0].is_string() {
                    json!("zzz_unknown")
                } else {
                    json!(1234)
                };
                let (text, line) = document(&path, &format!("{key} = {}", toml(&outside)));
                let errors = errors_on_line(&text, line);
                assert!(
                    !errors.is_empty(),
                    "{} {key} = {outside}: rejected by the schema, accepted by dkimctl",
                    name(&path)
                );
                if let Some(list) = errors
                    .iter()
                    .find_map(|e| e.split_once("choose one of: ").map(|(_, l)| l.to_string()))
                {
                    let listed: BTreeSet<&str> = list.split(", ").collect();
                    let schema: BTreeSet<&str> = words.iter().filter_map(Value::as_str).collect();
                    assert_eq!(
                        schema,
                        listed,
                        "{} {key}: schema enum vs dkimctl",
                        name(&path)
                    );
                }
            }
        }
        assert!(seen >= 16, "only {seen} enums found");
    }
}
