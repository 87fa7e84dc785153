//! Which modules go into the image, stored how, and what the manifest says of each: the
//! named ones, the host's or the storage set, with everything they need, in load order.

use super::options::{BuildOptions, ModuleCompression, Storage};
use crate::host::image::compress::Compression;
use crate::host::image::entry::{Entry, Image};
use crate::host::image::firmware::{self, Search};
use crate::host::modules::config::KernelConfig;
use crate::host::modules::order::{self, Catalog};
use crate::host::modules::tree::ModuleTree;
use crate::manifest::{Manifest, ModuleEntry};
use crate::modules::modinfo::ModInfo;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;

/// What `--storage` carries: the drivers for the disks of virtual machines and PCs (virtio,
/// SATA/IDE, NVMe, SCSI disks and CD-ROMs, USB storage and its host controllers, SD/MMC,
/// Hyper-V, VMware and Xen disks), device-mapper, MD RAID and dm-crypt with the ciphers LUKS
/// volumes use, the keyboards a passphrase is typed on, the filesystems a root is made of, and a VM's shared
/// host directories (9p, virtiofs) with the overlay that makes them writable. At boot only those
/// the hardware and the root need are loaded. Paths are relative to the modules directory;
/// a trailing `/` takes a whole directory, otherwise the path is a file-name prefix.
pub const STORAGE: &[&str] = &[
    "kernel/drivers/ata/",
    "kernel/drivers/block/virtio_blk",
    "kernel/drivers/block/xen-blkfront",
    "kernel/drivers/nvme/host/nvme.",
    "kernel/drivers/nvme/host/nvme-core",
    "kernel/drivers/scsi/sd_mod",
    "kernel/drivers/scsi/sr_mod",
    "kernel/drivers/scsi/virtio_scsi",
    "kernel/drivers/scsi/vmw_pvscsi",
    "kernel/drivers/scsi/hv_storvsc",
    "kernel/drivers/scsi/xen-scsifront",
    "kernel/drivers/virtio/virtio_pci",
    "kernel/drivers/virtio/virtio_mmio",
    "kernel/drivers/mmc/core/",
    "kernel/drivers/mmc/host/sdhci",
    "kernel/drivers/usb/storage/",
    "kernel/drivers/usb/host/xhci-pci",
    "kernel/drivers/usb/host/ehci-pci",
    "kernel/drivers/usb/host/ohci-pci",
    "kernel/drivers/usb/host/uhci-hcd",
    "kernel/drivers/hv/hv_vmbus",
    // The stacks a root is built on: device-mapper (LVM's linear and striped LVs are in
    // dm-mod itself), MD RAID and its personalities.
    "kernel/drivers/md/dm-mod.",
    "kernel/drivers/md/md-mod.",
    "kernel/drivers/md/raid0.",
    "kernel/drivers/md/raid1.",
    "kernel/drivers/md/raid10.",
    "kernel/drivers/md/raid456.",
    "kernel/drivers/md/linear.",
    // LUKS: dm-crypt; the kernel's ciphers for the keyslots, through AF_ALG; the modes and
    // ciphers cryptsetup formats with (AES in XTS, or CBC with ESSIV for old volumes) and
    // the CPU's AES instructions.
    "kernel/drivers/md/dm-crypt.",
    "kernel/crypto/af_alg.",
    "kernel/crypto/algif_skcipher.",
    "kernel/crypto/xts.",
    "kernel/crypto/essiv.",
    "kernel/crypto/ecb.",
    "kernel/crypto/cbc.",
    "kernel/arch/x86/crypto/aesni-intel.",
    // The keyboards a passphrase is typed on: PS/2 (often built in) and USB HID behind the
    // host controllers above.
    "kernel/drivers/input/serio/i8042.",
    "kernel/drivers/input/keyboard/atkbd.",
    "kernel/drivers/hid/usbhid/",
    "kernel/drivers/hid/hid-generic.",
    "kernel/fs/ext4/",
    "kernel/fs/xfs/",
    "kernel/fs/btrfs/",
    "kernel/fs/fat/",
    "kernel/fs/f2fs/",
    "kernel/fs/squashfs/",
    // A host directory as the root (rootfstype=9p or virtiofs), its transports found by the
    // virtio device's alias; the writable layer over a read-only root (rd.overlay); the
    // virtio console, for baton.run's status port.
    "kernel/fs/9p/",
    "kernel/net/9p/9pnet.",
    "kernel/net/9p/9pnet_virtio",
    "kernel/fs/fuse/fuse.",
    "kernel/fs/fuse/virtiofs",
    "kernel/fs/overlayfs/",
    "kernel/drivers/char/virtio_console",
    // The tables a FAT root's `codepage=`/`iocharset=` options commonly name; the ones the
    // kernel's defaults need come with the filesystem anyway (modules::requests).
    "kernel/fs/nls/nls_cp437",
    "kernel/fs/nls/nls_utf8",
    "kernel/fs/nls/nls_ascii",
    "kernel/fs/nls/nls_iso8859-1",
];

