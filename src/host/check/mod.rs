//! `baton check [--root DIR] [-k KVER] [IMAGE]`: whether an image can bring up this
//! system's root, layer by layer, and what to do about each layer it cannot. `baton update`
//! runs the same check on the image it has just built, before that image replaces the one
//! in /boot: an image that would stop at "root device did not appear" never replaces one
//! that booted.

pub mod command;
pub mod stack;

pub use stack::Layer;
use std::collections::BTreeSet;

/// What one layer needs of the image, and whether the image has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    /// One line: the layer, and what is wrong and what to do, or why it is fine.
    pub line: String,
}

/// What an image brings: its modules and their aliases, and the kernel's built-in ones.
#[derive(Debug, Default, Clone)]
pub struct Capabilities {
    pub modules: BTreeSet<String>,
    pub aliases: crate::manifest::AliasTable,
    pub builtin: BTreeSet<String>,
}

impl Capabilities {
    /// From an image's manifest text and the kernel's `modules.builtin`.
    pub fn new(manifest: &crate::manifest::Manifest, modules_builtin: &str) -> Capabilities {
        Capabilities {
            modules: manifest
                .modules
                .iter()
                .map(|m| normalize(&m.name))
                .collect(),
            aliases: manifest.aliases.clone(),
            builtin: builtin_names(modules_builtin),
        }
    }

    /// The module is in the image or built into the kernel.
    pub fn has_module(&self, name: &str) -> bool {
        let name = normalize(name);
        self.modules.contains(&name) || self.builtin.contains(&name)
    }

    /// The kernel can mount `fstype` with this image: its module is there (by name or by
    /// its `fs-TYPE` alias), or built in.
    pub fn has_filesystem(&self, fstype: &str) -> bool {
        let alias = format!("fs-{fstype}");
        // ext2 and ext3 are ext4's since Linux 4.3.
        let named = match fstype {
            "ext2" | "ext3" => "ext4",
            other => other,
        };
        self.has_module(named)
            || self
                .aliases
                .pairs()
                .any(|(pattern, module)| pattern == alias && self.has_module(module))
    }
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Module names from `modules.builtin` (`kernel/fs/ext4/ext4.ko` lines).
fn builtin_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .take(100_000)
        .filter_map(|l| l.rsplit('/').next())
        .filter_map(|f| f.split(".ko").next())
        .filter(|n| !n.is_empty())
        .map(normalize)
        .collect()
}

/// Whether baton's init can bring up a layer of this kind at all. The storage stack is
/// learnt layer by layer (device-mapper, LVM, MD, LUKS): each becomes `true` here when
/// the init can assemble it, and the check then lets it through.
fn supported(layer: &Layer) -> bool {
    match layer {
        Layer::Filesystem { .. }
        | Layer::Disk { .. }
        | Layer::Lvm { .. }
        | Layer::Md { .. }
        | Layer::Crypt { .. } => true,
        Layer::DeviceMapper { .. } | Layer::Network { .. } | Layer::MultiDevice { .. } => false,
    }
}

/// Why a layer [`supported`] refuses cannot come up, and what to do.
fn unsupported_line(layer: &Layer) -> String {
    match layer {
        Layer::DeviceMapper { name, kind } => format!(
            "root is on the device-mapper device {name} ({kind}): baton cannot set it up; {KEEP}"
        ),
        Layer::Network { fstype } => format!(
            "root is on the network ({fstype}): baton cannot mount a network root; {KEEP}"
        ),
        Layer::MultiDevice { fstype, devices } => format!(
            "root is a {fstype} filesystem on {devices} devices: baton does not gather a multi-device filesystem yet; {KEEP}"
        ),
        Layer::Filesystem { .. }
        | Layer::Disk { .. }
        | Layer::Lvm { .. }
        | Layer::Md { .. }
        | Layer::Crypt { .. } => String::new(),
    }
}

/// What to tell the user of a layer baton cannot bring up.
const KEEP: &str = "keep this system on its current initramfs generator (initramfs-tools or dracut) until baton supports it";

/// Every layer's finding, from the filesystem down.
pub fn judge(stack: &[Layer], image: &Capabilities) -> Vec<Finding> {
    stack.iter().map(|layer| finding(layer, image)).collect()
}

