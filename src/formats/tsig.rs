//! TSIG key files (RFC 8945) as `tsig-keygen` writes them and `nsupdate -k`
//! and BIND's `named.conf` read them:
//!
//! ```text
//! key "dkimctl" {
//!         algorithm hmac-sha256;
//!         secret "S2V5IGJ5dGVzIGdvIGhlcmUuLi4=";
//! };
//! ```
//!
//! Comments (`#`, `//`, `/* */`) and any layout are accepted; the file must
//! hold exactly one key. The secret never appears in an error or in
//! `Debug` output: it is kept in a [`Secret`].

use std::fmt;

use base64::Engine as _;

use crate::keys::Secret;

/// The HMAC algorithms dkimctl signs updates with (RFC 8945 §6: SHA-256
/// is mandatory to implement; SHA-1 and MD5 are not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigAlgorithm {
    /// `hmac-sha256`.
    HmacSha256,
    /// `hmac-sha512`.
    HmacSha512,
}

impl TsigAlgorithm {
    /// The name as key files and the TSIG record write it.
    pub fn as_str(self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        }
    }
}

/// One TSIG key.
pub struct TsigKey {
    /// The key name the server knows it by (`key "NAME"`), lower case,
    /// without a final dot.
    pub name: String,
    /// The MAC algorithm.
    pub algorithm: TsigAlgorithm,
    /// The shared secret, decoded from base64.
    pub secret: Secret,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Why a key file could not be read as a TSIG key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsigParseError {
    /// No `key "NAME" { ... };` clause.
    NoKey,
    /// More than one key clause.
    SeveralKeys(usize),
    /// The text is not in the expected shape.
    Syntax(String),
    /// The key has no `algorithm` or no `secret`.
    Missing(&'static str),
    /// An algorithm other than hmac-sha256 and hmac-sha512.
    Algorithm(String),
    /// The secret is not base64 or is empty.
    Secret,
}

impl fmt::Display for TsigParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TsigParseError::NoKey => write!(
                f,
                "no `key \"NAME\" {{ ... }};` clause (write the file with `tsig-keygen -a hmac-sha256 NAME`)"
            ),
            TsigParseError::SeveralKeys(n) => {
                write!(f, "the file holds {n} keys; keep only the one for dkimctl")
            }
            TsigParseError::Syntax(why) => write!(f, "syntax error: {why}"),
            TsigParseError::Missing(what) => write!(f, "the key has no `{what}`"),
            TsigParseError::Algorithm(a) => write!(
                f,
                "algorithm {a} is not supported; use hmac-sha256 or hmac-sha512"
            ),
            TsigParseError::Secret => write!(f, "the secret is not valid base64"),
        }
    }
}

impl std::error::Error for TsigParseError {}

/// A token of the named.conf grammar, as far as key clauses need it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semi,
}

