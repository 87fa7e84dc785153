//! F2FS (include/linux/f2fs_fs.h, struct f2fs_super_block), at 1 KiB; the label is UTF-16LE.

use super::device::{Filesystem, ReadAt};
use super::fields::{le32, utf16_label, uuid_string};

const SUPERBLOCK: u64 = 0x400;
const SUPERBLOCK_LEN: usize = 0x7C + 1024;
const MAGIC: u32 = 0xF2F5_2010;
const UUID: usize = 0x6C;
const VOLUME_NAME: usize = 0x7C;
const VOLUME_NAME_LEN: usize = 1024;

pub fn probe(dev: &dyn ReadAt) -> Option<Filesystem> {
    let sb = dev.read_at(SUPERBLOCK, SUPERBLOCK_LEN)?;
    if le32(&sb, 0)? != MAGIC {
        return None;
    }
    Some(Filesystem {
        fstype: "f2fs".to_owned(),
        uuid: uuid_string(sb.get(UUID..UUID + 16)?),
        label: utf16_label(sb.get(VOLUME_NAME..VOLUME_NAME + VOLUME_NAME_LEN)?),
        ..Default::default()
    })
}
