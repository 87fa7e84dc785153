//! GPT and MBR parsing (with logical-partition chains) on arbitrary disks, both sector sizes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let disk = data.to_vec();
    let _ = baton::probe::partitions::probe(&disk, 512);
    let _ = baton::probe::partitions::probe(&disk, 4096);
});
