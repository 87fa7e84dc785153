//! Every way a boot can go wrong, booted for real (Debian's 6.1 kernel under qemu): each
//! prints one line naming the cause and what to change, then does what `rd.emergency=`
//! says, or the documented default (the rescue shell when the image has one, else halt).
//! Also the break points (`rd.break`), `rd.shell=0`, and the kernel settings the real init
//! finds after a failed first attempt.

mod common;

use common::{
    assert_action, assert_has, custom_disk, disk, marker, patched_disk, plain_disk,
    virtio_ext4_image, with_appended, without_cut_ins, Boot, Extra, Kernel,
};
use std::fs;

fn kernel() -> Option<Kernel> {
    common::kernel()
}

/// The busybox rescue shell, typed at from the serial console. Empty lines first: the
/// serial line may drop what is typed before the shell reads.
const SHELL: &[&str] = &["--shell", "/bin/busybox"];

fn typed(commands: &str) -> String {
    format!("\n\n\n\n\n\n\n\n{commands}")
}

#[test]
fn no_root_on_the_command_line() {
    let Some(k) = kernel() else { return };
    let image = virtio_ext4_image(&k, "plain", &[]);
    let log = Boot::new(&k, image, plain_disk(), "rd.emergency=poweroff").run("no-root");
    assert_has(
        &log,
        "baton: boot failed: no root= on the kernel command line: nothing to boot (add root=/dev/NAME, root=UUID=... or root=LABEL=...)",
    );
    assert_action(&log, "poweroff");
}

#[test]
fn wrong_rootfstype() {
    let Some(k) = kernel() else { return };
    let image = virtio_ext4_image(&k, "with-xfs", &["--module", "xfs"]);
    let log = Boot::new(
        &k,
        image,
        plain_disk(),
        "root=/dev/vda rootfstype=xfs rd.emergency=reboot",
    )
    .run("wrong-rootfstype");
    assert_has(
        &log,
        "baton: boot failed: failed to mount root /dev/vda on /sysroot: xfs: Invalid argument: the device holds ext4, not xfs; fix rootfstype= or leave it out",
    );
    assert_action(&log, "reboot");
}

#[test]
fn filesystem_driver_missing_from_the_image() {
    let Some(k) = kernel() else { return };
    let image = common::image(
        &k,
        "no-ext4",
        &["--module", "virtio_pci", "--module", "virtio_blk"],
    );
    let log = Boot::new(
        &k,
        image,
        plain_disk(),
        "root=/dev/vda rd.emergency=poweroff",
    )
    .run("no-ext4");
    assert_has(
        &log,
        "ext4: No such device: the kernel has no ext4 driver; add it to the image (baton build --module ext4, or --storage)",
    );
    assert_action(&log, "poweroff");
}

#[test]
fn corrupt_superblock_halts_by_default_without_a_shell() {
    let Some(k) = kernel() else { return };
    // s_log_block_size (superblock offset 24) of 255: the magic is intact, so the probe
    // says ext4, and the kernel refuses the geometry.
    let disk = patched_disk("bad-block-size", &plain_disk(), 1024 + 24, &[0xFF, 0, 0, 0]);
    let image = virtio_ext4_image(&k, "plain", &[]);
    let mut boot = Boot::new(&k, image, disk, "root=/dev/vda");
    // Halting keeps qemu running: give it the time to get there, no more.
    boot.timeout = 30;
    let log = boot.run("corrupt-superblock");
    assert_has(
        &log,
        "baton: boot failed: failed to mount root /dev/vda on /sysroot: ext4: Invalid argument: the filesystem looks damaged; check and repair it (fsck.ext4) from another system or the rescue shell (the kernel said: EXT4-fs (vda):",
    );
    assert_action(&log, "halt");
}

#[test]
fn init_not_executable_falls_back_with_a_warning() {
    let Some(k) = kernel() else { return };
    let image = virtio_ext4_image(&k, "plain", &[]);
    let log = Boot::new(&k, image, plain_disk(), "root=/dev/vda init=/etc/issue")
        .run("init-not-executable");
    assert_has(
        &log,
        "init=/etc/issue cannot be run from the new root (not executable); falling back to /sbin/init",
    );
    assert!(marker(&log).contains("init=/sbin/init pid=1 "), "{log}");
}

