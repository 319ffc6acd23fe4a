//! Physical lines of an admin-owned text file, kept as raw bytes so that
//! every line the merge does not touch is written back byte for byte
//! (including non-UTF-8 bytes, `\r`, and a missing final newline).

/// A file as its physical lines, each with its terminator (if any).
pub(crate) type Lines = Vec<Vec<u8>>;

/// Splits a file into physical lines; the last one may lack `\n`.
pub(crate) fn split(text: &[u8]) -> Lines {
    text.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Joins physical lines back into a file.
pub(crate) fn join(lines: &Lines) -> Vec<u8> {
    lines.concat()
}

/// A line without its terminator (`\n` or `\r\n`).
pub(crate) fn body(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// The terminator of a line: `\r\n`, `\n` or nothing.
pub(crate) fn eol(line: &[u8]) -> &'static [u8] {
    if line.ends_with(b"\r\n") {
        b"\r\n"
    } else if line.ends_with(b"\n") {
        b"\n"
    } else {
        b""
    }
}

/// A line of text with the given terminator.
pub(crate) fn with_eol(text: &str, eol: &[u8]) -> Vec<u8> {
    let mut v = text.as_bytes().to_vec();
    v.extend_from_slice(eol);
    v
}

/// Makes sure line `i` ends with a newline (before something is inserted
/// after the last line of a file that lacked one).
pub(crate) fn terminate(lines: &mut Lines, i: usize) {
    if let Some(l) = lines.get_mut(i)
        && !l.ends_with(b"\n")
    {
        l.push(b'\n');
    }
}

/// Appends a line at the end, first terminating the last line if it
/// lacked a newline.
pub(crate) fn append(lines: &mut Lines, text: &str) {
    if let Some(last) = lines.len().checked_sub(1) {
        terminate(lines, last);
    }
    lines.push(with_eol(text, b"\n"));
}

/// True for space and tab.
pub(crate) fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The line with leading spaces and tabs removed.
pub(crate) fn trim_start(line: &[u8]) -> &[u8] {
    let n = line.iter().take_while(|&&b| is_blank(b)).count();
    &line[n..]
}

/// Byte ranges of the whitespace-separated tokens of a line body.
pub(crate) fn tokens(body: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < body.len() && !body[i].is_ascii_whitespace() {
            i += 1;
        }
        out.push((start, i));
    }
    out
}
