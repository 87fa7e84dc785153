//! Real boots: Debian's kernel under qemu (TCG), an image built by `baton build`, a busybox
//! root disk whose /sbin/init prints a marker line. Every verdict comes from the console.
//! Needs BATON_KERNEL (a directory from qemu/fetch-kernel); scripts/test provides it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

struct Lab {
    kernel: PathBuf,
    modules: PathBuf,
    disk: PathBuf,
    dir: PathBuf,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn lab() -> Option<&'static Lab> {
    static LAB: OnceLock<Option<Lab>> = OnceLock::new();
    LAB.get_or_init(|| {
        let kernel = common::kernel_dir()?;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("boot");
        fs::create_dir_all(&dir).unwrap();
        let disk = dir.join("root.img");
        let status = Command::new(repo().join("qemu/make-rootfs"))
            .arg(&disk)
            .status()
            .unwrap();
        assert!(status.success(), "qemu/make-rootfs failed");
        Some(Lab {
            modules: common::modules_dir(&kernel),
            kernel,
            disk,
            dir,
        })
    })
    .as_ref()
}

/// Builds an image with the modules an ext4 root on virtio-blk needs.
fn image(lab: &Lab, name: &str, extra: &[&str]) -> PathBuf {
    let out = lab.dir.join(format!("{name}.img"));
    let result = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["build", "-o"])
        .arg(&out)
        .arg("--modules-dir")
        .arg(&lab.modules)
        .args([
            "--module",
            "virtio_pci",
            "--module",
            "virtio_blk",
            "--module",
            "ext4",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// Boots and returns the console log.
fn boot(lab: &Lab, name: &str, image: &Path, append: &str, input: Option<&str>) -> String {
    let log = lab.dir.join(format!("{name}.log"));
    let mut cmd = Command::new(repo().join("qemu/boot"));
    cmd.arg("--kernel")
        .arg(&lab.kernel)
        .arg("--initrd")
        .arg(image)
        .arg("--disk")
        .arg(&lab.disk)
        .args(["--append", append, "--timeout", "90", "--log"])
        .arg(&log);
    if let Some(text) = input {
        let input_file = lab.dir.join(format!("{name}.input"));
        fs::write(&input_file, text).unwrap();
        cmd.arg("--input").arg(&input_file);
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "qemu/boot failed for {name}");
    String::from_utf8_lossy(&fs::read(&log).unwrap()).into_owned()
}

/// The marker line the real root's /sbin/init printed, or a failure showing the console.
fn marker(log: &str) -> &str {
    match log.lines().find(|l| l.starts_with("BATON-MARKER")) {
        Some(line) => line,
        None => panic!("the real root's init never ran; console:\n{log}"),
    }
}

fn assert_has(log: &str, needle: &str) {
    assert!(
        log.contains(needle),
        "{needle:?} not on the console:\n{log}"
    );
}

#[test]
fn boots_read_only_by_default_and_logs_to_dmesg() {
    let Some(lab) = lab() else { return };
    let img = image(lab, "default", &[]);
    let log = boot(lab, "default", &img, "root=/dev/vda", None);
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
}

#[test]
fn boots_read_write_with_rw() {
    let Some(lab) = lab() else { return };
    let img = image(lab, "rw", &[]);
    let log = boot(lab, "rw", &img, "root=/dev/vda rw", None);
    let line = marker(&log);
    assert!(line.contains("root=[/dev/vda ext4 rw,"), "{line}");
}

#[test]
fn runs_init_with_the_arguments_after_dashes() {
    let Some(lab) = lab() else { return };
    let img = image(lab, "args", &[]);
    let log = boot(
        lab,
        "args",
        &img,
        r#"root=/dev/vda init=/sbin/other-init -- first "second word" k=v"#,
        None,
    );
    let line = marker(&log);
    assert!(line.contains("init=/sbin/other-init pid=1 "), "{line}");
    assert!(line.ends_with("args=[first][second word][k=v]"), "{line}");
}

#[test]
fn missing_init_falls_back_to_sbin_init() {
    let Some(lab) = lab() else { return };
    let img = image(lab, "fallback", &[]);
    let log = boot(
        lab,
        "fallback",
        &img,
        "root=/dev/vda init=/sbin/not-here",
        None,
    );
    let line = marker(&log);
    assert!(line.contains("init=/sbin/init pid=1 "), "{line}");
    assert_has(&log, "init=/sbin/not-here cannot be run from the new root");
}

fn boots_with(compression: &str) {
    let Some(lab) = lab() else { return };
    let img = image(lab, compression, &["--compress", compression]);
    let log = boot(lab, compression, &img, "root=/dev/vda", None);
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
    let Some(lab) = lab() else { return };
    let img = image(lab, "noroot", &[]);
    let log = boot(
        lab,
        "noroot",
        &img,
        "root=/dev/vdz rootwait=1 rd.emergency=poweroff",
        None,
    );
    assert_has(
        &log,
        "baton: boot failed: root device /dev/vdz did not appear within 1 s",
    );
    assert_has(&log, "block devices present: vda");
    assert_has(&log, "reboot: Power down");
    assert!(!log.contains("Kernel panic"), "{log}");
    assert!(!log.contains("BATON-MARKER"), "{log}");
}

#[test]
fn rescue_shell_runs_on_the_console() {
    let Some(lab) = lab() else { return };
    let img = image(lab, "shell", &["--shell", "/bin/busybox"]);
    // The shell reads what is typed on the serial console; the arithmetic proves it ran the
    // command rather than the terminal echoing it. Empty lines first: the serial line may
    // drop the first characters typed before the shell reads.
    let log = boot(
        lab,
        "shell",
        &img,
        "root=/dev/vdz rootwait=1",
        Some("\n\n\n\n\n\n\n\necho RESCUE-$((6 * 7))\nbusybox poweroff -f\n"),
    );
    assert_has(&log, "baton: boot failed: root device /dev/vdz");
    assert_has(&log, "starting the rescue shell");
    assert_has(&log, "RESCUE-42");
}