#[test]
fn no_init_at_all() {
    let Some(k) = kernel() else { return };
    let disk = custom_disk("no-init", |tree| {
        for init in ["sbin/init", "sbin/other-init", "bin/sh"] {
            fs::remove_file(tree.join(init)).unwrap();
        }
    });
    let image = virtio_ext4_image(&k, "plain", &[]);
    let log = Boot::new(&k, image, disk, "root=/dev/vda rd.emergency=poweroff").run("no-init");
    assert_has(
        &log,
        "baton: boot failed: no init to run in the new root /sysroot (tried /sbin/init: No such file or directory; /etc/init: No such file or directory; /bin/init: No such file or directory; /bin/sh: No such file or directory); pass init=PATH",
    );
    assert_action(&log, "poweroff");
}

#[test]
fn new_root_without_dev_or_proc() {
    let Some(k) = kernel() else { return };
    let image = virtio_ext4_image(&k, "plain", &[]);
    for missing in ["dev", "proc"] {
        let disk = custom_disk(&format!("no-{missing}"), |tree| {
            fs::remove_dir(tree.join(missing)).unwrap();
        });
        let log = Boot::new(
            &k,
            image.clone(),
            disk,
            "root=/dev/vda rd.emergency=poweroff",
        )
        .run(&format!("no-{missing}"));
        assert_has(
            &log,
            &format!("baton: boot failed: the new root /sysroot has no /{missing} directory, which the real init needs (for its console and the kernel's API filesystems): create it in the root filesystem (mkdir /{missing})"),
        );
        assert_action(&log, "poweroff");
    }
}

#[test]
fn corrupt_manifest_opens_the_image_shell_by_default() {
    let Some(k) = kernel() else { return };
    let image = virtio_ext4_image(&k, "shell", SHELL);
    let image = with_appended(
        &image,
        "corrupt-manifest",
        &[Extra::File(
            "etc/baton/manifest",
            b"baton-manifest 1\nmodule broken\nshell /bin/sh\n",
        )],
    );
    let mut boot = Boot::new(&k, image, plain_disk(), "root=/dev/vda");
    let input = typed("echo RESCUE-$((6 * 7))\nbusybox poweroff -f\n");
    boot.input = Some(&input);
    let log = boot.run("corrupt-manifest");
    assert_has(
        &log,
        "baton: boot failed: failed to read /etc/baton/manifest: manifest line 2: cannot read \"module broken\"; the image is damaged or was not written by this baton: rebuild it with `baton build`",
    );
    assert_has(&log, "starting the rescue shell");
    assert_has(&log, "RESCUE-42");
}

#[test]
fn unreadable_manifest_still_finds_the_shell() {
    let Some(k) = kernel() else { return };
    let image = virtio_ext4_image(&k, "shell", SHELL);
    let image = with_appended(
        &image,
        "unreadable-manifest",
        &[Extra::Dir("etc/baton/manifest")],
    );
    let mut boot = Boot::new(&k, image, plain_disk(), "root=/dev/vda");
    let input = typed("echo RESCUE-$((6 * 7))\nbusybox poweroff -f\n");
    boot.input = Some(&input);
    let log = boot.run("unreadable-manifest");
    assert_has(
        &log,
        "baton: boot failed: failed to read /etc/baton/manifest: Is a directory",
    );
    assert_has(&log, "starting the rescue shell");
    assert_has(&log, "RESCUE-42");
}

#[test]
fn failed_early_mount_honours_rd_emergency() {
    let Some(k) = kernel() else { return };
    // /sys as a file: sysfs cannot be mounted there, but /proc (and so the command line) is.
    let image = virtio_ext4_image(&k, "shell", SHELL);
    let image = with_appended(&image, "sys-is-a-file", &[Extra::File("sys", b"")]);
    let log = Boot::new(
        &k,
        image,
        plain_disk(),
        "root=/dev/vda rd.emergency=poweroff",
    )
    .run("early-mount");
    assert_has(
        &log,
        "baton: boot failed: failed to mount sysfs on /sys: ENOTDIR: Not a directory",
    );
    assert_action(&log, "poweroff");
}