/// `--storage=all` adds the server and SAN controllers: hardware RAID, SAS and Fibre Channel
/// HBAs (all of drivers/scsi), without what is not a disk (tapes, changers, enclosures, the
/// SCSI target and debug drivers) or needs a network stack (iSCSI and FCoE offload).
pub const STORAGE_ALL_EXTRA: &[&str] = &["kernel/drivers/scsi/"];
pub const STORAGE_ALL_EXCLUDED: &[&str] = &[
    "scsi_debug",
    "st",
    "ch",
    "ses",
    "sg",
    "tcm_qla2xxx",
    "be2iscsi",
    "bnx2i",
    "bnx2fc",
    "cxgb3i",
    "cxgb4i",
    "qedi",
    "qedf",
    "fcoe",
    "fnic",
    "csiostor",
    "iscsi_tcp",
    "libiscsi_tcp",
    "snic",
];

/// The firmware one module in the image declares.
pub(super) struct ModuleFirmware {
    pub(super) module: String,
    pub(super) names: Vec<String>,
    /// Named with `--module` or detected on the host (or needed by one that is): it will
    /// load, so missing firmware deserves a warning.
    pub(super) explicit: bool,
}

/// What adding the modules decided, for the steps after it.
pub(super) struct ModulesAdded {
    /// In load order.
    pub(super) modules: Vec<String>,
    /// The module set in effect (`Host` falls back to `Common` when it cannot detect).
    pub(super) storage: Storage,
    pub(super) firmware: Vec<ModuleFirmware>,
    /// How the kernel will look firmware up; none without modules.
    pub(super) search: Option<Search>,
    /// The config of the kernel the modules are for, when it could be found.
    pub(super) kernel_config: Option<KernelConfig>,
    /// That kernel's release (`6.1.0-57-amd64`).
    pub(super) release: Option<String>,
    /// Modules are packed one by one (`.ko.lz4`): the image needs no compression of its own.
    pub(super) packed: bool,
}

/// How every module of one image is stored and described.
struct Adding<'a> {
    release: &'a str,
    /// Module files stay compressed.
    keep: bool,
    /// When modules are packed with lz4 for the init to unpack (a generic image for a
    /// kernel that cannot decompress modules itself): the ones stored plain all the same.
    stored_plain: Option<BTreeSet<String>>,
    want_firmware: bool,
    /// Modules that load for certain (their missing firmware is worth a warning).
    explicit: BTreeSet<String>,
    in_image: BTreeSet<String>,
}

impl Adding<'_> {
    /// Whether `module` is stored packed with lz4 (`.ko.lz4`).
    fn packs(&self, module: &str) -> bool {
        self.stored_plain
            .as_ref()
            .is_some_and(|plain| !plain.contains(module))
    }
}

/// The modules a generic image stores plain while it packs the rest: those on the root's
/// known path (named with `--module`, the root-driver hint, the root's filesystem) with
/// everything they need. They load at every boot, and the kernel reads a plain module from
/// the image's own pages; a packed one is read and unpacked by the init first. Measured on
/// Debian's 6.1 under TCG (-smp 1, 15 boots each): a hinted generic image with everything
/// else packed reached `Run /init` 0.11 s sooner than the same image lz4-compressed whole
/// (1.90 s against 2.01 s; the kernel unpacked 14 MB instead of 29).
fn root_path_modules(tree: &mut ModuleTree, opts: &BuildOptions) -> Result<BTreeSet<String>> {
    let mut names: Vec<String> = opts.modules.clone();
    names.extend(opts.root_drivers.iter().cloned());
    if let Some(fs) = &opts.root_fs {
        names.push(fs.clone());
        names.push(format!("fs-{fs}"));
    }
    let mut known = Vec::new();
    for name in names {
        if let order::Lookup::Modules(_) = tree.lookup(&name)? {
            known.push(name);
        }
    }
    Ok(order::resolve(tree, &known)?.modules.into_iter().collect())
}

