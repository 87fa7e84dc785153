//! Which kernel `baton run` boots and with which modules: an image or a kernel tree after
//! `make`, its release read from it, its modules from the tree, `--modules-dir` or
//! /lib/modules.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The kernel's release (`6.1.0-57-amd64`) from its image: a bzImage's header names it
/// (boot protocol 2.00+: the `kernel_version` pointer at 0x20e); an ELF vmlinux carries
/// the banner `Linux version RELEASE (...`.
pub fn kernel_release(image: &[u8]) -> Option<String> {
    let word = |bytes: &[u8]| {
        let end = bytes
            .iter()
            .position(|&b| b == 0 || b == b' ')
            .unwrap_or(bytes.len());
        std::str::from_utf8(bytes.get(..end)?)
            .ok()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if image.get(0x202..0x206) == Some(b"HdrS") {
        let offset = u16::from_le_bytes(image.get(0x20e..0x210)?.try_into().ok()?);
        let at = 0x200 + usize::from(offset);
        return word(image.get(at..at.checked_add(256)?.min(image.len()))?);
    }
    let banner = b"Linux version ";
    let at = image.windows(banner.len()).position(|w| w == banner)? + banner.len();
    word(image.get(at..at.checked_add(256)?.min(image.len()))?)
}

/// The kernel image, its release (read from it), and its modules: `--modules-dir`, else
/// the tree's own when `--kernel` names a kernel tree after `make`, else the installed
/// /lib/modules/RELEASE.
pub(super) fn kernel_and_modules(
    kernel: Option<&Path>,
    modules_dir: Option<&Path>,
) -> Result<(PathBuf, String, PathBuf)> {
    let given = match kernel {
        Some(kernel) => kernel.to_path_buf(),
        None => default_kernel()?,
    };
    let tree = given.is_dir().then_some(given.as_path());
    let image = match tree {
        Some(tree) => tree_kernel(tree)?,
        None => given.clone(),
    };
    let release = crate::host::run_cache::release_of(&image, || {
        let kernel = std::fs::read(&image)
            .with_context(|| format!("cannot read the kernel {}", image.display()))?;
        kernel_release(&kernel).with_context(|| {
            format!(
                "{} does not look like a Linux kernel image (no version in it)",
                image.display()
            )
        })
    })?;
    if !crate::host::run_cache::valid_release(&release) {
        bail!(
            "{}: the kernel's release {release:?} is not a plain file name; refusing to use it in paths",
            image.display()
        );
    }
    let modules = match (modules_dir, tree) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(tree)) => tree.to_path_buf(),
        (None, None) => {
            let installed = PathBuf::from("/lib/modules").join(&release);
            if !installed.is_dir() {
                bail!(
                    "no modules for {release} in /lib/modules: pass --modules-dir DIR (the kernel's lib/modules/{release})"
                );
            }
            installed
        }
    };
    Ok((image, release, modules))
}

/// Without `--kernel`: the current directory when it is a kernel tree after `make`, as
/// virtme-ng does, else the kernel this machine runs.
fn default_kernel() -> Result<PathBuf> {
    let here = PathBuf::from(".");
    if here.join("Makefile").is_file() && tree_kernel(&here).is_ok() {
        return Ok(here);
    }
    let release = nix::sys::utsname::uname()
        .context("uname failed")?
        .release()
        .to_string_lossy()
        .into_owned();
    let running = PathBuf::from(format!("/boot/vmlinuz-{release}"));
    if !running.is_file() {
        bail!(
            "no --kernel, the current directory is no kernel tree, and {} is missing",
            running.display()
        );
    }
    Ok(running)
}

/// The image `make` leaves in a kernel tree: the ELF vmlinux when it has a PVH entry (qemu
/// boots it directly), else the bzImage, else a vmlinux without one.
pub fn tree_kernel(tree: &Path) -> Result<PathBuf> {
    let vmlinux = tree.join("vmlinux");
    if crate::host::vm::pvh::file_has_pvh_entry(&vmlinux) {
        return Ok(vmlinux);
    }
    let candidates = [tree.join("arch/x86/boot/bzImage"), vmlinux];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "{} holds no kernel: neither arch/x86/boot/bzImage nor vmlinux (run make there first)",
                tree.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_from_bzimage_headers_and_banners() {
        let mut bz = vec![0u8; 0x400];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        let version = b"6.1.0-57-amd64 (debian-kernel@lists.debian.org)";
        bz[0x300..0x300 + version.len()].copy_from_slice(version);
        assert_eq!(kernel_release(&bz).as_deref(), Some("6.1.0-57-amd64"));
        let elf = b"\x7fELF....Linux version 6.12.117+deb12-amd64 (debian-kernel@lists".to_vec();
        assert_eq!(
            kernel_release(&elf).as_deref(),
            Some("6.12.117+deb12-amd64")
        );
        assert_eq!(kernel_release(b"not a kernel"), None);
        // A header pointing past the end is no release, not a panic.
        bz[0x20e..0x210].copy_from_slice(&0xffffu16.to_le_bytes());
        assert_eq!(kernel_release(&bz[..0x400]), None);
    }
}
