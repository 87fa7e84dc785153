//! PBKDF2 (RFC 8018, section 5.2) with HMAC, as LUKS1 and LUKS2 keyslots and digests use it.

use crate::hash::Hash;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

/// PBKDF2-HMAC-`hash` of `password` and `salt` with `iterations` rounds, filling `out`.
///
/// `out` belongs to the caller, who decides where the key lives and wipes it. The
/// intermediate values U_i are wiped here before returning; the HMAC states (keyed with
/// the password) cannot be wiped in place, as the RustCrypto cores offer no way to, so
/// the stack they were on is overwritten afterwards (best effort).
///
/// Zero iterations count as one (the first U is always computed), as in the `pbkdf2`
/// crate; LUKS headers never carry fewer than 1000. RFC 8018 limits the output to
/// (2^32 − 1) blocks of the digest's length; bytes past that are left zero.
pub fn pbkdf2(hash: Hash, password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    match hash {
        Hash::Sha1 => derive::<Hmac<Sha1>>(password, salt, iterations, out),
        Hash::Sha256 => derive::<Hmac<Sha256>>(password, salt, iterations, out),
        Hash::Sha512 => derive::<Hmac<Sha512>>(password, salt, iterations, out),
    }
    crate::scrub_stack();
}

/// RFC 8018's F for each block of `out`; one instantiation per hash. Never inlined, so
/// that its frame (with the HMAC states) is below [`pbkdf2()`]'s, where the scrub reaches.
#[inline(never)]
fn derive<M: Mac + Clone + hmac::digest::KeyInit>(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    out: &mut [u8],
) {
    out.fill(0);
    // HMAC takes keys of any length (longer ones are hashed), so this never fails.
    let Ok(prf) = <M as hmac::digest::KeyInit>::new_from_slice(password) else {
        return;
    };
    let block_len = <M as hmac::digest::OutputSizeUser>::output_size();
    for (block, index) in out.chunks_mut(block_len).zip(1..=u32::MAX) {
        let mut mac = prf.clone();
        mac.update(salt);
        mac.update(&index.to_be_bytes());
        let mut u = mac.finalize().into_bytes();
        xor_into(block, &u);
        for _ in 1..iterations {
            let mut mac = prf.clone();
            mac.update(&u);
            u = mac.finalize().into_bytes();
            xor_into(block, &u);
        }
        crate::wipe(&mut u);
    }
}

fn xor_into(block: &mut [u8], u: &[u8]) {
    for (b, u) in block.iter_mut().zip(u) {
        *b ^= u;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::hex;

    fn derive_hex(hash: Hash, password: &[u8], salt: &[u8], iterations: u32, len: usize) -> String {
        let mut out = vec![0xAAu8; len];
        pbkdf2(hash, password, salt, iterations, &mut out);
        hex(&out)
    }

    const LONG_PASSWORD: &[u8] = b"passwordPASSWORDpassword";
    const LONG_SALT: &[u8] = b"saltSALTsaltSALTsaltSALTsaltSALTsalt";

    /// RFC 6070's vectors (the 2^24-iteration one is `rfc6070_sha1_16777216`).
    #[test]
    fn rfc6070_sha1() {
        type Case<'a> = (&'a [u8], &'a [u8], u32, usize, &'a str);
        let cases: [Case; 5] = [
            (
                b"password",
                b"salt",
                1,
                20,
                "0c60c80f961f0e71f3a9b524af6012062fe037a6",
            ),
            (
                b"password",
                b"salt",
                2,
                20,
                "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957",
            ),
            (
                b"password",
                b"salt",
                4096,
                20,
                "4b007901b765489abead49d926f721d065a429c1",
            ),
            (
                LONG_PASSWORD,
                LONG_SALT,
                4096,
                25,
                "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
            ),
            (
                b"pass\0word",
                b"sa\0lt",
                4096,
                16,
                "56fa6aa75548099dcc37d7f03425e0c3",
            ),
        ];
        for (password, salt, iterations, len, expected) in cases {
            assert_eq!(
                derive_hex(Hash::Sha1, password, salt, iterations, len),
                expected
            );
        }
    }

    #[test]
    #[ignore = "16.7 million iterations: seconds in release, minutes in debug"]
    fn rfc6070_sha1_16777216() {
        assert_eq!(
            derive_hex(Hash::Sha1, b"password", b"salt", 16_777_216, 20),
            "eefe3d61cd4da4e4e9945b3d6ba2158c2634e984"
        );
    }

    /// Checked against Python's `hashlib.pbkdf2_hmac` (OpenSSL).
    #[test]
    fn sha256_vectors() {
        assert_eq!(
            derive_hex(Hash::Sha256, b"password", b"salt", 1, 32),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            derive_hex(Hash::Sha256, b"password", b"salt", 4096, 32),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        // Two blocks, the second one shortened.
        assert_eq!(
            derive_hex(Hash::Sha256, LONG_PASSWORD, LONG_SALT, 4096, 40),
            "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9"
        );
        // A password longer than SHA-256's block, which HMAC hashes first.
        assert_eq!(
            derive_hex(Hash::Sha256, &[b'x'; 100], b"salt", 1000, 32),
            "afc5c595f05f2cd6c1ddd7bc2628ea4c5df74508996952bb4864d4047eae2500"
        );
    }

    /// Checked against Python's `hashlib.pbkdf2_hmac` (OpenSSL).
    #[test]
    fn sha512_vectors() {
        assert_eq!(
            derive_hex(Hash::Sha512, b"password", b"salt", 1, 64),
            "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252\
             c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"
        );
        assert_eq!(
            derive_hex(Hash::Sha512, b"password", b"salt", 4096, 64),
            "d197b1b33db0143e018b12f3d1d1479e6cdebdcc97c5c0f87f6902e072f457b5\
             143f30602641b3d55cd335988cb36b84376060ecd532e039b742a239434af2d5"
        );
        assert_eq!(
            derive_hex(Hash::Sha512, LONG_PASSWORD, LONG_SALT, 4096, 100),
            "8c0511f4c6e597c6ac6315d8f0362e225f3c501495ba23b868c005174dc4ee71\
             115b59f9e60cd9532fa33e0f75aefe30225c583a186cd82bd4daea9724a3d3b8\
             04f75bdd41494fa324cab24bcc680fb3b96a30cf5d21fac3c2875913919f3399\
             b1d9ce7e"
        );
        // A password longer than SHA-512's block and an empty salt.
        assert_eq!(
            derive_hex(Hash::Sha512, &[b'x'; 200], b"", 3, 64),
            "9642db3511db3c34dbb0146bacd68d565c49a40bac0866b2a344a29158ccca20\
             240c2866a7c5dfc72dbdf39d5114e98bd32b4c780d5b3d089233fe287ad25f38"
        );
    }

    #[test]
    fn empty_password_and_zero_iterations() {
        assert_eq!(
            derive_hex(Hash::Sha1, b"", b"salt", 7, 20),
            "368dffc5fda010a213c8d4b3179c48f6079cca0a"
        );
        assert_eq!(
            derive_hex(Hash::Sha1, b"password", b"salt", 0, 20),
            derive_hex(Hash::Sha1, b"password", b"salt", 1, 20)
        );
        // An empty output is no error.
        pbkdf2(Hash::Sha256, b"password", b"salt", 1, &mut []);
    }
}
