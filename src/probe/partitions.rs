//! Partition tables: GPT (UEFI spec, chapter 5 "GUID Partition Table Disk Layout") and MBR
//! with extended partitions. Each partition gets the number the kernel gives it (GPT: its
//! entry index + 1; MBR: 1-4 primary, 5 and up for logical partitions in chain order) and the
//! PARTUUID the kernel and blkid report: the GPT unique partition GUID, or for MBR the disk
//! signature and number as `SSSSSSSS-PP`.

use super::{guid_string, le32, le64, utf16_label, ReadAt};

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
/// Logical partitions are chained; a loop in the chain must not hang the boot.
const MAX_LOGICAL: u32 = 128;

const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
const GPT_HEADER_SIZE: usize = 12;
const GPT_HEADER_CRC: usize = 16;
const GPT_DISK_GUID: usize = 56;
const GPT_ENTRIES_LBA: usize = 72;
const GPT_NUM_ENTRIES: usize = 80;
const GPT_ENTRY_SIZE: usize = 84;
const GPT_ENTRY_TYPE: usize = 0;
const GPT_ENTRY_UNIQUE: usize = 16;
const GPT_ENTRY_FIRST_LBA: usize = 32;
const GPT_ENTRY_LAST_LBA: usize = 40;
const GPT_ENTRY_NAME: usize = 56;
const GPT_ENTRY_NAME_LEN: usize = 72;
/// The spec's minimum entry array is 128 entries; allow generous tables but bound the read.
const GPT_MAX_ENTRIES: u32 = 4096;

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
        while number < 5 + MAX_LOGICAL {
            let Some(record) = dev.read_at(ebr.checked_mul(sector)?, 512) else {
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
                    start: ebr + first.start,
                    sectors: first.sectors,
                    partuuid: partuuid(number),
                    partlabel: None,
                });
                number += 1;
            }
            if second.kind == 0 || second.start == 0 {
                break;
            }
            ebr = base + second.start;
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
    let count = le32(&header, GPT_NUM_ENTRIES)?.min(GPT_MAX_ENTRIES);
    let entry_size = usize::try_from(le32(&header, GPT_ENTRY_SIZE)?).ok()?;
    if !(128..=4096).contains(&entry_size) {
        return None;
    }
    let array = dev.read_at(
        entries_lba.checked_mul(sector)?,
        entry_size * count as usize,
    )?;
    let mut partitions = Vec::new();
    for (index, entry) in (0u32..).zip(array.chunks_exact(entry_size)) {
        if entry
            .get(GPT_ENTRY_TYPE..GPT_ENTRY_TYPE + 16)?
            .iter()
            .all(|&b| b == 0)
        {
            continue;
        }
        let first = le64(entry, GPT_ENTRY_FIRST_LBA)?;
        let last = le64(entry, GPT_ENTRY_LAST_LBA)?;
        partitions.push(Partition {
            number: index + 1,
            start: first,
            sectors: last.checked_sub(first)?.checked_add(1)?,
            partuuid: guid_string(entry.get(GPT_ENTRY_UNIQUE..GPT_ENTRY_UNIQUE + 16)?)?,
            partlabel: utf16_label(entry.get(GPT_ENTRY_NAME..GPT_ENTRY_NAME + GPT_ENTRY_NAME_LEN)?),
        });
    }
    Some(Table {
        kind: TableKind::Gpt,
        id: guid_string(header.get(GPT_DISK_GUID..GPT_DISK_GUID + 16)?)?,
        partitions,
    })
}

/// CRC-32 (IEEE 802.3, reflected), as GPT uses for its header. Bitwise: the header is 92
/// bytes, a table would cost more than it saves.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

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
}
