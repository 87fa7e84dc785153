//! Real boots: Debian's kernel under qemu (TCG), an image built by `baton build`, a busybox
//! root disk whose /sbin/init prints a marker line. Every verdict comes from the console.
//! Needs BATON_KERNEL (a directory from qemu/fetch-kernel); scripts/test provides it. The
//! ways of finding the root (UUID=, buses, hot-plug) are in tests/boot_root.rs.

mod common;

use common::{assert_has, marker, plain_disk, virtio_ext4_image, Boot, Kernel};
use std::fs;
use std::process::Command;

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
        // After the exec, by the process baton left for it (the test root's init waits
        // for the timeline, which that process writes last).
        "baton: freed the initramfs: ",
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
    timeline_is_readable(&log);
}

/// The timeline the init left in /run/baton (the marker init prints it) reads back with
/// `baton timeline`, as a table and an SVG; so does the console log itself.
fn timeline_is_readable(log: &str) {
    let file: String = log
        .lines()
        .filter_map(|l| l.strip_prefix("BATON-TIMELINE "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(file.starts_with("# baton timeline 1\n"), "{log}");
    let dir = common::work_dir();
    fs::write(dir.join("timeline"), &file).unwrap();
    fs::write(dir.join("console.log"), log).unwrap();
    let baton = env!("CARGO_BIN_EXE_baton");
    let out = Command::new(baton)
        .arg("timeline")
        .arg(dir.join("timeline"))
        .arg("--svg")
        .arg(dir.join("timeline.svg"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "mounts",
        "manifest",
        "root_search",
        "root_mount",
        "switch",
        "-- exec",
    ] {
        assert!(table.contains(row), "{row} missing:\n{table}");
    }
    // One CPU: modules load in PID 1's own thread (no thread number).
    assert!(table.contains("         module ext4"), "{table}");
    let svg = fs::read_to_string(dir.join("timeline.svg")).unwrap();
    assert!(svg.contains("<title>module ext4:"), "{svg}");
    assert!(svg.contains(">module, PID 1's thread<"), "{svg}");
    assert_has(log, "baton: timeline: mounts ");
    let out = Command::new(baton)
        .arg("timeline")
        .arg(dir.join("console.log"))
        .arg("--svg")
        .arg(dir.join("console.svg"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("module ext4") && table.contains("-- exec"),
        "{table}"
    );
    // The kernel's milestones on the same axis: it ran /init, and the real init's first line.
    assert!(
        table.contains("-- Run /init") && table.contains("-- baton-marker[1]"),
        "{table}"
    );
    let svg = fs::read_to_string(dir.join("console.svg")).unwrap();
    assert!(svg.contains(">Run /init<") && svg.contains(" ms<"), "{svg}");
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

/// On two CPUs the generic image's modules load on two threads: the boot reaches the real
/// init, and the timeline shows both threads at work.
#[test]
fn loads_modules_on_every_cpu() {
    let Some(k) = kernel() else { return };
    let image = common::storage_image(&k);
    let (mut cmd, log) = Boot::new(&k, image, plain_disk(), "root=LABEL=batonroot").command("smp2");
    let status = cmd.args(["--", "-smp", "2"]).status().unwrap();
    assert!(status.success(), "qemu/boot failed");
    let log = String::from_utf8_lossy(&fs::read(log).unwrap()).into_owned();
    assert!(marker(&log).contains("root=[/dev/vda ext4 ro"), "{log}");
    assert_has(&log, "of loading on 2 threads");
    // A process empties the initramfs once the real init runs (tests/switch_namespace.rs
    // checks what it leaves).
    assert_has(&log, "s after boot; process ");
    assert_has(&log, "baton: freed the initramfs: ");
    let lanes: std::collections::BTreeSet<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("BATON-TIMELINE "))
        .filter(|l| l.split(' ').nth(3) == Some("module"))
        .filter_map(|l| l.split(' ').nth(2))
        .collect();
    assert_eq!(lanes.into_iter().collect::<Vec<_>>(), ["1", "2"], "{log}");
}

/// An uncompressed archive appended to an lz4 image (`cat baton.img more.cpio`) is read:
/// its `/etc/baton/cmdline` names another init. The kernel takes the archive only at a
/// multiple of 4 bytes, which the lz4 stream's padding gives it whatever its length.
#[test]
fn an_archive_appended_to_an_lz4_image_is_read_on_6_12() {
    let Some(k) = common::kernel_new() else {
        return;
    };
    let image = common::virtio_ext4_image(&k, "lz4", &["--compress", "lz4"]);
    let image = common::with_appended(
        &image,
        "appended-cmdline",
        &[common::Extra::File(
            "etc/baton/cmdline",
            b"init=/sbin/other-init\n",
        )],
    );
    let log = Boot::new(&k, image, plain_disk(), "root=/dev/vda").run("appended-6.12");
    assert!(marker(&log).contains("init=/sbin/other-init "), "{log}");
}
