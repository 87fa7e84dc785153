//! baton: a static `/init` for Linux initramfs images, and the tool that bakes it into one.
//!
//! Two programs share this library, and where a file lies says which of them runs it:
//! - `init/`: PID 1 (`src/bin/baton-init.rs`), its applets (switch_root, run-init) and its
//!   modprobe helper. Static, musl, no panics; every byte of it is boot time.
//! - `host/`: the `baton` tool on the build host (`src/bin/baton.rs`): building, inspecting
//!   and checking images, `update`, `run`. Behind the `host` feature, so none of its crates
//!   (compression, clap) reach the init.
//! - the files at the top: what both read and write, so the two cannot disagree: the kernel
//!   command line, root specs, the image's manifest, superblock probes, module metadata, the
//!   timeline's model, the `baton run` protocol.
//!
//! Imports run one way: `init` and `host` use the top, never each other, and no module uses
//! one that uses it back (tests/layout.rs checks both).

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

pub mod bounded;
pub mod cmdline;
pub mod crypttab;
pub mod keymap;
pub mod luks;
pub mod lz4_legacy;
pub mod manifest;
pub mod modules;
pub mod probe;
pub mod rootspec;
pub mod run_protocol;
pub mod storage_names;
pub mod timeline;
pub mod transport;

pub mod init;

#[cfg(feature = "host")]
pub mod host;
