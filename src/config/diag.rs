//! Diagnostics about the user's `dkim.toml`: every problem found, each at
//! `file:line:col`, with the offending text and a hint.
//!
//! Diagnostics are collected, never thrown: the loader and the validator
//! push into one [`Diagnostics`] and the caller prints them all at once
//! (ripgrep's config reader does the same), so one run of `dkimctl check`
//! shows every mistake in the file.

use std::fmt;
use std::ops::Range;

use crate::report::Severity;

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// The file as the user named it.
    pub file: String,
    /// 1-based line; 0 when the problem has no place in the file.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong, one clause, lower case.
    pub message: String,
    /// The source line, the column and width to underline.
    pub excerpt: Option<(String, usize, usize)>,
    /// How to fix it.
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        } else {
            write!(f, "{}: ", self.file)?;
        }
        write!(f, "{}: {}", self.severity.as_str(), self.message)?;
        let help = self.help.as_deref().unwrap_or("");
        match &self.excerpt {
            Some((text, col, width)) => {
                let num = self.line.to_string();
                let pad = " ".repeat(num.len());
                write!(f, "\n{pad} |\n{num} | {text}\n{pad} | ")?;
                write!(f, "{}{}", " ".repeat(col - 1), "^".repeat(*width))?;
                if !help.is_empty() {
                    write!(f, " {help}")?;
                }
            }
            None if !help.is_empty() => write!(f, "\n  = help: {help}")?,
            None => {}
        }
        Ok(())
    }
}

/// Most characters of a source line an excerpt shows: a long line (a
/// list of thousands of hosts) is shown around the column, so each
/// diagnostic costs the same however long its line is.
const EXCERPT_WIDTH: usize = 100;

/// The diagnostics of one file, with the source text to place them.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    file: String,
    source: String,
    list: Vec<Diagnostic>,
    /// Byte offset of the start of each line, made on first use: placing
    /// a diagnostic is then a binary search, not a scan from the top.
    line_starts: Vec<usize>,
    /// The last place found (byte offset, its character column), so that
    /// many diagnostics along one long line count its characters once.
    last: Option<(usize, usize)>,
}

impl Diagnostics {
    /// Starts an empty list for `file` whose text is `source`.
    pub fn new(file: impl Into<String>, source: impl Into<String>) -> Self {
        Diagnostics {
            file: file.into(),
            source: source.into(),
            list: Vec::new(),
            line_starts: Vec::new(),
            last: None,
        }
    }

    /// The file name the diagnostics are reported against.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Adds a problem at a byte span of the source (or nowhere).
    pub fn push(
        &mut self,
        severity: Severity,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let (line, col, excerpt) = match span {
            Some(span) => self.locate(span),
            None => (0, 0, None),
        };
        self.list.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line,
            col,
            message: cut_long_words(message.into()),
            excerpt,
            help: help.map(cut_long_words),
        });
    }

    /// Adds an error.
    pub fn error(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.push(Severity::Error, span, message, None);
    }

    /// Adds an error with a hint.
    pub fn error_help(
        &mut self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Severity::Error, span, message, Some(help.into()));
    }

    /// Adds a warning with a hint.
    pub fn warning(
        &mut self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Severity::Warning, span, message, Some(help.into()));
    }

    /// Adds an informational note.
    pub fn info(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.push(Severity::Info, span, message, None);
    }

    /// True when at least one error was found.
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }

    /// Number of diagnostics of a severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.list.iter().filter(|d| d.severity == severity).count()
    }

    /// Every diagnostic, sorted by place in the file.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut v: Vec<&Diagnostic> = self.list.iter().collect();
        v.sort_by_key(|d| (d.line == 0, d.line, d.col));
        v
    }

    /// Every diagnostic, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter()
    }

    /// Line, column (both 1-based; column in characters) and excerpt of a
    /// byte span. The excerpt is at most [`EXCERPT_WIDTH`] characters of
    /// the line, around the span.
    fn locate(&mut self, span: Range<usize>) -> (usize, usize, Option<(String, usize, usize)>) {
        if self.line_starts.is_empty() {
            self.line_starts = std::iter::once(0)
                .chain(self.source.match_indices('\n').map(|(i, _)| i + 1))
                .collect();
        }
        let src = self.source.as_str();
        let start = floor_char_boundary(src, span.start.min(src.len()));
        let line_idx = self.line_starts.partition_point(|&s| s <= start) - 1;
        let line_start = self.line_starts[line_idx];
        let line_end = self
            .line_starts
            .get(line_idx + 1)
            .map_or(src.len(), |&next| next - 1);
        // Characters from the line start to `start`, counted from the last
        // place when it lies on this line before `start`.
        let col0 = match self.last {
            Some((at, col)) if at >= line_start && at <= start => {
                col + src[at..start].chars().count()
            }
            _ => src[line_start..start].chars().count(),
        };
        self.last = Some((start, col0));
        let end = floor_char_boundary(src, span.end.clamp(start, line_end));
        let width = src[start..end].chars().count().max(1);
        // The excerpt: the whole line when short, else a window that
        // starts a little before the span.
        let text_end = src[line_start..line_end].trim_end_matches('\r').len() + line_start;
        let (from, lead) = if text_end - line_start <= EXCERPT_WIDTH || col0 <= EXCERPT_WIDTH / 4 {
            (line_start, col0)
        } else {
            let back: usize = src[line_start..start]
                .char_indices()
                .rev()
                .nth(EXCERPT_WIDTH / 4 - 1)
                .map_or(line_start, |(i, _)| line_start + i);
            (back, EXCERPT_WIDTH / 4)
        };
        let text: String = src[from..text_end.max(from)]
            .chars()
            .take(EXCERPT_WIDTH)
            .collect();
        let shown_width = width.min(EXCERPT_WIDTH.saturating_sub(lead)).max(1);
        (line_idx + 1, col0 + 1, Some((text, lead + 1, shown_width)))
    }
}

