//! The lz4 *legacy* format, as `lz4 -l` writes it and the kernel's unlz4 reads it: the magic
//! 0x184C2102, then blocks of a little-endian u32 length and that many bytes of lz4 block
//! data, each unpacking to at most 8 MiB. The host writes whole images in it, and module
//! files (`.ko.lz4`) for kernels that cannot decompress modules themselves; the init reads
//! those modules back before `init_module`. One bounded reader for both, so the two cannot
//! disagree. (The host packs with lz4_flex's compressor.)
//!
//! The format has no end marker and no unpacked size. Blocks continue until the data ends,
//! a length of zero (padding), or another stream's magic, as unlz4 assumes. The size a
//! block unpacks to is read from its sequences before anything is allocated
//! ([`block_unpacked_len`]), so a module costs its own size, not a fixed 8 MiB buffer that
//! would have to be zeroed first.
//!
//! The block decoder is our own, some forty lines over the same walk of a block's
//! sequences: the init carries it in about a quarter of the code a general-purpose lz4
//! crate added (8 KB), and it is fuzzed against that crate's compressor.

use anyhow::{bail, Context, Result};

pub const MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
/// The fixed block size (uncompressed).
pub const BLOCK: usize = 8 << 20;
/// The most an 8 MiB block compresses to: LZ4_compressBound, which the kernel's unlz4 enforces.
pub const MAX_PACKED: usize = BLOCK + BLOCK / 255 + 16;

/// Unpacks the stream at the start of `data`. Returns the output and how many input bytes
/// the stream used, or None when the output would pass `max` bytes (nothing over `max` is
/// ever allocated). Two passes over the blocks: the first adds up what they unpack to, the
/// second unpacks them into one buffer of that size.
pub fn decompress(data: &[u8], max: usize) -> Result<Option<(Vec<u8>, usize)>> {
    if data.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        bail!("not lz4 legacy data (no magic)");
    }
    let mut total = 0usize;
    let mut at = MAGIC.len();
    while let Some(block) = next_block(data, &mut at)? {
        total = total.saturating_add(block.unpacked);
        if total > max {
            return Ok(None);
        }
    }
    let used = at;
    let mut out = vec![0u8; total];
    let mut done = 0;
    at = MAGIC.len();
    while let Some(block) = next_block(data, &mut at)? {
        let end = done + block.unpacked;
        let into = out.get_mut(done..end).context("lz4 block out of place")?;
        unpack_block(block.data, into)
            .context("bad lz4 block: a match reaches before its start")?;
        done = end;
    }
    Ok(Some((out, used)))
}

/// One block of a stream: its data, and the size it unpacks to.
struct Block<'a> {
    data: &'a [u8],
    unpacked: usize,
}

/// The block at `at`, moving `at` past it; None at the stream's end, where `at` is left at
/// the first byte after the stream. Every call moves `at` forward by at least 4 bytes or
/// ends the stream, so a loop over the blocks ends within `data.len() / 4` calls.
fn next_block<'a>(data: &'a [u8], at: &mut usize) -> Result<Option<Block<'a>>> {
    loop {
        let Some(len_bytes) = data.get(*at..*at + 4) else {
            *at = data.len().min(*at);
            return Ok(None);
        };
        let len_bytes: [u8; 4] = len_bytes.try_into().unwrap_or_default();
        if len_bytes == MAGIC {
            // Another stream follows: `cat a.lz4 b.lz4` is one stream to unlz4.
            *at += 4;
            continue;
        }
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len == 0 {
            // Zero padding after the stream (e.g. to a 4-byte boundary): the end.
            return Ok(None);
        }
        let start = *at;
        if len > MAX_PACKED {
            bail!(
                "lz4 block of {len} bytes at byte {start}, over the {MAX_PACKED} bytes any \
                 8 MiB block compresses to"
            );
        }
        let data = data
            .get(start + 4..start + 4 + len)
            .with_context(|| format!("truncated lz4 block at byte {start}"))?;
        let unpacked =
            block_unpacked_len(data).with_context(|| format!("bad lz4 block at byte {start}"))?;
        if unpacked > BLOCK {
            bail!("lz4 block at byte {start} unpacks to {unpacked} bytes, over 8 MiB");
        }
        *at = start + 4 + len;
        return Ok(Some(Block { data, unpacked }));
    }
}

