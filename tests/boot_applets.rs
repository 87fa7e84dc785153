//! baton as `switch_root` and `run-init` in other people's initramfs images, booted on
//! Debian's 6.1 kernel: a busybox shell-script `/init` that ends in `exec switch_root`, with
//! and without moving the API filesystems itself; the refusals and `run-init -n`, run by
//! the script as child processes (so the boot goes on to show them all); and Debian's own
//! initramfs-tools image with its run-init replaced by baton's.

mod common;

use common::{assert_has, marker, plain_disk, Boot, Kernel};
use std::fs;
use std::path::PathBuf;

/// A busybox script `/init` as hand-made images have it: mount the API filesystems, load
/// the modules (in the order of baton's manifest, dependencies first), mount the root,
/// then `BEFORE_SWITCH` and `exec switch_root`. By path: Debian's busybox-static is built
/// with FEATURE_SH_STANDALONE, so its sh runs its own applet for a bare `switch_root`.
fn script(before_switch: &str) -> String {
    format!(
        r#"#!/bin/sh
export PATH=/usr/bin:/bin:/sbin
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
while read -r kind name path rest; do
    [ "$kind" = module ] && $bb insmod "$path"
done </etc/baton/manifest
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do $bb sleep 0.1; i=$((i + 1)); done
$bb mkdir -p /newroot /notmounted
$bb mount -t ext4 -o ro /dev/vda /newroot
{before_switch}
exec /sbin/switch_root /newroot /sbin/init
"#
    )
}

fn script_image(k: &Kernel, name: &str, before_switch: &str) -> PathBuf {
    let path = common::work_dir().join(format!("{name}.init"));
    fs::write(&path, script(before_switch)).unwrap();
    let init = path.display().to_string();
    common::image(
        k,
        name,
        &[
            "--init",
            &init,
            "--shell",
            "/bin/busybox",
            "--module",
            "virtio_pci",
            "--module",
            "virtio_blk",
            "--module",
            "ext4",
        ],
    )
}

fn dmesg_has(log: &str, needle: &str) {
    assert!(
        log.lines()
            .any(|l| l.starts_with("BATON-DMESG") && l.contains(needle)),
        "dmesg lacks {needle:?}:\n{log}"
    );
}

#[test]
fn busybox_script_switches_with_batons_switch_root() {
    let Some(k) = common::kernel() else { return };
    for (name, before) in [
        // The script moves the API filesystems itself, as busybox's switch_root needs.
        (
            "script-moves",
            "for d in dev proc sys; do $bb mount --move /$d /newroot/$d; done",
        ),
        // It does not: baton moves them, as util-linux's switch_root does.
        ("script-leaves", ""),
    ] {
        let image = script_image(&k, name, before);
        let log = Boot::new(&k, image, plain_disk(), "root=/dev/vda").run(name);
        let line = marker(&log);
        assert!(line.contains("init=/sbin/init pid=1 "), "{name}: {line}");
        assert!(line.contains("root=[/dev/vda ext4 ro,"), "{name}: {line}");
        dmesg_has(
            &log,
            "baton: switch_root: switching to /newroot, then running /sbin/init",
        );
        dmesg_has(&log, "baton: switch_root: freed the initramfs");
        // /proc is the one the script mounted, carried over: the marker could read it.
        assert_has(&log, "BATON-SYSCTL modprobe=/sbin/modprobe");
    }
}

