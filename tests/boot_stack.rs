//! Roots on LVM and MD RAID, booted on both kernels from the disks the real lvm2 and mdadm
//! made (common::stack_disks): each by the names users give it, arrays short of members
//! started degraded, and the stacks that cannot come up named, with the configured action.
//! The image is `--storage`'s: device-mapper, md and the personalities load when needed.

mod common;

use common::{assert_action, assert_has, kernel, kernel_new, marker, Boot, Kernel};
use std::path::Path;
use std::time::Duration;

/// Boots `disks` (by name) with `append`, under the storage image of `k`.
fn boot(k: &Kernel, dir: &Path, name: &str, disks: &[&str], append: &str) -> String {
    let mut boot = Boot::new(
        k,
        common::storage_image(k),
        dir.join(format!("{}.img", disks[0])),
        append,
    );
    boot.disks = disks.iter().map(|d| dir.join(format!("{d}.img"))).collect();
    boot.run(&format!("stack-{name}-{}", k.tag))
}

/// A boot: its name, its disks, its command line, and a line it must log.
type Case<'a> = (&'a str, &'a [&'a str], &'a str, &'a str);

/// Boots that reach the real init, and the line each must have logged on the way.
fn boots_to_init(k: &Kernel, dir: &Path, cases: &[Case<'_>]) {
    for (name, disks, append, expected) in cases {
        let log = boot(
            k,
            dir,
            name,
            disks,
            &format!("{append} rd.emergency=poweroff"),
        );
        let line = marker(&log);
        assert!(line.contains("root=["), "{name}: {line}");
        assert_has(&log, expected);
    }
}

/// The kernels, each with whether it is the newer one: every case boots on Debian's 6.1,
/// and those that exercise another path of the kernel (device-mapper, each personality,
/// degraded starts) on 6.12 too; what only baton reads (each naming form, each metadata
/// version) does not change with the kernel.
fn kernels() -> Vec<(Kernel, bool)> {
    let old = kernel().map(|k| (k, false));
    let new = kernel_new().map(|k| (k, true));
    [old, new].into_iter().flatten().collect()
}

/// The cases for a kernel: all of them on the first, those marked for both on the newer.
fn on<T: Copy>(newer: bool, cases: &[(T, bool)]) -> Vec<T> {
    cases
        .iter()
        .filter(|(_, both)| *both || !newer)
        .map(|(case, _)| *case)
        .collect()
}

#[test]
fn roots_on_logical_volumes() {
    let Some(dir) = common::stack_disks() else {
        return;
    };
    for (k, newer) in kernels() {
        let cases: [(Case<'_>, bool); 5] = [
            (
                (
                    "lv-path",
                    &["lvm"],
                    "root=/dev/vg0/root",
                    "activated LV vg0/root as /dev/mapper/vg0-root",
                ),
                true,
            ),
            (
                (
                    "lv-mapper",
                    &["lvm"],
                    "root=/dev/mapper/vg0-root",
                    "activated LV vg0/root",
                ),
                false,
            ),
            (
                (
                    "lv-uuid",
                    &["lvm"],
                    "root=UUID=5e1f0c2a-0000-4000-8000-00000000a001",
                    "activated LV vg0/swap",
                ),
                false,
            ),
            (
                (
                    "lv-resume",
                    &["lvm"],
                    "root=/dev/vg0/root resume=/dev/vg0/swap",
                    "activated LV vg0/swap",
                ),
                true,
            ),
            (
                (
                    "lv-striped",
                    &["stripe-a", "stripe-b"],
                    "root=/dev/vgs/root",
                    "activated LV vgs/root",
                ),
                true,
            ),
        ];
        boots_to_init(&k, dir, &on(newer, &cases));
        if newer {
            continue;
        }
        // rd.lvm.lv= names the only LVs to activate.
        let log = boot(
            &k,
            dir,
            "lv-only-named",
            &["lvm"],
            "root=LABEL=lvroot rd.lvm.lv=vg0/root",
        );
        assert_has(&log, "activated LV vg0/root");
        assert!(!log.contains("activated LV vg0/swap"), "{log}");
        // The mount is by the name the real system knows, not dm-N.
        assert_has(&marker(&log), "root=[/dev/mapper/vg0-root ext4");
    }
}

#[test]
fn roots_on_raid_arrays() {
    let Some(dir) = common::stack_disks() else {
        return;
    };
    let fs = |n: u32| format!("root=UUID=5e1f0c2a-0000-4000-8000-{:012x}", 0xb00 + n);
    let (md12, md11, md10, md090, r5) = (fs(2), fs(4), fs(6), fs(8), fs(20));
    let cases: [(Case<'_>, bool); 8] = [
        (
            (
                "md12",
                &["md12-a", "md12-b"],
                &md12,
                "started RAID1 baton:md12",
            ),
            true,
        ),
        (
            (
                "md11",
                &["md11-a", "md11-b"],
                &md11,
                "started RAID1 baton:md11",
            ),
            false,
        ),
        (
            (
                "md10",
                &["md10-a", "md10-b"],
                &md10,
                "started RAID1 baton:md10",
            ),
            false,
        ),
        (
            ("md090", &["md090-a", "md090-b"], &md090, "started RAID1"),
            false,
        ),
        (
            (
                "md-link",
                &["md12-a", "md12-b"],
                "root=/dev/md/md12",
                "as /dev/md12",
            ),
            false,
        ),
        (
            (
                "md12-degraded",
                &["md12-b"],
                &md12,
                "starting degraded, without slot 0",
            ),
            true,
        ),
        (
            (
                "r5-degraded",
                &["r5-a", "r5-c"],
                &r5,
                "starting degraded, without slot 1",
            ),
            true,
        ),
        (
            (
                "lvm-on-md",
                &["mdlvm-b", "mdlvm-a"],
                "root=/dev/vgmd/root",
                "activated LV vgmd/root",
            ),
            true,
        ),
    ];
    for (k, newer) in kernels() {
        boots_to_init(&k, dir, &on(newer, &cases));
    }
}

#[test]
fn stacks_that_cannot_come_up_are_named() {
    let Some(dir) = common::stack_disks() else {
        return;
    };
    for (k, newer) in kernels() {
        let log = boot(
            &k,
            dir,
            "vg-missing-pv",
            &["stripe-a"],
            "root=/dev/vgs/root rootwait=3 rd.emergency=poweroff",
        );
        assert_has(&log, "LVM2 PV 1VGmLL-bt0n-pv02-aaaa-bbbb-cccc-dddd02 of VG vgs, which is missing 1 of 2 PVs (1VGmLL-bt0n-pv03-aaaa-bbbb-cccc-dddd03)");
        assert_has(&log, "VG vgs is missing 1 of 2 PVs");
        assert_action(&log, "poweroff");
        let log = boot(
            &k,
            dir,
            "r0-missing",
            &["r0-a"],
            "root=UUID=5e1f0c2a-0000-4000-8000-000000000b17 rootwait=3 rd.emergency=poweroff",
        );
        assert_has(
            &log,
            "RAID0 is missing 1 of 2 devices (slot 1), more than it can run without",
        );
        assert_action(&log, "poweroff");
        if newer {
            continue;
        }
        // rd.md=0: the array's members stay members.
        let log = boot(
            &k,
            dir,
            "md-off",
            &["md12-a", "md12-b"],
            "root=UUID=5e1f0c2a-0000-4000-8000-000000000b02 rootwait=2 rd.md=0 rd.emergency=poweroff",
        );
        assert_has(&log, "did not appear");
        assert_action(&log, "poweroff");
    }
}

/// Event-driven: a VG whose second PV is plugged in while baton waits (`rootwait`) is
/// activated when the PV appears, and the boot goes on from its LV.
#[test]
fn a_vg_completed_by_a_hot_plugged_pv() {
    let (Some(k), Some(dir)) = (kernel(), common::stack_disks()) else {
        return;
    };
    let socket = common::work_dir().join("stack-hotplug.monitor");
    let _ = std::fs::remove_file(&socket);
    let mut b = Boot::new(
        &k,
        common::storage_image(&k),
        dir.join("stripe-a.img"),
        "root=/dev/vgs/root rootwait rd.emergency=poweroff",
    );
    b.monitor = Some(socket.clone());
    let (mut cmd, log_path) = b.command(&format!("stack-hotplug-{}", k.tag));
    let _ = std::fs::remove_file(&log_path);
    let mut child = cmd.spawn().unwrap();
    common::wait_for_console(
        &log_path,
        "LVM2_member UUID=1VGmLL-bt0n-pv02",
        Duration::from_secs(60),
    );
    std::thread::sleep(Duration::from_secs(1));
    common::hot_add_disk(&socket, &dir.join("stripe-b.img"), "pv2");
    assert!(child.wait().unwrap().success());
    let log = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap()).into_owned();
    assert!(marker(&log).contains("root=[/dev/vgs/root ext4"), "{log}");
    // The second PV came after the first was seen and its VG found incomplete.
    let first = log.find("UUID=1VGmLL-bt0n-pv02").unwrap();
    let second = log
        .find("UUID=1VGmLL-bt0n-pv03")
        .expect("the plugged PV was seen");
    let activated = log
        .find("activated LV vgs/root")
        .expect("the LV was activated");
    assert!(first < second && second < activated, "{log}");
}
