//! Every superblock probe on arbitrary device contents.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = baton::probe::probe_filesystem(&data.to_vec());
});
