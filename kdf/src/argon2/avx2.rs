//! The compression function G with AVX2, for x86-64 CPUs that have it (checked at run
//! time). The portable version in `compress.rs` is the specification this one follows,
//! and the tests compare the two.
//!
//! Each 256-bit register holds one 16-byte register S_k of two permutations at once (in
//! its low and high 128-bit lanes), so every step stays within 128-bit lanes: AVX2's
//! lane-crossing shuffles are slow on some CPUs (eight micro-ops on AMD's first Zen).
//! Two columns' S_k are adjacent in memory (one aligned load); two rows' S_k are loaded
//! as two halves.

use super::compress::Block;
use core::arch::x86_64::{
    __m128i, __m256i, _mm256_add_epi64, _mm256_alignr_epi8, _mm256_load_si256, _mm256_loadu2_m128i,
    _mm256_mul_epu32, _mm256_setr_epi8, _mm256_shuffle_epi32, _mm256_shuffle_epi8,
    _mm256_srli_epi64, _mm256_store_si256, _mm256_storeu2_m128i, _mm256_xor_si256,
};

/// A block as 32 vectors of four words.
type Vectors = [__m256i; 32];

/// The eight registers S_0..S_7 of two permutations: (A0, A1, B0, B1, C0, C1, D0, D1)
/// where A0 = (v0, v1), A1 = (v2, v3), B0 = (v4, v5), ..., D1 = (v14, v15).
type Registers = [__m256i; 8];

/// G(x, y) into `out` (XORed into it when `xor`), calling `first_word` with the output's
/// word 0 once known, as [`super::compress::compress_then`] does.
///
/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn compress_then(
    x: &Block,
    y: &Block,
    out: &mut Block,
    xor: bool,
    first_word: impl FnOnce(u64),
) {
    let x_words = x.0.as_ptr().cast::<__m256i>();
    let y_words = y.0.as_ptr().cast::<__m256i>();
    // R = X ^ Y is permuted in place; it is not kept, as X and Y (still in the L1 cache)
    // give it again at the end for less than storing it would cost.
    let mut q: Vectors =
        [_mm256_xor_si256(_mm256_load_si256(x_words), _mm256_load_si256(y_words)); 32];
    for (k, q) in q.iter_mut().enumerate().skip(1) {
        // SAFETY: a Block is 1024 bytes aligned to 64: vector k < 32 is in it, aligned.
        *q = _mm256_xor_si256(
            _mm256_load_si256(x_words.add(k)),
            _mm256_load_si256(y_words.add(k)),
        );
    }
    let words = q.as_mut_ptr().cast::<u64>();
    for pair in 0..4 {
        permute_rows(words, pair);
    }
    permute_columns(words, 0);
    let word = *words ^ x.0[0] ^ y.0[0];
    first_word(word ^ if xor { out.0[0] } else { 0 });
    for pair in 1..4 {
        permute_columns(words, pair);
    }
    let out = out.0.as_mut_ptr().cast::<__m256i>();
    for (k, q) in q.iter().enumerate() {
        // SAFETY: as above, vector k < 32 of aligned 1024-byte blocks.
        let target = out.add(k);
        let r = _mm256_xor_si256(
            _mm256_load_si256(x_words.add(k)),
            _mm256_load_si256(y_words.add(k)),
        );
        let mut value = _mm256_xor_si256(*q, r);
        if xor {
            value = _mm256_xor_si256(value, _mm256_load_si256(target));
        }
        _mm256_store_si256(target, value);
    }
}

/// P on rows 2pair and 2pair+1 (pair < 4) of the 128 `words`: row i's S_k is words
/// 16i + 2k and 16i + 2k + 1.
///
/// # Safety
///
/// AVX2; `words` points to 128 words aligned to 32 bytes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn permute_rows(words: *mut u64, pair: usize) {
    // SAFETY (for every `add` below): 32 * pair + 16 + 2k + 2 <= 128 for pair < 4, k < 8.
    let low = words.add(32 * pair);
    let high = words.add(32 * pair + 16);
    let mut s: Registers = [_mm256_loadu2_m128i(high.cast(), low.cast()); 8];
    for (k, s) in s.iter_mut().enumerate().skip(1) {
        *s = _mm256_loadu2_m128i(high.add(2 * k).cast::<__m128i>(), low.add(2 * k).cast());
    }
    permute(&mut s);
    for (k, s) in s.iter().enumerate() {
        _mm256_storeu2_m128i(high.add(2 * k).cast::<__m128i>(), low.add(2 * k).cast(), *s);
    }
}

