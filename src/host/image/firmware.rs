//! Firmware for the modules an image carries: the files each module names with `firmware=`
//! in its `.modinfo`, found in a firmware directory the way the kernel's firmware loader
//! searches it (drivers/base/firmware_loader/main.c: `updates/KVER/`, `updates/`, `KVER/`,
//! then the directory itself; every directory for the plain name first, then for `NAME.zst`,
//! then `NAME.xz`, as far as the kernel was built to decompress them), and put into the image
//! at `lib/firmware/NAME`, where the loader looks while the initramfs is the root.
//!
//! The firmware directory belongs to a system that may not be the one running (`baton update
//! --root DIR`, a kernel package's tree): its symlinks, which firmware packages use a lot, are
//! resolved inside that system's root. An absolute target is relative to that root, `..`
//! never climbs above it, and no link is followed by the host's own path resolution.

use super::compress::{decompress_stream, Compression, Limits};
use crate::host::modules::config::KernelConfig;
use crate::modules::glob;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// Most symlinks followed to resolve one path, as the kernel's own limit (MAXSYMLINKS).
pub const MAX_LINKS: usize = 40;

/// Where firmware is looked up in the image, the kernel's default search path.
pub const IMAGE_DIR: &str = "lib/firmware";

/// A firmware directory and the root of the system it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareDir {
    /// The system root: symlinks resolve inside it.
    root: PathBuf,
    /// The firmware directory, relative to `root` (its own symlinks are resolved too).
    base: PathBuf,
}

impl FirmwareDir {
    /// `--firmware-dir DIR`. The system it belongs to is DIR without a trailing
    /// `lib/firmware` or `usr/lib/firmware` (`/lib/firmware` belongs to `/`); a directory
    /// named otherwise is a root of its own.
    pub fn new(dir: &Path) -> FirmwareDir {
        let parts: Vec<Component> = dir.components().collect();
        for suffix in [&["usr", "lib", "firmware"][..], &["lib", "firmware"][..]] {
            if parts.len() < suffix.len() {
                continue;
            }
            let split = parts.len() - suffix.len();
            let tail = parts.get(split..).unwrap_or_default();
            let matches = tail
                .iter()
                .zip(suffix)
                .all(|(c, s)| c.as_os_str() == std::ffi::OsStr::new(s));
            if matches {
                let root: PathBuf = parts.get(..split).unwrap_or_default().iter().collect();
                let root = if root.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    root
                };
                return FirmwareDir {
                    root,
                    base: suffix.iter().collect(),
                };
            }
        }
        FirmwareDir {
            root: dir.to_owned(),
            base: PathBuf::new(),
        }
    }

    /// The default for a modules directory `X/lib/modules/KVER`: `X/lib/firmware`, when it
    /// exists (resolved inside X). An installed kernel gets /lib/firmware, `baton update
    /// --root DIR` gets DIR/lib/firmware, a kernel package extracted somewhere gets none.
    pub fn beside_modules(modules_dir: &Path) -> Option<FirmwareDir> {
        let modules = modules_dir.parent()?;
        if modules.file_name()? != "modules" {
            return None;
        }
        let lib = modules.parent()?;
        let root = match lib.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let dir = FirmwareDir {
            root,
            base: PathBuf::from(lib.file_name()?).join("firmware"),
        };
        match dir.is_dir() {
            Ok(true) => Some(dir),
            _ => None,
        }
    }

    /// Whether the directory exists (resolved inside its root) and is a directory.
    pub fn is_dir(&self) -> Result<bool> {
        Ok(matches!(
            resolve_in_root(&self.root, &self.base)?,
            Some(Resolved { dir: true, .. })
        ))
    }

    /// The directory as a person gave or would write it.
    pub fn display(&self) -> String {
        self.root.join(&self.base).display().to_string()
    }

    /// `rel` (relative to the firmware directory) resolved inside the root, if it exists.
    pub fn resolve(&self, rel: &str) -> Result<Option<Resolved>> {
        resolve_in_root(&self.root, &self.base.join(rel))
    }

    /// The bytes of the regular file `rel`, if there is one.
    pub fn read_file(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match self.resolve(rel)? {
            Some(found) if !found.dir => read_regular(&found.path).map(Some),
            _ => Ok(None),
        }
    }

    /// The names in directory `rel`, sorted (none if it is not a directory).
    pub fn list(&self, rel: &str) -> Result<Vec<String>> {
        let Some(found) = self.resolve(rel)? else {
            return Ok(Vec::new());
        };
        if !found.dir {
            return Ok(Vec::new());
        }
        let entries = std::fs::read_dir(&found.path)
            .with_context(|| format!("failed to list {}", found.path.display()))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry =
                entry.with_context(|| format!("failed to list {}", found.path.display()))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// A path resolved inside a root: where it is on the host, with no symlink left in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub path: PathBuf,
    pub dir: bool,
}

