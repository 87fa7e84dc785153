//! The proof on a real Debian install with its root on LVM, laid out as the installer's
//! "Guided - use entire disk and set up LVM" does: /boot on a plain partition, `/` and swap
//! on LVs of VG baton-bookworm-vg, the fstab naming them by /dev/mapper path, lvm2 installed.
//! baton's package, installed with apt, checks that root and writes the image; the system
//! boots through it (root= as GRUB writes it) to systemd's default target with no failed
//! unit, and in the booted system lvm2 sees the LVs active and udev has adopted the devices
//! baton made (no second activation, nothing systemd waits for twice). The same again with
//! the PV on a RAID1 of two disks, mdadm installed with the installer's mdadm.conf.
//!
//! The LVM disk is made with the real lvm2 in a VM (qemu/in-stack-vm): this machine has no
//! device-mapper. Needs root and BATON_KERNEL; skipped without them, a failure under
//! BATON_REQUIRE_ROOT_TESTS=1.

mod common;

use common::assert_has;
use common::debian::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const VG_ROOT: &str = "/dev/mapper/baton--bookworm--vg-root";
const BOOT_UUID: &str = "b4705e7d-de12-4c0d-9b1e-00000000b007";

/// What the booted system says of its storage, written for baton-report.service to print
/// with its own report (a line written to the console from here can be lost when the
/// serial getty starts and hangs the line up meanwhile, as a loaded machine showed).
const STACK_REPORT: &str = r#"#!/bin/sh
udevadm settle
{
    lvs --noheadings -o vg_name,lv_name,lv_active 2>&1 | sed 's/^ */BATON-LVS /'
    dmsetup info -c --noheadings -o name,devno 2>&1 | sed 's/^/BATON-DM /'
    udevadm info --query=property --name=/dev/mapper/baton--bookworm--vg-root |
        grep -E '^(DM_UDEV_PRIMARY_SOURCE_FLAG|DM_NAME|SYSTEMD_READY)=' | sed 's/^/BATON-UDEV /'
    sed 's/^/BATON-SWAPS /' /proc/swaps
    [ ! -e /proc/mdstat ] || sed 's/^/BATON-MDSTAT /' /proc/mdstat
    echo "BATON-BOOT $(findmnt -n -o SOURCE,FSTYPE /boot)"
    journalctl -b --no-pager -o short-monotonic >/run/baton-journal.txt 2>&1
    echo "BATON-JOURNALCTL status=$?"
    grep -E ' lvm\[| lvm-activate|vgchange' /run/baton-journal.txt | head -n 20 |
        sed 's/^/BATON-LVMLOG /'
    if [ -s /etc/crypttab ]; then
        systemctl is-active systemd-cryptsetup@vda2_crypt.service | sed 's/^/BATON-CRYPTUNIT /'
        cryptsetup status vda2_crypt 2>&1 | sed 's/^/BATON-CRYPTSTATUS /'
        grep -E 'systemd-cryptsetup\[' /run/baton-journal.txt | head -n 10 | sed 's/^/BATON-CRYPTLOG /'
    fi
} >/run/baton-stack.txt 2>&1
exit 0
"#;

const STACK_REPORT_UNIT: &str = "[Unit]
Description=Report the storage stack on the serial console
After=multi-user.target
Before=baton-report.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/baton-stack-report

[Install]
WantedBy=multi-user.target
";

