//! `modules=host`: what this machine's root needs, read from the running system. The root's
//! filesystem and device come from /proc/self/mountinfo; the drivers from sysfs, walking up
//! from the block device through its parents (the disk, its controller, the bus bridge) and
//! noting the module behind each bound driver, and down through `slaves/` for a root on
//! device-mapper or md. The names are of the running kernel; the caller keeps those the
//! target kernel has as modules.

use std::path::{Path, PathBuf};

/// The filesystem mounted on `/`, as mountinfo shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootMount {
    pub major: u32,
    pub minor: u32,
    pub fstype: String,
}

/// The topmost mount on `/` (the last one listed) in a mountinfo text (proc(5): `ID PARENT MAJ:MIN ROOT MOUNTPOINT
/// OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`).
pub fn root_mount(mountinfo: &str) -> Option<RootMount> {
    mountinfo.lines().rev().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let mut fields = before.split(' ');
        let devnum = fields.nth(2)?;
        let mount_point = fields.nth(1)?;
        if mount_point != "/" {
            return None;
        }
        let (major, minor) = devnum.split_once(':')?;
        Some(RootMount {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
            fstype: after.split(' ').next()?.to_owned(),
        })
    })
}

/// Levels walked up from a device at most, and stacked devices followed down: real sysfs
/// trees are a dozen levels deep and a stack a few devices tall.
const MAX_DEPTH: usize = 32;

/// The modules behind the drivers of block device MAJ:MIN, found in the sysfs at `sys`:
/// each of its ancestors' bound driver, and the same for every device it is stacked on.
pub fn driver_modules(sys: &Path, major: u32, minor: u32) -> Vec<String> {
    let mut modules = Vec::new();
    let mut pending = vec![sys.join(format!("dev/block/{major}:{minor}"))];
    let mut seen = 0;
    while let Some(link) = pending.pop() {
        seen += 1;
        if seen > MAX_DEPTH {
            break;
        }
        let Ok(device) = std::fs::canonicalize(&link) else {
            continue;
        };
        // A stacked device has no driver link: the stack's own modules say what it is.
        for module in stack_modules(&device) {
            if !modules.contains(&module) {
                modules.push(module);
            }
        }
        // A device stacked on others (dm-crypt, LVM, md): their drivers too.
        if let Ok(slaves) = std::fs::read_dir(device.join("slaves")) {
            pending.extend(slaves.filter_map(|s| s.ok()).map(|s| s.path()));
        }
        add_ancestors_drivers(sys, device, &mut modules);
    }
    modules
}

/// Adds to `modules` the module behind the bound driver of `device` and of each of its
/// parents (the disk, its controller, the bus bridge), as far as sysfs goes.
fn add_ancestors_drivers(sys: &Path, device: PathBuf, modules: &mut Vec<String>) {
    let mut dir: Option<PathBuf> = Some(device);
    for _ in 0..MAX_DEPTH {
        let Some(here) = dir else { break };
        if !here.starts_with(sys) {
            break;
        }
        if let Some(module) = module_of(&here.join("driver")) {
            if !modules.contains(&module) {
                modules.push(module);
            }
        }
        dir = here.parent().map(Path::to_path_buf);
    }
}

/// What unlocking a LUKS volume takes of the kernel, when these are modules.
pub const CRYPT_MODULES: &[&str] = &["dm_crypt", "algif_skcipher", "xts", "essiv"];

/// The modules a device-mapper device (`dm/`) or an MD array (`md/level`) needs.
fn stack_modules(device: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if device.join("dm").is_dir() {
        out.push("dm_mod".to_owned());
        // A dm-crypt device (cryptsetup's DM UUID): the init unlocks it with dm-crypt and
        // decrypts keyslots through AF_ALG; the modes LUKS formats with. Which cipher a
        // volume uses is in its header, which only root can read: these cover AES in XTS
        // (every cryptsetup default since 1.6) and CBC-ESSIV (older LUKS1).
        let uuid = crate::bounded::read_bounded(&device.join("dm/uuid").display().to_string(), 256)
            .unwrap_or_default();
        if uuid.starts_with(b"CRYPT-") {
            out.extend(CRYPT_MODULES.iter().map(|m| (*m).to_owned()));
        }
    }
    if let Ok(level) =
        crate::bounded::read_bounded(&device.join("md/level").display().to_string(), 64)
    {
        out.push("md_mod".to_owned());
        let level = String::from_utf8_lossy(&level);
        out.extend(personality_module(level.trim()).map(str::to_owned));
    }
    out
}

