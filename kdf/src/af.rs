//! LUKS's anti-forensic merge (AFmerge, LUKS1 on-disk format specification, section 2.4),
//! which LUKS2 keyslots also use (`"af": {"type": "luks1", "stripes": 4000, ...}`).
//!
//! A keyslot stores the volume key split into `stripes` stripes, each as long as the key,
//! so that wiping any part of the keyslot's area loses the key. Merging XORs the stripes
//! together with a hash-based diffusion after each but the last.

use crate::hash::{Hash, MAX_DIGEST_LEN};
use core::fmt;

/// Why [`af_merge`] refused its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfError {
    /// `stripes` was zero.
    NoStripes,
    /// `key_len` was zero, or `out` was not `key_len` bytes long.
    KeyLength { key_len: usize, out_len: usize },
    /// The split material was not `stripes * key_len` bytes long.
    SplitLength {
        stripes: u32,
        key_len: usize,
        split_len: usize,
    },
}

impl fmt::Display for AfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AfError::NoStripes => write!(f, "anti-forensic split with no stripes"),
            AfError::KeyLength { key_len, out_len } => {
                write!(
                    f,
                    "anti-forensic merge of a {key_len}-byte key into {out_len} bytes"
                )
            }
            AfError::SplitLength {
                stripes,
                key_len,
                split_len,
            } => write!(
                f,
                "anti-forensic split of {split_len} bytes is not {stripes} stripes of {key_len}"
            ),
        }
    }
}

impl std::error::Error for AfError {}

/// Merges `split` (`stripes` stripes of `key_len` bytes) into the key, written to `out`
/// (`key_len` bytes), diffusing with `hash` (the keyslot's hash).
///
/// There is no upper bound on `stripes` beyond the length check: the work is linear in
/// the bytes of `split`, which the caller already holds (cryptsetup writes 4000).
pub fn af_merge(
    hash: Hash,
    split: &[u8],
    key_len: usize,
    stripes: u32,
    out: &mut [u8],
) -> Result<(), AfError> {
    if stripes == 0 {
        return Err(AfError::NoStripes);
    }
    if key_len == 0 || out.len() != key_len {
        return Err(AfError::KeyLength {
            key_len,
            out_len: out.len(),
        });
    }
    let expected = usize::try_from(stripes)
        .ok()
        .and_then(|s| s.checked_mul(key_len));
    if expected != Some(split.len()) {
        return Err(AfError::SplitLength {
            stripes,
            key_len,
            split_len: split.len(),
        });
    }

    merge(hash, split, key_len, stripes, out);
    // The hash states of the last diffusion hold part of d.
    crate::scrub_stack();
    Ok(())
}

/// The merge itself, on checked lengths. Never inlined, so that its frame (with the hash
/// states) is below [`af_merge`]'s, where the scrub reaches.
#[inline(never)]
fn merge(hash: Hash, split: &[u8], key_len: usize, stripes: u32, out: &mut [u8]) {
    // `out` is the running value d, so no other buffer ever holds the key.
    out.fill(0);
    let mut chunks = split.chunks_exact(key_len);
    for stripe in chunks.by_ref().take(stripes as usize - 1) {
        xor_into(out, stripe);
        diffuse(hash, out);
    }
    if let Some(last) = chunks.next() {
        xor_into(out, last);
    }
}

/// Replaces each digest-sized block i of `data` by H(be32(i) || block), the last block
/// (if shorter) by as many leading bytes of its hash.
pub(crate) fn diffuse(hash: Hash, data: &mut [u8]) {
    let mut digest = [0u8; MAX_DIGEST_LEN];
    for (block, index) in data.chunks_mut(hash.digest_len()).zip(0..=u32::MAX) {
        hash.digest_parts(&[&index.to_be_bytes(), block], &mut digest);
        for (b, d) in block.iter_mut().zip(digest.iter()) {
            *b = *d;
        }
    }
    crate::wipe(&mut digest);
}

