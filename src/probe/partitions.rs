//! Partition tables: GPT (UEFI spec, chapter 5 "GUID Partition Table Disk Layout") and MBR
//! with extended partitions. Each partition gets the number the kernel gives it (GPT: its
//! entry index + 1; MBR: 1-4 primary, 5 and up for logical partitions in chain order) and the
//! PARTUUID the kernel and blkid report: the GPT unique partition GUID, or for MBR the disk
//! signature and number as `SSSSSSSS-PP`.

use super::crc::crc32;
use super::device::ReadAt;
use super::fields::{guid_string, le32, le64, utf16_label};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableKind {
    Gpt,
    Mbr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    /// First sector and length, in the table's sectors.
    pub start: u64,
    pub sectors: u64,
    pub partuuid: String,
    pub partlabel: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub kind: TableKind,
    /// GPT disk GUID, or the MBR disk signature as 8 hex digits.
    pub id: String,
    pub partitions: Vec<Partition>,
}

const MBR_SIGNATURE_AT: usize = 510;
const MBR_DISK_SIGNATURE: usize = 440;
const MBR_ENTRIES: usize = 446;
const MBR_ENTRY_LEN: usize = 16;
const MBR_TYPE_PROTECTIVE: u8 = 0xEE;
const MBR_EXTENDED: [u8; 3] = [0x05, 0x0F, 0x85];
/// Extended boot records read at most. Logical partitions are chained, and a chain from a
/// hostile disk may loop, or run through empty records: the bound counts records read, not
/// partitions found, so the walk ends whatever the chain holds. The kernel stops at its own
/// partition limit too (parse_extended() in block/partitions/msdos.c).
pub const MAX_EBR_RECORDS: usize = 128;

const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
const GPT_HEADER_SIZE: usize = 12;
const GPT_HEADER_CRC: usize = 16;
const GPT_DISK_GUID: usize = 56;
const GPT_ENTRIES_LBA: usize = 72;
const GPT_NUM_ENTRIES: usize = 80;
const GPT_ENTRY_SIZE: usize = 84;
const GPT_ENTRIES_CRC: usize = 88;
const GPT_ENTRY_TYPE: usize = 0;
const GPT_ENTRY_UNIQUE: usize = 16;
const GPT_ENTRY_FIRST_LBA: usize = 32;
const GPT_ENTRY_LAST_LBA: usize = 40;
const GPT_ENTRY_NAME: usize = 56;
const GPT_ENTRY_NAME_LEN: usize = 72;
/// The one entry size the kernel accepts (is_gpt_valid() in block/partitions/efi.c).
const GPT_ENTRY_LEN: usize = 128;
/// The kernel refuses an entry array larger than it can kmalloc (KMALLOC_MAX_SIZE, 4 MiB on
/// x86-64): such a table has no partitions in the kernel, so reading it would be useless as
/// well as a way for a hostile header to make PID 1 read gigabytes.
pub const GPT_MAX_ARRAY_BYTES: u64 = 4 << 20;

/// Reads the partition table, GPT first (its protective MBR would otherwise read as an MBR
/// with one partition). `sector` is the device's logical block size.
pub fn probe(dev: &dyn ReadAt, sector: u64) -> Option<Table> {
    let mbr = dev.read_at(0, 512)?;
    if mbr.get(MBR_SIGNATURE_AT..MBR_SIGNATURE_AT + 2)? != [0x55, 0xAA] {
        // A GPT disk should have a protective MBR, but some tools skip it.
        return gpt(dev, sector);
    }
    let entries = mbr_entries(&mbr)?;
    if entries.iter().any(|e| e.kind == MBR_TYPE_PROTECTIVE) {
        return gpt(dev, sector);
    }
    mbr_table(dev, &mbr, &entries, sector)
}

#[derive(Debug, Clone, Copy)]
struct MbrEntry {
    boot: u8,
    kind: u8,
    start: u64,
    sectors: u64,
}

