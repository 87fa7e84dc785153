//! `baton inspect` on arbitrary files: cpio archives, compressed or not, concatenated.
#![no_main]
use baton::host::image::inspect::{read_image_with, Limits};
use libfuzzer_sys::fuzz_target;

/// Far below `baton inspect`'s defaults, so that every input stays well inside libFuzzer's
/// memory limit (-rss_limit_mb) and its per-input timeout, under AddressSanitizer, while
/// still reaching every reader: the limits themselves are what is being checked.
const LIMITS: Limits = Limits {
    max_unpacked: 32 << 20,
    max_decoder_memory: 32 << 20,
};

fuzz_target!(|data: &[u8]| {
    let _ = read_image_with(data, &LIMITS);
    let _ = baton::host::image::skeleton::parse(&String::from_utf8_lossy(data));
});
