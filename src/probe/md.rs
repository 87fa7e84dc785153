//! MD RAID members: the superblock of each metadata version where the kernel and mdadm put
//! it, as blkid reports it (TYPE=linux_raid_member): 1.1 at the start, 1.2 4 KiB in, 1.0 and
//! 0.90 near the end (so that a RAID1 member's data starts at sector 0, where its
//! filesystem's superblock is found too: members are probed before filesystems).

use super::device::{Filesystem, ReadAt};
use super::fields::{le32, le64, uuid_string};

const MAGIC: u32 = 0xa92b_4efc;

/// Version 1 superblock fields (`struct mdp_superblock_1`).
const V1_MAJOR_AT: usize = 4;
const V1_UUID_AT: usize = 16;
const V1_NAME_AT: usize = 32;
const V1_NAME_LEN: usize = 32;
/// `u64`: where the superblock says it is, in sectors.
const V1_SUPER_OFFSET_AT: usize = 144;
const V1_DEVICE_UUID_AT: usize = 168;
const V1_CSUM_AT: usize = 216;
const V1_MAX_DEV_AT: usize = 220;
/// The role table starts here; the checksum covers it too.
const V1_ROLES_AT: usize = 256;
/// The most a version 1 superblock takes.
const V1_MAX_SIZE: usize = 4096;

/// 0.90: 4 KiB in the last 64 KiB-aligned 64 KiB of the device, as 32-bit words.
const V090_RESERVED: u64 = 64 * 1024;
const V090_SIZE: usize = 4096;

/// A superblock found where its version puts it, its magic, place and (1.x) checksum
/// checked: the whole of it, for the init's assembly to read the rest from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// `1.1`, `1.2`, `1.0` or `0.90`.
    pub version: &'static str,
    /// Its offset on the device, in bytes.
    pub at: u64,
    pub bytes: Vec<u8>,
}

pub fn find(dev: &dyn ReadAt) -> Option<Superblock> {
    let size = dev.size();
    let end_1_0 = size
        .filter(|&s| s >= 8 * 1024)
        .map(|s| ((s / 512 - 16) & !7) * 512);
    version_1(dev, 0, "1.1")
        .or_else(|| version_1(dev, 4096, "1.2"))
        .or_else(|| end_1_0.and_then(|at| version_1(dev, at, "1.0")))
        .or_else(|| size.and_then(|s| version_0_90(dev, s)))
}

pub fn probe(dev: &dyn ReadAt) -> Option<Filesystem> {
    let sb = find(dev)?;
    let bytes = &sb.bytes;
    if sb.version == "0.90" {
        let word = |n: usize| le32(bytes, n * 4);
        // The UUID's four words (5, 13, 14, 15), each shown as its value, most significant
        // byte first (blkid's and mdadm's order).
        let mut uuid = Vec::with_capacity(16);
        for n in [5, 13, 14, 15] {
            uuid.extend_from_slice(&word(n)?.to_be_bytes());
        }
        return Some(Filesystem {
            fstype: "linux_raid_member".into(),
            uuid: uuid_string(&uuid),
            label: None,
            version: Some(format!("{}.{}.{}", word(1)?, word(2)?, word(3)?)),
            uuid_sub: None,
        });
    }
    Some(Filesystem {
        fstype: "linux_raid_member".into(),
        uuid: uuid_string(bytes.get(V1_UUID_AT..V1_UUID_AT + 16)?),
        label: name(bytes.get(V1_NAME_AT..V1_NAME_AT + V1_NAME_LEN)?),
        version: Some(sb.version.into()),
        uuid_sub: uuid_string(bytes.get(V1_DEVICE_UUID_AT..V1_DEVICE_UUID_AT + 16)?),
    })
}

fn version_1(dev: &dyn ReadAt, at: u64, version: &'static str) -> Option<Superblock> {
    let head = dev.read_at(at, V1_ROLES_AT)?;
    if le32(&head, 0)? != MAGIC
        || le32(&head, V1_MAJOR_AT)? != 1
        || le64(&head, V1_SUPER_OFFSET_AT)? != at / 512
    {
        return None;
    }
    let max_dev = usize::try_from(le32(&head, V1_MAX_DEV_AT)?).ok()?;
    let len = max_dev.checked_mul(2)?.checked_add(V1_ROLES_AT)?;
    if len > V1_MAX_SIZE {
        return None;
    }
    let bytes = dev.read_at(at, len)?;
    if le32(&bytes, V1_CSUM_AT)? != v1_checksum(&bytes)? {
        return None;
    }
    Some(Superblock { version, at, bytes })
}

