//! PID 1: from the kernel's `Run /init` to the exec of the real init (`boot`), and the
//! other programs the same static binary is (`applets`: switch_root, run-init; `modprobe`,
//! the kernel's module helper).
//!
//! In boot order: `mounts` (/proc, /sys, /dev), `inputs` (command line and manifest),
//! `modules` (loading, on threads), `uevent` and `devices` (what appeared, probed on
//! threads by `probing`), `root` (finding and mounting the root; `shared` for roots shared
//! by a host, `resume` for hibernation), `caps` and `switch` (checks, the move onto the new
//! root), `rmrf` and `deferred` (emptying the initramfs), `consoles`, `run` (`baton.run`)
//! and `emergency` (every failure ends there). Beneath them: `kmsg` (the log), `timeline`,
//! `spawn` (forking without allocating), `dirents` (bounded directory reads), `keymap` (the
//! console keymap, loaded before the first question) and `alloc`.
//!
//! The storage stack between the disks and the root (device-mapper, LVM, MD RAID, LUKS) gets
//! a folder of its own here, `storage/`, as the init learns it.

pub mod alloc;
pub mod applets;
pub mod boot;
pub mod caps;
pub mod coldplug;
pub mod consoles;
pub mod deferred;
pub mod devices;
pub mod dirents;
pub mod emergency;
pub mod fsck_stamp;
pub mod inputs;
pub mod keymap;
pub mod kmsg;
pub mod modprobe;
pub mod modules;
pub mod mounts;
pub mod probing;
pub mod resume;
pub mod rmrf;
pub mod root;
pub mod root_mount;
pub mod run;
pub mod run_network;
pub mod run_shares;
pub mod run_streams;
pub mod shared;
pub mod spawn;
pub mod storage;
pub mod switch;
pub mod timeline;
pub mod uevent;
pub mod users;
