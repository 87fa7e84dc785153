//! The console keymap for the image (see `crate::keymap`): the one a system set up, found
//! where its tools keep it, or one named, compiled by kbd's `loadkeys -b` so the init needs
//! no keymap compiler of its own.
//!
//! Where a system keeps it, in the order read:
//! - systemd's `/etc/vconsole.conf` `KEYMAP=NAME` (Fedora, Arch, and any system set up with
//!   `localectl`): a name `loadkeys` looks up in the kbd keymap directories;
//! - Debian's console-setup: `/etc/console-setup/cached_CHARMAP_BACKSPACE.kmap.gz`, the
//!   keymap `setupcon` compiled from /etc/default/keyboard.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Which keymap an image carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// None: the kernel's US layout.
    None,
    /// The one the system in this directory set up, if it set one.
    System(PathBuf),
    /// A keymap file, or a name `loadkeys` knows (`de`, `fr-latin1`).
    Given(String),
}

/// A keymap source for `loadkeys`, and where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub loadkeys_arg: String,
    pub origin: String,
}

/// Where kbd's keymaps live, by distribution: a name in vconsole.conf is looked up there
/// when the system is a tree rather than this machine.
const KEYMAP_DIRS: [&str; 4] = [
    "usr/share/keymaps",
    "usr/share/kbd/keymaps",
    "usr/lib/kbd/keymaps",
    "lib/kbd/keymaps",
];
const CONSOLE_SETUP: &str = "etc/console-setup";
/// Bounds on the look-up in a tree's keymap directories.
const MAX_DEPTH: usize = 4;
const MAX_ENTRIES: usize = 8192;
/// loadkeys' sources are a few KiB; more is not a keymap.
const MAX_SOURCE: u64 = 1 << 20;

/// The keymap (compiled) for `choice`, or `None` when there is none to carry. A system
/// without one, or without `loadkeys`, gets a warning and an image without it: the prompt
/// still works, with the US layout.
pub fn for_image(choice: &Choice) -> Result<Option<Vec<u8>>> {
    let source = match choice {
        Choice::None => return Ok(None),
        Choice::Given(given) => Source {
            loadkeys_arg: given.clone(),
            origin: format!("--keymap {given}"),
        },
        Choice::System(root) => match system_source(root) {
            Some(source) => source,
            None => return Ok(None),
        },
    };
    match compile(&source.loadkeys_arg) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if matches!(choice, Choice::System(_)) => {
            crate::host::detect::warn(&format!(
                "the console keymap ({}) is left out of the image, so a passphrase prompt types with the US layout: {e:#}",
                source.origin
            ));
            Ok(None)
        }
        Err(e) => Err(e.context(format!("cannot compile the keymap of {}", source.origin))),
    }
}

/// The keymap the system in `root` set up, if any.
pub fn system_source(root: &Path) -> Option<Source> {
    let vconsole = root.join("etc/vconsole.conf");
    if let Some(name) = read_small(&vconsole).and_then(|t| vconsole_keymap(&t)) {
        let origin = format!("KEYMAP={name} in {}", vconsole.display());
        if root == Path::new("/") {
            return Some(Source {
                loadkeys_arg: name,
                origin,
            });
        }
        match find_in_tree(root, &name) {
            Some(file) => {
                return Some(Source {
                    loadkeys_arg: file.display().to_string(),
                    origin,
                })
            }
            None => crate::host::detect::warn(&format!(
                "{origin}: no such keymap in {}'s {}",
                root.display(),
                KEYMAP_DIRS.join(", ")
            )),
        }
    }
    let dir = root.join(CONSOLE_SETUP);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok())
        .take(MAX_ENTRIES)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let cached = console_setup_cached(&names)?;
    let file = dir.join(cached);
    Some(Source {
        loadkeys_arg: file.display().to_string(),
        origin: file.display().to_string(),
    })
}

/// `KEYMAP=` of a vconsole.conf (an environment file: `KEY=value`, quotes allowed, `#`
/// comments), when it names one.
pub fn vconsole_keymap(text: &str) -> Option<String> {
    let mut keymap = None;
    for line in text.lines().map(str::trim) {
        let Some(value) = line.strip_prefix("KEYMAP=") else {
            continue;
        };
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value)
            .trim();
        // The last assignment counts, as when the file is sourced.
        keymap = (!value.is_empty()).then(|| value.to_owned());
    }
    keymap
}

/// Which of console-setup's cached files is the keyboard's: `cached_*.kmap.gz`, UTF-8's
/// first (setupcon writes one per charmap it was run for), then by name.
pub fn console_setup_cached(names: &[String]) -> Option<&str> {
    let mut kmaps: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("cached_") && n.ends_with(".kmap.gz"))
        .collect();
    kmaps.sort_by_key(|n| (!n.starts_with("cached_UTF-8_"), *n));
    kmaps.first().copied()
}