pub(super) fn add_modules(
    image: &mut Image,
    manifest: &mut Manifest,
    opts: &BuildOptions,
    want_firmware: bool,
) -> Result<ModulesAdded> {
    let Some(dir) = &opts.modules_dir else {
        return no_modules(opts);
    };
    let mut tree = ModuleTree::open(dir)?;
    let release = tree
        .kernel_release()
        .context("the modules directory has no usable name (expected .../lib/modules/KVER)")?;
    let mut wanted = opts.modules.clone();
    let storage = host_or_generic(&mut tree, opts.storage, &mut wanted)?;
    // What is named or detected (before the storage set joins it) loads for certain.
    let explicit = if want_firmware {
        order::resolve(&mut tree, &wanted)?
            .modules
            .into_iter()
            .collect()
    } else {
        BTreeSet::new()
    };
    add_storage_set(&tree, storage, &mut wanted);
    let all = order::resolve(&mut tree, &wanted)?;
    let keep = match opts.module_compression {
        ModuleCompression::Keep => true,
        ModuleCompression::Decompress => false,
        ModuleCompression::Auto => storage != Storage::None && kernel_decompresses(tree.config()),
    };
    // Only into an image left uncompressed: a compression asked for (`--compress zstd`)
    // is the user's choice of how the image is stored, and would gain little over packed
    // modules while the boot paid for unpacking twice.
    let packing = opts.module_compression == ModuleCompression::Auto
        && matches!(storage, Storage::Common | Storage::All)
        && matches!(opts.compression, None | Some(Compression::None))
        && !keep;
    let adding = Adding {
        release: &release,
        keep,
        stored_plain: match packing {
            true => Some(root_path_modules(&mut tree, opts)?),
            false => None,
        },
        want_firmware,
        explicit,
        in_image: all.modules.iter().cloned().collect(),
    };
    let mut firmware = Vec::new();
    for name in &all.modules {
        firmware.extend(add_module(image, manifest, &mut tree, &adding, name)?);
    }
    manifest.load = order::resolve(&mut tree, &opts.modules)?.modules;
    manifest.root_drivers =
        hint_root_drivers(&mut tree, &opts.root_drivers, &adding.in_image, &release)?;
    let search = Search {
        release: release.clone(),
        kernel_reads: tree.config().map(firmware::kernel_suffixes),
    };
    Ok(ModulesAdded {
        packed: adding.stored_plain.is_some(),
        modules: all.modules,
        storage,
        firmware,
        search: Some(search),
        kernel_config: tree.config().cloned(),
        release: Some(release),
    })
}

/// The root's drivers for the manifest's hint: those the image carries. A driver built into
/// the kernel needs no hint, but a module left out of the image or a name the kernel does
/// not know (a typo, a driver renamed since the running kernel) deserves a word. Not an
/// error: the hint only saves time, and the boot finds the root without it.
fn hint_root_drivers(
    tree: &mut ModuleTree,
    drivers: &[String],
    in_image: &BTreeSet<String>,
    release: &str,
) -> Result<Vec<String>> {
    let mut hinted = Vec::new();
    for name in drivers {
        if in_image.contains(name) {
            hinted.push(name.clone());
            continue;
        }
        let why = match tree.lookup(name)? {
            order::Lookup::Builtin => continue,
            order::Lookup::Modules(_) => "it is not in the image (--module adds it)",
            order::Lookup::Missing => "the kernel has no module or built-in driver of that name",
        };
        crate::host::detect::warn(&format!(
            "root driver {name} left out of the hint for {release}: {why}"
        ));
    }
    Ok(hinted)
}

/// An image without a modules directory: fine, unless modules were asked for.
fn no_modules(opts: &BuildOptions) -> Result<ModulesAdded> {
    if let Some(first) = opts.modules.first() {
        bail!("--module {first} needs --modules-dir");
    }
    if opts.storage != Storage::None {
        bail!("--storage needs --modules-dir");
    }
    Ok(ModulesAdded {
        modules: Vec::new(),
        storage: opts.storage,
        firmware: Vec::new(),
        search: None,
        kernel_config: None,
        release: None,
        packed: false,
    })
}

/// `--host`: adds the running system's root drivers to `wanted`, or falls back to the
/// generic set with a warning when they cannot be told. Other sets pass through.
fn host_or_generic(
    tree: &mut ModuleTree,
    storage: Storage,
    wanted: &mut Vec<String>,
) -> Result<Storage> {
    if storage != Storage::Host {
        return Ok(storage);
    }
    match crate::host::detect::detect(Path::new("/")) {
        Ok(found) => {
            // Of the running kernel's names, those this kernel has as modules: the rest are
            // built into it.
            for name in found {
                if let order::Lookup::Modules(_) = tree.lookup(&name)? {
                    wanted.push(name);
                }
            }
            Ok(Storage::Host)
        }
        Err(why) => {
            crate::host::detect::warn(&format!(
                "host-only: {why}; building the generic image instead"
            ));
            Ok(Storage::Common)
        }
    }
}

