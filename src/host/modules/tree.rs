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
        })
    }

    /// The kernel release this tree belongs to: its directory name.
    pub fn kernel_release(&self) -> Option<String> {
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
        Ok(self.root.join(rel))
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
            .map(|(name, rel)| (name.clone(), self.root.join(rel)))
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
}
