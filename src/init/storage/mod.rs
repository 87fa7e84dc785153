//! The storage stacks between the disks and the root: the kernel's device-mapper interface
//! (`dm`), LVM2 volume groups (`lvm`) and MD RAID members (`md`), with LUKS to come.

pub mod dm;
pub mod lvm;
pub mod md;
