//! Finding the root as a distribution does, on real kernels under qemu: every root= form on GPT
//! and MBR disks with the filesystem not given, ext4/xfs/btrfs/vfat roots, disks on
//! virtio-blk, virtio-scsi, NVMe and SATA from one generic `--storage` image on Debian's 6.1
//! and 6.12 kernels, a disk hot-plugged after boot, and a root that never appears.

mod common;

use common::{assert_has, disk, loaded_modules, marker, storage_image, Boot, Kernel};
use std::time::Duration;

/// The default disk of qemu/make-disk: GPT, ext4 root in partition 2.
const EXT4_UUID: &str = "3f8a2c1e-5b7d-4e9f-8a6c-2d4e6f8a0b1c";
const ROOT_PARTUUID: &str = "5a1e0c2d-7b3f-4e6a-9d8c-1f2e3d4c5b6a";
const FIRST_PARTUUID: &str = "11111111-2222-4333-8444-555555555555";

fn gpt_disk() -> std::path::PathBuf {
    disk(
        "gpt-ext4",
        &["--table", "gpt", "--fs", "ext4", "--label", "root disk"],
    )
}

fn mbr_disk() -> std::path::PathBuf {
    disk(
        "mbr-ext4",
        &["--table", "mbr", "--fs", "ext4", "--disk-id", "0x1badcafe"],
    )
}

/// Boots the generic image on 6.1 with one disk and checks the real init ran from `device`.
fn boots_root(name: &str, disk: std::path::PathBuf, root: &str, device: &str) -> String {
    let Some(k) = common::kernel() else {
        return String::new();
    };
    let append = format!("root={root} rd.emergency=poweroff");
    let log = Boot::new(&k, storage_image(&k), disk, &append).run(name);
    let line = marker(&log);
    assert!(line.contains(&format!("root=[{device} ")), "{root}: {line}");
    log
}

#[test]
fn gpt_uuid() {
    boots_root(
        "gpt-uuid",
        gpt_disk(),
        &format!("UUID={}", EXT4_UUID.to_uppercase()),
        "/dev/vda2",
    );
}

#[test]
fn gpt_label_with_a_space() {
    boots_root("gpt-label", gpt_disk(), "\"LABEL=root disk\"", "/dev/vda2");
}

#[test]
fn gpt_partuuid() {
    boots_root(
        "gpt-partuuid",
        gpt_disk(),
        &format!("PARTUUID={ROOT_PARTUUID}"),
        "/dev/vda2",
    );
}

#[test]
fn gpt_partuuid_partnroff() {
    boots_root(
        "gpt-partnroff",
        gpt_disk(),
        &format!("PARTUUID={FIRST_PARTUUID}/PARTNROFF=1"),
        "/dev/vda2",
    );
}

#[test]
fn gpt_partlabel() {
    boots_root("gpt-partlabel", gpt_disk(), "PARTLABEL=root", "/dev/vda2");
}

#[test]
fn by_uuid_and_by_label_links() {
    boots_root(
        "by-uuid",
        gpt_disk(),
        &format!("/dev/disk/by-uuid/{EXT4_UUID}"),
        "/dev/vda2",
    );
    boots_root(
        "by-label",
        gpt_disk(),
        "/dev/disk/by-label/root\\x20disk",
        "/dev/vda2",
    );
    boots_root(
        "by-partuuid",
        gpt_disk(),
        &format!("/dev/disk/by-partuuid/{ROOT_PARTUUID}"),
        "/dev/vda2",
    );
    boots_root(
        "by-partlabel",
        gpt_disk(),
        "/dev/disk/by-partlabel/root",
        "/dev/vda2",
    );
}

#[test]
fn kernel_name_and_device_number() {
    let log = boots_root("devname", gpt_disk(), "/dev/vda2", "/dev/vda2");
    if log.is_empty() {
        return;
    }
    // Learn the number the kernel gave vda2, then boot by it.
    let number = log
        .lines()
        .find_map(|l| l.split(" is vda2 (").nth(1))
        .and_then(|rest| rest.split(')').next())
        .expect("the log names vda2's number")
        .to_owned();
    boots_root("devnum", gpt_disk(), &number, "/dev/vda2");
}

