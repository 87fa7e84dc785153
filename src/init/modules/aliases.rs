//! The image's alias patterns, as the loader matches names and device modaliases against
//! them: the manifest's own, and those in the alias file it points to, read the first time
//! a name the manifest cannot answer alone is looked up (see `manifest::answered_inline`).
//! A boot whose root is found through its hint looks up only `fs-TYPE`, and never reads it.

use crate::bounded::read_bounded;
use crate::manifest::{self, AliasTable, Manifest};
use crate::modules::glob;
use std::cell::OnceCell;

/// The longest alias file read: a `--storage=all` image's is some 200 KB.
const MAX_ALIAS_FILE: u64 = 16 << 20;

/// Each pattern's literal head was worked out once, as it was read: a boot matches every
/// device's modalias against all of them (1,500 in a generic image), and comparing heads
/// first keeps that to a few microseconds a device.
pub struct Aliases<'m> {
    inline: &'m AliasTable,
    file: Option<&'m str>,
    rest: OnceCell<AliasTable>,
}

impl<'m> Aliases<'m> {
    pub fn new(inline: &'m AliasTable, file: Option<&'m str>) -> Aliases<'m> {
        Aliases {
            inline,
            file,
            rest: OnceCell::new(),
        }
    }

    /// Module names whose patterns match `alias`, sorted and without repeats.
    pub fn matching(&self, alias: &str) -> Vec<String> {
        let mut names = Vec::new();
        add_matching(self.inline, alias, &mut names);
        if let (Some(path), false) = (self.file, manifest::answered_inline(alias)) {
            add_matching(self.rest.get_or_init(|| read(path)), alias, &mut names);
        }
        names.sort_unstable();
        names.dedup();
        names
    }
}

fn add_matching(table: &AliasTable, alias: &str, names: &mut Vec<String>) {
    for (head, pattern, name) in table.entries() {
        if alias.starts_with(head) && glob::matches(pattern, alias) {
            names.push(name.to_owned());
        }
    }
}

/// The alias file's table; an empty one, said once, when it cannot be read: the boot goes
/// on with the manifest's aliases (a root on a driver named at build time still comes up).
fn read(path: &str) -> AliasTable {
    let parsed = match read_bounded(path, MAX_ALIAS_FILE) {
        Ok(bytes) => Manifest::parse(&String::from_utf8_lossy(&bytes)),
        Err(e) => Err(e.to_string()),
    };
    parsed.map(|file| file.aliases).unwrap_or_else(|why| {
        log::warn!(
            "failed to read the image's device aliases in {path}: {why}; drivers are found only by name"
        );
        AliasTable::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> AliasTable {
        pairs.iter().copied().collect()
    }

    #[test]
    fn aliases_match_by_pattern() {
        let table = table(&[
            ("pci:v00001AF4d*sv*sd*bc*sc*i*", "virtio_pci"),
            ("virtio:d00000002v*", "virtio_blk"),
            ("fs-ext4", "ext4"),
            ("pci:v*d*sv*sd*bc01sc06i01*", "ahci"),
        ]);
        let aliases = Aliases::new(&table, None);
        assert_eq!(
            aliases.matching("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"),
            ["virtio_pci"]
        );
        assert_eq!(
            aliases.matching("virtio:d00000002v00001AF4"),
            ["virtio_blk"]
        );
        assert_eq!(aliases.matching("fs-ext4"), ["ext4"]);
        assert_eq!(aliases.matching("fs-ext"), Vec::<String>::new());
        assert_eq!(
            aliases.matching("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"),
            ["ahci"]
        );
    }

    #[test]
    fn the_alias_file_is_read_only_for_what_the_manifest_cannot_answer() {
        let dir = std::env::temp_dir().join(format!("baton-aliases-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("aliases");
        let file = Manifest {
            aliases: table(&[("virtio:d00000002v*", "virtio_blk")]),
            ..Manifest::default()
        };
        std::fs::write(&path, file.render()).unwrap();
        let inline = table(&[("fs-ext4", "ext4"), ("*", "everything")]);
        let path_str = path.to_str().unwrap();
        let aliases = Aliases::new(&inline, Some(path_str));
        assert_eq!(aliases.matching("fs-ext4"), ["everything", "ext4"]);
        assert!(
            aliases.rest.get().is_none(),
            "fs- is answered by the manifest"
        );
        assert_eq!(
            aliases.matching("virtio:d00000002v00001AF4"),
            ["everything", "virtio_blk"]
        );
        assert_eq!(aliases.rest.get().map(AliasTable::len), Some(1));

        // A file that cannot be read leaves the manifest's aliases.
        let missing = dir.join("missing");
        let aliases = Aliases::new(&inline, Some(missing.to_str().unwrap()));
        assert_eq!(
            aliases.matching("virtio:d00000002v00001AF4"),
            ["everything"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
