//! MD RAID, assembled in-process: what each member's superblock says (`member`), arrays put
//! together from their members and whether they can run (`assembly`), which to start and
//! what to call them (`naming`, with mdadm.conf), the md driver's sysfs interface
//! (`kernel`), and all of it in the root search (`bring_up`).

pub mod assembly;
pub mod bring_up;
pub mod kernel;
pub mod member;
pub mod naming;
