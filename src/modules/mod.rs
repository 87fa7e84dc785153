//! Kernel modules: what a module says about itself, which order to load a set in (both
//! decided at build time), and loading them at boot.

#[cfg(feature = "host")]
pub mod config;
pub mod glob;
pub mod load;
pub mod modinfo;
#[cfg(feature = "host")]
pub mod order;
#[cfg(feature = "host")]
pub mod requests;
pub mod schedule;
#[cfg(feature = "host")]
pub mod tree;