/// One step of a block: literals to copy, or a match to repeat from `offset` bytes back.
enum Step<'a> {
    Literals(&'a [u8]),
    Match { offset: usize, len: usize },
}

/// Walks a block's sequences, handing each step to `step`; None if the block ends
/// mid-sequence or `step` refuses one. Each sequence is a token (literal and match lengths,
/// 4 bits each, 15 meaning "more bytes follow", 255 among those meaning "more still"), the
/// literals, a 2-byte match offset and the match length's extra bytes; the last sequence
/// ends after its literals. Every step moves forward in the block, so the walk is bounded
/// by its length.
fn walk<'a>(block: &'a [u8], mut step: impl FnMut(Step<'a>) -> Option<()>) -> Option<()> {
    let mut at = 0usize;
    loop {
        let token = *block.get(at)?;
        at += 1;
        let literals = extended_len(block, &mut at, usize::from(token >> 4))?;
        let end = at.checked_add(literals)?;
        step(Step::Literals(block.get(at..end)?))?;
        at = end;
        if at == block.len() {
            return Some(());
        }
        let offset = usize::from(u16::from_le_bytes([*block.get(at)?, *block.get(at + 1)?]));
        at += 2;
        let len = extended_len(block, &mut at, usize::from(token & 0x0f))?.checked_add(4)?;
        step(Step::Match { offset, len })?;
    }
}

/// The bytes one lz4 block unpacks to, read from its sequences. Offsets are
/// [`unpack_block`]'s to check.
pub fn block_unpacked_len(block: &[u8]) -> Option<usize> {
    let mut total = 0usize;
    walk(block, |step| {
        let n = match step {
            Step::Literals(bytes) => bytes.len(),
            Step::Match { len, .. } => len,
        };
        total = total.checked_add(n)?;
        Some(())
    })?;
    Some(total)
}

/// Unpacks one block into `out`, which is exactly as long as [`block_unpacked_len`] said.
/// None if a match reaches back before the block's start (or the lengths disagree).
fn unpack_block(block: &[u8], out: &mut [u8]) -> Option<()> {
    let mut done = 0usize;
    walk(block, |step| {
        match step {
            Step::Literals(bytes) => {
                let end = done.checked_add(bytes.len())?;
                out.get_mut(done..end)?.copy_from_slice(bytes);
                done = end;
            }
            Step::Match { offset, len } => {
                let end = done.checked_add(len)?;
                if offset == 0 || offset > done || end > out.len() {
                    return None;
                }
                repeat(out, done - offset, done, len);
                done = end;
            }
        }
        Some(())
    })?;
    (done == out.len()).then_some(())
}

/// Copies `len` bytes from `from` to `to` (`from < to`, `to + len` within `out`) as lz4
/// means it: byte by byte, so a match longer than its offset repeats what it has just
/// written. Done in chunks that never overlap their source: the first is `to - from`
/// bytes, and each doubles what can be copied next.
fn repeat(out: &mut [u8], from: usize, to: usize, len: usize) {
    let mut copied = 0;
    while copied < len {
        let n = (len - copied).min(to - from + copied);
        out.copy_within(from..from + n, to + copied);
        copied += n;
    }
}

