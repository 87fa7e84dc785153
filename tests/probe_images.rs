//! Every probe against `blkid -p` (filesystems) and `partx` (partition tables), on images made
//! by the real mkfs and partitioning tools. Tools come from scripts/deps; without them the
//! tests say so and pass, unless BATON_REQUIRE_TOOLS=1 (scripts/test) makes that a failure.

mod common;

use baton::probe::partitions::{self, TableKind};
use baton::probe::{probe_filesystem, Filesystem};
use common::blkid;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("probe-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a shell command; `false` (a skip) if its tool is missing.
fn sh(script: &str) -> bool {
    let tool = script.split_whitespace().next().unwrap();
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .unwrap()
        .status
        .success();
    if !found {
        assert!(
            std::env::var("BATON_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{tool} is missing: run scripts/deps"
        );
        eprintln!("skipped: {tool} is missing (scripts/deps installs it)");
        return false;
    }
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

fn probe_file(image: &Path) -> Option<Filesystem> {
    let file = fs::File::open(image).unwrap();
    probe_filesystem(&file)
}

/// Our probe and blkid agree on type, UUID and label.
fn agree(image: &Path, fstype: &str, label: Option<&str>) {
    let ours = probe_file(image).unwrap_or_else(|| panic!("{fstype}: nothing found"));
    let theirs = blkid(image);
    assert_eq!(ours.fstype, theirs["TYPE"], "{fstype}");
    assert_eq!(ours.fstype, fstype);
    assert_eq!(
        ours.uuid.as_deref(),
        theirs.get("UUID").map(String::as_str),
        "{fstype} uuid"
    );
    assert_eq!(
        ours.label.as_deref(),
        theirs.get("LABEL").map(String::as_str),
        "{fstype} label"
    );
    assert_eq!(ours.label.as_deref(), label, "{fstype} label as made");
}

const UUID: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

#[test]
fn ext2_ext3_ext4() {
    let d = dir("ext");
    for kind in ["ext2", "ext3", "ext4"] {
        let img = d.join(kind);
        if !sh(&format!(
            "mkfs.{kind} -q -F -L root-{kind} -U {UUID} {} 16M",
            img.display()
        )) {
            return;
        }
        agree(&img, kind, Some(&format!("root-{kind}")));
        assert_eq!(probe_file(&img).unwrap().uuid.as_deref(), Some(UUID));
    }
    // No label at all.
    let img = d.join("nolabel");
    sh(&format!("mkfs.ext4 -q -F {} 16M", img.display()));
    agree(&img, "ext4", None);
}

#[test]
fn swap() {
    let d = dir("swap");
    let img = d.join("swap");
    if !sh(&format!(
        "truncate -s 8M {0} && mkswap -q -L swp -U {UUID} {0}",
        img.display()
    )) {
        return;
    }
    agree(&img, "swap", Some("swp"));
}

#[test]
fn xfs() {
    let d = dir("xfs");
    let img = d.join("xfs");
    if !sh(&format!(
        "truncate -s 320M {0} && mkfs.xfs -q -f -L xfsroot -m uuid={UUID} {0}",
        img.display()
    )) {
        return;
    }
    agree(&img, "xfs", Some("xfsroot"));
}

#[test]
fn btrfs() {
    let d = dir("btrfs");
    let img = d.join("btrfs");
    if !sh(&format!(
        "truncate -s 160M {0} && mkfs.btrfs -q -f -L btrroot -U {UUID} {0}",
        img.display()
    )) {
        return;
    }
    agree(&img, "btrfs", Some("btrroot"));
}

#[test]
fn vfat_12_16_32() {
    let d = dir("vfat");
    for (bits, size_kb) in [(12, 4096), (16, 32768), (32, 65536)] {
        let img = d.join(format!("fat{bits}"));
        if !sh(&format!(
            "mkfs.fat -F {bits} -n FAT{bits}ROOT -i 1234ABCD -C {} {size_kb} >/dev/null",
            img.display()
        )) {
            return;
        }
        agree(&img, "vfat", Some(&format!("FAT{bits}ROOT")));
        assert_eq!(probe_file(&img).unwrap().uuid.as_deref(), Some("1234-ABCD"));
    }
    // No label: blkid reports none (mkfs writes "NO NAME").
    let img = d.join("nolabel");
    sh(&format!(
        "mkfs.fat -F 32 -C {} 65536 >/dev/null",
        img.display()
    ));
    agree(&img, "vfat", None);
    // A label changed later lives in the root directory entry, which wins.
    let img = d.join("relabel");
    sh(&format!(
        "mkfs.fat -F 16 -n OLDNAME -C {0} 32768 >/dev/null && MTOOLS_SKIP_CHECK=1 mlabel -i {0} ::NEWNAME",
        img.display()
    ));
    agree(&img, "vfat", Some("NEWNAME"));
}

#[test]
fn f2fs() {
    let d = dir("f2fs");
    let img = d.join("f2fs");
    if !sh(&format!(
        "truncate -s 64M {0} && mkfs.f2fs -q -f -l f2root {0}",
        img.display()
    )) {
        return;
    }
    agree(&img, "f2fs", Some("f2root"));
}

#[test]
fn squashfs() {
    let d = dir("squashfs");
    let src = d.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("file"), "data").unwrap();
    let img = d.join("squashfs");
    if !sh(&format!(
        "mksquashfs {} {} -quiet -noappend",
        src.display(),
        img.display()
    )) {
        return;
    }
    agree(&img, "squashfs", None);
}

#[test]
fn not_a_filesystem() {
    assert_eq!(probe_filesystem(&vec![0u8; 1 << 20]), None);
    assert_eq!(probe_filesystem(&vec![0xFFu8; 1 << 20]), None);
    assert_eq!(probe_filesystem(&Vec::new()), None);
}

/// `partx` on the image: number -> (start, sectors, uuid, name).
fn partx(image: &Path) -> BTreeMap<u32, (u64, u64, String, String)> {
    let out = Command::new("partx")
        .args(["-g", "-b", "-o", "NR,START,SECTORS,UUID,NAME", "-P"])
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let field = |key: &str| {
            line.split(&format!("{key}=\"")[..])
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        map.insert(
            field("NR").parse().unwrap(),
            (
                field("START").parse().unwrap(),
                field("SECTORS").parse().unwrap(),
                field("UUID"),
                field("NAME"),
            ),
        );
    }
    map
}

fn compare_table(image: &Path, kind: TableKind) {
    let file = fs::File::open(image).unwrap();
    let table = partitions::probe(&file, 512).expect("a partition table");
    assert_eq!(table.kind, kind);
    let theirs = partx(image);
    let ours: BTreeMap<u32, (u64, u64, String, String)> = table
        .partitions
        .iter()
        .map(|p| {
            (
                p.number,
                (
                    p.start,
                    p.sectors,
                    p.partuuid.clone(),
                    p.partlabel.clone().unwrap_or_default(),
                ),
            )
        })
        .collect();
    // partx lists the extended container too; so do we.
    assert_eq!(ours, theirs);
}

#[test]
fn gpt_table() {
    let d = dir("gpt");
    let img = d.join("disk");
    let script = "label: gpt\nlabel-id: 0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9\n\
        start=2048, size=4096, name=boot, uuid=11111111-2222-4333-8444-555555555555\n\
        size=8192, name=\"root fs\", uuid=AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE\n\
        size=2048\n";
    fs::write(d.join("layout"), script).unwrap();
    if !sh(&format!(
        "truncate -s 16M {0} && sfdisk -q {0} < {1}",
        img.display(),
        d.join("layout").display()
    )) {
        return;
    }
    compare_table(&img, TableKind::Gpt);
    let file = fs::File::open(&img).unwrap();
    let table = partitions::probe(&file, 512).unwrap();
    assert_eq!(table.id, "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9");
    assert_eq!(
        table.partitions[1].partuuid,
        "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
    );
    assert_eq!(table.partitions[1].partlabel.as_deref(), Some("root fs"));
}

#[test]
fn mbr_table_with_logical_partitions() {
    let d = dir("mbr");
    let img = d.join("disk");
    let script = "label: dos\nlabel-id: 0xdeadbeef\n\
        start=2048, size=4096, type=83\n\
        size=4096, type=83\n\
        size=2048, type=c\n\
        size=16384, type=5\n\
        size=4096, type=83\n\
        size=4096, type=83\n";
    fs::write(d.join("layout"), script).unwrap();
    if !sh(&format!(
        "truncate -s 32M {0} && sfdisk -q {0} < {1}",
        img.display(),
        d.join("layout").display()
    )) {
        return;
    }
    compare_table(&img, TableKind::Mbr);
    let file = fs::File::open(&img).unwrap();
    let table = partitions::probe(&file, 512).unwrap();
    let numbers: Vec<u32> = table.partitions.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6]);
    assert_eq!(table.partitions[5].partuuid, "deadbeef-06");
}

#[test]
fn a_whole_disk_filesystem_is_not_a_table() {
    let d = dir("superfloppy");
    let img = d.join("fat");
    if !sh(&format!(
        "mkfs.fat -F 16 -C {} 32768 >/dev/null",
        img.display()
    )) {
        return;
    }
    let file = fs::File::open(&img).unwrap();
    assert_eq!(partitions::probe(&file, 512), None);
}
