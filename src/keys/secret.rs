//! [`Secret`]: a byte buffer for private key material.

use std::fmt;
use std::sync::atomic::{Ordering, compiler_fence};

/// Private key material (a PEM text or a DER encoding).
///
/// - `Debug` and `Display` print `<secret>`, so a key can never end up in a
///   log line or an error message by accident.
/// - The buffer (including unused capacity) is overwritten with zeros when
///   the value is dropped.
/// - It is deliberately not `Clone` and not `PartialEq`: copies multiply
///   the places a key lingers in memory, and `==` on secrets invites
///   timing leaks.
///
/// Zeroing is best effort: without `unsafe` (denied in this crate) we
/// cannot use volatile writes, so the zeros are followed by a compiler
/// fence and [`std::hint::black_box`], which keeps the optimiser from
/// deleting the "dead" stores. Copies made by the allocator when a `Vec`
/// grows are out of reach, which is why the code in this module sizes its
/// buffers up front (see `Secret::extend_from_slice`).
pub struct Secret {
    bytes: Vec<u8>,
}

impl Secret {
    /// Takes ownership of `bytes` (no copy is made).
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret { bytes }
    }

    /// An empty secret with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Secret {
        Secret {
            bytes: Vec::with_capacity(capacity),
        }
    }

    /// A secret of `len` zero bytes, to be filled in place.
    pub(crate) fn zeroed(len: usize) -> Secret {
        Secret {
            bytes: vec![0; len],
        }
    }

    /// The bytes. Handle with care: do not format them, log them or put
    /// them in an error.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes as text, if they are UTF-8 (a PEM file is ASCII).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }

    /// Mutable access for filling a buffer made by [`Secret::zeroed`].
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Shortens the secret; the cut-off bytes are zeroed at once.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len < self.bytes.len() {
            self.bytes[len..].iter_mut().for_each(|b| *b = 0);
            self.bytes.truncate(len);
        }
    }

    /// Appends bytes. If the buffer is full it is not grown in place (the
    /// allocator would free the old block without zeroing it): a larger
    /// buffer is allocated, the bytes are copied, and the old buffer is
    /// wiped.
    pub(crate) fn extend_from_slice(&mut self, more: &[u8]) {
        let needed = self.bytes.len().saturating_add(more.len());
        if needed > self.bytes.capacity() {
            let mut bigger = Vec::with_capacity(needed.saturating_mul(2));
            bigger.extend_from_slice(&self.bytes);
            let old = std::mem::replace(&mut self.bytes, bigger);
            drop(Secret { bytes: old });
        }
        self.bytes.extend_from_slice(more);
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.bytes);
    }
}

/// Overwrites every byte of the vector's allocation with zeros.
fn wipe(bytes: &mut Vec<u8>) {
    bytes.iter_mut().for_each(|b| *b = 0);
    // The spare capacity may hold bytes from an earlier `truncate` or from
    // data the buffer held before; writing through `MaybeUninit` is safe.
    for slot in bytes.spare_capacity_mut() {
        slot.write(0);
    }
    compiler_fence(Ordering::SeqCst);
    std::hint::black_box(bytes);
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s.into_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_placeholder() {
        let s = Secret::from(String::from("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(format!("{s:?}"), "<secret>");
        assert_eq!(format!("{s}"), "<secret>");
        assert_eq!(s.expose_str(), Some("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn extend_and_truncate() {
        let mut s = Secret::with_capacity(2);
        s.extend_from_slice(b"ab");
        s.extend_from_slice(b"cdef");
        assert_eq!(s.expose(), b"abcdef");
        s.truncate(3);
        assert_eq!(s.expose(), b"abc");
        assert_eq!(s.len(), 3);
        assert!(!s.is_empty());
        let mut v = vec![1u8, 2, 3];
        v.truncate(1);
        wipe(&mut v);
        assert_eq!(v, [0]);
    }
}