/// The disks: a DOS label with /boot (ext4 from `boot_img`) as partition 1 and the rest as
/// partition 2, which the VM makes the PV holding `root_img`'s filesystem and swap; with
/// `raid`, a second disk laid out alike, partition 2 of each a RAID1 member and the array
/// the PV.
fn lvm_disks(dir: &Path, boot_img: &Path, root_img: &Path, layout: Layout) -> Vec<PathBuf> {
    let mut disks = vec![partitioned(dir, "disk-a.img", boot_img, root_img, true)];
    if layout == Layout::RaidLvm {
        // The second disk's first partition stays empty: one /boot, as its UUID says.
        disks.push(partitioned(dir, "disk-b.img", boot_img, root_img, false));
    }
    // The encrypted layout: the same script, told so by its environment.
    let script = dir.join("lvm-install-disk.sh");
    let text = fs::read_to_string(common::repo().join("qemu/lvm-install-disk.sh")).unwrap();
    let export = match layout {
        Layout::LuksLvm => "export BATON_LAYOUT=luks\n",
        _ => "",
    };
    fs::write(
        &script,
        text.replacen(
            "set -euo pipefail\n",
            &format!("set -euo pipefail\n{export}"),
            1,
        ),
    )
    .unwrap();
    // The encrypted layout writes the whole root through dm-crypt with the generic AES
    // (137 s in the VM on an idle machine): beside the other lane's VMs on two cores it
    // outlasted in-stack-vm's default 300 s on a fresh machine. A bound, not a budget.
    let made = Command::new(common::repo().join("qemu/in-stack-vm"))
        .args(["--timeout", "900", "--out"])
        .arg(dir.join("vm"))
        .arg(&script)
        .args(&disks)
        .arg(root_img)
        .status()
        .unwrap();
    assert!(
        made.success(),
        "qemu/in-stack-vm lvm-install-disk.sh failed"
    );
    disks
}

/// One disk: partition 1 the size of `boot_img` (holding it, with `with_boot`), room for
/// `root_img`, swap and lvm2's metadata on 2.
fn partitioned(
    dir: &Path,
    name: &str,
    boot_img: &Path,
    root_img: &Path,
    with_boot: bool,
) -> PathBuf {
    let mib = |p: &Path| fs::metadata(p).unwrap().len().div_ceil(1 << 20);
    let boot_mib = mib(boot_img);
    let disk = dir.join(name);
    let _ = fs::remove_file(&disk);
    // Room for swap (64 MiB), lvm2's metadata and a LUKS2 header (16 MiB) on partition 2.
    let total = 1 + boot_mib + mib(root_img) + 64 + 40;
    fs::File::create(&disk)
        .unwrap()
        .set_len(total << 20)
        .unwrap();
    let layout = format!(
        "label: dos\nstart=2048, size={}, type=83, bootable\nstart={}, type=8e\n",
        boot_mib * 2048,
        2048 + boot_mib * 2048
    );
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q"])
        .arg(&disk)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(layout.as_bytes())
        .unwrap();
    assert!(sfdisk.wait().unwrap().success(), "sfdisk failed");
    if !with_boot {
        return disk;
    }
    let copied = Command::new("dd")
        .arg(format!("if={}", boot_img.display()))
        .arg(format!("of={}", disk.display()))
        .args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"])
        .status()
        .unwrap();
    assert!(copied.success(), "dd of /boot failed");
    disk
}

fn lines<'a>(log: &'a str, tag: &str) -> Vec<&'a str> {
    log.lines()
        .filter_map(|l| l.find(tag).map(|i| l[i + tag.len()..].trim()))
        .collect()
}

/// How the installer laid out the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Lvm,
    RaidLvm,
    LuksLvm,
}

#[test]
fn guided_lvm_install_boots_through_batons_image() {
    if can_run() {
        install_and_boot("debian-lvm", Layout::Lvm);
    }
}

/// "Guided - use entire disk and set up encrypted LVM": the PV inside a LUKS2 volume on
/// partition 2 (cryptsetup's defaults), crypttab naming it as the installer does,
/// cryptsetup installed. The image carries that crypttab line; baton asks once on the
/// serial console, and in the booted system systemd-cryptsetup finds the volume active
/// (no second prompt, its unit active) and cryptsetup calls it its own.
#[test]
fn encrypted_lvm_install_boots_with_one_prompt() {
    if can_run() {
        install_and_boot("debian-luks-lvm", Layout::LuksLvm);
    }
}

