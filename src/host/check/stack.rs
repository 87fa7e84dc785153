//! What lies between a system's root filesystem and its disks, found on the running system
//! (`/proc/self/mountinfo`, then sysfs's `slaves/`) or in a system tree that is not running
//! (its `/etc/fstab`, `/etc/crypttab` and `/etc/mdadm/mdadm.conf`). Pure functions over
//! text and a sysfs directory, so tests give them fixtures.

use crate::storage_names::{lv_of_path, parse_conf, split_dm_name};
use std::path::{Path, PathBuf};

/// One layer of the root's stack, from the filesystem down to the disks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// The root filesystem, by type, and where it is mounted from.
    Filesystem { fstype: String, source: String },
    /// A dm-crypt mapping (LUKS or plain), by its mapped name.
    Crypt { name: String },
    /// An LVM logical volume.
    Lvm { vg: String, lv: String },
    /// An MD RAID array, with its level when known.
    Md { name: String, level: Option<String> },
    /// Another device-mapper device (multipath, integrity, a bare table).
    DeviceMapper { name: String, kind: String },
    /// A filesystem over the network (nfs, cifs...).
    Network { fstype: String },
    /// A filesystem spanning several devices (btrfs).
    MultiDevice { fstype: String, devices: usize },
    /// A disk or partition, with the kernel modules of its driver chain (the disk's
    /// driver, its controller's, and so on; built-in drivers have none).
    Disk { name: String, modules: Vec<String> },
}

/// Filesystems that live on no local device.
const NETWORK: &[&str] = &["nfs", "nfs4", "cifs", "smb3", "ceph", "glusterfs", "iscsi"];
/// A bound on the depth of a stack (crypt on LVM on MD on partitions is 4) and on the
/// devices of one layer.
const MAX_DEPTH: usize = 16;
const MAX_SLAVES: usize = 256;
/// A bound on the lines of a configuration file read.
const MAX_LINES: usize = 10_000;

/// The mount of `/` in a mountinfo text: (major, minor, fstype, source). The last line for
/// `/` wins, as the last mount there is the one seen.
pub fn root_mount(mountinfo: &str) -> Option<(u32, u32, String, String)> {
    mountinfo
        .lines()
        .take(MAX_LINES)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            if fields.get(4) != Some(&"/") {
                return None;
            }
            let (major, minor) = fields.get(2)?.split_once(':')?;
            Some((
                major.parse().ok()?,
                minor.parse().ok()?,
                (*fields.get(dash + 1)?).to_owned(),
                (*fields.get(dash + 2)?).to_owned(),
            ))
        })
        .last()
}

/// The stack of the running system's root: its mount, then the block device's layers in
/// `sys` (a sysfs root: `/sys`, or a fixture).
pub fn running(mountinfo: &str, sys: &Path) -> Result<Vec<Layer>, String> {
    let (major, minor, fstype, source) =
        root_mount(mountinfo).ok_or("no mount of / in mountinfo")?;
    let mut stack = vec![Layer::Filesystem {
        fstype: fstype.clone(),
        source: source.clone(),
    }];
    if NETWORK.contains(&fstype.as_str()) {
        stack.push(Layer::Network { fstype });
        return Ok(stack);
    }
    if fstype == "btrfs" {
        let devices = btrfs_devices(sys, &source);
        if devices > 1 {
            stack.push(Layer::MultiDevice {
                fstype: fstype.clone(),
                devices,
            });
        }
    }
    // btrfs and other filesystems on anonymous numbers (major 0) name their device in
    // the source.
    let dir = if major == 0 {
        // A shared directory, or a root in memory: no device below.
        if matches!(fstype.as_str(), "9p" | "virtiofs" | "tmpfs" | "overlay") {
            return Ok(stack);
        }
        let name = source.strip_prefix("/dev/").ok_or_else(|| {
            format!("the root ({fstype} from {source}) is on no block device this can follow")
        })?;
        sys.join("class/block").join(name)
    } else {
        sys.join(format!("dev/block/{major}:{minor}"))
    };
    layers_of(&dir, 0, &mut stack)?;
    Ok(stack)
}

