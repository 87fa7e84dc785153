//! Compressing an image in a form the kernel's own decompressors accept, and the reverse for
//! `baton inspect` and for compressed kernel modules.
//!
//! The kernel's unpackers are narrower than the command-line tools (lib/decompress_*.c):
//! - xz: only the CRC32 or no integrity check (xz's default CRC64 is rejected);
//! - zstd: one frame whose window the kernel can allocate, so the window is bounded by the
//!   input size and no long-distance mode is used;
//! - lz4: only the legacy format (magic 0x184C2102, then blocks of a u32 length and data), which
//!   has no end marker and so must be the last thing in the image.

use crate::host::modules::config::KernelConfig;
use crate::lz4_legacy;
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
            _ => bail!("unknown compression {s:?}: expected auto, gzip, zstd, xz, lz4 or none"),
        })
    }

    /// `--compress` and `compress=`: `auto` (`None`: chosen for the kernel, see
    /// [`Compression::default_for`]) or a compression.
    pub fn parse_choice(s: &str) -> Result<Option<Compression>> {
        match s {
            "auto" => Ok(None),
            other => Compression::parse(other).map(Some),
        }
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

    /// `--compress auto`, the default: lz4 when the kernel's config says it unpacks lz4
    /// (`CONFIG_RD_LZ4=y`: Debian's, Ubuntu's, Fedora's and Arch's kernels do) and it is
    /// 5.14 or later (`release`, e.g. `6.1.0-57-amd64`), gzip, which every kernel unpacks,
    /// otherwise or when the config cannot be found. 5.14 is where the kernel's unlz4 learnt
    /// to read a zero length as the end of the stream (see [`LZ4_END`]).
    ///
    /// Why lz4: under TCG the kernel unpacked a `--storage` image (24 MB of cpio) in
    /// 170-260 ms from lz4 against 390-440 ms from gzip (9.4 MB against 6.2 MB of image),
    /// and writing it took 0.37 s against 0.63 s; zstd was no faster to unpack than gzip and
    /// far slower to write. On real hardware lz4 also unpacks several times faster than
    /// gzip. The cost is the size.
    pub fn default_for(config: Option<&KernelConfig>, release: Option<&str>) -> Compression {
        let reads_lz4_end = release
            .and_then(kernel_version)
            .is_some_and(|version| version >= (5, 14));
        match config {
            Some(config) if config.is_set("CONFIG_RD_LZ4") && reads_lz4_end => Compression::Lz4,
            _ => Compression::Gzip,
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
        } else if data.starts_with(&lz4_legacy::MAGIC) {
            Some(Compression::Lz4)
        } else {
            None
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
/// Written after the last lz4 block: a block length of zero, which the kernel's unlz4 reads
/// as the end of the stream (since 5.14, and the stable updates of July 2021 to 4.14, 4.19,
/// 5.4 and 5.10: "lib/decompress_unlz4.c: correctly handle zero-padding around initrds").
/// The legacy format has no end of its own: without it, an archive appended to the image
/// (`cat baton.img more.cpio`) would be read as one more lz4 block, fail, and be lost.
/// More zeros follow, up to a multiple of 4 bytes: the kernel skips them, and takes an
/// uncompressed archive only at an offset that is a multiple of 4 (unpack_to_rootfs), so an
/// appended cpio after a stream of any other length was refused ("invalid magic at start
/// of compressed archive"). The stream itself starts at such an offset (after the early
/// microcode archive, whose length is a multiple of 4, or at 0).
const LZ4_END: [u8; 4] = [0; 4];
/// Largest zstd window we ask the kernel to allocate: 8 MiB, zstd's own level-19 default.
const ZSTD_MAX_WINDOW_LOG: u32 = 23;

/// Packs `data` as one lz4 legacy stream (`crate::lz4_legacy`), without an end marker: the
/// body of an lz4 image, and a packed module file (`.ko.lz4`) whole.
pub fn lz4_legacy_stream(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = lz4_legacy::MAGIC.to_vec();
    for block in data.chunks(lz4_legacy::BLOCK) {
        let packed = lz4_flex::block::compress(block);
        let len = u32::try_from(packed.len()).context("lz4 block too large")?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&packed);
    }
    Ok(out)
}

/// Compresses a whole image.
pub fn compress(data: &[u8], how: Compression) -> Result<Vec<u8>> {
    Ok(match how {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            // No file name and mtime 0 in the header (the builder's defaults): reproducible.
            // Level 6, gzip's own default: measured on Debian's 6.1 modules, level 9 made
            // the image 0.7% smaller and the build three times slower (1.2 s against 0.36 s
            // for the small image, 6.1 s against 1.9 s for --storage), and the kernel
            // unpacks either at the same speed.
            let mut enc = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::new(6));
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
            let mut out = lz4_legacy_stream(data)?;
            out.extend_from_slice(&LZ4_END);
            out.resize(out.len().next_multiple_of(4), 0);
            out
        }
    })
}