pub(crate) fn xor_into(data: &mut [u8], other: &[u8]) {
    for (d, o) in data.iter_mut().zip(other) {
        *d ^= o;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::hex;

    /// AFsplit from the LUKS1 specification, with a fixed pseudo-random filler (the real
    /// one uses random bytes; merging does not care).
    fn af_split(hash: Hash, key: &[u8], stripes: u32, seed: u64) -> Vec<u8> {
        let mut state = seed;
        let mut filler = || {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        };
        let mut split = Vec::new();
        let mut d = vec![0u8; key.len()];
        for _ in 0..stripes - 1 {
            let stripe: Vec<u8> = (0..key.len()).map(|_| filler()).collect();
            xor_into(&mut d, &stripe);
            diffuse(hash, &mut d);
            split.extend_from_slice(&stripe);
        }
        xor_into(&mut d, key);
        split.extend_from_slice(&d);
        split
    }

    #[test]
    fn merge_undoes_split() {
        for hash in [Hash::Sha1, Hash::Sha256, Hash::Sha512] {
            for key_len in [16, 20, 32, 33, 64, 65, 100] {
                // LUKS's 4000 stripes once per hash: it is slow without optimisation.
                let many = if key_len == 64 { 4000 } else { 5 };
                for stripes in [1, 2, 3, many] {
                    let key: Vec<u8> = (0..key_len).map(|i| (i * 37 + 11) as u8).collect();
                    let split = af_split(hash, &key, stripes, 0x9E37_79B9_7F4A_7C15);
                    let mut merged = vec![0xAAu8; key_len];
                    af_merge(hash, &split, key_len, stripes, &mut merged).unwrap();
                    assert_eq!(merged, key, "{hash:?} key_len {key_len} stripes {stripes}");
                }
            }
        }
    }

    /// Small cases computed by hand with Python's hashlib:
    /// d = diffuse(s0 [^ diffuse(...)]), key = d ^ s_last, diffuse hashing be32(i) || block.
    #[test]
    fn small_known_merges() {
        let split: Vec<u8> = (0..40).chain(100..140).collect();
        let mut key = [0u8; 40];
        af_merge(Hash::Sha256, &split, 40, 2, &mut key).unwrap();
        assert_eq!(
            hex(&key),
            "db907c0a395afffcf257e963f4f204e92e057659164bbb3db94363515cc7f28115ed592730ad7125"
        );

        let split: Vec<u8> = (0..75u32).map(|i| ((7 * i + 3) % 256) as u8).collect();
        let mut key = [0u8; 25];
        af_merge(Hash::Sha1, &split, 25, 3, &mut key).unwrap();
        assert_eq!(
            hex(&key),
            "37abfc059488fb613e7189a30a411e94381ecefb644ebad750"
        );

        let split: Vec<u8> = (0..192u32).map(|i| ((11 * i + 5) % 256) as u8).collect();
        let mut key = [0u8; 64];
        af_merge(Hash::Sha512, &split, 64, 3, &mut key).unwrap();
        assert_eq!(
            hex(&key),
            "3e91ff2ed3a8a794fbf85c3394a7894c6860ad59ede9d7effd8be8b4e1776d5d\
             6dba1e1f0b55504466a7030b0674f12c2e1ae07658e0c2b4018f11876bab3d89"
        );
    }

    #[test]
    fn one_stripe_is_the_key() {
        let mut key = [0u8; 4];
        af_merge(Hash::Sha1, b"abcd", 4, 1, &mut key).unwrap();
        assert_eq!(&key, b"abcd");
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut key = [0u8; 32];
        assert_eq!(
            af_merge(Hash::Sha256, &[0; 64], 32, 0, &mut key),
            Err(AfError::NoStripes)
        );
        assert_eq!(
            af_merge(Hash::Sha256, &[0; 64], 32, 2, &mut key[..31]),
            Err(AfError::KeyLength {
                key_len: 32,
                out_len: 31
            })
        );
        assert_eq!(
            af_merge(Hash::Sha256, &[], 0, 2, &mut []),
            Err(AfError::KeyLength {
                key_len: 0,
                out_len: 0
            })
        );
        assert_eq!(
            af_merge(Hash::Sha256, &[0; 65], 32, 2, &mut key),
            Err(AfError::SplitLength {
                stripes: 2,
                key_len: 32,
                split_len: 65
            })
        );
        assert_eq!(
            af_merge(Hash::Sha256, &[0; 64], 32, u32::MAX, &mut key),
            Err(AfError::SplitLength {
                stripes: u32::MAX,
                key_len: 32,
                split_len: 64
            })
        );
        assert!(!AfError::NoStripes.to_string().is_empty());
    }
}
