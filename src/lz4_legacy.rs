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
//! The block decoder is our own, some sixty lines: the init carries it in about half the
//! code a general-purpose lz4 crate added (8 KB), and it is fuzzed against that crate's
//! compressor. At the init's opt-level `z` it unpacks Debian's 6.1 ext4 (2 MB) in 1.4 ms on
//! this host, 1.7 times what lz4_flex's decoder takes (the first pass is most of the
//! difference), where the first version took 7 ms: 55 ms under qemu's emulated CPU.

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
        let start = at - block.len() - 4;
        let unpacked =
            block_unpacked_len(block).with_context(|| format!("bad lz4 block at byte {start}"))?;
        if unpacked > BLOCK {
            bail!("lz4 block at byte {start} unpacks to {unpacked} bytes, over 8 MiB");
        }
        total = total.saturating_add(unpacked);
        if total > max {
            return Ok(None);
        }
    }
    let used = at;
    let mut out = vec![0u8; total];
    let mut done = 0;
    at = MAGIC.len();
    // The sizes were read above: each block is unpacked into what is left of the buffer,
    // and says how much of it is its own.
    while let Some(block) = next_block(data, &mut at)? {
        let rest = out.get_mut(done..).context("lz4 block out of place")?;
        done +=
            unpack_block(block, rest).context("bad lz4 block: a match reaches before its start")?;
    }
    if done != total {
        bail!("lz4 blocks unpacked to {done} bytes, not the {total} their sequences add up to");
    }
    Ok(Some((out, used)))
}

/// The block at `at`, moving `at` past it; None at the stream's end, where `at` is left at
/// the first byte after the stream. Every call moves `at` forward by at least 4 bytes or
/// ends the stream, so a loop over the blocks ends within `data.len() / 4` calls.
fn next_block<'a>(data: &'a [u8], at: &mut usize) -> Result<Option<&'a [u8]>> {
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
        *at = start + 4 + len;
        return Ok(Some(data));
    }
}

/// The bytes one lz4 block unpacks to, read from its sequences; None if the block ends
/// mid-sequence. Each sequence is a token (literal and match lengths, 4 bits each, 15
/// meaning "more bytes follow", 255 among those meaning "more still"), the literals, a
/// 2-byte match offset and the match length's extra bytes; the last sequence ends after its
/// literals. Every turn moves forward in the block, so the loop is bounded by its length.
/// Offsets are [`unpack_block`]'s to check.
pub fn block_unpacked_len(block: &[u8]) -> Option<usize> {
    let mut total = 0usize;
    let mut at = 0usize;
    loop {
        let token = *block.get(at)?;
        at += 1;
        let literals = extended_len(block, &mut at, usize::from(token >> 4))?;
        at = at.checked_add(literals)?;
        total = total.checked_add(literals)?;
        match at.cmp(&block.len()) {
            std::cmp::Ordering::Equal => return Some(total),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        // The offset's two bytes, then the match length's extra ones.
        at += 2;
        let len = extended_len(block, &mut at, usize::from(token & 0x0f))?.checked_add(4)?;
        total = total.checked_add(len)?;
    }
}

/// Unpacks one block into the start of `out` and returns how many bytes it unpacked to.
/// None if a match reaches back before the block's start or `out` is too short.
///
/// The one hot loop of a module's unpacking: most sequences copy a few literals and a
/// short match, and a copy of a length known only at run time is a call to memcpy each.
/// Where there is room, 16 bytes are copied whatever the length (a copy of a constant size,
/// which the compiler inlines); what lands past the sequence's end is written over by the
/// next ones, as lz4's own decoder does.
fn unpack_block(block: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut at = 0usize;
    let mut done = 0usize;
    loop {
        let token = *block.get(at)?;
        at += 1;
        let literals = extended_len(block, &mut at, usize::from(token >> 4))?;
        let end = at.checked_add(literals)?;
        let to = done.checked_add(literals)?;
        if literals <= WILD && at + WILD <= block.len() && done + WILD <= out.len() {
            wild_copy(block.get(at..at + WILD)?, out.get_mut(done..done + WILD)?);
        } else {
            out.get_mut(done..to)?.copy_from_slice(block.get(at..end)?);
        }
        at = end;
        done = to;
        if at == block.len() {
            return Some(done);
        }
        let offset = usize::from(u16::from_le_bytes([*block.get(at)?, *block.get(at + 1)?]));
        at += 2;
        let len = extended_len(block, &mut at, usize::from(token & 0x0f))?.checked_add(4)?;
        let to = done.checked_add(len)?;
        if offset == 0 || offset > done || to > out.len() {
            return None;
        }
        let from = done - offset;
        if offset >= WILD && to + WILD <= out.len() {
            // Each 16 bytes come from at least 16 back: already written when copied.
            let mut copied = 0;
            while copied < len {
                let chunk =
                    *<&[u8; WILD]>::try_from(out.get(from + copied..)?.get(..WILD)?).ok()?;
                *<&mut [u8; WILD]>::try_from(out.get_mut(done + copied..)?.get_mut(..WILD)?)
                    .ok()? = chunk;
                copied += WILD;
            }
        } else {
            repeat(out, from, done, len);
        }
        done = to;
    }
}

/// The size of a copy made whatever the length it stands for (see [`unpack_block`]).
const WILD: usize = 16;

#[inline(always)]
fn wild_copy(from: &[u8], to: &mut [u8]) {
    if let (Ok(from), Ok(to)) = (
        <&[u8; WILD]>::try_from(from),
        <&mut [u8; WILD]>::try_from(to),
    ) {
        *to = *from;
    }
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

/// A 4-bit length, with its extra bytes when it is 15. Inlined: it runs twice a sequence,
/// and at the init's opt-level `z` a call each cost a fifth of the unpacking.
#[inline(always)]
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

    /// Words drawn from a small set, with bursts of noise: matches from a few to hundreds
    /// of bytes back, short and long, and literal runs of every length, so that every copy
    /// of [`unpack_block`] (made 16 bytes at a time or exactly) is taken, near the end of
    /// the output too.
    fn prose(len: usize) -> Vec<u8> {
        const WORDS: [&[u8]; 8] = [
            b"the ",
            b"module ",
            b"unpacks ",
            b"byte for byte into memory, ",
            b"a ",
            b"0123456789abcdefghijklmnopqrstuvwxyz ",
            b"zz",
            b"and ",
        ];
        let mut state = 0x9e37_79b9_u32;
        let mut out = Vec::with_capacity(len + 64);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            match state % 11 {
                0 => out.extend((0..state % 40).map(|i| (state >> (i % 24)) as u8)),
                n => out.extend_from_slice(WORDS[n as usize % WORDS.len()]),
            }
        }
        out.truncate(len);
        out
    }

    #[test]
    fn every_copy_unpacks_as_lz4_means() {
        for len in [4, 16, 17, 33, 100, 1000, 4097, 65_536, 300_001] {
            let data = prose(len);
            let (out, _) = decompress(&compress(&data).unwrap(), len).unwrap().unwrap();
            assert!(out == data, "{len} bytes");
        }
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
        assert_eq!(unpack_block(&block, &mut out), Some(12));
        assert_eq!(&out, b"abababababac");
        // Offset 1: a run of one byte.
        let block = [0x1f, b'z', 0x01, 0x00, 0x03, 0x00];
        let mut out = vec![0u8; block_unpacked_len(&block).unwrap()];
        assert_eq!(unpack_block(&block, &mut out), Some(23));
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
