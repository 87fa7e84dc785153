//! `baton build`: turns options into an image file. Resolves everything it can now (module
//! order, decompression, the rescue shell) and writes the manifest the init reads at boot.

use super::compress::{compress, Compression};
use super::entry::{Body, Entry, Image};
use super::firmware::{self, FirmwareDir, Search};
use super::microcode::{self, Microcode};
use super::{newc, skeleton};
use crate::host::elf::Elf;
use crate::host::modules::config::KernelConfig;
use crate::host::modules::order::{self, Catalog};
use crate::manifest::{self, Manifest, ModuleEntry};

use crate::host::modules::tree::ModuleTree;
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Everything `baton build` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    pub output: PathBuf,
    pub modules_dir: Option<PathBuf>,
    pub modules: Vec<String>,
    /// `--storage[=all]`: carry the storage and filesystem drivers for autoloading.
    pub storage: Storage,
    /// `--module-compression`: whether compressed module files stay compressed in the image.
    pub module_compression: ModuleCompression,
    /// (source on the host, destination in the image)
    pub includes: Vec<(PathBuf, String)>,
    pub shell: Option<PathBuf>,
    /// `--compress`; `None` chooses for the kernel (see [`Compression::default_for`]).
    pub compression: Option<Compression>,
    pub init: Option<PathBuf>,
    /// Default kernel parameters for the image (`/etc/baton/cmdline`), replacing the
    /// skeleton's commented example.
    pub cmdline: Option<String>,
    /// Timestamp for every entry (`SOURCE_DATE_EPOCH`, else 0).
    pub mtime: u32,
    /// `--firmware-dir`: where the modules' firmware and the CPU microcode come from.
    pub firmware_dir: FirmwareSource,
    /// `--microcode`: which CPU microcode the early archive carries. `None`: the host's for a
    /// host-only image (`Storage::Host`), else all of it.
    pub microcode: Option<Microcode>,
}

impl BuildOptions {
    /// `baton build -o OUTPUT` with nothing else given: no modules, the firmware beside
    /// them, the compression chosen for the kernel.
    pub fn new(output: PathBuf, mtime: u32) -> BuildOptions {
        BuildOptions {
            output,
            modules_dir: None,
            modules: Vec::new(),
            storage: Storage::None,
            module_compression: ModuleCompression::Auto,
            includes: Vec::new(),
            shell: None,
            compression: None,
            init: None,
            cmdline: None,
            mtime,
            firmware_dir: FirmwareSource::BesideModules,
            microcode: None,
        }
    }
}

/// Where firmware comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirmwareSource {
    /// `lib/firmware` beside the modules directory (`X/lib/modules/KVER` -> `X/lib/firmware`),
    /// when it exists.
    BesideModules,
    /// `--firmware-dir none`: no firmware, no microcode.
    None,
    Dir(PathBuf),
}

/// What was built, for the summary line.
#[derive(Debug, Clone)]
pub struct BuildReport {
    pub bytes: u64,
    pub entries: usize,
    pub modules: Vec<String>,
    pub init: PathBuf,
    /// Firmware files added under `lib/firmware/`.
    pub firmware: Vec<String>,
    /// The microcode files in the early archive, and their bytes in all.
    pub microcode_files: usize,
    pub microcode_bytes: usize,
    /// The compression used, as asked or as chosen for the kernel.
    pub compression: Compression,
}

/// Where the rescue shell goes in the image.
const SHELL_PATH: &str = "bin/sh";

/// Where baton's binary goes when `/init` is something else (`--init SCRIPT`), so the
/// script can still `exec switch_root`.
pub const BATON_BINARY: &str = "usr/lib/baton/baton-init";

/// The names baton's binary answers to, where the peers' scripts look for them: busybox
/// images call `switch_root` through PATH (its applet links live in /sbin), mkinitcpio calls
/// /usr/bin/switch_root, initramfs-tools /usr/bin/run-init (merged /usr) or /bin/run-init.
pub const APPLET_LINKS: [&str; 4] = [
    "usr/bin/switch_root",
    "usr/bin/run-init",
    "sbin/switch_root",
    "bin/run-init",
];

