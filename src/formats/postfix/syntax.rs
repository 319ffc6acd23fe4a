//! Postfix's line syntax (postconf(5), master(5)), shared by main.cf and
//! master.cf, reading and editing alike.
//!
//! A logical line starts with non-whitespace text; a physical line that
//! starts with whitespace continues it. Blank lines and lines whose first
//! non-whitespace character is `#` are comments: they end nothing and are
//! part of no value. Continuation lines before the first logical line
//! belong to nothing and are skipped, as Postfix warns and does.

use crate::formats::lines::{self, Lines};

/// A logical line: its first physical line and its continuations.
#[derive(Debug, Clone)]
pub(super) struct Logical {
    /// First token of the first line (a parameter or service name).
    pub name: Vec<u8>,
    /// Index of the first physical line.
    pub head: usize,
    /// Indexes of the continuation lines (comments in between excluded).
    pub conts: Vec<usize>,
}

impl Logical {
    /// Index of the last physical line.
    pub fn last(&self) -> usize {
        self.conts.last().copied().unwrap_or(self.head)
    }

    /// Every physical line index, first line first.
    pub fn indexes(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.head).chain(self.conts.iter().copied())
    }
}

/// The logical lines of a file.
pub(super) fn logical_lines(lines: &Lines) -> Vec<Logical> {
    let mut out: Vec<Logical> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = lines::body(line);
        let trimmed = lines::trim_start(body);
        if trimmed.is_empty() || trimmed[0] == b'#' {
            continue;
        }
        if lines::is_blank(body[0]) {
            if let Some(l) = out.last_mut() {
                l.conts.push(i);
            }
            continue;
        }
        let name_len = body
            .iter()
            .take_while(|&&b| !b.is_ascii_whitespace() && b != b'=')
            .count();
        out.push(Logical {
            name: body[..name_len].to_vec(),
            head: i,
            conts: Vec::new(),
        });
    }
    out
}

/// The value of a main.cf logical line that is `name = value`: the text
/// after `=` and every continuation, trimmed and joined by one space.
/// `None` when the line has no `=` after its name.
pub(super) fn param_value(lines: &Lines, l: &Logical) -> Option<String> {
    let head = lines::body(lines.get(l.head)?);
    let rest = lines::trim_start(&head[l.name.len()..]);
    let rest = rest.strip_prefix(b"=")?;
    let mut parts = vec![String::from_utf8_lossy(rest).trim().to_string()];
    for &c in &l.conts {
        parts.push(
            String::from_utf8_lossy(lines::body(&lines[c]))
                .trim()
                .to_string(),
        );
    }
    parts.retain(|p| !p.is_empty());
    Some(parts.join(" "))
}

/// Replaces all physical lines of a logical line by one line of text at
/// its position, keeping the terminator of its last physical line (so a
/// file without a final newline keeps lacking one). Comments between its
/// continuations stay.
pub(super) fn replace_logical(lines: &mut Lines, l: &Logical, text: &str) {
    let eol = lines::eol(&lines[l.last()]);
    for &i in l.conts.iter().rev() {
        lines.remove(i);
    }
    lines[l.head] = lines::with_eol(text, eol);
}

/// Values compared as Postfix reads them: whitespace runs are one space.
pub(super) fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
