//! `baton update [-k KVER|all] [--root DIR]`: writes `/boot/initrd.img-KVER` for the
//! installed kernels, as /etc/baton/baton.conf (and conf.d) says, the way initramfs-tools'
//! `update-initramfs` does for its own. The kernel packages' hooks call it; so can people.
//! Each image is written to a temporary name and renamed, so a failed build leaves the old
//! image in place and says why.

use crate::host::image::build::{build, BuildOptions, BuildReport};
use crate::host::installed::{build_options, installed_kernels, read_config};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Which kernels to write images for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kernels {
    All,
    One(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOptions {
    pub kernels: Kernels,
    /// The system to update: `/`, or a tree (a chroot, an image being built).
    pub root: PathBuf,
    /// `-o PATH`: write the one kernel's image there instead of /boot/initrd.img-KVER (for
    /// systemd's kernel-install, which collects it in a staging directory).
    pub output: Option<PathBuf>,
    pub mtime: u32,
}

/// Writes the images; returns each kernel with what was written.
pub fn run(opts: &UpdateOptions) -> Result<Vec<(String, BuildReport)>> {
    if opts.output.is_some() && opts.kernels == Kernels::All {
        bail!("-o PATH writes one image: name its kernel with -k KVER");
    }
    let config = read_config(&opts.root)?;
    let installed = installed_kernels(&opts.root)?;
    let kernels = match &opts.kernels {
        Kernels::All => installed,
        Kernels::One(kver) => {
            if !opts.root.join(format!("lib/modules/{kver}")).is_dir() {
                bail!(
                    "kernel {kver} is not installed: {} does not exist",
                    opts.root.join(format!("lib/modules/{kver}")).display()
                );
            }
            vec![kver.clone()]
        }
    };
    let mut written = Vec::new();
    for kver in kernels {
        let mut options = build_options(&config, &opts.root, &kver, opts.mtime)?;
        if let Some(output) = &opts.output {
            options.output = output.clone();
        }
        let report = build_checked(&opts.root, &kver, options)?;
        written.push((kver, report));
    }
    Ok(written)
}

/// Builds the image beside its place, checks that it can bring up the root of the
/// system at `root` (baton::host::check), and only then puts it in place: an image that could
/// not would leave the machine unbootable, so the old one stays, and the error says why,
/// one line per layer.
fn build_checked(root: &Path, kver: &str, mut options: BuildOptions) -> Result<BuildReport> {
    let target = options.output.clone();
    let aside = crate::host::image::build::sibling(&target, "checking")?;
    options.output = aside.clone();
    let kept = |what: String| {
        let _ = std::fs::remove_file(&aside);
        anyhow::anyhow!("{what} (the old image, if any, is unchanged)")
    };
    let report = build(&options)
        .map_err(|e| kept(format!("failed to write {}: {e:#}", target.display())))?;
    let checked = std::fs::read(&aside)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| {
            let caps = crate::host::check::command::capabilities_of(
                &bytes,
                &root.join(format!("lib/modules/{kver}")),
            )?;
            crate::host::check::command::findings(root, &caps)
        })
        .map_err(|e| kept(format!("not writing {}: {e:#}", target.display())))?;
    if let Some(findings) = checked {
        let failures = crate::host::check::command::failures(&findings);
        if !failures.is_empty() {
            return Err(kept(format!(
                "not writing {}: this image could not bring up the root of {}:\n  {}\n",
                target.display(),
                root.display(),
                failures.join("\n  ")
            )));
        }
    }
    crate::host::image::build::put_in_place(&aside, &target).map_err(|e| kept(format!("{e:#}")))?;
    Ok(report)
}
