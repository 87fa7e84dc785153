//! Argon2 (RFC 9106), version 0x13, as LUKS2 keyslots use it (`"type": "argon2i"` or
//! `"argon2id"`), with the lanes computed in parallel.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod compress;
mod fill;
mod h_prime;
mod memory;

use compress::Block;
use core::fmt;
use fill::{Geometry, SLICES};
use h_prime::{h0, h_prime, H0Input, H0_LEN};
use memory::Memory;

/// The only version implemented: 0x13, the one of RFC 9106 and of every LUKS2 header.
const VERSION: u32 = 0x13;
/// RFC 9106's bound on the degree of parallelism: 2^24 − 1 lanes.
const MAX_LANES: u32 = 0x00FF_FFFF;
/// RFC 9106's least tag length.
const MIN_OUTPUT_LEN: usize = 4;
/// libargon2's least salt length (RFC 9106 only recommends 16 bytes); LUKS2 writes 32.
const MIN_SALT_LEN: usize = 8;

/// Argon2's variants, which differ in how reference blocks are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Argon2Kind {
    /// Data-dependent addressing (no LUKS2 keyslot uses it, but it costs nothing here).
    Argon2d,
    /// Data-independent addressing.
    Argon2i,
    /// Data-independent for the first half of the first pass, then data-dependent.
    Argon2id,
}

impl Argon2Kind {
    /// The variant a LUKS2 keyslot's `kdf.type` names ("argon2i", "argon2id"; also
    /// "argon2d"), in any case.
    pub fn from_name(name: &str) -> Option<Argon2Kind> {
        [
            ("argon2d", Argon2Kind::Argon2d),
            ("argon2i", Argon2Kind::Argon2i),
            ("argon2id", Argon2Kind::Argon2id),
        ]
        .into_iter()
        .find(|(known, _)| name.eq_ignore_ascii_case(known))
        .map(|(_, kind)| kind)
    }

    /// RFC 9106's y: the variant's number in H0 and the address blocks.
    fn code(self) -> u32 {
        match self {
            Argon2Kind::Argon2d => 0,
            Argon2Kind::Argon2i => 1,
            Argon2Kind::Argon2id => 2,
        }
    }
}

/// Argon2's cost parameters, as a LUKS2 keyslot's `kdf` object gives them, plus how many
/// threads may compute lanes at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    pub kind: Argon2Kind,
    /// t: passes over the memory (`"time"`), at least 1.
    pub time_cost: u32,
    /// m: KiB of memory (`"memory"`), at least 8 per lane; rounded down to a multiple of
    /// 4 KiB per lane.
    pub memory_kib: u32,
    /// p: lanes (`"cpus"`), 1 to 2^24 − 1.
    pub lanes: u32,
    /// Threads computing lanes at once: the caller passes min(lanes, online CPUs). It does
    /// not change the result; 0 counts as 1, and more than `lanes` as `lanes`.
    pub threads: u32,
}

/// Why [`argon2`] failed: a parameter outside RFC 9106's bounds, or too little memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Argon2Error {
    /// Lanes were 0 or more than 2^24 − 1.
    Lanes { lanes: u32 },
    /// Less memory than 8 KiB per lane.
    MemoryCost { kib: u32, lanes: u32 },
    /// No passes.
    TimeCost,
    /// An output shorter than 4 bytes or longer than 2^32 − 1.
    OutputLength { len: usize },
    /// A salt shorter than 8 bytes (libargon2's bound) or longer than 2^32 − 1.
    SaltLength { len: usize },
    /// A password, secret or associated data longer than 2^32 − 1 bytes.
    InputTooLong,
    /// The memory (`kib` KiB asked for) could not be allocated.
    Memory { kib: u32 },
    /// A bug: an index this crate computed was out of range.
    Internal,
}

impl fmt::Display for Argon2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Argon2Error::Lanes { lanes } => write!(f, "argon2: {lanes} lanes (1 to 2^24-1)"),
            Argon2Error::MemoryCost { kib, lanes } => {
                write!(
                    f,
                    "argon2: {kib} KiB of memory for {lanes} lanes (8 KiB each at least)"
                )
            }
            Argon2Error::TimeCost => write!(f, "argon2: no passes (time cost 0)"),
            Argon2Error::OutputLength { len } => {
                write!(f, "argon2: {len}-byte output (4 to 2^32-1)")
            }
            Argon2Error::SaltLength { len } => write!(f, "argon2: {len}-byte salt (8 to 2^32-1)"),
            Argon2Error::InputTooLong => write!(f, "argon2: an input over 2^32-1 bytes"),
            Argon2Error::Memory { kib } => write!(f, "argon2: cannot allocate {kib} KiB"),
            Argon2Error::Internal => write!(f, "argon2: internal error"),
        }
    }
}

impl std::error::Error for Argon2Error {}

/// Argon2 of `password` and `salt` with `params`, filling `out` (4 to 2^32 − 1 bytes).
///
/// On error `out` is zeroed. The memory is allocated fallibly and wiped before it is
/// freed; the lanes run on up to `params.threads` threads.
pub fn argon2(
    params: &Argon2Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), Argon2Error> {
    argon2_keyed(params, password, salt, &[], &[], out)
}

