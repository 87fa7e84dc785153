//! The part of `e2fsck -p`'s decision that reads the journal (`e2fsck/journal.c`): an
//! internal journal in inode 8 whose block map the superblock's backup copy matches, and
//! whose own superblock is valid, empty (`s_start` 0) and records no error (`s_errno` 0).
//! Otherwise e2fsck copies the map, replays the journal or marks the filesystem as having
//! errors, so the answer is "no".

use super::crc::crc32c;
use super::device::ReadAt;
use super::ext_journal_map::{first_block, Bounds};
use super::fields::{le16, le32};

const COMPAT_HAS_JOURNAL: u32 = 0x4;
const JOURNAL_INODE: u64 = 8;
const EXTENTS_FL: u32 = 0x80000;
const JOURNAL_MAGIC: u32 = 0xC03B_3998;
/// The journal superblock's version 2 (`JBD2_SUPERBLOCK_V2`); version 1 is refused.
const JOURNAL_V2: u32 = 4;
/// jbd2's incompatible features e2fsck knows: revoke, 64bit, async_commit, csum_v2,
/// csum_v3, fast_commit.
const JOURNAL_INCOMPAT_KNOWN: u32 = 0x3F;
const JOURNAL_CSUM_V2: u32 = 0x8;
const JOURNAL_CSUM_V3: u32 = 0x10;
const JOURNAL_COMPAT_CHECKSUM: u32 = 0x1;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const INCOMPAT_64BIT: u32 = 0x80;
const ENCRYPT_FL: u32 = 0x800;
const INLINE_DATA_FL: u32 = 0x1000_0000;
const JOURNAL_FAST_COMMIT: u32 = 0x20;
/// jbd2's `JBD2_MIN_JOURNAL_BLOCKS` and `JBD2_DEFAULT_FAST_COMMIT_BLOCKS`.
const MIN_JOURNAL_BLOCKS: u64 = 1024;
const DEFAULT_FAST_COMMIT_BLOCKS: u64 = 256;

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
    // The caller's block size is 1024 << (0..=6); the walk divides by it.
    if !(1024..=65536).contains(&bs) {
        return Err("implausible block size".into());
    }
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
        .and_then(|at| dev.read_at(at, usize::try_from(isize).ok()?))
        .ok_or("cannot read the journal's inode")?;
    let checksum_seed = inode_checksum(sb, &inode)?;
    let map = inode.get(0x28..0x64).ok_or("short inode")?;
    if sb.get(0x10C..0x148) != Some(map) {
        return Err("the journal's block map differs from its backup".into());
    }
    // The backup's last two words are the inode's size, high half first.
    let size = |at| le32(&inode, at).map(u64::from).ok_or("short inode");
    let (high, low) = (size(0x6C)?, size(0x4)?);
    let backup = |at| le32(sb, at).map(u64::from).ok_or("short superblock");
    if (backup(0x148)?, backup(0x14C)?) != (high, low) {
        return Err("the journal's size differs from its backup".into());
    }
    // e2fsck_get_journal: a regular file, linked, of jbd2's minimum size at least, whose
    // map reaches its size rounded up (so a size of whole blocks, for the map is walked to
    // the size rounded down); neither encrypted nor inline (e2fsck then uses the backup
    // map, or finds no blocks, and rewrites the journal).
    let blocks = (high << 32 | low) / bs;
    let mode = le16(&inode, 0x0).ok_or("short inode")?;
    let links = le16(&inode, 0x1A).ok_or("short inode")?;
    let flags = le32(&inode, 0x20).ok_or("short inode")?;
    if mode & 0xF000 != 0x8000
        || links == 0
        || blocks < MIN_JOURNAL_BLOCKS
        || low % bs != 0
        || flags & (ENCRYPT_FL | INLINE_DATA_FL) != 0
    {
        return Err("the journal's inode is not a journal".into());
    }
    // ext2fs_blocks_count: the high half only with 64bit. Block 0 is never the journal's
    // (process_journal_block stops there, as at a hole).
    let high_count = match field(0x60)? & INCOMPAT_64BIT {
        0 => 0,
        _ => u64::from(field(0x150)?),
    };
    let fs = Bounds {
        first: u64::from(field(0x14)?).max(1),
        end: high_count << 32 | u64::from(field(0x4)?),
        block_size: bs,
        checksum_seed,
    };
    let start = first_block(dev, &fs, map, flags & EXTENTS_FL != 0, blocks)?;
    let block = start
        .checked_mul(bs)
        .and_then(|at| dev.read_at(at, 1024))
        .ok_or("cannot read the journal's superblock")?;
    // The journal's length in blocks as e2fsck takes it: the inode's size.
    journal_superblock(&block, bs, blocks)
}

