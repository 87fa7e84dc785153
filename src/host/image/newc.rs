//! Writing an [`Image`] as a newc ("070701") cpio archive, the format the kernel unpacks
//! (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Deterministic by construction: entries in sorted order, inode numbers counted from 1,
//! owner and group as given, one mtime for everything (`SOURCE_DATE_EPOCH`), no hard links
//! (nlink is 1 for non-directories, so the kernel never tries to link entries together).

use super::entry::{Body, Image};
use cpio::newc::{trailer, Builder};
use std::io::{self, Write};

/// Serializes the image. Files over 4 GiB cannot be expressed in newc and are an error.
pub fn write(image: &Image, mtime: u32) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (ino, (path, entry)) in (1u32..).zip(image.iter()) {
        let (data, rdev): (&[u8], (u32, u32)) = match &entry.body {
            Body::File(data) => (data, (0, 0)),
            Body::Symlink(target) => (target.as_bytes(), (0, 0)),
            Body::CharDevice { major, minor } | Body::BlockDevice { major, minor } => {
                (&[], (*major, *minor))
            }
            Body::Dir | Body::Fifo => (&[], (0, 0)),
        };
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path} is larger than 4 GiB"),
            )
        })?;
        let nlink = if matches!(entry.body, Body::Dir) {
            2
        } else {
            1
        };
        let header = Builder::new(path)
            .ino(ino)
            .mode(entry.type_bits() | (entry.mode & 0o7777))
            .uid(entry.uid)
            .gid(entry.gid)
            .nlink(nlink)
            .mtime(mtime)
            .rdev_major(rdev.0)
            .rdev_minor(rdev.1);
        let before = out.len();
        let mut writer = header.write(&mut out, size);
        writer.write_all(data)?;
        writer.finish()?;
        // The cpio crate does not notice a short body (see its Writer::finish); a Vec
        // cannot write short, but check the arithmetic anyway: header + body + padding.
        let written = out.len() - before;
        if written < data.len() {
            return Err(io::Error::other(format!("short write of {path}")));
        }
    }
    trailer(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::image::Entry;

    fn sample() -> Image {
        let mut image = Image::new();
        image
            .insert(
                "dev/console",
                Entry {
                    mode: 0o600,
                    uid: 0,
                    gid: 0,
                    body: Body::CharDevice { major: 5, minor: 1 },
                },
            )
            .unwrap();
        image
            .insert("init", Entry::file(0o755, b"#!/bin/sh\n".to_vec()))
            .unwrap();
        image.insert("bin/sh", Entry::symlink("busybox")).unwrap();
        image
    }

    #[test]
    fn golden_bytes() {
        // Written out by hand from buffer-format.rst: 13 eight-digit hex fields after the
        // magic, the name with its NUL, padding to 4, the data, padding to 4, the trailer.
        let mut image = Image::new();
        image
            .insert("init", Entry::file(0o755, b"hi\n".to_vec()))
            .unwrap();
        let expected = [
            "070701",
            "00000001",
            "000081ed",
            "00000000",
            "00000000",
            "00000001",
            "00000000",
            "00000003",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000005",
            "00000000",
            "init\0",
            "\0",
            "hi\n",
            "\0",
            "070701",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000001",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "0000000b",
            "00000000",
            "TRAILER!!!\0",
            "\0\0\0",
        ]
        .concat();
        assert_eq!(
            String::from_utf8(write(&image, 0).unwrap()).unwrap(),
            expected
        );
    }

    #[test]
    fn same_image_same_bytes() {
        assert_eq!(write(&sample(), 42).unwrap(), write(&sample(), 42).unwrap());
        assert_ne!(write(&sample(), 42).unwrap(), write(&sample(), 43).unwrap());
    }

    #[test]
    fn device_numbers_and_modes() {
        let bytes = write(&sample(), 0).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        // dev/console: mode 020600, rdev 5:1.
        let at = text.find("dev/console").unwrap();
        let header = &text[at - 110..at];
        assert_eq!(&header[14..22], "00002180");
        assert_eq!(&header[78..86], "00000005");
        assert_eq!(&header[86..94], "00000001");
    }
}
