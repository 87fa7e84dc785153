//! Putting a finished image in place: 0600, written beside the old one, synced, renamed.

use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode images are created with, as dracut and mkinitcpio do: an image can carry key
/// files and a `cmdline=` with secrets, and /boot is often world-readable.
pub const IMAGE_MODE: u32 = 0o600;

/// A name beside `path` for a file that will replace it: `.NAME.TAG-PID`, in the same
/// directory, so that the rename is atomic.
pub fn sibling(path: &Path, tag: &str) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("output {} is not a file name", path.display()))?;
    Ok(path.with_file_name(format!(
        ".{}.{tag}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// The mode a new image at `path` gets: [`IMAGE_MODE`], or stricter when the image it
/// replaces was (an admin's 0400 stays).
fn mode_for(path: &Path) -> u32 {
    match fs::symlink_metadata(path) {
        Ok(old) if old.is_file() => old.mode() & IMAGE_MODE,
        _ => IMAGE_MODE,
    }
}

/// Renames the finished file `tmp` over `path` with the mode [`mode_for`] gives, then syncs
/// the directory so that the rename survives a crash.
pub fn put_in_place(tmp: &Path, path: &Path) -> Result<()> {
    fs::set_permissions(tmp, fs::Permissions::from_mode(mode_for(path)))
        .with_context(|| format!("failed to set the mode of {}", tmp.display()))?;
    fs::rename(tmp, path)
        .with_context(|| format!("failed to rename {} to {}", tmp.display(), path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("failed to sync {}", dir.display()))
}

/// Writes to a temporary file beside `path` and puts it in place, so a failed build never
/// leaves a half-written image where a boot script expects a good one. The file is created
/// [`IMAGE_MODE`] whatever the umask, and is on disk before the rename.
pub(super) fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = sibling(path, "tmp")?;
    let result = (|| -> Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(IMAGE_MODE)
            .open(&tmp)
            .with_context(|| format!("failed to create {}", tmp.display()))?;
        file.write_all(data)
            .with_context(|| format!("failed to write {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("failed to write {}", tmp.display()))?;
        put_in_place(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
