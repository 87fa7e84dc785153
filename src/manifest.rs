//! The contract between the builder and the init: one small text file in the image,
//! `etc/baton/manifest`, written at build time and read once at boot, so the init does no
//! dependency solving of its own.
//!
//! ```text
//! baton-manifest 1
//! module lib/modules/6.1.0-56-amd64/kernel/drivers/virtio/virtio_ring.ko
//! shell bin/sh
//! ```
//! Paths are relative to the image root. The first line names the format version; an init
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
    /// Module files in load order.
    pub modules: Vec<String>,
    /// The rescue shell, if the image has one.
    pub shell: Option<String>,
}

impl Manifest {
    pub fn render(&self) -> String {
        let mut out = format!("{MAGIC} {VERSION}\n");
        for module in &self.modules {
            let _ = writeln!(out, "module {module}");
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
                Some(("module", path)) => manifest.modules.push(path.trim().to_owned()),
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
            modules: vec!["lib/modules/6.1/a.ko".into(), "lib/modules/6.1/b.ko".into()],
            shell: Some("bin/sh".into()),
        };
        assert_eq!(Manifest::parse(&m.render()).unwrap(), m);
        assert_eq!(
            Manifest::parse(&Manifest::default().render()).unwrap(),
            Manifest::default()
        );
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
