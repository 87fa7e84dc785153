//! ELF section lookup and .modinfo parsing on arbitrary module files.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = baton::host::modules::file::read(data);
    let _ = baton::modules::modinfo::parse(data);
    if let Ok(elf) = baton::host::elf::Elf::parse(data) {
        let _ = elf.needs_interpreter();
    }
});
