//! The `Authentication-Results` header field (RFC 8601) and the
//! recognition of forged ones.
//!
//! ```text
//! Authentication-Results: mail.example.net;
//!     dkim=pass header.d=example.com header.s=sel header.a=rsa-sha256 header.b=abcdefgh;
//!     dkim=fail reason="body hash did not verify" header.d=example.org ...
//! ```
//!
//! One `resinfo` per signature (RFC 8601 §2.2), `dkim=none` for an unsigned
//! message, an optional comment for a result that needs explaining (a
//! message too large to verify). The value is folded with CRLF + TAB, one
//! result per line; [`crate::engine::session::milter_value`] turns it into the
//! milter form.

use super::verify::VerifyResult;

/// The header field name.
pub const NAME: &str = "Authentication-Results";

/// The header value (the text after the colon, with its leading space,
/// folded with CRLF + TAB, no final CRLF) for `results`. An empty list
/// gives `dkim=none`; `comment` (e.g. "message too large to verify") is
/// added as an RFC 5322 comment to a `none` result.
pub fn authentication_results(
    authserv_id: &str,
    results: &[VerifyResult],
    comment: Option<&str>,
) -> String {
    let mut out = String::with_capacity(64 + results.len() * 96);
    out.push(' ');
    out.push_str(authserv_id);
    out.push(';');
    if results.is_empty() {
        out.push_str(" dkim=none");
        if let Some(c) = comment {
            out.push_str(" (");
            out.push_str(&comment_text(c));
            out.push(')');
        }
        return out;
    }
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str("\r\n\tdkim=");
        out.push_str(r.status.as_str());
        if let Some(reason) = &r.reason {
            out.push_str(" reason=");
            push_quoted(&mut out, reason);
        }
        if let Some(d) = &r.domain {
            out.push_str(" header.d=");
            push_value(&mut out, d);
        }
        if let Some(s) = &r.selector {
            out.push_str(" header.s=");
            push_value(&mut out, s);
        }
        if let Some(a) = r.algorithm {
            out.push_str(" header.a=");
            out.push_str(a);
        }
        if let Some(b) = &r.signature_prefix {
            out.push_str(" header.b=");
            push_value(&mut out, b);
        }
    }
    out
}

/// True when `value` (an incoming `Authentication-Results` value) carries
/// `authserv_id` as its authserv-id: such a header claims to come from us,
/// and was forged by whoever sent the message (RFC 8601 §5).
pub fn claims_authserv_id(value: &[u8], authserv_id: &str) -> bool {
    let rest = skip_cfws(value);
    // RFC 8601 §2.2: the authserv-id is a `value`, a token or a quoted
    // string; a forger may quote it to slip past a token comparison.
    if let Some(quoted) = rest.strip_prefix(b"\"") {
        let mut id = Vec::new();
        let mut i = 0;
        while let Some(&b) = quoted.get(i) {
            match b {
                b'"' => return same_authserv_id(&id, authserv_id),
                b'\\' => {
                    i += 1;
                    if let Some(&escaped) = quoted.get(i) {
                        id.push(escaped);
                    }
                }
                _ => id.push(b),
            }
            i += 1;
        }
        return false;
    }
    let end = rest
        .iter()
        .position(|&b| b == b';' || b == b'(' || b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    same_authserv_id(rest.get(..end).unwrap_or_default(), authserv_id)
}

/// Compares authserv-ids as host names: without case and without a final
/// dot (`MX.example.net.` names the same host as `mx.example.net`).
fn same_authserv_id(id: &[u8], ours: &str) -> bool {
    let strip = |s: &[u8]| -> Vec<u8> {
        let mut s = s.to_vec();
        while s.last() == Some(&b'.') {
            s.pop();
        }
        s
    };
    let (id, ours) = (strip(id), strip(ours.as_bytes()));
    !id.is_empty() && id.eq_ignore_ascii_case(&ours)
}

/// Skips folding white space and (nested) comments.
fn skip_cfws(mut s: &[u8]) -> &[u8] {
    loop {
        match s.first() {
            Some(b) if b.is_ascii_whitespace() => s = s.get(1..).unwrap_or_default(),
            Some(b'(') => {
                let mut depth = 0usize;
                let mut i = 0;
                while let Some(&b) = s.get(i) {
                    match b {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                s = s.get(i..).unwrap_or_default();
            }
            _ => return s,
        }
    }
}

/// A `value` (RFC 2045 token, else quoted-string).
fn push_value(out: &mut String, v: &str) {
    let token = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b));
    // Domains contain dots and hyphens only, so they stay tokens; '@' in an
    // identity or '/' in a base64 prefix need quotes.
    if token || is_domain(v) {
        out.push_str(v);
    } else {
        push_quoted(out, v);
    }
}

fn is_domain(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

fn push_quoted(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn comment_text(c: &str) -> String {
    c.chars()
        .map(|c| match c {
            '(' | ')' | '\\' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::verify::DkimStatus;

    fn result(status: DkimStatus, b: &str) -> VerifyResult {
        VerifyResult {
            status,
            domain: Some("example.com".into()),
            selector: Some("sel".into()),
            algorithm: Some("rsa-sha256"),
            signature_prefix: Some(b.into()),
            reason: (status != DkimStatus::Pass).then(|| "body hash did not verify".into()),
        }
    }

    #[test]
    fn renders_one_result_per_signature() {
        let v = authentication_results(
            "mx.example.net",
            &[
                result(DkimStatus::Pass, "abcdefgh"),
                result(DkimStatus::Fail, "ab/d+fgh"),
            ],
            None,
        );
        assert_eq!(
            v,
            " mx.example.net;\r\n\tdkim=pass header.d=example.com header.s=sel header.a=rsa-sha256 header.b=abcdefgh;\r\n\tdkim=fail reason=\"body hash did not verify\" header.d=example.com header.s=sel header.a=rsa-sha256 header.b=\"ab/d+fgh\""
        );
    }

    #[test]
    fn none_with_comment() {
        assert_eq!(
            authentication_results("mx", &[], Some("message too large to verify")),
            " mx; dkim=none (message too large to verify)"
        );
        assert_eq!(authentication_results("mx", &[], None), " mx; dkim=none");
    }

    #[test]
    fn recognises_our_authserv_id() {
        for (v, ours) in [
            (&b" mx.example.net; dkim=pass"[..], true),
            (b"MX.Example.NET;dkim=pass", true),
            (b" (comment (nested)) mx.example.net 1; none", true),
            (b" mx.example.net.evil; dkim=pass", false),
            // A final dot names the same host (issue 15, point 4).
            (b" mx.example.net.; dkim=pass", true),
            (b" \"MX.example.net.\"; dkim=pass", true),
            (b" .; dkim=pass", false),
            (b" other.example; dkim=pass", false),
            (b"", false),
            (b" (unterminated", false),
            (b"\xff\xfe; x", false),
        ] {
            assert_eq!(
                claims_authserv_id(v, "mx.example.net"),
                ours,
                "{:?}",
                v.escape_ascii().to_string()
            );
        }
    }
}