/// jbd2's superblock (big-endian) as `e2fsck_journal_load` and `e2fsck_check_ext3_journal`
/// accept it without a change, for a journal inode of `blocks` blocks.
fn journal_superblock(b: &[u8], bs: u64, blocks: u64) -> Result<(), String> {
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
    lengths(b, blocks, incompat)?;
    if at(0x1C)? != 0 {
        return Err("the journal is not empty".into());
    }
    if at(0x20)? != 0 {
        return Err("the journal records an error".into());
    }
    Ok(())
}

/// The lengths `e2fsck_journal_load` checks: a journal no longer than its inode, and room
/// for the fast-commit area beside jbd2's minimum of 1024 blocks (e2fsck's sum can wrap;
/// here that is a "no"). And one it does not: a head (newer kernels record one) between
/// the first block and the end, which the kernel's jbd2 checks; stricter is allowed.
fn lengths(b: &[u8], blocks: u64, incompat: u32) -> Result<(), String> {
    let at = |offset| {
        be32(b, offset)
            .map(u64::from)
            .ok_or("short journal superblock")
    };
    let (max, first, head) = (at(0x10)?, at(0x14)?, at(0x58)?);
    if max > blocks {
        return Err("the journal is longer than its inode".into());
    }
    if incompat & JOURNAL_FAST_COMMIT != 0 {
        let fast = match at(0x54)? {
            0 => DEFAULT_FAST_COMMIT_BLOCKS,
            n => n,
        };
        if max < fast + MIN_JOURNAL_BLOCKS {
            return Err("the journal has no room for its fast commits".into());
        }
    }
    if head != 0 && (head < first || head >= max) {
        return Err("the journal's head is out of bounds".into());
    }
    Ok(())
}

/// With metadata_csum, the inode's checksum as `ext2fs_inode_csum_verify` checks it: e2fsck
/// cannot read a journal inode whose checksum is wrong and deletes the journal. Returns the
/// inode's own seed, from which its extent blocks' checksums start.
fn inode_checksum(sb: &[u8], inode: &[u8]) -> Result<Option<u32>, String> {
    let field = |at| le32(sb, at).ok_or("short superblock");
    if field(0x64)? & RO_COMPAT_METADATA_CSUM == 0 {
        return Ok(None);
    }
    let seed = if field(0x60)? & INCOMPAT_CSUM_SEED != 0 {
        field(0x270)?
    } else {
        crc32c(!0, sb.get(0x68..0x78).ok_or("short superblock")?)
    };
    let extra = le16(inode, 0x80).unwrap_or(0);
    let wide = inode.len() > 128 && extra >= 4;
    let mut copy = inode.to_vec();
    let mut stored = u32::from(le16(inode, 0x7C).ok_or("short inode")?);
    copy.get_mut(0x7C..0x7E).ok_or("short inode")?.fill(0);
    if wide {
        stored |= u32::from(le16(inode, 0x82).ok_or("short inode")?) << 16;
        copy.get_mut(0x82..0x84).ok_or("short inode")?.fill(0);
    }
    let generation = inode.get(0x64..0x68).ok_or("short inode")?;
    let own_seed = crc32c(
        crc32c(seed, &(JOURNAL_INODE as u32).to_le_bytes()),
        generation,
    );
    let crc = crc32c(own_seed, &copy);
    let crc = if wide { crc } else { crc & 0xFFFF };
    if crc != stored {
        return Err("the journal inode's checksum does not match".into());
    }
    Ok(Some(own_seed))
}
