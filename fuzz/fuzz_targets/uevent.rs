//! Kernel uevent datagrams.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = baton::init::uevent::parse(data);
});
