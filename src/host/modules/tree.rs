//! A kernel's modules directory on the build host (`/lib/modules/KVER`, or the same tree
//! extracted from a kernel package): finds module files by name, reads their `.modinfo`,
//! and knows what `modules.builtin` says is compiled in.

use super::config::KernelConfig;
use super::file;
use super::order::{Catalog, Lookup};
use super::requests;
use crate::host::image::compress;
use crate::modules::modinfo::{self, ModInfo};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// An indexed modules directory.
pub struct ModuleTree {
    root: PathBuf,
    /// Module name -> path relative to `root`.
    files: BTreeMap<String, PathBuf>,
    builtin: BTreeSet<String>,
    infos: BTreeMap<String, ModInfo>,
    /// Alias pattern -> module, built on first use: reading every module's `.modinfo`
    /// costs a second or so, and most builds never need it.
    aliases: Option<Vec<(String, String)>>,
    /// The kernel's config, when it is beside the tree: it names what filesystems request
    /// at mount time.
    config: Option<KernelConfig>,
    /// A kernel build tree after `make` (see [`BuildTree`]) rather than a modules directory.
    build_tree: Option<BuildTree>,
}

/// A kernel source tree where `make` left the modules beside their sources: they are listed
/// in its `modules.order` (`drivers/block/virtio_blk.o`, `.ko` since 6.2) and named here as
/// an installed kernel names them (`kernel/drivers/block/virtio_blk.ko`), so the module sets
/// and the image's layout are the same as for `make modules_install`'s directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BuildTree {
    /// `include/config/kernel.release`.
    release: Option<String>,
}

/// Bounds on a build tree's `modules.order`: Debian's 6.12 lists about 4,000 modules.
const MAX_ORDER_BYTES: u64 = 4 << 20;
const MAX_ORDER_LINES: usize = 65_536;