/// Where the kernel runs its module helper when a driver asks for a module at run time (the
/// default `kernel.modprobe`, CONFIG_MODPROBE_PATH): FAT for its codepage, crypto for an
/// algorithm, a filesystem by `fs-` name. An initramfs has no modprobe, so baton's binary
/// answers there from the image's manifest (see baton::init::modprobe) for as long as the
/// initramfs is the root; after the switch the same path is the real root's modprobe. No
/// kernel setting changes hands, and none has to be put back.
pub const MODULE_HELPER_LINK: &str = "sbin/modprobe";

pub fn build(opts: &BuildOptions) -> Result<BuildReport> {
    let mut image = skeleton::default_image().map_err(anyhow::Error::msg)?;
    let mut manifest = Manifest::default();

    let init = add_init(&mut image, opts.init.as_deref())?;

    let firmware_dir = match &opts.firmware_dir {
        FirmwareSource::None => None,
        FirmwareSource::BesideModules => opts
            .modules_dir
            .as_deref()
            .and_then(FirmwareDir::beside_modules),
        FirmwareSource::Dir(dir) => {
            let fw = FirmwareDir::new(dir);
            if !fw.is_dir()? {
                bail!("firmware directory {} is not a directory", dir.display());
            }
            Some(fw)
        }
    };

    let added = add_modules(&mut image, &mut manifest, opts, firmware_dir.is_some())?;
    let firmware = match (&firmware_dir, &added.search) {
        (Some(dir), Some(search)) => {
            let (files, warnings) = add_firmware(&mut image, dir, search, &added.firmware)?;
            for warning in warnings {
                crate::host::detect::warn(&warning);
            }
            files
        }
        _ => Vec::new(),
    };

    if let Some(shell) = &opts.shell {
        add_shell(&mut image, shell)?;
        manifest.shell = Some(format!("/{SHELL_PATH}"));
    }

    for (src, dest) in &opts.includes {
        add_include(&mut image, src, dest)
            .with_context(|| format!("failed to include {} as {dest}", src.display()))?;
    }

    if let Some(cmdline) = &opts.cmdline {
        image.insert(
            manifest::DEFAULTS_PATH,
            Entry::file(0o644, format!("{cmdline}\n").into_bytes()),
        )?;
    }

    // Written last so --include cannot replace it by accident.
    image.insert(
        manifest::PATH,
        Entry::file(0o644, manifest.render().into_bytes()),
    )?;

    // The early microcode archive goes first and uncompressed: the kernel reads it before
    // it can decompress anything.
    let blobs = match &firmware_dir {
        Some(dir) => {
            let choice = opts.microcode.unwrap_or(if added.storage == Storage::Host {
                Microcode::Host
            } else {
                Microcode::All
            });
            microcode_blobs(dir, choice)?
        }
        None => Vec::new(),
    };
    let mut out = if blobs.is_empty() {
        Vec::new()
    } else {
        microcode::archive(&blobs, opts.mtime)?
    };

    let archive = newc::write(&image, opts.mtime).context("failed to write the cpio archive")?;
    let compression = opts.compression.unwrap_or_else(|| {
        Compression::default_for(added.kernel_config.as_ref(), added.release.as_deref())
    });
    let packed = compress(&archive, compression)
        .with_context(|| format!("failed to compress the image with {}", compression.name()))?;
    out.extend_from_slice(&packed);
    drop(packed);
    write_atomically(&opts.output, &out)?;
    Ok(BuildReport {
        bytes: out.len() as u64,
        entries: image.len(),
        modules: added.modules,
        init,
        firmware,
        microcode_files: blobs.iter().map(|b| b.files.len()).sum(),
        microcode_bytes: blobs.iter().map(|b| b.data.len()).sum(),
        compression,
    })
}

