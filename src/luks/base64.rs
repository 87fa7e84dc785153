//! Base64 (RFC 4648, the standard alphabet, padded), as LUKS2 stores salts and digests.
//! Bounded: the caller names the most bytes it accepts, checked before decoding.

use std::fmt;

/// Why a text is not base64, and the character where that was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at character {}", self.reason, self.offset)
    }
}

impl std::error::Error for Error {}

fn sextet(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes `text` into at most `max_len` bytes. Padding is required (cryptsetup writes it);
/// the bits a final `=` leaves unused are ignored, as cryptsetup's decoder does.
pub fn decode(text: &str, max_len: usize) -> Result<Vec<u8>, Error> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return Err(Error {
            offset: bytes.len(),
            reason: "length not a multiple of 4",
        });
    }
    let padding = bytes
        .iter()
        .rev()
        .take(2)
        .take_while(|&&c| c == b'=')
        .count();
    let len = bytes.len() / 4 * 3 - padding;
    if len > max_len {
        return Err(Error {
            offset: 0,
            reason: "longer than allowed",
        });
    }
    let mut out = Vec::with_capacity(len);
    for (n, quad) in bytes.chunks_exact(4).enumerate() {
        let mut word = 0u32;
        for (i, &c) in quad.iter().enumerate() {
            let at = n * 4 + i;
            let v = match sextet(c) {
                Some(v) => v,
                // Padding: only in the last 2 places of the text.
                None if c == b'=' && at >= bytes.len() - padding => 0,
                None => {
                    return Err(Error {
                        offset: at,
                        reason: "not a base64 character",
                    })
                }
            };
            word = word << 6 | v;
        }
        out.extend_from_slice(word.to_be_bytes().get(1..).unwrap_or_default());
    }
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        for (text, plain) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(decode(text, 64).unwrap(), plain.as_bytes(), "{text}");
        }
        assert_eq!(decode("+/+/", 3).unwrap(), [0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn luks2_salt() {
        let salt = decode("14tFp1ZQXC1FP9I1I2xL+khQ4lMOEr7mtZJqPoqEf0Q=", 32).unwrap();
        assert_eq!(salt.len(), 32);
        assert_eq!(salt[..4], [0xd7, 0x8b, 0x45, 0xa7]);
    }

    #[test]
    fn errors() {
        let e = |t: &str, max| decode(t, max).unwrap_err();
        assert_eq!(e("Zm9", 64).reason, "length not a multiple of 4");
        assert_eq!(e("Zm9vYg==", 3).reason, "longer than allowed");
        assert!(decode("Zm9vYg==", 4).is_ok());
        assert_eq!(
            e("Zm-v", 64),
            Error {
                offset: 2,
                reason: "not a base64 character"
            }
        );
        assert_eq!(e("Z=9v", 64).offset, 1);
        assert_eq!(e("Zm9v=Zg=", 64).offset, 4);
        assert_eq!(e("Z===", 64).offset, 1);
        assert_eq!(e("Zm9\n", 64).offset, 3);
        assert_eq!(
            e("Zm9vYg==", 0).to_string(),
            "longer than allowed at character 0"
        );
        // Unused bits set: accepted, as cryptsetup's decoder does.
        assert_eq!(decode("Zh==", 1).unwrap(), b"f");
    }
}
