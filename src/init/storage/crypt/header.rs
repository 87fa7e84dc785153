//! Reading a LUKS header from a device: the bytes the pure parsers of `crate::luks` need,
//! and no more than the format's bounds allow.

use crate::luks::{self, luks2, Error, Volume};
use std::os::unix::fs::FileExt;

/// What is read first: LUKS1's whole header, and LUKS2's binary header.
const FIRST_READ: usize = luks2::BINARY_SIZE;
/// Where LUKS2 keeps its header size (`hdr_size`, big-endian) in the binary header.
const HDR_SIZE_AT: usize = 8;

pub fn read(device: &std::fs::File) -> Result<Volume, Error> {
    let mut first = vec![0u8; FIRST_READ];
    device
        .read_exact_at(&mut first, 0)
        .map_err(|e| Error::Invalid(format!("cannot read the LUKS header: {e}")))?;
    if luks::version(&first) == Some(1) {
        return luks::luks1::parse(&first);
    }
    // LUKS2: both copies. The primary says how large one is; if it cannot be believed,
    // as far as the largest secondary could reach.
    let stated = first
        .get(HDR_SIZE_AT..HDR_SIZE_AT + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .filter(|size| luks2::SECONDARY_OFFSETS.contains(size));
    let largest = luks2::SECONDARY_OFFSETS
        .last()
        .copied()
        .unwrap_or(0x40_0000);
    let want = stated.unwrap_or(largest).saturating_mul(2);
    let mut both = vec![0u8; usize::try_from(want).unwrap_or(0)];
    let got = read_up_to(device, &mut both)
        .map_err(|e| Error::Invalid(format!("cannot read the LUKS2 headers: {e}")))?;
    both.truncate(got);
    luks::read(&both)
}

/// Reads from the start as much of `buf` as the device has.
fn read_up_to(device: &std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        match device.read_at(rest, done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