/// `(major, minor)` of a kernel release such as `6.1.0-57-amd64` or `5.14.21`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// What reading compressed data may cost, whatever its headers claim. Sizes and windows in
/// a header are the input's word only; readers take them as upper bounds to check, never as
/// amounts to allocate, and stop at these limits with an error that names the limit.
///
/// With them, reading an image takes at most the image itself, `max_unpacked` for one stream's
/// output, `max_decoder_memory` for the decompressor, and the listing (at most about twice
/// the unpacked bytes, since every cpio entry takes at least 112 of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes one stream may unpack to, and all the archives of an image together.
    pub max_unpacked: u64,
    /// Most memory a decompressor may set aside for the window or dictionary its stream's
    /// header asks for (zstd, xz; gzip's window is 32 KiB and lz4's block is fixed at 8 MiB).
    pub max_decoder_memory: u64,
}

impl Limits {
    /// For real images. Initramfs images unpack to a few hundred MB at most, so 1 GiB leaves
    /// room without letting a 100-byte file make a host tool allocate gigabytes. 128 MiB of decoder memory reads every zstd
    /// level up to `--ultra -22` and `--long` (window 2^27), and xz up to `-9e` (64 MiB).
    pub const DEFAULT: Limits = Limits {
        max_unpacked: 1 << 30,
        max_decoder_memory: 128 << 20,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// A byte count as a person reads it: `2 GiB`, `128 MiB`, or exact bytes.
pub fn human_size(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// Parses a size given on the command line: bytes, or with a K, M or G suffix (binary).
pub fn parse_size(s: &str) -> Result<u64> {
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (s.get(..i), 10),
        Some((i, 'M' | 'm')) => (s.get(..i), 20),
        Some((i, 'G' | 'g')) => (s.get(..i), 30),
        _ => (Some(s), 0),
    };
    digits
        .and_then(|d| d.parse::<u64>().ok())
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .with_context(|| format!("bad size {s:?}: expected a number of bytes, or with K, M or G"))
}

/// Reads `r` to its end into `out`, growing the buffer as bytes arrive and never beyond
/// `limit` bytes of capacity. Returns false (with `out` full up to at most `limit`) if there
/// was more than `limit`.
pub fn read_bounded(mut r: impl Read, limit: usize, out: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let got = chunk.get(..n).unwrap_or_default();
        if got.len() > limit.saturating_sub(out.len()) {
            return Ok(false);
        }
        if out.capacity() - out.len() < got.len() {
            // Doubling as a Vec does, but capped at the limit, which is the bound we promise.
            let want = out
                .capacity()
                .saturating_mul(2)
                .max(out.len() + got.len())
                .min(limit);
            out.try_reserve_exact(want - out.len())
                .map_err(std::io::Error::other)?;
        }
        out.extend_from_slice(got);
    }
}

fn unpacked_limit_error(how: Compression, limits: &Limits) -> anyhow::Error {
    anyhow::anyhow!(
        "the {} stream unpacks to more than {}, the limit on unpacked data",
        how.name(),
        human_size(limits.max_unpacked)
    )
}

fn decoder_memory_error(what: &str, limits: &Limits) -> anyhow::Error {
    anyhow::anyhow!(
        "{what}, over the {} limit on decoder memory",
        human_size(limits.max_decoder_memory)
    )
}

/// Decompresses one stream at the start of `data`, within `limits`. Returns the output and
/// how many input bytes the stream used, so the caller can look for what follows it.
pub fn decompress_stream(
    data: &[u8],
    how: Compression,
    limits: &Limits,
) -> Result<(Vec<u8>, usize)> {
    let max = usize::try_from(limits.max_unpacked).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let used = match how {
        Compression::None => {
            if data.len() > max {
                return Err(unpacked_limit_error(how, limits));
            }
            out.extend_from_slice(data);
            data.len()
        }
        Compression::Gzip => {
            let mut reader = std::io::Cursor::new(data);
            let dec = flate2::bufread::GzDecoder::new(&mut reader);
            if !read_bounded(dec, max, &mut out).context("bad gzip data")? {
                return Err(unpacked_limit_error(how, limits));
            }
            reader.position() as usize
        }
        Compression::Zstd => {
            // Refuse a window over the limit before the decoder allocates it, so the error can
            // say what the frame asked for; the decoder is bounded too, should the two differ.
            if let Some(window) = zstd_window_size(data) {
                if window > limits.max_decoder_memory {
                    return Err(decoder_memory_error(
                        &format!("the zstd frame asks for a {} window", human_size(window)),
                        limits,
                    ));
                }
            }
            let mut reader = std::io::BufReader::new(std::io::Cursor::new(data));
            let mut dec = zstd::stream::read::Decoder::with_buffer(&mut reader)?.single_frame();
            dec.window_log_max(zstd_window_log_max(limits.max_decoder_memory))?;
            if !read_bounded(&mut dec, max, &mut out).context("bad zstd data")? {
                return Err(unpacked_limit_error(how, limits));
            }
            drop(dec);
            consumed(reader)
        }
        Compression::Xz => {
            let stream = liblzma::stream::Stream::new_stream_decoder(limits.max_decoder_memory, 0)
                .context("failed to set up the xz decoder")?;
            let mut reader = std::io::BufReader::new(std::io::Cursor::new(data));
            let mut dec = liblzma::bufread::XzDecoder::new_stream(&mut reader, stream);
            match read_bounded(&mut dec, max, &mut out) {
                Ok(true) => {}
                Ok(false) => return Err(unpacked_limit_error(how, limits)),
                Err(e) if is_xz_memlimit(&e) => {
                    return Err(decoder_memory_error(
                        "the xz stream's dictionary needs more memory",
                        limits,
                    ))
                }
                Err(e) => return Err(e).context("bad xz data"),
            }
            drop(dec);
            consumed(reader)
        }
        Compression::Lz4 => {
            let (unpacked, used) = lz4_legacy::decompress(data, max)?
                .ok_or_else(|| unpacked_limit_error(how, limits))?;
            out = unpacked;
            used
        }
    };
    Ok((out, used))
}

fn is_xz_memlimit(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<liblzma::stream::Error>())
        .is_some_and(|inner| matches!(inner, liblzma::stream::Error::MemLimit))
}