/// The storage set's modules, for `--storage` and `--storage=all`.
fn add_storage_set(tree: &ModuleTree, storage: Storage, wanted: &mut Vec<String>) {
    if matches!(storage, Storage::Common | Storage::All) {
        wanted.extend(tree.names_under(STORAGE));
    }
    if storage == Storage::All {
        wanted.extend(
            tree.names_under(STORAGE_ALL_EXTRA)
                .into_iter()
                .filter(|n| !STORAGE_ALL_EXCLUDED.contains(&n.as_str())),
        );
    }
}

/// Stores one module and describes it in the manifest; returns the firmware it declares.
fn add_module(
    image: &mut Image,
    manifest: &mut Manifest,
    tree: &mut ModuleTree,
    adding: &Adding<'_>,
    name: &String,
) -> Result<Option<ModuleFirmware>> {
    let rel = tree
        .relative_path(name)
        .with_context(|| format!("module {name} has no file"))?
        .to_string_lossy()
        .into_owned();
    // Stored uncompressed by default: the kernel can only decompress modules itself when
    // built with MODULE_DECOMPRESS, and the image is compressed as a whole anyway.
    let uncompressed = rel
        .strip_suffix(".xz")
        .or_else(|| rel.strip_suffix(".zst"))
        .or_else(|| rel.strip_suffix(".gz"))
        .unwrap_or(&rel);
    let kept = adding.keep && uncompressed != rel;
    let (stem, data, elf) = if adding.keep {
        let file = tree.read_module_file(name)?;
        // `.modinfo` is in the ELF: a module kept compressed is read once more for it.
        let elf = match kept && adding.want_firmware {
            true => Some(tree.read_module(name)?),
            false => None,
        };
        (rel.clone(), file, elf)
    } else if adding.packs(name) {
        let elf = tree.read_module(name)?;
        let packed = crate::host::image::compress::lz4_legacy_stream(&elf)?;
        (format!("{uncompressed}.lz4"), packed, Some(elf))
    } else {
        (uncompressed.to_owned(), tree.read_module(name)?, None)
    };
    let mut firmware = None;
    if adding.want_firmware {
        let names = crate::host::modules::file::read_firmware(elf.as_deref().unwrap_or(&data))
            .with_context(|| format!("failed to read the firmware list of module {name}"))?;
        if !names.is_empty() {
            firmware = Some(ModuleFirmware {
                module: name.clone(),
                names,
                explicit: adding.explicit.contains(name),
            });
        }
    }
    let dest = format!("lib/modules/{}/{stem}", adding.release);
    let info = tree.info(name)?;
    let entry = manifest_entry(tree, adding, name, &dest, &info)?;
    for alias in &info.aliases {
        manifest.aliases.push(alias, name);
    }
    image.insert(&dest, Entry::file(0o644, data))?;
    manifest.modules.push(entry);
    Ok(firmware)
}

/// The manifest's line for one module: what must load before it and after it, of what the
/// image carries, and the CPU features it is for.
fn manifest_entry(
    tree: &mut ModuleTree,
    adding: &Adding<'_>,
    name: &String,
    dest: &str,
    info: &ModInfo,
) -> Result<ModuleEntry> {
    let mut providers = |names: &[String]| -> Result<Vec<String>> {
        let mut out = Vec::new();
        for dep in names {
            if let order::Lookup::Modules(found) = tree.lookup(dep)? {
                out.extend(
                    found
                        .into_iter()
                        .filter(|m| adding.in_image.contains(m) && m != name),
                );
            }
        }
        out.dedup();
        Ok(out)
    };
    let mut deps = providers(&info.softdep_pre)?;
    deps.extend(providers(&info.depends)?);
    let post = providers(&info.softdep_post)?;
    let cpu = info
        .aliases
        .iter()
        .filter(|a| a.starts_with("cpu:"))
        .cloned()
        .collect();
    Ok(ModuleEntry {
        name: name.clone(),
        path: format!("/{dest}"),
        deps,
        post,
        cpu,
    })
}

/// Whether the kernel these modules belong to decompresses modules itself, in the format
/// they are compressed with, according to its config. Unknown means no.
fn kernel_decompresses(config: Option<&KernelConfig>) -> bool {
    let Some(config) = config else {
        return false;
    };
    config.is_set("CONFIG_MODULE_DECOMPRESS")
        && (config.is_set("CONFIG_MODULE_COMPRESS_XZ")
            || config.is_set("CONFIG_MODULE_COMPRESS_ZSTD")
            || config.is_set("CONFIG_MODULE_COMPRESS_GZIP"))
}
