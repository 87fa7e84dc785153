//! The hashes LUKS names for PBKDF2 and the anti-forensic splitter.
//!
//! Callers pick a hash by the name a LUKS header carries; every generic digest type is
//! instantiated here, inside this crate, so that it is compiled with the crate's own
//! optimisation level rather than the size-optimised init's.

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// The largest digest of any [`enum@Hash`], for stack buffers that fit them all.
pub(crate) const MAX_DIGEST_LEN: usize = 64;

/// A hash that LUKS headers name for PBKDF2 (`hash` in LUKS1, `"hash"` in a LUKS2
/// keyslot's `kdf` or `af` object, or its digest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-1: still the hash of many LUKS1 volumes made before cryptsetup 1.7.
    Sha1,
    /// SHA-256: cryptsetup's default since 1.7.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Hash {
    /// The hash cryptsetup calls `name` ("sha1", "sha256", "sha512"), in any case, as
    /// LUKS1 headers store what the user typed at luksFormat.
    pub fn from_name(name: &str) -> Option<Hash> {
        [
            ("sha1", Hash::Sha1),
            ("sha256", Hash::Sha256),
            ("sha512", Hash::Sha512),
        ]
        .into_iter()
        .find(|(known, _)| name.eq_ignore_ascii_case(known))
        .map(|(_, hash)| hash)
    }

    /// The length of this hash's digest, in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha512 => 64,
        }
    }

    /// The digest of the concatenation of `parts`, written to the start of `out`.
    ///
    /// Returns the digest's length. The hash state itself cannot be wiped (the RustCrypto
    /// cores don't offer it); the caller wipes `out` once it is done with it.
    pub(crate) fn digest_parts(self, parts: &[&[u8]], out: &mut [u8; MAX_DIGEST_LEN]) -> usize {
        match self {
            Hash::Sha1 => digest_into::<Sha1>(parts, out),
            Hash::Sha256 => digest_into::<Sha256>(parts, out),
            Hash::Sha512 => digest_into::<Sha512>(parts, out),
        }
    }
}

/// One instantiation per hash of [`Hash::digest_parts`].
fn digest_into<D: Digest>(parts: &[&[u8]], out: &mut [u8; MAX_DIGEST_LEN]) -> usize {
    let mut hasher = D::new();
    for part in parts {
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let len = digest.len().min(MAX_DIGEST_LEN);
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::hex;

    #[test]
    fn names_are_cryptsetups_in_any_case() {
        assert_eq!(Hash::from_name("sha1"), Some(Hash::Sha1));
        assert_eq!(Hash::from_name("SHA256"), Some(Hash::Sha256));
        assert_eq!(Hash::from_name("Sha512"), Some(Hash::Sha512));
        assert_eq!(Hash::from_name("sha384"), None);
        assert_eq!(Hash::from_name("sha-256"), None);
        assert_eq!(Hash::from_name(""), None);
    }

    #[test]
    fn digest_lengths() {
        assert_eq!(Hash::Sha1.digest_len(), 20);
        assert_eq!(Hash::Sha256.digest_len(), 32);
        assert_eq!(Hash::Sha512.digest_len(), 64);
    }

    #[test]
    fn digest_of_parts_is_digest_of_concatenation() {
        let mut split = [0u8; MAX_DIGEST_LEN];
        let mut whole = [0u8; MAX_DIGEST_LEN];
        for hash in [Hash::Sha1, Hash::Sha256, Hash::Sha512] {
            let len = hash.digest_parts(&[b"ab", b"", b"c"], &mut split);
            assert_eq!(len, hash.digest_len());
            hash.digest_parts(&[b"abc"], &mut whole);
            assert_eq!(split, whole);
        }
        // FIPS 180-2's "abc" example.
        Hash::Sha256.digest_parts(&[b"abc"], &mut whole);
        assert_eq!(
            hex(&whole[..32]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