/// A 4-bit length, with its extra bytes when it is 15.
fn extended_len(block: &[u8], at: &mut usize, nibble: usize) -> Option<usize> {
    let mut len = nibble;
    if nibble != 15 {
        return Some(len);
    }
    loop {
        let byte = *block.get(*at)?;
        *at += 1;
        len = len.checked_add(usize::from(byte))?;
        if byte != 255 {
            return Some(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream as the host packs one (`host::image::compress::lz4_legacy_stream`).
    fn compress(data: &[u8]) -> Result<Vec<u8>> {
        let mut out = MAGIC.to_vec();
        for block in data.chunks(BLOCK) {
            let packed = lz4_flex::block::compress(block);
            out.extend_from_slice(&(packed.len() as u32).to_le_bytes());
            out.extend_from_slice(&packed);
        }
        Ok(out)
    }

    /// Data with long runs and short ones, so blocks hold both literals and matches.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                if i % 1000 < 600 {
                    (i % 7) as u8
                } else {
                    state as u8
                }
            })
            .collect()
    }

    #[test]
    fn the_unpacked_length_is_read_from_the_sequences() {
        for len in [0, 1, 14, 15, 16, 300, 4096, 70_000] {
            let data = sample(len);
            let block = lz4_flex::block::compress(&data);
            assert_eq!(block_unpacked_len(&block), Some(len), "{len} bytes");
            // Cut anywhere inside, the block is either refused or shorter: never longer,
            // never a panic.
            for cut in 0..block.len().min(64) {
                if let Some(n) = block_unpacked_len(&block[..cut]) {
                    assert!(n < len.max(1));
                }
            }
        }
    }

    #[test]
    fn streams_round_trip_and_say_where_they_end() {
        for len in [0, 5, 100_000, BLOCK + 17] {
            let data = sample(len);
            let mut stream = compress(&data).unwrap();
            let end = stream.len();
            stream.extend_from_slice(&[0; 8]);
            stream.extend_from_slice(b"070701");
            let (out, used) = decompress(&stream, usize::MAX).unwrap().unwrap();
            assert_eq!(out, data);
            assert_eq!(used, end);
        }
    }

    #[test]
    fn matches_longer_than_their_offset_repeat_what_they_wrote() {
        // "ab", then a match 2 back of 4 + 5 bytes, then the literal "c".
        let block = [0x25, b'a', b'b', 0x02, 0x00, 0x10, b'c'];
        assert_eq!(block_unpacked_len(&block), Some(12));
        let mut out = [0u8; 12];
        unpack_block(&block, &mut out).unwrap();
        assert_eq!(&out, b"abababababac");
        // Offset 1: a run of one byte.
        let block = [0x1f, b'z', 0x01, 0x00, 0x03, 0x00];
        let mut out = vec![0u8; block_unpacked_len(&block).unwrap()];
        unpack_block(&block, &mut out).unwrap();
        assert_eq!(out, vec![b'z'; 23]);
    }

    #[test]
    fn concatenated_streams_are_one() {
        let mut stream = compress(b"hello ").unwrap();
        stream.extend(compress(b"world").unwrap());
        let (out, used) = decompress(&stream, 100).unwrap().unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(used, stream.len());
    }

    #[test]
    fn output_over_the_limit_is_refused_before_it_is_allocated() {
        let stream = compress(&[0u8; 10_000]).unwrap();
        assert!(decompress(&stream, 9_999).unwrap().is_none());
        assert_eq!(
            decompress(&stream, 10_000).unwrap().unwrap().0.len(),
            10_000
        );
    }

    #[test]
    fn damaged_streams_are_errors() {
        assert!(decompress(b"\x7fELF", 100).is_err());
        let mut stream = compress(&sample(5000)).unwrap();
        stream.truncate(stream.len() - 1);
        assert!(decompress(&stream, usize::MAX).is_err());
        // A declared length past any real block.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decompress(&huge, usize::MAX).is_err());
        // A match reaching back before the start: the sequences add up, the decoder refuses.
        let mut bad = MAGIC.to_vec();
        let block = [0x14, b'a', 0x09, 0x00, 0x00];
        bad.extend_from_slice(&(block.len() as u32).to_le_bytes());
        bad.extend_from_slice(&block);
        assert!(decompress(&bad, usize::MAX).is_err());
    }
}
