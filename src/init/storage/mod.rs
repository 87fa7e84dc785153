//! The storage stacks between the disks and the root: the kernel's device-mapper interface
//! (`dm`), LVM2 volume groups (`lvm`) and MD RAID arrays (`md`), brought up together as the
//! root search finds their members (`stack`), with the links and udev entries the real
//! system expects (`nodes`). LUKS is to come.

pub mod crypt;
pub mod dm;
pub mod lvm;
pub mod md;
pub mod nodes;
pub mod stack;
