//! Disks that could be anything (a USB stick, a disk from another system, an image someone
//! hands you), attached before the root disk: a chain of extended boot records that loops
//! through empty records, a GPT header claiming four billion entries, and a superblock of
//! garbage behind the magic of every filesystem baton probes. The root still boots; and
//! with a root that never appears, the boot ends in the configured action within its limit.

mod common;

use common::{assert_action, assert_has, marker, plain_disk, storage_image, Boot, Kernel};
use std::fs;
use std::path::PathBuf;

const DISK_BYTES: usize = 2 << 20;

/// Deterministic garbage: the same disks every run.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn put_mbr_entry(disk: &mut [u8], lba: usize, slot: usize, kind: u8, start: u32, sectors: u32) {
    let at = lba * 512 + 446 + slot * 16;
    disk[at + 4] = kind;
    disk[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
    disk[at + 12..at + 16].copy_from_slice(&sectors.to_le_bytes());
    disk[lba * 512 + 510] = 0x55;
    disk[lba * 512 + 511] = 0xAA;
}

/// An extended partition at LBA 2048 whose three EBRs are empty and link 1 -> 2 -> 3 -> 2.
fn ebr_loop() -> Vec<u8> {
    let mut disk = vec![0u8; DISK_BYTES];
    put_mbr_entry(&mut disk, 0, 0, 0x83, 64, 1024);
    put_mbr_entry(&mut disk, 0, 1, 0x05, 2048, 1024);
    for (record, link) in [(0, 1), (1, 2), (2, 1)] {
        put_mbr_entry(&mut disk, 2048 + record, 1, 0x05, link, 1);
    }
    disk
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A protective MBR and a GPT header (valid checksum) claiming 2^32-1 entries.
fn gpt_billions() -> Vec<u8> {
    let mut disk = vec![0u8; DISK_BYTES];
    put_mbr_entry(&mut disk, 0, 0, 0xEE, 1, (DISK_BYTES / 512 - 1) as u32);
    let h = 512;
    disk[h..h + 8].copy_from_slice(b"EFI PART");
    disk[h + 8..h + 12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    disk[h + 12..h + 16].copy_from_slice(&92u32.to_le_bytes());
    disk[h + 24..h + 32].copy_from_slice(&1u64.to_le_bytes());
    disk[h + 72..h + 80].copy_from_slice(&2u64.to_le_bytes());
    disk[h + 80..h + 84].copy_from_slice(&u32::MAX.to_le_bytes());
    disk[h + 84..h + 88].copy_from_slice(&128u32.to_le_bytes());
    let crc = crc32(&disk[h..h + 92]);
    disk[h + 16..h + 20].copy_from_slice(&crc.to_le_bytes());
    disk
}

/// Garbage with one filesystem's magic where its probe looks.
fn with_magic(seed: u64, at: usize, magic: &[u8]) -> Vec<u8> {
    let mut disk = garbage(seed, DISK_BYTES);
    disk[at..at + magic.len()].copy_from_slice(magic);
    disk
}

/// The hostile disks, in the order they are attached (all before the root).
fn hostile_disks() -> Vec<PathBuf> {
    let disks: Vec<(&str, Vec<u8>)> = vec![
        ("ebr-loop", ebr_loop()),
        ("gpt-billions", gpt_billions()),
        ("ext4", with_magic(1, 1024 + 0x38, &[0x53, 0xEF])),
        ("xfs", with_magic(2, 0, b"XFSB")),
        ("btrfs", with_magic(3, 0x10040, b"_BHRfS_M")),
        ("f2fs", with_magic(4, 0x400, &[0x10, 0x20, 0xF5, 0xF2])),
        ("squashfs", with_magic(5, 0, b"hsqs")),
        ("vfat", {
            let mut d = with_magic(6, 0x1FE, &[0x55, 0xAA]);
            d[0x03..0x0B].copy_from_slice(b"mkfs.fat");
            d[0x0B..0x0E].copy_from_slice(&[0x00, 0x02, 0x80]);
            d[0x10] = 2;
            d[0x15] = 0xF8;
            d
        }),
    ];
    disks
        .into_iter()
        .map(|(name, bytes)| {
            let path = common::work_dir().join(format!("hostile-{name}.img"));
            fs::write(&path, bytes).unwrap();
            path
        })
        .collect()
}

fn boot_with_hostile_disks<'a>(k: &'a Kernel, append: &str) -> Boot<'a> {
    let mut disks = hostile_disks();
    disks.push(plain_disk());
    let mut boot = Boot::new(k, storage_image(k), plain_disk(), append);
    boot.disks = disks;
    boot
}

