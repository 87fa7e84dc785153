//! Just enough ELF to answer two questions: what is in a named section (a kernel module's
//! `.modinfo`), and does a program need an interpreter (a dynamically linked binary cannot
//! run inside an initramfs that carries no libc).
//!
//! Pure functions over bytes: every offset read from the file is bounds-checked, so a
//! truncated or hostile file gives an error, never a panic. Layout per the System V gABI,
//! "Object Files" (ELF header, section header table, program header table).

use std::fmt;

/// What went wrong reading an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    NotElf,
    Truncated(&'static str),
    Unsupported(&'static str),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf => write!(f, "not an ELF file"),
            ElfError::Truncated(what) => write!(f, "truncated ELF file: {what} out of bounds"),
            ElfError::Unsupported(what) => write!(f, "unsupported ELF file: {what}"),
        }
    }
}

impl std::error::Error for ElfError {}

const MAGIC: &[u8; 4] = b"\x7fELF";
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ELFDATA2MSB: u8 = 2;
const PT_INTERP: u32 = 3;
const SHN_UNDEF: u16 = 0;
const SHN_XINDEX: u16 = 0xffff;

/// Where the program and section header tables are (the e_* fields of the ELF header).
#[derive(Debug, Clone, Copy)]
struct Header {
    phoff: u64,
    shoff: u64,
    phentsize: u16,
    phnum: u16,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
}

/// A parsed ELF header: where the tables are and how to read integers.
#[derive(Debug, Clone, Copy)]
pub struct Elf<'a> {
    data: &'a [u8],
    is64: bool,
    little: bool,
}

/// One section header, reduced to what we use.
#[derive(Debug, Clone, Copy)]
struct Section {
    name: u32,
    offset: u64,
    size: u64,
    kind: u32,
}

const SHT_NOBITS: u32 = 8;

