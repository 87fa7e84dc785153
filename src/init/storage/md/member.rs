//! What an MD RAID member's superblock says for assembly: the array it belongs to (UUID,
//! level, layout, chunk, how many devices), this device's role in it, where its data starts,
//! and its event count (the members with the highest count are current; an older one was
//! out of the array while it changed). Read from the superblock `probe::md` found.

use crate::probe::fields::{le32, le64};
use crate::probe::md::Superblock;

/// A role that is not a slot in the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Slot N of the array.
    Active(u32),
    Spare,
    Faulty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `0.90`, `1.0`, `1.1`, `1.2`.
    pub version: &'static str,
    /// The array's UUID, 16 bytes in the order blkid and mdadm show them.
    pub array_uuid: [u8; 16],
    /// `HOST:NAME` (1.x only).
    pub name: Option<String>,
    /// The array's number, `N` of `/dev/mdN` (0.90 only: 1.x arrays go by name).
    pub preferred_minor: Option<u32>,
    /// The personality: -1 linear, 0, 1, 4, 5, 6, 10.
    pub level: i32,
    pub layout: u32,
    /// In sectors (0 where the level has none).
    pub chunk_sectors: u32,
    pub raid_disks: u32,
    pub role: Role,
    pub events: u64,
    /// Where the array's data starts on this device, in sectors.
    pub data_offset: u64,
    /// 1.x `feature_map`: bits this code does not know (a reshape in progress, say) make the
    /// member one to leave to mdadm.
    pub features: u32,
}

/// Feature bits assembly can leave to the kernel: a write-intent bitmap (0x1), recovery
/// offset (0x2), bad-block log (0x8).
pub const KNOWN_FEATURES: u32 = 0x1 | 0x2 | 0x8;

pub fn read(sb: &Superblock) -> Option<Member> {
    if sb.version == "0.90" {
        return read_0_90(sb);
    }
    let b = &sb.bytes;
    let dev_number = usize::try_from(le32(b, 160)?).ok()?;
    let role = match u16::from_le_bytes(
        b.get(256 + dev_number.checked_mul(2)?..)?
            .get(..2)?
            .try_into()
            .ok()?,
    ) {
        0xffff => Role::Spare,
        0xfffe => Role::Faulty,
        n => Role::Active(u32::from(n)),
    };
    let name = b.get(32..64).and_then(crate::probe::md::name);
    Some(Member {
        version: sb.version,
        array_uuid: b.get(16..32)?.try_into().ok()?,
        name,
        preferred_minor: None,
        level: i32::from_le_bytes(b.get(72..76)?.try_into().ok()?),
        layout: le32(b, 76)?,
        chunk_sectors: le32(b, 88)?,
        raid_disks: le32(b, 92)?,
        role,
        events: le64(b, 200)?,
        data_offset: le64(b, 128)?,
        features: le32(b, 8)?,
    })
}

/// 0.90: 32-bit words (the array's number at word 11); this device's descriptor at word 992 (number, major, minor,
/// raid_disk, state), the events as two words (low first on little-endian machines).
fn read_0_90(sb: &Superblock) -> Option<Member> {
    let word = |n: usize| le32(&sb.bytes, n * 4);
    let mut uuid = [0u8; 16];
    for (slot, n) in uuid.chunks_exact_mut(4).zip([5, 13, 14, 15]) {
        slot.copy_from_slice(&word(n)?.to_be_bytes());
    }
    const FAULTY: u32 = 1 << 0;
    const ACTIVE: u32 = 1 << 1;
    let state = word(996)?;
    let role = if state & FAULTY != 0 {
        Role::Faulty
    } else if state & ACTIVE != 0 {
        Role::Active(word(995)?)
    } else {
        Role::Spare
    };
    Some(Member {
        version: sb.version,
        array_uuid: uuid,
        name: None,
        preferred_minor: Some(word(11)?),
        level: i32::from_le_bytes(word(7)?.to_le_bytes()),
        layout: word(64)?,
        chunk_sectors: word(65)? / 512,
        raid_disks: word(10)?,
        role,
        events: u64::from(word(40)?) << 32 | u64::from(word(39)?),
        data_offset: 0,
        features: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_fields() {
        let mut b = vec![0u8; 512];
        b[16] = 0xab;
        b[32..41].copy_from_slice(b"host:md0\0");
        b[72..76].copy_from_slice(&5i32.to_le_bytes());
        b[76..80].copy_from_slice(&2u32.to_le_bytes());
        b[88..92].copy_from_slice(&1024u32.to_le_bytes());
        b[92..96].copy_from_slice(&3u32.to_le_bytes());
        b[128..136].copy_from_slice(&2048u64.to_le_bytes());
        b[160..164].copy_from_slice(&2u32.to_le_bytes());
        b[200..208].copy_from_slice(&77u64.to_le_bytes());
        b[260..262].copy_from_slice(&1u16.to_le_bytes());
        let sb = Superblock {
            version: "1.2",
            at: 4096,
            bytes: b.clone(),
        };
        let m = read(&sb).unwrap();
        assert_eq!(m.array_uuid[0], 0xab);
        assert_eq!(m.name.as_deref(), Some("host:md0"));
        assert_eq!(
            (m.level, m.layout, m.chunk_sectors, m.raid_disks),
            (5, 2, 1024, 3)
        );
        assert_eq!(
            (m.role, m.events, m.data_offset),
            (Role::Active(1), 77, 2048)
        );
        b[260..262].copy_from_slice(&0xfffeu16.to_le_bytes());
        let faulty = Superblock {
            bytes: b.clone(),
            ..sb.clone()
        };
        assert_eq!(read(&faulty).unwrap().role, Role::Faulty);
        // A device number past the role table is no member to assemble.
        b[160..164].copy_from_slice(&1000u32.to_le_bytes());
        assert!(read(&Superblock { bytes: b, ..sb }).is_none());
    }

    #[test]
    fn version_0_90_fields() {
        let mut b = vec![0u8; 4096];
        let mut put = |n: usize, v: u32| b[n * 4..n * 4 + 4].copy_from_slice(&v.to_le_bytes());
        put(5, 8);
        put(7, 1);
        put(10, 2);
        put(11, 3);
        put(39, 12);
        put(40, 1);
        put(995, 1);
        put(996, 1 << 1 | 1 << 2);
        let m = read(&Superblock {
            version: "0.90",
            at: 0,
            bytes: b,
        })
        .unwrap();
        assert_eq!(m.array_uuid[..4], [0, 0, 0, 8]);
        assert_eq!((m.level, m.raid_disks, m.role), (1, 2, Role::Active(1)));
        assert_eq!(m.events, (1 << 32) | 12);
        assert_eq!(m.preferred_minor, Some(3));
    }
}
