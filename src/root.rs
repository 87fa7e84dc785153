//! From `root=` to a mounted new root: what the spec names, waiting for that device, and
//! mounting it the way the kernel's own `mount_root()` would (init/do_mounts.c): the given
//! `rootfstype=` list or every block filesystem the kernel knows, read-only unless `rw`,
//! retrying read-only when the device refuses writes.

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `root=` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSpec {
    /// `/dev/NAME` (or any path that will hold a block device node).
    Path(String),
    /// `MAJ:MIN`, or a hex device number like `801` or `fe00` (the kernel's old form).
    Number { major: u32, minor: u32 },
}

impl std::fmt::Display for RootSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootSpec::Path(p) => write!(f, "{p}"),
            RootSpec::Number { major, minor } => write!(f, "{major}:{minor}"),
        }
    }
}

/// Parses a `root=` value (block/early-lookup.c's forms that need no probing).
pub fn parse_root(value: &str) -> Result<RootSpec, String> {
    if value.starts_with('/') {
        return Ok(RootSpec::Path(value.to_owned()));
    }
    for tag in ["UUID=", "LABEL=", "PARTUUID=", "PARTLABEL="] {
        if value.starts_with(tag) {
            return Err(format!(
                "root={value}: {} roots are not supported by this version of baton; use root=/dev/NAME or MAJ:MIN",
                tag.trim_end_matches('=')
            ));
        }
    }
    if let Some((major, minor)) = value.split_once(':') {
        return match (major.parse::<u32>(), minor.parse::<u32>()) {
            (Ok(major), Ok(minor)) => Ok(RootSpec::Number { major, minor }),
            _ => Err(format!(
                "root={value}: expected MAJ:MIN with decimal numbers"
            )),
        };
    }
    // A bare hex number is a dev_t in the kernel's "new" encoding (new_decode_dev()).
    match u32::from_str_radix(value, 16) {
        Ok(dev) => Ok(RootSpec::Number {
            major: (dev & 0xfff00) >> 8,
            minor: (dev & 0xff) | ((dev >> 12) & 0xfff00),
        }),
        Err(_) => Err(format!(
            "root={value}: not a device path (/dev/NAME), MAJ:MIN or hex device number"
        )),
    }
}

/// Splits `rootflags=` into the generic flags mount(2) takes as bits and the rest, which
/// the filesystem parses (as mount(8) does with `-o`). The kernel passes rootflags
/// verbatim, so `noatime` there would be rejected by ext4; users write it anyway.
pub fn split_mount_options(options: &str) -> (MsFlags, MsFlags, String) {
    let mut set = MsFlags::empty();
    let mut clear = MsFlags::empty();
    let mut data = Vec::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let (add, remove) = match option {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            other => {
                data.push(other);
                continue;
            }
        };
        set = (set | add) - remove;
        clear = (clear | remove) - add;
    }
    (set, clear, data.join(","))
}

