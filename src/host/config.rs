//! `/etc/baton/baton.conf` and `/etc/baton/conf.d/*.conf`: what `baton update` builds for
//! the installed kernels. The format is the one initramfs-tools' and dracut's files use, so
//! people already know how to write it: `key=value` lines (shell-style quotes allowed, `#`
//! comments), `key+=value` to add to a list. Files are read in order (baton.conf, then
//! conf.d in name order); a later value replaces an earlier one, `+=` adds to it.
//!
//! Pure: [`parse`] takes text and says where each setting came from, so a mistake is
//! reported as `FILE:LINE`.

use std::fmt;

/// Which modules an image carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleSet {
    /// Every storage and root-filesystem driver (`--storage`), loaded at boot by the
    /// hardware found: the image works when the disk moves to another machine.
    Generic,
    /// Only what this machine's root needs, detected from the running system.
    Host,
}

/// The settings, after every file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub modules: ModuleSet,
    /// `modules_add`: more modules, whatever the set.
    pub extra_modules: Vec<String>,
    /// `compress`: auto, gzip, zstd, xz, lz4 or none.
    pub compress: String,
    /// `include`: `SRC[:DEST]` files for the image.
    pub include: Vec<String>,
    /// `cmdline`: default kernel parameters baked into the image.
    pub cmdline: Vec<String>,
    /// `shell`: a static rescue shell.
    pub shell: Option<String>,
    /// `microcode`: all, host or none; unset, host for `modules=host` and all otherwise.
    pub microcode: Option<String>,
    /// `keymap`: the console keymap (a name, a file of the system, or none); unset, the
    /// system's own (vconsole.conf, console-setup).
    pub keymap: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            modules: ModuleSet::Generic,
            extra_modules: Vec::new(),
            compress: "auto".to_owned(),
            include: Vec::new(),
            cmdline: Vec::new(),
            shell: None,
            microcode: None,
            keymap: None,
        }
    }
}

/// A line that cannot be used, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: String,
    pub line: usize,
    pub why: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.origin, self.line, self.why)
    }
}

impl std::error::Error for ConfigError {}

/// Applies the settings of one file (`origin` names it in errors) on top of `config`.
pub fn apply(config: &mut Config, origin: &str, text: &str) -> Result<(), ConfigError> {
    for (index, raw) in text.lines().enumerate() {
        let error = |why: String| ConfigError {
            origin: origin.to_owned(),
            line: index + 1,
            why,
        };
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(error(format!("expected KEY=VALUE, found {line:?}")));
        };
        let (key, append) = match key.trim_end().strip_suffix('+') {
            Some(key) => (key.trim_end(), true),
            None => (key.trim_end(), false),
        };
        let value = unquote(value.trim()).map_err(|why| error(why.to_owned()))?;
        set(config, key, append, &value).map_err(error)?;
    }
    Ok(())
}

/// One setting: `key=value`, or `key+=value` (`append`) for the lists.
fn set(config: &mut Config, key: &str, append: bool, value: &str) -> Result<(), String> {
    let words = || {
        value
            .split([' ', '\t', ','])
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let list = |list: &mut Vec<String>| {
        if !append {
            list.clear();
        }
        list.extend(words());
    };
    match key.to_ascii_lowercase().as_str() {
        "modules" if !append => {
            config.modules = match value {
                "generic" | "most" => ModuleSet::Generic,
                "host" | "dep" => ModuleSet::Host,
                other => return Err(format!("modules={other:?}: expected generic or host")),
            }
        }
        "modules_add" | "add_drivers" => list(&mut config.extra_modules),
        "compress" if !append => match value {
            "auto" | "gzip" | "zstd" | "xz" | "lz4" | "none" => config.compress = value.to_owned(),
            other => {
                return Err(format!(
                    "compress={other:?}: expected auto, gzip, zstd, xz, lz4 or none"
                ))
            }
        },
        "include" => list(&mut config.include),
        "cmdline" => {
            if !append {
                config.cmdline.clear();
            }
            if !value.is_empty() {
                config.cmdline.push(value.to_owned());
            }
        }
        "shell" if !append => config.shell = (!value.is_empty()).then(|| value.to_owned()),
        "microcode" if !append => match value {
            "" => config.microcode = None,
            "all" | "host" | "none" => config.microcode = Some(value.to_owned()),
            other => return Err(format!("microcode={other:?}: expected all, host or none")),
        },
        "keymap" if !append => config.keymap = (!value.is_empty()).then(|| value.to_owned()),
        "modules" | "compress" | "shell" | "microcode" | "keymap" => {
            return Err(format!("{key} takes one value: use {key}=, not {key}+="))
        }
        other => return Err(format!("unknown setting {other:?}")),
    }
    Ok(())
}

/// A `#` outside quotes starts a comment.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (at, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') => return line.get(..at).unwrap_or(line),
            _ => {}
        }
    }
    line
}

