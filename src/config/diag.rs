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

/// The diagnostics of one file, with the source text to place them.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    file: String,
    source: String,
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Starts an empty list for `file` whose text is `source`.
    pub fn new(file: impl Into<String>, source: impl Into<String>) -> Self {
        Diagnostics {
            file: file.into(),
            source: source.into(),
            list: Vec::new(),
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
            message: message.into(),
            excerpt,
            help,
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
    /// byte span.
    fn locate(&self, span: Range<usize>) -> (usize, usize, Option<(String, usize, usize)>) {
        let start = floor_char_boundary(&self.source, span.start.min(self.source.len()));
        let line_start = self.source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.source[start..]
            .find('\n')
            .map_or(self.source.len(), |i| start + i);
        let line = self.source[..start].matches('\n').count() + 1;
        let text = self.source[line_start..line_end].trim_end_matches('\r');
        let col = self.source[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(&self.source, span.end.clamp(start, line_end));
        let width = self.source[start..end].chars().count().max(1);
        (line, col, Some((text.to_string(), col, width)))
    }
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
}
