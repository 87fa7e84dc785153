//! root= values, and matching them against no devices.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(spec) = baton::rootspec::parse_root(&text) {
        let _ = spec.to_string();
        let _ = baton::rootspec::find(&spec, &[]);
    }
});