/// NAME.map, NAME.map.gz (or .kmap) under a tree's keymap directories.
fn find_in_tree(root: &Path, name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        // A path of the tree's own, never one that climbs out of it.
        let rel = Path::new(name.trim_start_matches('/'));
        let inside = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        let path = root.join(rel);
        return (inside && path.is_file()).then_some(path);
    }
    let wanted: Vec<String> = ["map", "map.gz", "kmap", "kmap.gz"]
        .iter()
        .map(|ext| format!("{name}.{ext}"))
        .collect();
    let mut budget = MAX_ENTRIES;
    KEYMAP_DIRS
        .iter()
        .find_map(|dir| find_file(&root.join(dir), &wanted, MAX_DEPTH, &mut budget))
}

fn find_file(dir: &Path, wanted: &[String], depth: usize, budget: &mut usize) -> Option<PathBuf> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .take(*budget)
        .collect();
    *budget = budget.saturating_sub(entries.len());
    entries.sort_by_key(|e| e.file_name());
    for entry in &entries {
        let name = entry.file_name();
        if wanted.iter().any(|w| name.to_str() == Some(w.as_str())) && entry.path().is_file() {
            return Some(entry.path());
        }
    }
    if depth == 0 {
        return None;
    }
    entries
        .iter()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|e| find_file(&e.path(), wanted, depth - 1, budget))
}

fn read_small(path: &Path) -> Option<String> {
    crate::bounded::read_bounded(&path.display().to_string(), MAX_SOURCE)
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// `loadkeys -q -b -u SOURCE`: the binary keymap, for a console in Unicode mode (the
/// kernel's default, `vt.default_utf8=1`).
pub fn compile(source: &str) -> Result<Vec<u8>> {
    let out = std::process::Command::new("loadkeys")
        .args(["-q", "-b", "-u", "--", source])
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run loadkeys (kbd)")?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!("loadkeys {source} failed ({}): {why}", out.status);
    }
    crate::keymap::parse(&out.stdout)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("loadkeys {source} wrote no usable keymap"))?;
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vconsole_conf() {
        assert_eq!(vconsole_keymap("KEYMAP=de\n").as_deref(), Some("de"));
        assert_eq!(
            vconsole_keymap("# set by localectl\nFONT=eurlatgr\nKEYMAP=\"fr-latin1\"\n").as_deref(),
            Some("fr-latin1")
        );
        assert_eq!(
            vconsole_keymap("KEYMAP='us'\nKEYMAP=uk").as_deref(),
            Some("uk")
        );
        assert_eq!(vconsole_keymap("KEYMAP=\nFONT=x"), None);
        assert_eq!(vconsole_keymap("XKBLAYOUT=de"), None);
        assert_eq!(vconsole_keymap("KEYMAP_TOGGLE=ru"), None);
    }

    #[test]
    fn console_setup_files() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let listed = names(&[
            "cached_setup_font.sh",
            "cached_ISO-8859-15_del.kmap.gz",
            "cached_UTF-8_del.kmap.gz",
            "cached_Lat15-Fixed16.psf.gz",
        ]);
        assert_eq!(
            console_setup_cached(&listed),
            Some("cached_UTF-8_del.kmap.gz")
        );
        let listed = names(&["cached_ISO-8859-15_del.kmap.gz", "keyboard"]);
        assert_eq!(
            console_setup_cached(&listed),
            Some("cached_ISO-8859-15_del.kmap.gz")
        );
        assert_eq!(
            console_setup_cached(&names(&["cached_setup_keyboard.sh"])),
            None
        );
    }

    fn tree(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("baton-keymap-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keymap/cached_UTF-8_del.kmap.gz"
    );

    #[test]
    fn a_trees_keymap_is_found_where_its_tools_keep_it() {
        let root = tree("found");
        assert_eq!(system_source(&root), None);
        std::fs::create_dir_all(root.join(CONSOLE_SETUP)).unwrap();
        let cached = root.join(CONSOLE_SETUP).join("cached_UTF-8_del.kmap.gz");
        std::fs::copy(FIXTURE, &cached).unwrap();
        assert_eq!(
            system_source(&root).unwrap().loadkeys_arg,
            cached.display().to_string()
        );
        // vconsole.conf comes first, its name looked up in the tree's kbd directories.
        let dir = root.join("usr/lib/kbd/keymaps/xkb");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(FIXTURE, dir.join("de.map.gz")).unwrap();
        std::fs::write(root.join("etc/vconsole.conf"), "KEYMAP=de\n").unwrap();
        let source = system_source(&root).unwrap();
        assert_eq!(
            source.loadkeys_arg,
            dir.join("de.map.gz").display().to_string()
        );
        assert!(source.origin.contains("KEYMAP=de"), "{source:?}");
        // A name the tree does not have: console-setup's file, if there is one.
        std::fs::write(root.join("etc/vconsole.conf"), "KEYMAP=xx\n").unwrap();
        assert_eq!(
            system_source(&root).unwrap().loadkeys_arg,
            cached.display().to_string()
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// loadkeys of kbd (scripts/deps installs it) compiles Debian's cached keymap into what
    /// the fixture says it does.
    #[test]
    fn loadkeys_compiles_console_setups_keymap() {
        let compiled = compile(FIXTURE).unwrap();
        let expected = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keymap/de.bmap"
        ))
        .unwrap();
        assert_eq!(compiled, expected);
        let err = compile("/nonexistent/keymap").unwrap_err();
        assert!(format!("{err:#}").contains("loadkeys"), "{err:#}");
    }
}
