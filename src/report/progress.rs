//! Progress on a terminal for the slow steps (RSA-4096 key generation, DNS
//! checks of many domains): one line on stderr, rewritten in place, only
//! when stderr is a terminal — never in pipes, logs or `--json` output.

use std::io::{IsTerminal, Write};

/// A progress line for `total` steps.
pub struct Progress {
    what: &'static str,
    total: usize,
    on: bool,
}

impl Progress {
    /// Starts a progress line (silent unless stderr is a terminal).
    pub fn new(what: &'static str, total: usize) -> Progress {
        Progress {
            what,
            total,
            on: std::io::stderr().is_terminal(),
        }
    }

    /// Shows step `i` (0-based) working on `item`.
    pub fn step(&self, i: usize, item: &str) {
        if self.on {
            let mut e = std::io::stderr().lock();
            let _ = write!(
                e,
                "\r\x1b[2K{} [{}/{}] {item}",
                self.what,
                i + 1,
                self.total
            );
            let _ = e.flush();
        }
    }

    /// Clears the line.
    pub fn finish(&self) {
        if self.on {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
        }
    }
}