/// The modules `modules.order` lists, as paths relative to the tree (`.o` read as `.ko`):
/// only plain relative paths, each once.
pub fn parse_modules_order(text: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for line in text.lines().take(MAX_ORDER_LINES).map(str::trim) {
        let line = line.strip_prefix("kernel/").unwrap_or(line);
        let ko = match line.strip_suffix(".o") {
            Some(stem) => format!("{stem}.ko"),
            None if line.ends_with(".ko") => line.to_owned(),
            None => continue,
        };
        let path = PathBuf::from(ko);
        let plain = path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if plain && !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

impl ModuleTree {
    /// The kernel config found beside the tree, if any.
    pub fn config(&self) -> Option<&KernelConfig> {
        self.config.as_ref()
    }

    pub fn open(root: &Path) -> Result<Self> {
        let meta = std::fs::metadata(root)
            .with_context(|| format!("failed to open modules directory {}", root.display()))?;
        if !meta.is_dir() {
            anyhow::bail!("modules directory {} is not a directory", root.display());
        }
        if is_build_tree(root) {
            return Self::open_build_tree(root);
        }
        let mut files = BTreeMap::new();
        let mut found = Vec::new();
        walk(root, Path::new(""), &mut found)?;
        // depmod's default search order puts updates/ ahead of the kernel's own modules; a
        // sorted walk makes the choice among the rest reproducible.
        found.sort_by_key(|rel: &PathBuf| (!rel.starts_with("updates"), rel.clone()));
        for rel in found {
            let Some(name) = rel
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(modinfo::name_from_file)
            else {
                continue;
            };
            files.entry(name).or_insert(rel);
        }
        let builtin = read_builtin(&root.join("modules.builtin"))?;
        let release = root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let config = KernelConfig::find(root, release);
        Ok(ModuleTree {
            root: root.to_owned(),
            files,
            builtin,
            infos: BTreeMap::new(),
            aliases: None,
            config,
            build_tree: None,
        })
    }

    /// A kernel build tree: its modules from `modules.order`, its built-ins from
    /// `modules.builtin`, its config from `.config`.
    fn open_build_tree(root: &Path) -> Result<Self> {
        let order = root.join("modules.order");
        let text = crate::bounded::read_bounded(&order.display().to_string(), MAX_ORDER_BYTES)
            .with_context(|| format!("failed to read {}", order.display()))?;
        let mut files = BTreeMap::new();
        for rel in parse_modules_order(&String::from_utf8_lossy(&text)) {
            let Some(name) = rel
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(modinfo::name_from_file)
            else {
                continue;
            };
            if root.join(&rel).is_file() {
                files.entry(name).or_insert(Path::new("kernel").join(rel));
            }
        }
        let release = std::fs::read_to_string(root.join("include/config/kernel.release"))
            .ok()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty() && !r.contains('/') && r != "..");
        let config = std::fs::read_to_string(root.join(".config"))
            .ok()
            .map(|text| KernelConfig::parse(&text));
        Ok(ModuleTree {
            root: root.to_owned(),
            files,
            builtin: read_builtin(&root.join("modules.builtin"))?,
            infos: BTreeMap::new(),
            aliases: None,
            config,
            build_tree: Some(BuildTree { release }),
        })
    }

    /// Where the module at `rel` (as [`Self::relative_path`] names it) is on disk: in a
    /// build tree, beside its sources, without the `kernel/` an installed tree has.
    fn disk_path(&self, rel: &Path) -> PathBuf {
        match &self.build_tree {
            Some(_) => self.root.join(rel.strip_prefix("kernel").unwrap_or(rel)),
            None => self.root.join(rel),
        }
    }

    /// The kernel release this tree belongs to: its directory name.
    pub fn kernel_release(&self) -> Option<String> {
        if let Some(tree) = &self.build_tree {
            return tree.release.clone();
        }
        self.root
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
    }

    /// Names of the modules whose paths (relative to the tree) start with any of
    /// `prefixes`: `kernel/drivers/ata/` for a directory, `kernel/fs/ext4/ext4` for files.
    pub fn names_under(&self, prefixes: &[&str]) -> Vec<String> {
        self.files
            .iter()
            .filter(|(_, rel)| {
                let rel = rel.to_string_lossy();
                prefixes.iter().any(|p| rel.starts_with(p))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Path of the module relative to the tree.
    pub fn relative_path(&self, module: &str) -> Option<&Path> {
        self.files.get(module).map(PathBuf::as_path)
    }

    fn path_of(&self, module: &str) -> Result<PathBuf> {
        let rel = self
            .files
            .get(module)
            .with_context(|| format!("module {module} not found"))?;
        Ok(self.disk_path(rel))
    }

    /// The module file's bytes as they are on disk, compressed or not.
    pub fn read_module_file(&self, module: &str) -> Result<Vec<u8>> {
        let path = self.path_of(module)?;
        std::fs::read(&path).with_context(|| format!("failed to read module {}", path.display()))
    }

    /// The module's ELF bytes, decompressed if its file is compressed.
    pub fn read_module(&self, module: &str) -> Result<Vec<u8>> {
        read_elf(&self.path_of(module)?)
    }

    /// Every alias pattern of every module. An installed kernel has depmod's index,
    /// `modules.alias`, which says the same as the modules' own `.modinfo` without opening
    /// (and, for `.ko.xz`, decompressing) thousands of files; a tree fresh out of a kernel
    /// package has none, and then every `.modinfo` is read.
    fn alias_index(&mut self) -> Result<&[(String, String)]> {
        if self.aliases.is_none() {
            let index = match self.depmod_aliases()? {
                Some(index) => index,
                None => {
                    self.read_all_infos()?;
                    let mut index = Vec::new();
                    for (name, info) in &self.infos {
                        for alias in &info.aliases {
                            index.push((alias.clone(), name.clone()));
                        }
                    }
                    index
                }
            };
            self.aliases = Some(index);
        }
        Ok(self.aliases.as_deref().unwrap_or_default())
    }

    /// `modules.alias`, when depmod wrote one: its entries for modules in this tree.
    fn depmod_aliases(&self) -> Result<Option<Vec<(String, String)>>> {
        let path = self.root.join("modules.alias");
        let text = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() as u64 <= MAX_INDEX => {
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Ok(_) => anyhow::bail!("{} is larger than {MAX_INDEX} bytes", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
        };
        Ok(Some(
            parse_alias_index(&text)
                .into_iter()
                .filter(|(_, module)| self.files.contains_key(module))
                .collect(),
        ))
    }

    /// Reads the `.modinfo` of every module not read yet, on all cores: with `.ko.xz`
    /// modules (Debian's 6.12) decompressing a few thousand files is most of a build.
    fn read_all_infos(&mut self) -> Result<()> {
        let todo: Vec<(String, PathBuf)> = self
            .files
            .iter()
            .filter(|(name, _)| !self.infos.contains_key(*name))
            .map(|(name, rel)| (name.clone(), self.disk_path(rel)))
            .collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(16);
        let chunk = todo.len().div_ceil(threads).max(1);
        let results: Vec<Result<Vec<(String, ModInfo)>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = todo
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(name, path)| Ok((name.clone(), read_info(path)?)))
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a module reader thread panicked")))
                })
                .collect()
        });
        for result in results {
            for (name, info) in result? {
                let info = self.with_requests(&name, info);
                self.infos.insert(name, info);
            }
        }
        Ok(())
    }

    /// A module's `.modinfo` plus what it requests when it mounts, which is as needed as a
    /// softdep, and optional in the same way (a table built into the kernel needs nothing).
    /// Every way an info enters the cache goes through here, so the image does not depend
    /// on which was read first.
    fn with_requests(&self, module: &str, mut info: ModInfo) -> ModInfo {
        for request in requests::mount_time(module, self.config.as_ref()) {
            if !info.softdep_pre.contains(&request) {
                info.softdep_pre.push(request);
            }
        }
        info
    }
}

