//! MD members on arbitrary device contents: the input cut into up to four devices, each
//! superblock found and read as a member, the arrays they form judged (complete, degraded,
//! cannot run) and described; and the same bytes as an mdadm.conf, each ARRAY line named.
#![no_main]
use baton::init::storage::md::{assembly, member, naming};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts = 1 + usize::from(data.first().copied().unwrap_or(0) % 4);
    let size = data.len().saturating_sub(1) / parts;
    let mut seen = Vec::new();
    for (n, device) in data.get(1..).unwrap_or(&[]).chunks(size.max(1)).take(parts).enumerate() {
        let device = device.to_vec();
        if let Some(member) = baton::probe::md::find(&device).and_then(|sb| member::read(&sb)) {
            seen.push(assembly::SeenMember {
                name: format!("vd{n}"),
                dev: (254, n as u32 * 16),
                member,
            });
        }
    }
    for array in assembly::arrays(&seen) {
        let _ = array.readiness();
        let _ = array.describe();
    }
    let conf = baton::storage_names::parse_conf(&String::from_utf8_lossy(data));
    for entry in &conf {
        let uuid = entry.uuid.clone().unwrap_or_default();
        let _ = naming::wanted(&uuid, entry.name.as_deref(), &[], &conf);
        let _ = naming::choose(None, entry.name.as_deref(), Some(entry), &|n| n % 3 == 0);
    }
});
