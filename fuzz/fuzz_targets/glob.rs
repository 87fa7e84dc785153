//! Alias patterns against modaliases: the first line is the pattern, the rest the text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (pattern, subject) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = baton::modules::glob::matches(pattern, subject);
    let aliases: baton::manifest::AliasTable = [(pattern, "m")].into_iter().collect();
    let _ = baton::init::modules::aliases::Aliases::new(&aliases, None).matching(subject);
    // The head must be a prefix of every text the pattern matches.
    if baton::modules::glob::matches(pattern, subject) {
        assert!(subject.starts_with(baton::modules::glob::literal_head(pattern)));
    }
});
