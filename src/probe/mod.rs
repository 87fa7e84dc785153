//! What is on a block device: the filesystem and its UUID and label, or the partition table
//! and each partition's PARTUUID and PARTLABEL. Pure functions over a [`ReadAt`], so the same
//! code runs on a device at boot and on an image file in a test; every offset is a named
//! constant from the format's own definition, and every magic number is checked before a
//! field is trusted. The results match what `blkid -p` reports.

pub mod btrfs;
pub mod crc;
pub mod ext;
pub mod ext_clean;
mod ext_journal;
mod ext_journal_map;
pub mod f2fs;
pub mod firmware_raid;
pub mod luks;
pub mod lvm;
pub mod md;
pub mod partitions;
pub mod squashfs;
pub mod swap;
pub mod vfat;
pub mod xfs;

mod device;
pub(crate) mod fields;

pub use device::{member_kind, Filesystem, ReadAt};

/// Tries every probe: the members of storage stacks first, then filesystems, most specific
/// magic first. A RAID1 member with its superblock at the end (1.0, 0.90) holds its array's
/// filesystem at sector 0: found as a filesystem, it would be mounted behind the array's
/// back, so the member answers first, as blkid's does.
pub fn probe_filesystem(dev: &dyn ReadAt) -> Option<Filesystem> {
    md::probe(dev)
        .or_else(|| firmware_raid::probe(dev))
        .or_else(|| lvm::probe(dev))
        .or_else(|| luks::probe(dev))
        // squashfs and xfs have their magic at offset 0, where a FAT boot sector also
        // lives; vfat's checks are the loosest, so it goes last.
        .or_else(|| squashfs::probe(dev))
        .or_else(|| xfs::probe(dev))
        .or_else(|| ext::probe(dev))
        .or_else(|| btrfs::probe(dev))
        .or_else(|| f2fs::probe(dev))
        .or_else(|| swap::probe(dev))
        .or_else(|| vfat::probe(dev))
}

#[cfg(test)]
mod tests {
    use super::fields::{guid_string, label_string, utf16_label, uuid_string};
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

        fn size(&self) -> Option<u64> {
            self.data.size()
        }
    }

    /// Every probe's magic, with every other byte at its most hostile (all ones, then all
    /// zeros): each probe answers after a few bounded reads, whatever the fields claim.
    #[test]
    fn hostile_superblocks_cost_a_bounded_read() {
        let md_magic = 0xa92b_4efcu32.to_le_bytes();
        let magics: [(&str, usize, &[u8]); 14] = [
            ("md 1.1", 0, &md_magic),
            ("md 1.2", 4096, &md_magic),
            ("md 1.0", 192 * 1024 - 8192, &md_magic),
            ("md 0.90", 192 * 1024 - 65536, &md_magic),
            ("lvm", 512, b"LABELONE"),
            ("luks", 0, b"LUKS\xba\xbe"),
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
                // About two reads a probe; at boot the first 20 KiB come from one.
                assert!(dev.reads.get() <= 24, "{name}: {} reads", dev.reads.get());
                assert!(
                    dev.largest.get() as u64 <= vfat::MAX_ROOT_DIR_READ,
                    "{name}: read {} bytes at once",
                    dev.largest.get()
                );
            }
        }
    }
}
