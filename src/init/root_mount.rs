//! Mounting the root the way the kernel's own `mount_root()` does (init/do_mounts.c): the
//! given `rootfstype=` list or every block filesystem the kernel knows, read-only unless
//! `rw`, retrying read-only when the device refuses writes.

use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use std::path::Path;

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

/// The root's mount flags and data from `ro`/`rw` and `rootflags=`: the command line's
/// `ro`/`rw` decide, and `ro` inside rootflags also counts.
pub fn root_mount_options(read_only: bool, rootflags: Option<&str>) -> (MsFlags, String) {
    let (set, _clear, data) = split_mount_options(rootflags.unwrap_or(""));
    let mut flags = set - MsFlags::MS_RDONLY;
    if read_only || set.contains(MsFlags::MS_RDONLY) {
        flags |= MsFlags::MS_RDONLY;
    }
    (flags, data)
}

/// Mounts `device` on `target`, trying each filesystem in turn. Returns the one that
/// worked and whether the mount ended up read-only. `probed` is what the probe saw on the
/// device, to explain a failure.
pub fn mount_root(
    device: &Path,
    target: &Path,
    fstypes: &[String],
    probed: Option<&str>,
    read_only: bool,
    rootflags: Option<&str>,
) -> Result<(String, bool)> {
    let (flags, data) = root_mount_options(read_only, rootflags);
    let data = (!data.is_empty()).then_some(data.as_str());
    if fstypes.is_empty() {
        bail!(
            "cannot mount root {}: the kernel knows no block filesystem; add the filesystem's module to the image (baton build --module ext4, or --storage)",
            device.display()
        );
    }
    // The kernel says why a mount failed only in its log: keep what it says meanwhile.
    let kernel_log = crate::init::kmsg::Tail::start();
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
                    let mut why = explain_mount_error(fstype, probed, errno);
                    if errno == Errno::EINVAL && data.is_some() {
                        why.push_str(&format!(
                            " (or it refuses rootflags={:?})",
                            data.unwrap_or_default()
                        ));
                    }
                    tried.push(why);
                    break;
                }
            }
        }
    }
    let said = crate::init::kmsg::Tail::said(kernel_log);
    bail!(
        "failed to mount root {} on {}: {}{said}",
        device.display(),
        target.display(),
        tried.join("; ")
    )
}

/// Why mounting `device` as `fstype` failed with `errno`, in words that say what to change.
/// `probed` is the filesystem the probe recognised on the device, if any.
pub fn explain_mount_error(fstype: &str, probed: Option<&str>, errno: Errno) -> String {
    let said = format!("{fstype}: {}", errno.desc());
    match (probed, errno) {
        (Some(found), _) if found != fstype => format!(
            "{said}: the device holds {found}, not {fstype}; fix rootfstype= or leave it out"
        ),
        (_, Errno::ENODEV) => format!(
            "{said}: the kernel has no {fstype} driver; add it to the image (baton build --module {fstype}, or --storage)"
        ),
        (Some(_), Errno::EINVAL | Errno::EUCLEAN | Errno::EIO | Errno::EBADMSG) => format!(
            "{said}: the filesystem looks damaged; check and repair it (fsck.{fstype}) from another system or the rescue shell"
        ),
        (None, Errno::EINVAL) => format!("{said}: no {fstype} filesystem recognised on the device; check root= and rootfstype="),
        _ => said,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn mount_failures_say_what_to_change() {
        let wrong = explain_mount_error("xfs", Some("ext4"), Errno::EINVAL);
        assert!(
            wrong.contains("holds ext4, not xfs; fix rootfstype="),
            "{wrong}"
        );
        let missing = explain_mount_error("ext4", Some("ext4"), Errno::ENODEV);
        assert!(
            missing.contains("no ext4 driver; add it to the image (baton build --module ext4"),
            "{missing}"
        );
        let damaged = explain_mount_error("ext4", Some("ext4"), Errno::EUCLEAN);
        assert!(
            damaged.contains("looks damaged") && damaged.contains("fsck.ext4"),
            "{damaged}"
        );
        let unknown = explain_mount_error("ext4", None, Errno::EINVAL);
        assert!(
            unknown.contains("no ext4 filesystem recognised"),
            "{unknown}"
        );
        assert_eq!(
            explain_mount_error("ext4", Some("ext4"), Errno::ENOMEM),
            format!("ext4: {}", Errno::ENOMEM.desc())
        );
    }

    #[test]
    fn proc_filesystems() {
        let text = "nodev\tsysfs\nnodev\ttmpfs\n\text3\n\text2\n\text4\nnodev\tdevtmpfs\n\tvfat\n";
        assert_eq!(block_filesystems(text), ["ext3", "ext2", "ext4", "vfat"]);
    }
}