/// Largest `modules.alias` read: Debian's is about 1.3 MB.
const MAX_INDEX: u64 = 64 << 20;

/// `alias PATTERN MODULE` lines (depmod's `modules.alias`), as (pattern, module).
pub fn parse_alias_index(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_ascii_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("alias"), Some(pattern), Some(module), None) => {
                    Some((pattern.to_owned(), modinfo::normalize(module)))
                }
                _ => None,
            }
        })
        .collect()
}

/// The `.modinfo` of one module file, compressed or not.
fn read_info(path: &Path) -> Result<ModInfo> {
    file::read(&read_elf(path)?)
        .with_context(|| format!("failed to read .modinfo of {}", path.display()))
}

/// A module file's ELF bytes, decompressed if the file is compressed.
fn read_elf(path: &Path) -> Result<Vec<u8>> {
    let raw =
        std::fs::read(path).with_context(|| format!("failed to read module {}", path.display()))?;
    compress::decompress_module(path, raw)
        .with_context(|| format!("failed to decompress module {}", path.display()))
}

impl Catalog for ModuleTree {
    fn lookup(&mut self, name: &str) -> Result<Lookup> {
        let normalized = modinfo::normalize(name);
        if self.files.contains_key(&normalized) {
            return Ok(Lookup::Modules(vec![normalized]));
        }
        if self.builtin.contains(&normalized) {
            return Ok(Lookup::Builtin);
        }
        // Aliases are matched as written (modprobe only normalizes module names), and
        // several modules may answer to one alias; modprobe loads each of them.
        let mut modules: Vec<String> = self
            .alias_index()?
            .iter()
            .filter(|(pattern, _)| crate::modules::glob::matches(pattern, name))
            .map(|(_, module)| module.clone())
            .collect();
        modules.sort();
        modules.dedup();
        Ok(if modules.is_empty() {
            Lookup::Missing
        } else {
            Lookup::Modules(modules)
        })
    }

    fn info(&mut self, module: &str) -> Result<ModInfo> {
        if let Some(info) = self.infos.get(module) {
            return Ok(info.clone());
        }
        let bytes = self.read_module(module)?;
        let info =
            file::read(&bytes).with_context(|| format!("failed to read .modinfo of {module}"))?;
        let info = self.with_requests(module, info);
        self.infos.insert(module.to_owned(), info.clone());
        Ok(info)
    }
}

/// A kernel source tree after `make` (its `Makefile` and `modules.order`), not an installed
/// modules directory (which has no Makefile; its `build` link points to one).
fn is_build_tree(root: &Path) -> bool {
    root.join("Makefile").is_file() && root.join("modules.order").is_file()
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = root.join(rel);
    let entries =
        std::fs::read_dir(&dir).with_context(|| format!("failed to list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to list {}", dir.display()))?;
        let kind = entry.file_type()?;
        let child = rel.join(entry.file_name());
        // Symlinks are not followed: /lib/modules/KVER/build points into kernel headers.
        if kind.is_dir() {
            walk(root, &child, out)?;
        } else if kind.is_file() {
            out.push(child);
        }
    }
    Ok(())
}

