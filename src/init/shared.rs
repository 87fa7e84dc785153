//! Roots that are a directory of the host, shared into a VM over virtio: 9p
//! (`rootfstype=9p root=TAG`, qemu's `-virtfs`) and virtiofs (`rootfstype=virtiofs
//! root=TAG`, qemu's `vhost-user-fs` with a virtiofsd). There is no block device to find:
//! the root is the transport's tag, and it is there once the transport's driver has bound
//! the virtio device that carries it.
//!
//! And the writable layer a read-only root may get (`rd.overlay`, or systemd's
//! `systemd.volatile=overlay`): overlayfs with the root as its lower layer and a tmpfs as
//! its upper, so that the booted system may write anywhere and the shared directory is
//! never touched. Both layers stay reachable in the booted system under /run/baton.
//!
//! The choices of options are pure functions, tested below; the mounts are tested by
//! booting (tests/boot_shared.rs).

use crate::transport::Transport;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use std::path::Path;

/// The largest 9p message the virtio transport takes on Debian's 6.1 (125 pages of the
/// virtqueue, minus headers); later kernels take more but cap larger requests to their own
/// limit with a warning, so this is the largest that is quiet everywhere. Larger messages
/// mean fewer round trips for every read.
const NINEP_MSIZE: u32 = 512_000;

/// The longest tag: virtiofs's is 36 bytes (`VIRTIO_FS_TAG_LEN`), 9p's is longer.
const MAX_TAG: usize = 36;

/// Whether `tag` can be a transport's tag: printable, without the separators of mount
/// options and the command line.
pub fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= MAX_TAG
        && tag
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b',' && b != b'"' && b != b'/')
}

/// The mount data for the root: the transport's defaults, then `rootflags=` (the kernel
/// reads options in order, so the user's come last and win).
///
/// 9p: the 9P2000.L dialect (Linux permissions, ownership, device nodes), the largest
/// message size, and `cache=loose` for a read-only root (the kernel keeps what it read,
/// where the default rereads every page and every attribute over the transport: programs
/// start several times faster); a writable root is shared with the host as it runs, so it
/// keeps the coherent default.
pub fn mount_data(transport: Transport, read_only: bool, rootflags: &str) -> String {
    let defaults = match transport {
        Transport::NineP if read_only => {
            format!("trans=virtio,version=9p2000.L,msize={NINEP_MSIZE},cache=loose")
        }
        Transport::NineP => format!("trans=virtio,version=9p2000.L,msize={NINEP_MSIZE}"),
        Transport::Virtiofs => String::new(),
    };
    [defaults.as_str(), rootflags]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// Where sysfs lists the tags of the 9p channels the driver has bound, one file per device.
const NINEP_DEVICES: &str = "/sys/bus/virtio/drivers/9pnet_virtio";
/// Where kernels since 6.10 list virtiofs tags.
const VIRTIOFS_TAGS: &str = "/sys/fs/virtiofs";
/// A bound on the devices listed.
const MAX_DEVICES: usize = 4096;

/// The tags the host shares over `transport` now, as sysfs lists them; `None` when this
/// kernel does not list them (virtiofs before 6.10): then only a mount can tell.
pub fn present_tags(transport: Transport) -> Option<Vec<String>> {
    let (dir, file) = match transport {
        Transport::NineP => (NINEP_DEVICES, "mount_tag"),
        Transport::Virtiofs => (VIRTIOFS_TAGS, "tag"),
    };
    let entries = match crate::init::dirents::read_path(dir, MAX_DEVICES) {
        Ok(entries) => entries,
        // The 9p driver not loaded yet: no channel yet.
        Err(_) if transport == Transport::NineP => return Some(Vec::new()),
        Err(_) => return None,
    };
    Some(
        entries
            .iter()
            .filter_map(crate::init::dirents::Entry::name_str)
            .filter_map(|device| {
                crate::bounded::read_bounded(&format!("{dir}/{device}/{file}"), 256).ok()
            })
            .map(|bytes| tag_text(&bytes))
            .collect(),
    )
}

/// A tag as sysfs gives it: 9p's ends at a NUL (it is a raw buffer), virtiofs's at a newline.
fn tag_text(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|&b| b == 0 || b == b'\n')
        .unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}

/// Mounts the shared directory `tag` on `target`. `Ok(false)`: not there yet (no such tag).
pub fn try_mount(
    transport: Transport,
    tag: &str,
    target: &Path,
    read_only: bool,
    rootflags: Option<&str>,
) -> Result<bool> {
    let listed = present_tags(transport);
    if let Some(tags) = &listed {
        if !tags.iter().any(|t| t == tag) {
            return Ok(false);
        }
    }
    let (flags, data) = crate::init::root_mount::root_mount_options(read_only, rootflags);
    let data = mount_data(transport, flags.contains(MsFlags::MS_RDONLY), &data);
    let kernel_log = crate::init::kmsg::Tail::start();
    match mount(
        Some(tag),
        target,
        Some(transport.fstype()),
        flags,
        Some(data.as_str()),
    ) {
        Ok(()) => Ok(true),
        // No such tag (yet), on either transport. 9p lists a device's tag in sysfs in the
        // middle of its probe, before the channel joins the list a mount looks in ("no
        // channels available for device"; a CI run caught that window). virtiofs on
        // kernels that do not list tags says ENOENT or ENODEV, and before 6.10 EINVAL
        // ("virtio-fs: tag <...> not found"), which a device still being probed on
        // another CPU gives too.
        Err(Errno::ENOENT) => Ok(false),
        Err(Errno::ENODEV) if transport == Transport::Virtiofs => Ok(false),
        Err(Errno::EINVAL) if transport == Transport::Virtiofs && listed.is_none() => Ok(false),
        Err(errno) => {
            let said = crate::init::kmsg::Tail::said(kernel_log);
            bail!(
                "failed to mount the host's directory {tag} ({}, options {data}) on {}: {}{said}",
                transport.fstype(),
                target.display(),
                errno.desc()
            )
        }
    }
}

