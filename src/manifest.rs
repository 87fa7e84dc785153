//! The contract between the builder and the init: one small text file in the image,
//! `etc/baton/manifest`, written at build time and read once at boot, so the init does no
//! dependency solving of its own.
//!
//! ```text
//! baton-manifest 1
//! module /lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio_ring.ko
//! module /lib/modules/6.1.0-56-amd64/kernel/arch/x86/crypto/crc32c-intel.ko cpu:type:x86,ven*fam*mod*:feature:*0094*
//! shell /bin/sh
//! ```
//! Paths are absolute inside the image. Patterns after a module's path are the `cpu:` aliases
//! it declares: such a module only works on a CPU with those features (its init fails with
//! ENODEV elsewhere), so the init skips it unless the CPU's modalias matches one. The first line names the format version; an init
//! refuses a version it does not know instead of guessing what newer lines mean.

use std::fmt::Write as _;

/// Where the manifest lives inside the image.
pub const PATH: &str = "etc/baton/manifest";
/// Default command-line parameters, prepended to /proc/cmdline (dracut's cmdline.d idea).
pub const DEFAULTS_PATH: &str = "etc/baton/cmdline";
/// The format this code writes and reads.
pub const VERSION: u32 = 1;
const MAGIC: &str = "baton-manifest";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Modules in load order.
    pub modules: Vec<ModuleEntry>,
    /// The rescue shell, if the image has one.
    pub shell: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleEntry {
    pub path: String,
    /// `cpu:` modalias patterns; empty means the module loads on any CPU.
    pub cpu: Vec<String>,
}

impl ModuleEntry {
    pub fn new(path: &str) -> ModuleEntry {
        ModuleEntry {
            path: path.to_owned(),
            cpu: Vec::new(),
        }
    }

    /// Whether the module is for this CPU: `cpu_modalias` is the content of
    /// /sys/devices/system/cpu/modalias, or `None` when unknown (then: load it).
    pub fn suits_cpu(&self, cpu_modalias: Option<&str>) -> bool {
        match cpu_modalias {
            Some(alias) if !self.cpu.is_empty() => self
                .cpu
                .iter()
                .any(|p| crate::modules::glob::matches(p, alias.trim())),
            _ => true,
        }
    }

    /// The module's name, from its file name.
    pub fn name(&self) -> &str {
        let file = self.path.rsplit('/').next().unwrap_or(&self.path);
        file.split('.').next().unwrap_or(file)
    }
}

impl Manifest {
    pub fn render(&self) -> String {
        let mut out = format!("{MAGIC} {VERSION}\n");
        for module in &self.modules {
            let _ = write!(out, "module {}", module.path);
            for pattern in &module.cpu {
                let _ = write!(out, " {pattern}");
            }
            out.push('\n');
        }
        if let Some(shell) = &self.shell {
            let _ = writeln!(out, "shell {shell}");
        }
        out
    }

    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut lines = text.lines().enumerate();
        let version = match lines.next() {
            Some((_, first)) => match first.split_once(' ') {
                Some((MAGIC, v)) => v
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| format!("bad manifest version {v:?}"))?,
                _ => return Err("not a baton manifest (bad first line)".into()),
            },
            None => return Err("empty manifest".into()),
        };
        if version != VERSION {
            return Err(format!(
                "manifest version {version} is not supported by this init (it reads version {VERSION}); rebuild the image with the matching baton"
            ));
        }
        let mut manifest = Manifest::default();
        for (index, line) in lines {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(' ') {
                Some(("module", rest)) => {
                    let mut words = rest.split_ascii_whitespace();
                    let path = words.next().unwrap_or_default().to_owned();
                    let cpu = words.map(str::to_owned).collect();
                    manifest.modules.push(ModuleEntry { path, cpu });
                }
                Some(("shell", path)) => manifest.shell = Some(path.trim().to_owned()),
                _ => {
                    return Err(format!(
                        "manifest line {}: unknown entry {line:?}",
                        index + 1
                    ))
                }
            }
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Manifest {
            modules: vec![
                ModuleEntry::new("/lib/modules/6.1/a.ko"),
                ModuleEntry {
                    path: "/lib/modules/6.1/crc32c-intel.ko".into(),
                    cpu: vec!["cpu:type:x86,ven*fam*mod*:feature:*0094*".into()],
                },
            ],
            shell: Some("bin/sh".into()),
        };
        assert_eq!(Manifest::parse(&m.render()).unwrap(), m);
        assert_eq!(
            Manifest::parse(&Manifest::default().render()).unwrap(),
            Manifest::default()
        );
    }

    #[test]
    fn cpu_feature_modules_suit_only_matching_cpus() {
        let m = ModuleEntry {
            path: "/lib/modules/6.1/kernel/arch/x86/crypto/crc32c-intel.ko".into(),
            cpu: vec!["cpu:type:x86,ven*fam*mod*:feature:*0094*".into()],
        };
        assert_eq!(m.name(), "crc32c-intel");
        let with_sse42 = "cpu:type:x86,ven0000fam0006mod003A:feature:,0000,0001,0094,0095\n";
        let without = "cpu:type:x86,ven0002fam0019mod0011:feature:,0000,0001,0093,0095\n";
        assert!(m.suits_cpu(Some(with_sse42)));
        assert!(!m.suits_cpu(Some(without)));
        assert!(m.suits_cpu(None), "unknown CPU: try it");
        assert!(ModuleEntry::new("/x.ko").suits_cpu(Some(without)));
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        assert!(Manifest::parse("").is_err());
        assert!(Manifest::parse("hello 1\n").is_err());
        assert!(Manifest::parse("baton-manifest x\n").is_err());
        let err = Manifest::parse("baton-manifest 2\n").unwrap_err();
        assert!(err.contains("version 2 is not supported"), "{err}");
        let err = Manifest::parse("baton-manifest 1\nfirmware x\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }
}
