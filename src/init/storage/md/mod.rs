//! MD RAID, assembled in-process: what each member's superblock says (`member`), with the
//! assembly through the kernel's md interface to come.

pub mod member;