/// How many devices the btrfs filesystem mounted from `source` spans, from
/// `fs/btrfs/*/devices` (0 when it cannot be told).
fn btrfs_devices(sys: &Path, source: &str) -> usize {
    let device = source.trim_start_matches("/dev/");
    let Ok(filesystems) = std::fs::read_dir(sys.join("fs/btrfs")) else {
        return 0;
    };
    for fs in filesystems.flatten().take(MAX_SLAVES) {
        let devices: Vec<String> = std::fs::read_dir(fs.path().join("devices"))
            .map(|d| {
                d.flatten()
                    .take(MAX_SLAVES)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if devices.iter().any(|d| d == device) {
            return devices.len();
        }
    }
    0
}

fn read(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.trim().to_owned())
}

/// The layers of the block device whose sysfs directory is `dir`, then of each device it
/// is made of (`slaves/`), depth first.
fn layers_of(dir: &Path, depth: usize, stack: &mut Vec<Layer>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("a stack deeper than {MAX_DEPTH} layers"));
    }
    let dir =
        std::fs::canonicalize(dir).map_err(|e| format!("cannot follow {}: {e}", dir.display()))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(uuid) = read(&dir.join("dm/uuid")) {
        let mapped = read(&dir.join("dm/name")).unwrap_or_else(|| name.clone());
        let layer = device_mapper_layer(&mapped, &uuid);
        // A linear or striped LV maps straight onto its PVs; one made of other LVs (a thin
        // pool, a snapshot's origin, RAID images, a cache) needs lvm2's other targets.
        stack.push(
            if matches!(layer, Layer::Lvm { .. }) && on_other_lvs(&dir) {
                Layer::DeviceMapper {
                    name: mapped,
                    kind: "an LVM LV built on other LVs: thin, snapshot, RAID, cache or mirror"
                        .into(),
                }
            } else {
                layer
            },
        );
    } else if let Some(level) = read(&dir.join("md/level")) {
        stack.push(Layer::Md {
            name: name.clone(),
            level: Some(level),
        });
    }
    let slaves: Vec<PathBuf> = std::fs::read_dir(dir.join("slaves"))
        .map(|d| d.flatten().take(MAX_SLAVES).map(|e| e.path()).collect())
        .unwrap_or_default();
    if slaves.is_empty() {
        stack.push(Layer::Disk {
            name,
            modules: driver_modules(&dir),
        });
        return Ok(());
    }
    let mut slaves = slaves;
    slaves.sort();
    for slave in slaves {
        layers_of(&slave, depth + 1, stack)?;
    }
    Ok(())
}

/// Whether a device's slaves include an LVM device.
fn on_other_lvs(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("slaves"))
        .map(|d| {
            d.flatten()
                .take(MAX_SLAVES)
                .any(|s| read(&s.path().join("dm/uuid")).is_some_and(|u| u.starts_with("LVM-")))
        })
        .unwrap_or(false)
}

/// A device-mapper device as its DM UUID's prefix says: cryptsetup's `CRYPT-`, lvm2's
/// `LVM-`, or another target.
fn device_mapper_layer(name: &str, uuid: &str) -> Layer {
    if uuid.starts_with("CRYPT-") {
        return Layer::Crypt {
            name: name.to_owned(),
        };
    }
    if uuid.starts_with("LVM-") {
        if let Some((vg, lv)) = split_dm_name(name) {
            return Layer::Lvm { vg, lv };
        }
    }
    Layer::DeviceMapper {
        name: name.to_owned(),
        kind: uuid.split('-').next().unwrap_or("dm").to_owned(),
    }
}

