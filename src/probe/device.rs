//! What probes read from (a device, an image file, bytes in a test) and what they find.

/// Random access to a device or image. Returns `None` when the range is not all there.
pub trait ReadAt {
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>>;
    /// The size in bytes, when it is known: the superblocks at a device's end (MD RAID 1.0
    /// and 0.90) are found from it.
    fn size(&self) -> Option<u64>;
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        self.get(start..end).map(<[u8]>::to_vec)
    }

    fn size(&self) -> Option<u64> {
        u64::try_from(self.len()).ok()
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        self.as_slice().read_at(offset, len)
    }

    fn size(&self) -> Option<u64> {
        self.as_slice().size()
    }
}

impl ReadAt for std::fs::File {
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }

    fn size(&self) -> Option<u64> {
        use std::io::{Seek, SeekFrom};
        // A block device's metadata says 0 bytes; its end says how big it is.
        let mut file: &std::fs::File = self;
        file.seek(SeekFrom::End(0)).ok()
    }
}

/// What a device holds: a filesystem, or a member of a storage stack (an LVM PV, an MD RAID
/// member, a LUKS volume), with blkid's names for each field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filesystem {
    /// The kernel's name for a filesystem, as `mount -t` takes it; blkid's TYPE for the rest
    /// (`LVM2_member`, `linux_raid_member`, `crypto_LUKS`).
    pub fstype: String,
    /// The filesystem's UUID; a member's is its stack's (the PV's, the array's, the LUKS
    /// volume's).
    pub uuid: Option<String>,
    pub label: Option<String>,
    /// blkid's VERSION, for members: `LVM2 001`, `1.2`, `0.90.0`, `2`.
    pub version: Option<String>,
    /// blkid's UUID_SUB: an MD member's own device UUID.
    pub uuid_sub: Option<String>,
}

impl Filesystem {
    /// Whether this is a member of a storage stack rather than something to mount: it never
    /// answers `root=UUID=` or `LABEL=` (udev makes no by-uuid link for RAID members, and a
    /// LUKS volume is opened, not mounted).
    pub fn is_member(&self) -> bool {
        member_kind(&self.fstype).is_some()
    }
}

/// What a stack member of blkid's TYPE `fstype` is part of, in words; `None` for anything
/// else.
pub fn member_kind(fstype: &str) -> Option<&'static str> {
    match fstype {
        "LVM2_member" => Some("an LVM physical volume"),
        "linux_raid_member" => Some("a member of an MD RAID array"),
        "isw_raid_member" => {
            Some("a member of an Intel firmware (IMSM) RAID array, which baton leaves to mdadm")
        }
        "ddf_raid_member" => {
            Some("a member of a DDF firmware RAID array, which baton leaves to mdadm")
        }
        "crypto_LUKS" => Some("a LUKS encrypted volume"),
        _ => None,
    }
}
