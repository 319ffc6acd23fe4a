//! Unified diffs of managed files (via `similar`), and their colouring.
//!
//! Diffs are only ever made of non-secret content: the plan never reads a
//! private key, so there is nothing here to redact.

use std::io::{self, Write};
use std::path::Path;

use similar::TextDiff;

/// Lines of context around each change, as `diff -u`.
const CONTEXT: usize = 3;

/// A unified diff from `old` (`None`: the file does not exist) to `new`,
/// with `--- a/etc/...` / `+++ b/etc/...` headers (`--- /dev/null` for a
/// new file). Empty when the texts are equal.
pub(crate) fn unified(host: &Path, old: Option<&[u8]>, new: &[u8]) -> String {
    let rel = host.strip_prefix("/").unwrap_or(host).display().to_string();
    let a = match old {
        Some(_) => format!("a/{rel}"),
        None => "/dev/null".to_string(),
    };
    let b = format!("b/{rel}");
    // Diffs are for people: invalid UTF-8 is shown as U+FFFD. The bytes
    // that get written are the exact ones, not these.
    let old_text = String::from_utf8_lossy(old.unwrap_or_default());
    let new_text = String::from_utf8_lossy(new);
    let diff = TextDiff::from_lines(old_text.as_ref(), new_text.as_ref());
    let out = diff
        .unified_diff()
        .context_radius(CONTEXT)
        .header(&a, &b)
        .to_string();
    if out.is_empty() && old.unwrap_or_default() != new {
        // Bytes differ only where lossy decoding hides it.
        return format!("Binary files {a} and {b} differ\n");
    }
    out
}

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Writes a diff, coloured (green `+`, red `-`, cyan `@@`) when `color`.
pub(crate) fn write_diff(out: &mut dyn Write, diff: &str, color: bool) -> io::Result<()> {
    for line in diff.split_inclusive('\n') {
        let style = if !color {
            None
        } else if line.starts_with("+++ ") || line.starts_with("--- ") {
            Some(BOLD)
        } else if line.starts_with('+') {
            Some(GREEN)
        } else if line.starts_with('-') {
            Some(RED)
        } else if line.starts_with("@@") {
            Some(CYAN)
        } else {
            None
        };
        match style {
            Some(s) => {
                let text = line.strip_suffix('\n').unwrap_or(line);
                write!(out, "{s}{text}{RESET}")?;
                if line.ends_with('\n') {
                    writeln!(out)?;
                }
            }
            None => out.write_all(line.as_bytes())?,
        }
    }
    if !diff.is_empty() && !diff.ends_with('\n') {
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_context() {
        let old = b"1\n2\n3\n4\n5\n6\n7\n8\n";
        let new = b"1\n2\n3\n4\nfive\n6\n7\n8\n";
        let d = unified(Path::new("/etc/x.conf"), Some(old), new);
        assert_eq!(
            d,
            "--- a/etc/x.conf\n+++ b/etc/x.conf\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
        );
        let c = unified(Path::new("/etc/new"), None, b"a\nb\n");
        assert_eq!(c, "--- /dev/null\n+++ b/etc/new\n@@ -0,0 +1,2 @@\n+a\n+b\n");
        assert_eq!(unified(Path::new("/x"), Some(b"a\n"), b"a\n"), "");
        assert!(unified(Path::new("/x"), Some(b"\xff\n"), b"\xfe\n").starts_with("Binary"));
    }

    #[test]
    fn colours_only_when_asked() {
        let d = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";
        let mut plain = Vec::new();
        write_diff(&mut plain, d, false).expect("write");
        assert_eq!(plain, d.as_bytes());
        let mut col = Vec::new();
        write_diff(&mut col, d, true).expect("write");
        let col = String::from_utf8(col).expect("utf8");
        assert!(col.contains("\x1b[31m-a\x1b[0m\n"));
        assert!(col.contains("\x1b[32m+b\x1b[0m\n"));
        assert!(col.contains("\x1b[36m@@ -1 +1 @@\x1b[0m\n"));
    }
}
