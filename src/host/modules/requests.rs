//! Modules a filesystem asks the kernel for when it mounts, which are neither its
//! dependencies nor its softdeps, so no `.modinfo` names them: the character-set tables
//! (NLS) FAT, exFAT, HFS+, ISO 9660 and NTFS load by name (load_nls() -> request_module()).
//! An image with `vfat` but without `nls_cp437` cannot mount a FAT root at all: FAT's
//! fill_super fails when its codepage table does not load.
//!
//! The names come from the kernel's config where the builder can find it (Debian: codepage
//! 437, iocharset "ascii"), otherwise from the upstream defaults and their common variants.
//! What each filesystem loads, from fs/fat/inode.c, fs/exfat/super.c, fs/hfsplus/super.c,
//! fs/isofs/inode.c and fs/ntfs3/super.c with default mount options:
//! - fat (msdos and vfat): `nls_cp<FAT_DEFAULT_CODEPAGE>`, fatal when missing;
//! - vfat: also `nls_<FAT_DEFAULT_IOCHARSET>`, fatal, "utf8" included;
//! - exfat: `nls_<EXFAT_DEFAULT_IOCHARSET>` unless that is "utf8";
//! - hfsplus: `nls_utf8`, always;
//! - isofs, ntfs3: `nls_<NLS_DEFAULT>` unless "utf8" (they fall back to a built-in table).
//!
//! The crypto and checksum modules filesystems request (ext4's crc32c, f2fs's crc32, btrfs's
//! hashes) are declared as softdeps by the filesystems themselves, and so already resolved.

use super::config::KernelConfig;
use crate::modules::modinfo::normalize;

/// The modules `module` will ask for at mount time, as module names.
pub fn mount_time(module: &str, config: Option<&KernelConfig>) -> Vec<String> {
    let value = |option: &str, default: &str| -> String {
        config
            .and_then(|c| c.get(option))
            .unwrap_or(default)
            .to_owned()
    };
    let charsets: Vec<String> = match normalize(module).as_str() {
        "fat" => vec![format!("cp{}", value("CONFIG_FAT_DEFAULT_CODEPAGE", "437"))],
        "vfat" => match config {
            Some(_) => vec![value("CONFIG_FAT_DEFAULT_IOCHARSET", "iso8859-1")],
            // Without the config: the upstream default and what distributions choose.
            None => vec!["iso8859-1".into(), "ascii".into(), "utf8".into()],
        },
        "exfat" => vec![value("CONFIG_EXFAT_DEFAULT_IOCHARSET", "utf8")]
            .into_iter()
            .filter(|c| c != "utf8")
            .collect(),
        "hfsplus" => vec!["utf8".into()],
        "isofs" | "ntfs3" => vec![value("CONFIG_NLS_DEFAULT", "iso8859-1")]
            .into_iter()
            .filter(|c| c != "utf8")
            .collect(),
        _ => Vec::new(),
    };
    charsets
        .iter()
        .filter(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(|charset| normalize(&format!("nls_{charset}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debian() -> KernelConfig {
        // The values of Debian's 6.1 and 6.12 kernels.
        KernelConfig::parse(
            "CONFIG_FAT_DEFAULT_CODEPAGE=437\nCONFIG_FAT_DEFAULT_IOCHARSET=\"ascii\"\nCONFIG_EXFAT_DEFAULT_IOCHARSET=\"utf8\"\nCONFIG_NLS_DEFAULT=\"utf8\"\n",
        )
    }

    #[test]
    fn fat_asks_for_its_codepage_and_iocharset() {
        let config = debian();
        assert_eq!(mount_time("fat", Some(&config)), ["nls_cp437"]);
        assert_eq!(mount_time("vfat", Some(&config)), ["nls_ascii"]);
        let other = KernelConfig::parse(
            "CONFIG_FAT_DEFAULT_CODEPAGE=850\nCONFIG_FAT_DEFAULT_IOCHARSET=\"iso8859-15\"\n",
        );
        assert_eq!(mount_time("fat", Some(&other)), ["nls_cp850"]);
        assert_eq!(mount_time("vfat", Some(&other)), ["nls_iso8859_15"]);
    }

    #[test]
    fn without_a_config_the_common_defaults() {
        assert_eq!(mount_time("fat", None), ["nls_cp437"]);
        assert_eq!(
            mount_time("vfat", None),
            ["nls_iso8859_1", "nls_ascii", "nls_utf8"]
        );
        assert_eq!(mount_time("hfsplus", None), ["nls_utf8"]);
    }

    #[test]
    fn utf8_defaults_need_nothing_where_the_filesystem_handles_them() {
        let config = debian();
        assert!(mount_time("exfat", Some(&config)).is_empty());
        assert!(mount_time("isofs", Some(&config)).is_empty());
        assert_eq!(mount_time("hfsplus", Some(&config)), ["nls_utf8"]);
        assert!(mount_time("ext4", Some(&config)).is_empty());
    }

    #[test]
    fn a_strange_config_value_names_nothing() {
        let config = KernelConfig::parse("CONFIG_FAT_DEFAULT_IOCHARSET=\"../x y\"\n");
        assert!(mount_time("vfat", Some(&config)).is_empty());
    }
}
