//! The proof on a real Debian: baton's package installed with apt into a freshly installed
//! bookworm (qemu/make-systemd-tree: systemd, udev, initramfs-tools, the kernel through
//! linux-image-amd64, all as apt installs them), which it must take over from
//! initramfs-tools (both provide and conflict with linux-initramfs-tool). The system then
//! boots through baton's image to a systemd that reports "running" with no failed unit. A
//! newer kernel installed with apt (6.12) gets its image from baton's kernel hook and boots
//! the same way; purged, its image goes with it. Installing initramfs-tools again removes
//! baton and gives the images back to initramfs-tools, and that system boots too.
//!
//! Also the kernel-install plugin, run alone with a staging directory and through systemd's
//! own kernel-install (bookworm's 252) with a Boot Loader Specification layout.
//!
//! Every step runs chrooted in a copy of the cached tree (qemu/in-tree), with apt's .debs
//! from the tree's cache: nothing is downloaded once the tree exists. Needs root and
//! BATON_KERNEL (the tree is made for that kernel); skipped without them, a failure under
//! BATON_REQUIRE_ROOT_TESTS=1.

mod common;

use common::assert_has;
use common::debian::*;
use std::fs;
use std::path::Path;
use std::time::Instant;

#[test]
fn installs_on_bookworm_boots_systemd_takes_new_kernels_and_hands_back() {
    if !can_run() {
        return;
    }
    let start = Instant::now();
    let tree = tree();
    let kver = tree.get("kernel").to_owned();
    let new_package = tree.get("new_kernel").to_owned();
    let new_kver = new_package
        .strip_prefix("linux-image-")
        .expect("a linux-image- package")
        .to_owned();
    let root = scratch("debian-install");
    let image = root.join(format!("boot/initrd.img-{kver}"));
    let new_image = root.join(format!("boot/initrd.img-{new_kver}"));
    assert_initramfs_tools(&image);

    // apt replaces initramfs-tools with baton (linux-initramfs-tool), and baton's postinst
    // writes the installed kernel's image.
    let deb = copy_package(&root);
    let out = apt(&root, &format!("install -y {deb}"));
    assert_eq!(dpkg_state(&root, "baton"), "ii", "{out}");
    assert_ne!(dpkg_state(&root, "initramfs-tools"), "ii", "{out}");
    assert_has(&out, &format!("baton: wrote the image for {kver}"));
    assert_batons(&image);

    let log = boot(&root, &kver, "6.1", "debian-install-6.1");
    assert_has(&log, "baton: running /sbin/init");
    // The clean root's check is done once: systemd skips its own (Debian's condition).
    assert_has(&log, "wrote /run/initramfs/fsck-root");
    assert_has(&log, "ConditionPathExists=!/run/initramfs/fsck-root");
    // baton loads only what the root needs; the rest is left to the real root's udev.
    let with_baton = loaded_after_boot(&log);

    // A newer kernel: the kernel package's postinst hooks; baton's writes the image and
    // initramfs-tools' (left behind as a conffile) does nothing without update-initramfs.
    let out = apt(&root, "install -y linux-image-6.12-amd64");
    assert_eq!(dpkg_state(&root, &new_package), "ii", "{out}");
    assert!(!out.contains("update-initramfs: Generating"), "{out}");
    assert_batons(&new_image);
    let log = boot(&root, &new_kver, "6.12", "debian-install-6.12");
    assert_has(&log, "baton: running /sbin/init");

    // Purged, the kernel takes its image with it; the other kernel's stays.
    let out = apt(
        &root,
        &format!("purge -y linux-image-6.12-amd64 {new_package}"),
    );
    let state = dpkg_state(&root, &new_package);
    assert!(
        state.is_empty() || state == "un",
        "{new_package} is {state}:\n{out}"
    );
    assert!(
        !new_image.exists(),
        "{} is still there:\n{out}",
        new_image.display()
    );
    assert_batons(&image);

    // initramfs-tools back: baton is removed (its conffiles stay, as dpkg does), and
    // initramfs-tools' trigger writes its own image again.
    let out = apt(&root, "install -y initramfs-tools");
    assert_eq!(dpkg_state(&root, "initramfs-tools"), "ii", "{out}");
    assert_eq!(dpkg_state(&root, "baton"), "rc", "{out}");
    assert!(!root.join("usr/bin/baton").exists());
    assert_initramfs_tools(&image);
    let log = boot(&root, &kver, "6.1", "debian-install-initramfs-tools");
    assert!(!log.contains("baton: running /sbin/init"), "{log}");
    // Whichever initramfs booted it, the system ends up with the same modules.
    let with_initramfs_tools = loaded_after_boot(&log);
    assert_eq!(
        with_baton,
        with_initramfs_tools,
        "modules only through baton: {:?}; only through initramfs-tools: {:?}",
        with_baton
            .difference(&with_initramfs_tools)
            .collect::<Vec<_>>(),
        with_initramfs_tools
            .difference(&with_baton)
            .collect::<Vec<_>>()
    );

    fs::remove_dir_all(root.parent().unwrap()).unwrap();
    eprintln!(
        "debian_install: install, 3 boots, upgrade, purge, hand-back: {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// A loader entry's initrd lines.
fn entry_initrds(root: &Path, machine_id: &str, kver: &str) -> Vec<String> {
    let entry = root.join(format!("boot/loader/entries/{machine_id}-{kver}.conf"));
    fs::read_to_string(&entry)
        .unwrap_or_else(|e| panic!("{}: {e}", entry.display()))
        .lines()
        .filter_map(|l| l.strip_prefix("initrd"))
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn kernel_install_plugin_builds_the_initrd_once() {
    if !can_run() {
        return;
    }
    let tree = tree();
    let kver = tree.get("kernel").to_owned();
    let root = scratch("debian-kernel-install");
    let deb = copy_package(&root);
    apt(&root, &format!("install -y {deb}"));
    let plugin = "/usr/lib/kernel/install.d/55-baton.install";
    let boot_image = fs::read(root.join(format!("boot/initrd.img-{kver}"))).unwrap();

    // Alone, as kernel-install runs it where no other plugin stages an initrd: it builds
    // the system's image (baton.conf's, the same bytes as /boot's) into the staging area.
    let stage = root.join("tmp/stage");
    fs::create_dir_all(&stage).unwrap();
    let out = in_tree(
        &root,
        &[
            "KERNEL_INSTALL_STAGING_AREA=/tmp/stage",
            "KERNEL_INSTALL_VERBOSE=1",
            &format!(
                "KERNEL_INSTALL_PLUGINS={plugin} /usr/lib/kernel/install.d/90-loaderentry.install"
            ),
        ],
        &format!("{plugin} add {kver} /boot/entry/{kver} /boot/vmlinuz-{kver}"),
    );
    eprintln!("debian_install: {plugin} add:\n{out}");
    assert_batons(&stage.join("initrd"));
    assert!(
        fs::read(stage.join("initrd")).unwrap() == boot_image,
        "the staged initrd differs from /boot's"
    );
    let staged: Vec<_> = fs::read_dir(&stage).unwrap().collect();
    assert_eq!(
        staged.len(),
        1,
        "only the initrd is left in the staging area"
    );

    // Initrds given on the command line, `remove`, a kernel that is not installed.
    let empty = root.join("tmp/stage-empty");
    fs::create_dir_all(&empty).unwrap();
    let env = ["KERNEL_INSTALL_STAGING_AREA=/tmp/stage-empty"];
    in_tree(
        &root,
        &env,
        &format!(
            "{plugin} add {kver} /boot/entry/{kver} /boot/vmlinuz-{kver} /boot/initrd.img-{kver}"
        ),
    );
    in_tree(
        &root,
        &env,
        &format!("{plugin} remove {kver} /boot/entry/{kver}"),
    );
    let out = in_tree(
        &root,
        &env,
        &format!("{plugin} add 0.0.0-none /boot/entry/0 /boot/vmlinuz-{kver} && echo WRONG || echo exit=$?"),
    );
    assert_has(&out, "exit=1");
    assert_has(&out, "baton could not build the initrd for 0.0.0-none");
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0, "{out}");

    // systemd's own kernel-install, Boot Loader Specification layout. Debian's
    // 85-initrd.install stages /boot/initrd.img-KVER (baton's, from the kernel hook), so the
    // entry gets that one alone, not a second copy built by the plugin.
    let machine_id = fs::read_to_string(root.join("etc/machine-id"))
        .unwrap()
        .trim()
        .to_owned();
    let setup =
        "echo layout=bls >/etc/kernel/install.conf; echo root=UUID=x ro >/etc/kernel/cmdline";
    let out = in_tree(
        &root,
        &[],
        &format!("{setup}; kernel-install -v add {kver} /boot/vmlinuz-{kver}"),
    );
    eprintln!("debian_install: kernel-install add (Debian's plugins):\n{out}");
    let entry_dir = format!("/boot/{machine_id}/{kver}");
    assert_eq!(
        entry_initrds(&root, &machine_id, &kver),
        [format!("{entry_dir}/initrd.img-{kver}")],
        "{out}"
    );
    in_tree(&root, &[], &format!("kernel-install remove {kver}"));

    // With Debian's plugin masked, baton's builds the entry's one initrd.
    let out = in_tree(
        &root,
        &[],
        &format!(
            "ln -s /dev/null /etc/kernel/install.d/85-initrd.install; \
             kernel-install -v add {kver} /boot/vmlinuz-{kver}"
        ),
    );
    eprintln!("debian_install: kernel-install add (85-initrd masked):\n{out}");
    assert_eq!(
        entry_initrds(&root, &machine_id, &kver),
        [format!("{entry_dir}/initrd")],
        "{out}"
    );
    let staged = root.join(format!("boot/{machine_id}/{kver}/initrd"));
    assert_batons(&staged);
    assert!(fs::read(&staged).unwrap() == boot_image);
    in_tree(&root, &[], &format!("kernel-install remove {kver}"));
    assert!(!root.join(format!("boot/{machine_id}/{kver}")).exists());

    fs::remove_dir_all(root.parent().unwrap()).unwrap();
}
