//! cryptsetup's cipher specifications (`aes-xts-plain64`, `aes-cbc-essiv:sha256`) in the
//! kernel crypto API's terms. dm-crypt's table takes cryptsetup's form as it is; a keyslot's
//! area is decrypted through AF_ALG, whose skcipher wants the mode around the cipher
//! (`xts(aes)`) and leaves the IV to the caller: the generators named here are the ones the
//! caller computes per 512-byte sector.

/// A cipher specification in the kernel's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCipher {
    /// The skcipher algorithm: `xts(aes)`, `cbc(aes)`.
    pub alg: String,
    pub iv: Iv,
}

/// How a sector's IV is made from its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iv {
    /// The sector number, 32-bit little-endian, zero-padded.
    Plain,
    /// The sector number, 64-bit little-endian, zero-padded.
    Plain64,
    /// The sector number (64-bit little-endian, zero-padded) encrypted with the cipher, keyed
    /// by this hash of the key.
    Essiv { hash: String },
}

/// `cipher-mode-iv` in the kernel's terms; `None` for the forms baton does not decrypt with
/// (other IV generators, `capi:` specifications, modes without an IV), for the caller to name.
pub fn kernel_cipher(spec: &str) -> Option<KernelCipher> {
    let mut parts = spec.splitn(3, '-');
    let (cipher, mode, iv) = (parts.next()?, parts.next()?, parts.next()?);
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if !word(cipher) || !word(mode) {
        return None;
    }
    let iv = match iv {
        "plain" => Iv::Plain,
        "plain64" => Iv::Plain64,
        _ => {
            let hash = iv.strip_prefix("essiv:")?;
            if !hash
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                || hash.is_empty()
            {
                return None;
            }
            Iv::Essiv {
                hash: hash.to_owned(),
            }
        }
    };
    Some(KernelCipher {
        alg: format!("{mode}({cipher})"),
        iv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(alg: &str, iv: Iv) -> Option<KernelCipher> {
        Some(KernelCipher {
            alg: alg.into(),
            iv,
        })
    }

    #[test]
    fn specs() {
        assert_eq!(kernel_cipher("aes-xts-plain64"), k("xts(aes)", Iv::Plain64));
        assert_eq!(
            kernel_cipher("serpent-xts-plain64"),
            k("xts(serpent)", Iv::Plain64)
        );
        assert_eq!(
            kernel_cipher("twofish-cbc-plain"),
            k("cbc(twofish)", Iv::Plain)
        );
        assert_eq!(
            kernel_cipher("aes-cbc-essiv:sha256"),
            k(
                "cbc(aes)",
                Iv::Essiv {
                    hash: "sha256".into()
                }
            )
        );
        assert_eq!(
            kernel_cipher("des3_ede-cbc-essiv:sha3-256"),
            k(
                "cbc(des3_ede)",
                Iv::Essiv {
                    hash: "sha3-256".into()
                }
            )
        );
        for other in [
            "aes-cbc-benbi",
            "aes-xts-plain64be",
            "aes-cbc-lmk",
            "aes-ecb",
            "aes",
            "aes-xts",
            "capi:xts(aes)-plain64",
            "aes-xts-essiv:",
            "aes-xts-essiv:SHA256",
            "AES-xts-plain64",
            "-xts-plain64",
            "aes--plain64",
            "aes-xts-plain64-x",
            "",
        ] {
            assert_eq!(kernel_cipher(other), None, "{other}");
        }
    }
}
