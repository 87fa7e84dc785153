//! The root's filesystem check, done once: Debian's systemd skips `systemd-fsck-root.service`
//! when `/run/initramfs/fsck-root` exists, which initramfs-tools writes after its own fsck of
//! the root returned 0 or 1. baton runs no fsck. On a root that carries systemd's fsck, it
//! writes the stamp when the root is an ext2/3/4 that `e2fsck -p` would find clean and leave
//! alone (`probe::ext_clean`) and nothing asks for a check: not the command line
//! (`fsck.mode=`, `forcefsck`, `fastboot`), not the root (`/forcefsck`, `/fastboot`, or an
//! `/etc/e2fsck.conf` that could change e2fsck's mind). Otherwise the real root's fsck runs
//! as it would have. Under an emulated CPU that unit is 1.4-2.6 s of systemd's critical
//! chain; on hardware, tens of milliseconds.
//!
//! The device is read once the root is mounted read-only, through the block device as
//! systemd-fsck-root's e2fsck reads it: what the kernel's mount did (a journal replayed,
//! orphans released) is what that e2fsck would have seen too.

use crate::cmdline::BootParams;
use std::path::Path;

/// The stamp, in the /run the real root inherits.
pub const STAMP: &str = "/run/initramfs/fsck-root";

/// systemd's fsck, merged /usr first: a root without it has no use for the stamp.
const SYSTEMD_FSCK: [&str; 2] = ["usr/lib/systemd/systemd-fsck", "lib/systemd/systemd-fsck"];

/// Files on the root that ask for a check, or change how e2fsck decides.
const ASKING: [&str; 3] = ["forcefsck", "fastboot", "etc/e2fsck.conf"];

/// After `device` (probed as `fstype`) was mounted at `new_root`: writes the stamp when its
/// check may be skipped, and says why not when systemd would check it.
pub fn after_mount(
    params: &BootParams,
    device: &Path,
    fstype: Option<&str>,
    read_only: bool,
    new_root: &Path,
) {
    // systemd checks only a root mounted read-only; an overlay is not its disk.
    if !read_only || params.overlay || !matches!(fstype, Some("ext2" | "ext3" | "ext4")) {
        return;
    }
    if !SYSTEMD_FSCK.iter().any(|f| new_root.join(f).exists()) {
        return;
    }
    let _step = crate::init::timeline::phase("root_check");
    let verdict = if params.fsck_by_cmdline {
        Err("the command line decides (fsck.mode=, forcefsck or fastboot)".to_owned())
    } else if let Some(asking) = ASKING.iter().find(|f| new_root.join(f).exists()) {
        Err(format!("the root has /{asking}"))
    } else {
        match std::fs::File::open(device) {
            Ok(file) => crate::probe::ext_clean::preen_would_pass(&file),
            Err(e) => Err(format!("cannot open {}: {e}", device.display())),
        }
    };
    if let Err(why) = verdict {
        log::info!("the root's check is left to the real root's fsck: {why}");
        return;
    }
    let written = std::fs::create_dir_all("/run/initramfs").and_then(|()| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(STAMP)
            .map(drop)
    });
    match written {
        Ok(()) => log::info!("the root is clean as e2fsck -p would find it (read by baton): wrote {STAMP}, so the real root's systemd-fsck-root skips it"),
        Err(e) => log::warn!("cannot write {STAMP}: {e}; the real root's fsck checks the root"),
    }
}