/// `modules.builtin` lists paths like `kernel/fs/ext4/ext4.ko`, one per line.
fn read_builtin(path: &Path) -> Result<BTreeSet<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_builtin(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
    }
}

pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.trim().rsplit('/').next())
        .filter_map(modinfo::name_from_file)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depmod_alias_index() {
        let text = "# Aliases extracted from modules themselves.\n\
alias fs-ext4 ext4\n\
alias pci:v00001AF4d00001042sv*sd*bc*sc*i* virtio_blk\n\
alias crypto-crc32c crc32c-generic\n\
alias broken\n\
alias a b c\n";
        assert_eq!(
            parse_alias_index(text),
            [
                ("fs-ext4".to_owned(), "ext4".to_owned()),
                (
                    "pci:v00001AF4d00001042sv*sd*bc*sc*i*".to_owned(),
                    "virtio_blk".to_owned()
                ),
                ("crypto-crc32c".to_owned(), "crc32c_generic".to_owned()),
            ]
        );
    }

    #[test]
    fn builtin_list() {
        let set = parse_builtin("kernel/fs/ext4/ext4.ko\nkernel/drivers/virtio/virtio-pci.ko\n\n");
        assert!(set.contains("ext4"));
        assert!(set.contains("virtio_pci"));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn modules_order_paths() {
        let text = "drivers/block/virtio_blk.o\nfs/ext4/ext4.ko\nkernel/net/9p/9pnet.o\n\
                    ../escape.o\n/abs/x.o\nfs/ext4/ext4.o\nREADME\n";
        assert_eq!(
            parse_modules_order(text),
            [
                PathBuf::from("drivers/block/virtio_blk.ko"),
                PathBuf::from("fs/ext4/ext4.ko"),
                PathBuf::from("net/9p/9pnet.ko"),
            ]
        );
    }

    /// A tree as `make` leaves it: the modules beside their sources, named as an installed
    /// tree names them.
    #[test]
    fn a_kernel_build_tree() {
        let root = std::env::temp_dir().join(format!("baton-kbuild-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["drivers/block", "fs/ext4", "include/config", "kernel/sched"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(root.join("Makefile"), "VERSION = 6\n").unwrap();
        std::fs::write(
            root.join("modules.order"),
            "drivers/block/virtio_blk.o\nfs/ext4/ext4.o\nfs/missing/gone.o\n",
        )
        .unwrap();
        std::fs::write(root.join("modules.builtin"), "kernel/fs/ext2/ext2.ko\n").unwrap();
        std::fs::write(root.join("include/config/kernel.release"), "6.13.0-rc1+\n").unwrap();
        std::fs::write(root.join(".config"), "CONFIG_MODULES=y\n").unwrap();
        std::fs::write(root.join("drivers/block/virtio_blk.ko"), b"blk").unwrap();
        std::fs::write(root.join("fs/ext4/ext4.ko"), b"ext4").unwrap();
        // A stray .ko that modules.order does not list is not the tree's.
        std::fs::write(root.join("kernel/sched/stray.ko"), b"x").unwrap();
        let tree = ModuleTree::open(&root).unwrap();
        assert_eq!(tree.kernel_release().as_deref(), Some("6.13.0-rc1+"));
        assert_eq!(
            tree.names_under(&["kernel/drivers/block/", "kernel/fs/ext4/ext4"]),
            ["ext4", "virtio_blk"]
        );
        assert_eq!(
            tree.relative_path("virtio_blk"),
            Some(Path::new("kernel/drivers/block/virtio_blk.ko"))
        );
        assert_eq!(tree.read_module_file("ext4").unwrap(), b"ext4");
        assert!(tree.relative_path("gone").is_none());
        assert!(tree.relative_path("stray").is_none());
        assert!(tree.builtin.contains("ext2"));
        assert!(tree.config().unwrap().is_set("CONFIG_MODULES"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
