//! The journal inode's block map, walked as e2fsck's `e2fsck_get_journal` walks it: every
//! block up to the inode's size mapped, in order, to a block inside the filesystem, and so
//! is every block of the map itself. e2fsck stops at the first block that is not and, if
//! the blocks before it do not reach the size, takes the journal for too short and rebuilds
//! it from the backup: a write, so here a "no". Both forms: an extent tree (a leaf in the
//! inode, or one index level, as mke2fs makes for a 1 GiB journal) and ext3's direct,
//! indirect and double-indirect blocks. Extents must follow one another without a gap,
//! which is stricter than e2fsck and what mke2fs and the kernel make.

use super::crc::crc32c;
use super::device::ReadAt;
use super::fields::{le16, le32};

const EXTENT_MAGIC: u16 = 0xF30A;
/// An extent longer than this is an uninitialised one (`EXT_INIT_MAX_LEN`).
const EXTENT_MAX_LEN: u64 = 32768;
/// Direct block pointers in an inode before the indirect one.
const DIRECT: u64 = 12;
/// The longest journal walked (4 GiB of 4 KB blocks, 1 GiB of 1 KB ones; mke2fs makes
/// 1 GiB at most): a bound on the reads a block map can ask for.
const MAX_BLOCKS: u64 = 1 << 20;

/// The filesystem's blocks a map may point at (`first..end`), and with metadata_csum the
/// journal inode's own checksum seed, which its extent blocks' checksums start from.
pub(super) struct Bounds {
    pub first: u64,
    pub end: u64,
    pub block_size: u64,
    pub checksum_seed: Option<u32>,
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
    if blocks > MAX_BLOCKS {
        return Err("the journal is longer than this check reads".into());
    }
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
                block_checksum(fs, &node)?;
                match node_header(&node)? {
                    (0, entries) if entries > 0 => walk.leaf(fs, &node, entries)?,
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

/// An extent node's depth and number of entries, as `ext2fs_extent_header_verify` accepts
/// them: its capacity (`eh_max`) what the node's bytes hold or at most two less, and no
/// more entries than that.
fn node_header(node: &[u8]) -> Result<(u16, usize), String> {
    let field = |at| le16(node, at).map(usize::from).ok_or("short extent header");
    let (entries, max) = (field(2)?, field(4)?);
    let room = (node.len() / 12).saturating_sub(1);
    if field(0)? != usize::from(EXTENT_MAGIC) || entries > max || max > room || max + 2 < room {
        return Err("the journal's extent tree is damaged".into());
    }
    let depth = le16(node, 6).ok_or("short extent header")?;
    Ok((depth, entries))
}

/// With metadata_csum, an extent block's tail: a CRC-32C of its header and `eh_max`
/// entries from the inode's seed. e2fsck stops its walk at a wrong one.
fn block_checksum(fs: &Bounds, node: &[u8]) -> Result<(), String> {
    let Some(seed) = fs.checksum_seed else {
        return Ok(());
    };
    let max = le16(node, 4)
        .map(usize::from)
        .ok_or("short extent header")?;
    let end = 12 + 12 * max;
    let covered = node.get(..end).ok_or("short extent block")?;
    if le32(node, end) != Some(crc32c(seed, covered)) {
        return Err("the journal's extent block checksum does not match".into());
    }
    Ok(())
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
            checksum_seed: None,
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
        // A hole: e2fsck stops at a 0 pointer as at a block outside the filesystem.
        let mut holed = map.clone();
        holed[5 * 4..6 * 4].fill(0);
        assert!(first_block(dev, &bounds(), &holed, false, 12).is_err());
        assert!(first_block(dev, &bounds(), &map, false, MAX_BLOCKS + 1).is_err());
    }

    #[test]
    fn extent_headers_are_checked_as_e2fsck_does() {
        let dev = &Vec::new();
        let good = leaf(&[extent(0, 1024, 500)]);
        assert!(first_block(dev, &bounds(), &good, true, 1024).is_ok());
        // eh_max (bytes 4..6) of an inode's root: 4, or 2 or 3; never more, nor 1.
        for (max, ok) in [(2u16, true), (1, false), (5, false)] {
            let mut node = good.clone();
            node[4..6].copy_from_slice(&max.to_le_bytes());
            assert_eq!(first_block(dev, &bounds(), &node, true, 1024).is_ok(), ok);
        }
    }

    /// A 1 KB block holding an extent leaf with `extents`, its checksum from `seed`.
    fn leaf_block(extents: &[Vec<u8>], seed: u32) -> Vec<u8> {
        let max: u16 = 1024 / 12 - 1;
        let mut node = leaf(extents);
        node.resize(1024, 0);
        node[4..6].copy_from_slice(&max.to_le_bytes());
        let end = 12 + 12 * usize::from(max);
        let sum = crc32c(seed, &node[..end]);
        node[end..end + 4].copy_from_slice(&sum.to_le_bytes());
        node
    }

    #[test]
    fn an_indexed_leaf_carries_its_checksum_and_an_extent() {
        let seed = 0x1234_5678;
        let fs = Bounds {
            checksum_seed: Some(seed),
            ..bounds()
        };
        // The root: depth 1, one index entry (logical 0, child block 40).
        let mut root = leaf(&[]);
        root[2] = 1;
        root[6] = 1;
        root[12..16].copy_from_slice(&0u32.to_le_bytes());
        root[16..20].copy_from_slice(&40u32.to_le_bytes());
        let with = |block: Vec<u8>| {
            let mut dev = vec![0u8; 41 * 1024];
            dev[40 * 1024..].copy_from_slice(&block);
            dev
        };
        let good = with(leaf_block(&[extent(0, 1024, 500)], seed));
        assert_eq!(first_block(&good, &fs, &root, true, 1024), Ok(500));
        let mut damaged = good.clone();
        damaged[40 * 1024 + 20] ^= 1;
        assert!(first_block(&damaged, &fs, &root, true, 1024).is_err());
        let empty = with(leaf_block(&[], seed));
        assert!(first_block(&empty, &fs, &root, true, 0).is_err());
    }
}
