//! Hibernation through baton (`resume=`), booted for real on Debian's 6.1 kernel: the root's
//! init hibernates the VM to a swap disk, and the next boot, with `resume=` naming that disk
//! by UUID, comes back inside the very process that hibernated. Also: with nothing to resume
//! the boot goes on, `noresume` skips it, and a resume device that is not there costs a
//! warning, not the boot.

mod common;

use common::{assert_has, Boot};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SWAP_UUID: &str = "7d3c1b2a-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// The root's init: with `hibernate` on the command line it enables the swap disk and
/// hibernates; the line after the hibernation runs only in the resumed system. Without,
/// it reports a fresh boot. Either way it powers off.
const INIT: &str = r#"#!/bin/sh
bb=/bin/busybox
$bb mount -t proc proc /proc 2>/dev/null
if $bb grep -qw hibernate /proc/cmdline; then
    $bb swapon "$($bb findfs LABEL=batonswap)" || echo "BATON-SWAPON-FAILED"
    echo shutdown > /sys/power/disk
    echo "BATON-HIBERNATING pid=$$"
    if echo disk > /sys/power/state; then
        echo "BATON-RESUMED pid=$$"
    else
        echo "BATON-HIBERNATE-FAILED"
    fi
else
    echo "BATON-FRESH-BOOT pid=$$"
    # baton's timeline, written just after the exec by the process that empties the
    # initramfs.
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        [ -s /run/baton/timeline ] && break
        $bb sleep 0.25
    done
    $bb sed 's/^/BATON-TIMELINE /' /run/baton/timeline
fi
$bb dmesg | $bb grep -E 'baton: .*resum' | $bb sed 's/^/BATON-DMESG /'
$bb poweroff -f
"#;

fn root_disk() -> PathBuf {
    common::custom_disk("hibernate", |tree| {
        fs::write(tree.join("sbin/init"), INIT).unwrap();
    })
}

/// A fresh swap disk: hibernation writes into it, so every test makes its own.
fn swap_disk(name: &str) -> PathBuf {
    let path = common::work_dir().join(format!("{name}-swap.img"));
    let _ = fs::remove_file(&path);
    fs::File::create(&path).unwrap().set_len(160 << 20).unwrap();
    let out = Command::new("mkswap")
        .args(["-U", SWAP_UUID, "-L", "batonswap"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Boots with the swap disk written through (qemu/boot attaches its own disks
/// copy-on-write, and the image must outlive the VM that wrote it). The two virtio disks
/// are named by label: which is vda follows the order the driver binds them in, and with
/// virtio_pci and virtio_blk loading on two threads that order once came out swapped.
fn boot(k: &common::Kernel, name: &str, swap: &Path, append: &str) -> String {
    // btrfs as well: its init (and raid6_pq's, which times its algorithms) is slow, so
    // drivers are still loading when the resume device is found.
    let image = common::virtio_ext4_image(k, "resume-busy", &["--module", "btrfs"]);
    let (mut cmd, log) = Boot::new(k, image, root_disk(), append).command(name);
    let drive = format!("file={},format=raw,if=virtio", swap.display());
    // Two CPUs: the root search and the resume run beside the loading threads.
    let status = cmd
        .args(["--", "-smp", "2", "-drive", &drive])
        .status()
        .unwrap();
    assert!(status.success(), "qemu/boot failed for {name}");
    String::from_utf8_lossy(&fs::read(log).unwrap()).into_owned()
}

#[test]
fn hibernates_and_resumes_by_uuid() {
    let Some(k) = common::kernel() else { return };
    let swap = swap_disk("hibernate");
    let first = boot(&k, "hibernate-1", &swap, "root=LABEL=batonroot hibernate");
    assert_has(&first, "BATON-HIBERNATING");
    assert!(!first.contains("BATON-HIBERNATE-FAILED"), "{first}");
    // The image is on the disk: baton's probe sees it as blkid would, by its signature.
    let second = boot(
        &k,
        "hibernate-2",
        &swap,
        &format!("root=LABEL=batonroot resume=UUID={SWAP_UUID}"),
    );
    assert_has(
        &second,
        "holds a hibernation image; writing it to /sys/power/resume",
    );
    let first = common::without_cut_ins(&first);
    let hibernated = first
        .lines()
        .find_map(|l| l.strip_prefix("BATON-HIBERNATING "))
        .unwrap();
    assert_has(&second, &format!("BATON-RESUMED {hibernated}"));
    assert!(!second.contains("BATON-FRESH-BOOT"), "{second}");
}

#[test]
fn without_an_image_the_boot_goes_on() {
    let Some(k) = common::kernel() else { return };
    let swap = swap_disk("no-image");
    let log = boot(
        &k,
        "resume-none",
        &swap,
        "root=LABEL=batonroot resume=LABEL=batonswap",
    );
    assert_has(&log, "BATON-FRESH-BOOT");
    assert_has(&log, "resume: no hibernation image on /dev/vd");
    // No driver was still loading when the resume device was handed to the kernel.
    let timeline: Vec<Vec<&str>> = log
        .lines()
        .filter_map(|l| l.split("BATON-TIMELINE ").nth(1))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let field = |e: &Vec<&str>, i: usize| e.get(i).and_then(|f| f.parse::<u64>().ok());
    let resume_start = timeline
        .iter()
        .find(|e| e.get(3..5) == Some(&["phase", "resume"][..]))
        .and_then(|e| field(e, 0))
        .unwrap_or_else(|| panic!("no resume phase in the timeline: {log}"));
    for module in timeline.iter().filter(|e| e.get(3) == Some(&"module")) {
        assert!(
            field(module, 1).unwrap() <= resume_start,
            "{module:?} was still loading at the resume ({resume_start}): {log}"
        );
    }
    // noresume wins, wherever it stands.
    let log = boot(
        &k,
        "resume-noresume",
        &swap,
        "noresume root=LABEL=batonroot resume=LABEL=batonswap",
    );
    assert_has(&log, "BATON-FRESH-BOOT");
    assert!(!log.contains("baton: resume"), "{log}");
    // A resume device that never appears: a warning once coldplug has settled.
    let log = boot(
        &k,
        "resume-missing",
        &swap,
        "root=LABEL=batonroot resume=UUID=0000-0000",
    );
    assert_has(&log, "BATON-FRESH-BOOT");
    assert_has(&log, "resume device UUID=0000-0000 is not there");
}

/// A CI run's console: the kernel's record cut into the line the first boot's script
/// wrote, which held the pid the resumed boot must show.
#[test]
fn a_kernel_record_cut_into_a_line_is_taken_out() {
    let console = "BATON-HIBERNATING pid=1[   12.204826] PM: hibernation: hibernation entry\n\
                   \n\
                   [   12.3] not a record: no microseconds\n\
                   BATON-DMESG [    1.000000] baton: stays whole\n\
                   \n\
                   BATON-R[    0.100000] a: b\n\
                   [    0.200000] c: d\n\
                   ESUMED pid=1\n";
    let clean = common::without_cut_ins(console);
    let lines: Vec<&str> = clean.lines().collect();
    assert_eq!(
        lines,
        [
            "[   12.204826] PM: hibernation: hibernation entry",
            "BATON-HIBERNATING pid=1",
            "[   12.3] not a record: no microseconds",
            "BATON-DMESG [    1.000000] baton: stays whole",
            "",
            "[    0.100000] a: b",
            "[    0.200000] c: d",
            "BATON-RESUMED pid=1",
        ]
    );
}