/// `"a b"`, `'a b'` or a bare word.
fn unquote(value: &str) -> Result<String, &'static str> {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q) {
            return inner
                .strip_suffix(q)
                .map(str::to_owned)
                .ok_or("unbalanced quote");
        }
    }
    if value.contains(['"', '\'']) {
        return Err("quotes must surround the whole value");
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_defaults_are_the_built_in_ones() {
        let mut config = Config::default();
        apply(
            &mut config,
            "baton.conf",
            include_str!("../../initramfs/baton.conf"),
        )
        .unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn later_files_replace_and_plus_appends() {
        let mut config = Config::default();
        apply(
            &mut config,
            "baton.conf",
            "modules=host\nmodules_add=\"nvme, dm_crypt\"  # for the laptop\ncmdline='rd.emergency=reboot quiet'\n",
        )
        .unwrap();
        apply(
            &mut config,
            "conf.d/10-usb.conf",
            "modules_add+=uas usb_storage\ncompress=zstd\n",
        )
        .unwrap();
        assert_eq!(config.modules, ModuleSet::Host);
        assert_eq!(
            config.extra_modules,
            ["nvme", "dm_crypt", "uas", "usb_storage"]
        );
        assert_eq!(config.compress, "zstd");
        assert_eq!(config.cmdline, ["rd.emergency=reboot quiet"]);
        apply(
            &mut config,
            "conf.d/20.conf",
            "modules_add=\nmodules=generic",
        )
        .unwrap();
        assert!(config.extra_modules.is_empty());
        assert_eq!(config.modules, ModuleSet::Generic);
        apply(&mut config, "conf.d/30.conf", "microcode=none").unwrap();
        assert_eq!(config.microcode.as_deref(), Some("none"));
        apply(&mut config, "conf.d/40.conf", "microcode=").unwrap();
        assert_eq!(config.microcode, None);
        apply(&mut config, "conf.d/50.conf", "keymap=fr-latin1").unwrap();
        assert_eq!(config.keymap.as_deref(), Some("fr-latin1"));
        apply(&mut config, "conf.d/60.conf", "keymap=").unwrap();
        assert_eq!(config.keymap, None);
    }

    #[test]
    fn mistakes_name_their_file_and_line() {
        for (text, why) in [
            (
                "\nmodules=some",
                "conf:2: modules=\"some\": expected generic or host",
            ),
            (
                "compress=brotli",
                "conf:1: compress=\"brotli\": expected auto, gzip, zstd, xz, lz4 or none",
            ),
            ("colour=blue", "conf:1: unknown setting \"colour\""),
            (
                "microcode=amd",
                "conf:1: microcode=\"amd\": expected all, host or none",
            ),
            ("modules_add=\"nvme", "conf:1: unbalanced quote"),
            (
                "just words",
                "conf:1: expected KEY=VALUE, found \"just words\"",
            ),
            (
                "modules+=host",
                "conf:1: modules takes one value: use modules=, not modules+=",
            ),
        ] {
            let err = apply(&mut Config::default(), "conf", text).unwrap_err();
            assert_eq!(err.to_string(), why);
        }
    }
}
