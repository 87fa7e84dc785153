//! `baton run --rwdir/--rodir/--overlay-rwdir`: the host's further directories, mounted in
//! the new root before the command starts. They come over the root's own transport, each
//! under its own tag. A read-only one is read-only on the host's side already (qemu or
//! virtiofsd refuses writes); mounting it read-only here just makes writes fail early.
//!
//! Mounted after the switch, so a path goes through the guest's symlinks as the command
//! would see them, never into what is left of the initramfs.

use crate::run_protocol::{Share, ShareKind};
use crate::transport::Transport;
use anyhow::Result;
use nix::mount::{mount, MsFlags};
use std::path::Path;

/// Mounts every share, in order (a later one may lie inside an earlier one).
pub fn mount_all(shares: &[Share], transport: Transport) -> Result<()> {
    for share in shares {
        if let Err(e) = mount_one(share, transport) {
            anyhow::bail!(
                "cannot mount the host's directory {} on {}: {e}",
                share.tag,
                Path::new(&share.guest).display()
            );
        }
    }
    Ok(())
}

/// Why a step failed, in words: one error type for all of them keeps the init small.
fn failed<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn mount_one(share: &Share, transport: Transport) -> Result<(), String> {
    let target = Path::new(&share.guest);
    std::fs::create_dir_all(target).map_err(failed("cannot create the mount point"))?;
    match share.kind {
        ShareKind::ReadWrite => mount_tag(share, transport, target, false),
        ShareKind::ReadOnly => mount_tag(share, transport, target, true),
        ShareKind::Overlay => {
            // The overlay's layers live in a tmpfs on the mount point itself, which the
            // overlay then covers: nothing is created anywhere else in the guest.
            mount(
                Some("tmpfs"),
                target,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=755"),
            )
            .map_err(failed("cannot mount a tmpfs for the overlay's layers"))?;
            let lower = target.join("lower");
            for dir in ["lower", "upper", "work"] {
                std::fs::create_dir(target.join(dir))
                    .map_err(failed("cannot create the overlay's layer"))?;
            }
            mount_tag(share, transport, &lower, true)?;
            let layers = target.display().to_string();
            let data = crate::init::shared::overlay_data(&format!("{layers}/lower"), &layers);
            mount(
                Some("overlay"),
                target,
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .map_err(failed("cannot mount the overlay"))
        }
    }
}

fn mount_tag(
    share: &Share,
    transport: Transport,
    target: &Path,
    read_only: bool,
) -> Result<(), String> {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    let data = crate::init::shared::mount_data(transport, read_only, "");
    let attempt = || {
        mount(
            Some(share.tag.as_str()),
            target,
            Some(transport.fstype()),
            flags,
            Some(data.as_str()),
        )
    };
    // A share's device may still be in its probe, its tag not yet among the channels a
    // mount looks in (ENOENT, as for the root): it gets a second's grace, in 10 ms steps.
    let mut result = attempt();
    for _ in 0..SHARE_GRACE_STEPS {
        if result != Err(nix::errno::Errno::ENOENT) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        result = attempt();
    }
    result.map_err(|e| format!("{} mount failed: {}", transport.fstype(), e.desc()))
}

/// How many 10 ms waits a share whose tag is not there yet gets.
const SHARE_GRACE_STEPS: u32 = 100;
