//! Wiping memory that held material derived from a passphrase.
//!
//! Plain stores to memory that is about to be freed or go out of scope are dead stores
//! the optimiser may delete; volatile stores are not, and the fence keeps later code from
//! being reordered before them.

use core::sync::atomic::{compiler_fence, Ordering};

/// Overwrites `bytes` with zeros in a way the optimiser keeps.
pub(crate) fn wipe(bytes: &mut [u8]) {
    for byte in bytes.iter_mut() {
        // SAFETY: `byte` is a valid, aligned, exclusive reference.
        unsafe { core::ptr::write_volatile(byte, 0) };
    }
    compiler_fence(Ordering::SeqCst);
}

/// Overwrites `words` with zeros in a way the optimiser keeps.
pub(crate) fn wipe_words(words: &mut [u64]) {
    for word in words.iter_mut() {
        // SAFETY: `word` is a valid, aligned, exclusive reference.
        unsafe { core::ptr::write_volatile(word, 0) };
    }
    compiler_fence(Ordering::SeqCst);
}