#[test]
fn a_module_for_another_kernel_is_named_and_the_boot_goes_on() {
    let (Some(k), Some(new)) = (kernel(), common::kernel_new()) else {
        return;
    };
    // crc7 from 6.12 where 6.1's belongs: the kernel refuses its version.
    let foreign = new.modules.join("kernel/lib/crc7.ko.xz");
    let bytes = std::process::Command::new("xz")
        .arg("-dc")
        .arg(&foreign)
        .output()
        .unwrap()
        .stdout;
    assert!(
        !bytes.is_empty(),
        "{} did not decompress",
        foreign.display()
    );
    let replacement = common::work_dir().join("crc7-6.12.ko");
    fs::write(&replacement, bytes).unwrap();
    let release = k
        .modules
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let include = format!(
        "{}:/lib/modules/{release}/kernel/lib/crc7.ko",
        replacement.display()
    );
    let image = virtio_ext4_image(
        &k,
        "foreign-module",
        &["--module", "crc7", "--include", &include],
    );
    let log = Boot::new(&k, image, plain_disk(), "root=/dev/vda").run("foreign-module");
    assert_has(
        &log,
        "failed to load module crc7: ENOEXEC: Exec format error: it is not a module for this kernel (built for another version, or damaged); rebuild the image from this kernel's own modules",
    );
    marker(&log);
}

#[test]
fn command_line_at_the_size_limit_with_an_unbalanced_quote() {
    let Some(k) = kernel() else { return };
    let image = virtio_ext4_image(&k, "plain", &[]);
    // qemu/boot puts its own words first; the kernel's limit is 2,048 bytes with the NUL.
    let prefix = "console=ttyS0 panic=-1 printk.time=1 ";
    let mut append = String::from("root=/dev/vda rd.emergency=poweroff ");
    while prefix.len() + append.len() < 2000 {
        append.push_str("pad=xxxxxxxx ");
    }
    append.push_str("note=\"an unterminated value ");
    while prefix.len() + append.len() < 2047 {
        append.push('y');
    }
    assert_eq!(prefix.len() + append.len(), 2047);
    let log = Boot::new(&k, image, plain_disk(), &append).run("long-cmdline");
    assert_has(
        &log,
        "the command line has an unbalanced double quote: everything after it was read as one word",
    );
    marker(&log);
}

#[test]
fn console_that_does_not_exist_is_named() {
    let Some(k) = kernel() else { return };
    let image = virtio_ext4_image(&k, "plain", &[]);
    let log = Boot::new(
        &k,
        image,
        plain_disk(),
        "root=/dev/vda console=ttyS9,115200",
    )
    .run("no-such-console");
    assert_has(
        &log,
        "console=ttyS9,115200 names no console this kernel has (it has: ttyS0); fix console=",
    );
    marker(&log);
}

#[test]
fn vfat_root_from_an_image_with_only_vfat() {
    let Some(k) = kernel() else { return };
    // FAT asks for its codepage and iocharset tables when it mounts: they must come with it.
    let disk = disk(
        "gpt-vfat",
        &["--table", "gpt", "--fs", "vfat", "--label", "BATONROOT"],
    );
    let image = common::image(
        &k,
        "only-vfat",
        &[
            "--module",
            "virtio_pci",
            "--module",
            "virtio_blk",
            "--module",
            "vfat",
        ],
    );
    let log = Boot::new(&k, image, disk, "root=LABEL=BATONROOT").run("only-vfat");
    assert!(marker(&log).contains("/dev/vda2 vfat ro"), "{log}");
}

#[test]
fn settings_are_the_kernels_own_after_a_failed_first_attempt() {
    let Some(k) = kernel() else { return };
    // The first attempt fails (no /dev/vdz); in the shell the root is mounted by hand; the
    // second attempt uses it. The real init must see the kernel's own settings.
    let image = virtio_ext4_image(&k, "shell", SHELL);
    let mut boot = Boot::new(&k, image, plain_disk(), "root=/dev/vdz rootwait=1");
    let input = typed("busybox mount -t ext4 -o ro /dev/vda /sysroot\nexit\n");
    boot.input = Some(&input);
    let log = boot.run("retry-settings");
    assert_has(
        &log,
        "baton: boot failed: root device /dev/vdz did not appear",
    );
    assert_has(&log, "/sysroot is already mounted, using it");
    marker(&log);
    assert_has(
        &log,
        "BATON-SYSCTL modprobe=/sbin/modprobe devkmsg=ratelimit",
    );
}

