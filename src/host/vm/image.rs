//! The image of `baton run`: built once per kernel, modules and transport and kept in the
//! cache, with the run's spec put before it in each run's initrd.

use crate::host::image::build::{build, BuildOptions, FirmwareSource};
use crate::run_protocol::Spec;
use crate::transport::Transport;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The modules every image carries: the virtio bus, the overlay, the ports. Those built
/// into a kernel are simply not there.
const MODULES: &[&str] = &["virtio_pci", "overlay", "virtio_console"];

/// The modules a run's image carries: [`MODULES`], the transport's, the disks' driver when
/// there are disks, the network card's with a network. Each set is an image of its own in the cache: a module
/// left out is one the VM does not spend time loading.
pub(super) fn modules_for(transport: Transport, disks: bool, network: bool) -> Vec<&'static str> {
    let mut modules = MODULES.to_vec();
    modules.extend(transport.modules());
    if disks {
        modules.push("virtio_blk");
    }
    if network {
        modules.push("virtio_net");
    }
    modules
}

/// Builds the image for `modules`, or takes it from the cache (see baton::host::run_cache). A
/// cache that is not private is not used at all: the image is then built into `scratch`,
/// the run's own private directory, with a warning that says why.
pub(super) fn image_for(
    modules: &Path,
    carried: &[&str],
    release: &str,
    scratch: &Path,
) -> Result<PathBuf> {
    let init_path = crate::host::image::build::find_init(None)?;
    let init = std::fs::read(&init_path)
        .with_context(|| format!("cannot read the init {}", init_path.display()))?;
    let dir = crate::host::run_cache::dir();
    let image = match crate::host::run_cache::private_dir(&dir) {
        Ok(()) => {
            let key = crate::host::run_cache::key(&init, carried, modules, release);
            let image = dir.join(format!("{release}-{key:016x}.img"));
            if crate::host::run_cache::trusted(&image) {
                return Ok(image);
            }
            // Whatever is there is not ours as we left it: built again.
            let _ = std::fs::remove_file(&image);
            image
        }
        Err(e) => {
            crate::host::detect::warn(&format!(
                "not using the image cache: {e:#}; building this run's image afresh"
            ));
            scratch.join("image.img")
        }
    };
    let opts = BuildOptions {
        modules_dir: Some(modules.to_path_buf()),
        modules: carried.iter().map(|m| m.to_string()).collect(),
        init: Some(init_path),
        // A VM's virtio devices need no firmware, and the CPU no microcode.
        firmware_dir: FirmwareSource::None,
        ..BuildOptions::new(image.clone(), 0)
    };
    build(&opts).with_context(|| format!("failed to build the image for {release}"))?;
    Ok(image)
}

/// The small archive with the command's spec, put before the image.
pub(super) fn command_archive(spec: &Spec) -> Result<Vec<u8>> {
    let mut image = crate::host::image::entry::Image::new();
    image
        .insert(
            crate::run_protocol::COMMAND_FILE,
            crate::host::image::entry::Entry::file(0o644, crate::run_protocol::spec_file(spec)),
        )
        .map_err(|e| anyhow::anyhow!("{}", e.0))?;
    crate::host::image::newc::write(&image, 0).context("failed to write the command's archive")
}

/// The initrd: the command's archive, then the cached image.
pub(super) fn write_initrd(spec: &Spec, image: &Path, work: &Path) -> Result<PathBuf> {
    let initrd = work.join("initrd.img");
    // The command's archive goes first: the kernel reads an uncompressed archive before a
    // compressed one on every version, where one appended after an lz4 stream was refused
    // by Debian's 6.12 ("invalid magic at start of compressed archive").
    let mut bytes = command_archive(spec)?;
    bytes.extend(
        std::fs::read(image).with_context(|| format!("failed to read {}", image.display()))?,
    );
    std::fs::write(&initrd, bytes)
        .with_context(|| format!("failed to write {}", initrd.display()))?;
    Ok(initrd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    #[test]
    fn the_command_archive_holds_the_command() {
        let command: Vec<OsString> = ["sh", "-c", "echo \"a b\""]
            .iter()
            .map(OsString::from)
            .collect();
        let archive = command_archive(&Spec {
            command,
            ..Spec::default()
        })
        .unwrap();
        let listing = crate::host::image::inspect::read_image_with(
            &archive,
            &crate::host::image::compress::Limits::DEFAULT,
        )
        .unwrap();
        let text = format!("{listing:?}");
        assert!(text.contains("etc/baton/run"), "{text}");
    }
}