#[test]
fn mbr_partuuid_and_partnroff() {
    boots_root(
        "mbr-partuuid",
        mbr_disk(),
        "PARTUUID=1BADCAFE-02",
        "/dev/vda2",
    );
    boots_root(
        "mbr-partnroff",
        mbr_disk(),
        "PARTUUID=1badcafe-01/PARTNROFF=1",
        "/dev/vda2",
    );
}

#[test]
fn mbr_uuid_and_label() {
    boots_root(
        "mbr-uuid",
        mbr_disk(),
        &format!("UUID={EXT4_UUID}"),
        "/dev/vda2",
    );
    boots_root("mbr-label", mbr_disk(), "LABEL=batonroot", "/dev/vda2");
}

fn boots_filesystem(fs: &str, uuid: &str) {
    let disk = disk(
        &format!("gpt-{fs}"),
        &["--table", "gpt", "--fs", fs, "--label", "BATONROOT"],
    );
    let log = boots_root(
        &format!("fs-{fs}"),
        disk,
        &format!("UUID={uuid}"),
        "/dev/vda2",
    );
    if log.is_empty() {
        return;
    }
    assert!(
        marker(&log).contains(&format!("/dev/vda2 {fs} ro")),
        "{}",
        marker(&log)
    );
    assert!(
        loaded_modules(&log).iter().any(|m| m == fs),
        "{fs} not loaded: {log}"
    );
}

#[test]
fn xfs_root() {
    boots_filesystem("xfs", "7c2e4a6b-8d0f-4b1a-9c3e-5f7a9b1c3d5e");
}

#[test]
fn btrfs_root() {
    boots_filesystem("btrfs", "9e4c6a8b-0d2f-4a3c-8e5a-7b9c1d3e5f7a");
}

#[test]
fn vfat_root() {
    boots_filesystem("vfat", "2A4C-6E8F");
}

/// The image's guess at the root's filesystem (`--root-fs`, as `baton update` writes it) is
/// loaded early only where a CPU is free for it, and is only a guess: an xfs root boots
/// from an image that expected ext4.
#[test]
fn root_fs_hint_loads_early_on_a_spare_cpu_and_is_only_a_hint() {
    let Some(k) = common::kernel() else {
        return;
    };
    let image = common::image(&k, "storage-ext4-hint", &["--storage", "--root-fs", "ext4"]);
    let xfs = disk(
        "gpt-xfs",
        &["--table", "gpt", "--fs", "xfs", "--label", "BATONROOT"],
    );
    let mut b = Boot::new(
        &k,
        image.clone(),
        xfs,
        "root=UUID=7c2e4a6b-8d0f-4b1a-9c3e-5f7a9b1c3d5e rd.emergency=poweroff",
    );
    b.qemu = vec!["-smp".into(), "2".into()];
    let log = b.run("root-fs-hint-smp2");
    assert_has(
        &log,
        "loading ext4 beside the disk drivers (the image's hint)",
    );
    assert!(
        marker(&log).contains("/dev/vda2 xfs ro"),
        "{}",
        marker(&log)
    );
    let log = Boot::new(
        &k,
        image,
        gpt_disk(),
        "root=/dev/vda2 rd.emergency=poweroff",
    )
    .run("root-fs-hint-smp1");
    assert!(
        marker(&log).contains("/dev/vda2 ext4 ro"),
        "{}",
        marker(&log)
    );
    assert!(!log.contains("beside the disk drivers"), "one CPU: {log}");
}