#[test]
fn refusals_and_dry_runs_from_a_script() {
    let Some(k) = common::kernel() else { return };
    let checks = r#"
try() { label=$1; shift; "$@"; echo "CHECK $label rc=$?"; }
try not-pid-1 /usr/bin/switch_root /newroot /sbin/init
try not-mounted /usr/bin/switch_root /notmounted /sbin/init
try current-root /usr/bin/switch_root / /sbin/init
try below-mount-point /usr/bin/switch_root /newroot/sbin /sbin/init
try missing-init /usr/bin/switch_root /newroot /sbin/nothing
try usage /usr/bin/switch_root /newroot
try bad-capability /usr/bin/run-init -d cap_flying /newroot /sbin/init
try dry-run-missing /bin/run-init -n /newroot /sbin/nothing
try dry-run-present /bin/run-init -n /newroot /sbin/init
$bb ls /newroot/etc/issue >/dev/null && echo "CHECK nothing-deleted"
"#;
    let image = script_image(&k, "script-refusals", checks);
    let log = Boot::new(&k, image, plain_disk(), "root=/dev/vda").run("script-refusals");
    for (label, code, message) in [
        ("not-pid-1", 1, "switch_root: refusing to switch root: this process is PID "),
        (
            "not-mounted",
            1,
            "switch_root: refusing to switch root: /notmounted is on the same filesystem as / (is the root mounted there?)",
        ),
        ("current-root", 1, "switch_root: refusing to switch root: / is the current root"),
        (
            "below-mount-point",
            1,
            "switch_root: refusing to switch root: /newroot/sbin is not a mount point; mount the root on it, not above it",
        ),
        (
            "missing-init",
            1,
            "switch_root: refusing to switch root: /sbin/nothing: No such file or directory (in the new root /newroot)",
        ),
        ("usage", 1, "Usage: switch_root [-c CONSOLE_DEV] NEW_ROOT NEW_INIT [ARGS]"),
        ("bad-capability", 1, "run-init: unknown capability: cap_flying"),
        ("dry-run-missing", 1, ""),
        ("dry-run-present", 0, ""),
    ] {
        assert_has(&log, &format!("CHECK {label} rc={code}"));
        if !message.is_empty() {
            assert_has(&log, message);
        }
    }
    assert_has(&log, "CHECK nothing-deleted");
    // Every refusal is explained in the kernel log too.
    dmesg_has(
        &log,
        "baton: switch_root: refusing to switch root: this process is PID ",
    );
    dmesg_has(
        &log,
        "baton: run-init: -n: /sbin/nothing: No such file or directory",
    );
    // And the real switch after them still works.
    assert!(marker(&log).contains("init=/sbin/init pid=1 "), "{log}");
}

#[test]
fn debian_initramfs_tools_image_with_batons_run_init() {
    let Some(k) = common::kernel() else { return };
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var("BATON_REQUIRE_ROOT_TESTS").as_deref() != Ok("1"),
            "building the initramfs-tools image needs root (debootstrap)"
        );
        eprintln!("skipped: building the initramfs-tools image needs root");
        return;
    }
    // initramfs-tools' own /init: `run-init -n` to check the init, then
    // `exec run-init ${drop_caps} /root /sbin/init`, with drop_caps from the command line.
    let image = common::initramfs_tools_image_with_baton();
    let mut boot = Boot::new(
        &k,
        image,
        plain_disk(),
        "root=/dev/vda drop_capabilities=cap_sys_module,CAP_SYS_RAWIO",
    );
    boot.timeout = 120;
    let log = boot.run("initramfs-tools-baton");
    let line = marker(&log);
    assert!(line.contains("init=/sbin/init pid=1 "), "{line}");
    assert!(line.contains("root=[/dev/vda ext4 "), "{line}");
    dmesg_has(&log, "baton: run-init: -n: /sbin/init can be run in /root");
    dmesg_has(
        &log,
        "baton: run-init: switching to /root, then running /sbin/init",
    );
    dmesg_has(
        &log,
        "baton: run-init: dropped cap_sys_module,cap_sys_rawio",
    );
    // Bits 16 and 17 are gone from the bounding set the real init runs with.
    assert_has(&log, "BATON-CAPS CapBnd:\t000001fffffcffff");
}

/// The kernel's own module requests while the initramfs is the root: mounting a filesystem
/// nothing has loaded makes the kernel run its helper, `/sbin/modprobe -q -- fs-squashfs`,
/// which in baton's images is baton's binary answering from the manifest. No kernel
/// setting is involved: `kernel.modprobe` stays the kernel's own. The script is the init
/// here, so nothing else loads the module.
#[test]
fn the_kernels_module_requests_reach_baton() {
    let Some(k) = common::kernel() else { return };
    let path = common::work_dir().join("module-request.init");
    fs::write(
        &path,
        r#"#!/bin/sh
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t devtmpfs devtmpfs /dev
$bb mkdir -p /mnt
before=$($bb grep -c squashfs /proc/filesystems)
$bb mount -t squashfs /dev/null /mnt 2>/dev/null
after=$($bb grep -c squashfs /proc/filesystems)
$bb dmesg | $bb grep 'baton: ' | $bb sed 's/^/BATON-DMESG /'
echo "BATON-MARKER helper=$($bb cat /proc/sys/kernel/modprobe) squashfs=$before,$after"
$bb poweroff -f
"#,
    )
    .unwrap();
    let init = path.display().to_string();
    let image = common::image(
        &k,
        "module-request",
        &[
            "--init",
            &init,
            "--shell",
            "/bin/busybox",
            "--module",
            "squashfs",
        ],
    );
    let log = Boot::new(&k, image, plain_disk(), "root=/dev/vda").run("module-request");
    let line = marker(&log);
    assert!(
        line.contains("helper=/sbin/modprobe squashfs=0,1"),
        "{line}\n{log}"
    );
    dmesg_has(&log, "baton: loaded squashfs in ");
    dmesg_has(&log, "(for fs-squashfs)");
}
