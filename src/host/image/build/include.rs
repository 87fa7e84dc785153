//! `--include SRC[:DEST]`: files, links, device nodes and whole trees of the host, copied
//! into the image owned by root.

use crate::host::image::entry::{Body, Entry, Image};
use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Adds a file, a symlink or a whole directory tree. Owners become root: the image must not
/// depend on who built it.
pub(super) fn add_include(image: &mut Image, src: &Path, dest: &str) -> Result<()> {
    let meta =
        fs::symlink_metadata(src).with_context(|| format!("failed to read {}", src.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = fs::read_link(src)?;
        image.insert(dest, Entry::symlink(&target.to_string_lossy()))?;
    } else if kind.is_file() {
        let data = fs::read(src).with_context(|| format!("failed to read {}", src.display()))?;
        image.insert(dest, Entry::file(mode, data))?;
    } else if kind.is_dir() {
        image.insert(dest, Entry::dir(mode))?;
        let mut children: Vec<_> = fs::read_dir(src)?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("failed to list {}", src.display()))?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let name = child.file_name();
            let child_dest = format!("{}/{}", dest.trim_end_matches('/'), name.to_string_lossy());
            add_include(image, &child.path(), &child_dest)?;
        }
    } else {
        use std::os::unix::fs::FileTypeExt;
        let rdev = meta.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        let body = if kind.is_char_device() {
            Body::CharDevice { major, minor }
        } else if kind.is_block_device() {
            Body::BlockDevice { major, minor }
        } else if kind.is_fifo() {
            Body::Fifo
        } else {
            bail!("{} is a socket; it cannot go into an image", src.display());
        };
        image.insert(
            dest,
            Entry {
                mode,
                uid: 0,
                gid: 0,
                body,
            },
        )?;
    }
    Ok(())
}

/// `SRC:DEST`, or `SRC` alone to keep the same path. Split at the last colon, since the
/// destination is an image path the user chose and source paths may contain colons.
pub fn parse_include(spec: &str) -> Result<(PathBuf, String)> {
    let (src, dest) = match spec.rsplit_once(':') {
        Some((src, dest)) if !src.is_empty() && dest.starts_with('/') => (src, dest),
        _ => (spec, spec),
    };
    if src.is_empty() || dest.is_empty() {
        bail!("--include {spec:?}: expected SRC[:DEST]");
    }
    Ok((PathBuf::from(src), dest.to_owned()))
}
