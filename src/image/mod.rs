//! The initramfs image: its entries, the skeleton every image starts from, the newc cpio
//! format the kernel unpacks, and (on the build host) compression, building and inspection.

pub mod entry;
pub mod newc;
pub mod skeleton;

#[cfg(feature = "host")]
pub mod build;
#[cfg(feature = "host")]
pub mod compress;
#[cfg(feature = "host")]
pub mod inspect;

pub use entry::{Body, Entry, Image};
