//! LUKS headers on arbitrary device contents: LUKS1's, LUKS2's two copies (the secondary
//! looked for at every size when the primary fails) and their metadata. A checksum keeps
//! mutated bytes from LUKS2's metadata, so the same bytes also go in as the JSON area of a
//! header pair whose checksums are made to match, and to the JSON, base64 and cipher-name
//! readers alone.
#![no_main]
use baton::luks::{self, base64, json, luks2};
use libfuzzer_sys::fuzz_target;

const HDR: usize = 16384;

/// Both copies of a 16 KiB LUKS2 header with `area` as their JSON area, checksums right.
fn sealed(area: &[u8]) -> Option<Vec<u8>> {
    let area = area.get(..area.len().min(HDR - 4096))?;
    let mut dev = vec![0u8; 2 * HDR];
    for (offset, magic) in [(0, luks2::MAGIC_PRIMARY), (HDR, luks2::MAGIC_SECONDARY)] {
        let copy = dev.get_mut(offset..offset + HDR)?;
        copy.get_mut(..6)?.copy_from_slice(magic);
        copy.get_mut(6..8)?.copy_from_slice(&2u16.to_be_bytes());
        copy.get_mut(8..16)?
            .copy_from_slice(&(HDR as u64).to_be_bytes());
        copy.get_mut(16..24)?.copy_from_slice(&7u64.to_be_bytes());
        copy.get_mut(72..78)?.copy_from_slice(b"sha256");
        copy.get_mut(168..172)?.copy_from_slice(b"uuid");
        copy.get_mut(256..264)?
            .copy_from_slice(&(offset as u64).to_be_bytes());
        copy.get_mut(4096..4096 + area.len())?.copy_from_slice(area);
        let sum = luks2::checksum(copy);
        copy.get_mut(448..480)?.copy_from_slice(&sum);
    }
    Some(dev)
}

fuzz_target!(|data: &[u8]| {
    let _ = luks::read(data);
    let _ = luks::luks1::parse(data);
    if let Some(dev) = sealed(data) {
        if let Ok(volume) = luks2::read(&dev) {
            let _ = volume.unlock_order().count();
            let _ = luks::kernel_cipher(&volume.segment.cipher);
        }
    }
    if let Ok(value) = json::parse(data) {
        let _ = luks2::metadata::parse(&value, HDR as u64);
    }
    let text = String::from_utf8_lossy(data);
    let _ = base64::decode(&text, 64);
    let _ = luks::kernel_cipher(&text);
});
