//! Whether `e2fsck -p` would call an ext2/3/4 filesystem clean and leave it untouched, read
//! from the disk without running it.
//!
//! Debian's systemd skips `systemd-fsck-root.service` when `/run/initramfs/fsck-root`
//! exists: initramfs-tools writes it after its own fsck of the root returned 0 or 1. Under an
//! emulated CPU that unit is 1.4-2.6 s on systemd's critical chain. baton runs no e2fsck;
//! instead it may write the stamp when the filesystem is one that e2fsck's preen mode would
//! only look at: every condition below is one under which e2fsprogs 1.47 (`e2fsck/unix.c`
//! `check_if_skip`, `e2fsck/super.c` `check_super_block` and `check_backup_super_block`,
//! `e2fsck/journal.c`) would print "clean" and exit 0 without writing. Anything else, and
//! anything this code does not read (quotas, bigalloc, meta_bg, MMP, an external journal, a
//! check interval), is an answer of "no": systemd then runs e2fsck as it would without baton.
//! A wrong "no" costs seconds; a wrong "yes" skips a check, so every doubt is a "no".
//!
//! The kernel's read-only mount checks some of this too, but not all: it accepts a group
//! descriptor whose checksum is wrong, and never looks at the error state, the mount count,
//! the backup superblock or the journal's error field. Everything is read here.

use super::crc::{crc16, crc32c};
use super::device::ReadAt;
use super::fields::{le16, le32};

const SUPERBLOCK: u64 = 1024;
const SUPERBLOCK_LEN: usize = 1024;
const MAGIC: u16 = 0xEF53;
/// At most this many block groups (a 16 TiB filesystem of 4 KiB blocks), and this many
/// bytes of their descriptors, are read: past either, the answer is "no".
const MAX_GROUPS: u64 = 1 << 17;
const MAX_TABLE_BYTES: usize = 8 << 20;

// The features e2fsprogs 1.47 knows (lib/ext2fs/ext2fs.h, EXT2_LIB_FEATURE_*_SUPP); it
// refuses a filesystem with any other bit.
const COMPAT_KNOWN: u32 = 0x1E3F;
const INCOMPAT_KNOWN: u32 = 0x3E7DE;
const RO_COMPAT_KNOWN: u32 = 0x1F77B;

const COMPAT_DIR_INDEX: u32 = 0x20;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_FLEX_BG: u32 = 0x200;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const RO_COMPAT_LARGE_FILE: u32 = 0x2;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
const RO_COMPAT_DIR_NLINK: u32 = 0x20;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const RO_COMPAT_ORPHAN_PRESENT: u32 = 0x10000;

/// Features whose extra checks or writes in e2fsck this code does not follow: with any of
/// them the answer is "no". (sparse_super2 0x200; journal_dev 0x8, meta_bg 0x10, MMP 0x100,
/// casefold 0x20000; quota 0x100, bigalloc 0x200, project 0x2000.)
const COMPAT_NOT_READ: u32 = 0x200;
const INCOMPAT_NOT_READ: u32 = 0x8 | 0x10 | 0x100 | 0x20000;
const RO_COMPAT_NOT_READ: u32 = 0x100 | 0x200 | 0x2000;

const STATE_VALID: u16 = 0x1;
const STATE_ERROR: u16 = 0x2;
const STATE_FC_REPLAY: u16 = 0x20;
const FLAGS_HASH: u32 = 0x1 | 0x2;
const FLAGS_TEST_FS: u32 = 0x4;
const BG_INODE_UNINIT: u16 = 0x1;
const BG_BLOCK_UNINIT: u16 = 0x2;

/// The superblock's fields this decision reads (Documentation/filesystems/ext4/super.rst).
struct Super {
    raw: Vec<u8>,
    inodes: u32,
    blocks: u64,
    reserved: u64,
    free_blocks: u64,
    free_inodes: u32,
    first_data_block: u32,
    log_block_size: u32,
    blocks_per_group: u32,
    inodes_per_group: u32,
    inode_size: u32,
    desc_size: u32,
    compat: u32,
    incompat: u32,
    ro_compat: u32,
}

