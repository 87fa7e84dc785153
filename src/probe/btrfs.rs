//! btrfs (fs/btrfs/accessors and Documentation: struct btrfs_super_block), primary
//! superblock at 64 KiB.

use super::device::{Filesystem, ReadAt};
use super::fields::{label_string, uuid_string};

const SUPERBLOCK: u64 = 0x10000;
const SUPERBLOCK_LEN: usize = 4096;
const FSID: usize = 0x20;
const MAGIC_AT: usize = 0x40;
const MAGIC: &[u8; 8] = b"_BHRfS_M";
const LABEL: usize = 0x12B;
const LABEL_LEN: usize = 256;

pub fn probe(dev: &dyn ReadAt) -> Option<Filesystem> {
    let sb = dev.read_at(SUPERBLOCK, SUPERBLOCK_LEN)?;
    if sb.get(MAGIC_AT..MAGIC_AT + 8)? != MAGIC {
        return None;
    }
    Some(Filesystem {
        fstype: "btrfs".to_owned(),
        uuid: uuid_string(sb.get(FSID..FSID + 16)?),
        label: label_string(sb.get(LABEL..LABEL + LABEL_LEN)?),
        ..Default::default()
    })
}
