//! The contract between the builder and the init: one small text file in the image,
//! `etc/baton/manifest`, written at build time and read once at boot, so the init does no
//! dependency solving of its own.
//!
//! ```text
//! baton-manifest 1
//! shell /bin/sh
//! module virtio_blk /lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko deps=virtio,virtio_ring
//! module crc32c_intel /lib/modules/6.1.0/kernel/arch/x86/crypto/crc32c-intel.ko cpu=cpu:type:x86,ven*fam*mod*:feature:*0094*
//! load virtio_blk
//! alias virtio:d00000002v* virtio_blk
//! root-fs ext4
//! root-drivers virtio_blk,virtio_pci
//! ```
//! - `module NAME PATH [deps=A,B] [post=C] [cpu=PATTERN]...`: a module in the image. `deps`
//!   load first (its `depends=` and softdep `pre:`), `post` after (softdep `post:`). `cpu`
//!   patterns are the `cpu:` aliases it declares: such a module only works on a CPU with
//!   those features (its init fails with ENODEV elsewhere), so it is skipped unless the CPU's
//!   modalias matches one.
//! - `load NAME`: loaded at boot, in this order (the builder's `--module` list).
//! - `alias PATTERN NAME`: a device `modalias` or a name like `fs-ext4` that NAME serves.
//! - `root-fs TYPE`: the filesystem the root had when the image was built (`baton update`,
//!   `--host`, `--root-fs`). Only a hint: the init loads its module beside the disk drivers
//!   rather than after the disk, and mounts whatever the disk turns out to hold.
//! - `root-drivers NAME,...`: the drivers on the root's path when the image was built (its
//!   disk's, its controller's, its stack's: `baton update` reads them from the running
//!   system, `--root-driver` names them). Only a hint: the init loads them first and looks
//!   for the root before it reads the rest of the hardware; a root that is not there then
//!   is searched for with every driver, as without the hint.
//! - `shell PATH`: the rescue shell.
//! - `aliases PATH`: the alias lines that are not in the manifest, in a file of the same
//!   format (`etc/baton/aliases`). The manifest keeps those that can answer the names the
//!   init looks up at every boot (`fs-TYPE` for the root, the kernel's `crypto-` requests);
//!   the device patterns only coldplug needs (some 1,400 lines of a generic image's 1,550)
//!   are read the first time a device is looked up, which a boot whose root is found
//!   through its hint never does. See [`answered_inline`].
//!
//! The first line names the format version; an init refuses a version it does not know
//! instead of guessing what newer lines mean.

use std::fmt::Write as _;

/// Where the manifest lives inside the image.
pub const PATH: &str = "etc/baton/manifest";
/// Where a manifest's `aliases` line points, in images baton builds.
pub const ALIASES_PATH: &str = "etc/baton/aliases";
/// The names looked up by prefix that the manifest's own alias lines answer whole: the root's
/// filesystem (`fs-ext4`), asked for at every boot, and the kernel's requests for crypto
/// algorithms (`crypto-crc32c`), each answered by a helper process that reads the manifest.
const ANSWERED_INLINE: [&str; 2] = ["fs-", "crypto-"];
/// Default command-line parameters, prepended to /proc/cmdline (dracut's cmdline.d idea).
pub const DEFAULTS_PATH: &str = "etc/baton/cmdline";
/// The format this code writes and reads.
pub const VERSION: u32 = 1;
const MAGIC: &str = "baton-manifest";
/// Room reserved ahead for alias lines, at most (more still parse, growing the list).
const MAX_ALIASES: usize = 1 << 16;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Every module in the image, dependencies before dependents.
    pub modules: Vec<ModuleEntry>,
    /// Modules to load at boot, in order.
    pub load: Vec<String>,
    /// Device modaliases and names like `fs-ext4`, and the module serving each.
    pub aliases: AliasTable,
    /// The root's filesystem type when the image was built, if known (a hint).
    pub root_fs: Option<String>,
    /// The drivers on the root's path when the image was built (a hint).
    pub root_drivers: Vec<String>,
    /// The rescue shell, if the image has one.
    pub shell: Option<String>,
    /// Where the alias lines not in the manifest are (absolute, as the init sees it).
    pub alias_file: Option<String>,
}

/// Whether the manifest's own alias lines answer `query` whole, without the alias file:
/// the builder keeps there every pattern that can match a name with one of
/// [`ANSWERED_INLINE`]'s prefixes ([`AliasTable::split_inline`]).
pub fn answered_inline(query: &str) -> bool {
    ANSWERED_INLINE.iter().any(|p| query.starts_with(p))
}