/// [`argon2`] with RFC 9106's optional secret key K and associated data X (which LUKS
/// does not use; RFC 9106's test vectors do).
pub(crate) fn argon2_keyed(
    params: &Argon2Params,
    password: &[u8],
    salt: &[u8],
    secret: &[u8],
    associated: &[u8],
    out: &mut [u8],
) -> Result<(), Argon2Error> {
    let inputs = Inputs {
        password,
        salt,
        secret,
        associated,
    };
    let result = derive(params, &inputs, out, simd_available());
    // The BLAKE2b states of H0 and H' cannot be wiped in place: wipe where they were.
    crate::scrub_stack();
    if result.is_err() {
        crate::wipe(out);
    }
    result
}

/// Argon2's byte-string inputs.
struct Inputs<'a> {
    password: &'a [u8],
    salt: &'a [u8],
    secret: &'a [u8],
    associated: &'a [u8],
}

/// Whether this CPU can run the vectorised compression.
fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Argon2, with the vectorised compression if `simd` (which the caller has checked the
/// CPU supports). Never inlined, so that its frame is below [`argon2_keyed`]'s, where
/// the scrub reaches.
#[inline(never)]
fn derive(
    params: &Argon2Params,
    inputs: &Inputs<'_>,
    out: &mut [u8],
    simd: bool,
) -> Result<(), Argon2Error> {
    let Inputs {
        password,
        salt,
        secret,
        associated,
    } = *inputs;
    let mut geometry = check(params, inputs, out)?;
    geometry.avx2 = simd;
    let input = H0Input {
        lanes: params.lanes,
        tag_len: u32::try_from(out.len())
            .map_err(|_| Argon2Error::OutputLength { len: out.len() })?,
        memory_kib: params.memory_kib,
        time_cost: params.time_cost,
        version: VERSION,
        kind: params.kind.code(),
        password,
        salt,
        secret,
        associated,
    };
    let mut memory = Memory::allocate(geometry.blocks as usize, params.memory_kib)?;
    let mut scratch = Scratch {
        h0: [0; H0_LEN],
        bytes: [0; 1024],
        block: Block::ZERO,
    };
    let result = (|| {
        h0(&input, &mut scratch.h0)?;
        first_blocks(&mut memory, &geometry, &mut scratch)?;
        fill::fill_memory(memory.blocks_mut(), &geometry, params.threads)?;
        finish(&memory, &geometry, &mut scratch, out)
    })();
    scratch.wipe();
    result
}

/// The stack buffers that hold derived material on their way in and out of the memory.
struct Scratch {
    h0: [u8; H0_LEN],
    bytes: [u8; 1024],
    block: Block,
}

impl Scratch {
    fn wipe(&mut self) {
        crate::wipe(&mut self.h0);
        crate::wipe(&mut self.bytes);
        self.block.wipe();
    }
}

/// Checks every parameter against RFC 9106's bounds and computes the memory's shape.
fn check(params: &Argon2Params, inputs: &Inputs<'_>, out: &[u8]) -> Result<Geometry, Argon2Error> {
    let lanes = params.lanes;
    if lanes == 0 || lanes > MAX_LANES {
        return Err(Argon2Error::Lanes { lanes });
    }
    if u64::from(params.memory_kib) < 8 * u64::from(lanes) {
        return Err(Argon2Error::MemoryCost {
            kib: params.memory_kib,
            lanes,
        });
    }
    if params.time_cost == 0 {
        return Err(Argon2Error::TimeCost);
    }
    if out.len() < MIN_OUTPUT_LEN || u32::try_from(out.len()).is_err() {
        return Err(Argon2Error::OutputLength { len: out.len() });
    }
    let salt = inputs.salt.len();
    if salt < MIN_SALT_LEN || u32::try_from(salt).is_err() {
        return Err(Argon2Error::SaltLength { len: salt });
    }
    let others = [inputs.password, inputs.secret, inputs.associated];
    if others
        .iter()
        .any(|input| u32::try_from(input.len()).is_err())
    {
        return Err(Argon2Error::InputTooLong);
    }
    // m' = 4p * floor(m / 4p): at least 8p blocks, at most m.
    let lane_len = params.memory_kib / (SLICES * lanes) * SLICES;
    Ok(Geometry {
        kind: params.kind,
        passes: params.time_cost,
        lanes,
        blocks: lane_len * lanes,
        lane_len,
        segment_len: lane_len / SLICES,
        avx2: false,
    })
}

/// `B[i][0] = H'^1024(H0 || LE32(0) || LE32(i))` and `B[i][1]` likewise with 1, per lane.
fn first_blocks(
    memory: &mut Memory,
    geometry: &Geometry,
    scratch: &mut Scratch,
) -> Result<(), Argon2Error> {
    let lanes = memory
        .blocks_mut()
        .chunks_exact_mut(geometry.lane_len as usize);
    for (lane, index) in lanes.zip(0u32..) {
        for (block, column) in lane.iter_mut().take(2).zip(0u32..) {
            h_prime(
                &[&scratch.h0, &column.to_le_bytes(), &index.to_le_bytes()],
                &mut scratch.bytes,
            )?;
            *block = Block::from_le_bytes(&scratch.bytes);
        }
    }
    Ok(())
}

/// The tag: H'^T of the XOR of every lane's last block.
fn finish(
    memory: &Memory,
    geometry: &Geometry,
    scratch: &mut Scratch,
    out: &mut [u8],
) -> Result<(), Argon2Error> {
    scratch.block = Block::ZERO;
    for lane in memory.blocks().chunks_exact(geometry.lane_len as usize) {
        scratch
            .block
            .xor_with(lane.last().ok_or(Argon2Error::Internal)?);
    }
    scratch.block.write_le_bytes(&mut scratch.bytes);
    h_prime(&[&scratch.bytes], out)
}

#[cfg(test)]
mod tests;