#[test]
fn break_points_stop_for_a_shell_and_the_boot_goes_on() {
    let Some(k) = kernel() else { return };
    let image = virtio_ext4_image(&k, "shell", SHELL);
    // One boot per point: a shell reads ahead what is typed, so the next shell would find
    // nothing left. In the shell: whether /sysroot is mounted yet, and the shell's
    // controlling terminal (field 7 of /proc/PID/stat: ttyS0 is 4:64, so 1088).
    // Said three times: under load the serial line can drop characters of the first line
    // the shell reads (a loaded CI machine did), and one clean answer is enough.
    let probe = "echo AT-$(busybox grep -c sysroot /proc/mounts)-TTY-$(busybox cut -d' ' -f7 /proc/$$/stat)\n";
    let input = typed(&format!("{}exit\nexit\n", probe.repeat(3)));
    // The last at four CPUs: at `mount` drivers may still be loading on other threads
    // while PID 1 forks the shell, which must reach its exec whatever locks they hold.
    for (word, point, mounted, cpus) in [
        ("rd.break=pre-mount", "pre-mount", 0, 1),
        ("rd.break=mount", "mount", 0, 1),
        ("rd.break", "pre-switch", 1, 1),
        ("rd.break=mount", "mount", 0, 4),
    ] {
        let mut boot = Boot::new(
            &k,
            image.clone(),
            plain_disk(),
            &format!("root=/dev/vda {word}"),
        );
        boot.input = Some(&input);
        boot.qemu = vec!["-smp".into(), cpus.to_string()];
        let log = boot.run(&format!("break-{point}-smp{cpus}"));
        assert_has(
            &log,
            &format!("baton: rd.break={point}: starting a shell; exit it to go on with the boot"),
        );
        // The terminal echoes what was typed: only the shell's answer starts with a digit.
        let answer = without_cut_ins(&log);
        let answer = answer
            .lines()
            .filter_map(|l| l.split("AT-").nth(1))
            .find(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
        assert_eq!(
            answer,
            Some(format!("{mounted}-TTY-1088").as_str()),
            "{log}"
        );
        assert!(marker(&log).contains("init=/sbin/init pid=1 "), "{log}");
    }
}

#[test]
fn rd_shell_0_forbids_the_shell_on_failure() {
    let Some(k) = kernel() else { return };
    let image = virtio_ext4_image(&k, "shell", SHELL);
    let mut boot = Boot::new(
        &k,
        image,
        plain_disk(),
        "root=/dev/vdz rootwait=1 rd.emergency=shell rd.shell=0",
    );
    boot.timeout = 30;
    let log = boot.run("rd-shell-0");
    assert_has(
        &log,
        "rd.emergency=shell, but rd.shell=0 forbids the shell: halting",
    );
    assert!(!log.contains("starting the rescue shell"), "{log}");
    assert_action(&log, "halt");
}

/// Past the switch a console that cannot be opened is a warning: the real init still runs,
/// as the kernel starts one without a console. Here the shell at `rd.break` mounts an empty
/// tmpfs on the new root's /dev, so the switch detaches ours and the new /dev has no
/// console node.
#[test]
fn a_missing_console_after_the_switch_does_not_stop_the_boot() {
    let Some(k) = kernel() else { return };
    let image = virtio_ext4_image(&k, "shell", SHELL);
    let input = typed("busybox mount -t tmpfs none /sysroot/dev\nexit\n");
    let mut boot = Boot::new(&k, image, plain_disk(), "root=/dev/vda rd.break");
    boot.input = Some(&input);
    let log = boot.run("no-console-after-switch");
    assert_has(&log, "failed to open /dev/console");
    assert!(marker(&log).contains("init=/sbin/init pid=1 "), "{log}");
}
