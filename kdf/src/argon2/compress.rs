//! Argon2's 1 KiB block and its compression function G (RFC 9106, section 3.5).
//!
//! This is the loop the user waits for at the passphrase prompt, so it is written for
//! the optimiser: fixed-size arrays indexed only by constants (macro-expanded), so there
//! is no bounds check and every permutation works on 16 words it can keep in registers,
//! four at a time. This portable version is what CPUs without AVX2 run; `avx2.rs` has
//! the same function for those with it (most x86-64 CPUs since 2013–2015), about 1.5
//! times as fast.

/// 128 64-bit words: one block of Argon2's memory.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Block(pub(crate) [u64; 128]);

impl Block {
    pub(crate) const ZERO: Block = Block([0; 128]);

    /// The block read from 1024 little-endian bytes.
    pub(crate) fn from_le_bytes(bytes: &[u8; 1024]) -> Block {
        let mut block = Block::ZERO;
        for (word, chunk) in block.0.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(chunk);
            *word = u64::from_le_bytes(le);
        }
        block
    }

    /// The block as 1024 little-endian bytes.
    pub(crate) fn write_le_bytes(&self, bytes: &mut [u8; 1024]) {
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(self.0.iter()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
    }

    /// XORs `other` into this block.
    pub(crate) fn xor_with(&mut self, other: &Block) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a ^= b;
        }
    }

    /// Asks the CPU to start loading this block into its cache: a reference block is
    /// anywhere in memory, and waiting for it is much of Argon2's time.
    #[inline(always)]
    pub(crate) fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let start = (self as *const Block).cast::<i8>();
            for line in 0..16 {
                // SAFETY: a prefetch is only a hint: it never faults nor changes memory,
                // and the addresses are the block's own 16 cache lines.
                #[allow(unused_unsafe)]
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(line * 64))
                };
            }
        }
    }

    pub(crate) fn wipe(&mut self) {
        crate::wipe_words(&mut self.0);
    }
}

/// P applied to the 16 words of `q` at the given constant indices.
macro_rules! permute_at {
    ($q:ident; $($i:literal)*) => {{
        let mut v = [$($q[$i]),*];
        permute(&mut v);
        [$($q[$i]),*] = v;
    }};
}

/// G(x, y) written to `out`, or XORed into it when `xor` (passes after the first, as
/// version 0x13 requires), calling `first_word` with the output's word 0 as soon as it is known,
/// before the seven other column permutations: in data-dependent addressing that word
/// chooses the next reference block, which can then be fetched from memory while this
/// block is finished, instead of stalling the next one.
#[inline(always)]
pub(crate) fn compress_then(
    x: &Block,
    y: &Block,
    out: &mut Block,
    xor: bool,
    first_word: impl FnOnce(u64),
) {
    // R = X ^ Y is permuted in place; X and Y give it again at the end.
    let mut q = [0u64; 128];
    for ((q, x), y) in q.iter_mut().zip(x.0.iter()).zip(y.0.iter()) {
        *q = x ^ y;
    }
    permute_rows(&mut q);
    permute_at!(q; 0 1 16 17 32 33 48 49 64 65 80 81 96 97 112 113);
    first_word(q[0] ^ x.0[0] ^ y.0[0] ^ if xor { out.0[0] } else { 0 });
    permute_other_columns(&mut q);
    let r = x.0.iter().zip(y.0.iter()).map(|(x, y)| x ^ y);
    if xor {
        for ((o, q), r) in out.0.iter_mut().zip(q.iter()).zip(r) {
            *o ^= q ^ r;
        }
    } else {
        for ((o, q), r) in out.0.iter_mut().zip(q.iter()).zip(r) {
            *o = q ^ r;
        }
    }
}

/// Four words: each step of P works on four independent columns (or diagonals) at once,
/// written lane by lane so the optimiser can use vector registers (two SSE2 or one AVX2
/// register).
type Quad = [u64; 4];

/// BLAKE2b's G with the multiplications Argon2 adds (RFC 9106, section 3.6: GB), on four
/// quadruples (a, b, c, d) at once.
#[inline(always)]
fn gb(a: &mut Quad, b: &mut Quad, c: &mut Quad, d: &mut Quad) {
    *a = bla_mka(a, b);
    *d = xor_rotate(d, a, 32);
    *c = bla_mka(c, d);
    *b = xor_rotate(b, c, 24);
    *a = bla_mka(a, b);
    *d = xor_rotate(d, a, 16);
    *c = bla_mka(c, d);
    *b = xor_rotate(b, c, 63);
}

