//! Which modules to load, and in what order, so that every module finds what it needs
//! already in the kernel: `depends=` and softdep `pre:` first, the module, then softdep
//! `post:`. This is what `modprobe --show-depends` computes from modules.dep, done from
//! each module's own `.modinfo` because Debian's kernel packages ship no modules.dep.
//!
//! Pure: the modules tree is behind [`Catalog`], so tests use a table and the builder uses
//! the files of a real kernel.

use crate::modules::modinfo::ModInfo;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};

/// What a name stands for in a modules tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// One or more loadable modules: the module of that name, or every module with a
    /// matching alias (modprobe loads them all, e.g. `crypto-crc32c`).
    Modules(Vec<String>),
    /// Built into the kernel (`modules.builtin`): nothing to load.
    Builtin,
    /// Not known at all.
    Missing,
}

/// A modules tree as the resolver sees it.
pub trait Catalog {
    fn lookup(&mut self, name: &str) -> Result<Lookup>;
    fn info(&mut self, module: &str) -> Result<ModInfo>;
}

/// The resolved load order and what was noticed on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOrder {
    /// Module names, dependencies first.
    pub modules: Vec<String>,
    /// Names that needed nothing loaded because the kernel has them built in.
    pub builtin: Vec<String>,
    /// Soft dependencies that name nothing in this tree (modprobe skips those too).
    pub missing_softdeps: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Visiting,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Asked for by the user or by `depends=`: it must exist.
    Hard,
    /// A softdep: optional.
    Soft,
}

struct Resolver<'c, C: Catalog> {
    catalog: &'c mut C,
    state: BTreeMap<String, State>,
    out: LoadOrder,
    builtin: BTreeSet<String>,
}

/// Resolves `requested` (names or aliases, `-` and `_` alike) into a load order.
pub fn resolve<C: Catalog>(catalog: &mut C, requested: &[String]) -> Result<LoadOrder> {
    let mut r = Resolver {
        catalog,
        state: BTreeMap::new(),
        out: LoadOrder::default(),
        builtin: BTreeSet::new(),
    };
    for name in requested {
        r.name(name, Need::Hard, &mut Vec::new())?;
    }
    r.out.builtin = r.builtin.into_iter().collect();
    Ok(r.out)
}

