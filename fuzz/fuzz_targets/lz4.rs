//! The lz4 legacy reader the init unpacks modules with (and the host images): arbitrary
//! streams and blocks, and the round trip of arbitrary data through lz4_flex's compressor.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = baton::lz4_legacy::block_unpacked_len(data);
    let _ = baton::lz4_legacy::decompress(data, 64 << 20);
    let mut stream = baton::lz4_legacy::MAGIC.to_vec();
    stream.extend_from_slice(data);
    let _ = baton::lz4_legacy::decompress(&stream, 64 << 20);
    let packed = baton::host::image::compress::lz4_legacy_stream(data).unwrap();
    let (back, used) = baton::lz4_legacy::decompress(&packed, data.len())
        .unwrap()
        .unwrap();
    assert_eq!(back, data);
    assert_eq!(used, packed.len());
});
