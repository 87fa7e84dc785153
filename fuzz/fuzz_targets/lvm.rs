//! A PV's label and metadata areas on arbitrary device contents, and the metadata text (the
//! same bytes read as text) parsed into a volume group.
#![no_main]
use baton::init::storage::lvm::{label, vg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let device = data.to_vec();
    if let Some(pv) = label::read_label(&device) {
        for area in pv.metadata_areas {
            if let Ok(text) = label::read_metadata(&device, area) {
                let _ = vg::parse(&text);
            }
        }
    }
    let _ = vg::parse(&String::from_utf8_lossy(data));
});