/// P on columns 2pair and 2pair+1 (pair < 4) of the 128 `words`: column i's S_k is
/// register R_{i+8k}, words 2i + 16k and 2i + 16k + 1, so the two columns' S_k are the
/// four words from 4pair + 16k.
///
/// # Safety
///
/// AVX2; `words` points to 128 words aligned to 32 bytes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn permute_columns(words: *mut u64, pair: usize) {
    // SAFETY (for every `add` below): 4 * pair + 16k + 4 <= 128 for pair < 4, k < 8,
    // and 4 * pair + 16k words is a multiple of 32 bytes.
    let base = words.add(4 * pair).cast::<__m256i>();
    let mut s: Registers = [_mm256_load_si256(base); 8];
    for (k, s) in s.iter_mut().enumerate().skip(1) {
        *s = _mm256_load_si256(base.add(4 * k));
    }
    permute(&mut s);
    for (k, s) in s.iter().enumerate() {
        _mm256_store_si256(base.add(4 * k), *s);
    }
}

/// P on two sets of registers: GB on the columns (A0, B0, C0, D0) and (A1, B1, C1, D1),
/// then on the diagonals, which need B and D shifted by one word across their pair and
/// C0, C1 swapped: (A0, (v5, v6), C1, (v15, v12)) and (A1, (v7, v4), C0, (v13, v14)).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn permute(s: &mut Registers) {
    let [a0, a1, b0, b1, c0, c1, d0, d1] = s;
    gb(a0, b0, c0, d0);
    gb(a1, b1, c1, d1);
    // alignr(x, y, 8) is (y's high word, x's low word) in each 128-bit lane.
    let mut e0 = _mm256_alignr_epi8(*b1, *b0, 8);
    let mut e1 = _mm256_alignr_epi8(*b0, *b1, 8);
    let mut f0 = _mm256_alignr_epi8(*d0, *d1, 8);
    let mut f1 = _mm256_alignr_epi8(*d1, *d0, 8);
    gb(a0, &mut e0, c1, &mut f0);
    gb(a1, &mut e1, c0, &mut f1);
    *b0 = _mm256_alignr_epi8(e0, e1, 8);
    *b1 = _mm256_alignr_epi8(e1, e0, 8);
    *d0 = _mm256_alignr_epi8(f1, f0, 8);
    *d1 = _mm256_alignr_epi8(f0, f1, 8);
}

/// GB on four quadruples at once (two per 128-bit lane).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn gb(a: &mut __m256i, b: &mut __m256i, c: &mut __m256i, d: &mut __m256i) {
    // Byte shuffles rotating each 64-bit word right by 24 and by 16 bits.
    let rotate_24 = _mm256_setr_epi8(
        3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13,
        14, 15, 8, 9, 10,
    );
    let rotate_16 = _mm256_setr_epi8(
        2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12,
        13, 14, 15, 8, 9,
    );
    *a = bla_mka(*a, *b);
    // Rotating by 32 swaps each word's 32-bit halves.
    *d = _mm256_shuffle_epi32(_mm256_xor_si256(*d, *a), 0b10_11_00_01);
    *c = bla_mka(*c, *d);
    *b = _mm256_shuffle_epi8(_mm256_xor_si256(*b, *c), rotate_24);
    *a = bla_mka(*a, *b);
    *d = _mm256_shuffle_epi8(_mm256_xor_si256(*d, *a), rotate_16);
    *c = bla_mka(*c, *d);
    // Rotating right by 63 is rotating left by 1: (t + t) ^ (t >> 63).
    let t = _mm256_xor_si256(*b, *c);
    *b = _mm256_xor_si256(_mm256_add_epi64(t, t), _mm256_srli_epi64(t, 63));
}

/// x + y + 2 * trunc(x) * trunc(y) in each word.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn bla_mka(x: __m256i, y: __m256i) -> __m256i {
    let product = _mm256_mul_epu32(x, y);
    _mm256_add_epi64(_mm256_add_epi64(x, y), _mm256_add_epi64(product, product))
}
