//! The message the tests send, as an MTA holds it, and the small tools to
//! take a delivered message apart.

use std::collections::BTreeMap;

/// A message as an MTA holds it: header fields (name, value after the
/// colon with its leading space, folds as LF + white space, the way
/// Postfix hands them to a milter) and a CRLF body.
#[derive(Debug, Clone)]
pub struct Msg {
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// The message every conversation sends: folded To and Subject, raw
/// Latin-1 bytes in Subject and body, trailing white space and blank lines
/// that canonicalization treats specially.
pub fn message() -> Msg {
    let h = |n: &str, v: &[u8]| (n.as_bytes().to_vec(), v.to_vec());
    Msg {
        headers: vec![
            h("From", b" =?iso-8859-1?q?Jos=E9?= <jose@example.com>"),
            h(
                "To",
                b" Someone <someone@example.net>,\n\tOther <other@example.net>",
            ),
            h("Subject", b" Caf\xe9  cr\xe8me\n\t br\xfbl\xe9e  "),
            h("Date", b" Mon, 01 Jan 2024 10:00:00 +0000"),
            h("Message-ID", b" <1@example.com>"),
            h("MIME-Version", b" 1.0"),
            h("Content-Type", b" text/plain; charset=iso-8859-1"),
            h("Content-Transfer-Encoding", b" 8bit"),
        ],
        body: b"Ol\xe9,\r\n\r\nla cr\xe8me  br\xfbl\xe9e \t\r\nest pr\xeate.\r\n\r\n\r\n".to_vec(),
    }
}

/// Every LF not preceded by CR becomes CRLF.
pub fn crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + 16);
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' && (i == 0 || b[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

impl Msg {
    /// The message on the wire: CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in &self.headers {
            out.extend_from_slice(n);
            out.push(b':');
            out.extend_from_slice(&crlf(v));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&crlf(&self.body));
        out
    }

    /// Splits a message (CRLF or LF line ends) back into fields, as an MTA
    /// does before talking to a milter.
    pub fn parse(text: &[u8]) -> Msg {
        let text = crlf(text);
        let split = text
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of header in:\n{}", show(&text)));
        let (head, body) = (&text[..split + 2], &text[split + 4..]);
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for line in head.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                let last = headers.last_mut().expect("continuation line first");
                last.1.push(b'\n');
                last.1.extend_from_slice(line);
            } else {
                let colon = line
                    .iter()
                    .position(|&b| b == b':')
                    .unwrap_or_else(|| panic!("not a header line: {}", show(line)));
                headers.push((line[..colon].to_vec(), line[colon + 1..].to_vec()));
            }
        }
        Msg {
            headers,
            body: body.to_vec(),
        }
    }

    pub fn values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The header fields as dkimctl's milter client takes them.
    pub fn fields(&self) -> Vec<(&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect()
    }

    /// The signatures, top first, as tag maps.
    pub fn signatures(&self) -> Vec<BTreeMap<String, String>> {
        self.values("DKIM-Signature")
            .iter()
            .map(|v| tags(v))
            .collect()
    }

    /// A copy whose body differs in one byte ("crème" becomes "crèma").
    pub fn body_changed(&self) -> Msg {
        let mut m = self.clone();
        let at = find(&m.body, b"cr\xe8me").expect("body has cr\\xe8me") + 4;
        m.body[at] = b'a';
        m
    }

    /// A copy whose Subject reads "Cof..." instead of "Caf...".
    pub fn subject_changed(&self) -> Msg {
        let mut m = self.clone();
        let subject = m
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"Subject"))
            .expect("a Subject");
        let at = find(&subject.1, b"Caf").expect("Subject has Caf") + 1;
        subject.1[at] = b'o';
        m
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A tag=value list (DKIM-Signature) as a map; values without white space.
pub fn tags(value: &str) -> BTreeMap<String, String> {
    value
        .split(';')
        .filter_map(|t| {
            let (k, v) = t.split_once('=')?;
            let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            Some((k.trim().to_string(), v))
        })
        .collect()
}

/// The canonicalization a signature states, in full (`c=` defaults).
pub fn canon_of(sig: &BTreeMap<String, String>) -> String {
    match sig.get("c").map(String::as_str) {
        None => "simple/simple".into(),
        Some(c) if !c.contains('/') => format!("{c}/simple"),
        Some(c) => c.to_string(),
    }
}