/// The alias lines: (pattern, module name) pairs in one block of text, with where each part
/// starts and ends. A generic image has some 1,500: read into two strings each, they made the
/// init's reading of the manifest cost 6 ms more than a small image's under an emulated CPU;
/// here they take two allocations, and each pattern's literal head (the part before its
/// first wildcard, which an alias must start with) is measured once, as it is read.
#[derive(Debug, Clone, Default)]
pub struct AliasTable {
    text: String,
    /// Per alias, offsets into `text`: the pattern's start, its literal head's end, the
    /// pattern's end (where the name starts) and the name's end.
    spans: Vec<[u32; 4]>,
}

impl AliasTable {
    /// Adds `pattern` served by `name`. A table is bounded by the manifest's size, far below
    /// 4 GiB; an alias that would not fit is left out rather than wrapped around.
    pub fn push(&mut self, pattern: &str, name: &str) {
        let offset = |len: usize| u32::try_from(len).ok();
        let start = self.text.len();
        let head = crate::modules::glob::literal_head(pattern).len();
        let (Some(a), Some(h), Some(b), Some(c)) = (
            offset(start),
            offset(start + head),
            offset(start + pattern.len()),
            offset(start + pattern.len() + name.len()),
        ) else {
            return;
        };
        self.text.push_str(pattern);
        self.text.push_str(name);
        self.spans.push([a, h, b, c]);
    }

    fn reserve(&mut self, aliases: usize, bytes: usize) {
        self.spans.reserve(aliases);
        self.text.reserve(bytes);
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn part(&self, from: u32, to: u32) -> &str {
        self.text
            .get(from as usize..to as usize)
            .unwrap_or_default()
    }

    /// Each alias as (literal head, pattern, module name), in the order they were added.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.spans
            .iter()
            .map(|&[a, h, b, c]| (self.part(a, h), self.part(a, b), self.part(b, c)))
    }

    /// Each alias as (pattern, module name).
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries().map(|(_, pattern, name)| (pattern, name))
    }

    /// The aliases that can answer a query [`answered_inline`] says the manifest answers,
    /// and the rest. A pattern matches only names that start with its literal head, so it
    /// can match a name starting with prefix P only if its head starts with P or is itself
    /// a start of P (`fs-*`, `f*`, `*`).
    pub fn split_inline(&self) -> (AliasTable, AliasTable) {
        let (mut inline, mut rest) = (AliasTable::default(), AliasTable::default());
        for (head, pattern, name) in self.entries() {
            let inline_query = ANSWERED_INLINE
                .iter()
                .any(|p| head.starts_with(p) || p.starts_with(head));
            match inline_query {
                true => inline.push(pattern, name),
                false => rest.push(pattern, name),
            }
        }
        (inline, rest)
    }
}

impl PartialEq for AliasTable {
    fn eq(&self, other: &AliasTable) -> bool {
        self.pairs().eq(other.pairs())
    }
}

impl Eq for AliasTable {}