fn tokens(text: &str) -> Result<Vec<Token>, TsigParseError> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .find("*/")
                    .ok_or_else(|| TsigParseError::Syntax("unterminated /* comment".into()))?;
                i += 2 + end + 2;
            }
            b'{' => {
                out.push(Token::Open);
                i += 1;
            }
            b'}' => {
                out.push(Token::Close);
                i += 1;
            }
            b';' => {
                out.push(Token::Semi);
                i += 1;
            }
            b'"' => {
                let end = text[i + 1..]
                    .find('"')
                    .ok_or_else(|| TsigParseError::Syntax("unterminated quoted string".into()))?;
                out.push(Token::Quoted(text[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            _ => {
                let start = i;
                while i < b.len() && !b" \t\r\n{};\"#".contains(&b[i]) {
                    i += 1;
                }
                out.push(Token::Word(text[start..i].to_string()));
            }
        }
    }
    Ok(out)
}

/// Parses a key file's text.
pub fn parse(text: &str) -> Result<TsigKey, TsigParseError> {
    let toks = tokens(text)?;
    let mut keys = Vec::new();
    let mut i = 0;
    let syntax = |why: &str| TsigParseError::Syntax(why.to_string());
    while i < toks.len() {
        match &toks[i] {
            Token::Word(w) if w.eq_ignore_ascii_case("key") => {}
            Token::Word(_) | Token::Quoted(_) => {
                return Err(syntax("expected `key` at the start of a clause"));
            }
            _ => return Err(syntax("expected `key`")),
        }
        let name = match toks.get(i + 1) {
            Some(Token::Quoted(n) | Token::Word(n)) => n.clone(),
            _ => return Err(syntax("`key` must be followed by its name")),
        };
        if toks.get(i + 2) != Some(&Token::Open) {
            return Err(syntax("expected `{` after the key name"));
        }
        i += 3;
        let mut algorithm = None;
        let mut secret: Option<String> = None;
        loop {
            match toks.get(i) {
                Some(Token::Close) => break,
                Some(Token::Word(field)) => {
                    let value = match toks.get(i + 1) {
                        Some(Token::Word(v) | Token::Quoted(v)) => v.clone(),
                        _ => return Err(syntax(&format!("`{field}` needs a value"))),
                    };
                    if toks.get(i + 2) != Some(&Token::Semi) {
                        return Err(syntax(&format!("expected `;` after `{field}`")));
                    }
                    match field.to_ascii_lowercase().as_str() {
                        "algorithm" => algorithm = Some(value),
                        "secret" => secret = Some(value),
                        _ => {
                            return Err(syntax(
                                "unknown statement in the key clause (only algorithm and secret)",
                            ));
                        }
                    }
                    i += 3;
                }
                Some(_) => return Err(syntax("expected `algorithm`, `secret` or `}`")),
                None => return Err(syntax("missing `};` at the end of the key clause")),
            }
        }
        if toks.get(i + 1) != Some(&Token::Semi) {
            return Err(syntax("expected `;` after `}`"));
        }
        i += 2;
        keys.push((name, algorithm, secret));
    }
    if keys.len() > 1 {
        return Err(TsigParseError::SeveralKeys(keys.len()));
    }
    let Some((name, algorithm, secret)) = keys.pop() else {
        return Err(TsigParseError::NoKey);
    };
    let algorithm = match algorithm
        .ok_or(TsigParseError::Missing("algorithm"))?
        .to_ascii_lowercase()
        .trim_end_matches('.')
    {
        "hmac-sha256" => TsigAlgorithm::HmacSha256,
        "hmac-sha512" => TsigAlgorithm::HmacSha512,
        other => return Err(TsigParseError::Algorithm(other.to_string())),
    };
    let encoded = secret.ok_or(TsigParseError::Missing("secret"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| TsigParseError::Secret)?;
    if decoded.is_empty() {
        return Err(TsigParseError::Secret);
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err(syntax("the key name is empty"));
    }
    Ok(TsigKey {
        name,
        algorithm,
        secret: Secret::new(decoded),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `tsig-keygen -a hmac-sha256 dkimctl` writes (BIND 9.18).
    const KEYGEN: &str = "key \"dkimctl\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0IGJ5dGVzIGZvciB0aGUgdGVzdHMgb25seSE=\";\n};\n";

    #[test]
    fn reads_what_tsig_keygen_writes() {
        let k = parse(KEYGEN).unwrap();
        assert_eq!(k.name, "dkimctl");
        assert_eq!(k.algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(k.secret.expose(), b"secret bytes for the tests only!");
        // The secret never shows in Debug output.
        assert!(!format!("{k:?}").contains("c2Vj"), "{k:?}");
        assert!(!format!("{k:?}").contains("secret bytes"), "{k:?}");
    }

    #[test]
    fn comments_layout_and_sha512() {
        let text = "# made for dkimctl\n/* a\n block */ key Mail.Example. { // trailing\n  algorithm \"HMAC-SHA512\"; secret \"AAAA\" ; } ;\n";
        let k = parse(text).unwrap();
        assert_eq!(k.name, "mail.example");
        assert_eq!(k.algorithm, TsigAlgorithm::HmacSha512);
        assert_eq!(k.secret.expose(), &[0, 0, 0]);
    }

    #[test]
    fn clear_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "no `key \"NAME\" { ... };` clause"),
            (
                "key \"a\" { algorithm hmac-md5; secret \"AAAA\"; };",
                "algorithm hmac-md5 is not supported",
            ),
            (
                "key \"a\" { algorithm hmac-sha256; };",
                "the key has no `secret`",
            ),
            (
                "key \"a\" { algorithm hmac-sha256; secret \"%%%\"; };",
                "not valid base64",
            ),
            (
                "key \"a\" { algorithm hmac-sha256; secret \"AAAA\" };",
                "expected `;` after `secret`",
            ),
            (
                "key \"a\" { algorithm hmac-sha256; secret \"AAAA\"; }; key \"b\" { algorithm hmac-sha256; secret \"AAAA\"; };",
                "holds 2 keys",
            ),
            ("hmac-sha256:a:AAAA", "expected `key`"),
            (
                "key \"a\" { algorithm hmac-sha256; secret \"AAAA",
                "unterminated quoted string",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains("AAAA"), "{text:?}: the secret shows in {e}");
        }
    }
}