/// The kernel modules of a block device's driver chain: for the device and each parent
/// that has a driver, the module behind it (`driver/module`); built-in drivers have none.
fn driver_modules(block: &Path) -> Vec<String> {
    let mut modules = Vec::new();
    // A partition's driver is its disk's.
    let mut dir = if block.join("partition").exists() {
        block.parent().map(Path::to_path_buf)
    } else {
        Some(block.to_path_buf())
    }
    .map(|d| d.join("device"));
    for _ in 0..MAX_DEPTH {
        let Some(current) = dir.as_ref().and_then(|d| std::fs::canonicalize(d).ok()) else {
            break;
        };
        if let Ok(module) = std::fs::read_link(current.join("driver/module")) {
            if let Some(name) = module.file_name() {
                let name = name.to_string_lossy().into_owned();
                if !modules.contains(&name) {
                    modules.push(name);
                }
            }
        }
        dir = current.parent().map(Path::to_path_buf);
        if current.file_name().is_some_and(|n| n == "devices") {
            break;
        }
    }
    modules
}

/// The stack of a system tree that is not running, from its configuration: `None` when its
/// fstab names no root. `resolve` turns `UUID=`/`LABEL=`/`PARTUUID=` and device paths into
/// this machine's sysfs device directory when it has the device (a tree being set up on
/// its own disk); the rest is told from the names.
pub fn tree(
    fstab: &str,
    crypttab: &str,
    mdadm_conf: &str,
    resolve: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<Option<Vec<Layer>>, String> {
    let Some((source, fstype)) = fstab_root(fstab) else {
        return Ok(None);
    };
    let mut stack = vec![Layer::Filesystem {
        fstype: fstype.clone(),
        source: source.clone(),
    }];
    if NETWORK.contains(&fstype.as_str()) || source.contains(":/") {
        stack.push(Layer::Network { fstype });
        return Ok(Some(stack));
    }
    if let Some(dir) = resolve(&source) {
        layers_of(&dir, 0, &mut stack)?;
        return Ok(Some(stack));
    }
    let crypt_names = crypttab_names(crypttab);
    if let Some(name) = source.strip_prefix("/dev/mapper/") {
        if crypt_names.iter().any(|c| c == name) {
            stack.push(Layer::Crypt {
                name: name.to_owned(),
            });
        } else if let Some((vg, lv)) = split_dm_name(name) {
            stack.push(Layer::Lvm { vg, lv });
        } else {
            stack.push(Layer::DeviceMapper {
                name: name.to_owned(),
                kind: "dm".into(),
            });
        }
    } else if let Some(rest) = source.strip_prefix("/dev/") {
        if rest.starts_with("md") {
            stack.push(Layer::Md {
                name: rest.trim_start_matches("md/").to_owned(),
                level: None,
            });
        } else if let Some((vg, lv)) = lv_of_path(&source) {
            stack.push(Layer::Lvm { vg, lv });
        }
    } else {
        // UUID=, LABEL=, PARTUUID= of a device this machine does not have: what lies
        // beneath cannot be seen, but the configuration says what the system assembles
        // at boot, and a root among those would not come up.
        for array in mdadm_arrays(mdadm_conf) {
            stack.push(Layer::Md {
                name: array,
                level: None,
            });
        }
        for name in crypt_names {
            stack.push(Layer::Crypt { name });
        }
    }
    Ok(Some(stack))
}

/// fstab's `/` entry: (source, fstype).
pub fn fstab_root(fstab: &str) -> Option<(String, String)> {
    fstab
        .lines()
        .take(MAX_LINES)
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let source = fields.next()?;
            let target = fields.next()?;
            let fstype = fields.next().unwrap_or("auto");
            (target == "/").then(|| (source.to_owned(), fstype.to_owned()))
        })
}

/// The mapped names crypttab sets up.
pub fn crypttab_names(crypttab: &str) -> Vec<String> {
    crypttab
        .lines()
        .take(MAX_LINES)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The arrays mdadm.conf assembles (`ARRAY /dev/md/NAME ...`), by name.
pub fn mdadm_arrays(conf: &str) -> Vec<String> {
    parse_conf(conf)
        .into_iter()
        .filter_map(|array| array.devname)
        .map(|dev| {
            dev.trim_start_matches("/dev/")
                .trim_start_matches("md/")
                .to_owned()
        })
        .collect()
}