impl<P: AsRef<str>, N: AsRef<str>> FromIterator<(P, N)> for AliasTable {
    fn from_iter<I: IntoIterator<Item = (P, N)>>(pairs: I) -> AliasTable {
        let mut table = AliasTable::default();
        for (pattern, name) in pairs {
            table.push(pattern.as_ref(), name.as_ref());
        }
        table
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleEntry {
    pub name: String,
    pub path: String,
    pub deps: Vec<String>,
    pub post: Vec<String>,
    /// `cpu:` modalias patterns; empty means the module loads on any CPU.
    pub cpu: Vec<String>,
}

impl ModuleEntry {
    pub fn new(name: &str, path: &str) -> ModuleEntry {
        ModuleEntry {
            name: name.to_owned(),
            path: path.to_owned(),
            ..ModuleEntry::default()
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
}

/// The rescue shell a manifest names, found even when the rest of it cannot be read: a
/// damaged manifest is exactly when the shell is wanted.
pub fn shell_of(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut words = line.split_ascii_whitespace();
        match (words.next(), words.next()) {
            (Some("shell"), Some(path)) => Some(path.to_owned()),
            _ => None,
        }
    })
}

impl Manifest {
    pub fn render(&self) -> String {
        let mut out = format!("{MAGIC} {VERSION}\n");
        // The shell first: [`shell_of`] reads the lines until it meets it, before and
        // whatever the rest holds, and a generic image has some 1,700 more.
        if let Some(shell) = &self.shell {
            let _ = writeln!(out, "shell {shell}");
        }
        for m in &self.modules {
            let _ = write!(out, "module {} {}", m.name, m.path);
            if !m.deps.is_empty() {
                let _ = write!(out, " deps={}", m.deps.join(","));
            }
            if !m.post.is_empty() {
                let _ = write!(out, " post={}", m.post.join(","));
            }
            for pattern in &m.cpu {
                let _ = write!(out, " cpu={pattern}");
            }
            out.push('\n');
        }
        for name in &self.load {
            let _ = writeln!(out, "load {name}");
        }
        for (pattern, name) in self.aliases.pairs() {
            let _ = writeln!(out, "alias {pattern} {name}");
        }
        if let Some(fs) = &self.root_fs {
            let _ = writeln!(out, "root-fs {fs}");
        }
        if !self.root_drivers.is_empty() {
            let _ = writeln!(out, "root-drivers {}", self.root_drivers.join(","));
        }
        if let Some(path) = &self.alias_file {
            let _ = writeln!(out, "aliases {path}");
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
        // A generic image has some 1,500 alias lines: one allocation for their list, and
        // one for their text, both sized from the manifest's length (an alias line is
        // longer than 32 bytes) rather than from a count, which would read it all once more.
        manifest
            .aliases
            .reserve((text.len() / 32).min(MAX_ALIASES), text.len());
        for (index, line) in lines {
            // ASCII whitespace only, the same set the words are split on.
            let line = line.trim_matches(|c: char| c.is_ascii_whitespace());
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || format!("manifest line {}: cannot read {line:?}", index + 1);
            let mut words = line.split_ascii_whitespace();
            match words.next() {
                Some("module") => {
                    let name = words.next().ok_or_else(bad)?;
                    let path = words.next().ok_or_else(bad)?;
                    let mut entry = ModuleEntry::new(name, path);
                    for word in words {
                        match word.split_once('=') {
                            Some(("deps", v)) => entry.deps = names(v),
                            Some(("post", v)) => entry.post = names(v),
                            Some(("cpu", v)) => entry.cpu.push(v.to_owned()),
                            _ => return Err(bad()),
                        }
                    }
                    manifest.modules.push(entry);
                }
                Some("load") => manifest.load.push(words.next().ok_or_else(bad)?.to_owned()),
                Some("alias") => {
                    let pattern = words.next().ok_or_else(bad)?;
                    let name = words.next().ok_or_else(bad)?;
                    manifest.aliases.push(pattern, name);
                }
                Some("root-fs") => {
                    manifest.root_fs = Some(words.next().ok_or_else(bad)?.to_owned())
                }
                Some("root-drivers") => {
                    manifest.root_drivers = names(words.next().ok_or_else(bad)?)
                }
                Some("shell") => manifest.shell = Some(words.next().ok_or_else(bad)?.to_owned()),
                Some("aliases") => {
                    manifest.alias_file = Some(words.next().ok_or_else(bad)?.to_owned())
                }
                _ => return Err(bad()),
            }
        }
        Ok(manifest)
    }
}

/// A comma-separated list of module names (`deps=`, `post=`, `root-drivers`).
fn names(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Manifest {
            modules: vec![
                ModuleEntry::new("virtio", "/lib/modules/6.1/virtio.ko"),
                ModuleEntry {
                    name: "virtio_blk".into(),
                    path: "/lib/modules/6.1/virtio_blk.ko".into(),
                    deps: vec!["virtio".into()],
                    post: vec!["helper".into()],
                    cpu: vec![],
                },
                ModuleEntry {
                    name: "crc32c_intel".into(),
                    path: "/lib/modules/6.1/crc32c-intel.ko".into(),
                    deps: vec![],
                    post: vec![],
                    cpu: vec!["cpu:type:x86,ven*fam*mod*:feature:*0094*".into()],
                },
            ],
            load: vec!["virtio_blk".into()],
            aliases: [("virtio:d00000002v*", "virtio_blk")].into_iter().collect(),
            root_fs: Some("ext4".into()),
            root_drivers: vec!["virtio_blk".into(), "virtio_pci".into()],
            shell: Some("/bin/sh".into()),
            alias_file: Some(format!("/{ALIASES_PATH}")),
        };
        assert_eq!(Manifest::parse(&m.render()).unwrap(), m);
        assert_eq!(
            Manifest::parse(&Manifest::default().render()).unwrap(),
            Manifest::default()
        );
    }

    #[test]
    fn alias_table_keeps_each_pattern_its_head_and_module() {
        let pairs = [
            ("pci:v00001AF4d*sv*sd*bc*sc*i*", "virtio_pci"),
            ("fs-ext4", "ext4"),
            ("*", "any"),
            ("", "empty"),
            ("usb:v[0-9]*", "usb_storage"),
        ];
        let table: AliasTable = pairs.into_iter().collect();
        assert_eq!(table.len(), 5);
        assert!(table.pairs().eq(pairs));
        let heads: Vec<&str> = table.entries().map(|(head, _, _)| head).collect();
        assert_eq!(heads, ["pci:v00001AF4d", "fs-ext4", "", "", "usb:v"]);
        // Read back from its lines, the same table (an empty pattern has no line of its own).
        let written: AliasTable = pairs.into_iter().filter(|(p, _)| !p.is_empty()).collect();
        let manifest = Manifest {
            aliases: written.clone(),
            ..Manifest::default()
        };
        assert_eq!(
            Manifest::parse(&manifest.render()).unwrap().aliases,
            written
        );
        assert_ne!(table, pairs.into_iter().take(4).collect());
    }

    #[test]
    fn the_manifest_keeps_every_alias_that_can_answer_what_it_answers() {
        let table: AliasTable = [
            ("fs-ext4", "ext4"),
            ("fs-ext3", "ext4"),
            ("crypto-crc32c", "crc32c_generic"),
            ("crypto-*-all", "any_crypto"),
            ("f*", "eff"),
            ("*", "anything"),
            ("pci:v00001AF4d*sv*sd*bc*sc*i*", "virtio_pci"),
            ("virtio:d00000002v*", "virtio_blk"),
            ("fs_like", "not_fs"),
            ("char-major-10-237", "loop"),
        ]
        .into_iter()
        .collect();
        let (inline, rest) = table.split_inline();
        let names = |t: &AliasTable| t.pairs().map(|(_, n)| n.to_owned()).collect::<Vec<_>>();
        assert_eq!(
            names(&inline),
            [
                "ext4",
                "ext4",
                "crc32c_generic",
                "any_crypto",
                "eff",
                "anything"
            ]
        );
        assert_eq!(names(&rest), ["virtio_pci", "virtio_blk", "not_fs", "loop"]);
        // Whatever a query answered inline matches, it matches among the inline ones.
        for query in ["fs-ext4", "fs-", "crypto-xts(aes)-all", "fs-vfat"] {
            assert!(answered_inline(query));
            assert!(rest
                .pairs()
                .all(|(p, _)| !crate::modules::glob::matches(p, query)));
        }
        assert!(!answered_inline(
            "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"
        ));
        assert!(!answered_inline("fs_like"));
    }

    #[test]
    fn cpu_feature_modules_suit_only_matching_cpus() {
        let mut m = ModuleEntry::new("crc32c_intel", "/x.ko");
        m.cpu = vec!["cpu:type:x86,ven*fam*mod*:feature:*0094*".into()];
        let with_sse42 = "cpu:type:x86,ven0000fam0006mod003A:feature:,0000,0001,0094,0095\n";
        let without = "cpu:type:x86,ven0002fam0019mod0011:feature:,0000,0001,0093,0095\n";
        assert!(m.suits_cpu(Some(with_sse42)));
        assert!(!m.suits_cpu(Some(without)));
        assert!(m.suits_cpu(None), "unknown CPU: try it");
        assert!(ModuleEntry::new("a", "/x.ko").suits_cpu(Some(without)));
    }

    #[test]
    fn found_by_fuzzing() {
        // A vertical tab is Unicode whitespace but not ASCII whitespace: trimming and
        // splitting must agree on what a word is, or a parsed manifest renders differently.
        let text = "baton-manifest 1\n\tshell\t\t\x0b\t\t\t!\0\t\t\t\t\t\t\t)batonn-m";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.shell.as_deref(), Some("\x0b"));
        assert_eq!(Manifest::parse(&m.render()).unwrap(), m);
    }

    #[test]
    fn the_shell_is_found_in_a_damaged_manifest() {
        let text = "baton-manifest 1\nmodule broken\nshell /bin/sh\n";
        assert!(Manifest::parse(text).is_err());
        assert_eq!(shell_of(text).as_deref(), Some("/bin/sh"));
        assert_eq!(shell_of("garbage\n\0\n"), None);
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        assert!(Manifest::parse("").is_err());
        assert!(Manifest::parse("hello 1\n").is_err());
        assert!(Manifest::parse("baton-manifest x\n").is_err());
        let err = Manifest::parse("baton-manifest 2\n").unwrap_err();
        assert!(err.contains("version 2 is not supported"), "{err}");
        for bad in [
            "firmware x",
            "module onlyname",
            "module a /a.ko weird=1",
            "alias onlypattern",
            "root-drivers",
            "load",
            "aliases",
        ] {
            let err = Manifest::parse(&format!("baton-manifest 1\n{bad}\n")).unwrap_err();
            assert!(err.contains("line 2"), "{bad}: {err}");
        }
    }
}
