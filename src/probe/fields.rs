//! The on-disk fields superblocks and partition tables are made of: little-endian integers,
//! UUIDs and GUIDs, labels in Latin-1 or UTF-16.

/// Little-endian integers at an offset of a buffer; `None` past the end.
pub(crate) fn le16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn le32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn le64(buf: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(buf.get(at..at + 8)?.try_into().ok()?))
}

/// A 16-byte UUID printed in byte order (the "DCE" layout ext4, xfs and btrfs store).
pub(crate) fn uuid_string(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.get(..16)?.try_into().ok()?;
    if b.iter().all(|&x| x == 0) {
        return None;
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8)?,
        hex.get(8..12)?,
        hex.get(12..16)?,
        hex.get(16..20)?,
        hex.get(20..32)?
    ))
}

/// A GUID as stored in GPT: the first three fields little-endian, then bytes in order.
pub(crate) fn guid_string(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.get(..16)?.try_into().ok()?;
    let reordered = [
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    ];
    uuid_string(&reordered)
}

/// A fixed-size label field: up to the first NUL, invalid UTF-8 replaced, trailing blanks
/// dropped (FAT pads with spaces). Empty means no label.
pub(crate) fn label_string(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(bytes.get(..end)?)
        .trim_end_matches(' ')
        .to_owned();
    (!text.is_empty()).then_some(text)
}

/// A UTF-16LE label field (GPT names, f2fs), up to the first NUL.
pub(crate) fn utf16_label(bytes: &[u8]) -> Option<String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .take_while(|&u| u != 0)
        .collect();
    let text = String::from_utf16_lossy(&units);
    (!text.is_empty()).then_some(text)
}