impl Super {
    fn read(dev: &dyn ReadAt) -> Result<Super, String> {
        let raw = dev
            .read_at(SUPERBLOCK, SUPERBLOCK_LEN)
            .ok_or("cannot read the superblock")?;
        let u16_at = |at| le16(&raw, at).ok_or("short superblock");
        let u32_at = |at| le32(&raw, at).ok_or("short superblock");
        if u16_at(0x38)? != MAGIC {
            return Err("not ext2/3/4".into());
        }
        if u32_at(0x4C)? != 1 {
            return Err("superblock revision is not 1".into());
        }
        let incompat = u32_at(0x60)?;
        let wide = incompat & INCOMPAT_64BIT != 0;
        let with_hi = |lo: u32, hi_at: usize| -> Result<u64, &str> {
            let hi = if wide { u32_at(hi_at)? } else { 0 };
            Ok(u64::from(hi) << 32 | u64::from(lo))
        };
        Ok(Super {
            inodes: u32_at(0x00)?,
            blocks: with_hi(u32_at(0x04)?, 0x150)?,
            reserved: with_hi(u32_at(0x08)?, 0x154)?,
            free_blocks: with_hi(u32_at(0x0C)?, 0x158)?,
            free_inodes: u32_at(0x10)?,
            first_data_block: u32_at(0x14)?,
            log_block_size: u32_at(0x18)?,
            blocks_per_group: u32_at(0x20)?,
            inodes_per_group: u32_at(0x28)?,
            inode_size: u32::from(u16_at(0x58)?),
            desc_size: if wide { u32::from(u16_at(0xFE)?) } else { 32 },
            compat: u32_at(0x5C)?,
            incompat,
            ro_compat: u32_at(0x64)?,
            raw,
        })
    }

    fn u16_at(&self, at: usize) -> Result<u16, String> {
        le16(&self.raw, at).ok_or_else(|| "short superblock".into())
    }

    fn u32_at(&self, at: usize) -> Result<u32, String> {
        le32(&self.raw, at).ok_or_else(|| "short superblock".into())
    }

    fn block_size(&self) -> u64 {
        1024u64 << self.log_block_size.min(6)
    }

    fn has_checksums(&self) -> bool {
        self.ro_compat & (RO_COMPAT_METADATA_CSUM | RO_COMPAT_GDT_CSUM) != 0
    }

    /// Block groups: the blocks after the first data block, a group's worth at a time.
    fn groups(&self) -> u64 {
        let per = u64::from(self.blocks_per_group.max(1));
        self.blocks
            .saturating_sub(u64::from(self.first_data_block))
            .div_ceil(per)
    }

    /// Blocks each group's inode table takes.
    fn inode_table_blocks(&self) -> u64 {
        (u64::from(self.inodes_per_group) * u64::from(self.inode_size)).div_ceil(self.block_size())
    }
}

/// `Ok` when `e2fsck -p`, run as systemd-fsck-root runs it on the root the kernel has
/// mounted read-only, would find the filesystem on `dev` clean and change nothing but the
/// time and count of its writes; else the first reason it would not (or that this code
/// cannot tell), for the log. Read before a mount the answer is not e2fsck's: the kernel's
/// mount rewrites the free counts e2fsck would otherwise correct, and e2fsck checks the
/// journal's inode only on an unmounted device. A check interval is always a "no": whether
/// it has passed depends on a clock that early boot cannot vouch for.
pub fn preen_would_pass(dev: &dyn ReadAt) -> Result<(), String> {
    let sb = Super::read(dev)?;
    features(&sb)?;
    superblock_checksum(&sb)?;
    geometry(&sb, dev.size())?;
    state(&sb)?;
    let (free_blocks, free_inodes) = descriptors(dev, &sb)?;
    if sb.free_blocks > sb.blocks || u64::from(sb.free_inodes) > u64::from(sb.inodes) {
        return Err("free counts exceed the totals".into());
    }
    if free_blocks > sb.blocks || free_inodes > u64::from(sb.inodes) {
        return Err("the groups' free counts exceed the totals".into());
    }
    // check_if_skip copies the groups' sums into the superblock when they differ, a write
    // e2fsck calls cosmetic; it is a write all the same, and after it the next boot's
    // answer is yes.
    if (free_blocks, free_inodes) != (sb.free_blocks, u64::from(sb.free_inodes)) {
        return Err("its free counts differ from its groups' (e2fsck would write them)".into());
    }
    backup_superblock(dev, &sb)?;
    super::ext_journal::journal(dev, &sb.raw, sb.block_size(), first_inode_table(dev, &sb)?)
}

