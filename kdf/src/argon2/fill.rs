//! Filling Argon2's memory (RFC 9106, sections 3.2 steps 5–6 and 3.4): passes over the
//! lanes, each pass in four slices, the lanes of a slice computed in parallel.
//!
//! Within a slice a lane only writes its own segment, and only reads blocks of finished
//! slices or earlier blocks of its own segment; so each slice hands every lane's current
//! segment out mutably and all other segments shared, without `unsafe`, and the threads
//! meet again at the slice boundary (the end of `std::thread::scope`), as the RFC
//! requires. The result is the same for any number of threads.

use super::compress::{compress_then, Block};
use super::{Argon2Error, Argon2Kind};
use std::sync::{Mutex, PoisonError};

/// Slices per pass (RFC 9106's SL).
pub(crate) const SLICES: u32 = 4;

/// Address words per address block: the data-independent indexing computes one address
/// block per 128 reference blocks.
const ADDRESSES_PER_BLOCK: usize = 128;

/// The shape of the memory, all checked to fit before it is built.
#[derive(Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) kind: Argon2Kind,
    pub(crate) passes: u32,
    pub(crate) lanes: u32,
    /// m': the number of blocks, a multiple of 4 * lanes.
    pub(crate) blocks: u32,
    /// q = m' / lanes.
    pub(crate) lane_len: u32,
    /// q / 4.
    pub(crate) segment_len: u32,
    /// Whether to compress with AVX2: only ever true where the CPU has it.
    pub(crate) avx2: bool,
}

/// Which slice of which pass is being computed.
#[derive(Clone, Copy)]
struct Position {
    pass: u32,
    slice: u32,
}

/// The segments outside the slice being computed, shared with every lane during it (in
/// the first pass, those of later slices are still zero and never referred to).
struct View<'a> {
    geometry: &'a Geometry,
    /// Indexed by lane * 4 + slice; `None` for the slice being computed.
    segments: &'a [Option<&'a [Block]>],
}

impl View<'_> {
    fn segment(&self, lane: u32, slice: u32) -> Option<&[Block]> {
        let index = lane as usize * SLICES as usize + slice as usize;
        self.segments.get(index).copied().flatten()
    }

    /// Block `index` of `lane`, if it is in a finished segment.
    fn block(&self, lane: u32, index: u32) -> Option<&Block> {
        let (slice, offset) = split_index(self.geometry, index);
        self.segment(lane, slice)?.get(offset as usize)
    }
}

/// A lane-relative block index as (slice, offset within the segment), by comparisons: a
/// division here would cost more than the rest of the reference computation.
#[inline(always)]
fn split_index(geometry: &Geometry, index: u32) -> (u32, u32) {
    let len = geometry.segment_len;
    let slice = u32::from(index >= len) + u32::from(index >= 2 * len) + u32::from(index >= 3 * len);
    (slice, index - slice * len)
}

/// Runs every pass over `blocks` (whose first two blocks of each lane are set), with up
/// to `threads` threads.
pub(crate) fn fill_memory(
    blocks: &mut [Block],
    geometry: &Geometry,
    threads: u32,
) -> Result<(), Argon2Error> {
    for pass in 0..geometry.passes {
        for slice in 0..SLICES {
            fill_slice(blocks, geometry, Position { pass, slice }, threads)?;
        }
    }
    Ok(())
}

/// One slice of every lane; returns once all lanes have finished it.
fn fill_slice(
    blocks: &mut [Block],
    geometry: &Geometry,
    position: Position,
    threads: u32,
) -> Result<(), Argon2Error> {
    let lanes = geometry.lanes as usize;
    let mut current: Vec<(u32, &mut [Block])> = Vec::new();
    let mut finished: Vec<Option<&[Block]>> = Vec::new();
    let kib = geometry.blocks;
    current
        .try_reserve_exact(lanes)
        .map_err(|_| Argon2Error::Memory { kib })?;
    finished
        .try_reserve_exact(lanes * SLICES as usize)
        .map_err(|_| Argon2Error::Memory { kib })?;
    let chunks = blocks.chunks_exact_mut(geometry.segment_len as usize);
    for (segment, index) in chunks.zip(0u32..) {
        if index % SLICES == position.slice {
            current.push((index / SLICES, segment));
            finished.push(None);
        } else {
            finished.push(Some(segment));
        }
    }
    let view = View {
        geometry,
        segments: &finished,
    };

    let workers = threads.clamp(1, geometry.lanes);
    if workers == 1 {
        let result = current
            .into_iter()
            .try_for_each(|(lane, segment)| fill_segment(&view, position, lane, segment));
        crate::scrub_stack();
        return result;
    }
    // The lanes go to whichever thread asks next. Should a thread fail to start, the
    // others (at least this one) take its lanes: the result does not depend on who
    // computes a lane.
    let queue = Mutex::new(current);
    let work = || -> Result<(), Argon2Error> {
        loop {
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let Some((lane, segment)) = next else {
                return Ok(());
            };
            let result = fill_segment(&view, position, lane, segment);
            // The compression's working block is on this thread's stack.
            crate::scrub_stack();
            result?;
        }
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, work).ok())
            .collect();
        let mine = work();
        helpers
            .into_iter()
            .map(|helper| helper.join().unwrap_or(Err(Argon2Error::Internal)))
            .fold(mine, Result::and)
    })
}