impl<'a> Elf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, ElfError> {
        if data.get(..4) != Some(MAGIC.as_slice()) {
            return Err(ElfError::NotElf);
        }
        let is64 = match data.get(EI_CLASS) {
            Some(&ELFCLASS32) => false,
            Some(&ELFCLASS64) => true,
            _ => return Err(ElfError::Unsupported("class")),
        };
        let little = match data.get(EI_DATA) {
            Some(&ELFDATA2LSB) => true,
            Some(&ELFDATA2MSB) => false,
            _ => return Err(ElfError::Unsupported("byte order")),
        };
        Ok(Elf { data, is64, little })
    }

    fn bytes<const N: usize>(&self, at: u64, what: &'static str) -> Result<[u8; N], ElfError> {
        let start = usize::try_from(at).map_err(|_| ElfError::Truncated(what))?;
        let end = start.checked_add(N).ok_or(ElfError::Truncated(what))?;
        self.data
            .get(start..end)
            .and_then(|s| s.try_into().ok())
            .ok_or(ElfError::Truncated(what))
    }

    fn u16(&self, at: u64, what: &'static str) -> Result<u16, ElfError> {
        let b = self.bytes::<2>(at, what)?;
        Ok(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32(&self, at: u64, what: &'static str) -> Result<u32, ElfError> {
        let b = self.bytes::<4>(at, what)?;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn u64(&self, at: u64, what: &'static str) -> Result<u64, ElfError> {
        let b = self.bytes::<8>(at, what)?;
        Ok(if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }

    /// An address-sized field: 4 bytes in ELF32, 8 in ELF64.
    fn word(&self, at: u64, what: &'static str) -> Result<u64, ElfError> {
        if self.is64 {
            self.u64(at, what)
        } else {
            self.u32(at, what).map(u64::from)
        }
    }

    fn header(&self) -> Result<Header, ElfError> {
        let (phoff, shoff, rest) = if self.is64 {
            (0x20, 0x28, 0x36)
        } else {
            (0x1c, 0x20, 0x2a)
        };
        Ok(Header {
            phoff: self.word(phoff, "e_phoff")?,
            shoff: self.word(shoff, "e_shoff")?,
            phentsize: self.u16(rest, "e_phentsize")?,
            phnum: self.u16(rest + 2, "e_phnum")?,
            shentsize: self.u16(rest + 4, "e_shentsize")?,
            shnum: self.u16(rest + 6, "e_shnum")?,
            shstrndx: self.u16(rest + 8, "e_shstrndx")?,
        })
    }

    fn section_header(&self, shoff: u64, entsize: u16, index: u64) -> Result<Section, ElfError> {
        let base = index
            .checked_mul(u64::from(entsize))
            .and_then(|o| o.checked_add(shoff))
            .ok_or(ElfError::Truncated("section header"))?;
        let (offset_at, size_at) = if self.is64 {
            (0x18, 0x20)
        } else {
            (0x10, 0x14)
        };
        Ok(Section {
            name: self.u32(base, "sh_name")?,
            kind: self.u32(base.saturating_add(4), "sh_type")?,
            offset: self.word(base.saturating_add(offset_at), "sh_offset")?,
            size: self.word(base.saturating_add(size_at), "sh_size")?,
        })
    }

    fn section_data(&self, s: &Section) -> Result<&'a [u8], ElfError> {
        if s.kind == SHT_NOBITS {
            return Ok(&[]);
        }
        let start = usize::try_from(s.offset).map_err(|_| ElfError::Truncated("section"))?;
        let len = usize::try_from(s.size).map_err(|_| ElfError::Truncated("section"))?;
        let end = start
            .checked_add(len)
            .ok_or(ElfError::Truncated("section"))?;
        self.data
            .get(start..end)
            .ok_or(ElfError::Truncated("section"))
    }

    /// The contents of the first section called `name`, if there is one.
    pub fn section(&self, name: &str) -> Result<Option<&'a [u8]>, ElfError> {
        let Header {
            shoff,
            shentsize,
            shnum,
            shstrndx,
            ..
        } = self.header()?;
        if shoff == 0 {
            return Ok(None);
        }
        // Large section counts live in the first section header (gABI "Extended Section
        // Header Table"); kernel modules never need it, so refuse rather than misread.
        if shnum == 0 || shstrndx == SHN_XINDEX || shstrndx == SHN_UNDEF {
            return Err(ElfError::Unsupported("extended section numbering"));
        }
        let strtab = self.section_header(shoff, shentsize, u64::from(shstrndx))?;
        let names = self.section_data(&strtab)?;
        for index in 0..u64::from(shnum) {
            let section = self.section_header(shoff, shentsize, index)?;
            let start = usize::try_from(section.name).unwrap_or(usize::MAX);
            let Some(tail) = names.get(start..) else {
                continue;
            };
            let this = tail.split(|&b| b == 0).next().unwrap_or_default();
            if this == name.as_bytes() {
                return self.section_data(&section).map(Some);
            }
        }
        Ok(None)
    }

    /// Whether the program asks for an interpreter (PT_INTERP), i.e. is dynamically linked.
    /// Static PIE binaries have no PT_INTERP and run fine from an initramfs.
    pub fn needs_interpreter(&self) -> Result<bool, ElfError> {
        let Header {
            phoff,
            phentsize,
            phnum,
            ..
        } = self.header()?;
        for index in 0..u64::from(phnum) {
            let at = index
                .checked_mul(u64::from(phentsize))
                .and_then(|o| o.checked_add(phoff))
                .ok_or(ElfError::Truncated("program header"))?;
            if self.u32(at, "p_type")? == PT_INTERP {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary itself is a real, dynamically linked (or static) ELF on this host.
    fn own_binary() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn reads_own_binary() {
        let data = own_binary();
        let elf = Elf::parse(&data).unwrap();
        assert!(elf.section(".text").unwrap().is_some());
        assert!(elf.section(".no-such-section").unwrap().is_none());
        let _ = elf.needs_interpreter().unwrap();
    }

    #[test]
    fn rejects_non_elf() {
        assert_eq!(Elf::parse(b"#!/bin/sh\n").unwrap_err(), ElfError::NotElf);
        assert_eq!(Elf::parse(b"").unwrap_err(), ElfError::NotElf);
    }

    #[test]
    fn truncations_never_panic() {
        let data = own_binary();
        // Every prefix up to a few KB, then a sample of longer ones.
        let lens = (0..4096).chain((4096..data.len()).step_by(997));
        for len in lens {
            let Ok(elf) = Elf::parse(&data[..len]) else {
                continue;
            };
            let _ = elf.section(".modinfo");
            let _ = elf.needs_interpreter();
        }
    }

    #[test]
    fn corrupted_headers_never_panic() {
        let data = own_binary();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..2000 {
            let mut copy = data[..data.len().min(8192)].to_vec();
            let tail_start = data.len().saturating_sub(8192);
            copy.extend_from_slice(&data[tail_start..]);
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % 128) as usize;
                copy[at] = (state >> 32) as u8;
            }
            copy[..4].copy_from_slice(MAGIC);
            if let Ok(elf) = Elf::parse(&copy) {
                let _ = elf.section(".modinfo");
                let _ = elf.needs_interpreter();
            }
        }
    }
}