/// The drivers on the root's path when the image was built (`--root-driver`, as `baton
/// update` writes them from the running system) load first, and on that hardware the root
/// is found without coldplug; on other hardware (the disk moved to NVMe) they find nothing
/// and coldplug finds the root as it does without the hint.
#[test]
fn root_driver_hint_skips_coldplug_where_it_holds_and_is_only_a_hint() {
    let Some(k) = common::kernel() else {
        return;
    };
    let image = common::image(
        &k,
        "storage-virtio-hint",
        &[
            "--storage",
            "--root-fs",
            "ext4",
            "--root-driver",
            "virtio_blk,virtio_pci",
        ],
    );
    let root = format!("root=PARTUUID={ROOT_PARTUUID} rd.emergency=poweroff");
    let log = Boot::new(&k, image.clone(), gpt_disk(), &root).run("root-driver-hint-virtio");
    assert!(
        marker(&log).contains("/dev/vda2 ext4 ro"),
        "{}",
        marker(&log)
    );
    assert_has(&log, "(on the root's path, as the image was built)");
    assert!(!log.contains("baton: coldplug:"), "the hint held: {log}");
    let mut b = Boot::new(&k, image, gpt_disk(), &root);
    b.bus = "nvme";
    let log = b.run("root-driver-hint-nvme");
    assert!(
        marker(&log).contains("/dev/nvme0n1p2 ext4 ro"),
        "{}",
        marker(&log)
    );
    assert_has(&log, "baton: coldplug:");
}

/// One generic image, one kind of disk controller: the root is found and only the drivers
/// that controller and the root need are loaded.
fn boots_on_bus(k: &Kernel, bus: &str, device: &str, needed: &[&str], unneeded: &[&str]) {
    let mut b = Boot::new(
        k,
        storage_image(k),
        gpt_disk(),
        &format!("root=PARTUUID={ROOT_PARTUUID}"),
    );
    b.bus = bus;
    let log = b.run(&format!("bus-{bus}-{}", k.tag));
    let line = marker(&log);
    assert!(
        line.contains(&format!("root=[{device} ext4 ")),
        "{bus}: {line}"
    );
    let loaded = loaded_modules(&log);
    for module in needed {
        assert!(
            loaded.iter().any(|m| m == module),
            "{bus} on {}: {module} not loaded: {loaded:?}",
            k.tag
        );
    }
    for module in unneeded {
        assert!(
            !loaded.iter().any(|m| m == module),
            "{bus} on {}: {module} loaded: {loaded:?}",
            k.tag
        );
    }
}

const ALL_DRIVERS: [&str; 6] = [
    "virtio_blk",
    "virtio_scsi",
    "nvme",
    "ahci",
    "ata_piix",
    "sd_mod",
];

fn others(needed: &[&str]) -> Vec<&'static str> {
    ALL_DRIVERS
        .iter()
        .copied()
        .filter(|d| !needed.contains(d))
        .collect()
}

fn buses(k: &Kernel) {
    let cases: [(&str, &str, &[&str]); 4] = [
        ("virtio", "/dev/vda2", &["virtio_blk", "ext4"]),
        ("scsi", "/dev/sda2", &["virtio_scsi", "sd_mod", "ext4"]),
        ("nvme", "/dev/nvme0n1p2", &["nvme", "ext4"]),
        ("sata", "/dev/sda2", &["ahci", "sd_mod", "ext4"]),
    ];
    for (bus, device, needed) in cases {
        boots_on_bus(k, bus, device, needed, &others(needed));
    }
}

#[test]
fn every_bus_on_debian_6_1() {
    let Some(k) = common::kernel() else { return };
    buses(&k);
}

#[test]
fn every_bus_on_debian_6_12() {
    let Some(k) = common::kernel_new() else {
        return;
    };
    buses(&k);
}

