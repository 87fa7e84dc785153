//! Every superblock probe (filesystems and the members of LVM, MD RAID and LUKS stacks) on
//! arbitrary device contents, whose length is the device's size.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = baton::probe::probe_filesystem(&data.to_vec());
});