/// The installer's other common server layout: a RAID1 of two disks' second partitions,
/// LVM on the array, mdadm installed with the mdadm.conf the installer writes. The image
/// carries that mdadm.conf, names the array /dev/md0 as it says, and mdadm in the booted
/// system finds it active.
#[test]
fn raid1_lvm_install_boots_through_batons_image() {
    if can_run() {
        install_and_boot("debian-raid-lvm", Layout::RaidLvm);
    }
}

/// The mdadm.conf Debian's installer writes for the array (mdadm --detail --scan).
const MDADM_CONF: &str = "HOMEHOST <system>
MAILADDR root
ARRAY /dev/md/0 metadata=1.2 UUID=ba7000ba:00000000:00000000:00000001 name=baton-bookworm:0
";

/// The crypttab Debian's installer writes for the encrypted layout.
const CRYPTTAB: &str = "vda2_crypt UUID=7a2c0b1e-5555-4000-8000-000000000001 none luks,discard\n";
const PASSPHRASE: &str = "baton-test-passphrase";

fn install_and_boot(name: &str, layout: Layout) {
    let raid = layout == Layout::RaidLvm;
    let tree = tree();
    let kver = tree.get("kernel").to_owned();
    let root = scratch(name);
    let dir = root.parent().unwrap().to_path_buf();

    // The installer's layout and lvm2, then baton: its postinst checks this root.
    fs::write(
        root.join("etc/fstab"),
        format!(
            "{VG_ROOT} / ext4 errors=remount-ro 0 1\n\
             UUID={BOOT_UUID} /boot ext4 defaults 0 2\n\
             /dev/mapper/baton--bookworm--vg-swap_1 none swap sw 0 0\n"
        ),
    )
    .unwrap();
    let deb = copy_package(&root);
    let packages = match layout {
        Layout::RaidLvm => {
            fs::create_dir_all(root.join("etc/mdadm")).unwrap();
            fs::write(root.join("etc/mdadm/mdadm.conf"), MDADM_CONF).unwrap();
            "lvm2 mdadm"
        }
        Layout::LuksLvm => {
            fs::write(root.join("etc/crypttab"), CRYPTTAB).unwrap();
            "lvm2 cryptsetup-bin"
        }
        Layout::Lvm => "lvm2",
    };
    let out = apt(&root, &format!("install -y {packages} {deb}"));
    assert_eq!(dpkg_state(&root, "baton"), "ii", "{out}");
    assert_has(&out, &format!("baton: wrote the image for {kver}"));
    let check = in_tree(&root, &[], &format!("baton check -k {kver}"));
    assert_has(
        &check,
        "ok   LVM logical volume baton-bookworm-vg/root: baton assembles it",
    );
    if layout == Layout::LuksLvm {
        let listing = in_tree(
            &root,
            &[],
            &format!("baton inspect /boot/initrd.img-{kver}"),
        );
        assert_has(&listing, "etc/crypttab");
    }

    fs::write(root.join("usr/local/sbin/baton-stack-report"), STACK_REPORT).unwrap();
    Command::new("chmod")
        .arg("0755")
        .arg(root.join("usr/local/sbin/baton-stack-report"))
        .status()
        .unwrap();
    let report = root.join("usr/local/sbin/baton-report");
    let text = fs::read_to_string(&report).unwrap();
    let end = "    echo \"BATON-REPORT-END\"";
    assert!(text.contains(end), "{text}");
    let text = text.replace(end, &format!("    cat /run/baton-stack.txt\n{end}"));
    fs::write(&report, text).unwrap();
    let unit = root.join("etc/systemd/system/baton-stack-report.service");
    fs::write(&unit, STACK_REPORT_UNIT).unwrap();
    std::os::unix::fs::symlink(
        "../baton-stack-report.service",
        root.join("etc/systemd/system/multi-user.target.wants/baton-stack-report.service"),
    )
    .unwrap();

    let boot_img = dir.join("boot.img");
    make_ext4(&root.join("boot"), &boot_img, BOOT_UUID, "boot");
    let root_img = dir.join("root.img");
    make_ext4(&root, &root_img, tree.get("uuid"), "root");
    let disks = lvm_disks(&dir, &boot_img, &root_img, layout);
    fs::remove_file(&root_img).unwrap();

    let log = boot_disks(
        &root,
        &kver,
        "6.1",
        name,
        &disks,
        &format!("root={VG_ROOT} ro"),
        if layout == Layout::LuksLvm {
            &[PASSPHRASE]
        } else {
            &[]
        },
    );
    if layout == Layout::LuksLvm {
        assert_eq!(
            log.matches("Please enter passphrase for disk ").count(),
            1,
            "{log}"
        );
        assert_has(&log, "as /dev/mapper/vda2_crypt");
        assert!(
            !log.contains(PASSPHRASE),
            "the passphrase reached the console"
        );
        assert_eq!(lines(&log, "BATON-CRYPTUNIT "), ["active"], "{log}");
        let status = lines(&log, "BATON-CRYPTSTATUS ");
        assert!(
            status.iter().any(|l| l.contains("is active and is in use"))
                && status
                    .iter()
                    .any(|l| l.starts_with("type:") && l.contains("LUKS2")),
            "cryptsetup status: {status:?}"
        );
        let crypt_log = lines(&log, "BATON-CRYPTLOG ");
        assert!(
            crypt_log.iter().any(|l| l.contains("already active")),
            "systemd-cryptsetup did not find the volume active: {crypt_log:?}"
        );
    }
    if raid {
        assert_has(&log, "baton: started RAID1 baton-bookworm:0");
        assert_has(&log, "as /dev/md0");
        let mdstat = lines(&log, "BATON-MDSTAT ");
        assert!(
            mdstat.iter().any(|l| l.starts_with("md0 : active raid1")
                && l.contains("vda2")
                && l.contains("vdb2")),
            "mdstat: {mdstat:?}\n{log}"
        );
        assert!(
            mdstat.iter().any(|l| l.contains("[2/2] [UU]")),
            "mdstat: {mdstat:?}"
        );
    }
    assert_has(&log, "baton: activated LV baton-bookworm-vg/root");
    assert_has(&log, "baton: activated LV baton-bookworm-vg/swap_1");
    let lvs = lines(&log, "BATON-LVS ");
    for lv in ["root", "swap_1"] {
        assert!(
            lvs.iter()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["baton-bookworm-vg", lv, "active"]),
            "lvs: {lvs:?}\n{log}"
        );
    }
    // The devices baton made (the two LVs, and the LUKS volume under them), and no
    // other: lvm2 and cryptsetup adopted them.
    let dm = lines(&log, "BATON-DM ");
    let made = if layout == Layout::LuksLvm { 3 } else { 2 };
    assert_eq!(dm.len(), made, "{dm:?}\n{log}");
    let udev = lines(&log, "BATON-UDEV ");
    assert!(
        udev.contains(&"DM_UDEV_PRIMARY_SOURCE_FLAG=1") && !udev.contains(&"SYSTEMD_READY=0"),
        "{udev:?}\n{log}"
    );
    assert!(
        lines(&log, "BATON-SWAPS ")
            .iter()
            .any(|l| l.starts_with("/dev/dm-")),
        "{log}"
    );
    // Activated once: udev's pvscan found the VG online (baton said so in /run/lvm) and
    // started no vgchange of its own.
    assert_has(&log, "BATON-JOURNALCTL status=0");
    let lvm_log = lines(&log, "BATON-LVMLOG ");
    assert!(
        lvm_log
            .iter()
            .any(|l| l.contains("VG baton-bookworm-vg finished")),
        "pvscan did not see the VG online: {lvm_log:?}\n{log}"
    );
    assert!(
        !lvm_log.iter().any(|l| l.contains("lvm-activate-")),
        "lvm2 activated the VG again: {lvm_log:?}"
    );
    assert_has(&log, "BATON-BOOT /dev/vda1 ext4");
    assert_has(&log, &format!("BATON-ROOT {VG_ROOT} ext4"));
    fs::remove_dir_all(&dir).unwrap();
}
