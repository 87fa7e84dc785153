//! The storage stacks between the disks and the root: the kernel's device-mapper interface
//! (`dm`) and LVM2 volume groups (`lvm`), with MD RAID and LUKS to come.

pub mod dm;
pub mod lvm;
