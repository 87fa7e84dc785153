//! The two checksums ext4 keeps in its metadata, in the kernel's and e2fsprogs' convention:
//! the raw register, no inversion before or after (the caller passes the seed, `!0` for the
//! superblock), so `crc32c(!0, data)` is the bitwise NOT of the standard CRC-32C.

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one table built at compile time.
const CRC32C_TABLE: [u32; 256] = table32(0x82F6_3B78);
/// CRC-16 (polynomial 0x8005, reflected 0xA001): the group descriptors of `uninit_bg`.
const CRC16_TABLE: [u16; 256] = table16(0xA001);

// Indexing in a const fn evaluated at compile time: out of bounds would fail the build, it
// cannot panic at run time.
#[allow(clippy::indexing_slicing)]
const fn table32(poly: u32) -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

#[allow(clippy::indexing_slicing)]
const fn table16(poly: u16) -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// The CRC-32C register after `data`, starting from `seed`.
pub fn crc32c(seed: u32, data: &[u8]) -> u32 {
    data.iter().fold(seed, |crc, &byte| {
        let index = usize::from((crc as u8) ^ byte);
        (crc >> 8) ^ CRC32C_TABLE.get(index).copied().unwrap_or(0)
    })
}

/// The CRC-16 register after `data`, starting from `seed`.
pub fn crc16(seed: u16, data: &[u8]) -> u16 {
    data.iter().fold(seed, |crc, &byte| {
        let index = usize::from((crc as u8) ^ byte);
        (crc >> 8) ^ CRC16_TABLE.get(index).copied().unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_check_values() {
        // CRC-32C/ISCSI of "123456789" is 0xE3069283: init !0, final NOT.
        assert_eq!(!crc32c(!0, b"123456789"), 0xE306_9283);
        // CRC-16/MODBUS (init 0xFFFF, no final XOR) of "123456789" is 0x4B37.
        assert_eq!(crc16(0xFFFF, b"123456789"), 0x4B37);
        // Chaining is the same as one pass.
        let whole = crc32c(7, b"abcdef");
        assert_eq!(crc32c(crc32c(7, b"abc"), b"def"), whole);
    }
}
