//! The block devices the kernel has now, each probed once into a [`Record`]: "scan once,
//! then filter". Names, numbers and the partition-to-disk relation come from sysfs
//! (/sys/class/block); contents come from reading the device node devtmpfs made.

use crate::init::probing::Probes;
use crate::probe::partitions::{self, Table};
use crate::probe::{probe_filesystem, ReadAt};
use crate::rootspec::{is_kernel_name, Record};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;
use std::time::Instant;

/// Bytes read at once from the start of a device: the partition tables (GPT's header and
/// its usual 16 KiB of entries) and most superblocks are inside, so most probes cost one
/// read; btrfs (at 64 KiB) and a FAT root directory cost one more.
const HEAD: usize = 20 * 1024;
/// A bound on the block devices listed at once: far above any machine's disks and
/// partitions.
const MAX_BLOCK_DEVICES: usize = 1 << 16;

/// Bytes read at once from the end of a device, at the first look there: every probe of a
/// device that is not an MD member with its superblock at the start looks at the end three
/// times (MD 1.0's superblock 8 KiB before it, 0.90's in the last 64 KiB-aligned 64 KiB,
/// firmware RAID's last two sectors), all within the last 128 KiB: one read instead of
/// three (each a request to the disk, a millisecond or two under an emulated CPU).
const TAIL: u64 = 128 * 1024;

/// A device with its first bytes cached, and its last ones once asked for.
struct Head {
    file: File,
    head: Vec<u8>,
    size: u64,
    /// The last [`TAIL`] bytes (or the whole device when smaller); `None` inside when they
    /// could not be read, and then each read goes to the device.
    tail: std::cell::OnceCell<Option<Vec<u8>>>,
}

impl ReadAt for Head {
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let end = offset.checked_add(len as u64)?;
        if end <= self.head.len() as u64 {
            return self.head.read_at(offset, len);
        }
        let tail_start = self.size.saturating_sub(TAIL);
        if offset >= tail_start && end <= self.size {
            let tail = self.tail.get_or_init(|| {
                let tail_len = usize::try_from(self.size - tail_start).ok()?;
                self.file.read_at(tail_start, tail_len)
            });
            if let Some(tail) = tail {
                return tail.read_at(offset - tail_start, len);
            }
        }
        self.file.read_at(offset, len)
    }

    fn size(&self) -> Option<u64> {
        Some(self.size)
    }
}

/// Why a device could not be probed.
enum Unprobed {
    /// The node cannot be opened (yet: devtmpfs adds it just after sysfs): look again.
    NotYet,
    /// It opens but its start cannot be read (a failing disk): not worth reading again.
    Unreadable,
}

fn open(name: &str, size: u64) -> Result<Head, Unprobed> {
    let file = File::open(format!("/dev/{name}")).map_err(|_| Unprobed::NotYet)?;
    read_head(file, size).ok_or(Unprobed::Unreadable)
}

/// The device's first bytes (up to [`HEAD`], at most `size`), read once.
fn read_head(file: File, size: u64) -> Option<Head> {
    let head_len = usize::try_from(size.min(HEAD as u64)).ok()?;
    let head = file.read_at(0, head_len)?;
    Some(Head {
        file,
        head,
        size,
        tail: std::cell::OnceCell::new(),
    })
}

/// `/dev/NAME` probed for a filesystem straight from its node, without sysfs: for
/// `root=/dev/NAME`, the usual form for a VM, where the kernel name is all that is asked
/// for. The node gives the numbers (`st_rdev`) and the size; the kernel's own
/// `root=/dev/NAME` mounts what is there just as directly. Worth it because every kernel
/// path run for the first time costs its translation under an emulated CPU, and the sysfs
/// reads (the device's uevent, its size) are such paths, while this read is the one the
/// probe makes anyway. Not a partition's PARTUUID: the name matches on its own. `None`
/// when the node is not there yet, is not a block device, or holds nothing recognised
/// (a whole disk with a partition table, say): then the full look decides.
pub fn probe_node(name: &str) -> Option<Record> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !is_kernel_name(name) {
        return None;
    }
    let mut file = File::open(format!("/dev/{name}")).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    let size = file.seek(SeekFrom::End(0)).ok()?;
    // An empty device (a drive without its medium) has nothing to probe yet.
    if size == 0 {
        return None;
    }
    let fs = probe_filesystem(&read_head(file, size)?)?;
    let rdev = meta.rdev();
    Some(Record {
        name: name.to_owned(),
        major: libc::major(rdev),
        minor: libc::minor(rdev),
        disk: None,
        partition: None,
        fs: Some(fs),
        has_table: false,
        partuuid: None,
        partlabel: None,
    })
}

/// Everything probed so far; probing is done once per device, on a thread of its own (see
/// baton::init::probing), and waited for only as long as the caller's patience.
#[derive(Default)]
pub struct Registry {
    records: BTreeMap<String, Record>,
    tables: BTreeMap<String, Option<Table>>,
    /// Devices whose node could not be opened yet (said once).
    unreadable: BTreeSet<String>,
    probes: Probes<Probed>,
    /// Devices whose probe outlasted the patience (said once); their answer is taken
    /// whenever it comes, but no longer waited for.
    slow: BTreeSet<String>,
}

