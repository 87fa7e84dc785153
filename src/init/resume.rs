//! Hibernation (`resume=`): before the root is mounted, the kernel is told which device
//! holds the image by writing its number to /sys/power/resume, as
//! Documentation/power/swsusp.rst says an initramfs must when the swap device's driver is a
//! module (the kernel's own attempt at boot ran before any module was loaded). If an image
//! is there the kernel restores it and this process never returns from the write; if the
//! write returns, there was nothing to resume, and the boot goes on afresh. The setting is
//! not undone: it is also where the booted system will hibernate to.

use crate::init::root::Found;
use anyhow::{Context, Result};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;

const RESUME: &str = "/sys/power/resume";
const RESUME_OFFSET: &str = "/sys/power/resume_offset";

/// Asks the kernel to resume from `device` (at `offset` pages into it, for a swap file).
/// Returns when there was no image to resume; every problem is a warning, since a boot
/// that cannot resume can still boot.
pub fn resume_from(device: &Found, offset: Option<u64>) {
    if let Err(why) = try_resume(device, offset) {
        log::warn!("{why:#}; booting without resuming");
    }
}

fn try_resume(device: &Found, offset: Option<u64>) -> Result<()> {
    let path = &device.device;
    let meta = std::fs::metadata(path)
        .with_context(|| format!("resume: cannot stat {}", path.display()))?;
    if !meta.file_type().is_block_device() {
        anyhow::bail!("resume: {} is not a block device", path.display());
    }
    let number = device_number(meta.rdev());
    if !std::path::Path::new(RESUME).exists() {
        anyhow::bail!("resume: the kernel has no hibernation support ({RESUME} is missing)");
    }
    if let Some(pages) = offset {
        std::fs::write(RESUME_OFFSET, format!("{pages}\n"))
            .with_context(|| format!("resume: cannot write {RESUME_OFFSET}"))?;
    }
    let image = device.fstype.as_deref() == Some("swsuspend");
    log::info!(
        "resume: {} ({number}) {}; writing it to {RESUME} before the root is mounted",
        path.display(),
        if image {
            "holds a hibernation image"
        } else {
            "is the resume device"
        }
    );
    std::fs::write(RESUME, format!("{number}\n"))
        .with_context(|| format!("resume: the kernel refused {number} in {RESUME}"))?;
    // Still here: the kernel found no image it could restore.
    if image {
        log::warn!(
            "resume: the kernel did not restore the image on {} (a different kernel, or a damaged image): booting afresh",
            path.display()
        );
    } else {
        log::info!(
            "resume: no hibernation image on {}: booting afresh",
            path.display()
        );
    }
    Ok(())
}

/// `MAJ:MIN`, the form every kernel's /sys/power/resume takes.
fn device_number(rdev: u64) -> String {
    format!("{}:{}", libc::major(rdev), libc::minor(rdev))
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_numbers() {
        assert_eq!(super::device_number(libc::makedev(254, 16)), "254:16");
        assert_eq!(
            super::device_number(libc::makedev(259, 1048575)),
            "259:1048575"
        );
    }
}
