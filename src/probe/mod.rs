//! What is on a block device: the filesystem and its UUID and label, or the partition table
//! and each partition's PARTUUID and PARTLABEL. Pure functions over a [`ReadAt`], so the same
//! code runs on a device at boot and on an image file in a test; every offset is a named
//! constant from the format's own definition, and every magic number is checked before a
//! field is trusted. The results match what `blkid -p` reports.

pub mod btrfs;
pub mod ext;
pub mod f2fs;
pub mod partitions;
pub mod squashfs;
pub mod swap;
pub mod vfat;
pub mod xfs;

/// Random access to a device or image. Returns `None` when the range is not all there.
pub trait ReadAt {
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>>;
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        self.get(start..end).map(<[u8]>::to_vec)
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        self.as_slice().read_at(offset, len)
    }
}

impl ReadAt for std::fs::File {
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }
}

/// A filesystem found on a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filesystem {
    /// The kernel's name for it, as `mount -t` takes it (and blkid's TYPE).
    pub fstype: String,
    pub uuid: Option<String>,
    pub label: Option<String>,
}

/// Tries every filesystem probe, most specific magic first.
pub fn probe_filesystem(dev: &dyn ReadAt) -> Option<Filesystem> {
    // squashfs and xfs have their magic at offset 0, where a FAT boot sector also lives;
    // vfat's checks are the loosest, so it goes last.
    squashfs::probe(dev)
        .or_else(|| xfs::probe(dev))
        .or_else(|| ext::probe(dev))
        .or_else(|| btrfs::probe(dev))
        .or_else(|| f2fs::probe(dev))
        .or_else(|| swap::probe(dev))
        .or_else(|| vfat::probe(dev))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_layouts() {
        let raw: Vec<u8> = (1..=16).collect();
        assert_eq!(
            uuid_string(&raw).unwrap(),
            "01020304-0506-0708-090a-0b0c0d0e0f10"
        );
        assert_eq!(
            guid_string(&raw).unwrap(),
            "04030201-0605-0807-090a-0b0c0d0e0f10"
        );
        assert_eq!(uuid_string(&[0; 16]), None);
        assert_eq!(uuid_string(&[1; 15]), None);
    }

    #[test]
    fn labels() {
        assert_eq!(label_string(b"ROOT       ").as_deref(), Some("ROOT"));
        assert_eq!(label_string(b"root\0\0\0\0").as_deref(), Some("root"));
        assert_eq!(label_string(b"\0\0\0"), None);
        assert_eq!(
            utf16_label(&[b'h', 0, b'i', 0, 0, 0, b'x', 0]).as_deref(),
            Some("hi")
        );
    }

    #[test]
    fn reads_past_the_end_are_none() {
        let data = vec![0u8; 10];
        assert!(data.read_at(8, 2).is_some());
        assert!(data.read_at(9, 2).is_none());
        assert!(data.read_at(u64::MAX, 1).is_none());
    }

    /// Records what a probe asks for, so a test can bound it.
    struct Watched<'a> {
        data: &'a [u8],
        reads: std::cell::Cell<usize>,
        largest: std::cell::Cell<usize>,
    }

    impl ReadAt for Watched<'_> {
        fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
            self.reads.set(self.reads.get() + 1);
            self.largest.set(self.largest.get().max(len));
            self.data.read_at(offset, len)
        }
    }

    /// Every probe's magic, with every other byte at its most hostile (all ones, then all
    /// zeros): each probe answers after a few bounded reads, whatever the fields claim.
    #[test]
    fn hostile_superblocks_cost_a_bounded_read() {
        let magics: [(&str, usize, &[u8]); 8] = [
            ("ext4", 1024 + 0x38, &[0x53, 0xEF]),
            ("xfs", 0, b"XFSB"),
            ("btrfs", 0x10000 + 0x40, b"_BHRfS_M"),
            ("f2fs", 0x400, &[0x10, 0x20, 0xF5, 0xF2]),
            ("squashfs", 0, b"hsqs"),
            ("swap", 4086, b"SWAPSPACE2"),
            ("vfat", 0x1FE, &[0x55, 0xAA]),
            ("vfat bpb", 0x0B, &[0x00, 0x02, 0x80]),
        ];
        for fill in [0xFFu8, 0x00, 0x5A] {
            for (name, at, magic) in magics {
                let mut disk = vec![fill; 192 * 1024];
                disk[at..at + magic.len()].copy_from_slice(magic);
                if name == "vfat bpb" {
                    disk[0x1FE] = 0x55;
                    disk[0x1FF] = 0xAA;
                    disk[0x15] = 0xF8;
                    disk[0x10] = 2;
                }
                let dev = Watched {
                    data: &disk,
                    reads: Default::default(),
                    largest: Default::default(),
                };
                let _ = probe_filesystem(&dev);
                let _ = partitions::probe(&dev, 512);
                assert!(dev.reads.get() <= 16, "{name}: {} reads", dev.reads.get());
                assert!(
                    dev.largest.get() as u64 <= vfat::MAX_ROOT_DIR_READ,
                    "{name}: read {} bytes at once",
                    dev.largest.get()
                );
            }
        }
    }
}
