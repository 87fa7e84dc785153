//! Every superblock probe (filesystems and the members of LVM, MD RAID and LUKS stacks) on
//! arbitrary device contents, whose length is the device's size; and the reading of whether
//! an ext2/3/4 filesystem is clean, which follows the offsets the device itself gives.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let device = data.to_vec();
    let _ = baton::probe::probe_filesystem(&device);
    let _ = baton::probe::ext_clean::preen_would_pass(&device);
});
