//! A message as DKIM sees it: header fields in wire form, and the split of
//! a raw message into fields and body.

use bytes::Bytes;

use super::canon::trim_wsp;
use super::crlf;

/// One header field in wire form: `name` as received, then `value` =
/// everything after the colon, line ends CRLF, including the final CRLF.
/// `simple` header canonicalization hashes `name ":" value` unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// The field name as sent (case kept; RFC 5322's obsolete syntax may
    /// leave whitespace before the colon in it).
    pub name: Bytes,
    /// The value after the colon, CRLF line ends, ending in CRLF.
    pub value: Vec<u8>,
}

impl HeaderField {
    /// A field from a raw message: `value` is what followed the colon,
    /// with or without its final line end.
    pub fn from_wire(name: &[u8], value: &[u8]) -> HeaderField {
        let mut v = crlf(value);
        if !v.ends_with(b"\r\n") {
            v.extend_from_slice(b"\r\n");
        }
        HeaderField {
            name: Bytes::copy_from_slice(name),
            value: v,
        }
    }

    /// Bytes of the field on the wire (`name:value` with its CRLF).
    pub fn wire_len(&self) -> usize {
        self.name.len() + 1 + self.value.len()
    }

    /// True when the field's name is `name` (ASCII case-insensitive,
    /// whitespace before the colon ignored).
    pub fn is(&self, name: &str) -> bool {
        trim_wsp(&self.name).eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value without its final CRLF.
    pub fn value_without_crlf(&self) -> &[u8] {
        self.value.strip_suffix(b"\r\n").unwrap_or(&self.value)
    }
}

/// Splits a raw message into header fields and the body offset. Lines may
/// end in CRLF or LF. A line without a colon inside the header block ends
/// it; the body starts after the empty line.
pub fn split_message(message: &[u8]) -> (Vec<HeaderField>, usize) {
    let mut fields = Vec::new();
    let mut pos = 0;
    loop {
        let rest = message.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            return (fields, message.len());
        }
        if rest.starts_with(b"\r\n") {
            return (fields, pos + 2);
        }
        if rest.starts_with(b"\n") {
            return (fields, pos + 1);
        }
        // The field runs to the first line end not followed by WSP.
        let mut end = rest.len();
        let mut i = 0;
        while let Some(off) = rest.get(i..).and_then(|r| memchr::memchr(b'\n', r)) {
            let nl = i + off;
            match rest.get(nl + 1) {
                Some(b' ' | b'\t') => i = nl + 1,
                _ => {
                    end = nl + 1;
                    break;
                }
            }
        }
        let field = rest.get(..end).unwrap_or_default();
        let Some(colon) = memchr::memchr(b':', field) else {
            // Not a header field: treat it as the start of the body.
            return (fields, pos);
        };
        let (name, value) = field.split_at(colon);
        let value = value.get(1..).unwrap_or_default();
        fields.push(HeaderField::from_wire(name, value));
        pos += end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_message_handles_folding_lf_and_body() {
        let (h, body) = split_message(b"A: 1\n\tcont\nB:2\n\nbody\n");
        assert_eq!(h.len(), 2);
        assert_eq!(&h[0].value[..], b" 1\r\n\tcont\r\n");
        assert_eq!(&h[1].value[..], b"2\r\n");
        assert_eq!(body, 16);
        let (h, body) = split_message(b"A: 1\r\n\r\n");
        assert_eq!((h.len(), body), (1, 8));
        let (h, body) = split_message(b"A: 1");
        assert_eq!((h.len(), body), (1, 4));
        // Whitespace before the colon stays in the name (obsolete syntax),
        // and the field still answers to its name.
        let (h, _) = split_message(b"Subject : x\r\n\r\n");
        assert_eq!(&h[0].name[..], b"Subject ");
        assert!(h[0].is("subject"));
    }
}
