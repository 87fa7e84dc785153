//! Real boots: Debian's kernel under qemu (TCG), an image built by `baton build`, a busybox
//! root disk whose /sbin/init prints a marker line. Every verdict comes from the console.
//! Needs BATON_KERNEL (a directory from qemu/fetch-kernel); scripts/test provides it. The
//! ways of finding the root (UUID=, buses, hot-plug) are in tests/boot_root.rs.

mod common;

use common::{assert_has, marker, plain_disk, virtio_ext4_image, Boot, Kernel};

fn kernel() -> Option<Kernel> {
    common::kernel()
}

/// Boots ext4 on virtio-blk with explicitly named modules.
fn boot(k: &Kernel, name: &str, extra: &[&str], append: &str, input: Option<&str>) -> String {
    let image = virtio_ext4_image(k, name, extra);
    let mut b = Boot::new(k, image, plain_disk(), append);
    b.input = input;
    b.run(name)
}

#[test]
fn boots_read_only_by_default_and_logs_to_dmesg() {
    let Some(k) = kernel() else { return };
    let log = boot(&k, "default", &[], "root=/dev/vda", None);
    let line = marker(&log);
    assert!(line.contains("init=/sbin/init pid=1 "), "{line}");
    assert!(line.contains("root=[/dev/vda ext4 ro,"), "{line}");
    // dmesg on the real root shows baton's own lines, all the way to the exec.
    for expected in [
        "BATON-DMESG",
        "baton: loaded ext4",
        "baton: mounted root /dev/vda (ext4, ro) on /sysroot",
        "baton: freed the initramfs",
        "baton: running /sbin/init",
    ] {
        assert!(
            log.lines()
                .any(|l| l.starts_with("BATON-DMESG") && l.contains(expected)),
            "dmesg lacks {expected:?}:\n{log}"
        );
    }
    assert!(!log.contains("Kernel panic"), "{log}");
    // /run is handed over as systemd's initrd interface asks: a tmpfs, mode 755, nodev,
    // nosuid and strictatime (which /proc/mounts shows as the absence of relatime).
    let run = log
        .lines()
        .find_map(|l| l.strip_prefix("BATON-RUN "))
        .unwrap_or_default();
    assert!(run.starts_with("tmpfs rw,nosuid,nodev,"), "{run}");
    assert!(
        run.contains("mode=755") && !run.contains("relatime"),
        "{run}"
    );
}

#[test]
fn boots_read_write_with_rw() {
    let Some(k) = kernel() else { return };
    let log = boot(&k, "rw", &[], "root=/dev/vda rw", None);
    let line = marker(&log);
    assert!(line.contains("root=[/dev/vda ext4 rw,"), "{line}");
}

#[test]
fn runs_init_with_the_arguments_after_dashes() {
    let Some(k) = kernel() else { return };
    let log = boot(
        &k,
        "args",
        &[],
        r#"root=/dev/vda init=/sbin/other-init -- first "second word" k=v"#,
        None,
    );
    let line = marker(&log);
    assert!(line.contains("init=/sbin/other-init pid=1 "), "{line}");
    assert!(line.ends_with("args=[first][second word][k=v]"), "{line}");
}

#[test]
fn missing_init_falls_back_to_sbin_init() {
    let Some(k) = kernel() else { return };
    let log = boot(
        &k,
        "fallback",
        &[],
        "root=/dev/vda init=/sbin/not-here",
        None,
    );
    let line = marker(&log);
    assert!(line.contains("init=/sbin/init pid=1 "), "{line}");
    assert_has(&log, "init=/sbin/not-here cannot be run from the new root");
}

fn boots_with(compression: &str) {
    let Some(k) = kernel() else { return };
    let log = boot(
        &k,
        compression,
        &["--compress", compression],
        "root=/dev/vda",
        None,
    );
    marker(&log);
}

#[test]
fn boots_zstd_image() {
    boots_with("zstd");
}

#[test]
fn boots_xz_image() {
    boots_with("xz");
}

#[test]
fn boots_lz4_image() {
    boots_with("lz4");
}

#[test]
fn boots_uncompressed_image() {
    boots_with("none");
}

#[test]
fn missing_root_ends_in_the_emergency_action() {
    let Some(k) = kernel() else { return };
    let log = boot(
        &k,
        "noroot",
        &[],
        "root=/dev/vdz rootwait=1 rd.emergency=poweroff",
        None,
    );
    assert_has(
        &log,
        "baton: boot failed: root device /dev/vdz did not appear within 1 s",
    );
    assert_has(&log, "block devices present: vda (");
    assert_has(&log, "reboot: Power down");
    assert!(!log.contains("Kernel panic"), "{log}");
    assert!(!log.contains("BATON-MARKER"), "{log}");
}

#[test]
fn rescue_shell_runs_on_the_console() {
    let Some(k) = kernel() else { return };
    // The shell reads what is typed on the serial console; the arithmetic proves it ran the
    // command rather than the terminal echoing it. Empty lines first: the serial line may
    // drop the first characters typed before the shell reads.
    let log = boot(
        &k,
        "shell",
        &["--shell", "/bin/busybox"],
        "root=/dev/vdz rootwait=1",
        Some("\n\n\n\n\n\n\n\necho RESCUE-$((6 * 7))\nbusybox poweroff -f\n"),
    );
    assert_has(&log, "baton: boot failed: root device /dev/vdz");
    assert_has(&log, "starting the rescue shell");
    assert_has(&log, "RESCUE-42");
}