/// The module of an MD personality, by sysfs's `md/level`.
pub fn personality_module(level: &str) -> Option<&'static str> {
    match level {
        "raid0" => Some("raid0"),
        "raid1" => Some("raid1"),
        "raid10" => Some("raid10"),
        "raid4" | "raid5" | "raid6" => Some("raid456"),
        "linear" => Some("linear"),
        _ => None,
    }
}

/// The module a bound driver belongs to: the `module` link in its driver directory, or, for
/// a driver built into the running kernel, the driver's own name, which is its module's
/// name in kernels that build it as one (the image may be for another kernel).
fn module_of(driver: &Path) -> Option<String> {
    let name = match std::fs::read_link(driver.join("module")) {
        Ok(module) => module.file_name()?.to_str()?.to_owned(),
        Err(_) => std::fs::read_link(driver)
            .ok()?
            .file_name()?
            .to_str()?
            .to_owned(),
    };
    Some(crate::modules::modinfo::normalize(&name))
}

/// What the running system's root needs: its filesystem and the drivers of its device.
/// Fails, saying why, when it cannot tell (an overlay or a network root, a chroot): the
/// caller falls back to the generic set.
pub fn detect(root: &Path) -> Result<Vec<String>, String> {
    let (fstype, drivers) = root_device(root)?;
    let mut modules = vec![fstype];
    modules.extend(drivers);
    // A root behind a passphrase: the keyboards it is typed on.
    if modules.iter().any(|m| m == "dm_crypt") {
        for module in keyboard_modules(Path::new("/sys")) {
            if !modules.contains(&module) {
                modules.push(module);
            }
        }
    }
    Ok(modules)
}

/// The drivers on the running system's root's path: its disk's, its controller's, its
/// stack's (for the generic image's hint). Fails as [`detect`] does.
pub fn root_drivers(root: &Path) -> Result<Vec<String>, String> {
    root_device(root).map(|(_, drivers)| drivers)
}

/// The running system's root filesystem type and the drivers under it.
fn root_device(root: &Path) -> Result<(String, Vec<String>), String> {
    if root != Path::new("/") {
        return Err(format!(
            "cannot see the devices of the system in {}: host detection works on the running system only",
            root.display()
        ));
    }
    if in_chroot() {
        return Err(
            "running in a chroot: the mounted root is not the system being built for".into(),
        );
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let mount = root_mount(&mountinfo).ok_or("no root in /proc/self/mountinfo")?;
    if mount.major == 0 {
        return Err(format!(
            "the root is {} on no block device (a container, an overlay or a network root?)",
            mount.fstype
        ));
    }
    let drivers = driver_modules(Path::new("/sys"), mount.major, mount.minor);
    Ok((mount.fstype, drivers))
}

/// The keyboards a passphrase can be typed on, whichever is plugged in at boot: PS/2 and
/// USB HID behind any of the USB host controllers.
pub const KEYBOARD_MODULES: &[&str] = &[
    "i8042",
    "atkbd",
    "usbhid",
    "hid_generic",
    "xhci_pci",
    "ehci_pci",
    "ohci_pci",
    "uhci_hcd",
];

/// Input devices looked at, at most.
const MAX_INPUTS: usize = 256;

/// [`KEYBOARD_MODULES`], and the drivers behind each keyboard the sysfs at `sys` shows (a
/// vendor's HID driver, a controller of another kind), walked up as a disk's are.
pub fn keyboard_modules(sys: &Path) -> Vec<String> {
    let mut modules: Vec<String> = KEYBOARD_MODULES.iter().map(|m| (*m).to_owned()).collect();
    let Ok(inputs) = std::fs::read_dir(sys.join("class/input")) else {
        return modules;
    };
    for input in inputs.filter_map(|e| e.ok()).take(MAX_INPUTS) {
        if !is_keyboard(&input.path()) {
            continue;
        }
        if let Ok(device) = std::fs::canonicalize(input.path()) {
            add_ancestors_drivers(sys, device, &mut modules);
        }
    }
    modules
}

/// An input device that reports keys and repeats them: a keyboard, as the kernel's own
/// keyboard handler sees one (a mouse has buttons but no autorepeat).
fn is_keyboard(input: &Path) -> bool {
    const EV_KEY: u64 = 1 << 1;
    const EV_REP: u64 = 1 << 20;
    crate::bounded::read_bounded(&input.join("capabilities/ev").display().to_string(), 64)
        .ok()
        .and_then(|bytes| {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            u64::from_str_radix(text.split_whitespace().last()?, 16).ok()
        })
        .is_some_and(|ev| ev & EV_KEY != 0 && ev & EV_REP != 0)
}

/// The LVs the running system's root and swap devices are, as `rd.lvm.lv=VG/LV` words for
/// a host-only image (dracut's host-only images name them so): the init then activates
/// those and no others. Devices that are not LVs are passed over.
pub fn lvm_words(sys: &Path) -> Vec<String> {
    let mut devices = Vec::new();
    if let Some(root) = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|m| root_mount(&m))
    {
        devices.push(format!("{}:{}", root.major, root.minor));
    }
    // /proc/swaps: a header, then one device a line.
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    for path in swaps
        .lines()
        .skip(1)
        .take(MAX_DEPTH)
        .filter_map(|l| l.split_whitespace().next())
    {
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            let rdev = meta.rdev();
            devices.push(format!("{}:{}", libc::major(rdev), libc::minor(rdev)));
        }
    }
    lvm_words_of(sys, &devices)
}