fn mbr_entries(sector0: &[u8]) -> Option<Vec<MbrEntry>> {
    (0..4)
        .map(|i| {
            let at = MBR_ENTRIES + i * MBR_ENTRY_LEN;
            Some(MbrEntry {
                boot: *sector0.get(at)?,
                kind: *sector0.get(at + 4)?,
                start: u64::from(le32(sector0, at + 8)?),
                sectors: u64::from(le32(sector0, at + 12)?),
            })
        })
        .collect()
}

fn mbr_table(dev: &dyn ReadAt, sector0: &[u8], entries: &[MbrEntry], sector: u64) -> Option<Table> {
    // A FAT or NTFS boot sector also ends in 55 AA: demand a sane table (boot flags 0 or
    // 0x80, every used entry non-empty) and at least one partition.
    let sane = entries.iter().all(|e| {
        (e.boot == 0 || e.boot == 0x80) && (e.kind == 0 || (e.start > 0 && e.sectors > 0))
    });
    if !sane || entries.iter().all(|e| e.kind == 0) {
        return None;
    }
    let signature = le32(sector0, MBR_DISK_SIGNATURE)?;
    let partuuid = |number: u32| format!("{signature:08x}-{number:02x}");
    let mut partitions = Vec::new();
    let mut extended = None;
    for (number, entry) in (1u32..).zip(entries) {
        if entry.kind == 0 {
            continue;
        }
        if MBR_EXTENDED.contains(&entry.kind) {
            extended = Some(entry.start);
        }
        partitions.push(Partition {
            number,
            start: entry.start,
            sectors: entry.sectors,
            partuuid: partuuid(number),
            partlabel: None,
        });
    }
    // Logical partitions: a chain of extended boot records, each holding one partition
    // (relative to that EBR) and a link (relative to the extended partition's start).
    if let Some(base) = extended {
        let mut ebr = base;
        let mut number = 5u32;
        let mut visited = Vec::new();
        for _ in 0..MAX_EBR_RECORDS {
            if visited.contains(&ebr) {
                break;
            }
            visited.push(ebr);
            let Some(record) = ebr.checked_mul(sector).and_then(|at| dev.read_at(at, 512)) else {
                break;
            };
            if record.get(MBR_SIGNATURE_AT..MBR_SIGNATURE_AT + 2) != Some(&[0x55, 0xAA][..]) {
                break;
            }
            let links = mbr_entries(&record)?;
            let (first, second) = (links.first()?, links.get(1)?);
            if first.kind != 0 && first.sectors > 0 {
                partitions.push(Partition {
                    number,
                    start: ebr.checked_add(first.start)?,
                    sectors: first.sectors,
                    partuuid: partuuid(number),
                    partlabel: None,
                });
                number += 1;
            }
            if second.kind == 0 || second.start == 0 {
                break;
            }
            ebr = base.checked_add(second.start)?;
        }
    }
    Some(Table {
        kind: TableKind::Mbr,
        id: format!("{signature:08x}"),
        partitions,
    })
}

