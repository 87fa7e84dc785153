//! Loading the modules the builder put in the image: the ones named at build time, the ones
//! a device's `modalias` asks for, and the filesystem the root turns out to have.
//!
//! `finit_module(2)` takes an open file, so the kernel reads the module straight from the
//! initramfs page cache: no copy through our memory, and signature checks see the file.

use crate::manifest::{Manifest, ModuleEntry};
use crate::modules::glob;
use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Being loaded (its dependencies are): guards against cycles.
    Loading,
    Loaded,
    /// In the kernel already, built in or loaded before us.
    Present,
    /// The driver found no device it supports (ENODEV): normal for a generic image.
    NoDevice,
    /// Not for this CPU, or blacklisted: never tried.
    Skipped,
    Failed,
}

/// Loads modules by name or alias, each at most once, dependencies first.
pub struct Loader<'m> {
    modules: BTreeMap<&'m str, &'m ModuleEntry>,
    aliases: &'m [(String, String)],
    state: BTreeMap<String, State>,
    blacklist: Vec<String>,
    /// The CPU's modalias, read the first time a module with `cpu:` aliases is met.
    cpu: Option<Option<String>>,
    /// Parameters per module from the command line.
    params: Box<dyn Fn(&str) -> String + 'm>,
}

impl<'m> Loader<'m> {
    pub fn new(
        manifest: &'m Manifest,
        blacklist: Vec<String>,
        params: impl Fn(&str) -> String + 'm,
    ) -> Loader<'m> {
        Loader {
            modules: manifest
                .modules
                .iter()
                .map(|m| (m.name.as_str(), m))
                .collect(),
            aliases: &manifest.aliases,
            state: BTreeMap::new(),
            blacklist,
            cpu: None,
            params: Box::new(params),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// Whether some module in the image has not been tried yet: only then can a device's
    /// modalias still bring something new.
    pub fn has_untried(&self) -> bool {
        self.modules
            .keys()
            .any(|name| !self.state.contains_key(*name))
    }

    /// Loads `name` (a module in the image, `-` and `_` alike) and what it needs. `why` says
    /// what asked for it, for the log. Returns whether it is in the kernel now.
    pub fn load(&mut self, name: &str, why: &str) -> bool {
        let name = crate::modules::modinfo::normalize(name);
        if let Some(state) = self.state.get(&name) {
            return matches!(state, State::Loaded | State::Present | State::Loading);
        }
        let Some(entry) = self.modules.get(name.as_str()).copied() else {
            log::warn!("module {name} ({why}) is not in this image");
            self.state.insert(name, State::Failed);
            return false;
        };
        if self.blacklist.contains(&name) {
            log::info!("{name}: skipped, module_blacklist= names it");
            self.state.insert(name, State::Skipped);
            return false;
        }
        if !entry.cpu.is_empty() && !entry.suits_cpu(self.cpu_modalias()) {
            log::info!("{name}: skipped, this CPU lacks the features it is for");
            self.state.insert(name, State::Skipped);
            return false;
        }
        self.state.insert(name.clone(), State::Loading);
        for dep in &entry.deps {
            self.load(dep, &format!("needed by {name}"));
        }
        let state = self.insert(entry, why);
        self.state.insert(name.clone(), state);
        for post in &entry.post {
            self.load(post, &format!("after {name}"));
        }
        matches!(state, State::Loaded | State::Present)
    }

    fn cpu_modalias(&mut self) -> Option<&str> {
        self.cpu
            .get_or_insert_with(|| std::fs::read_to_string("/sys/devices/system/cpu/modalias").ok())
            .as_deref()
    }

    fn insert(&mut self, entry: &ModuleEntry, why: &str) -> State {
        let started = Instant::now();
        let file = match File::open(&entry.path) {
            Ok(f) => f,
            Err(e) => {
                log::warn!("failed to open module {}: {e}", entry.path);
                return State::Failed;
            }
        };
        let Ok(params) = CString::new((self.params)(&entry.name)) else {
            log::warn!("parameters for {} contain a NUL byte", entry.name);
            return State::Failed;
        };
        let start_us = crate::timeline::now_us();
        let result = finit_module(&file, &params, init_flags(&entry.path));
        crate::timeline::record(crate::timeline::Event {
            start_us,
            end_us: crate::timeline::now_us(),
            lane: 1,
            kind: crate::timeline::Kind::Module,
            name: entry.name.clone(),
        });
        match result {
            Ok(()) => {
                log::info!(
                    "loaded {} in {} ms ({why})",
                    entry.name,
                    started.elapsed().as_millis()
                );
                State::Loaded
            }
            Err(Errno::EEXIST) => State::Present,
            Err(Errno::ENODEV) => {
                log::info!("{}: no device for this driver (ENODEV)", entry.name);
                State::NoDevice
            }
            Err(errno) => {
                log::warn!(
                    "failed to load module {}: {}",
                    entry.name,
                    explain_load_error(errno)
                );
                State::Failed
            }
        }
    }

    /// Loads every module whose alias pattern matches `alias` (a device's modalias, or a name
    /// like `fs-ext4`). Returns the names that matched.
    pub fn load_alias(&mut self, alias: &str) -> Vec<String> {
        let matched: Vec<String> = matching(self.aliases, alias);
        for name in &matched {
            self.load(name, &format!("for {alias}"));
        }
        matched
    }
}

/// Why `finit_module` refused a module, in words that say what to change. The boot goes on:
/// the root may not need this module.
pub fn explain_load_error(errno: Errno) -> String {
    let why = match errno {
        Errno::ENOEXEC => {
            "it is not a module for this kernel (built for another version, or damaged); rebuild the image from this kernel's own modules"
        }
        Errno::EKEYREJECTED | Errno::EBADMSG | Errno::ENOKEY => {
            "its signature was refused (Secure Boot or module.sig_enforce); use the kernel's own signed modules"
        }
        Errno::ENOENT => {
            "it needs a symbol the kernel does not have (a dependency missing, or one from another kernel); dmesg names it"
        }
        Errno::EINVAL => "the kernel refused it (bad parameters, or a version mismatch); dmesg says which",
        Errno::EPERM => "loading modules is not allowed (kernel.modules_disabled or lockdown)",
        _ => "dmesg may say more",
    };
    format!("{errno}: {why}")
}

/// `MODULE_INIT_COMPRESSED_FILE` (include/uapi/linux/module.h, Linux 5.17+ built with
/// MODULE_DECOMPRESS): the kernel decompresses the module itself. Not in nix or libc yet.
const MODULE_INIT_COMPRESSED_FILE: libc::c_uint = 4;

/// Flags for a module file: compressed files (kept so by `--keep-module-compression`) are
/// handed to the kernel to decompress.
fn init_flags(path: &str) -> ModuleInitFlags {
    if [".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|s| path.ends_with(s))
    {
        ModuleInitFlags::from_bits_retain(MODULE_INIT_COMPRESSED_FILE)
    } else {
        ModuleInitFlags::empty()
    }
}

/// Module names whose patterns match `alias`, sorted and without repeats. Each pattern's
/// literal head (up to its first wildcard) is compared before the full match, which keeps
/// thousands of PCI patterns cheap.
pub fn matching(aliases: &[(String, String)], alias: &str) -> Vec<String> {
    let mut names: Vec<String> = aliases
        .iter()
        .filter(|(pattern, _)| {
            let head = pattern
                .split(['*', '?', '[', '\\'])
                .next()
                .unwrap_or_default();
            alias.starts_with(head) && glob::matches(pattern, alias)
        })
        .map(|(_, name)| name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_failures_say_what_to_change() {
        assert!(explain_load_error(Errno::ENOEXEC).contains("not a module for this kernel"));
        assert!(explain_load_error(Errno::EKEYREJECTED).contains("signature was refused"));
        assert!(explain_load_error(Errno::ENOENT).starts_with("ENOENT: "));
    }

    #[test]
    fn aliases_match_by_pattern() {
        let aliases = vec![
            (
                "pci:v00001AF4d*sv*sd*bc*sc*i*".to_owned(),
                "virtio_pci".to_owned(),
            ),
            ("virtio:d00000002v*".to_owned(), "virtio_blk".to_owned()),
            ("fs-ext4".to_owned(), "ext4".to_owned()),
            ("pci:v*d*sv*sd*bc01sc06i01*".to_owned(), "ahci".to_owned()),
        ];
        assert_eq!(
            matching(
                &aliases,
                "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"
            ),
            ["virtio_pci"]
        );
        assert_eq!(
            matching(&aliases, "virtio:d00000002v00001AF4"),
            ["virtio_blk"]
        );
        assert_eq!(matching(&aliases, "fs-ext4"), ["ext4"]);
        assert_eq!(matching(&aliases, "fs-ext"), Vec::<String>::new());
        assert_eq!(
            matching(
                &aliases,
                "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"
            ),
            ["ahci"]
        );
    }
}
