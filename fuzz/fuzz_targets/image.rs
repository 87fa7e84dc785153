//! `baton inspect` on arbitrary files: cpio archives, compressed or not, concatenated.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = baton::image::inspect::read_image(data);
    let _ = baton::image::skeleton::parse(&String::from_utf8_lossy(data));
});