fn finding(layer: &Layer, image: &Capabilities) -> Finding {
    let fail = |line: String| Finding { ok: false, line };
    let pass = |line: String| Finding { ok: true, line };
    if !supported(layer) {
        return fail(unsupported_line(layer));
    }
    match layer {
        Layer::Filesystem { fstype, source } => {
            if matches!(fstype.as_str(), "9p" | "virtiofs") {
                pass(format!(
                    "filesystem {fstype} from {source}: a shared directory (rootfstype={fstype})"
                ))
            } else if image.has_filesystem(fstype) {
                pass(format!(
                    "filesystem {fstype} from {source}: the image or the kernel has it"
                ))
            } else {
                fail(format!(
                    "filesystem {fstype} from {source}: neither the image nor the kernel has it; add modules_add={fstype} to /etc/baton/baton.conf"
                ))
            }
        }
        Layer::Disk { name, modules } => {
            let missing: Vec<&str> = modules
                .iter()
                .filter(|m| !image.has_module(m))
                .map(String::as_str)
                .collect();
            if missing.is_empty() {
                pass(format!(
                    "disk {name}: its drivers are there ({})",
                    if modules.is_empty() {
                        "built in".to_owned()
                    } else {
                        modules.join(", ")
                    }
                ))
            } else {
                fail(format!(
                    "disk {name}: the image lacks its driver {}; use modules=generic or add modules_add={} to /etc/baton/baton.conf",
                    missing.join(", "),
                    missing.join(",")
                ))
            }
        }
        Layer::Crypt { name } => needs(
            image,
            &format!("encrypted volume {name} (LUKS)"),
            &["dm_crypt", "algif_skcipher"],
        ),
        Layer::Lvm { vg, lv } => {
            needs(image, &format!("LVM logical volume {vg}/{lv}"), &["dm_mod"])
        }
        Layer::Md { name, level } => {
            let personality = level
                .as_deref()
                .map(crate::host::detect::personality_module);
            let mut modules = vec!["md_mod"];
            modules.extend(personality.flatten());
            let what = match level {
                Some(level) => format!("MD RAID array {name} ({level})"),
                None => format!("MD RAID array {name}"),
            };
            needs(image, &what, &modules)
        }
        _ => pass(String::new()),
    }
}

/// A layer the init assembles itself, given the kernel's modules for it.
fn needs(image: &Capabilities, what: &str, modules: &[&str]) -> Finding {
    let missing: Vec<&str> = modules
        .iter()
        .copied()
        .filter(|m| !image.has_module(m))
        .collect();
    if missing.is_empty() {
        Finding {
            ok: true,
            line: format!("{what}: baton assembles it ({} there)", modules.join(", ")),
        }
    } else {
        Finding {
            ok: false,
            line: format!(
                "{what}: the image lacks {}; use modules=generic or add modules_add={} to /etc/baton/baton.conf",
                missing.join(", "),
                missing.join(",")
            ),
        }
    }
}

/// The stack of the system at `root`: the running one when `root` is `/` (and this is not
/// a chroot), else the tree's configuration (devices it names resolved through this machine's
/// /dev/disk links when they are here). `None` when there is nothing to check (a tree
/// without a root in its fstab).
pub fn discover(root: &std::path::Path) -> anyhow::Result<Option<Vec<Layer>>> {
    let sys = std::path::Path::new("/sys");
    if root == std::path::Path::new("/") {
        // In a chroot (a maintainer script run by debootstrap or an installer) no mount
        // of `/` is visible, or /proc is not there: the system is then the tree's, not the
        // running one.
        let mountinfo = crate::bounded::read_bounded("/proc/self/mountinfo", 4 << 20)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if stack::root_mount(&mountinfo).is_some() {
            return stack::running(&mountinfo, sys)
                .map(Some)
                .map_err(anyhow::Error::msg);
        }
    }
    let read = |path: &str| {
        crate::bounded::read_bounded(&root.join(path).display().to_string(), 1 << 20)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let resolve = |source: &str| resolve_on_this_machine(source);
    stack::tree(
        &read("etc/fstab"),
        &read("etc/crypttab"),
        &read("etc/mdadm/mdadm.conf"),
        &resolve,
    )
    .map_err(anyhow::Error::msg)
}

/// A root's source as this machine's sysfs device directory, when this machine has the
/// device (`/dev/disk/by-uuid/...` and the like, then `/sys/class/block/NAME`).
fn resolve_on_this_machine(source: &str) -> Option<std::path::PathBuf> {
    let link = match source.split_once('=') {
        Some(("UUID", v)) => format!("/dev/disk/by-uuid/{v}"),
        Some(("LABEL", v)) => format!("/dev/disk/by-label/{v}"),
        Some(("PARTUUID", v)) => format!("/dev/disk/by-partuuid/{}", v.to_lowercase()),
        Some(("PARTLABEL", v)) => format!("/dev/disk/by-partlabel/{v}"),
        _ if source.starts_with("/dev/") => source.to_owned(),
        _ => return None,
    };
    let node = std::fs::canonicalize(link).ok()?;
    let name = node
        .strip_prefix("/dev")
        .ok()?
        .to_str()?
        .trim_start_matches('/');
    if name.contains('/') {
        return None;
    }
    let dir = std::path::Path::new("/sys/class/block").join(name);
    dir.exists().then_some(dir)
}

#[cfg(test)]
mod tests;
