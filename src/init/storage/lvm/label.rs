//! A PV's label and metadata area as lvm2 writes them: the PV header the label points to
//! (the PV's UUID and size, its data and metadata areas), each metadata area's header (magic,
//! checksum, the location of the current metadata text) and the text itself, which may wrap
//! around the end of its circular area. Every offset and size comes from the disk: each is
//! checked against the area it must lie in before anything is read.

use crate::probe::fields::{le32, le64};
use crate::probe::lvm::crc;
use crate::probe::ReadAt;

const CRC_INITIAL: u32 = 0xf597_a6cf;
/// The PV header's area lists (data, then metadata) hold this many entries at most.
const MAX_AREAS: usize = 16;

/// The metadata area header: its checksum (u32 at 0, of the rest), magic (at 4), version
/// (u32 at 20), the area's start and size (u64 at 24, 32), then the text's locations, the
/// first being the current one: offset from the area's start, size (u64 at 40, 48) and
/// checksum (u32 at 56).
const MDA_MAGIC: &[u8] = b" LVM2 x[5A%r0N*>";
const MDA_HEADER_SIZE: usize = 512;
/// The most metadata text read: lvm2's default area is 1 MiB, and a VG of thousands of LVs
/// stays well inside a few.
pub const MAX_METADATA: u64 = 16 << 20;

/// What a PV's label says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvLabel {
    /// As the metadata names it: six groups, dashed.
    pub uuid: String,
    pub device_size: u64,
    /// Metadata areas: (offset, size) in bytes from the PV's start.
    pub metadata_areas: Vec<(u64, u64)>,
}

/// The label and PV header, if the device is a PV (the label found and checked by the
/// probe).
pub fn read_label(dev: &dyn ReadAt) -> Option<PvLabel> {
    let label = crate::probe::lvm::find_label(dev)?;
    let header = &label.header;
    let device_size = le64(header, 32)?;
    // Data areas, then metadata areas, each list ended by a zero entry.
    let mut at = 40;
    let mut lists: [Vec<(u64, u64)>; 2] = Default::default();
    for list in &mut lists {
        loop {
            let (offset, size) = (le64(header, at)?, le64(header, at + 8)?);
            at += 16;
            if offset == 0 {
                break;
            }
            if list.len() == MAX_AREAS {
                return None;
            }
            list.push((offset, size));
        }
    }
    let [_, metadata_areas] = lists;
    Some(PvLabel {
        uuid: label.uuid,
        device_size,
        metadata_areas,
    })
}

