//! The kernel's build configuration (`CONFIG_X=value` lines), found beside a modules tree
//! where Debian, Fedora and qemu/fetch-kernel put it. Some choices the builder must match
//! are only written there: whether the kernel decompresses modules itself, and the
//! character sets a filesystem asks for at mount time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
        candidates(modules_dir, release)
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

/// Where the config of the kernel whose modules are in `modules_dir` may be: beside them, in
/// their build tree, in the `/boot` of the system they are installed in, or in the directory
/// holding `lib/modules` (a kernel package unpacked by qemu/fetch-kernel). The system is found
/// by taking names off the path, not with `..`: on a merged-/usr system `lib` is a link to
/// `usr/lib`, so `lib/modules/KVER/../../..` is `usr`, not the system.
fn candidates(modules_dir: &Path, release: &str) -> Vec<PathBuf> {
    let mut found = vec![
        modules_dir.join("config"),
        modules_dir.join("build/.config"),
    ];
    let Some(lib) = modules_dir
        .parent()
        .filter(|m| m.file_name().is_some_and(|n| n == "modules"))
        .and_then(Path::parent)
    else {
        return found;
    };
    let mut root = lib.parent().map(Path::to_path_buf).unwrap_or_default();
    // .../usr/lib/modules/KVER: the system is above usr.
    if root.file_name().is_some_and(|n| n == "usr") {
        root = root.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    if root.as_os_str().is_empty() {
        root = PathBuf::from(".");
    }
    found.push(root.join("boot").join(format!("config-{release}")));
    found.push(root.join("config"));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_is_found_by_names_not_by_dot_dot() {
        let c = candidates(
            Path::new("/srv/tree/lib/modules/6.1.0-57-amd64"),
            "6.1.0-57-amd64",
        );
        assert!(c.contains(&PathBuf::from("/srv/tree/boot/config-6.1.0-57-amd64")));
        assert!(c.contains(&PathBuf::from("/srv/tree/config")));
        let c = candidates(Path::new("/usr/lib/modules/6.12.1/"), "6.12.1");
        assert!(c.contains(&PathBuf::from("/boot/config-6.12.1")));
        let c = candidates(Path::new("lib/modules/6.1"), "6.1");
        assert!(c.contains(&PathBuf::from("./boot/config-6.1")));
        let c = candidates(Path::new("/tmp/mods"), "mods");
        assert_eq!(c.len(), 2, "only beside the modules: {c:?}");
    }

    #[test]
    fn found_in_a_merged_usr_tree() {
        let root = std::env::temp_dir().join(format!("baton-kconfig-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("usr/lib/modules/6.1.0-9")).unwrap();
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::fs::write(root.join("boot/config-6.1.0-9"), "CONFIG_RD_LZ4=y\n").unwrap();
        let config = KernelConfig::find(&root.join("lib/modules/6.1.0-9"), "6.1.0-9");
        assert!(config.is_some_and(|c| c.is_set("CONFIG_RD_LZ4")));
        std::fs::remove_dir_all(&root).unwrap();
    }

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
