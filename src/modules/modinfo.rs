//! A kernel module's own description of itself: the `.modinfo` section, a run of
//! NUL-terminated `key=value` strings (see `MODULE_INFO()` in include/linux/moduleparam.h).
//! Debian's kernel packages ship no `modules.dep`, so dependencies come from here.

/// What one module says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// `name=` (kernels since 5.x write it); otherwise the file name is the name.
    pub name: Option<String>,
    /// `depends=a,b`: modules whose symbols this one uses. Must load first.
    pub depends: Vec<String>,
    /// `softdep=pre: a b post: c`: modules (or aliases) to load before and after.
    pub softdep_pre: Vec<String>,
    pub softdep_post: Vec<String>,
    /// `alias=`: names and device patterns this module answers to (`fs-ext4`, `pci:v...`).
    pub aliases: Vec<String>,
}

/// Parses the contents of a `.modinfo` section.
pub fn parse(section: &[u8]) -> ModInfo {
    let mut info = ModInfo::default();
    for record in section.split(|&b| b == 0) {
        let Ok(record) = std::str::from_utf8(record) else {
            continue;
        };
        let Some((key, value)) = record.split_once('=') else {
            continue;
        };
        match key {
            "name" => info.name = Some(normalize(value)),
            "depends" => info.depends.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(normalize),
            ),
            "softdep" => parse_softdep(value, &mut info),
            "alias" => info.aliases.push(value.to_owned()),
            _ => {}
        }
    }
    info
}

/// The `firmware=` records of a `.modinfo` section: the files the module may ask the
/// kernel's firmware loader for (`MODULE_FIRMWARE()`), as names relative to the firmware
/// directory (`qlogic/1040.bin`; a few drivers write shell patterns, `brcm/brcmfmac*-sdio.*.bin`).
/// Kept apart from [`ModInfo`]: only the image builder needs them.
pub fn firmware(section: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for record in section.split(|&b| b == 0) {
        let Some(value) = record.strip_prefix(b"firmware=") else {
            continue;
        };
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        let value = value.trim();
        if !value.is_empty() && !names.iter().any(|n| n == value) {
            names.push(value.to_owned());
        }
    }
    names
}

/// `pre: a b post: c d`, the grammar of modprobe.d(5)'s softdep line without its module
/// name. Words before any `pre:`/`post:` belong to neither and are dropped, as modprobe does.
fn parse_softdep(value: &str, info: &mut ModInfo) {
    #[derive(Clone, Copy)]
    enum Part {
        None,
        Pre,
        Post,
    }
    let mut part = Part::None;
    for word in value.split_ascii_whitespace() {
        match (word, part) {
            ("pre:", _) => part = Part::Pre,
            ("post:", _) => part = Part::Post,
            (_, Part::Pre) => info.softdep_pre.push(word.to_owned()),
            (_, Part::Post) => info.softdep_post.push(word.to_owned()),
            (_, Part::None) => {}
        }
    }
}

/// modprobe treats `-` and `_` in module names alike; the kernel's own names use `_`.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The suffixes a module file may have, compressed or not.
pub const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

/// The module name a file name stands for: `crc32c-intel.ko.xz` is `crc32c_intel`.
pub fn name_from_file(file_name: &str) -> Option<String> {
    MODULE_SUFFIXES
        .iter()
        .find_map(|suffix| file_name.strip_suffix(suffix))
        .filter(|stem| !stem.is_empty())
        .map(normalize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records() {
        let section = b"license=GPL\0alias=fs-ext4\0alias=ext3\0depends=mbcache,jbd2,crc16\0\
softdep=pre: crc32c\0name=ext4\0vermagic=6.1.0 SMP mod_unload\0";
        let info = parse(section);
        assert_eq!(info.name.as_deref(), Some("ext4"));
        assert_eq!(info.depends, ["mbcache", "jbd2", "crc16"]);
        assert_eq!(info.softdep_pre, ["crc32c"]);
        assert!(info.softdep_post.is_empty());
        assert_eq!(info.aliases, ["fs-ext4", "ext3"]);
    }

    #[test]
    fn empty_depends_means_none() {
        assert!(parse(b"depends=\0").depends.is_empty());
    }

    #[test]
    fn softdep_grammar() {
        let info = parse(b"softdep=ignored pre: a b post: c pre: d\0softdep=post: e\0");
        assert_eq!(info.softdep_pre, ["a", "b", "d"]);
        assert_eq!(info.softdep_post, ["c", "e"]);
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(
            name_from_file("crc32c-intel.ko.xz").as_deref(),
            Some("crc32c_intel")
        );
        assert_eq!(
            name_from_file("virtio_blk.ko").as_deref(),
            Some("virtio_blk")
        );
        assert_eq!(name_from_file("ext4.ko.zst").as_deref(), Some("ext4"));
        assert_eq!(name_from_file("README"), None);
        assert_eq!(name_from_file(".ko"), None);
        assert_eq!(parse(b"depends=a-b,c_d\0").depends, ["a_b", "c_d"]);
    }

    #[test]
    fn firmware_records() {
        let section = b"license=GPL\0firmware=qlogic/12160.bin\0firmware=qlogic/1280.bin\0\
firmware=qlogic/1280.bin\0firmware=\0firmware=\xff\0name=qla1280\0xfirmware=no\0";
        assert_eq!(firmware(section), ["qlogic/12160.bin", "qlogic/1280.bin"]);
        // Not part of what `parse` describes.
        assert_eq!(parse(section).name.as_deref(), Some("qla1280"));
        assert!(firmware(b"depends=a\0").is_empty());
    }

    #[test]
    fn garbage_is_skipped() {
        let info = parse(b"\xff\xfe=1\0noequals\0\0\0=\0depends=,,\0");
        assert_eq!(info, ModInfo::default());
    }
}
