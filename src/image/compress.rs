//! Compressing an image in a form the kernel's own decompressors accept, and the reverse for
//! `baton inspect` and for compressed kernel modules.
//!
//! The kernel's unpackers are narrower than the command-line tools (lib/decompress_*.c):
//! - xz: only the CRC32 or no integrity check (xz's default CRC64 is rejected);
//! - zstd: one frame whose window the kernel can allocate, so the window is bounded by the
//!   input size and no long-distance mode is used;
//! - lz4: only the legacy format (magic 0x184C2102, then blocks of a u32 length and data), which
//!   has no end marker and so must be the last thing in the image.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, Read, Write};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Lz4,
}

impl Compression {
    pub fn parse(s: &str) -> Result<Compression> {
        Ok(match s {
            "none" => Compression::None,
            "gzip" => Compression::Gzip,
            "zstd" => Compression::Zstd,
            "xz" => Compression::Xz,
            "lz4" => Compression::Lz4,
            _ => bail!("unknown compression {s:?}: expected gzip, zstd, xz, lz4 or none"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Lz4 => "lz4",
        }
    }

    /// Recognizes a compressed stream by its first bytes.
    pub fn detect(data: &[u8]) -> Option<Compression> {
        if data.starts_with(&GZIP_MAGIC) {
            Some(Compression::Gzip)
        } else if data.starts_with(&ZSTD_MAGIC) {
            Some(Compression::Zstd)
        } else if data.starts_with(&XZ_MAGIC) {
            Some(Compression::Xz)
        } else if data.starts_with(&LZ4_LEGACY_MAGIC) {
            Some(Compression::Lz4)
        } else {
            None
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
/// The legacy lz4 format's fixed block size (uncompressed), as `lz4 -l` writes it.
const LZ4_LEGACY_BLOCK: usize = 8 << 20;
/// Largest zstd window we ask the kernel to allocate: 8 MiB, zstd's own level-19 default.
const ZSTD_MAX_WINDOW_LOG: u32 = 23;

/// Compresses a whole image.
pub fn compress(data: &[u8], how: Compression) -> Result<Vec<u8>> {
    Ok(match how {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            // No file name and mtime 0 in the header (the builder's defaults): reproducible.
            let mut enc = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::best());
            enc.write_all(data)?;
            enc.finish()?
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::Encoder::new(Vec::new(), 19)?;
            enc.include_checksum(true)?;
            enc.set_pledged_src_size(Some(data.len() as u64))?;
            enc.window_log(ZSTD_MAX_WINDOW_LOG)?;
            enc.long_distance_matching(false)?;
            enc.write_all(data)?;
            enc.finish()?
        }
        Compression::Xz => {
            let stream =
                liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)
                    .context("failed to set up the xz encoder")?;
            let mut enc = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
            enc.write_all(data)?;
            enc.finish()?
        }
        Compression::Lz4 => {
            let mut out = LZ4_LEGACY_MAGIC.to_vec();
            for block in data.chunks(LZ4_LEGACY_BLOCK) {
                let packed = lz4_flex::block::compress(block);
                let len = u32::try_from(packed.len()).context("lz4 block too large")?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&packed);
            }
            out
        }
    })
}

/// Decompresses one stream at the start of `data`. Returns the output and how many input
/// bytes the stream used, so the caller can look for what follows it.
pub fn decompress_stream(data: &[u8], how: Compression) -> Result<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let used = match how {
        Compression::None => {
            out.extend_from_slice(data);
            data.len()
        }
        Compression::Gzip => {
            let mut reader = std::io::Cursor::new(data);
            let mut dec = flate2::bufread::GzDecoder::new(&mut reader);
            dec.read_to_end(&mut out).context("bad gzip data")?;
            drop(dec);
            reader.position() as usize
        }
        Compression::Zstd => {
            let mut reader = std::io::BufReader::new(std::io::Cursor::new(data));
            let mut dec = zstd::stream::read::Decoder::with_buffer(&mut reader)?.single_frame();
            dec.window_log_max(31)?;
            dec.read_to_end(&mut out).context("bad zstd data")?;
            drop(dec);
            consumed(reader)
        }
        Compression::Xz => {
            let mut reader = std::io::BufReader::new(std::io::Cursor::new(data));
            let mut dec = liblzma::bufread::XzDecoder::new(&mut reader);
            dec.read_to_end(&mut out).context("bad xz data")?;
            drop(dec);
            consumed(reader)
        }
        Compression::Lz4 => decompress_lz4_legacy(data, &mut out)?,
    };
    Ok((out, used))
}

