//! Roots on LUKS, unlocked by baton as PID 1, from the volumes the real cryptsetup made
//! (common::stack_disks; see qemu/stack-disks.sh): passphrases typed on the serial console
//! as the prompt appears (a wrong one first), key files, crypttab, one passphrase for two
//! volumes, a damaged primary header, LVM inside LUKS, cryptsetup's own defaults, and
//! three wrong passphrases ending in the configured action.

mod common;

use common::{
    assert_action, assert_has, kernel, kernel_new, marker, work_dir, Boot, Kernel, Typist,
};
use std::path::{Path, PathBuf};

const PASSPHRASE: &str = "baton-test-passphrase";
const PROMPT: &str = "Please enter passphrase for disk ";
/// The LUKS UUIDs stack-disks.sh gave the volumes.
const LUKS2: &str = "7a2c0b1e-2222-4000-8000-000000000002";
const LUKS1: &str = "7a2c0b1e-1111-4000-8000-000000000001";
fn more(n: u32) -> String {
    format!("7a2c0b1e-3333-4000-8000-{n:012}")
}
/// The ext4 filesystems inside them.
fn fs_in_more(n: u32) -> String {
    format!("5e1f0c2a-0000-4000-8000-00000000d{n:03}")
}

/// The storage image, with `files` (source text, path in the image) added.
fn image(k: &Kernel, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let mut args = vec!["--storage".to_owned()];
    let dir = work_dir().join(format!("luks-files-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (text, dest)) in files.iter().enumerate() {
        let src = dir.join(i.to_string());
        std::fs::write(&src, text).unwrap();
        args.push("--include".into());
        args.push(format!("{}:{dest}", src.display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::image(k, &format!("luks-{name}"), &args)
}

/// The key file stack-disks.sh added to the "keyed" volume: the text, padded to 64 bytes.
fn key_file() -> String {
    format!("{:<64}", "baton-test-key-file")
}

/// Boots, typing `answers` at the passphrase prompts as they come. Returns the console.
fn boot_answering(mut b: Boot<'_>, name: &str, answers: &[&str]) -> String {
    let mut typist = Typist::new(name);
    b.input_file = Some(typist.path.clone());
    let (mut cmd, log_path) = b.command(name);
    let _ = std::fs::remove_file(&log_path);
    let mut child = cmd.spawn().unwrap();
    typist.answer(&log_path, PROMPT, answers);
    assert!(
        child.wait().unwrap().success(),
        "qemu/boot failed for {name}"
    );
    String::from_utf8_lossy(&std::fs::read(&log_path).unwrap()).into_owned()
}

fn boot<'a>(k: &'a Kernel, image: PathBuf, dir: &Path, disks: &[&str], append: &str) -> Boot<'a> {
    let mut b = Boot::new(
        k,
        image,
        dir.join(format!("{}.img", disks[0])),
        &format!("{append} rd.emergency=poweroff"),
    );
    b.disks = disks.iter().map(|d| dir.join(format!("{d}.img"))).collect();
    b.timeout = 240;
    b
}

/// The passphrase must never reach the console, the log or dmesg.
fn assert_secret_kept(log: &str) {
    assert!(
        !log.contains(PASSPHRASE),
        "the passphrase is on the console:\n{log}"
    );
    assert!(
        !log.contains("baton-test-key-file"),
        "the key file is on the console"
    );
}

#[test]
fn typed_passphrases_on_both_kernels() {
    let Some(dir) = common::stack_disks() else {
        return;
    };
    for k in [kernel(), kernel_new()].into_iter().flatten() {
        // LUKS2 (argon2id): a wrong passphrase, then the right one.
        let b = boot(
            &k,
            image(&k, "plain", &[]),
            dir,
            &["luks2"],
            &format!("root=UUID=5e1f0c2a-0000-4000-8000-00000000c002 rd.luks.uuid={LUKS2}"),
        );
        let log = boot_answering(b, &format!("luks2-typed-{}", k.tag), &["wrong", PASSPHRASE]);
        assert_has(&log, &format!("{PROMPT}luks-{LUKS2} ({LUKS2}):"));
        assert_has(&log, "No key available with this passphrase.");
        assert_has(
            &marker(&log),
            &format!("root=[/dev/mapper/luks-{LUKS2} ext4"),
        );
        assert_secret_kept(&log);
        // LUKS1 (pbkdf2, xts), named by systemd's word.
        let b = boot(
            &k,
            image(&k, "plain", &[]),
            dir,
            &["luks1"],
            // A key file the image does not have: the prompt instead, as systemd does.
            &format!(
                "root=/dev/mapper/cryptold rd.luks.name={LUKS1}=cryptold rd.luks.key=/etc/keys/none.key"
            ),
        );
        let log = boot_answering(b, &format!("luks1-typed-{}", k.tag), &[PASSPHRASE]);
        assert_has(&log, "key file /etc/keys/none.key: ");
        assert_has(&log, "asking for the passphrase of cryptold");
        assert_has(&marker(&log), "root=[/dev/mapper/cryptold ext4");
        assert_secret_kept(&log);
    }
}

#[test]
fn key_files_crypttab_and_one_passphrase_for_two() {
    let Some(dir) = common::stack_disks() else {
        return;
    };
    for k in [kernel(), kernel_new()].into_iter().flatten() {
        key_file_and_crypttab(&k, dir);
    }
}

fn key_file_and_crypttab(k: &Kernel, dir: &Path) {
    // A key file in the image, named by rd.luks.key: no prompt.
    let img = image(k, "keyed", &[(&key_file(), "/etc/keys/test.key")]);
    let b = boot(
        k,
        img,
        dir,
        &["luksmore"],
        &format!(
            "root=UUID={} rd.luks.uuid={} rd.luks.key={}=/etc/keys/test.key",
            fs_in_more(1),
            more(1),
            more(1)
        ),
    );
    let log = boot_answering(b, &format!("luks-keyfile-{}", k.tag), &[]);
    assert!(!log.contains(PROMPT), "{log}");
    assert_has(
        &marker(&log),
        &format!("root=[/dev/mapper/luks-{} ext4", more(1)),
    );
    assert_secret_kept(&log);
    // crypttab names the root (4096-byte sectors, argon2i) and a second volume with the
    // same passphrase: asked once, both unlocked.
    let crypttab = format!(
        "sect4k UUID={} none luks,discard\nshared UUID={} none luks\n",
        more(2),
        more(4)
    );
    let img = image(k, "crypttab", &[(&crypttab, "/etc/crypttab")]);
    let b = boot(
        k,
        img,
        dir,
        &["luksmore"],
        "root=/dev/mapper/sect4k rootwait=30",
    );
    let log = boot_answering(b, &format!("luks-crypttab-{}", k.tag), &[PASSPHRASE]);
    assert_has(&marker(&log), "root=[/dev/mapper/sect4k ext4");
    assert_eq!(log.matches(PROMPT).count(), 1, "{log}");
    assert_has(&log, "as /dev/mapper/sect4k");
    assert_secret_kept(&log);
}

#[test]
fn damaged_header_lvm_inside_and_defaults() {
    let (Some(k), Some(dir)) = (kernel(), common::stack_disks()) else {
        return;
    };
    let img = image(&k, "plain", &[]);
    // The primary header is damaged: the secondary opens it, with a warning.
    let b = boot(
        &k,
        img.clone(),
        dir,
        &["luksmore"],
        &format!("root=UUID={} rd.luks.uuid={}", fs_in_more(3), more(3)),
    );
    let log = boot_answering(b, "luks-damaged", &[PASSPHRASE]);
    assert_has(&log, "secondary");
    marker(&log);
    // Debian's layout: LVM inside LUKS.
    let b = boot(
        &k,
        img.clone(),
        dir,
        &["luksmore"],
        &format!("root=/dev/vgcrypt/root rd.luks.uuid={}", more(5)),
    );
    let log = boot_answering(b, "luks-lvm", &[PASSPHRASE]);
    assert_has(&log, "activated LV vgcrypt/root");
    assert_has(&marker(&log), "root=[/dev/vgcrypt/root ext4");
    // cryptsetup's defaults, timed on the VM that made them.
    let mut b = boot(
        &k,
        img,
        dir,
        &["luksmore"],
        &format!("root=UUID={} rd.luks.uuid={}", fs_in_more(6), more(6)),
    );
    b.qemu = vec!["-m".into(), "1536".into()];
    let log = boot_answering(b, "luks-defaults", &[PASSPHRASE]);
    marker(&log);
}

#[test]
fn three_wrong_passphrases_end_in_the_action() {
    let (Some(k), Some(dir)) = (kernel(), common::stack_disks()) else {
        return;
    };
    let b = boot(
        &k,
        image(&k, "plain", &[]),
        dir,
        &["luks1"],
        &format!("root=/dev/mapper/cryptold rd.luks.name={LUKS1}=cryptold"),
    );
    let log = boot_answering(b, "luks-wrong", &["one", "two", "three"]);
    assert_has(
        &log,
        &format!("cannot unlock cryptold ({LUKS1}) on vda: no key available with the passphrases typed (3 tries)"),
    );
    assert_action(&log, "poweroff");
}

/// A boot that fails after the volume is unlocked (here: the wrong filesystem type) and is
/// tried again from the rescue shell finds the opened volume as a device like any other:
/// no second unlock, no "device busy".
#[test]
fn a_retry_finds_the_volume_unlocked() {
    let (Some(k), Some(dir)) = (kernel(), common::stack_disks()) else {
        return;
    };
    let key = work_dir().join("luks-retry.key");
    std::fs::write(&key, key_file()).unwrap();
    let include = format!("{}:/etc/keys/test.key", key.display());
    let img = common::image(
        &k,
        "luks-retry",
        &[
            "--storage",
            "--shell",
            "/bin/busybox",
            "--include",
            &include,
        ],
    );
    let mut b = boot(
        &k,
        img,
        dir,
        &["luksmore"],
        &format!(
            "root=UUID={} rootfstype=vfat rd.luks.uuid={} rd.luks.key={}=/etc/keys/test.key",
            fs_in_more(1),
            more(1),
            more(1)
        ),
    );
    b.append = b
        .append
        .replace("rd.emergency=poweroff", "rd.emergency=shell");
    let mut typist = Typist::new("luks-retry");
    b.input_file = Some(typist.path.clone());
    let (mut cmd, log_path) = b.command("luks-retry");
    let _ = std::fs::remove_file(&log_path);
    let mut child = cmd.spawn().unwrap();
    typist.answer(
        &log_path,
        "starting the rescue shell",
        &["exit", "busybox poweroff -f"],
    );
    assert!(child.wait().unwrap().success());
    let log = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap()).into_owned();
    assert_eq!(
        log.matches("with keyslot 1 as /dev/mapper/").count(),
        1,
        "{log}"
    );
    assert_has(&log, "rescue shell exited; trying the boot again");
    assert_eq!(
        log.matches(&format!("root UUID={} is dm-0", fs_in_more(1)))
            .count(),
        2,
        "{log}"
    );
    assert!(!log.contains("resource busy"), "{log}");
}

/// The keyboard's layout at the prompt. The image carries the German keymap as Debian's
/// console-setup keeps it (`update` takes it from the system; `--keymap` names the same
/// file here), and the passphrase is typed key by key on the PS/2 keyboard, on the screen's
/// console: the German '-' is the key a US layout has '/' on, so only the loaded keymap
/// types the passphrase the volume was made with.
#[test]
fn a_german_keyboard_types_its_passphrase() {
    let (Some(k), Some(dir)) = (kernel(), common::stack_disks()) else {
        return;
    };
    let keymap = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keymap/cached_UTF-8_del.kmap.gz"
    );
    let img = common::image(&k, "luks-keymap", &["--storage", "--keymap", keymap]);
    let socket = work_dir().join("luks-keymap.monitor");
    let _ = std::fs::remove_file(&socket);
    // The screen's console too (the last console= stays /dev/console, the serial line).
    let mut b = boot(
        &k,
        img,
        dir,
        &["luks1"],
        &format!(
            "root=/dev/mapper/cryptold rd.luks.name={LUKS1}=cryptold console=tty0 console=ttyS0"
        ),
    );
    b.monitor = Some(socket.clone());
    let (mut cmd, log_path) = b.command("luks-keymap");
    let _ = std::fs::remove_file(&log_path);
    let mut child = cmd.spawn().unwrap();
    common::wait_for_console(&log_path, PROMPT, std::time::Duration::from_secs(180));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut monitor = common::Monitor::connect(&socket);
    for c in PASSPHRASE.chars() {
        // qemu names keys by their US legends.
        let key = match c {
            '-' => "slash".to_owned(),
            'y' => "z".to_owned(),
            'z' => "y".to_owned(),
            c => c.to_string(),
        };
        monitor.run(&format!("sendkey {key}"));
    }
    monitor.run("sendkey ret");
    assert!(child.wait().unwrap().success());
    let log = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap()).into_owned();
    assert_has(&log, "console keymap loaded (128 keymaps)");
    assert_has(&marker(&log), "root=[/dev/mapper/cryptold ext4");
    // The unlock is on the timeline, the wait for the passphrase apart.
    assert_has(&log, "unlock:cryptold ");
    assert_has(&log, "passphrase:cryptold ");
    assert_secret_kept(&log);
}