/// The microcode `choice` asks for from `dir`. The host's CPUs come from /proc/cpuinfo;
/// when that cannot be read, every file is taken, with a warning (an image with too much
/// microcode still boots; one without its CPU's misses the fixes).
fn microcode_blobs(dir: &FirmwareDir, choice: Microcode) -> Result<Vec<microcode::Blob>> {
    let select = match choice {
        Microcode::None => return Ok(Vec::new()),
        Microcode::All => microcode::Select::All,
        Microcode::Host => match microcode::host_cpus() {
            Ok(cpus) => microcode::Select::Cpus(cpus),
            Err(e) => {
                crate::host::detect::warn(&format!("{e:#}; adding all the microcode instead"));
                microcode::Select::All
            }
        },
    };
    microcode::collect(dir, &select)
}

/// Adds the firmware the modules declare, each file once, at `lib/firmware/NAME`. A file
/// that is not there is silent for modules that may never load (`--storage` carries drivers
/// for hardware most machines lack) and a one-line warning per module for those named or
/// detected, which will load. Returns the names added and the warnings.
fn add_firmware(
    image: &mut Image,
    dir: &FirmwareDir,
    search: &Search,
    wanted: &[ModuleFirmware],
) -> Result<(Vec<String>, Vec<String>)> {
    let mut added: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    // Each name is looked up once; whether it was found counts for every module naming it.
    let mut looked_up: std::collections::BTreeMap<&str, bool> = Default::default();
    for module in wanted {
        let mut missing = Vec::new();
        for name in &module.names {
            if let Some(&found) = looked_up.get(name.as_str()) {
                if !found {
                    missing.push(name.as_str());
                }
                continue;
            }
            let found = firmware::lookup(dir, search, name).with_context(|| {
                format!("failed to look up firmware {name} for {}", module.module)
            })?;
            looked_up.insert(name, !found.is_empty());
            if found.is_empty() {
                missing.push(name.as_str());
            }
            for file in found {
                let dest = format!("{}/{}", firmware::IMAGE_DIR, file.name);
                if added.contains(&file.name) {
                    continue;
                }
                match image.insert(&dest, Entry::file(0o644, file.data)) {
                    Ok(()) => added.push(file.name),
                    // Two names that cannot both be paths (`a` and `a/b`): the first stays.
                    Err(e) => warnings.push(format!("firmware {}: {e}", file.name)),
                }
            }
        }
        if module.explicit && !missing.is_empty() {
            warnings.push(format!(
                "firmware for {} not found in {}: {}",
                module.module,
                dir.display(),
                missing.join(" ")
            ));
        }
    }
    added.sort();
    Ok((added, warnings))
}

/// Puts the init at /init (`--init`: a static program or a `#!` script; by default baton's
/// own) and baton's binary under its applet names. Returns the path /init came from.
fn add_init(image: &mut Image, explicit: Option<&Path>) -> Result<PathBuf> {
    let (init, init_bytes) = match explicit {
        Some(path) => (path.to_owned(), read_init(path)?),
        None => {
            let path = find_init(None)?;
            let bytes = read_static_program(&path, "init")?;
            (path, bytes)
        }
    };
    // baton's own binary, for the applet names: the one /init is, unless --init named
    // something else (a script, another init), then the one beside this program.
    let baton = match (explicit, find_init(None)) {
        (None, _) => None,
        (Some(_), Ok(path)) => Some(read_static_program(&path, "baton's init")?),
        (Some(_), Err(_)) if !init_bytes.starts_with(b"#!") => None,
        (Some(_), Err(e)) => {
            return Err(e.context("an --init script needs baton's own binary beside it"))
        }
    };
    // Whether the binary the links name is baton's: only baton's may answer the kernel's
    // module requests (someone else's static init must never be run as a helper).
    let is_baton = explicit.is_none() || baton.is_some();
    let target = match baton {
        Some(bytes) if bytes != init_bytes => {
            image.insert(BATON_BINARY, Entry::file(0o755, bytes))?;
            format!("/{BATON_BINARY}")
        }
        _ => "/init".to_owned(),
    };
    image.insert("init", Entry::file(0o755, init_bytes))?;
    for link in APPLET_LINKS {
        image.insert(link, Entry::symlink(&target))?;
    }
    if is_baton {
        image.insert(MODULE_HELPER_LINK, Entry::symlink(&target))?;
    }
    Ok(init)
}