/// Computes `segment`, the current slice of `lane`, with AVX2 where the CPU has it.
///
/// Never inlined, so that its frames are below its caller's, where the caller's scrub
/// of the stack reaches: the last compression's working block is there, and the block
/// it computed can be recovered from it.
#[inline(never)]
fn fill_segment(
    view: &View<'_>,
    position: Position,
    lane: u32,
    segment: &mut [Block],
) -> Result<(), Argon2Error> {
    #[cfg(target_arch = "x86_64")]
    if view.geometry.avx2 {
        // SAFETY: `avx2` is only set where the CPU has AVX2.
        return unsafe { fill_segment_avx2(view, position, lane, segment) };
    }
    // Only x86-64 has a vectorised compression (the flag is never set elsewhere).
    #[cfg(not(target_arch = "x86_64"))]
    let _ = view.geometry.avx2;
    fill_segment_body::<false>(view, position, lane, segment)
}

/// [`fill_segment_body`] with the AVX2 compression, and the whole loop compiled for AVX2.
///
/// # Safety
///
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_segment_avx2(
    view: &View<'_>,
    position: Position,
    lane: u32,
    segment: &mut [Block],
) -> Result<(), Argon2Error> {
    fill_segment_body::<true>(view, position, lane, segment)
}

/// G(x, y) into `out` (see [`compress_then`]), with AVX2 if `AVX2`.
#[inline(always)]
fn g<const AVX2: bool>(
    x: &Block,
    y: &Block,
    out: &mut Block,
    xor: bool,
    first_word: impl FnOnce(u64),
) {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: `AVX2` is true only under `fill_segment_avx2`, which runs only where
        // the CPU has AVX2.
        unsafe { super::avx2::compress_then(x, y, out, xor, first_word) };
        return;
    }
    // The portable compression is one function, not inlined at each of the four calls:
    // unrolled, it is some 20 KB of code, which a size-conscious init cannot carry four
    // times; a call per 1 KiB block costs nothing measurable. Word 0 is given after the
    // whole block rather than early (the prefetch it starts matters less here).
    compress(x, y, out, xor);
    first_word(out.0[0]);
}

#[inline(never)]
fn compress(x: &Block, y: &Block, out: &mut Block, xor: bool) {
    compress_then(x, y, out, xor, |_| ());
}

/// Computes `segment`; inlined into each of [`fill_segment`]'s variants.
#[inline(always)]
fn fill_segment_body<const AVX2: bool>(
    view: &View<'_>,
    position: Position,
    lane: u32,
    segment: &mut [Block],
) -> Result<(), Argon2Error> {
    let geometry = view.geometry;
    let independent = match geometry.kind {
        Argon2Kind::Argon2d => false,
        Argon2Kind::Argon2i => true,
        Argon2Kind::Argon2id => position.pass == 0 && position.slice < SLICES / 2,
    };
    // The first two blocks of each lane come from H0.
    let first = if position.pass == 0 && position.slice == 0 {
        2
    } else {
        0
    };
    // For block 0 of a segment, the previous block ends the lane's previous segment.
    let before_segment = view
        .segment(lane, (position.slice + SLICES - 1) % SLICES)
        .and_then(<[Block]>::last);

    let xor = position.pass > 0;
    let mut addresses = Addresses::new(geometry, position, lane);
    // In data-dependent addressing, the next block's reference as computed early (for
    // the prefetch) by the previous iteration.
    let mut known: Option<(u32, u32)> = None;
    for index in first..geometry.segment_len {
        let (done, rest) = segment
            .split_at_mut_checked(index as usize)
            .ok_or(Argon2Error::Internal)?;
        let current = rest.first_mut().ok_or(Argon2Error::Internal)?;
        let previous = done
            .last()
            .or(before_segment)
            .ok_or(Argon2Error::Internal)?;
        let next = index + 1;
        let more = next < geometry.segment_len;
        // Block `ref_index` of lane `ref_lane`: in this segment, one of those done.
        let lookup = |(ref_lane, ref_index): (u32, u32)| {
            let (ref_slice, ref_offset) = split_index(geometry, ref_index);
            if ref_lane == lane && ref_slice == position.slice {
                done.get(ref_offset as usize)
            } else {
                view.block(ref_lane, ref_index)
            }
        };
        if independent {
            if index as usize % ADDRESSES_PER_BLOCK == 0 || index == first {
                addresses.next::<AVX2>();
            }
            let reference = reference_for(geometry, position, lane, index, addresses.word(index)?);
            let reference = lookup(reference).ok_or(Argon2Error::Internal)?;
            // The next reference is known already: have it loaded while this block is
            // computed (unless it is the first of a new address block).
            if more && next as usize % ADDRESSES_PER_BLOCK != 0 {
                let upcoming = reference_for(geometry, position, lane, next, addresses.word(next)?);
                if let Some(block) = lookup(upcoming) {
                    block.prefetch();
                }
            }
            g::<AVX2>(previous, reference, current, xor, |_| ());
        } else {
            let reference = known
                .take()
                .unwrap_or_else(|| reference_for(geometry, position, lane, index, previous.0[0]));
            let reference = lookup(reference).ok_or(Argon2Error::Internal)?;
            // The next reference depends on this block's first word: load it as soon as
            // that word is known. (It is never this block, which is the next one's
            // previous block, so `done` covers this segment's candidates.)
            g::<AVX2>(previous, reference, current, xor, |word| {
                if more {
                    let upcoming = reference_for(geometry, position, lane, next, word);
                    if let Some(block) = lookup(upcoming) {
                        block.prefetch();
                    }
                    known = Some(upcoming);
                }
            });
        }
    }
    Ok(())
}

