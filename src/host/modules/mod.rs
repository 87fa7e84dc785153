//! Which modules an image carries, decided on the build host: the kernel's configuration
//! (`config`), a module file's `.modinfo` (`file`), the order to load a set in (`order`),
//! what a filesystem requests by name (`requests`), and the modules directory as a whole
//! (`tree`).

pub mod config;
pub mod file;
pub mod order;
pub mod requests;
pub mod tree;