/// x + y + 2 * trunc(x) * trunc(y), modulo 2^64, lane by lane.
#[inline(always)]
fn bla_mka(x: &Quad, y: &Quad) -> Quad {
    let lane = |x: u64, y: u64| {
        let product = (x & 0xFFFF_FFFF) * (y & 0xFFFF_FFFF);
        x.wrapping_add(y).wrapping_add(product << 1)
    };
    [
        lane(x[0], y[0]),
        lane(x[1], y[1]),
        lane(x[2], y[2]),
        lane(x[3], y[3]),
    ]
}

/// (x ^ y) rotated right by `n`, lane by lane.
#[inline(always)]
fn xor_rotate(x: &Quad, y: &Quad, n: u32) -> Quad {
    [
        (x[0] ^ y[0]).rotate_right(n),
        (x[1] ^ y[1]).rotate_right(n),
        (x[2] ^ y[2]).rotate_right(n),
        (x[3] ^ y[3]).rotate_right(n),
    ]
}

/// The permutation P on 16 words v_0..v_15 (eight 16-byte registers S_i = v_{2i+1} ||
/// v_{2i}): GB on the columns (v0, v4, v8, v12)..(v3, v7, v11, v15), then on the
/// diagonals (v0, v5, v10, v15), (v1, v6, v11, v12), (v2, v7, v8, v13), (v3, v4, v9, v14).
///
/// Not inlined: the sixteen copies a block's compression would hold are some 16 KB of
/// the init's code, for a few percent of speed (the words pass through memory between the
/// calls; the AVX2 compression, which fast machines use, is not affected).
#[inline(never)]
fn permute(v: &mut [u64; 16]) {
    let mut a = [v[0], v[1], v[2], v[3]];
    let mut b = [v[4], v[5], v[6], v[7]];
    let mut c = [v[8], v[9], v[10], v[11]];
    let mut d = [v[12], v[13], v[14], v[15]];
    gb(&mut a, &mut b, &mut c, &mut d);
    // Rotate b, c, d left by 1, 2, 3 lanes so that lane i holds diagonal i.
    let mut b2 = [b[1], b[2], b[3], b[0]];
    let mut c2 = [c[2], c[3], c[0], c[1]];
    let mut d2 = [d[3], d[0], d[1], d[2]];
    gb(&mut a, &mut b2, &mut c2, &mut d2);
    *v = [
        a[0], a[1], a[2], a[3], b2[3], b2[0], b2[1], b2[2], c2[2], c2[3], c2[0], c2[1], d2[1],
        d2[2], d2[3], d2[0],
    ];
}

/// P on each row: row i is registers R_{8i}..R_{8i+7}, words 16i..16i+15.
#[inline(always)]
fn permute_rows(q: &mut [u64; 128]) {
    permute_at!(q; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    permute_at!(q; 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
    permute_at!(q; 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47);
    permute_at!(q; 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);
    permute_at!(q; 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79);
    permute_at!(q; 80 81 82 83 84 85 86 87 88 89 90 91 92 93 94 95);
    permute_at!(q; 96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 111);
    permute_at!(q; 112 113 114 115 116 117 118 119 120 121 122 123 124 125 126 127);
}

/// P on each column but the first: column i is registers R_i, R_{i+8}, ..., R_{i+56},
/// that is words 2i, 2i+1, 2i+16, 2i+17, ..., 2i+112, 2i+113.
#[inline(always)]
fn permute_other_columns(q: &mut [u64; 128]) {
    permute_at!(q; 2 3 18 19 34 35 50 51 66 67 82 83 98 99 114 115);
    permute_at!(q; 4 5 20 21 36 37 52 53 68 69 84 85 100 101 116 117);
    permute_at!(q; 6 7 22 23 38 39 54 55 70 71 86 87 102 103 118 119);
    permute_at!(q; 8 9 24 25 40 41 56 57 72 73 88 89 104 105 120 121);
    permute_at!(q; 10 11 26 27 42 43 58 59 74 75 90 91 106 107 122 123);
    permute_at!(q; 12 13 28 29 44 45 60 61 76 77 92 93 108 109 124 125);
    permute_at!(q; 14 15 30 31 46 47 62 63 78 79 94 95 110 111 126 127);
}
