//! Emptying the initramfs to give its memory back: the rootfs is never unmounted, so every
//! file left in it stays in RAM for the life of the system.
//!
//! The rules that keep this from ever eating a disk (systemd's rm-rf.c works the same way):
//! - only through a directory fd opened before the switch, never by path;
//! - only when that directory is on ramfs or tmpfs (checked here, whatever the caller did);
//! - never following symlinks (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`);
//! - never entering another filesystem (a directory's `st_dev` must match the starting
//!   directory's), so the new root, /proc, /sys and /dev are left alone even if they are
//!   still mounted inside; a file from elsewhere can only be a mount point, which unlinkat
//!   refuses (EBUSY);
//! - on an error, remember the first one and keep going.

use crate::init::dirents;
use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::sys::statfs::{fstatfs, FsType, TMPFS_MAGIC};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::os::fd::{AsFd, BorrowedFd};

/// ramfs has no constant in nix or libc (include/uapi/linux/magic.h).
pub const RAMFS_MAGIC: FsType = FsType(0x8584_58f6);

/// What the removal did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removal {
    pub removed: u64,
    /// Directories left because another filesystem is mounted there, or entries that are on
    /// another filesystem: not ours to delete.
    pub skipped_mounts: u64,
    /// The first error met, as "path: errno".
    pub first_error: Option<String>,
}

/// Whether the directory is on ramfs or tmpfs, the only filesystems we empty.
pub fn is_ram_filesystem<Fd: AsFd>(dir: Fd) -> Result<bool> {
    Ok(is_ram_filesystem_type(fstatfs(dir)?.filesystem_type()))
}

/// Whether a filesystem of this type (statfs's `f_type`) is ramfs or tmpfs.
pub fn is_ram_filesystem_type(kind: FsType) -> bool {
    kind == RAMFS_MAGIC || kind == TMPFS_MAGIC
}

/// Removes everything below `dir` (not `dir` itself) that is on the same filesystem.
/// Refuses outright if `dir` is not on ramfs or tmpfs.
pub fn remove_children<Fd: AsFd>(dir: Fd) -> Result<Removal> {
    let fs = fstatfs(&dir)?;
    let kind = fs.filesystem_type();
    if kind != RAMFS_MAGIC && kind != TMPFS_MAGIC {
        bail!(
            "refusing to delete: the directory is on a filesystem of type {:#x}, not ramfs or tmpfs",
            kind.0
        );
    }
    let device = fstat(&dir)?.st_dev;
    let mut removal = Removal::default();
    remove_in(dir.as_fd(), device, "", &mut removal);
    Ok(removal)
}

/// A bound on the entries read from one directory: an initramfs holds tens to thousands.
const MAX_ENTRIES: usize = 1 << 20;

fn note_error(removal: &mut Removal, path: &str, errno: Errno) {
    if removal.first_error.is_none() {
        removal.first_error = Some(format!("{path}: {}", errno.desc()));
    }
}

fn remove_in(dir: BorrowedFd<'_>, device: u64, path: &str, removal: &mut Removal) {
    // Read all names first: removing entries while a readdir is in progress may make it skip
    // some on filesystems other than tmpfs.
    let entries = match dirents::read(dir, MAX_ENTRIES) {
        Ok(entries) => entries,
        Err(errno) => return note_error(removal, if path.is_empty() { "/" } else { path }, errno),
    };
    for entry in entries {
        remove_entry(dir, &entry, device, path, removal);
    }
}

/// Removes one entry of `dir` (whose path, for the log, is `parent`). The kernel's `d_type`
/// saves a stat per entry: a non-directory is unlinked at once (unlinkat never follows a
/// symlink, and refuses a mount point with EBUSY: a file cannot be on another filesystem
/// otherwise), and a directory's filesystem is checked on the opened directory itself.
fn remove_entry(
    dir: BorrowedFd<'_>,
    entry: &dirents::Entry,
    device: u64,
    parent: &str,
    removal: &mut Removal,
) {
    let name = entry.name.as_slice();
    let path = || format!("{parent}/{}", String::from_utf8_lossy(name));
    let is_dir = match entry.kind {
        dirents::Kind::Directory => true,
        dirents::Kind::Other => false,
        // The filesystem does not say: ask.
        dirents::Kind::Unknown => match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) if stat.st_dev != device => {
                removal.skipped_mounts += 1;
                return;
            }
            Ok(stat) => SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR,
            Err(errno) => return note_error(removal, &path(), errno),
        },
    };
    if !is_dir {
        match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => removal.removed += 1,
            // A file something is mounted on (a bind mount): not ours.
            Err(Errno::EBUSY) => removal.skipped_mounts += 1,
            Err(errno) => note_error(removal, &path(), errno),
        }
        return;
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let skipped_before = removal.skipped_mounts;
    match openat(dir, name, flags, Mode::empty()) {
        // On the opened directory: a mount point shows the mounted filesystem's root here.
        Ok(child) => match fstat(&child) {
            Ok(s) if s.st_dev == device => remove_in(child.as_fd(), device, &path(), removal),
            Ok(_) => {
                removal.skipped_mounts += 1;
                return;
            }
            Err(errno) => return note_error(removal, &path(), errno),
        },
        Err(errno) => return note_error(removal, &path(), errno),
    }
    // A directory that still holds a mount point cannot be empty: leave it quietly.
    if removal.skipped_mounts > skipped_before {
        return;
    }
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) => removal.removed += 1,
        // A mount point inside (e.g. /sysroot before the move) cannot be removed.
        Err(Errno::EBUSY) => removal.skipped_mounts += 1,
        Err(errno) => note_error(removal, &path(), errno),
    }
}