#[test]
fn the_root_boots_behind_hostile_disks() {
    let Some(k) = common::kernel() else { return };
    let log = boot_with_hostile_disks(&k, "root=LABEL=batonroot rd.emergency=poweroff")
        .run("hostile-disks");
    // The root is the ninth disk, after eight hostile ones.
    assert!(marker(&log).contains("root=[/dev/vdi ext4 ro"), "{log}");
    // Each hostile disk was looked at, and seen for what it is.
    assert_has(&log, "found vda (");
    assert_has(&log, "found vdb (");
}

#[test]
fn hostile_disks_and_no_root_end_in_the_configured_action() {
    let Some(k) = common::kernel() else { return };
    let mut boot = boot_with_hostile_disks(
        &k,
        "root=UUID=00000000-1111-2222-3333-444444444444 rootwait=3 rd.emergency=poweroff",
    );
    boot.timeout = 60;
    let log = boot.run("hostile-no-root");
    assert_has(
        &log,
        "baton: boot failed: root device UUID=00000000-1111-2222-3333-444444444444 did not appear within 3 s (block devices present: vda (",
    );
    assert_action(&log, "poweroff");
}

/// A disk that never answers (every read takes 100 s: qemu's null block driver with a
/// latency), as a dying disk with SCSI retries would: a SCSI disk, whose driver probes it
/// in the background, where the kernel's own partition scan waits on it and holds it (a
/// virtio disk would hold virtio_blk's module init itself, which no initramfs can help).
/// The search gives up at its limit anyway, names the silent disk, and the boot ends in
/// the configured action long before the disk would have answered. (Its geometry is
/// given: qemu would otherwise read the first sector itself to guess one, and wait.)
#[test]
fn a_disk_that_never_answers_does_not_hold_the_limit() {
    let Some(k) = common::kernel() else { return };
    // The drivers named, sd_mod last: once a probe waits on the disk, the kernel makes
    // every later module init wait for it too (its async_synchronize_full), which is the
    // kernel's to fix, not the initramfs's.
    let image = common::virtio_ext4_image(
        &k,
        "silent",
        &["--module", "virtio_scsi", "--module", "sd_mod"],
    );
    let mut boot = Boot::new(
        &k,
        image,
        plain_disk(),
        // sd_mod probes in the background only when asked: its module init would wait for
        // the probe (and the disk) otherwise.
        "root=UUID=0badc0de-0000-4000-8000-000000000000 rootwait=3 rd.emergency=poweroff sd_mod.async_probe=1",
    );
    boot.qemu = [
        "-blockdev",
        "driver=null-co,node-name=silent,size=67108864,read-zeroes=on,latency-ns=100000000000",
        "-device",
        "virtio-scsi-pci,id=silentbus",
        "-device",
        "scsi-hd,drive=silent,bus=silentbus.0,cyls=130,heads=16,secs=63",
    ]
    .map(String::from)
    .to_vec();
    // The power-off itself then waits for the disk (the kernel flushes its cache at
    // shutdown, and the flush never answers either): the VM is not waited for.
    boot.timeout = 40;
    let (mut cmd, log) = boot.command("silent-disk");
    let _ = cmd.status().unwrap();
    let log = String::from_utf8_lossy(&fs::read(log).unwrap()).into_owned();
    assert_has(
        &log,
        "/dev/sda has not answered its probe; going on without it",
    );
    let failed = log
        .lines()
        .find(|l| l.contains("baton: boot failed: root device UUID="))
        .unwrap_or_else(|| panic!("no failure reported: {log}"));
    assert!(failed.contains("did not appear within 3 s"), "{failed}");
    assert!(failed.contains("not answering: sda"), "{failed}");
    // On the kernel log's clock: within the limit and the settling after it, where a
    // search waiting on the disk would have reported nothing for 100 s.
    let at: f64 = failed
        .trim_start_matches('[')
        .split(']')
        .next()
        .and_then(|t| t.trim().parse().ok())
        .unwrap();
    assert!(at < 30.0, "reported at {at} s: {log}");
}