/// [`lvm_words`] for devices `MAJ:MIN`, read from the sysfs at `sys`.
fn lvm_words_of(sys: &Path, devices: &[String]) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for dev in devices {
        let dir = sys.join("dev/block").join(dev);
        let read = |f: &str| {
            crate::bounded::read_bounded(&dir.join(f).display().to_string(), 256)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        };
        // lvm2's own LVs only: `LVM-` and the two UUIDs, no layer suffix.
        let lv = read("dm/uuid")
            .filter(|u| u.len() == 4 + 64 && u.starts_with("LVM-"))
            .and_then(|_| read("dm/name"))
            .and_then(|name| crate::storage_names::split_dm_name(&name));
        if let Some((vg, lv)) = lv {
            let word = format!("rd.lvm.lv={vg}/{lv}");
            if !words.contains(&word) {
                words.push(word);
            }
        }
    }
    words
}

/// Whether this process runs in a chroot: its `/` is not PID 1's (as systemd's
/// `running_in_chroot` tells). Unknown (no /proc, not allowed to look) counts as no.
fn in_chroot() -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata("/"), std::fs::metadata("/proc/1/root")) {
        (Ok(ours), Ok(init)) => (ours.dev(), ours.ino()) != (init.dev(), init.ino()),
        _ => false,
    }
}

/// The filesystem type of the root of the system at `root`: the mounted one for this
/// running system, else what its fstab says (`None` for `auto` or no entry). A hint for
/// the init, which loads that filesystem's driver before the disk is found.
pub fn root_fstype(root: &Path) -> Option<String> {
    let mounted = (root == Path::new("/") && !in_chroot())
        .then(|| std::fs::read_to_string("/proc/self/mountinfo").ok())
        .flatten()
        .and_then(|mountinfo| root_mount(&mountinfo))
        .filter(|mount| mount.major != 0)
        .map(|mount| mount.fstype);
    let fstype = mounted.or_else(|| {
        let fstab = std::fs::read_to_string(root.join("etc/fstab")).ok()?;
        crate::host::check::stack::fstab_root(&fstab).map(|(_, fstype)| fstype)
    })?;
    (fstype != "auto" && is_fs_type(&fstype)).then_some(fstype)
}

