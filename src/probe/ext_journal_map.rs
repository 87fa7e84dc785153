//! The journal inode's block map, walked as e2fsck's `e2fsck_get_journal` walks it: every
//! block up to the inode's size mapped, in order, to a block inside the filesystem, and so
//! is every block of the map itself. e2fsck stops at the first block that is not and, if
//! the blocks before it do not reach the size, takes the journal for too short and rebuilds
//! it from the backup: a write, so here a "no". Both forms: an extent tree (a leaf in the
//! inode, or one index level, as mke2fs makes for a 1 GiB journal) and ext3's direct,
//! indirect and double-indirect blocks. Extents must follow one another without a gap,
//! which is stricter than e2fsck and what mke2fs and the kernel make.

use super::device::ReadAt;
use super::fields::{le16, le32};

const EXTENT_MAGIC: u16 = 0xF30A;
/// An extent longer than this is an uninitialised one (`EXT_INIT_MAX_LEN`).
const EXTENT_MAX_LEN: u64 = 32768;
/// Direct block pointers in an inode before the indirect one.
const DIRECT: u64 = 12;

/// The filesystem's blocks a map may point at: `first..end`.
pub(super) struct Bounds {
    pub first: u64,
    pub end: u64,
    pub block_size: u64,
}

impl Bounds {
    fn check(&self, block: u64) -> Result<u64, String> {
        if (self.first..self.end).contains(&block) {
            Ok(block)
        } else {
            Err("the journal's block map points outside the filesystem".into())
        }
    }

    fn read(&self, dev: &dyn ReadAt, block: u64) -> Result<Vec<u8>, String> {
        let block = self.check(block)?;
        block
            .checked_mul(self.block_size)
            .and_then(|at| dev.read_at(at, usize::try_from(self.block_size).ok()?))
            .ok_or_else(|| "cannot read the journal's block map".into())
    }
}

/// Checks that the inode's map (`i_block`, 60 bytes) covers `blocks` blocks; returns the
/// block that holds the journal's block 0.
pub(super) fn first_block(
    dev: &dyn ReadAt,
    fs: &Bounds,
    map: &[u8],
    extents: bool,
    blocks: u64,
) -> Result<u64, String> {
    if extents {
        extent_tree(dev, fs, map, blocks)
    } else {
        block_map(dev, fs, map, blocks)
    }
}

fn extent_tree(dev: &dyn ReadAt, fs: &Bounds, map: &[u8], blocks: u64) -> Result<u64, String> {
    let mut walk = Extents {
        next: 0,
        first: None,
    };
    match node_header(map)? {
        (0, entries) => walk.leaf(fs, map, entries)?,
        (1, entries) => {
            for entry in map.chunks_exact(12).skip(1).take(entries) {
                let hi = u64::from(le16(entry, 8).ok_or("short extent index")?);
                let child = hi << 32 | u64::from(le32(entry, 4).ok_or("short extent index")?);
                let node = fs.read(dev, child)?;
                match node_header(&node)? {
                    (0, entries) => walk.leaf(fs, &node, entries)?,
                    _ => return Err("the journal's extent leaf is not a leaf".into()),
                }
            }
        }
        _ => return Err("the journal's extent tree is deeper than one index level".into()),
    }
    if walk.next < blocks {
        return Err("the journal's extents end before its size".into());
    }
    walk.first
        .ok_or_else(|| "the journal's block 0 is not mapped".into())
}

/// Extents seen so far: the logical block the next must start at, and where block 0 is.
struct Extents {
    next: u64,
    first: Option<u64>,
}

impl Extents {
    fn leaf(&mut self, fs: &Bounds, node: &[u8], entries: usize) -> Result<(), String> {
        for entry in node.chunks_exact(12).skip(1).take(entries) {
            let field = |at| le32(entry, at).map(u64::from).ok_or("short extent");
            let len = u64::from(le16(entry, 4).ok_or("short extent")?);
            let start = u64::from(le16(entry, 6).ok_or("short extent")?) << 32 | field(8)?;
            if field(0)? != self.next || len == 0 || len > EXTENT_MAX_LEN {
                return Err("the journal's extents leave a gap".into());
            }
            fs.check(start)?;
            fs.check(start + len - 1)?;
            self.first.get_or_insert(start);
            self.next += len;
        }
        Ok(())
    }
}

/// An extent node's depth and number of entries (at most what its bytes hold).
fn node_header(node: &[u8]) -> Result<(u16, usize), String> {
    let field = |at| le16(node, at).ok_or("short extent header");
    let entries = usize::from(field(2)?);
    if field(0)? != EXTENT_MAGIC || entries > (node.len() / 12).saturating_sub(1) {
        return Err("the journal's extent tree is damaged".into());
    }
    Ok((field(6)?, entries))
}

