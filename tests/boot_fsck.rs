//! The root's check done once (baton::init::fsck_stamp): booted from a clean ext4 root that
//! carries systemd's fsck, mounted read-only, baton tells the real root's systemd that the
//! check was done (`/run/initramfs/fsck-root`, as initramfs-tools does after its fsck); from
//! a root whose superblock records errors, mounted read-write, with `fsck.mode=force`, or
//! without systemd, it does not.

mod common;

use common::{assert_has, custom_disk, marker, plain_disk, virtio_ext4_image, work_dir, Boot};
use std::fs;
use std::process::Command;

const WROTE: &str = "wrote /run/initramfs/fsck-root";

#[test]
fn the_stamp_only_for_a_clean_read_only_ext4_root() {
    let Some(k) = common::kernel() else { return };
    let image = virtio_ext4_image(&k, "fsck", &[]);
    let boot = |name: &str, disk: std::path::PathBuf, append: &str| {
        let log = Boot::new(&k, image.clone(), disk, append).run(name);
        marker(&log);
        log
    };

    // What the stamp is for: systemd's fsck on the root (only its presence is looked at).
    let with_systemd = custom_disk("fsck-systemd", |tree| {
        let fsck = tree.join("usr/lib/systemd/systemd-fsck");
        fs::create_dir_all(fsck.parent().unwrap()).unwrap();
        fs::write(fsck, "").unwrap();
    });
    let log = boot("fsck-clean", with_systemd.clone(), "root=/dev/vda ro");
    assert_has(&log, WROTE);

    let marked = work_dir().join("fsck-errors.img");
    fs::copy(&with_systemd, &marked).unwrap();
    let tuned = Command::new("tune2fs")
        .args(["-E", "force_fsck"])
        .arg(&marked)
        .output()
        .unwrap();
    assert!(tuned.status.success(), "{tuned:?}");
    let log = boot("fsck-errors", marked, "root=/dev/vda ro");
    assert_has(&log, "left to the real root's fsck: it has recorded errors");
    assert!(!log.contains(WROTE), "{log}");

    let log = boot(
        "fsck-forced",
        with_systemd.clone(),
        "root=/dev/vda ro fsck.mode=force",
    );
    assert_has(&log, "the command line decides");
    assert!(!log.contains(WROTE), "{log}");

    let log = boot("fsck-rw", with_systemd, "root=/dev/vda rw");
    assert!(!log.contains("root's check"), "{log}");

    // Without systemd nothing is read and nothing said.
    let log = boot("fsck-busybox", plain_disk(), "root=/dev/vda ro");
    assert!(
        !log.contains("root's check") && !log.contains(WROTE),
        "{log}"
    );
}
