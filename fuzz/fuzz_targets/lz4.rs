//! The lz4 legacy reader the init unpacks modules with (and the host images): arbitrary
//! streams and blocks, the round trip of arbitrary data through lz4_flex's compressor, and
//! every block both decoders accept unpacked by both to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = baton::lz4_legacy::block_unpacked_len(data);
    let _ = baton::lz4_legacy::decompress(data, 64 << 20);
    let mut stream = baton::lz4_legacy::MAGIC.to_vec();
    stream.extend_from_slice(data);
    let _ = baton::lz4_legacy::decompress(&stream, 64 << 20);

    // `data` as one block: what ours makes of it, lz4_flex makes of it too.
    if let (Some(len), Ok(block_len)) = (
        baton::lz4_legacy::block_unpacked_len(data),
        u32::try_from(data.len()),
    ) {
        if len <= 1 << 20 && block_len > 0 {
            let mut one = baton::lz4_legacy::MAGIC.to_vec();
            one.extend_from_slice(&block_len.to_le_bytes());
            one.extend_from_slice(data);
            let ours = baton::lz4_legacy::decompress(&one, 1 << 20);
            let theirs = lz4_flex::block::decompress(data, len);
            if let (Ok(Some((ours, _))), Ok(theirs)) = (&ours, &theirs) {
                assert_eq!(ours, theirs);
            }
        }
    }

    let packed = baton::host::image::compress::lz4_legacy_stream(data).unwrap();
    let (back, used) = baton::lz4_legacy::decompress(&packed, data.len())
        .unwrap()
        .unwrap();
    assert_eq!(back, data);
    assert_eq!(used, packed.len());
});