fn features(sb: &Super) -> Result<(), String> {
    if sb.compat & !COMPAT_KNOWN != 0
        || sb.incompat & !INCOMPAT_KNOWN != 0
        || sb.ro_compat & !RO_COMPAT_KNOWN != 0
    {
        return Err("features e2fsck does not know".into());
    }
    if sb.compat & COMPAT_NOT_READ != 0
        || sb.incompat & INCOMPAT_NOT_READ != 0
        || sb.ro_compat & RO_COMPAT_NOT_READ != 0
    {
        return Err("features this check does not read (quota, bigalloc, meta_bg, MMP, casefold, sparse_super2, project, an external journal)".into());
    }
    let metadata_csum = sb.ro_compat & RO_COMPAT_METADATA_CSUM != 0;
    if metadata_csum && sb.ro_compat & RO_COMPAT_GDT_CSUM != 0
        || !metadata_csum && sb.incompat & INCOMPAT_CSUM_SEED != 0
        || sb.incompat & INCOMPAT_64BIT != 0 && sb.incompat & INCOMPAT_EXTENTS == 0
    {
        return Err("contradictory features".into());
    }
    // e2fsck clears filetype on a Hurd filesystem; only Linux's are read here.
    if sb.u32_at(0x48)? != 0 {
        return Err("not made by Linux".into());
    }
    Ok(())
}

fn superblock_checksum(sb: &Super) -> Result<(), String> {
    if sb.ro_compat & RO_COMPAT_METADATA_CSUM == 0 {
        return Ok(());
    }
    let kind = sb.raw.get(0x175).copied().ok_or("short superblock")?;
    let covered = sb.raw.get(..0x3FC).ok_or("short superblock")?;
    if kind != 1 || crc32c(!0, covered) != sb.u32_at(0x3FC)? {
        return Err("the superblock's checksum does not match".into());
    }
    Ok(())
}

/// The sizes and counts e2fsck's `check_super_block` checks first (its `check_super_value`
/// rows and the device size).
fn geometry(sb: &Super, device_bytes: Option<u64>) -> Result<(), String> {
    let bad = |what: &str| Err(format!("implausible {what}"));
    let bs = sb.block_size();
    if sb.log_block_size > 6 || sb.u32_at(0x1C)? != sb.log_block_size {
        return bad("block or cluster size");
    }
    if sb.first_data_block != u32::from(bs == 1024) || sb.blocks <= u64::from(sb.first_data_block) {
        return bad("first data block");
    }
    let bpg = u64::from(sb.blocks_per_group);
    // EXT2_MAX_BLOCKS_PER_GROUP caps it below the bitmap's 8 * bs for blocks of 8 KB up.
    if !(8..=(8 * bs).min(65528)).contains(&bpg) || sb.u32_at(0x24)? != sb.blocks_per_group {
        return bad("blocks per group");
    }
    let isize = u64::from(sb.inode_size);
    if !isize.is_power_of_two() || !(128..=bs).contains(&isize) {
        return bad("inode size");
    }
    let per_block = bs / isize;
    let ipg_max = (per_block * bpg.saturating_sub(4)).min((1 << 16) - per_block);
    let ipg = u64::from(sb.inodes_per_group);
    // At least 8: the journal's inode (8) is then in group 0, where it is read.
    if !(per_block.max(8)..=ipg_max).contains(&ipg) {
        return bad("inodes per group");
    }
    let groups = sb.groups();
    if groups == 0 || groups > MAX_GROUPS {
        return bad("group count");
    }
    if groups * ipg != u64::from(sb.inodes) {
        return bad("inode count");
    }
    // The primary is group 0's copy; every superblock e2fsck writes says so.
    if sb.u16_at(0x5A)? != 0 {
        return bad("the group the superblock belongs to");
    }
    let first_ino = u64::from(sb.u32_at(0x54)?);
    if !(11..=u64::from(sb.inodes)).contains(&first_ino) {
        return bad("first inode");
    }
    if sb.reserved > sb.blocks / 2 || u64::from(sb.u16_at(0xCE)?) > bs / 4 {
        return bad("reserved blocks");
    }
    // s_desc_size is checked even without 64bit (0 allowed); with it, 64 at least.
    let stored = sb.u16_at(0xFE)?;
    if stored != 0 && (!stored.is_power_of_two() || stored > 1024)
        || sb.incompat & INCOMPAT_64BIT != 0 && !(64..=1024).contains(&sb.desc_size)
    {
        return bad("descriptor size");
    }
    let per_flex = sb.raw.get(0x174).copied().ok_or("short superblock")?;
    // ext2fs_open refuses it whatever the features (the kernel reads it only with flex_bg).
    if per_flex > 31 {
        return bad("flex group size");
    }
    if isize > 128 {
        for at in [0x15C, 0x15E] {
            let extra = u64::from(sb.u16_at(at)?);
            if extra != 0 && (extra < 4 || extra > isize - 128 || extra % 4 != 0) {
                return bad("extra inode size");
            }
        }
    }
    match device_bytes {
        Some(bytes) if bytes / bs >= sb.blocks => Ok(()),
        Some(_) => Err("the filesystem is larger than its device".into()),
        None => Err("the device's size is unknown".into()),
    }
}

