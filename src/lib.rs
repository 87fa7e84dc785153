//! baton: a static `/init` for Linux initramfs images, and the tool that bakes it into one.
//!
//! The init (`src/bin/baton-init.rs`) and the host tool (`src/bin/baton.rs`) share this
//! library, so the image layout, the manifest and the command-line grammar cannot disagree.
//! Modules behind the `host` feature never reach the static init.

// The init runs as PID 1: a panic is a kernel panic with no message. Code here handles every
// failure as a value instead (tests may unwrap).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::exit
    )
)]

pub mod alloc;
pub mod applets;
pub mod boot;
pub mod caps;
pub mod cmdline;
pub mod consoles;
pub mod deferred;
pub mod devices;
pub mod dirents;
#[cfg(feature = "host")]
pub mod elf;
pub mod emergency;
#[cfg(feature = "host")]
pub mod image;
pub mod inputs;
pub mod kmsg;
pub mod manifest;
pub mod modprobe;
pub mod modules;
pub mod mounts;
pub mod probe;
pub mod probing;
pub mod resume;
pub mod rmrf;
pub mod root;
pub mod rootspec;
pub mod run;
pub mod shared;
pub mod spawn;
pub mod switch;
pub mod timeline;
pub mod uevent;

#[cfg(feature = "host")]
pub mod check;
#[cfg(feature = "host")]
pub mod cli;
#[cfg(feature = "host")]
pub mod config;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "host")]
pub mod run_cache;
#[cfg(feature = "host")]
pub mod update;
#[cfg(feature = "host")]
pub mod virtiofsd;
#[cfg(feature = "host")]
pub mod vm;
