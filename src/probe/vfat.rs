//! FAT12, FAT16 and FAT32 (Microsoft's "FAT: General Overview of On-Disk Format"). There is no
//! magic number, so the BIOS parameter block must make sense before anything is believed:
//! a valid sector size, a power-of-two cluster, reserved sectors, one or two FATs, a media
//! byte. Like blkid, the label comes from the root directory's volume-label entry when there
//! is one (that is what tools rename), else from the boot sector.

use super::device::{Filesystem, ReadAt};
use super::fields::{label_string, le16, le32};

const BPB_BYTES_PER_SECTOR: usize = 0x0B;
const BPB_SECTORS_PER_CLUSTER: usize = 0x0D;
const BPB_RESERVED_SECTORS: usize = 0x0E;
const BPB_NUM_FATS: usize = 0x10;
const BPB_ROOT_ENTRIES: usize = 0x11;
const BPB_MEDIA: usize = 0x15;
const BPB_FAT_SIZE_16: usize = 0x16;
// FAT12/16 extended boot record.
const BS16_VOLUME_ID: usize = 0x27;
const BS16_LABEL: usize = 0x2B;
// FAT32 extended boot record.
const BPB32_FAT_SIZE: usize = 0x24;
const BPB32_ROOT_CLUSTER: usize = 0x2C;
const BS32_VOLUME_ID: usize = 0x43;
const BS32_LABEL: usize = 0x47;
const LABEL_LEN: usize = 11;
const OEM_NAME: usize = 0x03;
const SIGNATURE: usize = 0x1FE;

const DIR_ENTRY_LEN: usize = 32;
const DIR_ATTR: usize = 11;
const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_LONG_NAME: u8 = 0x0F;
const DELETED: u8 = 0xE5;
const NO_NAME: &str = "NO NAME";

pub fn probe(dev: &dyn ReadAt) -> Option<Filesystem> {
    let bs = dev.read_at(0, 512)?;
    if bs.get(SIGNATURE..SIGNATURE + 2)? != [0x55, 0xAA] {
        return None;
    }
    // NTFS and exFAT carry their names where FAT has its OEM name.
    let oem = bs.get(OEM_NAME..OEM_NAME + 8)?;
    if oem == b"NTFS    " || oem == b"EXFAT   " {
        return None;
    }
    let sector = u64::from(le16(&bs, BPB_BYTES_PER_SECTOR)?);
    let per_cluster = u64::from(*bs.get(BPB_SECTORS_PER_CLUSTER)?);
    let reserved = u64::from(le16(&bs, BPB_RESERVED_SECTORS)?);
    let fats = u64::from(*bs.get(BPB_NUM_FATS)?);
    let media = *bs.get(BPB_MEDIA)?;
    let valid = matches!(sector, 512 | 1024 | 2048 | 4096)
        && per_cluster.is_power_of_two()
        && per_cluster <= 128
        && reserved > 0
        && (fats == 1 || fats == 2)
        && (media >= 0xF8 || media == 0xF0);
    if !valid {
        return None;
    }
    let fat16_size = u64::from(le16(&bs, BPB_FAT_SIZE_16)?);
    // Every value here comes from the disk: checked arithmetic, so a hostile boot sector
    // is "not FAT" rather than an overflow.
    let (volume_id_at, label_at, root_dir) = if fat16_size == 0 {
        let fat_size = u64::from(le32(&bs, BPB32_FAT_SIZE)?);
        let root_cluster = u64::from(le32(&bs, BPB32_ROOT_CLUSTER)?);
        let data_start = reserved.checked_add(fats.checked_mul(fat_size)?)?;
        let root_sector =
            data_start.checked_add(root_cluster.checked_sub(2)?.checked_mul(per_cluster)?)?;
        let len = per_cluster.checked_mul(sector)?;
        (
            BS32_VOLUME_ID,
            BS32_LABEL,
            (root_sector.checked_mul(sector)?, len),
        )
    } else {
        let root_entries = u64::from(le16(&bs, BPB_ROOT_ENTRIES)?);
        let root_sector = reserved.checked_add(fats.checked_mul(fat16_size)?)?;
        (
            BS16_VOLUME_ID,
            BS16_LABEL,
            (
                root_sector.checked_mul(sector)?,
                root_entries.checked_mul(DIR_ENTRY_LEN as u64)?,
            ),
        )
    };
    let id = bs.get(volume_id_at..volume_id_at + 4)?;
    let uuid = format!(
        "{:02X}{:02X}-{:02X}{:02X}",
        id.get(3)?,
        id.get(2)?,
        id.get(1)?,
        id.first()?
    );
    let boot_label = label_string(bs.get(label_at..label_at + LABEL_LEN)?).filter(|l| l != NO_NAME);
    let dir_label = root_dir_label(dev, root_dir.0, root_dir.1);
    Some(Filesystem {
        fstype: "vfat".to_owned(),
        uuid: Some(uuid),
        label: dir_label.or(boot_label),
        ..Default::default()
    })
}

/// The most of the root directory read for its label: the label is among the first
/// entries mkfs and the renaming tools write, and a hostile BPB may claim any size.
pub const MAX_ROOT_DIR_READ: u64 = 64 * 1024;

/// The volume-label entry of the root directory, read from its first cluster (or the fixed
/// FAT12/16 root area), at most [`MAX_ROOT_DIR_READ`] bytes: at most 2,048 entries scanned.
fn root_dir_label(dev: &dyn ReadAt, offset: u64, len: u64) -> Option<String> {
    let len = usize::try_from(len.min(MAX_ROOT_DIR_READ)).ok()?;
    let dir = dev.read_at(offset, len)?;
    for entry in dir.chunks_exact(DIR_ENTRY_LEN) {
        let first = *entry.first()?;
        if first == 0 {
            break;
        }
        let attr = *entry.get(DIR_ATTR)?;
        if first != DELETED && attr != ATTR_LONG_NAME && attr & ATTR_VOLUME_ID != 0 {
            return label_string(entry.get(..LABEL_LEN)?).filter(|l| l != NO_NAME);
        }
    }
    None
}