/// Longest run of non-blank characters a message shows whole.
const WORD_WIDTH: usize = 80;

/// A message with every run of non-blank characters longer than
/// [`WORD_WIDTH`] cut to its start and end around `…`. No word of ours is
/// that long, so such a run is a value from the file, which the message
/// may quote more than once (a 50 MB domain was echoed three times).
fn cut_long_words(message: String) -> String {
    if message.len() <= WORD_WIDTH {
        return message;
    }
    let mut out = String::with_capacity(message.len().min(4 * WORD_WIDTH));
    let mut cut = false;
    for (i, word) in message.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let chars = word.chars().count();
        if chars <= WORD_WIDTH {
            out.push_str(word);
            continue;
        }
        cut = true;
        out.extend(word.chars().take(WORD_WIDTH - 20));
        out.push('…');
        out.extend(word.chars().skip(chars - 8));
        out.push_str(&format!(" ({chars} characters)"));
    }
    if cut { out } else { message }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_errors_by_line_and_character_column() {
        let src = "a = 1\n[x]\n  sélecteur = \"é\" # c\n";
        let mut d = Diagnostics::new("f.toml", src);
        let start = src.find("\"é\"").unwrap();
        d.error_help(Some(start..start + 4), "bad value", "fix it");
        let out = d.sorted()[0].to_string();
        assert_eq!(
            out,
            "f.toml:3:15: error: bad value\n  |\n3 |   sélecteur = \"é\" # c\n  |               ^^^ fix it"
        );
    }

    /// Issue 15, item 10: diagnostics along one very long line each keep
    /// a bounded excerpt, and place their columns in linear time.
    #[test]
    fn long_lines_give_bounded_excerpts() {
        let n = 20_000;
        let src = format!(
            "hosts = [{}]\n",
            (0..n)
                .map(|i| format!("\"h{i:05}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut d = Diagnostics::new("f.toml", src.clone());
        let started = std::time::Instant::now();
        for i in 0..n {
            // `hosts = [` then items of 8 bytes and `, `.
            let at = 9 + i * 10;
            d.warning(Some(at..at + 8), "listed twice", "remove one");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let last = d.sorted()[n - 1].clone();
        assert_eq!(last.col, 9 + (n - 1) * 10 + 1);
        let (text, col, width) = last.excerpt.unwrap();
        assert!(text.chars().count() <= EXCERPT_WIDTH, "{}", text.len());
        assert_eq!(&text[col - 1..col - 1 + width], "\"h19999\"");
        let shown = d.sorted()[0].to_string();
        assert!(
            shown.starts_with("f.toml:1:10: warning: listed twice\n"),
            "{shown}"
        );
        assert!(shown.len() < 400, "{shown}");
    }

    /// Issue 15, item 16: a huge value is not echoed whole.
    #[test]
    fn long_values_are_cut_in_messages() {
        let v = "a".repeat(1_000_000);
        let src = format!("name = \"{v}\"\n");
        let mut d = Diagnostics::new("f.toml", src.clone());
        d.error(
            Some(7..src.len() - 1),
            format!("invalid domain \"{v}\": label \"{v}\" must have 1 to 63 characters"),
        );
        let shown = d.sorted()[0].to_string();
        assert!(shown.len() < 600, "{} bytes", shown.len());
        assert!(
            shown.starts_with("f.toml:1:8: error: invalid domain \"aaaa"),
            "{shown}"
        );
        assert!(
            shown.contains("…aaaaaa\": (1000003 characters) label \"aaaa"),
            "{shown}"
        );
        assert!(shown.contains("must have 1 to 63 characters"), "{shown}");
    }
}
