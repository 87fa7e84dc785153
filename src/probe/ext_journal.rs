//! The part of `e2fsck -p`'s decision that reads the journal (`e2fsck/journal.c`): an
//! internal journal in inode 8 whose block map the superblock's backup copy matches, and
//! whose own superblock is valid, empty (`s_start` 0) and records no error (`s_errno` 0).
//! Otherwise e2fsck copies the map, replays the journal or marks the filesystem as having
//! errors, so the answer is "no".

use super::crc::crc32c;
use super::device::ReadAt;
use super::fields::{le16, le32};

const COMPAT_HAS_JOURNAL: u32 = 0x4;
const JOURNAL_INODE: u64 = 8;
const EXTENTS_FL: u32 = 0x80000;
const EXTENT_MAGIC: u16 = 0xF30A;
const JOURNAL_MAGIC: u32 = 0xC03B_3998;
/// The journal superblock's version 2 (`JBD2_SUPERBLOCK_V2`); version 1 is refused.
const JOURNAL_V2: u32 = 4;
/// jbd2's incompatible features e2fsck knows: revoke, 64bit, async_commit, csum_v2,
/// csum_v3, fast_commit.
const JOURNAL_INCOMPAT_KNOWN: u32 = 0x3F;
const JOURNAL_CSUM_V2: u32 = 0x8;
const JOURNAL_CSUM_V3: u32 = 0x10;
const JOURNAL_COMPAT_CHECKSUM: u32 = 0x1;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Checks the journal of the filesystem whose superblock is `sb` (block size `bs`, group
/// 0's inode table at block `inode_table`).
pub(super) fn journal(
    dev: &dyn ReadAt,
    sb: &[u8],
    bs: u64,
    inode_table: u64,
) -> Result<(), String> {
    let field = |at| le32(sb, at).ok_or("short superblock");
    let no_uuid = sb
        .get(0xD0..0xE0)
        .is_some_and(|u| u.iter().all(|&b| b == 0));
    if field(0x5C)? & COMPAT_HAS_JOURNAL == 0 {
        return match (field(0xE0)?, field(0xE4)?, no_uuid) {
            (0, 0, true) => Ok(()),
            _ => Err("journal fields without a journal".into()),
        };
    }
    if !no_uuid || field(0xE4)? != 0 || u64::from(field(0xE0)?) != JOURNAL_INODE {
        return Err("the journal is not the usual internal one".into());
    }
    if sb.get(0xFD) != Some(&1) {
        return Err("no backup of the journal's block map".into());
    }
    let isize = u64::from(le16(sb, 0x58).ok_or("short superblock")?);
    let inode = inode_table
        .checked_mul(bs)
        .and_then(|table| table.checked_add((JOURNAL_INODE - 1) * isize))
        .and_then(|at| dev.read_at(at, 128))
        .ok_or("cannot read the journal's inode")?;
    let map = inode.get(0x28..0x64).ok_or("short inode")?;
    if sb.get(0x10C..0x148) != Some(map) {
        return Err("the journal's block map differs from its backup".into());
    }
    let flags = le32(&inode, 0x20).ok_or("short inode")?;
    let start = first_block(dev, bs, map, flags & EXTENTS_FL != 0)?;
    let block = start
        .checked_mul(bs)
        .and_then(|at| dev.read_at(at, 1024))
        .ok_or("cannot read the journal's superblock")?;
    journal_superblock(&block, bs)
}

/// The filesystem block that holds the journal's block 0: through the extent tree (a leaf
/// in the inode, or one index level above the leaves, as a journal of 1 GiB, mke2fs's
/// default from a 128 GiB filesystem up, has), or the first direct block.
fn first_block(dev: &dyn ReadAt, bs: u64, map: &[u8], extents: bool) -> Result<u64, String> {
    if !extents {
        return match le32(map, 0) {
            Some(block) if block != 0 => Ok(u64::from(block)),
            _ => Err("the journal has no first block".into()),
        };
    }
    match node_header(map)? {
        (0, entries) => leaf_start(map, entries),
        (1, entries) => {
            // The first index entry covers logical block 0 (entries are sorted).
            let entry = map.chunks_exact(12).nth(1).filter(|_| entries > 0);
            let child = match entry {
                Some(e) if le32(e, 0) == Some(0) => {
                    let hi = u64::from(le16(e, 8).ok_or("short extent index")?);
                    hi << 32 | u64::from(le32(e, 4).ok_or("short extent index")?)
                }
                _ => return Err("the journal's block 0 is not indexed".into()),
            };
            let node = child
                .checked_mul(bs)
                .and_then(|at| dev.read_at(at, usize::try_from(bs).ok()?))
                .ok_or("cannot read the journal's extent leaf")?;
            match node_header(&node)? {
                (0, entries) => leaf_start(&node, entries),
                _ => Err("the journal's extent leaf is not a leaf".into()),
            }
        }
        _ => Err("the journal's extent tree is deeper than one index level".into()),
    }
}

/// An extent node's depth and number of entries.
fn node_header(node: &[u8]) -> Result<(u16, usize), String> {
    let field = |at| le16(node, at).ok_or("short extent header");
    if field(0)? != EXTENT_MAGIC {
        return Err("the journal's extent tree is damaged".into());
    }
    Ok((field(6)?, usize::from(field(2)?)))
}

/// The physical block of the extent in `node` that starts at logical block 0.
fn leaf_start(node: &[u8], entries: usize) -> Result<u64, String> {
    for entry in node.chunks_exact(12).skip(1).take(entries) {
        if le32(entry, 0) == Some(0) {
            let hi = u64::from(le16(entry, 6).ok_or("short extent")?);
            let lo = u64::from(le32(entry, 8).ok_or("short extent")?);
            return Ok(hi << 32 | lo);
        }
    }
    Err("the journal's block 0 is not mapped".into())
}

/// jbd2's superblock (big-endian) as `e2fsck_journal_load` and `e2fsck_check_ext3_journal`
/// accept it without a change.
fn journal_superblock(b: &[u8], bs: u64) -> Result<(), String> {
    let at = |offset| be32(b, offset).ok_or("short journal superblock");
    if at(0x0)? != JOURNAL_MAGIC || at(0x4)? != JOURNAL_V2 {
        return Err("not a version 2 journal superblock".into());
    }
    if u64::from(at(0xC)?) != bs {
        return Err("the journal's block size differs".into());
    }
    let (compat, incompat) = (at(0x24)?, at(0x28)?);
    let csum = incompat & (JOURNAL_CSUM_V2 | JOURNAL_CSUM_V3);
    if incompat & !JOURNAL_INCOMPAT_KNOWN != 0
        || at(0x2C)? != 0
        || csum == JOURNAL_CSUM_V2 | JOURNAL_CSUM_V3
        || csum != 0 && compat & JOURNAL_COMPAT_CHECKSUM != 0
        || at(0x40)? > 1
    {
        return Err("journal features e2fsck would change".into());
    }
    if csum != 0 {
        let mut copy = b.get(..1024).ok_or("short journal superblock")?.to_vec();
        if let Some(field) = copy.get_mut(0xFC..0x100) {
            field.fill(0);
        }
        if b.get(0x50) != Some(&4) || crc32c(!0, &copy) != at(0xFC)? {
            return Err("the journal superblock's checksum does not match".into());
        }
    }
    if at(0x1C)? != 0 {
        return Err("the journal is not empty".into());
    }
    if at(0x20)? != 0 {
        return Err("the journal records an error".into());
    }
    Ok(())
}
