//! The kernel file `baton run` hands qemu. qemu boots an ELF vmlinux with a PVH entry point
//! directly, in protected mode, where a bzImage goes through the firmware and then
//! decompresses itself: under TCG that costs 7 s of the 12 s a `true` takes (Debian's 6.1,
//! measured here). So a bzImage is turned into its vmlinux once, on the host, and the result
//! kept in the cache beside the images; a kernel without a PVH entry (CONFIG_PVH unset) is
//! booted as it was given.

use crate::host::image::compress::{decompress_stream, Compression, Limits};
use std::path::{Path, PathBuf};

/// ELF's first bytes.
const ELF_MAGIC: &[u8] = b"\x7fELF";
/// Xen's note type for the 32-bit PVH entry point, which qemu looks for.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// A bound on the program headers and notes looked at.
const MAX_HEADERS: usize = 4096;
/// A bound on a decompressed kernel.
const MAX_VMLINUX: u64 = 1 << 30;

/// Whether `elf` is an ELF64 file with a PVH entry note (`Xen`, type 18) in a PT_NOTE
/// segment.
pub fn has_pvh_entry(elf: &[u8]) -> bool {
    note_segments(elf).into_iter().any(|(offset, size)| {
        let end = offset.saturating_add(size).min(elf.len());
        elf.get(offset..end).is_some_and(pvh_in_notes)
    })
}

/// The same for the file at `path`, reading only its headers and notes: a tree's vmlinux
/// carries its debugging information, hundreds of MB.
pub fn file_has_pvh_entry(path: &Path) -> bool {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = Vec::new();
    if (&file).take(64 << 10).read_to_end(&mut head).is_err() {
        return false;
    }
    note_segments(&head).into_iter().any(|(offset, size)| {
        let mut notes = vec![0u8; size.min(MAX_NOTES)];
        file.read_exact_at(&mut notes, offset as u64).is_ok() && pvh_in_notes(&notes)
    })
}

/// A bound on the notes read from a file.
const MAX_NOTES: usize = 1 << 20;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at.checked_add(2)?)?
        .try_into()
        .ok()
        .map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)?
        .try_into()
        .ok()
        .map(u32::from_le_bytes)
}

fn usize_at(b: &[u8], at: usize) -> Option<usize> {
    let v = u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?);
    usize::try_from(v).ok()
}

/// (file offset, size) of each PT_NOTE segment of an ELF64 little-endian file whose
/// program headers lie in `head`.
fn note_segments(head: &[u8]) -> Vec<(usize, usize)> {
    if !head.starts_with(ELF_MAGIC) || head.get(4) != Some(&2) || head.get(5) != Some(&1) {
        return Vec::new();
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) =
        (usize_at(head, 0x20), u16_at(head, 0x36), u16_at(head, 0x38))
    else {
        return Vec::new();
    };
    (0..usize::from(phnum).min(MAX_HEADERS))
        .filter_map(|n| {
            let at = n.checked_mul(usize::from(phentsize))?.checked_add(phoff)?;
            (u32_at(head, at)? == 4).then_some(())?;
            Some((usize_at(head, at + 8)?, usize_at(head, at + 32)?))
        })
        .collect()
}

/// Whether a run of ELF notes (each a name size, a descriptor size, a type, then both,
/// 4-aligned) holds Xen's PVH entry.
fn pvh_in_notes(notes: &[u8]) -> bool {
    let mut at = 0usize;
    for _ in 0..MAX_HEADERS {
        let (Some(namesz), Some(descsz), Some(kind)) = (
            u32_at(notes, at),
            u32_at(notes, at + 4),
            u32_at(notes, at + 8),
        ) else {
            return false;
        };
        let align = |n: u32| (n as usize).div_ceil(4) * 4;
        let name = notes.get(at + 12..(at + 12).saturating_add(namesz as usize));
        let desc_end = (at + 12 + align(namesz)).saturating_add(descsz as usize);
        if kind == XEN_ELFNOTE_PHYS32_ENTRY && name == Some(b"Xen\0") && desc_end <= notes.len() {
            return true;
        }
        at = at.saturating_add(12 + align(namesz) + align(descsz));
    }
    false
}

/// The compressed kernel inside a bzImage (boot protocol 2.08+: `payload_offset` and
/// `payload_length` in its header, from the start of the protected-mode code).
pub fn payload(bz: &[u8]) -> Option<(Compression, &[u8])> {
    if bz.get(0x202..0x206) != Some(b"HdrS") {
        return None;
    }
    let version = u16::from_le_bytes(bz.get(0x206..0x208)?.try_into().ok()?);
    if version < 0x0208 {
        return None;
    }
    let setup_sects = match *bz.get(0x1f1)? {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512;
    let offset = u32::from_le_bytes(bz.get(0x248..0x24c)?.try_into().ok()?) as usize;
    let length = u32::from_le_bytes(bz.get(0x24c..0x250)?.try_into().ok()?) as usize;
    let from = start.checked_add(offset)?;
    let data = bz.get(from..from.checked_add(length)?)?;
    Some((Compression::detect(data)?, data))
}

/// The vmlinux inside `bz`, when it can be taken out and has a PVH entry.
pub fn extract(bz: &[u8]) -> Option<Vec<u8>> {
    let (how, data) = payload(bz)?;
    let limits = Limits {
        max_unpacked: MAX_VMLINUX,
        ..Limits::DEFAULT
    };
    let (vmlinux, _) = decompress_stream(data, how, &limits).ok()?;
    has_pvh_entry(&vmlinux).then_some(vmlinux)
}

/// Whether the file at `path` starts as an ELF file.
pub fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == ELF_MAGIC)
}

