//! Reading an initramfs back: any sequence of cpio archives, each plain or compressed, one
//! after another, as the kernel accepts them (an uncompressed early-microcode archive
//! followed by a compressed main one is what Debian and dracut write).

pub use super::compress::Limits;
use super::compress::{decompress_stream, human_size, Compression};
use anyhow::{bail, Context, Result};
use std::io::Cursor;

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

/// Lists every entry of every archive in the image, within [`Limits::DEFAULT`].
pub fn read_image(data: &[u8]) -> Result<Vec<Listing>> {
    read_image_with(data, &Limits::DEFAULT)
}

/// Lists every entry of every archive in the image. Each stream, and all the archives
/// together, may unpack to at most `limits.max_unpacked` bytes.
pub fn read_image_with(data: &[u8], limits: &Limits) -> Result<Vec<Listing>> {
    let max = usize::try_from(limits.max_unpacked).unwrap_or(usize::MAX);
    let mut unpacked = 0usize;
    let over_limit = || {
        anyhow::anyhow!(
            "the image's archives hold more than {} in all, the limit on unpacked data",
            human_size(limits.max_unpacked)
        )
    };
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
            unpacked = unpacked.saturating_add(used);
            if unpacked > max {
                return Err(over_limit());
            }
            at += used;
        } else if let Some(how) = Compression::detect(rest) {
            let (plain, used) = decompress_stream(rest, how, limits)
                .with_context(|| format!("in the {} stream at byte {at}", how.name()))?;
            // Checked before listing, so the listings too stay within the limit.
            unpacked = unpacked.saturating_add(plain.len());
            if unpacked > max {
                return Err(over_limit())
                    .with_context(|| format!("in the {} stream at byte {at}", how.name()));
            }
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

/// Reads one archive up to and including its trailer; returns the bytes it used. Every entry
/// takes at least a 110-byte header, so this ends.
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
        // The body is taken from the bytes present, never allocated by the declared size.
        let start = usize::try_from(reader.offset()?).unwrap_or(usize::MAX);
        let declared = entry.file_size() as usize;
        let present = data.len().saturating_sub(start);
        let body = data
            .get(start..)
            .and_then(|rest| rest.get(..declared))
            .with_context(|| {
                format!(
                    "truncated data for {}: {declared} bytes declared, {present} present",
                    entry.name()
                )
            })?;
        cursor = reader.skip()?;
        let mode = entry.mode();
        let target = match mode & 0o170000 {
            0o120000 => Some(String::from_utf8_lossy(body).into_owned()),
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
            data: if is_file { body.to_vec() } else { Vec::new() },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::image::compress::compress;
    use crate::host::image::{newc, Entry, Image};

    /// The input the `image` fuzz target stopped on: a zstd frame whose header declares a
    /// 2 GiB window (tests/data/fuzz/ also seeds the fuzzer with it).
    const OOM_ZSTD: &[u8] = include_bytes!("../../../tests/data/fuzz/image/oom-zstd.bin");

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut image = Image::new();
        for (path, data) in files {
            image
                .insert(path, Entry::file(0o644, data.to_vec()))
                .unwrap();
        }
        newc::write(&image, 0).unwrap()
    }

    fn error(data: &[u8]) -> String {
        format!("{:#}", read_image(data).unwrap_err())
    }

    #[test]
    fn lists_a_plain_and_a_compressed_archive() {
        let mut data = archive(&[("early/ucode", b"u")]);
        data.extend(compress(&archive(&[("bin/tool", b"tool")]), Compression::Xz).unwrap());
        let listings = read_image(&data).unwrap();
        let paths: Vec<_> = listings
            .iter()
            .map(|l| (l.segment, l.path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                (0, "early"),
                (0, "early/ucode"),
                (1, "bin"),
                (1, "bin/tool")
            ]
        );
        assert_eq!(listings[3].data, b"tool");
    }

    #[test]
    fn zstd_window_declared_by_the_header_is_bounded() {
        let err = error(OOM_ZSTD);
        assert!(
            err.contains("2 GiB window") && err.contains("128 MiB"),
            "{err}"
        );
    }

    #[test]
    fn xz_dictionary_declared_by_the_header_is_bounded() {
        let mut data = compress(&archive(&[("a", b"a")]), Compression::Xz).unwrap();
        // The block header after the 12-byte stream header: size, flags (no sizes stored),
        // the LZMA2 filter (id 0x21, one property byte: the dictionary size), padding, CRC32.
        assert_eq!(&data[13..16], &[0x00, 0x21, 0x01]);
        // 37 is a 1.5 GiB dictionary, which the decoder would allocate before any data.
        data[16] = 37;
        let header_len = (usize::from(data[12]) + 1) * 4;
        let mut crc = flate2::Crc::new();
        crc.update(&data[12..12 + header_len - 4]);
        data[12 + header_len - 4..12 + header_len].copy_from_slice(&crc.sum().to_le_bytes());
        let err = error(&data);
        assert!(err.contains("128 MiB"), "{err}");
    }

    #[test]
    fn lz4_streams_of_tiny_blocks_unpack_whole() {
        // Many one-literal blocks: they unpack through one reused buffer (a fresh 8 MiB one
        // per block made this input take 17 s; the fuzzers' per-input timeout catches a
        // return of that, since tests here never time anything).
        let block = lz4_flex::block::compress(b"a");
        let mut data = vec![0x02, 0x21, 0x4c, 0x18];
        for _ in 0..20_000 {
            data.extend_from_slice(&(block.len() as u32).to_le_bytes());
            data.extend_from_slice(&block);
        }
        let (plain, used) = crate::host::image::compress::decompress_stream(
            &data,
            Compression::Lz4,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(plain, vec![b'a'; 20_000]);
        assert_eq!(used, data.len());
    }

    #[test]
    fn all_archives_together_are_bounded_too() {
        let limits = Limits {
            max_unpacked: 1 << 20,
            max_decoder_memory: 1 << 20,
        };
        let half = archive(&[("a", &[7; 600 << 10])]);
        let packed = compress(&half, Compression::Gzip).unwrap();
        assert_eq!(read_image_with(&packed, &limits).unwrap().len(), 1);
        // Each stream is under the limit; the second one takes the image over it.
        let twice = [packed.clone(), packed].concat();
        let err = format!("{:#}", read_image_with(&twice, &limits).unwrap_err());
        assert!(err.contains("more than 1 MiB in all"), "{err}");
        // Uncompressed archives count as well.
        let err = format!(
            "{:#}",
            read_image_with(&[half.clone(), half].concat(), &limits).unwrap_err()
        );
        assert!(err.contains("more than 1 MiB in all"), "{err}");
    }

    #[test]
    fn truncated_body_says_what_was_declared() {
        let mut data = archive(&[("x", b"abc")]);
        // The size field (the 7th after the magic) of the only entry: claim 4 GiB - 1 bytes
        // with 3 present.
        let size_field = 6 + 6 * 8;
        assert_eq!(&data[size_field..size_field + 8], b"00000003");
        data[size_field..size_field + 8].copy_from_slice(b"ffffffff");
        let err = error(&data);
        assert!(err.contains("4294967295") && err.contains("x"), "{err}");
    }
}
