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

/// How much stack [`scrub_stack`] overwrites: more than the deepest call chain under a
/// derivation function uses (Argon2's compression keeps two or three 1 KiB blocks there).
const SCRUB_WORDS: usize = 32 * 1024 / 8;

/// Overwrites the stack just below the caller's frame, where the functions it called
/// kept their temporaries: hash and HMAC states, and the compression's working block,
/// from which the block it computed can be recovered. The RustCrypto states cannot be
/// wiped in place; this wipes where they were.
///
/// Best effort: call it right after the `#[inline(never)]` function whose frames are to
/// be wiped has returned, from the function that called it.
#[inline(never)]
pub(crate) fn scrub_stack() {
    let mut area = [0u64; SCRUB_WORDS];
    wipe_words(&mut area);
    std::hint::black_box(&mut area);
}