/// Resolves `path` inside `root` as a chroot at `root` would: symlinks followed (at most
/// [`MAX_LINKS`]), an absolute target taken from `root`, `..` stopping at `root`. `None` when
/// a component does not exist or a non-directory has components after it.
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<Option<Resolved>> {
    // The root itself is the caller's to name, links and all.
    if !root.is_dir() {
        return Ok(None);
    }
    // Components still to walk, the next one last.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut resolved = root.to_owned();
    let mut depth = 0usize;
    let mut links = 0usize;
    let mut is_dir = true;
    while let Some(part) = pending.pop() {
        if part == ".." {
            if depth > 0 {
                resolved.pop();
                depth -= 1;
            }
            is_dir = true;
            continue;
        }
        let here = resolved.join(&part);
        let meta = match std::fs::symlink_metadata(&here) {
            Ok(meta) => meta,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(e).with_context(|| format!("failed to look at {}", here.display()))
            }
        };
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                bail!(
                    "too many levels of symbolic links resolving {} inside {}",
                    path.display(),
                    root.display()
                );
            }
            let target = std::fs::read_link(&here)
                .with_context(|| format!("failed to read the link {}", here.display()))?;
            if target.is_absolute() {
                resolved = root.to_owned();
                depth = 0;
            }
            push_components(&mut pending, &target);
            continue;
        }
        if !meta.is_dir() && !pending.is_empty() {
            // A file with more components after it: ENOTDIR, as good as missing.
            return Ok(None);
        }
        is_dir = meta.is_dir();
        resolved = here;
        depth += 1;
    }
    Ok(Some(Resolved {
        path: resolved,
        dir: is_dir,
    }))
}

/// Puts `path`'s components on the stack so that its first is popped first. `/` and `.`
/// add nothing (the caller handles an absolute path's restart at the root).
fn push_components(stack: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

/// Reads a regular file without following a symlink at its last component (the path comes
/// from [`resolve_in_root`]; a link put there since is refused, not followed).
fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("failed to read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .with_context(|| format!("failed to read {}", path.display()))?;
    Ok(data)
}

/// A compressed form of firmware files the kernel's loader may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    Zst,
    Xz,
}

impl Suffix {
    pub fn ext(self) -> &'static str {
        match self {
            Suffix::Zst => ".zst",
            Suffix::Xz => ".xz",
        }
    }

    fn compression(self) -> Compression {
        match self {
            Suffix::Zst => Compression::Zstd,
            Suffix::Xz => Compression::Xz,
        }
    }
}

