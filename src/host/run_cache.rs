//! `baton run`'s cache of built images: one per kernel release, modules and init, kept in a
//! directory only its user can enter, named by a hash of what went into the image, and
//! used only when it looks exactly as this tool left it.
//!
//! A cache at a name anyone can compute would let another local user plant an image that
//! the next `baton run` boots with the user's directory shared into it.

use anyhow::{bail, Context, Result};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where built images are kept: `$XDG_CACHE_HOME/baton/run` or `~/.cache/baton/run` (a
/// relative XDG_CACHE_HOME is ignored, as the XDG spec says).
pub fn dir() -> PathBuf {
    match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir).join("baton/run"),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/baton/run"),
    }
}

/// Makes `dir` (and its parents) and checks that only this user can change what is in it:
/// `dir` is a directory (not a symlink) of the effective user's, and every directory above
/// it, as written and as resolved, belongs to this user or root and is writable by no one
/// else unless sticky (like /tmp, where others cannot rename what is ours). Otherwise
/// another user could swap the cache for a directory of theirs between two runs.
///
/// A cache that others could enter (an older baton made it 0755, or an admin widened it)
/// is narrowed to 0700 and emptied, with a warning: with write bits others could have
/// planted or renamed images in it, and nothing tells them apart afterwards.
pub fn private_dir(dir: &Path) -> Result<()> {
    if !dir.is_absolute() {
        bail!("the image cache {} is not an absolute path", dir.display());
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("failed to create {}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("failed to look at {}", dir.display()))?;
    let euid = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != euid {
        bail!(
            "{} is not a directory of this user's (uid {euid})",
            dir.display()
        );
    }
    safe_ancestors(dir, euid)?;
    if meta.mode() & 0o077 != 0 {
        // Closed first, so that no one adds anything while it is emptied.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("failed to make {} private", dir.display()))?;
        empty(dir)?;
        crate::host::detect::warn(&format!(
            "the image cache {} was open to other users (mode {:o}): made it 0700 and removed the images in it",
            dir.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Checks the directories above `dir`, both as written and as the symlinks in them resolve.
fn safe_ancestors(dir: &Path, euid: u32) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let resolved = parent
        .canonicalize()
        .with_context(|| format!("failed to resolve {}", parent.display()))?;
    for ancestor in parent.ancestors().chain(resolved.ancestors()) {
        if ancestor.as_os_str().is_empty() {
            continue;
        }
        // Followed: a symlink's target is what the next lookup goes through.
        let meta = std::fs::metadata(ancestor)
            .with_context(|| format!("failed to look at {}", ancestor.display()))?;
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.uid() != euid && meta.uid() != 0 {
            bail!(
                "{} belongs to uid {}, who could replace the cache below it",
                ancestor.display(),
                meta.uid()
            );
        }
        if meta.mode() & 0o022 != 0 && !sticky {
            bail!(
                "{} is writable by others (mode {:o}), who could replace the cache below it",
                ancestor.display(),
                meta.mode() & 0o7777
            );
        }
    }
    Ok(())
}

/// Removes everything in `dir`.
fn empty(dir: &Path) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("failed to read {}", dir.display()))?
            .path();
        let removed = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        removed.with_context(|| format!("failed to remove {}", path.display()))?;
    }
    Ok(())
}

/// Whether `image` is a cached image this tool wrote: a regular file (not a symlink),
/// owned by the effective user, mode 0600. Anything else is built again.
pub fn trusted(image: &Path) -> bool {
    std::fs::symlink_metadata(image).is_ok_and(|m| {
        m.is_file()
            && m.uid() == nix::unistd::geteuid().as_raw()
            && m.mode() & 0o7777 == crate::host::image::build::IMAGE_MODE
    })
}

/// The release of the kernel image at `kernel`, as `read` finds it, remembered in the
/// cache by the image's path, size, modification time and inode: finding the banner in a
/// 66 MB vmlinux costs 70 ms a run. Without a private cache (or before the first image made
/// one), `read` every time.
pub fn release_of(kernel: &Path, read: impl FnOnce() -> Result<String>) -> Result<String> {
    let dir = dir();
    // Only a cache that is there already: a kernel refused for its release leaves none.
    let cached = dir
        .is_dir()
        .then(|| stamped(&dir, "release", kernel))
        .flatten();
    if let Some(file) = &cached {
        if trusted(file) {
            if let Ok(release) = std::fs::read_to_string(file) {
                if valid_release(&release) {
                    return Ok(release);
                }
            }
        }
    }
    let release = read()?;
    if let (Some(file), true) = (&cached, valid_release(&release)) {
        let _ = write_private(file, release.as_bytes());
    }
    Ok(release)
}

/// The cache's file for what was made from the file at `from` (`PREFIX-HASH`), named by
/// that file's path, size, modification time, inode and device; `None` when the cache is
/// not private or `from` cannot be looked at.
pub fn stamped(dir: &Path, prefix: &str, from: &Path) -> Option<PathBuf> {
    private_dir(dir).ok()?;
    let meta = std::fs::metadata(from).ok()?;
    let mut hash = std::collections::hash_map::DefaultHasher::new();
    let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    (
        from.canonicalize().ok()?,
        meta.len(),
        mtime,
        meta.ino(),
        meta.dev(),
    )
        .hash(&mut hash);
    Some(dir.join(format!("{prefix}-{:016x}", hash.finish())))
}

/// Writes `bytes` to `path` as the cache's files are (0600), whole under another name
/// first, then renamed: a reader never sees half of it.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::host::image::build::IMAGE_MODE)
        .open(&partial)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// A bound on the modules a kernel tree's modules.order lists.
const MAX_LISTED: usize = 100_000;

/// The key of an image: this tool's version, the init's bytes, the modules it carries, and
/// the modules directory by what says it changed, by name, size, modification time and
/// inode (contents would cost seconds to read):
/// - an installed directory: its own files (modules.dep, modules.order, modules.builtin
///   ...), which depmod writes afresh whenever modules are installed or upgraded;
/// - a kernel tree after `make`: modules.order, modules.builtin and every module
///   modules.order lists, since a rebuilt module changes no other file.
///
/// Walking the whole directory instead cost 100 to 400 ms a run, half of baton's own time.
pub fn key(init: &[u8], modules: &[&str], modules_dir: &Path, release: &str) -> u64 {
    let mut hash = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut hash);
    init.hash(&mut hash);
    modules.hash(&mut hash);
    release.hash(&mut hash);
    modules_dir.hash(&mut hash);
    let mut files = Vec::new();
    top_level(modules_dir, &mut files);
    if let Some(listed) = listed_modules(modules_dir) {
        for rel in listed {
            stat_into(&modules_dir.join(rel), &mut files);
        }
    }
    files.sort();
    files.hash(&mut hash);
    hash.finish()
}

type FileStamp = (PathBuf, u64, i128, u64);

/// The regular files directly in `dir`.
fn top_level(dir: &Path, out: &mut Vec<FileStamp>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten().take(MAX_LISTED) {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            stat_into(&entry.path(), out);
        }
    }
}