/// A disk plugged into the running VM seconds after boot, with `rootwait`: baton hears the
/// kernel's events, loads the drivers and boots from it.
#[test]
fn hot_plugged_disk_with_rootwait() {
    let Some(k) = common::kernel() else { return };
    let disk = gpt_disk();
    let socket = common::work_dir().join("hotplug.monitor");
    let _ = std::fs::remove_file(&socket);
    let mut b = Boot::new(
        &k,
        storage_image(&k),
        disk.clone(),
        &format!("root=UUID={EXT4_UUID} rootwait"),
    );
    b.disks.clear();
    b.monitor = Some(socket.clone());
    let (mut cmd, log_path) = b.command("hotplug");
    // A log left by an earlier run must not be mistaken for this one's progress.
    let _ = std::fs::remove_file(&log_path);
    let mut child = cmd.spawn().unwrap();

    // Wait until baton is listening and has looked at the hardware, then a little more.
    common::wait_for_console(&log_path, "baton: coldplug:", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    common::hot_add_disk(&socket, &disk, "hotdisk");

    assert!(child.wait().unwrap().success());
    let log = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap()).into_owned();
    assert!(marker(&log).contains("root=[/dev/vda2 ext4 "), "{log}");
    assert_has(&log, "baton: loaded virtio_blk");
    // The disk really arrived after baton had looked at the hardware and started waiting.
    let coldplug = log.find("baton: coldplug:").unwrap();
    let plugged = log
        .find("[1af4:1001]")
        .expect("the kernel announced the new PCI device");
    assert!(
        coldplug < plugged,
        "the disk was there before baton started:\n{log}"
    );
}

/// A root that never appears: a bounded wait naming what it waited for and what it saw,
/// then the configured emergency action.
#[test]
fn root_that_never_appears() {
    let Some(k) = common::kernel() else { return };
    let b = Boot::new(
        &k,
        storage_image(&k),
        gpt_disk(),
        "root=UUID=00000000-0000-4000-8000-000000000000 rd.timeout=6 rd.emergency=poweroff",
    );
    let log = b.run("never");
    // A progress line while waiting, naming what it waits for and what it has seen.
    assert_has(
        &log,
        "baton: still waiting for root device UUID=00000000-0000-4000-8000-000000000000 after 5 s (block devices present: vda (",
    );
    assert_has(
        &log,
        "baton: boot failed: root device UUID=00000000-0000-4000-8000-000000000000 did not appear within 6 s",
    );
    assert_has(&log, "vda2 (");
    assert_has(&log, "reboot: Power down");
    assert!(!log.contains("BATON-MARKER"), "{log}");
    assert!(!log.contains("Kernel panic"), "{log}");
}

#[test]
fn mbr_kernel_name_and_links() {
    boots_root("mbr-devname", mbr_disk(), "/dev/vda2", "/dev/vda2");
    boots_root(
        "mbr-by-partuuid",
        mbr_disk(),
        "/dev/disk/by-partuuid/1badcafe-02",
        "/dev/vda2",
    );
}

/// rd.modules= loads a module whatever the hardware; module_blacklist= wins over it.
#[test]
fn forced_and_blacklisted_modules() {
    let Some(k) = common::kernel() else { return };
    let append = format!(
        "root=UUID={EXT4_UUID} rd.modules=nvme,sr_mod module_blacklist=sr_mod rd.emergency=poweroff"
    );
    let log = Boot::new(&k, storage_image(&k), gpt_disk(), &append).run("forced");
    marker(&log);
    let loaded = loaded_modules(&log);
    assert!(loaded.iter().any(|m| m == "nvme"), "{loaded:?}");
    assert!(!loaded.iter().any(|m| m == "sr_mod"), "{loaded:?}");
    assert_has(&log, "sr_mod: skipped, module_blacklist= names it");
}

#[test]
fn rootwait_zero_still_loads_the_disk_driver() {
    // On 6.1 the disk appears only once coldplug has loaded virtio_pci and virtio_blk:
    // `rootwait=0` means "do not wait for a slow disk", not "give up before looking".
    boots_root(
        "rootwait-0",
        common::plain_disk(),
        "UUID=8c1f3a7e-0d3b-4a5e-9a43-5f2d7c9e1b20 rootwait=0",
        "/dev/vda",
    );
}