/// The compressed forms the kernel with this config decompresses itself, in the order its
/// loader tries them: zstd, then xz (Linux 5.19+: FW_LOADER_COMPRESS_ZSTD/_XZ; from 5.3 to
/// 5.18 FW_LOADER_COMPRESS alone meant xz).
pub fn kernel_suffixes(config: &KernelConfig) -> Vec<Suffix> {
    let mut out = Vec::new();
    if !config.is_set("CONFIG_FW_LOADER_COMPRESS") {
        return out;
    }
    if config.is_set("CONFIG_FW_LOADER_COMPRESS_ZSTD") {
        out.push(Suffix::Zst);
    }
    let split_options = config.get("CONFIG_FW_LOADER_COMPRESS_ZSTD").is_some()
        || config.get("CONFIG_FW_LOADER_COMPRESS_XZ").is_some();
    if config.is_set("CONFIG_FW_LOADER_COMPRESS_XZ") || !split_options {
        out.push(Suffix::Xz);
    }
    out
}

/// One firmware file found for the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its path under `lib/firmware/` in the image: the name asked for, with the suffix the
    /// kernel decompresses if it was kept compressed.
    pub name: String,
    pub data: Vec<u8>,
}

/// How the loader will be asked: the kernel's release (for `updates/KVER` and `KVER`) and
/// which compressed forms it reads. Without a kernel config, compressed files are found too
/// and stored decompressed, which any kernel reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub release: String,
    pub kernel_reads: Option<Vec<Suffix>>,
}

impl Search {
    /// The directories, relative to the firmware directory, in the loader's order.
    fn dirs(&self) -> [String; 4] {
        [
            format!("updates/{}/", self.release),
            "updates/".to_owned(),
            format!("{}/", self.release),
            String::new(),
        ]
    }

    fn suffixes(&self) -> Vec<(&'static str, Option<Suffix>)> {
        let mut out = vec![("", None)];
        let tried = match &self.kernel_reads {
            Some(kernel) => kernel.clone(),
            None => vec![Suffix::Zst, Suffix::Xz],
        };
        out.extend(tried.into_iter().map(|s| (s.ext(), Some(s))));
        out
    }

    fn keeps(&self, suffix: Suffix) -> bool {
        self.kernel_reads
            .as_ref()
            .is_some_and(|kernel| kernel.contains(&suffix))
    }
}

