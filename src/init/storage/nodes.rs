//! The names the real system expects for the devices the stack makes, and what its udev
//! needs to adopt them: `/dev/mapper/NAME` and `/dev/VG/LV` for an LV, `/dev/md/NAME` for
//! an array (links to the kernel's node, as udev makes them), and for a device-mapper device
//! the udev database entry dm's rules read on the real root's coldplug: without
//! `DM_UDEV_PRIMARY_SOURCE_FLAG` they take an `add` event for a device nobody activated
//! properly, and mark it not ready for systemd, which then waits for it until it gives up.
//! And lvm2's own record of the VGs that are online, so that it does not activate them again.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// Makes `/dev/LINK` point at the kernel's node `/dev/TARGET` (`mapper/vg0-root` ->
/// `dm-0`), replacing a stale link; the parent directories are made as needed.
pub fn link(link: &str, target: &str) -> Result<(), String> {
    let path = std::path::Path::new("/dev").join(link);
    let depth = link.matches('/').count();
    let relative = format!("{}{target}", "../".repeat(depth));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let _ = std::fs::remove_file(&path);
    std::os::unix::fs::symlink(&relative, &path).map_err(|e| format!("{}: {e}", path.display()))
}

/// What udev's database says of a device-mapper device baton activated.
pub struct DmEntry<'a> {
    pub dev: (u32, u32),
    pub name: &'a str,
    pub uuid: &'a str,
    /// For an LV: its VG and LV names.
    pub lv: Option<(&'a str, &'a str)>,
}

/// The entry's text, as udev writes `/run/udev/data/bMAJ:MIN`.
pub fn dm_entry_text(entry: &DmEntry<'_>) -> String {
    let mut lines = vec![
        format!("S:mapper/{}", entry.name),
        "E:DM_UDEV_PRIMARY_SOURCE_FLAG=1".to_owned(),
        "E:DM_UDEV_RULES_VSN=2".to_owned(),
        "E:DM_UDEV_DISABLE_LIBRARY_FALLBACK_FLAG=1".to_owned(),
        format!("E:DM_NAME={}", entry.name),
        format!("E:DM_UUID={}", entry.uuid),
        "E:DM_SUSPENDED=0".to_owned(),
    ];
    if let Some((vg, lv)) = entry.lv {
        lines.insert(1, format!("S:{vg}/{lv}"));
        lines.push(format!("E:DM_VG_NAME={vg}"));
        lines.push(format!("E:DM_LV_NAME={lv}"));
    }
    lines.push(String::new());
    lines.join("\n")
}

/// Writes the entry under /run, which the real root inherits.
pub fn write_dm_entry(entry: &DmEntry<'_>) -> Result<(), String> {
    let dir = std::path::Path::new("/run/udev/data");
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("b{}:{}", entry.dev.0, entry.dev.1));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&path)
        .and_then(|mut f| f.write_all(dm_entry_text(entry).as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Tells lvm2 in the real root that VG `name` is active: with its `vgs_online` file there,
/// udev's `pvscan --cache --vgonline` skips the VG's autoactivation instead of starting
/// `vgchange -aay` for LVs that are active already. Written only once every LV of the VG is
/// active (a VG partly activated here is left for lvm2 to finish).
pub fn mark_vg_online(name: &str) {
    let dir = std::path::Path::new("/run/lvm/vgs_online");
    let made = std::fs::create_dir_all(dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(dir.join(name))
            .map(drop)
    });
    if let Err(e) = made {
        log::warn!("cannot mark VG {name} online for lvm2: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lvs_udev_entry() {
        let text = dm_entry_text(&DmEntry {
            dev: (254, 0),
            name: "vg0-root",
            uuid: "LVM-abc",
            lv: Some(("vg0", "root")),
        });
        assert!(text.starts_with("S:mapper/vg0-root\nS:vg0/root\n"));
        assert!(text.contains("\nE:DM_UDEV_PRIMARY_SOURCE_FLAG=1\n"));
        assert!(text.contains("\nE:DM_UDEV_RULES_VSN=2\n"));
        assert!(text.ends_with("E:DM_LV_NAME=root\n"));
    }
}