/// The modules a kernel tree's modules.order lists (`.o` or `.ko`), as paths of their
/// `.ko`; `None` for an installed directory, which has no Makefile.
fn listed_modules(dir: &Path) -> Option<Vec<PathBuf>> {
    if !dir.join("Makefile").is_file() {
        return None;
    }
    let order = std::fs::read_to_string(dir.join("modules.order")).ok()?;
    Some(
        order
            .lines()
            .take(MAX_LISTED)
            .map(|line| {
                let line = line.trim();
                let stem = line
                    .strip_suffix(".o")
                    .or_else(|| line.strip_suffix(".ko"))
                    .unwrap_or(line);
                PathBuf::from(format!("{stem}.ko"))
            })
            .collect(),
    )
}

/// (path, size, mtime in ns, inode) of `path`, following a symlink.
fn stat_into(path: &Path, out: &mut Vec<FileStamp>) {
    if let Ok(meta) = std::fs::metadata(path) {
        let (len, mtime, ino) = stamp(&meta);
        out.push((path.to_path_buf(), len, mtime, ino));
    }
}

/// What says a file changed: its size, modification time in ns, and inode.
fn stamp(meta: &std::fs::Metadata) -> (u64, i128, u64) {
    let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    (meta.len(), mtime, meta.ino())
}