/// What `check_if_skip` and the orphan and flag checks before it look at.
fn state(sb: &Super) -> Result<(), String> {
    let st = sb.u16_at(0x3A)?;
    if st & STATE_ERROR != 0 || sb.u32_at(0x194)? != 0 {
        return Err("it has recorded errors".into());
    }
    if st & STATE_VALID == 0 || st & STATE_FC_REPLAY != 0 {
        return Err("it was not cleanly unmounted".into());
    }
    if sb.incompat & INCOMPAT_RECOVER != 0 {
        return Err("its journal needs recovery".into());
    }
    if sb.u32_at(0xE8)? != 0 || sb.ro_compat & RO_COMPAT_ORPHAN_PRESENT != 0 {
        return Err("it has orphan inodes to release".into());
    }
    let mounts = sb.u16_at(0x34)?;
    let max = sb.u16_at(0x36)? as i16;
    if max > 0 && i32::from(mounts) >= i32::from(max) {
        return Err(format!(
            "it has been mounted {mounts} times (a check every {max})"
        ));
    }
    if sb.u32_at(0x44)? != 0 {
        return Err("it has a check interval (this check does not trust the clock)".into());
    }
    let flags = sb.u32_at(0x160)?;
    if flags & FLAGS_TEST_FS != 0 {
        return Err("it is marked a test filesystem".into());
    }
    if sb.compat & COMPAT_DIR_INDEX != 0 && flags & FLAGS_HASH == 0 {
        return Err("its directory hash hint is unset".into());
    }
    if sb
        .raw
        .get(0x68..0x78)
        .map_or(true, |uuid| uuid.iter().all(|&b| b == 0))
    {
        return Err("it has no UUID".into());
    }
    for at in [0x240, 0x244, 0x26C] {
        let inum = sb.u32_at(at)?;
        if inum != 0 && (matches!(inum, 1 | 2 | 5..=10) || inum > sb.inodes) {
            return Err("a quota inode field is out of place".into());
        }
    }
    Ok(())
}