fn gpt(dev: &dyn ReadAt, sector: u64) -> Option<Table> {
    let header = dev.read_at(sector, 512)?;
    if header.get(..8)? != GPT_SIGNATURE {
        return None;
    }
    let header_size = usize::try_from(le32(&header, GPT_HEADER_SIZE)?).ok()?;
    if !(92..=512).contains(&header_size) {
        return None;
    }
    let mut for_crc = header.get(..header_size)?.to_vec();
    for byte in for_crc.get_mut(GPT_HEADER_CRC..GPT_HEADER_CRC + 4)? {
        *byte = 0;
    }
    if crc32(&for_crc) != le32(&header, GPT_HEADER_CRC)? {
        return None;
    }
    let entries_lba = le64(&header, GPT_ENTRIES_LBA)?;
    let count = u64::from(le32(&header, GPT_NUM_ENTRIES)?);
    let entry_size = usize::try_from(le32(&header, GPT_ENTRY_SIZE)?).ok()?;
    if entry_size != GPT_ENTRY_LEN {
        return None;
    }
    let array_len = count.checked_mul(GPT_ENTRY_LEN as u64)?;
    if array_len == 0 || array_len > GPT_MAX_ARRAY_BYTES {
        return None;
    }
    let array = dev.read_at(
        entries_lba.checked_mul(sector)?,
        usize::try_from(array_len).ok()?,
    )?;
    // As the kernel does: entries whose checksum is wrong are not the table it uses.
    if crc32(&array) != le32(&header, GPT_ENTRIES_CRC)? {
        return None;
    }
    // One odd entry (last before first, a zero GUID) is skipped, not the whole table: the
    // kernel creates the other partitions all the same.
    let partitions = (0u32..)
        .zip(array.chunks_exact(entry_size))
        .filter_map(|(index, entry)| gpt_entry(index, entry))
        .collect();
    Some(Table {
        kind: TableKind::Gpt,
        // An all-zero disk GUID is odd but harmless: the partitions are what matter.
        id: guid_string(header.get(GPT_DISK_GUID..GPT_DISK_GUID + 16)?).unwrap_or_default(),
        partitions,
    })
}