/// Whether a kernel release read from a kernel image can name a file: it becomes part of
/// paths (`/lib/modules/RELEASE`, the cache's names), so `..` or a slash in a crafted
/// image must not reach them.
pub fn valid_release(release: &str) -> bool {
    !release.is_empty()
        && release.len() <= 128
        && release != "."
        && release != ".."
        && release
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+~-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_file_names() {
        for good in ["6.1.0-57-amd64", "6.12.117+deb12-amd64", "5.10.0~rc1"] {
            assert!(valid_release(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../etc",
            "6.1/x",
            "a b",
            "a\0b",
            &"x".repeat(129),
        ] {
            assert!(!valid_release(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_cache_is_private_and_its_images_checked() {
        let base = std::env::temp_dir().join(format!("baton-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("baton/run");
        private_dir(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        // Opened to others (an older baton made it 0755): narrowed, and what others could
        // have put there is gone.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(dir.join("planted.img"), b"image").unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "narrowed");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "emptied");
        // A symlink where the cache should be is refused, not followed.
        let link = base.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(private_dir(&link).is_err());
        let image = dir.join("x.img");
        std::fs::write(&image, b"image").unwrap();
        std::fs::set_permissions(&image, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!trusted(&image), "0644 is not what this tool writes");
        std::fs::set_permissions(&image, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(trusted(&image));
        let planted = dir.join("y.img");
        std::os::unix::fs::symlink(&image, &planted).unwrap();
        assert!(!trusted(&planted));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_cache_below_a_directory_others_can_change_is_refused() {
        let base = std::env::temp_dir().join(format!("baton-cache-up-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let dir = base.join("cache/baton/run");
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = format!("{:#}", private_dir(&dir).unwrap_err());
        assert!(err.contains("is writable by others"), "{err}");
        // Sticky, as /tmp: others cannot rename what is ours.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o1777)).unwrap();
        private_dir(&dir).unwrap();
        // Through a symlink into such a directory: the resolved path is checked too.
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let safe = base.join("safe");
        std::fs::create_dir(&safe).unwrap();
        std::os::unix::fs::symlink(&open, safe.join("cache")).unwrap();
        assert!(private_dir(&safe.join("cache/baton/run")).is_err());
        // Someone else's directory above it (only root can make one to test with).
        if nix::unistd::geteuid().is_root() {
            let theirs = base.join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(4242), None).unwrap();
            let err = format!("{:#}", private_dir(&theirs.join("run")).unwrap_err());
            assert!(err.contains("belongs to uid 4242"), "{err}");
        }
        assert!(private_dir(Path::new("relative/baton/run")).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn the_key_follows_what_went_into_the_image() {
        let base = std::env::temp_dir().join(format!("baton-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("kernel")).unwrap();
        std::fs::write(base.join("kernel/a.ko"), b"a").unwrap();
        std::fs::write(base.join("modules.dep"), b"kernel/a.ko:\n").unwrap();
        let k = key(b"init", &["virtio_pci"], &base, "6.1");
        assert_eq!(k, key(b"init", &["virtio_pci"], &base, "6.1"));
        assert_ne!(k, key(b"init2", &["virtio_pci"], &base, "6.1"));
        assert_ne!(k, key(b"init", &["9p"], &base, "6.1"));
        // An installed directory: depmod's files say what changed.
        std::fs::write(base.join("kernel/b.ko"), b"b").unwrap();
        std::fs::write(base.join("modules.dep"), b"kernel/a.ko:\nkernel/b.ko:\n").unwrap();
        let k = key(b"init", &["virtio_pci"], &base, "6.1");
        assert_ne!(
            k,
            key(b"init", &["virtio_pci"], &base.join("kernel"), "6.1")
        );
        // A kernel tree: each module modules.order lists, rebuilt in place.
        let tree = base.join("tree");
        std::fs::create_dir_all(tree.join("fs/9p")).unwrap();
        std::fs::write(tree.join("Makefile"), b"VERSION = 6\n").unwrap();
        std::fs::write(tree.join("modules.order"), b"fs/9p/9p.o\n").unwrap();
        std::fs::write(tree.join("fs/9p/9p.ko"), b"old").unwrap();
        let k = key(b"init", &["9p"], &tree, "6.1");
        std::fs::write(tree.join("fs/9p/9p.ko"), b"rebuilt").unwrap();
        assert_ne!(k, key(b"init", &["9p"], &tree, "6.1"));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