/// The kernel's `calc_sb_1_csum`: the superblock's 32-bit words summed with its own checksum
/// as zero, a last odd half-word added, and the carries folded in once.
fn v1_checksum(sb: &[u8]) -> Option<u32> {
    let mut sum: u64 = 0;
    let mut words = sb.chunks_exact(4);
    for (i, word) in words.by_ref().enumerate() {
        if i * 4 != V1_CSUM_AT {
            sum += u64::from(u32::from_le_bytes(word.try_into().ok()?));
        }
    }
    if let [a, b] = words.remainder() {
        sum += u64::from(u16::from_le_bytes([*a, *b]));
    }
    u32::try_from((sum & 0xffff_ffff) + (sum >> 32)).ok()
}

fn version_0_90(dev: &dyn ReadAt, size: u64) -> Option<Superblock> {
    if size < V090_RESERVED {
        return None;
    }
    let at = (size & !(V090_RESERVED - 1)) - V090_RESERVED;
    let bytes = dev.read_at(at, V090_SIZE)?;
    let word = |n: usize| le32(&bytes, n * 4);
    if word(0)? != MAGIC || word(1)? != 0 || word(2)? < 90 {
        return None;
    }
    Some(Superblock {
        version: "0.90",
        at,
        bytes,
    })
}

/// The array's name (`HOST:NAME`), NUL-padded; `None` when empty or not text.
pub(crate) fn name(field: &[u8]) -> Option<String> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let bytes = field.get(..end)?;
    if bytes.is_empty() {
        return None;
    }
    String::from_utf8(bytes.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(disk: &mut [u8], at: usize, name: &str) {
        let sb = &mut disk[at..at + 512];
        sb[..4].copy_from_slice(&MAGIC.to_le_bytes());
        sb[V1_MAJOR_AT..V1_MAJOR_AT + 4].copy_from_slice(&1u32.to_le_bytes());
        for (i, b) in sb[V1_UUID_AT..V1_UUID_AT + 16].iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        sb[V1_NAME_AT..V1_NAME_AT + name.len()].copy_from_slice(name.as_bytes());
        sb[V1_SUPER_OFFSET_AT..V1_SUPER_OFFSET_AT + 8]
            .copy_from_slice(&(at as u64 / 512).to_le_bytes());
        sb[V1_DEVICE_UUID_AT] = 0xaa;
        sb[V1_MAX_DEV_AT..V1_MAX_DEV_AT + 4].copy_from_slice(&128u32.to_le_bytes());
        let sum = v1_checksum(sb).unwrap();
        sb[V1_CSUM_AT..V1_CSUM_AT + 4].copy_from_slice(&sum.to_le_bytes());
    }

    #[test]
    fn version_1_at_each_place() {
        let size = 1 << 20;
        let end = ((size / 512 - 16) & !7) * 512;
        for (at, version) in [(0, "1.1"), (4096, "1.2"), (end, "1.0")] {
            let mut disk = vec![0u8; size];
            v1(&mut disk, at, "host:md0");
            let found = probe(&disk).unwrap();
            assert_eq!(found.fstype, "linux_raid_member");
            assert_eq!(found.version.as_deref(), Some(version));
            assert_eq!(
                found.uuid.as_deref(),
                Some("01020304-0506-0708-090a-0b0c0d0e0f10")
            );
            assert_eq!(found.label.as_deref(), Some("host:md0"));
            assert!(found.uuid_sub.unwrap().starts_with("aa000000-"));
            // A bit flipped anywhere the checksum covers, and it is not a member.
            disk[at + 300] ^= 1;
            assert!(probe(&disk).is_none(), "{version}");
        }
    }

    #[test]
    fn a_superblock_in_the_wrong_place_is_not_one() {
        // A 1.2 superblock copied to the start (say, inside a RAID1's data) says where it
        // belongs.
        let mut disk = vec![0u8; 1 << 20];
        v1(&mut disk, 4096, "x");
        disk.copy_within(4096..4096 + 512, 0);
        disk[4096..4096 + 512].fill(0);
        assert!(probe(&disk).is_none());
    }

    #[test]
    fn version_0_90() {
        let size = 1 << 20;
        let mut disk = vec![0u8; size];
        let at = size - 64 * 1024;
        for (n, value) in [
            (0, MAGIC),
            (1, 0),
            (2, 90),
            (3, 0),
            (5, 8),
            (13, 0xba70_0000),
            (15, 8),
        ] {
            disk[at + n * 4..at + n * 4 + 4].copy_from_slice(&value.to_le_bytes());
        }
        let found = probe(&disk).unwrap();
        assert_eq!(found.version.as_deref(), Some("0.90.0"));
        assert_eq!(
            found.uuid.as_deref(),
            Some("00000008-ba70-0000-0000-000000000008")
        );
    }
}