/// Whether `name` reads as one filesystem type, as /proc/filesystems names them (not a
/// list, not a path): what the manifest's hint may hold.
pub fn is_fs_type(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A warning on stderr: the host tool has no logger.
pub fn warn(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "baton: warning: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn the_topmost_root_mount() {
        let text = "\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
23 22 0:21 / /proc rw - proc proc rw
40 22 254:0 / / rw master:3 - xfs /dev/vda rw
";
        assert_eq!(
            root_mount(text),
            Some(RootMount {
                major: 254,
                minor: 0,
                fstype: "xfs".into()
            })
        );
        assert_eq!(root_mount("garbage\n1 2 3\n"), None);
    }

    /// A sysfs with a virtio disk (partition vda1) behind virtio_pci, and dm-0 on it.
    fn sysfs(base: &Path) {
        let pci = base.join("devices/pci0000:00/0000:00:04.0");
        let vda = pci.join("virtio1/block/vda");
        std::fs::create_dir_all(vda.join("vda1")).unwrap();
        let dm = base.join("devices/virtual/block/dm-0");
        std::fs::create_dir_all(dm.join("slaves")).unwrap();
        std::fs::create_dir_all(dm.join("dm")).unwrap();
        let uuid = format!("LVM-{}{}", "v".repeat(32), "l".repeat(32));
        std::fs::write(dm.join("dm/uuid"), uuid).unwrap();
        std::fs::write(dm.join("dm/name"), "my--vg-root\n").unwrap();
        symlink(
            "../../../../pci0000:00/0000:00:04.0/virtio1/block/vda/vda1",
            dm.join("slaves/vda1"),
        )
        .unwrap();
        for (driver, module) in [
            ("pci/drivers/virtio-pci", "virtio_pci"),
            ("virtio/drivers/virtio_blk", "virtio_blk"),
        ] {
            let dir = base.join("bus").join(driver);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::create_dir_all(base.join("module").join(module)).unwrap();
            symlink(base.join("module").join(module), dir.join("module")).unwrap();
        }
        symlink(base.join("bus/pci/drivers/virtio-pci"), pci.join("driver")).unwrap();
        symlink(
            base.join("bus/virtio/drivers/virtio_blk"),
            pci.join("virtio1/driver"),
        )
        .unwrap();
        std::fs::create_dir_all(base.join("dev/block")).unwrap();
        symlink(vda.join("vda1"), base.join("dev/block/254:1")).unwrap();
        symlink(&dm, base.join("dev/block/253:0")).unwrap();
    }

    #[test]
    fn drivers_from_the_partition_up_and_through_stacked_devices() {
        let base = std::env::temp_dir().join(format!("baton-host-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        sysfs(&base);
        assert_eq!(driver_modules(&base, 254, 1), ["virtio_blk", "virtio_pci"]);
        assert_eq!(
            driver_modules(&base, 253, 0),
            ["dm_mod", "virtio_blk", "virtio_pci"]
        );
        assert!(driver_modules(&base, 8, 0).is_empty());
        // The LV the root is, for rd.lvm.lv=; a partition is none.
        let devices = ["253:0".to_owned(), "254:1".to_owned()];
        assert_eq!(lvm_words_of(&base, &devices), ["rd.lvm.lv=my-vg/root"]);
        // A driver built into the running kernel: its name stands for its module.
        std::fs::remove_file(base.join("bus/pci/drivers/virtio-pci/module")).unwrap();
        assert_eq!(driver_modules(&base, 254, 1), ["virtio_blk", "virtio_pci"]);
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// A PS/2 keyboard (atkbd, built in) and mouse behind i8042, and a USB keyboard with a
    /// vendor HID driver behind xhci.
    #[test]
    fn keyboards_and_their_drivers() {
        let base = std::env::temp_dir().join(format!("baton-kbd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let serio = base.join("devices/platform/i8042/serio0");
        let mouse = base.join("devices/platform/i8042/serio1");
        let usb = base.join("devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0");
        let hid = usb.join("0003:046D:C31C.0001");
        for (device, ev) in [
            (serio.join("input/input0"), "120013\n"),
            (mouse.join("input/input1"), "7\n"),
            (hid.join("input/input2"), "1f\n"),
            (hid.join("input/input3"), "12001f\n"),
        ] {
            std::fs::create_dir_all(device.join("capabilities")).unwrap();
            std::fs::write(device.join("capabilities/ev"), ev).unwrap();
            std::fs::create_dir_all(base.join("class/input")).unwrap();
            symlink(
                &device,
                base.join("class/input").join(device.file_name().unwrap()),
            )
            .unwrap();
        }
        for (device, driver) in [
            (&serio, "serio/drivers/atkbd"),
            (&mouse, "serio/drivers/psmouse"),
            (&hid, "hid/drivers/logitech-hidpp-device"),
            (
                &usb.parent()
                    .unwrap()
                    .parent()
                    .unwrap()
                    .parent()
                    .unwrap()
                    .to_path_buf(),
                "pci/drivers/xhci_hcd",
            ),
        ] {
            std::fs::create_dir_all(base.join("bus").join(driver)).unwrap();
            symlink(base.join("bus").join(driver), device.join("driver")).unwrap();
        }
        let found = keyboard_modules(&base);
        assert_eq!(&found[..KEYBOARD_MODULES.len()], KEYBOARD_MODULES);
        assert_eq!(
            &found[KEYBOARD_MODULES.len()..],
            ["logitech_hidpp_device", "xhci_hcd"],
            "{found:?}"
        );
        assert!(keyboard_modules(&base.join("none")).len() == KEYBOARD_MODULES.len());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_trees_root_filesystem_from_its_fstab() {
        let base = std::env::temp_dir().join(format!("baton-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("etc")).unwrap();
        assert_eq!(root_fstype(&base), None, "no fstab");
        let fstab = "# <file system> <mount point> <type>\nUUID=b4 / xfs defaults 0 1\n";
        std::fs::write(base.join("etc/fstab"), fstab).unwrap();
        assert_eq!(root_fstype(&base).as_deref(), Some("xfs"));
        std::fs::write(base.join("etc/fstab"), "/dev/vda / auto defaults 0 1\n").unwrap();
        assert_eq!(root_fstype(&base), None, "auto names no driver");
        std::fs::write(base.join("etc/fstab"), "/dev/vda / ext4,xfs defaults 0 1\n").unwrap();
        assert_eq!(root_fstype(&base), None, "a list is no one type");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn another_root_is_not_detected() {
        let err = detect(Path::new("/mnt")).unwrap_err();
        assert!(err.contains("running system only"), "{err}");
    }
}