/// The window a zstd frame's header declares (RFC 8878, 3.1.1.1): the memory a decoder sets
/// aside for it. None if the header is cut short (the decoder then reports the error).
fn zstd_window_size(data: &[u8]) -> Option<u64> {
    let descriptor = *data.get(4)?;
    if descriptor & 0x20 == 0 {
        // A window descriptor: exponent and mantissa of a size between 1 KiB and 3.75 TiB.
        let wd = *data.get(5)?;
        let base = 1u64 << (10 + u32::from(wd >> 3));
        return Some(base + base / 8 * u64::from(wd & 7));
    }
    // A single segment: the window is the whole content, whose size follows the dictionary ID.
    let dict_id_len = match descriptor & 3 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 4,
    };
    let size_len = match descriptor >> 6 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let field = data.get(5 + dict_id_len..5 + dict_id_len + size_len)?;
    let mut bytes = [0u8; 8];
    bytes.get_mut(..size_len)?.copy_from_slice(field);
    let size = u64::from_le_bytes(bytes);
    // The two-byte form counts from 256.
    Some(if size_len == 2 { size + 256 } else { size })
}

/// The smallest window log zstd's decoder takes that admits every window up to `max` bytes,
/// within the bounds it accepts (2^10 to 2^31).
fn zstd_window_log_max(max: u64) -> u32 {
    let log = u64::BITS - max.saturating_sub(1).leading_zeros();
    log.clamp(10, 31)
}

