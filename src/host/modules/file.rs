//! A module file's `.modinfo`, read out of its ELF sections (the parsing itself is shared with
//! the init: `crate::modules::modinfo`).

use crate::host::elf::{Elf, ElfError};
use crate::modules::modinfo::{firmware, parse, ModInfo};

/// Reads the `.modinfo` section of a module file (uncompressed ELF bytes).
pub fn read(module: &[u8]) -> Result<ModInfo, ElfError> {
    let elf = Elf::parse(module)?;
    Ok(elf.section(".modinfo")?.map(parse).unwrap_or_default())
}

/// Reads the `firmware=` records of a module file (uncompressed ELF bytes).
pub fn read_firmware(module: &[u8]) -> Result<Vec<String>, ElfError> {
    let elf = Elf::parse(module)?;
    Ok(elf.section(".modinfo")?.map(firmware).unwrap_or_default())
}
