//! ext2, ext3 and ext4 (Documentation/filesystems/ext4/super.rst). Which of the three is
//! decided by feature flags the way blkid does: ext2 has no journal and only ext2 features,
//! ext3 has a journal and only ext3 features, anything else is ext4.

use super::device::{Filesystem, ReadAt};
use super::fields::{label_string, le16, le32, uuid_string};

const SUPERBLOCK: u64 = 1024;
const SUPERBLOCK_LEN: usize = 1024;
const S_MAGIC: usize = 0x38;
const MAGIC: u16 = 0xEF53;
const S_FEATURE_COMPAT: usize = 0x5C;
const S_FEATURE_INCOMPAT: usize = 0x60;
const S_FEATURE_RO_COMPAT: usize = 0x64;
const S_UUID: usize = 0x68;
const S_VOLUME_NAME: usize = 0x78;
const S_VOLUME_NAME_LEN: usize = 16;

const COMPAT_HAS_JOURNAL: u32 = 0x0004;
const INCOMPAT_FILETYPE: u32 = 0x0002;
const INCOMPAT_RECOVER: u32 = 0x0004;
const INCOMPAT_JOURNAL_DEV: u32 = 0x0008;
const INCOMPAT_META_BG: u32 = 0x0010;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
const RO_COMPAT_LARGE_FILE: u32 = 0x0002;
const RO_COMPAT_BTREE_DIR: u32 = 0x0004;

const EXT2_INCOMPAT: u32 = INCOMPAT_FILETYPE | INCOMPAT_META_BG;
const EXT3_INCOMPAT: u32 = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;
const EXT23_RO_COMPAT: u32 = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR;

pub fn probe(dev: &dyn ReadAt) -> Option<Filesystem> {
    let sb = dev.read_at(SUPERBLOCK, SUPERBLOCK_LEN)?;
    if le16(&sb, S_MAGIC)? != MAGIC {
        return None;
    }
    let compat = le32(&sb, S_FEATURE_COMPAT)?;
    let incompat = le32(&sb, S_FEATURE_INCOMPAT)?;
    let ro_compat = le32(&sb, S_FEATURE_RO_COMPAT)?;
    if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        // An external journal, not a filesystem that can be mounted.
        return None;
    }
    let journal = compat & COMPAT_HAS_JOURNAL != 0;
    let only = |allowed_incompat: u32| {
        incompat & !allowed_incompat == 0 && ro_compat & !EXT23_RO_COMPAT == 0
    };
    let fstype = if !journal && only(EXT2_INCOMPAT) {
        "ext2"
    } else if journal && only(EXT3_INCOMPAT) {
        "ext3"
    } else {
        "ext4"
    };
    Some(Filesystem {
        fstype: fstype.to_owned(),
        uuid: uuid_string(sb.get(S_UUID..S_UUID + 16)?),
        label: label_string(sb.get(S_VOLUME_NAME..S_VOLUME_NAME + S_VOLUME_NAME_LEN)?),
        ..Default::default()
    })
}