/// Bytes consumed from a cursor behind a BufReader: its position minus what is buffered.
fn consumed(mut reader: std::io::BufReader<std::io::Cursor<&[u8]>>) -> usize {
    let buffered = reader.fill_buf().map(|b| b.len()).unwrap_or(0);
    (reader.get_ref().position() as usize).saturating_sub(buffered)
}

/// The legacy lz4 format has no end marker: blocks continue until the data ends or the next
/// "length" is another stream's magic number (as the kernel's unlz4 assumes).
fn decompress_lz4_legacy(data: &[u8], out: &mut Vec<u8>) -> Result<usize> {
    let mut at = LZ4_LEGACY_MAGIC.len();
    loop {
        let Some(len_bytes) = data.get(at..at + 4) else {
            return Ok(data.len().min(at));
        };
        let len_bytes: [u8; 4] = len_bytes.try_into().unwrap_or_default();
        if len_bytes == LZ4_LEGACY_MAGIC {
            at += 4;
            continue;
        }
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len == 0 {
            // Zero padding after the stream (e.g. to a 512-byte boundary): the end.
            return Ok(at);
        }
        let block = data
            .get(at + 4..at + 4 + len)
            .context("truncated lz4 block")?;
        let mut buf = vec![0u8; LZ4_LEGACY_BLOCK];
        let n = lz4_flex::block::decompress_into(block, &mut buf).context("bad lz4 block")?;
        out.extend_from_slice(buf.get(..n).unwrap_or_default());
        at += 4 + len;
    }
}

/// A module file's ELF bytes, whatever its compression (`.ko`, `.ko.xz`, `.ko.zst`,
/// `.ko.gz`); the content is checked, not only the name.
pub fn decompress_module(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let expected = if name.ends_with(".ko.xz") {
        Some(Compression::Xz)
    } else if name.ends_with(".ko.zst") {
        Some(Compression::Zstd)
    } else if name.ends_with(".ko.gz") {
        Some(Compression::Gzip)
    } else {
        None
    };
    match (expected, Compression::detect(&raw)) {
        (None, _) => Ok(raw),
        (Some(want), Some(found)) if want == found => Ok(decompress_stream(&raw, want)?.0),
        (Some(want), _) => bail!("expected {} data, found something else", want.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut data = Vec::new();
        for i in 0..200_000u32 {
            data.extend_from_slice(format!("line {} {}\n", i, i % 7).as_bytes());
        }
        data
    }

    #[test]
    fn every_compression_round_trips_and_is_detected() {
        let data = sample();
        for how in [
            Compression::Gzip,
            Compression::Zstd,
            Compression::Xz,
            Compression::Lz4,
        ] {
            let packed = compress(&data, how).unwrap();
            assert_eq!(Compression::detect(&packed), Some(how));
            assert!(
                packed.len() < data.len() / 2,
                "{} did not compress",
                how.name()
            );
            let (back, used) = decompress_stream(&packed, how).unwrap();
            assert_eq!(back, data, "{}", how.name());
            assert_eq!(used, packed.len(), "{}", how.name());
        }
    }

    #[test]
    fn streams_report_where_they_end() {
        let data = sample();
        for how in [Compression::Gzip, Compression::Zstd, Compression::Xz] {
            let mut packed = compress(&data, how).unwrap();
            let len = packed.len();
            packed.extend_from_slice(b"\x00\x00\x00\x00070701");
            let (_, used) = decompress_stream(&packed, how).unwrap();
            assert_eq!(used, len, "{}", how.name());
        }
    }

    #[test]
    fn xz_uses_crc32_as_the_kernel_requires() {
        let packed = compress(b"hello", Compression::Xz).unwrap();
        // Stream flags after the 6-byte magic: 0x00, check type 0x01 = CRC32.
        assert_eq!(&packed[6..8], &[0x00, 0x01]);
    }

    #[test]
    fn zstd_window_is_bounded() {
        let packed = compress(&sample(), Compression::Zstd).unwrap();
        // Frame header descriptor: single-segment flag (bit 5) set means no window
        // descriptor and a window equal to the content size, which the kernel allocates.
        let descriptor = packed[4];
        assert!(descriptor & 0x20 != 0, "descriptor {descriptor:#x}");
    }

    #[test]
    fn gzip_is_reproducible() {
        let data = sample();
        assert_eq!(
            compress(&data, Compression::Gzip).unwrap(),
            compress(&data, Compression::Gzip).unwrap()
        );
    }
}