/// The firmware for a kernel qemu enters through PVH: qboot, a firmware that only hands
/// over to the kernel (Debian's qemu-system-data has it), 0.12 s less than SeaBIOS's start
/// per run under TCG here. `None`: qemu's default, which a bzImage needs.
pub fn firmware(booted: &Path) -> Option<PathBuf> {
    const QBOOT: &str = "/usr/share/qemu/qboot.rom";
    (is_elf(booted) && Path::new(QBOOT).is_file()).then(|| PathBuf::from(QBOOT))
}

/// What qemu boots for `kernel`: the kernel itself when it is an ELF file or cannot be
/// turned into one with a PVH entry; else its vmlinux, from the cache or taken out now
/// (and kept there when the cache is private).
pub fn bootable(kernel: &Path) -> PathBuf {
    if is_elf(kernel) {
        return kernel.to_path_buf();
    }
    let dir = crate::host::run_cache::dir();
    let Some(cached) = crate::host::run_cache::stamped(&dir, "vmlinux", kernel) else {
        return kernel.to_path_buf();
    };
    if crate::host::run_cache::trusted(&cached) {
        return cached;
    }
    let Some(vmlinux) = std::fs::read(kernel).ok().and_then(|bz| extract(&bz)) else {
        return kernel.to_path_buf();
    };
    match crate::host::run_cache::write_private(&cached, &vmlinux) {
        Ok(()) => cached,
        Err(_) => kernel.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 header with one PT_NOTE segment holding `notes`.
    fn elf_with_notes(notes: &[(&[u8], u32)]) -> Vec<u8> {
        let mut elf = vec![0u8; 0x40 + 0x38];
        elf[..4].copy_from_slice(ELF_MAGIC);
        elf[4] = 2;
        elf[5] = 1;
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let mut body = Vec::new();
        for (name, kind) in notes {
            body.extend((name.len() as u32).to_le_bytes());
            body.extend(4u32.to_le_bytes());
            body.extend(kind.to_le_bytes());
            body.extend(*name);
            body.resize(body.len().div_ceil(4) * 4, 0);
            body.extend([0u8; 4]);
        }
        let at = elf.len();
        let ph = 0x40;
        elf[ph..ph + 4].copy_from_slice(&4u32.to_le_bytes());
        elf[ph + 8..ph + 16].copy_from_slice(&(at as u64).to_le_bytes());
        elf[ph + 32..ph + 40].copy_from_slice(&(body.len() as u64).to_le_bytes());
        elf.extend(body);
        elf
    }

    #[test]
    fn the_pvh_note_is_found_among_others() {
        assert!(has_pvh_entry(&elf_with_notes(&[
            (b"GNU\0", 3),
            (b"Xen\0", 18)
        ])));
        assert!(!has_pvh_entry(&elf_with_notes(&[
            (b"GNU\0", 3),
            (b"Xen\0", 17)
        ])));
        assert!(!has_pvh_entry(&elf_with_notes(&[(b"Linux\0", 18)])));
        assert!(!has_pvh_entry(b"\x7fELF"));
        // Truncated anywhere: no note, no panic.
        let elf = elf_with_notes(&[(b"Xen\0", 18)]);
        for len in 0..elf.len() {
            assert!(!has_pvh_entry(&elf[..len]), "{len}");
        }
    }

    #[test]
    fn a_bzimage_payload_is_found_by_its_header() {
        let mut bz = vec![0u8; 0x1000];
        bz[0x1f1] = 1;
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        let packed =
            crate::host::image::compress::compress(b"\x7fELF inside", Compression::Zstd).unwrap();
        let start = 2 * 512 + 0x100;
        bz[0x248..0x24c].copy_from_slice(&0x100u32.to_le_bytes());
        bz[0x24c..0x250].copy_from_slice(&(packed.len() as u32).to_le_bytes());
        bz[start..start + packed.len()].copy_from_slice(&packed);
        let (how, data) = payload(&bz).unwrap();
        assert_eq!((how, data), (Compression::Zstd, &packed[..]));
        // Not an ELF with a PVH entry: nothing to boot instead.
        assert_eq!(extract(&bz), None);
        // Too old a header, or a length past the end: none.
        let mut old = bz.clone();
        old[0x206..0x208].copy_from_slice(&0x0206u16.to_le_bytes());
        assert_eq!(payload(&old), None);
        bz[0x24c..0x250].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(payload(&bz), None);
    }
}