/// One GPT entry, if it is used and makes sense.
fn gpt_entry(index: u32, entry: &[u8]) -> Option<Partition> {
    let kind = entry.get(GPT_ENTRY_TYPE..GPT_ENTRY_TYPE + 16)?;
    if kind.iter().all(|&b| b == 0) {
        return None;
    }
    let first = le64(entry, GPT_ENTRY_FIRST_LBA)?;
    let last = le64(entry, GPT_ENTRY_LAST_LBA)?;
    Some(Partition {
        number: index.checked_add(1)?,
        start: first,
        sectors: last.checked_sub(first)?.checked_add(1)?,
        partuuid: guid_string(entry.get(GPT_ENTRY_UNIQUE..GPT_ENTRY_UNIQUE + 16)?)?,
        partlabel: utf16_label(entry.get(GPT_ENTRY_NAME..GPT_ENTRY_NAME + GPT_ENTRY_NAME_LEN)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fat_boot_sector_is_not_an_mbr() {
        // Boot flag bytes of a FAT BPB land in the entries as garbage.
        let mut sector = vec![0u8; 512];
        sector[0] = 0xEB;
        sector[446] = 0x31;
        sector[450] = 0x0B;
        sector[510] = 0x55;
        sector[511] = 0xAA;
        assert_eq!(probe(&sector, 512), None);
    }

    /// A device that counts what is asked of it and refuses to go on for ever: a walk that
    /// does not end fails the test instead of hanging it.
    struct Counted<'a> {
        data: &'a [u8],
        reads: std::cell::Cell<usize>,
        largest: std::cell::Cell<usize>,
    }

    impl<'a> Counted<'a> {
        fn new(data: &'a [u8]) -> Counted<'a> {
            Counted {
                data,
                reads: Default::default(),
                largest: Default::default(),
            }
        }
    }

    impl ReadAt for Counted<'_> {
        fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
            self.reads.set(self.reads.get() + 1);
            self.largest.set(self.largest.get().max(len));
            assert!(self.reads.get() < 10_000, "the probe does not stop reading");
            self.data.read_at(offset, len)
        }

        fn size(&self) -> Option<u64> {
            self.data.size()
        }
    }

    fn put_entry(disk: &mut [u8], lba: usize, slot: usize, kind: u8, start: u32, sectors: u32) {
        let at = lba * 512 + MBR_ENTRIES + slot * MBR_ENTRY_LEN;
        disk[at + 4] = kind;
        disk[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
        disk[at + 12..at + 16].copy_from_slice(&sectors.to_le_bytes());
        disk[lba * 512 + 510] = 0x55;
        disk[lba * 512 + 511] = 0xAA;
    }

    /// An MBR whose extended partition starts at LBA 1, with `records` EBRs at LBA 1, 2, ...:
    /// record i holds a partition when `full(i)` and links to `next(i)` (relative to the
    /// extended partition), or ends the chain when that is `None`.
    fn chained(
        records: usize,
        full: impl Fn(usize) -> bool,
        next: impl Fn(usize) -> Option<u32>,
    ) -> Vec<u8> {
        let mut disk = vec![0u8; (records + 2) * 512];
        disk[MBR_DISK_SIGNATURE..MBR_DISK_SIGNATURE + 4]
            .copy_from_slice(&0x1bad_cafe_u32.to_le_bytes());
        put_entry(&mut disk, 0, 0, 0x05, 1, records as u32 + 1);
        for i in 0..records {
            if full(i) {
                put_entry(&mut disk, 1 + i, 0, 0x83, 1, 1);
            }
            if let Some(link) = next(i) {
                put_entry(&mut disk, 1 + i, 1, 0x05, link, 1);
            }
            disk[(1 + i) * 512 + 510] = 0x55;
            disk[(1 + i) * 512 + 511] = 0xAA;
        }
        disk
    }

    fn logical(table: &Table) -> Vec<u32> {
        table
            .partitions
            .iter()
            .map(|p| p.number)
            .filter(|&n| n >= 5)
            .collect()
    }

    #[test]
    fn a_chain_looping_through_empty_records_ends() {
        // Empty records, the last linking back to the second: the chain never reaches an
        // end, and never adds a partition either.
        let disk = chained(
            3,
            |_| false,
            |i| Some(if i == 2 { 1 } else { i as u32 + 1 }),
        );
        let dev = Counted::new(&disk);
        let table = probe(&dev, 512).unwrap();
        assert!(logical(&table).is_empty());
        assert_eq!(dev.reads.get(), 4, "the MBR and each record once");
    }

    #[test]
    fn a_loop_back_to_a_full_record_is_read_once() {
        let disk = chained(3, |_| true, |i| Some(if i == 2 { 1 } else { i as u32 + 1 }));
        let table = probe(&Counted::new(&disk), 512).unwrap();
        assert_eq!(logical(&table), [5, 6, 7]);
    }

    #[test]
    fn the_chain_bound_counts_records_not_partitions() {
        // Exactly at the bound: every logical partition is found.
        let at = chained(
            MAX_EBR_RECORDS,
            |_| true,
            |i| (i + 1 < MAX_EBR_RECORDS).then_some(i as u32 + 1),
        );
        let table = probe(&Counted::new(&at), 512).unwrap();
        assert_eq!(logical(&table).len(), MAX_EBR_RECORDS);
        // Past it, the walk stops at the bound.
        let past = chained(MAX_EBR_RECORDS + 20, |_| true, |i| Some(i as u32 + 1));
        let table = probe(&Counted::new(&past), 512).unwrap();
        assert_eq!(logical(&table).len(), MAX_EBR_RECORDS);
        // Mostly empty records still count.
        let sparse = chained(
            MAX_EBR_RECORDS + 20,
            |i| i % 10 == 0,
            |i| Some(i as u32 + 1),
        );
        let dev = Counted::new(&sparse);
        let table = probe(&dev, 512).unwrap();
        assert_eq!(logical(&table).len(), MAX_EBR_RECORDS.div_ceil(10));
        assert!(dev.reads.get() <= MAX_EBR_RECORDS + 1);
    }

    /// A GPT disk of `sectors` sectors with `count` entries of which the first is used.
    fn gpt_disk(count: u32, entry_size: u32, array_crc: Option<u32>) -> Vec<u8> {
        let mut disk = vec![0u8; 64 * 512];
        put_entry(&mut disk, 0, 0, MBR_TYPE_PROTECTIVE, 1, 63);
        let entries = 2 * 512;
        disk[entries..entries + 16].copy_from_slice(&[0xAF; 16]);
        disk[entries + 16..entries + 32].copy_from_slice(&[0x11; 16]);
        disk[entries + 32..entries + 40].copy_from_slice(&34u64.to_le_bytes());
        disk[entries + 40..entries + 48].copy_from_slice(&40u64.to_le_bytes());
        let header = 512;
        disk[header..header + 8].copy_from_slice(GPT_SIGNATURE);
        disk[header + 12..header + 16].copy_from_slice(&92u32.to_le_bytes());
        disk[header + 72..header + 80].copy_from_slice(&2u64.to_le_bytes());
        disk[header + 80..header + 84].copy_from_slice(&count.to_le_bytes());
        disk[header + 84..header + 88].copy_from_slice(&entry_size.to_le_bytes());
        let array_len = (u64::from(count) * 128).min(62 * 512) as usize;
        let crc = array_crc.unwrap_or_else(|| crc32(&disk[entries..entries + array_len]));
        disk[header + 88..header + 92].copy_from_slice(&crc.to_le_bytes());
        let header_crc = crc32(&disk[header..header + 92]);
        disk[header + 16..header + 20].copy_from_slice(&header_crc.to_le_bytes());
        disk
    }

    #[test]
    fn gpt_is_read_as_the_kernel_reads_it() {
        let good = probe(&gpt_disk(128, 128, None), 512).unwrap();
        assert_eq!(good.kind, TableKind::Gpt);
        assert_eq!(good.partitions.len(), 1);
        assert_eq!(good.partitions[0].sectors, 7);
        // A wrong entry-array checksum, or an entry size the kernel refuses: no table.
        assert_eq!(probe(&gpt_disk(128, 128, Some(1)), 512), None);
        assert_eq!(probe(&gpt_disk(128, 256, None), 512), None);
    }

    #[test]
    fn one_odd_gpt_entry_does_not_hide_the_others() {
        let mut disk = gpt_disk(128, 128, None);
        // Entry 2: used, but its last LBA is before its first.
        let second = 2 * 512 + 128;
        disk[second..second + 16].copy_from_slice(&[0xAF; 16]);
        disk[second + 16..second + 32].copy_from_slice(&[0x22; 16]);
        disk[second + 32..second + 40].copy_from_slice(&50u64.to_le_bytes());
        disk[second + 40..second + 48].copy_from_slice(&45u64.to_le_bytes());
        // Fix the checksums for the change.
        let crc = crc32(&disk[1024..1024 + 128 * 128]);
        disk[512 + 88..512 + 92].copy_from_slice(&crc.to_le_bytes());
        disk[512 + 16..512 + 20].fill(0);
        let header_crc = crc32(&disk[512..512 + 92]);
        disk[512 + 16..512 + 20].copy_from_slice(&header_crc.to_le_bytes());
        let table = probe(&disk, 512).unwrap();
        assert_eq!(table.partitions.len(), 1);
        assert_eq!(table.partitions[0].number, 1);
    }

    #[test]
    fn a_gpt_header_claiming_billions_of_entries_is_not_read() {
        let disk = gpt_disk(u32::MAX, 128, Some(0));
        let dev = Counted::new(&disk);
        assert_eq!(probe(&dev, 512), None);
        assert!(dev.largest.get() <= 512, "read {} bytes", dev.largest.get());
        // At the bound the array is read (this small disk cannot hold it), one entry more
        // and it is not even asked for.
        let at = (GPT_MAX_ARRAY_BYTES / 128) as u32;
        let dev = Counted::new(&disk);
        let _ = probe(&dev, 512);
        let at_bound = gpt_disk(at, 128, Some(0));
        let dev = Counted::new(&at_bound);
        assert_eq!(probe(&dev, 512), None);
        assert_eq!(dev.largest.get() as u64, GPT_MAX_ARRAY_BYTES);
        let big = gpt_disk(at + 1, 128, Some(0));
        let dev = Counted::new(&big);
        assert_eq!(probe(&dev, 512), None);
        assert!(dev.largest.get() <= 512);
    }
}
