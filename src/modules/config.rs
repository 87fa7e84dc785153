//! The kernel's build configuration (`CONFIG_X=value` lines), found beside a modules tree
//! where Debian, Fedora and qemu/fetch-kernel put it. Some choices the builder must match
//! are only written there: whether the kernel decompresses modules itself, and the
//! character sets a filesystem asks for at mount time.

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelConfig {
    values: BTreeMap<String, String>,
}

impl KernelConfig {
    /// Parses a `.config`: `CONFIG_X=value` lines, string values without their quotes;
    /// comments (`# CONFIG_X is not set`) and anything else are skipped.
    pub fn parse(text: &str) -> KernelConfig {
        let values = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .filter(|(key, _)| key.starts_with("CONFIG_"))
            .map(|(key, value)| {
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                (key.to_owned(), value.to_owned())
            })
            .collect();
        KernelConfig { values }
    }

    /// The config of the kernel whose modules are in `modules_dir`, if one can be found.
    pub fn find(modules_dir: &Path, release: &str) -> Option<KernelConfig> {
        let candidates = [
            modules_dir.join("config"),
            modules_dir.join("build/.config"),
            modules_dir.join(format!("../../../boot/config-{release}")),
            modules_dir.join("../../../config"),
        ];
        candidates
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|text| KernelConfig::parse(&text))
    }

    /// The value of `option` (with its `CONFIG_` prefix), quotes removed.
    pub fn get(&self, option: &str) -> Option<&str> {
        self.values.get(option).map(String::as_str)
    }

    /// Whether `option` is built in (`=y`).
    pub fn is_set(&self, option: &str) -> bool {
        self.get(option) == Some("y")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_strings() {
        let config = KernelConfig::parse(
            "# comment\nCONFIG_FAT_DEFAULT_CODEPAGE=437\nCONFIG_FAT_DEFAULT_IOCHARSET=\"ascii\"\n# CONFIG_EXT2_FS is not set\nCONFIG_NLS=y\n",
        );
        assert_eq!(config.get("CONFIG_FAT_DEFAULT_CODEPAGE"), Some("437"));
        assert_eq!(config.get("CONFIG_FAT_DEFAULT_IOCHARSET"), Some("ascii"));
        assert_eq!(config.get("CONFIG_EXT2_FS"), None);
        assert!(config.is_set("CONFIG_NLS"));
    }
}
