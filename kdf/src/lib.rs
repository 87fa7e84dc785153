//! LUKS key derivation for baton's init: PBKDF2, Argon2 and the anti-forensic merge.
//!
//! This crate is built at opt-level 3 inside an init otherwise optimised for size, since
//! key derivation runs one loop for seconds by design while the user waits at the
//! passphrase prompt. Generic code is compiled where it is instantiated, so every hash
//! and HMAC instantiation happens here, behind non-generic functions.
//!
//! Outputs are `&mut [u8]` the caller owns, so the caller decides where keys live and
//! when they are wiped; temporaries holding key material are wiped here before returning.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod af;
mod argon2;
mod hash;
mod pbkdf2;
mod wipe;

pub use af::{af_merge, AfError};
pub use argon2::{argon2, Argon2Error, Argon2Kind, Argon2Params};
pub use hash::Hash;
pub use pbkdf2::pbkdf2;

pub(crate) use wipe::{scrub_stack, wipe, wipe_words};

#[cfg(test)]
pub(crate) mod testutil {
    /// Lower-case hex of `bytes`, for comparing with published vectors.
    pub(crate) fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