/// The reference block for block `index` of the current segment of `lane`, as (lane,
/// index within that lane), from the 64-bit pseudo-random value (RFC 9106, section 3.4.2).
#[inline(always)]
fn reference_for(
    geometry: &Geometry,
    position: Position,
    lane: u32,
    index: u32,
    pseudo_random: u64,
) -> (u32, u32) {
    let j1 = pseudo_random & 0xFFFF_FFFF;
    let j2 = pseudo_random >> 32;
    // The first slice of the first pass has nothing else to refer to but its own lane.
    let ref_lane = if position.pass == 0 && position.slice == 0 {
        lane
    } else {
        (j2 % u64::from(geometry.lanes)) as u32
    };
    let segment_len = u64::from(geometry.segment_len);
    let lane_len = u64::from(geometry.lane_len);
    let index = u64::from(index);
    // Blocks of finished segments: the earlier slices of this pass in the first pass,
    // the other three slices afterwards.
    let finished = if position.pass == 0 {
        u64::from(position.slice) * segment_len
    } else {
        lane_len - segment_len
    };
    // The own lane adds this segment's blocks but the previous one. In another lane, the
    // last finished block is left out while this segment's first block is computed. Never
    // below 1: lanes have at least 8 blocks, and the first slice of the first pass starts
    // at index 2.
    let area = if ref_lane == lane {
        finished + index - 1
    } else if index == 0 {
        finished - 1
    } else {
        finished
    };
    // Map J1 non-uniformly onto the area, favouring recent blocks; y < area.
    let x = (j1 * j1) >> 32;
    let y = (area * x) >> 32;
    let relative = area - 1 - y;
    // The area starts after the current slice (in passes after the first; at 0 if that
    // is the end of the lane) and wraps around the lane.
    let start = if position.pass == 0 || position.slice == SLICES - 1 {
        0
    } else {
        u64::from(position.slice + 1) * segment_len
    };
    let absolute = start + relative;
    let absolute = if absolute >= lane_len {
        absolute - lane_len
    } else {
        absolute
    };
    (ref_lane, absolute as u32)
}

/// The address blocks of data-independent addressing (Argon2i, and the first half of
/// Argon2id's first pass): G(0, G(0, Z)) with Z the position and a counter.
///
/// They derive from public parameters only, so they need no wiping.
struct Addresses {
    input: Block,
    addresses: Block,
}

impl Addresses {
    fn new(geometry: &Geometry, position: Position, lane: u32) -> Addresses {
        let mut input = Block::ZERO;
        input.0[0] = u64::from(position.pass);
        input.0[1] = u64::from(lane);
        input.0[2] = u64::from(position.slice);
        input.0[3] = u64::from(geometry.blocks);
        input.0[4] = u64::from(geometry.passes);
        input.0[5] = u64::from(geometry.kind.code());
        Addresses {
            input,
            addresses: Block::ZERO,
        }
    }

    /// The next 128 addresses (the counter starts at 1).
    #[inline(always)]
    fn next<const AVX2: bool>(&mut self) {
        self.input.0[6] = self.input.0[6].wrapping_add(1);
        let mut once = Block::ZERO;
        g::<AVX2>(&Block::ZERO, &self.input, &mut once, false, |_| ());
        g::<AVX2>(&Block::ZERO, &once, &mut self.addresses, false, |_| ());
    }

    /// The address for block `index` of the segment.
    fn word(&self, index: u32) -> Result<u64, Argon2Error> {
        let slot = index as usize % ADDRESSES_PER_BLOCK;
        self.addresses
            .0
            .get(slot)
            .copied()
            .ok_or(Argon2Error::Internal)
    }
}
