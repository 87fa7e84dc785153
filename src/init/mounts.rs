//! The API filesystems every early userspace needs, as one table: what to mount where,
//! and why. The executor is one loop; a row that is optional says so in its column.

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use std::path::Path;

pub struct EarlyMount {
    pub source: &'static str,
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: MsFlags,
    pub data: &'static str,
    /// A failure stops the boot when true; otherwise it is logged and the boot goes on.
    pub required: bool,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

pub const EARLY_MOUNTS: [EarlyMount; 4] = [
    // /proc first: the command line, the known filesystems and the mount table live there.
    EarlyMount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        required: true,
    },
    // sysfs: block devices and their numbers (/sys/class/block, /sys/dev/block).
    EarlyMount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        required: true,
    },
    // devtmpfs: the kernel creates device nodes here as drivers find disks. Debian builds
    // with DEVTMPFS_MOUNT off, and that option never applies to an initramfs anyway.
    EarlyMount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: "mode=0755",
        required: true,
    },
    // /run is handed to the real root, mounted as systemd's initrd interface asks
    // (docs/INITRD_INTERFACE.md: mode=755,nodev,nosuid,strictatime), so systemd keeps it.
    EarlyMount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_STRICTATIME),
        data: "mode=0755",
        required: false,
    },
];

/// Mounts every row that is not mounted yet. Running it twice is harmless, which matters
/// when the boot is retried after the rescue shell.
pub fn mount_early(table: &[EarlyMount]) -> Result<()> {
    for row in table {
        if let Err(err) = mount_one(row) {
            if row.required {
                return Err(err);
            }
            log::warn!("{err:#}");
        }
    }
    Ok(())
}

fn mount_one(row: &EarlyMount) -> Result<()> {
    let target = Path::new(row.target);
    if is_mount_point(target) {
        return Ok(());
    }
    if let Err(errno) = nix::unistd::mkdir(target, Mode::from_bits_truncate(0o755)) {
        if errno != nix::errno::Errno::EEXIST {
            return Err(errno).with_context(|| format!("failed to create {}", row.target));
        }
    }
    let data = (!row.data.is_empty()).then_some(row.data);
    mount(Some(row.source), target, Some(row.fstype), row.flags, data)
        .with_context(|| format!("failed to mount {} on {}", row.fstype, row.target))
}

/// A directory is a mount point when it sits on another device than its parent. A symlink
/// never is, even one pointing at a mount point: initramfs-tools' udev script leaves /dev as
/// a symlink to the real root's /dev, and following it would move /root/dev onto itself.
pub fn is_mount_point(path: &Path) -> bool {
    let Some(parent) = path.parent() else {
        return true;
    };
    match (nix::sys::stat::lstat(path), nix::sys::stat::stat(parent)) {
        (Ok(here), Ok(above)) => {
            let kind = nix::sys::stat::SFlag::from_bits_truncate(here.st_mode)
                & nix::sys::stat::SFlag::S_IFMT;
            kind == nix::sys::stat::SFlag::S_IFDIR && here.st_dev != above.st_dev
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_to_a_mount_point_is_not_one() {
        let dir = std::env::temp_dir().join(format!("baton-mountpoint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // /proc is a mount point wherever the tests run; a link to it is not.
        let link = dir.join("proc");
        std::os::unix::fs::symlink("/proc", &link).unwrap();
        assert!(is_mount_point(Path::new("/proc")));
        assert!(!is_mount_point(&link));
        assert!(!is_mount_point(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
