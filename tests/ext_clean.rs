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
    // mke2fs makes a 4096-block journal on 256 MB with 4 KB blocks.
    for (name, offset, value, why) in [
        ("started", 0x1C, 1, "not empty"),
        ("erred", 0x20, 1, "records an error"),
        ("too-long", 0x10, 4097, "longer than its inode"),
        ("far-head", 0x58, 4096, "head is out of bounds"),
    ] {
        let image = made(name, &["-t", "ext3", "-b", "4096"]);
        let block: u64 = asked(&image, "bmap <8> 0").trim().parse().unwrap();
        // jbd2's superblock is big-endian; ext3 made by mke2fs has no journal checksum.
        patch(&image, block * 4096 + offset, &u32::to_be_bytes(value));
        not_clean(&image, why);
    }
}

/// What debugfs answers to one read-only request on the image.
fn asked(image: &Path, request: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", request])
        .arg(image)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs debugfs with one write request on the image.
fn debugfs(image: &Path, request: &str) {
    run("debugfs", &["-w", "-R", request], image);
}

#[test]
fn flags_and_fields_e2fsck_would_rewrite_are_not_clean() {
    if !tools() {
        return;
    }
    // (name, mke2fs features, the change, what baton must say)
    for (name, features, request, why) in [
        // signed hash (1) and test_fs (4): e2fsck clears test_fs where ext4 is known.
        ("test-fs", "^orphan_file", "ssv flags 5", "test filesystem"),
        // Neither hash flag: e2fsck sets the one of this machine's char.
        ("no-hash", "^orphan_file", "ssv flags 0", "hash hint"),
        (
            "recover",
            "^orphan_file",
            "feature needs_recovery",
            "needs recovery",
        ),
        // Only crc32c (1) is a superblock checksum type e2fsck keeps.
        (
            "csum-type",
            "^orphan_file",
            "ssv checksum_type 2",
            "checksum",
        ),
        // No backup of the journal's block map: e2fsck writes one.
        (
            "jnl-backup",
            "^orphan_file",
            "ssv jnl_backup_type 0",
            "backup",
        ),
        (
            "orphan-present",
            "orphan_file",
            "feature orphan_present",
            "orphan",
        ),
    ] {
        let image = made(name, &["-t", "ext4", "-O", features]);
        debugfs(&image, request);
        not_clean(&image, why);
    }
}

/// Sets group `group`'s descriptor checksum (metadata_csum, 1 KB blocks, 64-byte
/// descriptors from block 2), as the kernel would: debugfs's set_bg leaves it stale.
fn set_descriptor_checksum(image: &Path, group: usize) {
    use baton::probe::crc::crc32c;
    let mut bytes = fs::read(image).unwrap();
    let uuid = &bytes[1024 + 0x68..1024 + 0x78];
    let seed = crc32c(!0, uuid);
    let at = 2048 + group * 64;
    bytes[at + 0x1E..at + 0x20].fill(0);
    let crc = crc32c(
        crc32c(seed, &(group as u32).to_le_bytes()),
        &bytes[at..at + 64],
    );
    bytes[at + 0x1E..at + 0x20].copy_from_slice(&(crc as u16).to_le_bytes());
    fs::write(image, bytes).unwrap();
}

#[test]
fn group_descriptors_out_of_place_are_not_clean() {
    if !tools() {
        return;
    }
    // 32 groups of 1 KB blocks; debugfs keeps each descriptor's checksum right, so only
    // the field itself is wrong.
    for (name, fs, request, why) in [
        ("last-uninit", "ext4", "set_bg 31 flags 7", "last group"),
        (
            "itable-unused",
            "ext4",
            "set_bg 5 itable_unused 4000",
            "unused inodes",
        ),
        // Without flex_bg a group's bitmaps are its own.
        (
            "moved-bitmap",
            "ext3",
            "set_bg 3 block_bitmap 300",
            "bitmap outside",
        ),
        // The high half of a 64-bit field: far past the end of the filesystem.
        (
            "table-hi",
            "ext4",
            "set_bg 2 inode_table 0x100000400",
            "inode table",
        ),
        (
            "free-hi",
            "ext4",
            "set_bg 2 free_blocks_count 0x10010",
            "counts",
        ),
    ] {
        let image = made(name, &["-t", fs, "-b", "1024"]);
        debugfs(&image, request);
        if fs == "ext4" {
            let group = request.split(' ').nth(1).unwrap().parse().unwrap();
            set_descriptor_checksum(&image, group);
        }
        not_clean(&image, why);
    }
}

#[test]
fn layouts_e2fsck_reads_as_clean_are_clean() {
    if !tools() {
        return;
    }
    clean(&made("orphan-file", &["-t", "ext4", "-O", "orphan_file"]));
    clean(&made(
        "no-sparse",
        &[
            "-t",
            "ext2",
            "-b",
            "1024",
            "-O",
            "^sparse_super,^resize_inode",
        ],
    ));
    clean(&made("no-flex", &["-t", "ext4", "-O", "^flex_bg"]));
}

/// xorshift64: the same mutations on every run.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// One byte changed at a time, in everything the check reads of a small filesystem; after
/// each, whenever baton calls it clean, e2fsck -p must too and change nothing. With
/// metadata_csum most changes only break a checksum, so the superblock's is set again
/// after each change to let the change itself reach the check.
#[test]
fn no_changed_byte_is_called_clean_unless_e2fsck_agrees() {
    if !tools() {
        return;
    }
    // BATON_EXT_MUTATIONS=N (and BATON_EXT_SEED) for a longer hunt than CI's.
    let setting = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mutations = setting("BATON_EXT_MUTATIONS", 150);
    let mut state = setting("BATON_EXT_SEED", 0x9E37_79B9_7F4A_7C15) | 1;
    for (fs, args) in [
        ("mutant-ext3", &["-t", "ext3", "-b", "1024"][..]),
        ("mutant-ext4", &["-t", "ext4", "-b", "1024"][..]),
    ] {
        let image = made_sized(fs, 24 << 20, args);
        let journal: u64 = asked(&image, "bmap <8> 0").trim().parse().unwrap();
        // "Inode 8 is part of block group 0\n\tlocated at block 101, offset 0x0300"
        let said = asked(&image, "imap <8>");
        let number = |after: &str| {
            let rest = said.split(after).nth(1).unwrap().trim_start();
            let digits = rest.trim_start_matches("0x");
            let end = digits
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(digits.len());
            let radix = if rest.starts_with("0x") { 16 } else { 10 };
            u64::from_str_radix(&digits[..end], radix).unwrap()
        };
        let inode = number("at block ") * 1024 + number("offset ");
        // The superblock, the descriptors (3 groups), group 1's backup, the journal's
        // inode and its superblock.
        let regions = [
            (1024, 1024),
            (2048, 3 * 64),
            (8193 * 1024, 1024),
            (inode, 256),
            (journal * 1024, 1024),
        ];
        let original = fs::read(&image).unwrap();
        let mut called_clean = 0;
        for _ in 0..mutations {
            let (start, len) = regions[(next(&mut state) % 5) as usize];
            let at = start + next(&mut state) % len;
            let bit = next(&mut state) % 8;
            let mut bytes = original.clone();
            bytes[at as usize] ^= 1 << bit;
            if fs == "mutant-ext4" {
                let sum = baton::probe::crc::crc32c(!0, &bytes[1024..1024 + 0x3FC]);
                bytes[1024 + 0x3FC..1024 + 0x400].copy_from_slice(&sum.to_le_bytes());
            }
            fs::write(&image, &bytes).unwrap();
            if ours(&image).is_ok() {
                called_clean += 1;
                eprintln!("{fs}: byte {at} (0x{at:x}) bit {bit} changed, called clean");
                clean(&image);
            }
        }
        // Not every change is refused: fields neither reads (names, times) stay clean.
        assert!(called_clean > 0, "{fs}: every change was refused");
    }
}