/// Block filesystems the kernel knows now, from /proc/filesystems: the lines without
/// `nodev` (those need no device and cannot hold a root disk).
pub fn block_filesystems(proc_filesystems: &str) -> Vec<String> {
    proc_filesystems
        .lines()
        .filter(|line| !line.starts_with("nodev"))
        .map(str::trim)
        .filter(|fs| !fs.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Waits for the device `spec` names and returns a path to its node. `limit` of `None`
/// waits for ever, with a progress line every few seconds.
pub fn wait_for_device(spec: &RootSpec, limit: Option<Duration>) -> Result<PathBuf> {
    let started = Instant::now();
    let mut next_report = Duration::from_secs(5);
    loop {
        if let Some(path) = find_device(spec)? {
            let waited = started.elapsed();
            if waited > Duration::from_millis(50) {
                log::info!(
                    "root device {spec} appeared after {} ms",
                    waited.as_millis()
                );
            }
            return Ok(path);
        }
        let waited = started.elapsed();
        if let Some(limit) = limit {
            if waited >= limit {
                bail!(
                    "root device {spec} did not appear within {} s (block devices present: {}); check root= and that the image has the disk's driver, or add rootwait",
                    limit.as_secs(),
                    present_block_devices()
                );
            }
        }
        if waited >= next_report {
            log::warn!(
                "still waiting for root device {spec} after {} s (block devices present: {})",
                waited.as_secs(),
                present_block_devices()
            );
            next_report += Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What is in /sys/class/block now, for messages.
fn present_block_devices() -> String {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/block")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(" ")
    }
}

fn find_device(spec: &RootSpec) -> Result<Option<PathBuf>> {
    use std::os::unix::fs::FileTypeExt;
    match spec {
        RootSpec::Path(path) => Ok(std::fs::metadata(path)
            .ok()
            .filter(|m| m.file_type().is_block_device())
            .map(|_| PathBuf::from(path))),
        RootSpec::Number { major, minor } => {
            let uevent = format!("/sys/dev/block/{major}:{minor}/uevent");
            let Ok(text) = std::fs::read_to_string(&uevent) else {
                return Ok(None);
            };
            // devtmpfs names the node as the uevent's DEVNAME says.
            if let Some(name) = text.lines().find_map(|l| l.strip_prefix("DEVNAME=")) {
                let path = PathBuf::from(format!("/dev/{name}"));
                if path.exists() {
                    return Ok(Some(path));
                }
            }
            // No devtmpfs node (yet): make our own, as the kernel makes /dev/root.
            let path = PathBuf::from("/dev/root");
            let _ = std::fs::remove_file(&path);
            nix::sys::stat::mknod(
                &path,
                nix::sys::stat::SFlag::S_IFBLK,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                nix::sys::stat::makedev(u64::from(*major), u64::from(*minor)),
            )
            .with_context(|| format!("failed to create /dev/root for {major}:{minor}"))?;
            Ok(Some(path))
        }
    }
}

/// Mounts `device` on `target`, trying each filesystem in turn. Returns the one that
/// worked and whether the mount ended up read-only.
pub fn mount_root(
    device: &Path,
    target: &Path,
    fstypes: &[String],
    read_only: bool,
    rootflags: Option<&str>,
) -> Result<(String, bool)> {
    let (set, _clear, data) = split_mount_options(rootflags.unwrap_or(""));
    let mut flags = set - MsFlags::MS_RDONLY;
    // `ro`/`rw` on the command line decide; `ro` inside rootflags also counts.
    if read_only || set.contains(MsFlags::MS_RDONLY) {
        flags |= MsFlags::MS_RDONLY;
    }
    let data = (!data.is_empty()).then_some(data.as_str());
    if fstypes.is_empty() {
        bail!(
            "cannot mount root {}: the kernel knows no block filesystem; add the filesystem's module to the image (--module ext4)",
            device.display()
        );
    }
    let mut tried = Vec::new();
    for fstype in fstypes {
        let mut attempt = flags;
        loop {
            match mount(Some(device), target, Some(fstype.as_str()), attempt, data) {
                Ok(()) => return Ok((fstype.clone(), attempt.contains(MsFlags::MS_RDONLY))),
                // A write-protected device: the kernel retries read-only, so do we.
                Err(Errno::EACCES) | Err(Errno::EROFS) if !attempt.contains(MsFlags::MS_RDONLY) => {
                    log::warn!(
                        "{} is write-protected, mounting it read-only",
                        device.display()
                    );
                    attempt |= MsFlags::MS_RDONLY;
                }
                Err(errno) => {
                    tried.push(format!("{fstype}: {}", errno.desc()));
                    break;
                }
            }
        }
    }
    bail!(
        "failed to mount root {} on {} (tried {})",
        device.display(),
        target.display(),
        tried.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_forms() {
        assert_eq!(
            parse_root("/dev/vda").unwrap(),
            RootSpec::Path("/dev/vda".into())
        );
        assert_eq!(
            parse_root("8:1").unwrap(),
            RootSpec::Number { major: 8, minor: 1 }
        );
        assert_eq!(
            parse_root("801").unwrap(),
            RootSpec::Number { major: 8, minor: 1 }
        );
        assert_eq!(
            parse_root("fe00").unwrap(),
            RootSpec::Number {
                major: 254,
                minor: 0
            }
        );
        // new_encode_dev(259:65536+3): minor's high bits live above bit 20.
        assert_eq!(
            parse_root("10010303").unwrap(),
            RootSpec::Number {
                major: 259,
                minor: 0x10003
            }
        );
        assert!(parse_root("vda").is_err());
        assert!(parse_root("8:x").is_err());
        assert!(parse_root("UUID=1234")
            .unwrap_err()
            .contains("not supported"));
    }

    #[test]
    fn mount_options_split_flags_from_data() {
        let (set, clear, data) =
            split_mount_options("noatime,data=journal,ro,,errors=remount-ro,rw");
        assert_eq!(set, MsFlags::MS_NOATIME);
        assert_eq!(clear, MsFlags::MS_RDONLY);
        assert_eq!(data, "data=journal,errors=remount-ro");
        assert_eq!(split_mount_options("").2, "");
    }

    #[test]
    fn proc_filesystems() {
        let text = "nodev\tsysfs\nnodev\ttmpfs\n\text3\n\text2\n\text4\nnodev\tdevtmpfs\n\tvfat\n";
        assert_eq!(block_filesystems(text), ["ext3", "ext2", "ext4", "vfat"]);
    }
}
