//! Reading a binary header's fields: big-endian integers and NUL-terminated text.

pub(crate) fn bytes(b: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(len)?)
}

pub(crate) fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes(b, at, 2)?.try_into().ok()?))
}

pub(crate) fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes(b, at, 4)?.try_into().ok()?))
}

pub(crate) fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes(b, at, 8)?.try_into().ok()?))
}

/// A NUL-terminated text field: what comes before its NUL, as UTF-8. `None` when the field
/// has no NUL (the formats reserve the last byte for it) or is not UTF-8.
pub(crate) fn c_string(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0)?;
    std::str::from_utf8(field.get(..end)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let b = [0u8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(be_u16(&b, 1), Some(0x0102));
        assert_eq!(be_u32(&b, 5), Some(0x05060708));
        assert_eq!(be_u64(&b, 1), Some(0x0102030405060708));
        assert_eq!(be_u64(&b, 2), None);
        assert_eq!(bytes(&b, usize::MAX, 2), None);
        assert_eq!(c_string(b"aes\0\0"), Some("aes"));
        assert_eq!(c_string(b"\0"), Some(""));
        assert_eq!(c_string(b"aes"), None);
        assert_eq!(c_string(b"\xff\0"), None);
    }
}
