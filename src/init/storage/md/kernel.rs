//! Starting an array through the md driver's sysfs files, as `mdadm --assemble` does for
//! native metadata: a new array device (`new_array`), its metadata version, each member by
//! device number (`new_dev`: the kernel reads and checks the member's superblock against the
//! first's), then `array_state` to run it. The kernel picks the current members by their
//! event counts and starts degraded what its level can run without.

use std::path::Path;

/// Whether `/dev/mdN` exists already (as a block device the kernel knows).
pub fn taken(number: u32) -> bool {
    Path::new(&format!("/sys/block/md{number}")).exists()
}

/// Starts array `number` of metadata `version` (`1.2`, `0.90`) from `members`; returns the
/// members the kernel refused, with why.
pub fn start(
    number: u32,
    version: &str,
    members: &[(String, (u32, u32))],
) -> Result<Vec<String>, String> {
    let md = format!("md{number}");
    write("/sys/module/md_mod/parameters/new_array", &md)
        .map_err(|e| format!("cannot make /dev/{md}: {e}"))?;
    let dir = format!("/sys/block/{md}/md");
    let attr = |name: &str| format!("{dir}/{name}");
    write(&attr("metadata_version"), version)
        .map_err(|e| format!("/dev/{md}: metadata {version}: {e}"))?;
    let mut refused = Vec::new();
    for (name, (major, minor)) in members {
        if let Err(e) = write(&attr("new_dev"), &format!("{major}:{minor}")) {
            refused.push(format!("{name}: {e}"));
        }
    }
    if let Err(e) = write(&attr("array_state"), "active") {
        // Leave nothing half-made: the members go back to being plain devices.
        let _ = write(&attr("array_state"), "clear");
        return Err(format!("/dev/{md} did not start: {e}"));
    }
    Ok(refused)
}

fn write(path: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}
