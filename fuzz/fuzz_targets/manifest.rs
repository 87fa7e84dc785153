//! The image manifest the init reads at boot; what parses must render back the same.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The rescue shell is looked for even in a manifest that does not parse.
    let _ = baton::manifest::shell_of(&text);
    if let Ok(manifest) = baton::manifest::Manifest::parse(&text) {
        let again = baton::manifest::Manifest::parse(&manifest.render()).expect("rendered manifest parses");
        assert_eq!(again, manifest);
    }
});