impl<C: Catalog> Resolver<'_, C> {
    /// Visits whatever `name` stands for. `chain` is the path of modules that led here,
    /// for error messages.
    fn name(&mut self, name: &str, need: Need, chain: &mut Vec<String>) -> Result<()> {
        match self.catalog.lookup(name)? {
            Lookup::Modules(modules) => {
                for module in modules {
                    self.module(&module, need, chain)?;
                }
            }
            Lookup::Builtin => {
                self.builtin.insert(name.to_owned());
            }
            Lookup::Missing => match need {
                Need::Hard if chain.is_empty() => {
                    bail!("module {name} not found in the modules directory")
                }
                Need::Hard => bail!("module {name} not found, needed by {}", chain.join(" <- ")),
                Need::Soft => {
                    if !self.out.missing_softdeps.iter().any(|m| m == name) {
                        self.out.missing_softdeps.push(name.to_owned());
                    }
                }
            },
        }
        Ok(())
    }

    fn module(&mut self, module: &str, need: Need, chain: &mut Vec<String>) -> Result<()> {
        match self.state.get(module) {
            Some(State::Done) => return Ok(()),
            // A cycle through a softdep is legal (modprobe breaks it); through hard
            // dependencies the kernel could never load either module.
            Some(State::Visiting) if need == Need::Soft => return Ok(()),
            Some(State::Visiting) => bail!("dependency cycle: {} -> {module}", chain.join(" -> ")),
            None => {}
        }
        self.state.insert(module.to_owned(), State::Visiting);
        let info = self.catalog.info(module)?;
        chain.push(module.to_owned());
        for pre in &info.softdep_pre {
            self.name(pre, Need::Soft, chain)?;
        }
        for dep in &info.depends {
            self.name(dep, Need::Hard, chain)?;
        }
        chain.pop();
        self.out.modules.push(module.to_owned());
        self.state.insert(module.to_owned(), State::Done);
        chain.push(module.to_owned());
        for post in &info.softdep_post {
            self.name(post, Need::Soft, chain)?;
        }
        chain.pop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::modinfo::normalize;

    /// A modules tree written as a table: (name, depends, pre, post, aliases).
    struct Table {
        modules: Vec<(&'static str, ModInfo)>,
        builtin: Vec<&'static str>,
    }

    fn m(deps: &[&str], pre: &[&str], post: &[&str], aliases: &[&str]) -> ModInfo {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        ModInfo {
            name: None,
            depends: v(deps),
            softdep_pre: v(pre),
            softdep_post: v(post),
            aliases: v(aliases),
        }
    }

    impl Catalog for Table {
        fn lookup(&mut self, name: &str) -> Result<Lookup> {
            let name = normalize(name);
            if self.modules.iter().any(|(n, _)| *n == name) {
                return Ok(Lookup::Modules(vec![name]));
            }
            if self.builtin.contains(&name.as_str()) {
                return Ok(Lookup::Builtin);
            }
            let by_alias: Vec<String> = self
                .modules
                .iter()
                .filter(|(_, i)| {
                    i.aliases
                        .iter()
                        .any(|a| crate::modules::glob::matches(a, &name))
                })
                .map(|(n, _)| n.to_string())
                .collect();
            Ok(if by_alias.is_empty() {
                Lookup::Missing
            } else {
                Lookup::Modules(by_alias)
            })
        }
        fn info(&mut self, module: &str) -> Result<ModInfo> {
            Ok(self
                .modules
                .iter()
                .find(|(n, _)| *n == module)
                .map(|(_, i)| i.clone())
                .unwrap_or_default())
        }
    }

    /// Debian 6.1's ext4-on-virtio set, as its .modinfo sections say.
    fn debian_like() -> Table {
        Table {
            modules: vec![
                ("virtio_ring", m(&[], &[], &[], &[])),
                ("virtio", m(&[], &[], &[], &[])),
                ("virtio_pci_legacy_dev", m(&["virtio"], &[], &[], &[])),
                ("virtio_pci_modern_dev", m(&["virtio"], &[], &[], &[])),
                (
                    "virtio_pci",
                    m(
                        &[
                            "virtio_pci_legacy_dev",
                            "virtio_pci_modern_dev",
                            "virtio",
                            "virtio_ring",
                        ],
                        &[],
                        &[],
                        &["pci:v00001AF4d*sv*sd*bc*sc*i*"],
                    ),
                ),
                ("virtio_blk", m(&["virtio", "virtio_ring"], &[], &[], &[])),
                ("crc16", m(&[], &[], &[], &[])),
                ("mbcache", m(&[], &[], &[], &[])),
                ("jbd2", m(&[], &[], &[], &[])),
                (
                    "crc32c_generic",
                    m(&[], &[], &[], &["crypto-crc32c", "crc32c"]),
                ),
                (
                    "ext4",
                    m(
                        &["mbcache", "jbd2", "crc16"],
                        &["crc32c"],
                        &[],
                        &["fs-ext4"],
                    ),
                ),
            ],
            builtin: vec!["crc32c_intel_not_here"],
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependencies_load_first() {
        let order = resolve(&mut debian_like(), &names(&["virtio-blk", "ext4"])).unwrap();
        assert_eq!(
            order.modules,
            [
                "virtio",
                "virtio_ring",
                "virtio_blk",
                "crc32c_generic",
                "mbcache",
                "jbd2",
                "crc16",
                "ext4"
            ]
        );
    }

    #[test]
    fn every_module_appears_once_and_after_its_dependencies() {
        let mut table = debian_like();
        let all: Vec<String> = table.modules.iter().map(|(n, _)| n.to_string()).collect();
        let order = resolve(&mut table, &all).unwrap();
        assert_eq!(order.modules.len(), all.len());
        for (i, module) in order.modules.iter().enumerate() {
            for dep in &table.info(module).unwrap().depends {
                let at = order.modules.iter().position(|m| m == dep).unwrap();
                assert!(at < i, "{dep} must come before {module}");
            }
        }
    }

    #[test]
    fn builtin_and_missing_names() {
        let mut table = debian_like();
        table.modules.push((
            "uses_builtin",
            m(&["crc32c_intel_not_here"], &["nope"], &[], &[]),
        ));
        let order = resolve(&mut table, &names(&["uses_builtin"])).unwrap();
        assert_eq!(order.modules, ["uses_builtin"]);
        assert_eq!(order.builtin, ["crc32c_intel_not_here"]);
        assert_eq!(order.missing_softdeps, ["nope"]);

        let err = resolve(&mut table, &names(&["no_such_module"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "module no_such_module not found in the modules directory"
        );

        table.modules.push(("broken", m(&["gone"], &[], &[], &[])));
        let err = resolve(&mut table, &names(&["broken"])).unwrap_err();
        assert_eq!(err.to_string(), "module gone not found, needed by broken");
    }

    #[test]
    fn cycles() {
        let mut table = Table {
            modules: vec![
                ("a", m(&["b"], &[], &[], &[])),
                ("b", m(&["a"], &[], &[], &[])),
                ("c", m(&[], &["d"], &[], &[])),
                ("d", m(&[], &["c"], &[], &[])),
                ("e", m(&[], &[], &["e"], &[])),
            ],
            builtin: vec![],
        };
        let err = resolve(&mut table, &names(&["a"])).unwrap_err();
        assert!(err.to_string().contains("dependency cycle"), "{err}");
        assert_eq!(
            resolve(&mut table, &names(&["c"])).unwrap().modules,
            ["d", "c"]
        );
        assert_eq!(resolve(&mut table, &names(&["e"])).unwrap().modules, ["e"]);
    }

    #[test]
    fn softdep_post_loads_after() {
        let mut table = Table {
            modules: vec![
                ("main", m(&[], &[], &["helper"], &[])),
                ("helper", m(&[], &[], &[], &[])),
            ],
            builtin: vec![],
        };
        assert_eq!(
            resolve(&mut table, &names(&["main"])).unwrap().modules,
            ["main", "helper"]
        );
    }
}
