//! [`Secret`]: a byte buffer for private key material, and
//! [`protect_process`], which keeps key material out of core dumps.

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
/// - In the engine, its pages are locked in memory (`mlock(2)`, see
///   [`lock_secrets`]) where the limit on locked memory allows, so the key
///   is not written to swap.
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
        lock(&bytes);
        Secret { bytes }
    }

    /// An empty secret with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Secret {
        Secret::new(Vec::with_capacity(capacity))
    }

    /// A secret of `len` zero bytes, to be filled in place.
    pub(crate) fn zeroed(len: usize) -> Secret {
        Secret::new(vec![0; len])
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
            lock(&bigger);
            let old = std::mem::replace(&mut self.bytes, bigger);
            drop(Secret { bytes: old });
        }
        self.bytes.extend_from_slice(more);
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.bytes);
        unlock(&self.bytes);
    }
}

/// Whether [`Secret`] buffers are locked in memory; see [`lock_secrets`].
static LOCK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, lock the pages of every [`Secret`] in memory. The engine
/// turns this on: it runs for months and keeps its keys. Short commands
/// do not: locking splits the memory map at each buffer, which cost `plan`
/// of 10,000 keys most of a second, and they never dump core anyway
/// ([`protect_process`]).
pub fn lock_secrets() {
    LOCK.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The whole allocation of `bytes` (length and spare capacity) as a
/// pointer and length for `mlock(2)`; `None` when nothing is allocated.
fn allocation(bytes: &Vec<u8>) -> Option<(*mut std::ffi::c_void, usize)> {
    (bytes.capacity() > 0).then(|| (bytes.as_ptr().cast_mut().cast(), bytes.capacity()))
}

/// Locks the pages of the buffer (best effort: `RLIMIT_MEMLOCK`, 8 MiB
/// by default, may refuse; the key then stays unlocked, never lost).
fn lock(bytes: &Vec<u8>) {
    if !LOCK.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    if let Some((ptr, len)) = allocation(bytes) {
        // SAFETY: `ptr` and `len` describe the vector's own live allocation;
        // mlock(2) reads and writes no memory, it only pins the pages that
        // hold the range, and the vector is neither moved nor reallocated
        // while `Secret` owns it (see `extend_from_slice`).
        #[allow(unsafe_code)]
        let _ = unsafe { rustix::mm::mlock(ptr, len) };
    }
}

/// Unlocks the pages locked by [`lock`], before the allocation is freed.
/// Other data sharing a page loses its lock too, which is harmless.
fn unlock(bytes: &Vec<u8>) {
    if !LOCK.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    if let Some((ptr, len)) = allocation(bytes) {
        // SAFETY: as in `lock`; munlock(2) touches no memory either.
        #[allow(unsafe_code)]
        let _ = unsafe { rustix::mm::munlock(ptr, len) };
    }
}

/// Keeps key material out of core dumps, for every dkimctl command (most
/// read, write or hold keys): no core file at all (`RLIMIT_CORE` 0, soft
/// and hard) and not dumpable (`PR_SET_DUMPABLE` 0), which also covers a
/// `core_pattern` that pipes to a helper (such pipes ignore
/// `RLIMIT_CORE`) and keeps other processes of the same user from
/// reading this one's memory through /proc or ptrace. The engine calls it
/// again after switching users, which resets the dumpable flag. A crashed
/// root engine left a core file holding its Ed25519 seed before (issue 15,
/// item 14). Failures are ignored: nothing better can be done.
pub fn protect_process() {
    use nix::sys::resource::{Resource, setrlimit};
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    let _ = nix::sys::prctl::set_dumpable(false);
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
    fn the_process_cannot_dump_core() {
        use nix::sys::resource::{Resource, getrlimit};
        protect_process();
        assert_eq!(getrlimit(Resource::RLIMIT_CORE).unwrap(), (0, 0));
        assert!(!nix::sys::prctl::get_dumpable().unwrap());
    }

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