/// The current metadata text of the area at `(offset, size)`, checksums checked.
pub fn read_metadata(dev: &dyn ReadAt, (offset, size): (u64, u64)) -> Result<String, String> {
    let header = dev
        .read_at(offset, MDA_HEADER_SIZE)
        .ok_or("its metadata area cannot be read")?;
    let field = |at: usize| le64(&header, at).ok_or("a short metadata area header");
    if header.get(4..20) != Some(MDA_MAGIC) {
        return Err("its metadata area has no lvm2 header".into());
    }
    let sum = header.get(4..).map(|rest| crc(CRC_INITIAL, rest));
    if le32(&header, 0) != sum {
        return Err("its metadata area header fails its checksum".into());
    }
    if field(24)? != offset || field(32)? != size || size <= MDA_HEADER_SIZE as u64 {
        return Err("its metadata area header does not describe its area".into());
    }
    // The first location is the current text: offset from the area's start, size, checksum.
    let (text_at, text_len) = (field(40)?, field(48)?);
    let text_sum = le32(&header, 56).ok_or("a short metadata area header")?;
    let ring = MDA_HEADER_SIZE as u64..size;
    if text_len == 0 || text_len > MAX_METADATA || text_len > ring.end - ring.start {
        return Err(format!("its metadata text is {text_len} bytes"));
    }
    if !ring.contains(&text_at) {
        return Err("its metadata text lies outside its area".into());
    }
    // The text runs to the area's end, then on from just after the header.
    let first = text_len.min(size - text_at);
    let mut bytes = dev
        .read_at(offset + text_at, first as usize)
        .ok_or("its metadata text cannot be read")?;
    if first < text_len {
        let rest = dev
            .read_at(offset + ring.start, (text_len - first) as usize)
            .ok_or("its metadata text cannot be read")?;
        bytes.extend_from_slice(&rest);
    }
    if crc(CRC_INITIAL, &bytes) != text_sum {
        return Err("its metadata text fails its checksum".into());
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes.truncate(end);
    String::from_utf8(bytes).map_err(|_| "its metadata text is not text".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PV of `size` bytes with a label in sector 1, a metadata area at 4 KiB of
    /// `area` bytes, and `text` at `text_at` within it (wrapping if it must).
    fn pv(size: usize, area: usize, text: &str, text_at: usize) -> Vec<u8> {
        let mut disk = vec![0u8; size];
        let s = &mut disk[512..1024];
        s[..8].copy_from_slice(b"LABELONE");
        s[8..16].copy_from_slice(&1u64.to_le_bytes());
        s[20..24].copy_from_slice(&32u32.to_le_bytes());
        s[24..32].copy_from_slice(b"LVM2 001");
        s[32..64].copy_from_slice(b"1VGmLLbt0npv01aaaabbbbccccdddd01");
        s[64..72].copy_from_slice(&(size as u64).to_le_bytes());
        // Data area (1 MiB, 0 = to the end), end; metadata area, end.
        s[72..80].copy_from_slice(&(1u64 << 20).to_le_bytes());
        s[104..112].copy_from_slice(&4096u64.to_le_bytes());
        s[112..120].copy_from_slice(&(area as u64).to_le_bytes());
        let sum = crc(CRC_INITIAL, &s[20..]);
        s[16..20].copy_from_slice(&sum.to_le_bytes());

        let bytes = text.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            let mut at = text_at + i;
            if at >= area {
                at = at - area + MDA_HEADER_SIZE;
            }
            disk[4096 + at] = *b;
        }
        let h = &mut disk[4096..4096 + 512];
        h[4..20].copy_from_slice(MDA_MAGIC);
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        h[24..32].copy_from_slice(&4096u64.to_le_bytes());
        h[32..40].copy_from_slice(&(area as u64).to_le_bytes());
        h[40..48].copy_from_slice(&(text_at as u64).to_le_bytes());
        h[48..56].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        h[56..60].copy_from_slice(&crc(CRC_INITIAL, bytes).to_le_bytes());
        let sum = crc(CRC_INITIAL, &h[4..]);
        h[..4].copy_from_slice(&sum.to_le_bytes());
        disk
    }

    #[test]
    fn label_areas_and_text() {
        let disk = pv(1 << 20, 64 * 1024, "vg0 { }", 1536);
        let label = read_label(&disk).unwrap();
        assert_eq!(label.uuid, "1VGmLL-bt0n-pv01-aaaa-bbbb-cccc-dddd01");
        assert_eq!(label.device_size, 1 << 20);
        assert_eq!(label.metadata_areas, [(4096, 64 * 1024)]);
        assert_eq!(read_metadata(&disk, (4096, 64 * 1024)).unwrap(), "vg0 { }");
    }

    #[test]
    fn text_that_wraps_around_its_area() {
        let area = 8 * 1024;
        let text = "x".repeat(1000);
        let disk = pv(1 << 20, area, &text, area - 300);
        assert_eq!(read_metadata(&disk, (4096, area as u64)).unwrap(), text);
    }

    #[test]
    fn a_damaged_area_is_named() {
        let area = 64 * 1024;
        let mut disk = pv(1 << 20, area, "vg0 { }", 1536);
        disk[4096 + 1536] ^= 1;
        let err = read_metadata(&disk, (4096, area as u64)).unwrap_err();
        assert!(err.contains("text fails its checksum"), "{err}");
        let mut disk = pv(1 << 20, area, "vg0 { }", 1536);
        disk[4096 + 100] ^= 1;
        let err = read_metadata(&disk, (4096, area as u64)).unwrap_err();
        assert!(err.contains("header fails its checksum"), "{err}");
        let disk = pv(1 << 20, area, "vg0 { }", 1536);
        let err = read_metadata(&disk, (4096, 2 * area as u64)).unwrap_err();
        assert!(err.contains("does not describe"), "{err}");
    }
}