/// Where the overlay's layers live: under /run, which the booted system inherits, so that
/// it can still reach the pristine root and see what it changed.
pub const LOWER: &str = "/run/baton/lower";
pub const LAYER: &str = "/run/baton/overlay";

/// The overlay's mount data for a lower layer at `lower` and a tmpfs at `layer`.
pub fn overlay_data(lower: &str, layer: &str) -> String {
    format!("lowerdir={lower},upperdir={layer}/upper,workdir={layer}/work")
}

/// Turns the root mounted on `target` into an overlay over it: the root moves to
/// [`LOWER`], a tmpfs at [`LAYER`] takes the changes, and the overlay takes `target`.
pub fn overlay_root(target: &Path) -> Result<()> {
    for dir in [LOWER, LAYER] {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {dir}"))?;
    }
    mount(
        Some(target),
        LOWER,
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "failed to move the root from {} to {LOWER}",
            target.display()
        )
    })?;
    let result = mount(
        Some("tmpfs"),
        LAYER,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=755"),
    )
    .with_context(|| format!("failed to mount a tmpfs on {LAYER}"))
    .and_then(|()| mount_overlay(target));
    if result.is_err() {
        // Back as it was, so that a retry after the rescue shell starts from the root on
        // `target` rather than stacking another layer.
        let _ = nix::mount::umount2(LAYER, nix::mount::MntFlags::MNT_DETACH);
        let _ = mount(
            Some(LOWER),
            target,
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        );
    }
    result
}

/// The overlay itself, once its layers are in place.
fn mount_overlay(target: &Path) -> Result<()> {
    for dir in ["upper", "work"] {
        let path = format!("{LAYER}/{dir}");
        std::fs::create_dir(&path).with_context(|| format!("failed to create {path}"))?;
    }
    // The upper layer's top is the root's top: same owner and mode as the lower one.
    if let Ok(meta) = std::fs::metadata(LOWER) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let upper = format!("{LAYER}/upper");
        let _ = std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(meta.mode()));
        let _ = std::os::unix::fs::chown(&upper, Some(meta.uid()), Some(meta.gid()));
    }
    let data = overlay_data(LOWER, LAYER);
    let kernel_log = crate::init::kmsg::Tail::start();
    if let Err(errno) = mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    ) {
        bail!(
            "failed to mount the writable overlay on {} ({data}): {}{}",
            target.display(),
            errno.desc(),
            crate::init::kmsg::Tail::said(kernel_log)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfstype_names_one_transport() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Transport::from_rootfstype(&v(&["9p"])),
            Some(Transport::NineP)
        );
        assert_eq!(
            Transport::from_rootfstype(&v(&["virtiofs"])),
            Some(Transport::Virtiofs)
        );
        assert_eq!(Transport::from_rootfstype(&v(&["ext4"])), None);
        assert_eq!(Transport::from_rootfstype(&v(&["9p", "ext4"])), None);
        assert_eq!(Transport::from_rootfstype(&[]), None);
    }

    #[test]
    fn tags() {
        assert!(is_valid_tag("hostroot"));
        assert!(is_valid_tag("root-1_x.y"));
        for bad in ["", "a,b", "a b", "a/b", "\"a\"", &"x".repeat(37), "a\u{e9}"] {
            assert!(!is_valid_tag(bad), "{bad:?}");
        }
        assert_eq!(tag_text(b"hostroot\0\0\0"), "hostroot");
        assert_eq!(tag_text(b"fs1\n"), "fs1");
        assert_eq!(tag_text(b""), "");
    }

    #[test]
    fn mount_data_puts_the_users_options_last() {
        assert_eq!(
            mount_data(Transport::NineP, true, ""),
            "trans=virtio,version=9p2000.L,msize=512000,cache=loose"
        );
        assert_eq!(
            mount_data(Transport::NineP, false, "cache=mmap"),
            "trans=virtio,version=9p2000.L,msize=512000,cache=mmap"
        );
        assert_eq!(mount_data(Transport::Virtiofs, true, ""), "");
        assert_eq!(mount_data(Transport::Virtiofs, false, "dax"), "dax");
    }

    #[test]
    fn overlay_layers() {
        assert_eq!(
            overlay_data(LOWER, LAYER),
            "lowerdir=/run/baton/lower,upperdir=/run/baton/overlay/upper,workdir=/run/baton/overlay/work"
        );
    }
}