/// `--init`: a static program, or a script the kernel can run (`#!`, its interpreter in the
/// image: the `--shell` busybox, say).
fn read_init(path: &Path) -> Result<Vec<u8>> {
    let bytes =
        fs::read(path).with_context(|| format!("failed to read init {}", path.display()))?;
    if bytes.starts_with(b"#!") {
        return Ok(bytes);
    }
    read_static_program(path, "init").map_err(|e| {
        e.context(format!(
            "init {} is neither a static program nor a #! script",
            path.display()
        ))
    })
}

/// Finds the static init: `--init`, `$BATON_INIT`, or next to this program in the layouts
/// `scripts/build` (cargo's target directory) and an installation produce.
pub fn find_init(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os("BATON_INIT") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("failed to find this program's own path")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [
        dir.join("baton-init"),
        dir.join("../x86_64-unknown-linux-musl/release/baton-init"),
        dir.join("../../x86_64-unknown-linux-musl/release/baton-init"),
        dir.join("../lib/baton/baton-init"),
    ];
    // `cargo build` also leaves a dynamically linked baton-init beside this program; only a
    // static one can be an initramfs /init.
    let is_static = |path: &Path| {
        fs::read(path).ok().and_then(|bytes| {
            Elf::parse(&bytes)
                .ok()
                .and_then(|elf| elf.needs_interpreter().ok())
        }) == Some(false)
    };
    for candidate in &candidates {
        if candidate.is_file() && is_static(candidate) {
            return Ok(candidate.clone());
        }
    }
    bail!(
        "cannot find the static init (baton-init): looked in {}; run scripts/build, or pass --init PATH",
        candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )
}

/// Reads a program that must run inside the initramfs, where there is no dynamic loader.
fn read_static_program(path: &Path, what: &str) -> Result<Vec<u8>> {
    let bytes =
        fs::read(path).with_context(|| format!("failed to read {what} {}", path.display()))?;
    let elf = Elf::parse(&bytes)
        .with_context(|| format!("{what} {} is not a program", path.display()))?;
    if elf
        .needs_interpreter()
        .with_context(|| format!("failed to read {what} {}", path.display()))?
    {
        bail!(
            "{what} {} is dynamically linked; an initramfs has no shared libraries, use a static build",
            path.display()
        );
    }
    Ok(bytes)
}

/// What `--storage` carries: the drivers for the disks of virtual machines and PCs (virtio,
/// SATA/IDE, NVMe, SCSI disks and CD-ROMs, USB storage and its host controllers, SD/MMC,
/// Hyper-V, VMware and Xen disks), the filesystems a root is made of, and a VM's shared
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

/// What to do with compressed module files (`.ko.xz`, `.ko.zst`, `.ko.gz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleCompression {
    /// Store them decompressed: any kernel loads them, and the image is compressed anyway.
    Decompress,
    /// Store them as they are, for the kernel to decompress at load time (Linux 5.17+ with
    /// MODULE_DECOMPRESS for that format).
    Keep,
    /// Keep them when the image carries many modules that may never load (`--storage`) and
    /// the kernel's config says it can decompress them. Measured with `scripts/bench modules`
    /// on Debian's 6.12 under TCG: a 7.1 MB storage image shrinks to 5.1 MB and reaches the
    /// real init ~0.3 s sooner (unpacking every module costs more than decompressing the few
    /// that load), while a small image is ~0.1 s faster decompressed.
    Auto,
}

