//! The storage stacks between the disks and the root: LVM2 volume groups (`lvm`), with
//! MD RAID, LUKS and the device-mapper interface to come.

pub mod lvm;