/// ext3's map: 12 direct blocks, then one indirect block of pointers, then a double
/// indirect one. A journal that would need the triple indirect block is refused.
fn block_map(dev: &dyn ReadAt, fs: &Bounds, map: &[u8], blocks: u64) -> Result<u64, String> {
    let per = fs.block_size / 4;
    if blocks > DIRECT + per + per * per {
        return Err("the journal's block map is deeper than this check reads".into());
    }
    let mut left = blocks;
    run(fs, map, DIRECT, &mut left)?;
    if left > 0 {
        run(fs, &fs.read(dev, pointer(map, DIRECT)?)?, per, &mut left)?;
    }
    if left > 0 {
        let double = fs.read(dev, pointer(map, DIRECT + 1)?)?;
        for i in 0..left.div_ceil(per) {
            run(fs, &fs.read(dev, pointer(&double, i)?)?, per, &mut left)?;
        }
    }
    fs.check(pointer(map, 0)?)
}

/// Checks the first `count` pointers of a map block (or fewer, as `left` blocks are
/// still to be mapped) and counts them off.
fn run(fs: &Bounds, map: &[u8], count: u64, left: &mut u64) -> Result<(), String> {
    for i in 0..count.min(*left) {
        fs.check(pointer(map, i)?)?;
    }
    *left = left.saturating_sub(count);
    Ok(())
}

fn pointer(map: &[u8], i: u64) -> Result<u64, String> {
    usize::try_from(i * 4)
        .ok()
        .and_then(|at| le32(map, at))
        .map(u64::from)
        .ok_or_else(|| "short block map".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds {
            first: 1,
            end: 100_000,
            block_size: 1024,
        }
    }

    fn extent(logical: u32, len: u16, start: u32) -> Vec<u8> {
        let mut e = logical.to_le_bytes().to_vec();
        e.extend(len.to_le_bytes());
        e.extend(0u16.to_le_bytes());
        e.extend(start.to_le_bytes());
        e
    }

    fn leaf(extents: &[Vec<u8>]) -> Vec<u8> {
        let mut node = EXTENT_MAGIC.to_le_bytes().to_vec();
        node.extend((extents.len() as u16).to_le_bytes());
        node.extend(4u16.to_le_bytes());
        node.extend([0; 6]);
        for e in extents {
            node.extend(e);
        }
        node.resize(60, 0);
        node
    }

    #[test]
    fn extents_must_cover_the_size_without_a_gap() {
        let dev = &Vec::new();
        let whole = leaf(&[extent(0, 600, 500), extent(600, 424, 2000)]);
        assert_eq!(first_block(dev, &bounds(), &whole, true, 1024), Ok(500));
        let short = leaf(&[extent(0, 600, 500)]);
        assert!(first_block(dev, &bounds(), &short, true, 1024).is_err());
        let gap = leaf(&[extent(0, 600, 500), extent(700, 424, 2000)]);
        assert!(first_block(dev, &bounds(), &gap, true, 1024).is_err());
        let outside = leaf(&[extent(0, 1024, 99_500)]);
        assert!(first_block(dev, &bounds(), &outside, true, 1024).is_err());
        let mut lying = leaf(&[extent(0, 1024, 500)]);
        lying[2] = 200;
        assert!(first_block(dev, &bounds(), &lying, true, 1024).is_err());
    }

    #[test]
    fn a_block_map_is_read_through_its_indirect_blocks() {
        // 1 KB blocks: 12 direct, 256 through block 40, the rest through 41 -> 42, 43.
        let mut dev = vec![0u8; 50 * 1024];
        let mut map = Vec::new();
        for b in 100..112u32 {
            map.extend(b.to_le_bytes());
        }
        map.extend(40u32.to_le_bytes());
        map.extend(41u32.to_le_bytes());
        map.resize(60, 0);
        for i in 0..256u32 {
            dev[40 * 1024 + i as usize * 4..][..4].copy_from_slice(&(200 + i).to_le_bytes());
            dev[42 * 1024 + i as usize * 4..][..4].copy_from_slice(&(600 + i).to_le_bytes());
        }
        dev[41 * 1024..][..4].copy_from_slice(&42u32.to_le_bytes());
        let dev = &dev;
        assert_eq!(
            first_block(dev, &bounds(), &map, false, 12 + 256 + 256),
            Ok(100)
        );
        // One block further needs the second double-indirect entry, which is 0.
        assert!(first_block(dev, &bounds(), &map, false, 12 + 256 + 257).is_err());
    }
}
