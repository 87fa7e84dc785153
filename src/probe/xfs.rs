//! XFS (fs/xfs/libxfs/xfs_format.h, struct xfs_dsb): big-endian superblock at offset 0.

use super::device::{Filesystem, ReadAt};
use super::fields::{label_string, uuid_string};

const SUPERBLOCK_LEN: usize = 512;
const SB_MAGIC: &[u8; 4] = b"XFSB";
const SB_BLOCKSIZE: usize = 4;
const SB_UUID: usize = 32;
const SB_FNAME: usize = 108;
const SB_FNAME_LEN: usize = 12;

pub fn probe(dev: &dyn ReadAt) -> Option<Filesystem> {
    let sb = dev.read_at(0, SUPERBLOCK_LEN)?;
    if sb.get(..4)? != SB_MAGIC {
        return None;
    }
    let blocksize = u32::from_be_bytes(sb.get(SB_BLOCKSIZE..SB_BLOCKSIZE + 4)?.try_into().ok()?);
    if !blocksize.is_power_of_two() || !(512..=65536).contains(&blocksize) {
        return None;
    }
    Some(Filesystem {
        fstype: "xfs".to_owned(),
        uuid: uuid_string(sb.get(SB_UUID..SB_UUID + 16)?),
        label: label_string(sb.get(SB_FNAME..SB_FNAME + SB_FNAME_LEN)?),
        ..Default::default()
    })
}
