//! Roots that are a directory of the host, shared into the VM over 9p: booted on Debian's
//! 6.1 and 6.12 with a busybox tree as the root, named modules and the generic image
//! (whose coldplug finds the 9p transport by its device's alias), and with the writable
//! overlay. virtiofs needs a virtiofsd beside qemu: tests/run_command.rs covers it through
//! `baton run`, which starts one.

mod common;

use common::{assert_has, kernel, kernel_new, marker, Boot, Kernel};
use std::path::PathBuf;

fn tree(name: &str) -> PathBuf {
    common::busybox_tree(&format!("shared-{name}"))
}

/// The image with the 9p modules named.
fn ninep_image(k: &Kernel) -> PathBuf {
    common::image(
        k,
        "ninep",
        &[
            "--module",
            "virtio_pci",
            "--module",
            "9pnet_virtio",
            "--module",
            "9p",
            "--module",
            "overlay",
        ],
    )
}

/// Boots `image` with `dir` shared read-only (or not) as the 9p tag `hostroot`.
fn boot_9p(
    k: &Kernel,
    image: PathBuf,
    dir: &std::path::Path,
    read_only: bool,
    append: &str,
    name: &str,
) -> String {
    let mut boot = Boot::new(k, image, PathBuf::new(), append);
    boot.disks.clear();
    let (mut cmd, log) = boot.command(name);
    cmd.args([
        "--",
        "-fsdev",
        &format!(
            "local,id=hostroot,path={},security_model=none,multidevs=remap{}",
            dir.display(),
            if read_only { ",readonly=on" } else { "" }
        ),
        "-device",
        "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
    ]);
    let status = cmd.status().unwrap();
    assert!(status.success(), "qemu/boot failed for {name}");
    String::from_utf8_lossy(&std::fs::read(log).unwrap()).into_owned()
}

fn boots_a_busybox_tree_over_9p(k: &Kernel) {
    let dir = tree("busybox");
    let log = boot_9p(
        k,
        ninep_image(k),
        &dir,
        true,
        "rootfstype=9p root=hostroot",
        &format!("9p-tree-{}", k.tag),
    );
    let line = marker(&log);
    assert!(line.contains("root=[hostroot 9p ro,"), "{line}");
    assert!(
        line.contains("cache=loose") || line.contains("msize=512000"),
        "{line}"
    );
    assert_has(
        &log,
        "baton: mounted root: the host's directory hostroot (9p, ro) on /sysroot",
    );
}

#[test]
fn boots_a_busybox_tree_over_9p_on_6_1() {
    let Some(k) = kernel() else { return };
    boots_a_busybox_tree_over_9p(&k);
}

#[test]
fn boots_a_busybox_tree_over_9p_on_6_12() {
    let Some(k) = kernel_new() else { return };
    boots_a_busybox_tree_over_9p(&k);
}

/// The generic image names no 9p module: coldplug loads the transport for the device it
/// finds, and the filesystem comes by its alias.
#[test]
fn the_generic_image_finds_the_9p_transport() {
    let Some(k) = kernel() else { return };
    let dir = tree("busybox");
    let log = boot_9p(
        &k,
        common::storage_image(&k),
        &dir,
        true,
        "rootfstype=9p root=hostroot",
        "9p-storage",
    );
    assert!(marker(&log).contains("root=[hostroot 9p ro,"), "{log}");
    let loaded = common::loaded_modules(&log);
    for module in ["9pnet_virtio", "9p"] {
        assert!(
            loaded.iter().any(|m| m == module),
            "{module} not loaded: {loaded:?}"
        );
    }
}

/// `rd.overlay`: the shared directory stays as it was, the booted system writes anyway.
#[test]
fn the_overlay_takes_the_writes() {
    let Some(k) = kernel() else { return };
    let dir = tree("overlay");
    let _ = std::fs::remove_file(dir.join("written-by-the-vm"));
    let log = boot_9p(
        &k,
        ninep_image(&k),
        &dir,
        true,
        "rootfstype=9p root=hostroot rd.overlay init=/bin/sh -- -c \"echo hello >/written-by-the-vm && busybox cat /written-by-the-vm && exec /sbin/init\"",
        "9p-overlay",
    );
    let line = marker(&log);
    assert!(line.contains("root=[overlay overlay "), "{line}");
    assert!(log.contains("hello"), "{log}");
    assert_has(
        &log,
        "is an overlay: the root is read-only under /run/baton/lower",
    );
    assert!(
        !dir.join("written-by-the-vm").exists(),
        "the VM wrote into the shared directory"
    );
}

/// A tag that is not there: the boot waits as long as rootwait says, then says what is
/// missing, and does the emergency action.
#[test]
fn a_missing_tag_is_named() {
    let Some(k) = kernel() else { return };
    let dir = tree("busybox");
    let log = boot_9p(
        &k,
        ninep_image(&k),
        &dir,
        true,
        "rootfstype=9p root=nosuchtag rootwait=1 rd.emergency=poweroff",
        "9p-missing",
    );
    assert_has(
        &log,
        "the host's directory nosuchtag (9p) did not appear within 1 s",
    );
}