/// Every group descriptor as `check_super_block` checks it; returns the free blocks and
/// inodes they count.
fn descriptors(dev: &dyn ReadAt, sb: &Super) -> Result<(u64, u64), String> {
    let bs = sb.block_size();
    let desc = usize::try_from(sb.desc_size).map_err(|_| "descriptor size")?;
    let groups = sb.groups();
    let len = usize::try_from(groups)
        .ok()
        .and_then(|g| g.checked_mul(desc))
        .filter(|&len| len <= MAX_TABLE_BYTES)
        .ok_or("too many groups")?;
    let table = dev
        .read_at((u64::from(sb.first_data_block) + 1) * bs, len)
        .ok_or("cannot read the group descriptors")?;
    let seed = checksum_seed(sb)?;
    let (mut free_blocks, mut free_inodes) = (0u64, 0u64);
    for (group, bytes) in (0..groups).zip(table.chunks_exact(desc)) {
        let d = Descriptor::parse(bytes, sb.incompat & INCOMPAT_64BIT != 0)?;
        d.check(sb, group, bytes, seed)?;
        free_blocks += d.free_blocks;
        free_inodes += d.free_inodes;
    }
    Ok((free_blocks, free_inodes))
}

/// What the descriptor checksums start from: with metadata_csum, the superblock's seed
/// field or a CRC of the UUID.
fn checksum_seed(sb: &Super) -> Result<u32, String> {
    if sb.incompat & INCOMPAT_CSUM_SEED != 0 {
        return sb.u32_at(0x270);
    }
    let uuid = sb.raw.get(0x68..0x78).ok_or("short superblock")?;
    Ok(crc32c(!0, uuid))
}

/// One group descriptor (struct ext4_group_desc).
struct Descriptor {
    block_bitmap: u64,
    inode_bitmap: u64,
    inode_table: u64,
    free_blocks: u64,
    free_inodes: u64,
    used_dirs: u64,
    flags: u16,
    itable_unused: u64,
    checksum: u16,
}

impl Descriptor {
    fn parse(b: &[u8], wide: bool) -> Result<Descriptor, String> {
        let lo32 = |at| le32(b, at).map(u64::from).ok_or("short descriptor");
        let lo16 = |at| le16(b, at).map(u64::from).ok_or("short descriptor");
        let hi32 = |at| if wide { lo32(at) } else { Ok(0) };
        let hi16 = |at| if wide { lo16(at) } else { Ok(0) };
        Ok(Descriptor {
            block_bitmap: hi32(0x20)? << 32 | lo32(0x00)?,
            inode_bitmap: hi32(0x24)? << 32 | lo32(0x04)?,
            inode_table: hi32(0x28)? << 32 | lo32(0x08)?,
            free_blocks: hi16(0x2C)? << 16 | lo16(0x0C)?,
            free_inodes: hi16(0x2E)? << 16 | lo16(0x0E)?,
            used_dirs: hi16(0x30)? << 16 | lo16(0x10)?,
            flags: le16(b, 0x12).ok_or("short descriptor")?,
            itable_unused: hi16(0x32)? << 16 | lo16(0x1C)?,
            checksum: le16(b, 0x1E).ok_or("short descriptor")?,
        })
    }

    fn check(&self, sb: &Super, group: u64, bytes: &[u8], seed: u32) -> Result<(), String> {
        let bad = |what: &str| Err(format!("group {group}: {what}"));
        let bpg = u64::from(sb.blocks_per_group);
        let (first, last) = if sb.incompat & INCOMPAT_FLEX_BG != 0 {
            (u64::from(sb.first_data_block), sb.blocks.saturating_sub(1))
        } else {
            let first = u64::from(sb.first_data_block) + group * bpg;
            (first, (first + bpg - 1).min(sb.blocks.saturating_sub(1)))
        };
        let inside = |block: u64| block != 0 && (first..=last).contains(&block);
        let table_end = self
            .inode_table
            .saturating_add(sb.inode_table_blocks().saturating_sub(1));
        if !inside(self.block_bitmap) || !inside(self.inode_bitmap) {
            return bad("a bitmap outside its group");
        }
        if !inside(self.inode_table) || !inside(table_end) {
            return bad("the inode table outside its group");
        }
        let ipg = u64::from(sb.inodes_per_group);
        if self.free_blocks > bpg || self.free_inodes > ipg || self.used_dirs > ipg {
            return bad("counts larger than the group");
        }
        if sb.has_checksums() {
            if self.itable_unused > self.free_inodes || self.itable_unused > ipg {
                return bad("more unused inodes than free ones");
            }
            if descriptor_checksum(sb, group, bytes, seed)? != self.checksum {
                return bad("its checksum does not match");
            }
        } else if self.flags & (BG_INODE_UNINIT | BG_BLOCK_UNINIT) != 0 || self.itable_unused != 0 {
            return bad("uninitialised-group marks without checksums");
        }
        if group + 1 == sb.groups() && self.flags & BG_BLOCK_UNINIT != 0 {
            return bad("the last group marked uninitialised");
        }
        Ok(())
    }
}