/// What one probe found.
struct Probed {
    /// `None` when the node cannot be opened (yet).
    record: Option<Record>,
    /// Partition tables read on the way: a whole disk's own, or a partition's disk's.
    tables: Vec<(String, Option<Table>)>,
}

#[derive(Clone)]
struct SysBlock {
    name: String,
    major: u32,
    minor: u32,
    partition: Option<u32>,
    disk: Option<String>,
    size_bytes: u64,
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// What sysfs says about one block device, in as few reads as possible (each costs several
/// syscalls, and a boot under emulation feels every one): the `uevent` file has the numbers
/// and the partition number, `size` tells an empty drive, and for a partition the sysfs link
/// itself names the disk (`.../block/vda/vda2`).
fn sys_block(name: &str) -> Option<SysBlock> {
    let dir = Path::new("/sys/class/block").join(name);
    let uevent = std::fs::read_to_string(dir.join("uevent")).ok()?;
    let field = |key: &str| {
        uevent
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    let partition = field("PARTN").and_then(|p| p.parse().ok());
    let disk = partition.and_then(|_| {
        let link = std::fs::read_link(&dir).ok()?;
        Some(link.parent()?.file_name()?.to_str()?.to_owned())
    });
    let size_bytes = read_trimmed(&dir.join("size"))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        .saturating_mul(512);
    Some(SysBlock {
        name: name.to_owned(),
        major: field("MAJOR")?.parse().ok()?,
        minor: field("MINOR")?.parse().ok()?,
        partition,
        disk,
        size_bytes,
    })
}

/// A disk's logical sector size, where its partition table's LBAs count from.
fn sector_size(disk: &str) -> u64 {
    read_trimmed(
        &Path::new("/sys/class/block")
            .join(disk)
            .join("queue/logical_block_size"),
    )
    .and_then(|s| s.parse().ok())
    .unwrap_or(512)
}

impl Registry {
    pub fn records(&self) -> Vec<Record> {
        self.records.values().cloned().collect()
    }

    /// Devices whose probe has not answered, for messages.
    pub fn not_answering(&self) -> Vec<String> {
        self.probes
            .running()
            .filter(|key| self.slow.contains(*key))
            .map(str::to_owned)
            .collect()
    }

    /// Lists /sys/class/block and probes what is new, waiting for the probes until
    /// `patience` at most.
    pub fn refresh(&mut self, patience: Instant) {
        let names: Vec<String> =
            crate::init::dirents::read_path("/sys/class/block", MAX_BLOCK_DEVICES)
                .map(|entries| {
                    entries
                        .into_iter()
                        .filter_map(|e| String::from_utf8(e.name).ok())
                        .collect()
                })
                .unwrap_or_default();
        let blocks: Vec<SysBlock> = names.iter().filter_map(|n| self.new_block(n)).collect();
        // Disks before their partitions, so a partition finds its disk's table.
        let (partitions, disks): (Vec<SysBlock>, Vec<SysBlock>) =
            blocks.into_iter().partition(|b| b.partition.is_some());
        for group in [disks, partitions] {
            for block in group {
                self.start(block);
            }
            self.collect(patience);
        }
    }

    /// Probes the block device the kernel calls `name`, if it is there and new, waiting as
    /// [`Registry::refresh`] does. Cheaper than a refresh when the name is known
    /// (`root=/dev/vda`): listing /sys/class/block costs more than the probe under an
    /// emulated CPU.
    pub fn look_at(&mut self, name: &str, patience: Instant) {
        if let Some(block) = self.new_block(name) {
            self.start(block);
        }
        self.collect(patience);
    }

    /// What sysfs says of `name` when it is a device to probe: a kernel name, not probed
    /// or being probed already, and not empty.
    fn new_block(&self, name: &str) -> Option<SysBlock> {
        // A name from the command line must stay a name in /sys/class/block.
        if !is_kernel_name(name) || self.records.contains_key(name) || self.probes.is_running(name)
        {
            return None;
        }
        // Empty devices (an idle loop device, a drive without a medium) have nothing to
        // probe yet; look again next time.
        sys_block(name).filter(|b| b.size_bytes != 0)
    }

    fn start(&mut self, block: SysBlock) {
        let disk_table = block
            .disk
            .as_ref()
            .and_then(|d| self.tables.get(d).cloned());
        let name = block.name.clone();
        let on_thread = (block.clone(), disk_table.clone());
        if !self
            .probes
            .start(&name, move || probe_block(&on_thread.0, on_thread.1))
        {
            let probed = probe_block(&block, disk_table);
            self.take(name, probed);
        }
    }

    /// Takes the answers: waits for the probes of devices not found slow before until
    /// `patience`, and takes those of the slow ones only if they are there.
    fn collect(&mut self, patience: Instant) {
        for _ in 0..MAX_BLOCK_DEVICES {
            let waiting = self.probes.running().any(|key| !self.slow.contains(key));
            let until = if waiting { patience } else { Instant::now() };
            let Some((name, probed)) = self.probes.next_until(until) else {
                break;
            };
            self.take(name, probed);
        }
        let late: Vec<String> = self
            .probes
            .running()
            .filter(|key| !self.slow.contains(*key))
            .map(str::to_owned)
            .collect();
        for key in late {
            log::warn!(
                "/dev/{key} has not answered its probe; going on without it (a failing disk?)"
            );
            self.slow.insert(key);
        }
    }

    /// Keeps what a probe found.
    fn take(&mut self, name: String, probed: Probed) {
        if self.slow.remove(&name) {
            log::info!("/dev/{name} answered its probe at last");
        }
        for (disk, table) in probed.tables {
            self.tables.insert(disk, table);
        }
        let Some(record) = probed.record else {
            // The kernel adds the sysfs entry before devtmpfs has the node: a device that
            // cannot be opened yet is looked at again next time, not remembered as empty.
            if self.unreadable.insert(name.clone()) {
                log::info!("cannot open /dev/{name} yet; will look again");
            }
            return;
        };
        log::info!("found {}", record.describe());
        self.records.insert(name, record);
    }
}

/// Probes one device, on a probe thread: its partition table or filesystem, and for a
/// partition its disk's table when `disk_table` does not have it yet.
fn probe_block(block: &SysBlock, disk_table: Option<Option<Table>>) -> Probed {
    let mut probed = Probed {
        record: None,
        tables: Vec::new(),
    };
    let mut record = Record {
        name: block.name.clone(),
        major: block.major,
        minor: block.minor,
        disk: block.disk.clone(),
        partition: block.partition,
        fs: None,
        has_table: false,
        partuuid: None,
        partlabel: None,
    };
    let dev = match open(&block.name, block.size_bytes) {
        Ok(dev) => dev,
        Err(Unprobed::NotYet) => return probed,
        Err(Unprobed::Unreadable) => {
            log::warn!("cannot read /dev/{}", block.name);
            probed.record = Some(record);
            return probed;
        }
    };
    match (&block.disk, block.partition) {
        (Some(disk), Some(number)) => {
            let table = match disk_table {
                Some(table) => table,
                None => {
                    let size = sys_block(disk).map(|b| b.size_bytes).unwrap_or(0);
                    match open(disk, size) {
                        Ok(dev) => {
                            let table = partitions::probe(&dev, sector_size(disk));
                            probed.tables.push((disk.clone(), table.clone()));
                            table
                        }
                        // Not remembered when the disk cannot be opened yet: next time,
                        // it may.
                        Err(Unprobed::NotYet) => None,
                        Err(Unprobed::Unreadable) => {
                            probed.tables.push((disk.clone(), None));
                            None
                        }
                    }
                }
            };
            if let Some(part) = table
                .as_ref()
                .and_then(|t| t.partitions.iter().find(|p| p.number == number))
            {
                record.partuuid = Some(part.partuuid.clone());
                record.partlabel = part.partlabel.clone();
            }
            record.fs = probe_filesystem(&dev);
        }
        _ => {
            let table = partitions::probe(&dev, sector_size(&block.name));
            record.has_table = table.is_some();
            probed.tables.push((block.name.clone(), table));
            if !record.has_table {
                record.fs = probe_filesystem(&dev);
            }
        }
    }
    probed.record = Some(record);
    probed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `len` bytes, each its offset's low byte mixed with its 4 KiB page number.
    fn device(len: usize) -> (File, Vec<u8>) {
        let bytes: Vec<u8> = (0..len).map(|i| (i ^ (i >> 12)) as u8).collect();
        let path = std::env::temp_dir().join(format!("baton-head-{}-{len}", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        (file, bytes)
    }

    #[test]
    fn cached_start_and_end_read_as_the_device_does() {
        for len in [1000, HEAD + 10, 100 * 1024, 300 * 1024 + 7] {
            let (file, bytes) = device(len);
            let dev = read_head(file, len as u64).unwrap();
            let size = len as u64;
            let mut offsets = vec![0, 512, HEAD as u64 - 4, size.saturating_sub(TAIL)];
            offsets.extend([
                size - 1,
                size.saturating_sub(1024),
                size.saturating_sub(8192),
            ]);
            offsets.extend([size.saturating_sub(TAIL + 100), size / 2]);
            for offset in offsets {
                for want in [1usize, 256, 4096, 70_000] {
                    let expected = usize::try_from(offset)
                        .ok()
                        .and_then(|o| bytes.get(o..o.checked_add(want)?))
                        .map(<[u8]>::to_vec);
                    assert_eq!(
                        dev.read_at(offset, want),
                        expected,
                        "{len}: {want} at {offset}"
                    );
                }
            }
            assert_eq!(dev.read_at(u64::MAX, 2), None);
        }
    }
}