/// Whether a firmware name is one the image can hold under `lib/firmware/`: relative, no
/// `..` (the loader would climb out of its directory), no empty or `.` components.
fn acceptable(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\0')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Whether the last component of a name is a shell pattern (brcmfmac declares some).
fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// Looks `name` up as the kernel's loader would. A name whose last component is a pattern
/// finds every file that matches it, the first directory in search order winning for each.
pub fn lookup(dir: &FirmwareDir, search: &Search, name: &str) -> Result<Vec<Found>> {
    if !acceptable(name) {
        return Ok(Vec::new());
    }
    let (parent, last) = match name.rsplit_once('/') {
        Some((parent, last)) => (format!("{parent}/"), last),
        None => (String::new(), name),
    };
    if is_pattern(&parent) {
        // Patterns in directory names: no module does that; nothing to match against.
        return Ok(Vec::new());
    }
    if !is_pattern(last) {
        for (ext, suffix) in search.suffixes() {
            for sub in search.dirs() {
                let candidate = format!("{sub}{name}{ext}");
                if let Some(data) = dir.read_file(&candidate)? {
                    return Ok(vec![stored(search, name, suffix, data).with_context(
                        || format!("failed to decompress firmware {candidate}"),
                    )?]);
                }
            }
        }
        return Ok(Vec::new());
    }
    let mut found: Vec<Found> = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    for (ext, suffix) in search.suffixes() {
        for sub in search.dirs() {
            for file in dir.list(&format!("{sub}{parent}"))? {
                let Some(stem) = file.strip_suffix(ext) else {
                    continue;
                };
                if !glob::matches(last, stem) || taken.iter().any(|t| t == stem) {
                    continue;
                }
                let rel = format!("{sub}{parent}{file}");
                if let Some(data) = dir.read_file(&rel)? {
                    taken.push(stem.to_owned());
                    let name = format!("{parent}{stem}");
                    found.push(
                        stored(search, &name, suffix, data)
                            .with_context(|| format!("failed to decompress firmware {rel}"))?,
                    );
                }
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The file as the image stores it: kept compressed when the kernel decompresses that
/// form itself, decompressed otherwise.
fn stored(search: &Search, name: &str, suffix: Option<Suffix>, data: Vec<u8>) -> Result<Found> {
    match suffix {
        None => Ok(Found {
            name: name.to_owned(),
            data,
        }),
        Some(s) if search.keeps(s) => Ok(Found {
            name: format!("{name}{}", s.ext()),
            data,
        }),
        Some(s) => {
            if Compression::detect(&data) != Some(s.compression()) {
                bail!("it is not {} data", s.compression().name());
            }
            let (plain, _) = decompress_stream(&data, s.compression(), &Limits::DEFAULT)?;
            Ok(Found {
                name: name.to_owned(),
                data: plain,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("baton-firmware-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(path: &Path, data: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }

    fn search(kernel_reads: Option<Vec<Suffix>>) -> Search {
        Search {
            release: "6.1.0-1-amd64".into(),
            kernel_reads,
        }
    }

    fn names(found: &[Found]) -> Vec<(&str, &[u8])> {
        found
            .iter()
            .map(|f| (f.name.as_str(), f.data.as_slice()))
            .collect()
    }

    #[test]
    fn the_system_root_of_a_firmware_dir() {
        let dir = FirmwareDir::new(Path::new("/srv/tree/lib/firmware"));
        assert_eq!(dir.root, Path::new("/srv/tree"));
        assert_eq!(dir.base, Path::new("lib/firmware"));
        let dir = FirmwareDir::new(Path::new("/usr/lib/firmware/"));
        assert_eq!(dir.root, Path::new("/"));
        assert_eq!(dir.base, Path::new("usr/lib/firmware"));
        let dir = FirmwareDir::new(Path::new("lib/firmware"));
        assert_eq!(dir.root, Path::new("."));
        let dir = FirmwareDir::new(Path::new("/opt/fw"));
        assert_eq!(dir.root, Path::new("/opt/fw"));
        assert_eq!(dir.base, Path::new(""));
        // Whether it exists is told inside the root too.
        let root = scratch("exists");
        assert!(!FirmwareDir::new(&root.join("none")).is_dir().unwrap());
        assert!(!FirmwareDir::new(&root.join("lib/firmware"))
            .is_dir()
            .unwrap());
        assert!(FirmwareDir::new(&root).is_dir().unwrap());
        // An absolute link on the way: the tree's /etc, whatever the host has.
        symlink("/etc", root.join("lib")).unwrap();
        assert!(!FirmwareDir::new(&root.join("lib/firmware"))
            .is_dir()
            .unwrap());
        fs::create_dir_all(root.join("etc/firmware")).unwrap();
        assert!(FirmwareDir::new(&root.join("lib/firmware"))
            .is_dir()
            .unwrap());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_default_is_lib_firmware_beside_the_modules() {
        let root = scratch("beside");
        fs::create_dir_all(root.join("usr/lib/modules/6.1")).unwrap();
        // Merged /usr: lib is a link, relative as Debian makes it.
        symlink("usr/lib", root.join("lib")).unwrap();
        assert_eq!(
            FirmwareDir::beside_modules(&root.join("lib/modules/6.1")),
            None
        );
        fs::create_dir_all(root.join("usr/lib/firmware")).unwrap();
        let dir = FirmwareDir::beside_modules(&root.join("lib/modules/6.1")).unwrap();
        assert_eq!(dir.root, root);
        assert_eq!(dir.base, Path::new("lib/firmware"));
        assert_eq!(FirmwareDir::beside_modules(&root.join("kernel/6.1")), None);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn lookup_follows_the_loaders_order() {
        let root = scratch("order");
        let fw = root.join("lib/firmware");
        let dir = FirmwareDir::new(&fw);
        let s = search(Some(vec![Suffix::Xz]));
        write(&fw.join("a.bin"), b"top");
        assert_eq!(
            names(&lookup(&dir, &s, "a.bin").unwrap()),
            [("a.bin", &b"top"[..])]
        );
        write(&fw.join("6.1.0-1-amd64/a.bin"), b"kver");
        assert_eq!(lookup(&dir, &s, "a.bin").unwrap()[0].data, b"kver");
        write(&fw.join("updates/a.bin"), b"updates");
        assert_eq!(lookup(&dir, &s, "a.bin").unwrap()[0].data, b"updates");
        write(&fw.join("updates/6.1.0-1-amd64/a.bin"), b"updates-kver");
        assert_eq!(lookup(&dir, &s, "a.bin").unwrap()[0].data, b"updates-kver");
        // Another release's directory is not searched.
        write(&fw.join("updates/6.12.0/b.bin"), b"other");
        assert!(lookup(&dir, &s, "b.bin").unwrap().is_empty());
        // Every directory is searched for the plain name before any for a compressed one.
        let xz = crate::host::image::compress::compress(b"packed", Compression::Xz).unwrap();
        write(&fw.join("updates/c.bin.xz"), &xz);
        write(&fw.join("c.bin"), b"plain");
        assert_eq!(
            names(&lookup(&dir, &s, "c.bin").unwrap()),
            [("c.bin", &b"plain"[..])]
        );
        fs::remove_file(fw.join("c.bin")).unwrap();
        // The kernel reads xz: kept as it is, under the name it will try.
        assert_eq!(
            names(&lookup(&dir, &s, "c.bin").unwrap()),
            [("c.bin.xz", xz.as_slice())]
        );
        // A kernel that does not: stored decompressed. Unknown kernel: the same.
        let none = search(Some(Vec::new()));
        assert!(lookup(&dir, &none, "c.bin").unwrap().is_empty());
        assert_eq!(
            names(&lookup(&dir, &search(None), "c.bin").unwrap()),
            [("c.bin", &b"packed"[..])]
        );
        // Names that would leave the directory, and missing files, find nothing.
        for bad in [
            "../etc/passwd",
            "/a.bin",
            "",
            "x//a.bin",
            "./a.bin",
            "missing.bin",
        ] {
            assert!(lookup(&dir, &s, bad).unwrap().is_empty(), "{bad}");
        }
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn patterns_match_in_every_search_directory() {
        let root = scratch("pattern");
        let fw = root.join("lib/firmware");
        let dir = FirmwareDir::new(&fw);
        write(&fw.join("brcm/brcmfmac4330-sdio.a.bin"), b"1");
        write(&fw.join("brcm/brcmfmac43430-sdio.b.bin"), b"2");
        write(&fw.join("updates/brcm/brcmfmac4330-sdio.a.bin"), b"newer");
        write(&fw.join("brcm/brcmfmac4330-pcie.a.bin"), b"no");
        let found = lookup(&dir, &search(None), "brcm/brcmfmac*-sdio.*.bin").unwrap();
        assert_eq!(
            names(&found),
            [
                ("brcm/brcmfmac4330-sdio.a.bin", &b"newer"[..]),
                ("brcm/brcmfmac43430-sdio.b.bin", &b"2"[..])
            ]
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = scratch("links");
        let fw = root.join("lib/firmware");
        let dir = FirmwareDir::new(&fw);
        let s = search(None);
        write(&fw.join("vendor/real.bin"), b"inside");
        // Relative, absolute (from the tree's root, not the host's), and through a linked dir.
        symlink("vendor/real.bin", fw.join("rel.bin")).unwrap();
        symlink("/lib/firmware/vendor/real.bin", fw.join("abs.bin")).unwrap();
        symlink("/lib/firmware/vendor", fw.join("alias")).unwrap();
        for name in ["rel.bin", "abs.bin", "alias/real.bin"] {
            assert_eq!(
                names(&lookup(&dir, &s, name).unwrap()),
                [(name, &b"inside"[..])],
                "{name}"
            );
        }
        // An absolute link to a host file must not reach the host: /etc/os-release exists on
        // the host, not (yet) in the tree.
        assert!(Path::new("/etc/os-release").exists());
        symlink("/etc/os-release", fw.join("host.bin")).unwrap();
        assert!(lookup(&dir, &s, "host.bin").unwrap().is_empty());
        // `..` stops at the tree's root, however many there are.
        symlink("../../../../../../etc/os-release", fw.join("climb.bin")).unwrap();
        assert!(lookup(&dir, &s, "climb.bin").unwrap().is_empty());
        write(&root.join("etc/os-release"), b"tree's own");
        assert_eq!(lookup(&dir, &s, "host.bin").unwrap()[0].data, b"tree's own");
        assert_eq!(
            lookup(&dir, &s, "climb.bin").unwrap()[0].data,
            b"tree's own"
        );
        // A loop ends in an error naming the path, not a hang.
        symlink("loop-b", fw.join("loop-a")).unwrap();
        symlink("loop-a", fw.join("loop-b")).unwrap();
        let err = format!("{:#}", lookup(&dir, &s, "loop-a").unwrap_err());
        assert!(err.contains("too many levels of symbolic links"), "{err}");
        // A chain of 40 links resolves; 41 do not.
        for i in 0..41 {
            symlink(format!("chain{}", i + 1), fw.join(format!("chain{i}"))).unwrap();
        }
        write(&fw.join("chain41"), b"end");
        assert!(lookup(&dir, &s, "chain0").is_err());
        assert_eq!(lookup(&dir, &s, "chain1").unwrap()[0].data, b"end");
        // A directory is not a firmware file; a file is not a directory.
        assert!(lookup(&dir, &s, "vendor").unwrap().is_empty());
        assert!(lookup(&dir, &s, "vendor/real.bin/x").unwrap().is_empty());
        // The firmware directory itself may be reached through a link (merged /usr).
        let merged = scratch("merged");
        write(&merged.join("usr/lib/firmware/m.bin"), b"merged");
        symlink("/usr/lib", merged.join("lib")).unwrap();
        let dir = FirmwareDir::new(&merged.join("lib/firmware"));
        assert_eq!(lookup(&dir, &s, "m.bin").unwrap()[0].data, b"merged");
        fs::remove_dir_all(&root).unwrap();
        fs::remove_dir_all(&merged).unwrap();
    }

    #[test]
    fn which_compressed_forms_the_kernel_reads() {
        let config = |text: &str| KernelConfig::parse(text);
        assert_eq!(kernel_suffixes(&config("")), []);
        // 6.1 as Debian builds it; 6.12 adds zstd.
        assert_eq!(
            kernel_suffixes(&config(
                "CONFIG_FW_LOADER_COMPRESS=y\nCONFIG_FW_LOADER_COMPRESS_XZ=y\n"
            )),
            [Suffix::Xz]
        );
        assert_eq!(
            kernel_suffixes(&config(
                "CONFIG_FW_LOADER_COMPRESS=y\nCONFIG_FW_LOADER_COMPRESS_XZ=y\nCONFIG_FW_LOADER_COMPRESS_ZSTD=y\n"
            )),
            [Suffix::Zst, Suffix::Xz]
        );
        // Before 5.19 the one option meant xz.
        assert_eq!(
            kernel_suffixes(&config("CONFIG_FW_LOADER_COMPRESS=y\n")),
            [Suffix::Xz]
        );
        assert_eq!(
            kernel_suffixes(&config(
                "CONFIG_FW_LOADER_COMPRESS=y\nCONFIG_FW_LOADER_COMPRESS_ZSTD=y\n"
            )),
            [Suffix::Zst]
        );
    }
}