/// Bytes consumed from a cursor behind a BufReader: its position minus what is buffered.
fn consumed(mut reader: std::io::BufReader<std::io::Cursor<&[u8]>>) -> usize {
    let buffered = reader.fill_buf().map(|b| b.len()).unwrap_or(0);
    (reader.get_ref().position() as usize).saturating_sub(buffered)
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
        // A module file is untrusted input like an image, and bounded by the same limits.
        (Some(want), Some(found)) if want == found => {
            Ok(decompress_stream(&raw, want, &Limits::DEFAULT)?.0)
        }
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
            let (back, used) = decompress_stream(&packed, how, &Limits::DEFAULT).unwrap();
            assert_eq!(back, data, "{}", how.name());
            // lz4's end marker is a zero length, read as padding after the stream, and more
            // zeros up to a multiple of 4 bytes.
            if how == Compression::Lz4 {
                assert!(
                    (4..8).contains(&(packed.len() - used)),
                    "{}",
                    packed.len() - used
                );
                assert_eq!(packed.len() % 4, 0);
            } else {
                assert_eq!(used, packed.len(), "{}", how.name());
            }
        }
    }

    #[test]
    fn lz4_ends_with_a_zero_length_on_a_4_byte_boundary() {
        // Inputs whose streams end at every remainder mod 4 before the padding.
        let mut remainders = std::collections::BTreeSet::new();
        for extra in 0..64usize {
            let mut data = sample();
            data.extend((0..extra).map(|i| (i * 7919 % 251) as u8));
            let packed = compress(&data, Compression::Lz4).unwrap();
            assert_eq!(
                packed.len() % 4,
                0,
                "an appended cpio must start 4-byte aligned"
            );
            let mut appended = packed.clone();
            appended.extend_from_slice(b"070701");
            let (back, used) =
                decompress_stream(&appended, Compression::Lz4, &Limits::DEFAULT).unwrap();
            assert_eq!(back, data);
            let padding = packed.len() - used;
            assert!((4..8).contains(&padding), "{padding}");
            assert!(packed[used..].iter().all(|&b| b == 0));
            remainders.insert(used % 4);
        }
        assert_eq!(
            remainders.len(),
            4,
            "every remainder was tried: {remainders:?}"
        );
    }

    #[test]
    fn auto_is_lz4_only_where_the_kernel_reads_its_end() {
        let lz4 = KernelConfig::parse("CONFIG_RD_LZ4=y\nCONFIG_RD_GZIP=y\n");
        let gzip_only = KernelConfig::parse("CONFIG_RD_GZIP=y\n");
        let auto = Compression::default_for;
        assert_eq!(auto(Some(&lz4), Some("6.1.0-57-amd64")), Compression::Lz4);
        assert_eq!(auto(Some(&lz4), Some("5.14.0")), Compression::Lz4);
        assert_eq!(auto(Some(&lz4), Some("5.10.0-30-amd64")), Compression::Gzip);
        assert_eq!(auto(Some(&gzip_only), Some("6.12.1")), Compression::Gzip);
        assert_eq!(auto(None, Some("6.12.1")), Compression::Gzip);
        assert_eq!(auto(Some(&lz4), None), Compression::Gzip);
        assert_eq!(kernel_version("6.12.117+deb12-amd64"), Some((6, 12)));
        assert_eq!(kernel_version("x"), None);
    }

    #[test]
    fn streams_report_where_they_end() {
        let data = sample();
        for how in [Compression::Gzip, Compression::Zstd, Compression::Xz] {
            let mut packed = compress(&data, how).unwrap();
            let len = packed.len();
            packed.extend_from_slice(b"\x00\x00\x00\x00070701");
            let (_, used) = decompress_stream(&packed, how, &Limits::DEFAULT).unwrap();
            assert_eq!(used, len, "{}", how.name());
        }
    }

    fn small(max_unpacked: u64) -> Limits {
        Limits {
            max_unpacked,
            max_decoder_memory: 16 << 20,
        }
    }

    #[test]
    fn unpacked_output_stops_at_the_limit() {
        // Periodic, so that even zstd -19 and xz compress it at once.
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        for how in [
            Compression::Gzip,
            Compression::Zstd,
            Compression::Xz,
            Compression::Lz4,
        ] {
            let packed = compress(&data, how).unwrap();
            let exact = small(data.len() as u64);
            assert_eq!(decompress_stream(&packed, how, &exact).unwrap().0, data);
            let err = decompress_stream(&packed, how, &small(1 << 20)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "the {} stream unpacks to more than 1 MiB, the limit on unpacked data",
                    how.name()
                )
            );
        }
    }

    #[test]
    fn zstd_window_is_read_from_every_header_form() {
        // Window descriptor 0xa8: 2^(10+21) = 2 GiB, as in the fuzzer's finding.
        assert_eq!(
            zstd_window_size(&[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8]),
            Some(2 << 30)
        );
        // Exponent 13, mantissa 3: 8 MiB + 3/8 of it.
        assert_eq!(
            zstd_window_size(&[0x28, 0xb5, 0x2f, 0xfd, 0x00, (13 << 3) | 3]),
            Some((8 << 20) + (3 << 20))
        );
        // Single segment, a 2-byte content size (counted from 256) after a 1-byte dict ID.
        assert_eq!(
            zstd_window_size(&[0x28, 0xb5, 0x2f, 0xfd, 0x61, 0x07, 0x00, 0x01]),
            Some(256 + 256)
        );
        // Single segment, an 8-byte content size of 2^40.
        let mut header = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
        header.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert_eq!(zstd_window_size(&header), Some(1 << 40));
        assert_eq!(zstd_window_size(&header[..8]), None);
        // What baton itself writes (a window of at most 8 MiB, even for larger images) is
        // within the default limit.
        let packed = compress(&vec![0u8; 9 << 20], Compression::Zstd).unwrap();
        assert_eq!(zstd_window_size(&packed), Some(1 << ZSTD_MAX_WINDOW_LOG));
        assert!(zstd_window_size(&packed).unwrap() <= Limits::DEFAULT.max_decoder_memory);
    }

    #[test]
    fn zstd_decoder_is_bounded_even_without_the_header_check() {
        assert_eq!(zstd_window_log_max(128 << 20), 27);
        assert_eq!(zstd_window_log_max((128 << 20) + 1), 28);
        assert_eq!(zstd_window_log_max(1), 10);
        assert_eq!(zstd_window_log_max(u64::MAX), 31);
    }

    #[test]
    fn lz4_blocks_larger_than_any_8_mib_block_compresses_to_are_refused() {
        // LZ4_compressBound(8 MiB), as lz4.h computes it.
        assert_eq!(lz4_legacy::MAX_PACKED, 8_421_520);
        let mut data = lz4_legacy::MAGIC.to_vec();
        let len = lz4_legacy::MAX_PACKED + 1;
        data.extend_from_slice(&(len as u32).to_le_bytes());
        data.resize(data.len() + len, 0);
        let err = decompress_stream(&data, Compression::Lz4, &Limits::DEFAULT).unwrap_err();
        assert!(err.to_string().contains("8421521 bytes"), "{err}");
    }

    #[test]
    fn reading_is_bounded_in_capacity_too() {
        let mut out = Vec::new();
        let complete = read_bounded(std::io::repeat(0), 1_000_000, &mut out).unwrap();
        assert!(!complete);
        assert!(out.capacity() <= 1_000_000, "{}", out.capacity());
        let mut out = Vec::new();
        assert!(read_bounded(&[1u8; 100][..], 100, &mut out).unwrap());
        assert_eq!(out, [1; 100]);
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(2 << 30), "2 GiB");
        assert_eq!(human_size(128 << 20), "128 MiB");
        assert_eq!(human_size(1536), "1536 bytes");
        assert_eq!(human_size(3 << 10), "3 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
        assert_eq!(parse_size("16M").unwrap(), 16 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "M", "0", "-1", "1T", "1.5G", "99999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
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
