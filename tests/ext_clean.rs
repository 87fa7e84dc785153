//! baton's reading of whether `e2fsck -p` would call an ext2/3/4 filesystem clean
//! (`probe::ext_clean`), against e2fsck itself, on filesystems made by mke2fs and marked by
//! tune2fs, debugfs or a byte changed by hand. Whenever baton says "clean", e2fsck must say
//! so too, exit 0 and leave the image as it was but for the time and count of its writes; the
//! marked ones must not be called clean.

use baton::probe::ext_clean::preen_would_pass;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ext-clean");
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn tools() -> bool {
    let found = Command::new("sh")
        .args([
            "-c",
            "command -v mke2fs && command -v e2fsck && command -v debugfs",
        ])
        .output()
        .unwrap()
        .status
        .success();
    assert!(
        found || std::env::var("BATON_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "e2fsprogs is missing: run scripts/deps"
    );
    found
}

fn run(program: &str, args: &[&str], image: &Path) {
    let out = Command::new(program)
        .args(args)
        .arg(image)
        .env("MKE2FS_CONFIG", "/etc/mke2fs.conf")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A filesystem made by mke2fs with `args` on 256 MB (32 groups of 1 KB blocks, mke2fs's
/// choice for this size, or 2 of 4 KB).
fn made(name: &str, args: &[&str]) -> PathBuf {
    made_sized(name, 256 << 20, args)
}

/// The same on a sparse file of `bytes`.
fn made_sized(name: &str, bytes: u64, args: &[&str]) -> PathBuf {
    let image = dir().join(format!("{name}.img"));
    let _ = fs::remove_file(&image);
    fs::File::create(&image).unwrap().set_len(bytes).unwrap();
    let mut all = vec!["-q", "-F"];
    all.extend_from_slice(args);
    run("mke2fs", &all, &image);
    image
}

fn ours(image: &Path) -> Result<(), String> {
    preen_would_pass(&fs::File::open(image).unwrap())
}

/// baton says clean, and so does e2fsck -p, which changes nothing.
fn clean(image: &Path) {
    assert_eq!(ours(image), Ok(()), "{}", image.display());
    let before = head(image);
    let out = Command::new("e2fsck")
        .arg("-p")
        .arg(image)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("clean"), "{said}");
    assert!(
        unaccounted(head(image)) == unaccounted(before),
        "e2fsck -p changed {}",
        image.display()
    );
}

/// The image's first 256 MB: all of the small ones; of the large one, the superblock, the
/// descriptors and group 1's backup.
fn head(image: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut bytes = Vec::new();
    fs::File::open(image)
        .unwrap()
        .take(256 << 20)
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// An image without the superblock fields every e2fsck run that may write rewrites, clean
/// or not: the time of the write (`s_wtime`), the lifetime writes (`s_kbytes_written`) and
/// the checksum over them.
fn unaccounted(mut image: Vec<u8>) -> Vec<u8> {
    for (at, len) in [
        (1024 + 0x30, 4),
        (1024 + 0x178, 8),
        (1024 + 0x274, 1),
        (1024 + 0x3FC, 4),
    ] {
        image[at..at + len].fill(0);
    }
    image
}

/// baton does not call it clean, for a reason containing `why`.
fn not_clean(image: &Path, why: &str) {
    match ours(image) {
        Ok(()) => panic!("{} called clean", image.display()),
        Err(reason) => assert!(reason.contains(why), "{}: {reason}", image.display()),
    }
}

fn patch(image: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = fs::OpenOptions::new().write(true).open(image).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
}

#[test]
fn fresh_filesystems_of_every_kind_are_clean() {
    if !tools() {
        return;
    }
    clean(&made("ext4", &["-t", "ext4"]));
    clean(&made("ext4-4k", &["-t", "ext4", "-b", "4096"]));
    clean(&made(
        "ext4-gdt-csum",
        &["-t", "ext4", "-O", "^metadata_csum,uninit_bg"],
    ));
    clean(&made("ext4-32bit", &["-t", "ext4", "-O", "^64bit"]));
    clean(&made(
        "ext4-seed",
        &["-t", "ext4", "-O", "metadata_csum_seed"],
    ));
    clean(&made("ext3", &["-t", "ext3"]));
    clean(&made("ext2", &["-t", "ext2", "-b", "1024"]));
    // From 128 GiB up mke2fs makes a 1 GiB journal, whose extent tree has an index level.
    let big = made_sized(
        "ext4-130g",
        130 << 30,
        &["-t", "ext4", "-E", "lazy_itable_init=1,lazy_journal_init=1"],
    );
    clean(&big);
    let _ = fs::remove_file(big);
}

#[test]
fn what_e2fsck_would_check_or_change_is_not_clean() {
    if !tools() {
        return;
    }
    let errors = made("errors", &["-t", "ext4"]);
    run("tune2fs", &["-E", "force_fsck"], &errors);
    not_clean(&errors, "errors");

    let counted = made("counted", &["-t", "ext4"]);
    run("tune2fs", &["-c", "5", "-C", "5"], &counted);
    not_clean(&counted, "mounted 5 times");
    let below = made("below", &["-t", "ext4"]);
    run("tune2fs", &["-c", "5", "-C", "4"], &below);
    clean(&below);

    let interval = made("interval", &["-t", "ext4"]);
    run("tune2fs", &["-i", "1d"], &interval);
    not_clean(&interval, "check interval");

    let unclean = made("unclean", &["-t", "ext4"]);
    run("debugfs", &["-w", "-R", "ssv state 0"], &unclean);
    not_clean(&unclean, "not cleanly unmounted");

    let orphans = made("orphans", &["-t", "ext4"]);
    run("debugfs", &["-w", "-R", "ssv last_orphan 12"], &orphans);
    not_clean(&orphans, "orphan");

    let quota = made("quota", &["-t", "ext4", "-O", "quota"]);
    not_clean(&quota, "features this check does not read");
}

#[test]
fn a_damaged_byte_is_not_clean() {
    if !tools() {
        return;
    }
    // Group 1's descriptor: with 1 KB blocks the table is at block 2, 64 bytes each.
    let gd = made("gd", &["-t", "ext4", "-b", "1024"]);
    patch(&gd, 2 * 1024 + 64 + 0x10, &[0x7f]);
    not_clean(&gd, "group 1");
    // The superblock, past everything read, under its checksum: s_volume_name.
    let sb = made("sb", &["-t", "ext4"]);
    patch(&sb, 1024 + 0x78, b"x");
    not_clean(&sb, "superblock's checksum");
    // The backup superblock (group 1 at block 8193 of 1 KB) with another UUID: the
    // backups carry no checksum of their own that e2fsck reads.
    let backup = made("backup", &["-t", "ext4", "-b", "1024"]);
    patch(&backup, 8193 * 1024 + 0x68, &[0xAA]);
    not_clean(&backup, "backup");
    // A group 1 copy e2fsck would pass over for the next backup: not read further here.
    let odd = made("backup-rev", &["-t", "ext4", "-b", "1024"]);
    patch(&odd, 8193 * 1024 + 0x4C, &[2]);
    not_clean(&odd, "does not look like one");
    // ext2fs_open refuses a flex group size over 31 even without flex_bg (the kernel
    // does not read it then): e2fsck exits 8.
    let flex = made("flex", &["-t", "ext3"]);
    patch(&flex, 1024 + 0x174, &[0x80]);
    not_clean(&flex, "flex group size");
}

#[test]
fn a_journal_with_work_left_is_not_clean() {
    if !tools() {
        return;
    }
    for (name, offset, why) in [
        ("started", 0x1C, "not empty"),
        ("erred", 0x20, "records an error"),
    ] {
        let image = made(name, &["-t", "ext3", "-b", "4096"]);
        let out = Command::new("debugfs")
            .args(["-R", "bmap <8> 0"])
            .arg(&image)
            .output()
            .unwrap();
        let block: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        // jbd2's superblock is big-endian; ext3 made by mke2fs has no journal checksum.
        patch(&image, block * 4096 + offset, &1u32.to_be_bytes());
        not_clean(&image, why);
    }
}
