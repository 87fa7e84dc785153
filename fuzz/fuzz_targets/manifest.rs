//! The files of its own the init reads from the image at boot: the manifest (what parses
//! must render back the same) and the console keymap (every action it yields is one its
//! flags announced).
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
    if let Ok(keymap) = baton::keymap::parse(data) {
        assert_eq!(keymap.entries().count(), keymap.keymaps() * 128);
    }
});
