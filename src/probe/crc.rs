//! The checksums of on-disk metadata: GPT's standard CRC-32, and the two ext4 keeps, in the
//! kernel's and e2fsprogs' convention: the raw register, no inversion before or after (the
//! caller passes the seed, `!0` for the superblock), so `crc32c(!0, data)` is the bitwise
//! NOT of the standard CRC-32C.

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one table built at compile time.
const CRC32C_TABLE: [u32; 256] = table(0x82F6_3B78);
/// CRC-32 (IEEE, reflected 0xEDB88320): GPT's headers and partition arrays.
const CRC32_TABLE: [u32; 256] = table(0xEDB8_8320);
/// CRC-16 (polynomial 0x8005, reflected 0xA001): the group descriptors of `uninit_bg`. A
/// reflected table never has bits above its polynomial's, so this one fits in 16.
const CRC16_TABLE: [u32; 256] = table(0xA001);

/// The table of a reflected CRC, one entry per byte value.
// Indexing in a const fn evaluated at compile time: out of bounds would fail the build, it
// cannot panic at run time.
#[allow(clippy::indexing_slicing)]
const fn table(poly: u32) -> [u32; 256] {
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

/// The register after `data`, starting from `seed`, with `table`'s CRC.
fn run(table: &[u32; 256], seed: u32, data: &[u8]) -> u32 {
    data.iter().fold(seed, |crc, &byte| {
        let index = usize::from((crc as u8) ^ byte);
        (crc >> 8) ^ table.get(index).copied().unwrap_or(0)
    })
}

/// The standard CRC-32 of `data` (inverted before and after), as GPT stores it.
pub fn crc32(data: &[u8]) -> u32 {
    !run(&CRC32_TABLE, !0, data)
}

/// The CRC-32C register after `data`, starting from `seed`.
pub fn crc32c(seed: u32, data: &[u8]) -> u32 {
    run(&CRC32C_TABLE, seed, data)
}

/// The CRC-16 register after `data`, starting from `seed`.
pub fn crc16(seed: u16, data: &[u8]) -> u16 {
    run(&CRC16_TABLE, u32::from(seed), data) as u16
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
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        // Chaining is the same as one pass.
        let whole = crc32c(7, b"abcdef");
        assert_eq!(crc32c(crc32c(7, b"abc"), b"def"), whole);
    }
}