/// How much of the storage driver set to carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    None,
    Common,
    All,
    /// `--host`: only what the running system's root needs (see `host::detect`), or
    /// `Common` with a warning when that cannot be told.
    Host,
}

/// The firmware one module in the image declares.
struct ModuleFirmware {
    module: String,
    names: Vec<String>,
    /// Named with `--module` or detected on the host (or needed by one that is): it will
    /// load, so missing firmware deserves a warning.
    explicit: bool,
}

/// What adding the modules decided, for the steps after it.
struct ModulesAdded {
    /// In load order.
    modules: Vec<String>,
    /// The module set in effect (`Host` falls back to `Common` when it cannot detect).
    storage: Storage,
    firmware: Vec<ModuleFirmware>,
    /// How the kernel will look firmware up; none without modules.
    search: Option<Search>,
    /// The config of the kernel the modules are for, when it could be found.
    kernel_config: Option<KernelConfig>,
    /// That kernel's release (`6.1.0-57-amd64`).
    release: Option<String>,
}

fn add_modules(
    image: &mut Image,
    manifest: &mut Manifest,
    opts: &BuildOptions,
    want_firmware: bool,
) -> Result<ModulesAdded> {
    let Some(dir) = &opts.modules_dir else {
        if let Some(first) = opts.modules.first() {
            bail!("--module {first} needs --modules-dir");
        }
        if opts.storage != Storage::None {
            bail!("--storage needs --modules-dir");
        }
        return Ok(ModulesAdded {
            modules: Vec::new(),
            storage: opts.storage,
            firmware: Vec::new(),
            search: None,
            kernel_config: None,
            release: None,
        });
    };
    let mut tree = ModuleTree::open(dir)?;
    let release = tree
        .kernel_release()
        .context("the modules directory has no usable name (expected .../lib/modules/KVER)")?;
    let mut wanted = opts.modules.clone();
    let storage = match opts.storage {
        Storage::Host => match crate::host::detect::detect(Path::new("/")) {
            Ok(found) => {
                // Of the running kernel's names, those this kernel has as modules: the
                // rest are built into it.
                for name in found {
                    if let order::Lookup::Modules(_) = tree.lookup(&name)? {
                        wanted.push(name);
                    }
                }
                Storage::Host
            }
            Err(why) => {
                crate::host::detect::warn(&format!(
                    "host-only: {why}; building the generic image instead"
                ));
                Storage::Common
            }
        },
        other => other,
    };
    // What is named or detected (before the storage set joins it) loads for certain.
    let explicit: std::collections::BTreeSet<String> = if want_firmware {
        order::resolve(&mut tree, &wanted)?
            .modules
            .into_iter()
            .collect()
    } else {
        Default::default()
    };
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
    let all = order::resolve(&mut tree, &wanted)?;
    let keep = match opts.module_compression {
        ModuleCompression::Keep => true,
        ModuleCompression::Decompress => false,
        ModuleCompression::Auto => storage != Storage::None && kernel_decompresses(tree.config()),
    };
    let in_image: std::collections::BTreeSet<String> = all.modules.iter().cloned().collect();
    let mut firmware = Vec::new();
    for name in &all.modules {
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
        let (stem, data) = if keep {
            (rel.as_str(), tree.read_module_file(name)?)
        } else {
            (uncompressed, tree.read_module(name)?)
        };
        if want_firmware {
            // `.modinfo` is in the ELF: a module kept compressed is read once more for it.
            let names = if keep && uncompressed != rel {
                crate::host::modules::file::read_firmware(&tree.read_module(name)?)
            } else {
                crate::host::modules::file::read_firmware(&data)
            }
            .with_context(|| format!("failed to read the firmware list of module {name}"))?;
            if !names.is_empty() {
                firmware.push(ModuleFirmware {
                    module: name.clone(),
                    names,
                    explicit: explicit.contains(name),
                });
            }
        }
        let dest = format!("lib/modules/{release}/{stem}");
        let info = tree.info(name)?;
        let mut providers = |names: &[String]| -> Result<Vec<String>> {
            let mut out = Vec::new();
            for dep in names {
                if let order::Lookup::Modules(found) = tree.lookup(dep)? {
                    out.extend(
                        found
                            .into_iter()
                            .filter(|m| in_image.contains(m) && m != name),
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
        for alias in &info.aliases {
            manifest.aliases.push((alias.clone(), name.clone()));
        }
        image.insert(&dest, Entry::file(0o644, data))?;
        manifest.modules.push(ModuleEntry {
            name: name.clone(),
            path: format!("/{dest}"),
            deps,
            post,
            cpu,
        });
    }
    manifest.load = order::resolve(&mut tree, &opts.modules)?.modules;
    let search = Search {
        release: release.clone(),
        kernel_reads: tree.config().map(firmware::kernel_suffixes),
    };
    Ok(ModulesAdded {
        modules: all.modules,
        storage,
        firmware,
        search: Some(search),
        kernel_config: tree.config().cloned(),
        release: Some(release),
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

fn add_shell(image: &mut Image, shell: &Path) -> Result<()> {
    let bytes = read_static_program(shell, "shell")?;
    // busybox decides what to be by argv[0]: as /bin/sh it is the shell, and the other
    // applets stay reachable as `busybox ls` or after `busybox --install -s`.
    let is_busybox = bytes.windows(9).any(|w| w == b"BusyBox v");
    if is_busybox {
        image.insert("bin/busybox", Entry::file(0o755, bytes))?;
        image.insert(SHELL_PATH, Entry::symlink("busybox"))?;
    } else {
        image.insert(SHELL_PATH, Entry::file(0o755, bytes))?;
    }
    Ok(())
}

/// Adds a file, a symlink or a whole directory tree. Owners become root: the image must not
/// depend on who built it.
fn add_include(image: &mut Image, src: &Path, dest: &str) -> Result<()> {
    let meta =
        fs::symlink_metadata(src).with_context(|| format!("failed to read {}", src.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = fs::read_link(src)?;
        image.insert(dest, Entry::symlink(&target.to_string_lossy()))?;
    } else if kind.is_file() {
        let data = fs::read(src).with_context(|| format!("failed to read {}", src.display()))?;
        image.insert(dest, Entry::file(mode, data))?;
    } else if kind.is_dir() {
        image.insert(dest, Entry::dir(mode))?;
        let mut children: Vec<_> = fs::read_dir(src)?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("failed to list {}", src.display()))?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let name = child.file_name();
            let child_dest = format!("{}/{}", dest.trim_end_matches('/'), name.to_string_lossy());
            add_include(image, &child.path(), &child_dest)?;
        }
    } else {
        use std::os::unix::fs::FileTypeExt;
        let rdev = meta.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        let body = if kind.is_char_device() {
            Body::CharDevice { major, minor }
        } else if kind.is_block_device() {
            Body::BlockDevice { major, minor }
        } else if kind.is_fifo() {
            Body::Fifo
        } else {
            bail!("{} is a socket; it cannot go into an image", src.display());
        };
        image.insert(
            dest,
            Entry {
                mode,
                uid: 0,
                gid: 0,
                body,
            },
        )?;
    }
    Ok(())
}

/// The mode images are created with, as dracut and mkinitcpio do: an image can carry key
/// files and a `cmdline=` with secrets, and /boot is often world-readable.
pub const IMAGE_MODE: u32 = 0o600;

/// A name beside `path` for a file that will replace it: `.NAME.TAG-PID`, in the same
/// directory, so that the rename is atomic.
pub fn sibling(path: &Path, tag: &str) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("output {} is not a file name", path.display()))?;
    Ok(path.with_file_name(format!(
        ".{}.{tag}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// The mode a new image at `path` gets: [`IMAGE_MODE`], or stricter when the image it
/// replaces was (an admin's 0400 stays).
fn mode_for(path: &Path) -> u32 {
    match fs::symlink_metadata(path) {
        Ok(old) if old.is_file() => old.mode() & IMAGE_MODE,
        _ => IMAGE_MODE,
    }
}

/// Renames the finished file `tmp` over `path` with the mode [`mode_for`] gives, then syncs
/// the directory so that the rename survives a crash.
pub fn put_in_place(tmp: &Path, path: &Path) -> Result<()> {
    fs::set_permissions(tmp, fs::Permissions::from_mode(mode_for(path)))
        .with_context(|| format!("failed to set the mode of {}", tmp.display()))?;
    fs::rename(tmp, path)
        .with_context(|| format!("failed to rename {} to {}", tmp.display(), path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("failed to sync {}", dir.display()))
}

/// Writes to a temporary file beside `path` and puts it in place, so a failed build never
/// leaves a half-written image where a boot script expects a good one. The file is created
/// [`IMAGE_MODE`] whatever the umask, and is on disk before the rename.
fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = sibling(path, "tmp")?;
    let result = (|| -> Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(IMAGE_MODE)
            .open(&tmp)
            .with_context(|| format!("failed to create {}", tmp.display()))?;
        file.write_all(data)
            .with_context(|| format!("failed to write {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("failed to write {}", tmp.display()))?;
        put_in_place(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `SRC:DEST`, or `SRC` alone to keep the same path. Split at the last colon, since the
/// destination is an image path the user chose and source paths may contain colons.
pub fn parse_include(spec: &str) -> Result<(PathBuf, String)> {
    let (src, dest) = match spec.rsplit_once(':') {
        Some((src, dest)) if !src.is_empty() && dest.starts_with('/') => (src, dest),
        _ => (spec, spec),
    };
    if src.is_empty() || dest.is_empty() {
        bail!("--include {spec:?}: expected SRC[:DEST]");
    }
    Ok((PathBuf::from(src), dest.to_owned()))
}

/// `SOURCE_DATE_EPOCH` (reproducible-builds.org), else 0.
pub fn mtime_from_env() -> Result<u32> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u32>().with_context(|| {
            format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds that fits newc's 32-bit mtime"
            )
        }),
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, names: &[&str], explicit: bool) -> ModuleFirmware {
        ModuleFirmware {
            module: name.to_owned(),
            names: names.iter().map(|n| n.to_string()).collect(),
            explicit,
        }
    }

    #[test]
    fn firmware_once_each_and_warnings_only_for_modules_that_will_load() {
        let root =
            std::env::temp_dir().join(format!("baton-build-firmware-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let fw = root.join("lib/firmware");
        fs::create_dir_all(fw.join("v")).unwrap();
        fs::write(fw.join("v/a.bin"), b"A").unwrap();
        fs::write(fw.join("b.bin"), b"B").unwrap();
        let dir = FirmwareDir::new(&fw);
        let search = Search {
            release: "6.1.0-1-amd64".into(),
            kernel_reads: None,
        };
        let mut image = Image::new();
        let (added, warnings) = add_firmware(
            &mut image,
            &dir,
            &search,
            &[
                // A storage driver: its missing file is no news.
                module("storage_hba", &["v/a.bin", "gone.bin"], false),
                // Named by the user, sharing both names, one missing: one line.
                module(
                    "named",
                    &["gone.bin", "v/a.bin", "b.bin", "also-gone.bin"],
                    true,
                ),
                module("named_ok", &["b.bin"], true),
            ],
        )
        .unwrap();
        assert_eq!(added, ["b.bin", "v/a.bin"]);
        assert_eq!(
            warnings,
            [format!(
                "firmware for named not found in {}: gone.bin also-gone.bin",
                fw.display()
            )]
        );
        assert_eq!(
            image.get("lib/firmware/v/a.bin").unwrap().body,
            Body::File(b"A".to_vec())
        );
        assert_eq!(
            image.get("lib/firmware/b.bin").unwrap().body,
            Body::File(b"B".to_vec())
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
