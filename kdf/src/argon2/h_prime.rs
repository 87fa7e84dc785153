//! BLAKE2b-based hashing around the memory: H0 and the variable-length hash H'
//! (RFC 9106, sections 3.2 and 3.3).
//!
//! The BLAKE2b states cannot be wiped (the `blake2` crate offers no way to); every buffer
//! of ours that holds derived material is.

use super::Argon2Error;
use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;

/// The length of H0 and of H's full output.
pub(crate) const H0_LEN: usize = 64;

/// BLAKE2b with an `out.len()`-byte output (1..=64) of the concatenation of `parts`.
fn blake2b(parts: &[&[u8]], out: &mut [u8]) -> Result<(), Argon2Error> {
    let mut hasher = Blake2bVar::new(out.len()).map_err(|_| Argon2Error::Internal)?;
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize_variable(out)
        .map_err(|_| Argon2Error::Internal)
}

/// The inputs that H0 hashes, with the lengths already checked to fit 32 bits.
pub(crate) struct H0Input<'a> {
    pub(crate) lanes: u32,
    pub(crate) tag_len: u32,
    pub(crate) memory_kib: u32,
    pub(crate) time_cost: u32,
    pub(crate) version: u32,
    pub(crate) kind: u32,
    pub(crate) password: &'a [u8],
    pub(crate) salt: &'a [u8],
    pub(crate) secret: &'a [u8],
    pub(crate) associated: &'a [u8],
}

/// H0: BLAKE2b-512 of the parameters and every input, each input preceded by its length.
pub(crate) fn h0(input: &H0Input<'_>, out: &mut [u8; H0_LEN]) -> Result<(), Argon2Error> {
    let len = |bytes: &[u8]| u32::try_from(bytes.len()).map_err(|_| Argon2Error::InputTooLong);
    blake2b(
        &[
            &input.lanes.to_le_bytes(),
            &input.tag_len.to_le_bytes(),
            &input.memory_kib.to_le_bytes(),
            &input.time_cost.to_le_bytes(),
            &input.version.to_le_bytes(),
            &input.kind.to_le_bytes(),
            &len(input.password)?.to_le_bytes(),
            input.password,
            &len(input.salt)?.to_le_bytes(),
            input.salt,
            &len(input.secret)?.to_le_bytes(),
            input.secret,
            &len(input.associated)?.to_le_bytes(),
            input.associated,
        ],
        out,
    )
}

/// H'^T of the concatenation of `parts`, with T = `out.len()` (at most 2^32 − 1).
///
/// Up to 64 bytes it is BLAKE2b-T of LE32(T) || A; longer outputs chain BLAKE2b-512
/// V_1..V_r (r = ceil(T/32) − 2) keeping the first 32 bytes of each, then a final
/// V_{r+1} of the remaining T − 32r bytes.
pub(crate) fn h_prime(parts: &[&[u8]], out: &mut [u8]) -> Result<(), Argon2Error> {
    let tag_len =
        u32::try_from(out.len()).map_err(|_| Argon2Error::OutputLength { len: out.len() })?;
    let prefix = tag_len.to_le_bytes();
    if out.len() <= H0_LEN {
        let mut hasher = Blake2bVar::new(out.len()).map_err(|_| Argon2Error::Internal)?;
        hasher.update(&prefix);
        for part in parts {
            hasher.update(part);
        }
        return hasher
            .finalize_variable(out)
            .map_err(|_| Argon2Error::Internal);
    }

    let mut v = [0u8; H0_LEN];
    let mut hasher = Blake2bVar::new(H0_LEN).map_err(|_| Argon2Error::Internal)?;
    hasher.update(&prefix);
    for part in parts {
        hasher.update(part);
    }
    let result = hasher
        .finalize_variable(&mut v)
        .map_err(|_| Argon2Error::Internal)
        .and_then(|()| chain(&mut v, out));
    crate::wipe(&mut v);
    result
}

/// The rest of H' from V_1 in `v`: 32 bytes of each V_i, then the last V_{r+1} whole.
fn chain(v: &mut [u8; H0_LEN], out: &mut [u8]) -> Result<(), Argon2Error> {
    // r = ceil(T/32) - 2 full V_i of which 32 bytes are kept; T > 64 so r >= 1, and the
    // last one, V_{r+1}, is T - 32r bytes long, between 33 and 64.
    let r = out.len().div_ceil(32).saturating_sub(2);
    let (head, last) = out
        .split_at_mut_checked(r * 32)
        .ok_or(Argon2Error::Internal)?;
    let mut next = [0u8; H0_LEN];
    let mut result = Ok(());
    for (i, chunk) in head.chunks_exact_mut(32).enumerate() {
        for (o, b) in chunk.iter_mut().zip(v.iter()) {
            *o = *b;
        }
        if i + 1 < r {
            result = blake2b(&[v], &mut next);
            *v = next;
        }
    }
    if result.is_ok() {
        result = blake2b(&[v], last);
    }
    crate::wipe(&mut next);
    result
}
