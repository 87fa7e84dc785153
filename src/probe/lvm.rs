//! LVM2 physical volumes: the label lvm2 writes in one of the first four sectors, and the PV
//! UUID of the header it points to, as blkid reports them (TYPE=LVM2_member). The volume
//! group's metadata is read by the init's storage code, not here.

use super::device::{Filesystem, ReadAt};
use super::fields::{le32, le64};

const SECTOR: usize = 512;
/// The label may be in any of sectors 0 to 3.
const LABEL_SECTORS: usize = 4;
const LABEL_ID: &[u8] = b"LABELONE";
/// `u64`: the sector the label says it is in.
const SECTOR_AT: usize = 8;
/// `u32`: lvm2's CRC of the label from [`OFFSET_AT`] to the sector's end.
const CRC_AT: usize = 16;
/// `u32`: where the PV header starts, from the label's start.
const OFFSET_AT: usize = 20;
const TYPE_AT: usize = 24;
const LVM2_TYPE: &[u8] = b"LVM2 001";
/// The PV UUID: 32 characters, shown in groups of 6-4-4-4-4-4-6.
const UUID_LEN: usize = 32;
const UUID_GROUPS: [usize; 7] = [6, 4, 4, 4, 4, 4, 6];
/// lvm2's CRC starts from this instead of all ones, and is not inverted at the end.
const CRC_INITIAL: u32 = 0xf597_a6cf;

/// A checked label: the PV's UUID, dashed, and the PV header it points to (from the UUID
/// to the end of the label's sector), for the init's LVM code to read the areas from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub uuid: String,
    pub header: Vec<u8>,
}

pub fn find_label(dev: &dyn ReadAt) -> Option<Label> {
    let head = dev.read_at(0, SECTOR * LABEL_SECTORS)?;
    (0..LABEL_SECTORS).find_map(|n| label_in(head.get(n * SECTOR..(n + 1) * SECTOR)?, n))
}

pub fn probe(dev: &dyn ReadAt) -> Option<Filesystem> {
    Some(Filesystem {
        fstype: "LVM2_member".into(),
        uuid: Some(find_label(dev)?.uuid),
        label: None,
        version: Some("LVM2 001".into()),
        uuid_sub: None,
    })
}

fn label_in(sector: &[u8], number: usize) -> Option<Label> {
    if sector.get(..LABEL_ID.len())? != LABEL_ID
        || le64(sector, SECTOR_AT)? != number as u64
        || sector.get(TYPE_AT..TYPE_AT + LVM2_TYPE.len())? != LVM2_TYPE
        || le32(sector, CRC_AT)? != crc(CRC_INITIAL, sector.get(OFFSET_AT..)?)
    {
        return None;
    }
    let at = usize::try_from(le32(sector, OFFSET_AT)?).ok()?;
    let header = sector.get(at..)?;
    let uuid = header.get(..UUID_LEN)?;
    if !uuid.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut groups = Vec::with_capacity(UUID_GROUPS.len());
    let mut rest = uuid;
    for len in UUID_GROUPS {
        let (group, tail) = rest.split_at_checked(len)?;
        groups.push(String::from_utf8(group.to_vec()).ok()?);
        rest = tail;
    }
    Some(Label {
        uuid: groups.join("-"),
        header: header.to_vec(),
    })
}

/// lvm2's CRC-32 (the reflected 0xedb88320 polynomial, bit by bit).
pub(crate) fn crc(initial: u32, bytes: &[u8]) -> u32 {
    let mut crc = initial;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(sector: usize, uuid: &[u8; 32]) -> Vec<u8> {
        let mut disk = vec![0u8; 4096];
        let s = &mut disk[sector * SECTOR..(sector + 1) * SECTOR];
        s[..8].copy_from_slice(LABEL_ID);
        s[SECTOR_AT..SECTOR_AT + 8].copy_from_slice(&(sector as u64).to_le_bytes());
        s[OFFSET_AT..OFFSET_AT + 4].copy_from_slice(&32u32.to_le_bytes());
        s[TYPE_AT..TYPE_AT + 8].copy_from_slice(LVM2_TYPE);
        s[32..64].copy_from_slice(uuid);
        let sum = crc(CRC_INITIAL, &s[OFFSET_AT..]);
        s[CRC_AT..CRC_AT + 4].copy_from_slice(&sum.to_le_bytes());
        disk
    }

    #[test]
    fn the_label_in_any_of_the_first_four_sectors() {
        for sector in 0..4 {
            let found = probe(&pv(sector, b"1VGmLLbt0npv01aaaabbbbccccdddd01")).unwrap();
            assert_eq!(found.fstype, "LVM2_member");
            assert_eq!(
                found.uuid.as_deref(),
                Some("1VGmLL-bt0n-pv01-aaaa-bbbb-cccc-dddd01")
            );
        }
    }

    #[test]
    fn a_damaged_label_is_nothing() {
        let mut disk = pv(1, b"1VGmLLbt0npv01aaaabbbbccccdddd01");
        disk[SECTOR + 40] ^= 1;
        assert!(probe(&disk).is_none(), "checksum");
        // A label that says it is in another sector is a copy, not the label.
        let mut disk = pv(1, b"1VGmLLbt0npv01aaaabbbbccccdddd01");
        disk.copy_within(SECTOR..2 * SECTOR, 2 * SECTOR);
        disk[SECTOR..2 * SECTOR].fill(0);
        assert!(probe(&disk).is_none());
    }

    #[test]
    fn the_check_value_of_the_crc() {
        // CRC-32's check value, "123456789" from all ones, inverted at the end.
        assert_eq!(!crc(!0, b"123456789"), 0xcbf4_3926);
    }
}
