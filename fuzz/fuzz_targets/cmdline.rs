//! The kernel command line: any bytes the bootloader passes must parse without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As the init reads it: bytes, decoded without refusing any.
    let (text, _) = baton::cmdline::decode(data);
    let params = baton::cmdline::parse(&text);
    let _ = params.breaks_at(baton::cmdline::BreakPoint::PreSwitch);
    let _ = params.wait.limit_secs();
    let _ = params.module_params("ext4");
    let middle = text.char_indices().map(|(i, _)| i).nth(text.chars().count() / 2).unwrap_or(text.len());
    let (defaults, line) = text.split_at(middle);
    let _ = baton::cmdline::parse_with_defaults(&baton::cmdline::strip_comments(defaults), line);
});
