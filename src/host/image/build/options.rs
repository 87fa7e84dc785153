//! What `baton build` is asked for, and what it reports.

use crate::host::image::compress::Compression;
use crate::host::image::microcode::Microcode;
use crate::host::keymap;
use anyhow::{Context, Result};
use std::path::PathBuf;

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
    /// (destination in the image, contents): files made for the image (`update`'s
    /// crypttab), added after the includes.
    pub files: Vec<(String, Vec<u8>)>,
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
    /// `--keymap`: the console keymap loaded before a passphrase prompt.
    pub keymap: keymap::Choice,
    /// `--root-fs`: the root's filesystem type, a hint the init loads early. `None`: this
    /// running system's for `--host`, else no hint.
    pub root_fs: Option<String>,
    /// `--root-driver`: the drivers on the root's path, a hint the init loads first (those
    /// the image carries).
    pub root_drivers: Vec<String>,
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
            files: Vec::new(),
            shell: None,
            compression: None,
            init: None,
            cmdline: None,
            mtime,
            firmware_dir: FirmwareSource::BesideModules,
            microcode: None,
            keymap: keymap::Choice::None,
            root_fs: None,
            root_drivers: Vec::new(),
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

/// How module files are stored: as the kernel ships them (`.ko.xz`, `.ko.zst`, `.ko.gz`),
/// plain, or packed by baton (`.ko.lz4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleCompression {
    /// Store them plain: any kernel loads them, and the image is compressed anyway.
    Decompress,
    /// Store them as they are, for the kernel to decompress at load time (Linux 5.17+ with
    /// MODULE_DECOMPRESS for that format).
    Keep,
    /// Keep them when the image carries many modules that may never load (`--storage`) and
    /// the kernel's config says it can decompress them. Measured with `scripts/bench modules`
    /// on Debian's 6.12 under TCG: a 7.1 MB storage image shrinks to 5.1 MB and reaches the
    /// real init ~0.3 s sooner (unpacking every module costs more than decompressing the few
    /// that load), while a small image is ~0.1 s faster decompressed. Where the kernel
    /// cannot, a `--storage` image whose compression is left to baton (or none) packs the
    /// modules off the root's known path with lz4 instead, for the init to unpack
    /// (`module_set::root_path_modules` says why).
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
