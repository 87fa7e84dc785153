//! squashfs 4 (fs/squashfs/squashfs_fs.h): magic at offset 0; it has no UUID or label.

use super::device::{Filesystem, ReadAt};
use super::fields::{le16, le32};

const MAGIC: u32 = 0x7371_7368; // "hsqs"
const S_MAJOR: usize = 28;

pub fn probe(dev: &dyn ReadAt) -> Option<Filesystem> {
    let sb = dev.read_at(0, 96)?;
    if le32(&sb, 0)? != MAGIC || le16(&sb, S_MAJOR)? != 4 {
        return None;
    }
    Some(Filesystem {
        fstype: "squashfs".to_owned(),
        uuid: None,
        label: None,
        ..Default::default()
    })
}
