//! The skeleton every image starts from: `initramfs/skeleton.list` in the kernel's
//! gen_init_cpio list format, compiled into the program so an installed `baton` needs no
//! data files, plus the default settings file.

use super::entry::{Body, Entry, Image};
use crate::manifest;

/// The list, as written in the repository.
pub const LIST: &str = include_str!("../../../initramfs/skeleton.list");
/// The default command-line file shipped at `etc/baton/cmdline`.
pub const DEFAULT_CMDLINE: &str = include_str!("../../../initramfs/etc/baton/cmdline");

/// Parses a gen_init_cpio list (`dir`, `nod`, `slink` lines) into an image.
pub fn parse(list: &str) -> Result<Image, String> {
    let mut image = Image::new();
    for (index, line) in list.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at = |what: &str| format!("skeleton line {}: {what}: {line:?}", index + 1);
        let num = |s: &str, radix: u32| u32::from_str_radix(s, radix).map_err(|_| at("bad number"));
        let (path, entry) = match fields.as_slice() {
            ["dir", name, mode, uid, gid] => (
                *name,
                Entry {
                    mode: num(mode, 8)?,
                    uid: num(uid, 10)?,
                    gid: num(gid, 10)?,
                    body: Body::Dir,
                },
            ),
            ["nod", name, mode, uid, gid, kind, major, minor] => {
                let (major, minor) = (num(major, 10)?, num(minor, 10)?);
                let body = match *kind {
                    "c" => Body::CharDevice { major, minor },
                    "b" => Body::BlockDevice { major, minor },
                    _ => return Err(at("device type must be c or b")),
                };
                (
                    *name,
                    Entry {
                        mode: num(mode, 8)?,
                        uid: num(uid, 10)?,
                        gid: num(gid, 10)?,
                        body,
                    },
                )
            }
            ["slink", name, target, mode, uid, gid] => (
                *name,
                Entry {
                    mode: num(mode, 8)?,
                    uid: num(uid, 10)?,
                    gid: num(gid, 10)?,
                    body: Body::Symlink((*target).to_owned()),
                },
            ),
            ["pipe", name, mode, uid, gid] => (
                *name,
                Entry {
                    mode: num(mode, 8)?,
                    uid: num(uid, 10)?,
                    gid: num(gid, 10)?,
                    body: Body::Fifo,
                },
            ),
            _ => return Err(at("expected dir, nod, slink or pipe with their fields")),
        };
        image.insert(path, entry).map_err(|e| at(&e.to_string()))?;
    }
    Ok(image)
}

/// The built-in skeleton with its default settings file.
pub fn default_image() -> Result<Image, String> {
    let mut image = parse(LIST)?;
    image
        .insert(
            manifest::DEFAULTS_PATH,
            Entry::file(0o644, DEFAULT_CMDLINE.as_bytes().to_vec()),
        )
        .map_err(|e| e.to_string())?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_skeleton_parses_and_has_the_console() {
        let image = default_image().unwrap();
        assert_eq!(
            image.get("dev/console").unwrap().body,
            Body::CharDevice { major: 5, minor: 1 }
        );
        assert!(matches!(image.get("sysroot").unwrap().body, Body::Dir));
        assert_eq!(image.get("tmp").unwrap().mode, 0o1777);
    }

    #[test]
    fn bad_lines_name_their_line() {
        let err = parse("dir /a 0755 0 0\nnod /b 0600 0 0 x 1 1\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(parse("dir /a 0999 0 0").is_err());
        assert!(parse("file /a src 0644 0 0").is_err());
        assert!(parse("slink /a/../b x 0777 0 0").is_err());
    }
}