/// `ext4_group_desc_csum`: the descriptor with its checksum field taken as zero.
fn descriptor_checksum(sb: &Super, group: u64, bytes: &[u8], seed: u32) -> Result<u16, String> {
    let number = u32::try_from(group)
        .map_err(|_| "group number")?
        .to_le_bytes();
    let head = bytes.get(..0x1E).ok_or("short descriptor")?;
    let tail = bytes.get(0x20..).unwrap_or_default();
    if sb.ro_compat & RO_COMPAT_METADATA_CSUM != 0 {
        let crc = crc32c(seed, &number);
        let crc = crc32c(crc32c(crc, head), &[0, 0]);
        return Ok(crc32c(crc, tail) as u16);
    }
    let uuid = sb.raw.get(0x68..0x78).ok_or("short superblock")?;
    let crc = crc16(crc16(crc16(!0, uuid), &number), head);
    Ok(if sb.incompat & INCOMPAT_64BIT != 0 {
        crc16(crc, tail)
    } else {
        crc
    })
}

/// `check_backup_super_block`: the first backup (group 1, with or without sparse_super)
/// agrees with the primary on what it compares.
fn backup_superblock(dev: &dyn ReadAt, sb: &Super) -> Result<(), String> {
    if sb.groups() < 2 {
        return Ok(());
    }
    // Group 1 holds a backup with sparse_super or without (sparse_super2 is refused).
    let at = (u64::from(sb.first_data_block) + u64::from(sb.blocks_per_group)) * sb.block_size();
    let backup = dev
        .read_at(at, SUPERBLOCK_LEN)
        .ok_or("cannot read the backup superblock")?;
    let field = |b: &[u8], at: usize| le32(b, at).ok_or("short backup superblock");
    // e2fsck passes over a copy that does not look like a superblock to the next backup;
    // only group 1's is read here, so such a copy is a "no".
    let plausible = le16(&backup, 0x38) == Some(MAGIC)
        && field(&backup, 0x4C)? <= 1
        && field(&backup, 0x18)? <= 6
        && (field(&backup, 0x4C)? == 0 || le16(&backup, 0x58).is_some_and(|i| i >= 128));
    if !plausible {
        return Err("the backup superblock in group 1 does not look like one".into());
    }
    let masked = [
        (0x5C, 0),
        (0x60, INCOMPAT_EXTENTS | INCOMPAT_RECOVER),
        (0x64, RO_COMPAT_LARGE_FILE | RO_COMPAT_DIR_NLINK),
        (0x04, 0),
        (0x150, 0),
        (0x00, 0),
    ];
    for (at, ignored) in masked {
        if (field(&sb.raw, at)? ^ field(&backup, at)?) & !ignored != 0 {
            return Err("the primary superblock differs from its backup".into());
        }
    }
    if sb.raw.get(0x68..0x78) != backup.get(0x68..0x78) {
        return Err("the primary superblock's UUID differs from its backup's".into());
    }
    Ok(())
}

/// Where group 0's inode table starts, in blocks (the journal's inode is there).
fn first_inode_table(dev: &dyn ReadAt, sb: &Super) -> Result<u64, String> {
    let bytes = dev
        .read_at(
            (u64::from(sb.first_data_block) + 1) * sb.block_size(),
            usize::try_from(sb.desc_size).map_err(|_| "descriptor size")?,
        )
        .ok_or("cannot read the group descriptors")?;
    Ok(Descriptor::parse(&bytes, sb.incompat & INCOMPAT_64BIT != 0)?.inode_table)
}
