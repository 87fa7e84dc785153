//! The initramfs image, on the build host: its entries, the skeleton every image starts
//! from, the newc cpio format the kernel unpacks, compression, building and inspection.
//! None of it reaches the init, which only reads what the kernel unpacked.

pub mod build;
pub mod compress;
pub mod entry;
pub mod firmware;
pub mod inspect;
pub mod microcode;
pub mod newc;
pub mod skeleton;

pub use entry::{Body, Entry, Image};
