//! Reading an initramfs back: any sequence of cpio archives, each plain or compressed, one
//! after another, as the kernel accepts them (an uncompressed early-microcode archive
//! followed by a compressed main one is what Debian and dracut write).

use super::compress::{decompress_stream, Compression};
use anyhow::{bail, Context, Result};
use std::io::{Cursor, Read};

/// One entry as `baton inspect` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub path: String,
    pub mode: u32,
    pub size: u64,
    /// Symlink target, or `major:minor` for device nodes.
    pub target: Option<String>,
    /// Which segment of the image the entry came from, and its compression.
    pub segment: usize,
    pub compression: Compression,
    /// The file's bytes (empty for everything but regular files).
    pub data: Vec<u8>,
}

impl Listing {
    /// `ls -l` style type letter.
    pub fn kind(&self) -> char {
        match self.mode & 0o170000 {
            0o040000 => 'd',
            0o100000 => '-',
            0o120000 => 'l',
            0o020000 => 'c',
            0o060000 => 'b',
            0o010000 => 'p',
            0o140000 => 's',
            _ => '?',
        }
    }
}

/// Lists every entry of every archive in the image.
pub fn read_image(data: &[u8]) -> Result<Vec<Listing>> {
    let mut listings = Vec::new();
    let mut at = 0usize;
    let mut segment = 0usize;
    while let Some(rest) = data.get(at..) {
        // Archives may be padded with zeros between them (the kernel skips those in
        // 4-byte steps; we skip any number).
        let skipped = rest.iter().take_while(|&&b| b == 0).count();
        at += skipped;
        let Some(rest) = data.get(at..).filter(|r| !r.is_empty()) else {
            break;
        };
        if rest.starts_with(b"070701") || rest.starts_with(b"070702") {
            let used = read_archives(rest, segment, Compression::None, &mut listings)
                .with_context(|| format!("in the uncompressed archive at byte {at}"))?;
            at += used;
        } else if let Some(how) = Compression::detect(rest) {
            let (plain, used) = decompress_stream(rest, how)
                .with_context(|| format!("in the {} stream at byte {at}", how.name()))?;
            read_all_archives(&plain, segment, how, &mut listings)
                .with_context(|| format!("in the {} stream at byte {at}", how.name()))?;
            at += used.max(1);
        } else {
            bail!(
                "unrecognized data at byte {at} (not cpio, gzip, zstd, xz or legacy lz4): {:02x?}",
                rest.get(..8).unwrap_or(rest)
            );
        }
        segment += 1;
    }
    if listings.is_empty() {
        bail!("no cpio archive found");
    }
    Ok(listings)
}

/// A decompressed stream may itself hold several archives back to back.
fn read_all_archives(
    plain: &[u8],
    segment: usize,
    how: Compression,
    out: &mut Vec<Listing>,
) -> Result<()> {
    let mut at = 0;
    while let Some(rest) = plain.get(at..) {
        let skipped = rest.iter().take_while(|&&b| b == 0).count();
        at += skipped;
        let Some(rest) = plain.get(at..).filter(|r| !r.is_empty()) else {
            break;
        };
        at += read_archives(rest, segment, how, out)?;
    }
    Ok(())
}

/// Reads one archive up to and including its trailer; returns the bytes it used.
fn read_archives(
    data: &[u8],
    segment: usize,
    how: Compression,
    out: &mut Vec<Listing>,
) -> Result<usize> {
    let mut cursor = Cursor::new(data);
    loop {
        let offset = cursor.position();
        let mut reader = cpio::newc::Reader::new(cursor)
            .with_context(|| format!("bad cpio header at offset {offset}"))?;
        let entry = reader.entry().clone();
        if entry.is_trailer() {
            cursor = reader.finish()?;
            return Ok(cursor.position() as usize);
        }
        let mut body = Vec::new();
        reader
            .by_ref()
            .read_to_end(&mut body)
            .with_context(|| format!("truncated data for {}", entry.name()))?;
        if body.len() != entry.file_size() as usize {
            bail!("truncated data for {}", entry.name());
        }
        cursor = reader.finish()?;
        let mode = entry.mode();
        let target = match mode & 0o170000 {
            0o120000 => Some(String::from_utf8_lossy(&body).into_owned()),
            0o020000 | 0o060000 => Some(format!("{}:{}", entry.rdev_major(), entry.rdev_minor())),
            _ => None,
        };
        let is_file = mode & 0o170000 == 0o100000;
        out.push(Listing {
            path: entry.name().to_owned(),
            mode,
            size: u64::from(entry.file_size()),
            target,
            segment,
            compression: how,
            data: if is_file { body } else { Vec::new() },
        });
    }
}

/// One line per entry: type and permissions, size, path, link target.
pub fn format_listing(l: &Listing) -> String {
    let perms = l.mode & 0o7777;
    let mut line = format!("{}{:04o} {:>10} {}", l.kind(), perms, l.size, l.path);
    if let Some(target) = &l.target {
        let arrow = if l.kind() == 'l' { "->" } else { "dev" };
        line.push_str(&format!(" {arrow} {target}"));
    }
    line
}
