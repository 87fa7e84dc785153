//! The whole unlock path but the device-mapper: volumes the real cryptsetup formats in
//! plain files (no kernel driver needed), opened by baton's header readers, key derivation
//! and the kernel's ciphers through AF_ALG, and the volume key compared with the one
//! `cryptsetup luksDump --dump-volume-key` prints. Where this machine's kernel has no
//! AF_ALG (a container, a sandbox), the tests run again inside the VM of qemu/in-stack-vm,
//! whose tree has cryptsetup and whose kernel has the ciphers: this same test binary, shared
//! into it. Skipped only when neither can run.

use baton::init::storage::crypt::{header, unlock};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PASSPHRASE: &str = "baton-unit-passphrase";

fn volume(name: &str, args: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("baton-luks-unlock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.img"));
    let _ = std::fs::remove_file(&path);
    std::fs::File::create(&path)
        .unwrap()
        .set_len(20 << 20)
        .unwrap();
    cryptsetup(
        &["luksFormat", "--batch-mode", "--key-file", "-"],
        args,
        &path,
    );
    path
}

fn cryptsetup(command: &[&str], args: &[&str], path: &Path) -> String {
    let mut child = Command::new("cryptsetup")
        .args(command)
        .args(args)
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cryptsetup (scripts/deps installs cryptsetup-bin)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSPHRASE.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "cryptsetup {command:?} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The volume key as luksDump prints it ("MK dump:" then hex bytes over lines).
fn dumped_key(path: &Path) -> Vec<u8> {
    let text = cryptsetup(
        &[
            "luksDump",
            "--dump-volume-key",
            "--batch-mode",
            "--key-file",
            "-",
        ],
        &[],
        path,
    );
    let after = text.split_once("MK dump:").expect("a key dump").1;
    after
        .split_whitespace()
        .take_while(|w| w.len() == 2 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|w| u8::from_str_radix(w, 16).unwrap())
        .collect()
}

/// Whether the tests run here; if not, runs them in the stack VM (as root, with a kernel)
/// and asserts they passed there.
fn here_or_in_a_vm(test: &str) -> bool {
    if af_alg_works() {
        return true;
    }
    if std::env::var_os("BATON_IN_VM").is_some() {
        panic!("AF_ALG does not work in the VM either");
    }
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    if !root || std::env::var_os("BATON_KERNEL").is_none() {
        eprintln!("no AF_ALG here, and no VM to run in (root and BATON_KERNEL): skipped");
        return false;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The volumes are made on a tmpfs in the VM: cryptsetup's direct I/O fails on 9p.
    let dir = std::env::temp_dir().join(format!("baton-luks-vm-{test}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy(std::env::current_exe().unwrap(), dir.join("bin/tests")).unwrap();
    let script = dir.join("run.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\nset -e\nmkdir -p /t\nmount -t 9p -o trans=virtio,version=9p2000.L,ro bin /t\n\
             modprobe -a af_alg algif_skcipher xts essiv cbc ecb\n\
             mkdir -p /run/t\nmount -t tmpfs tmpfs /run/t\n\
             TMPDIR=/run/t BATON_IN_VM=1 /t/tests --exact {test} --nocapture --test-threads 1\necho BATON-VM-DONE\n"
        ),
    )
    .unwrap();
    let status = Command::new(repo.join("qemu/in-stack-vm"))
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--share")
        .arg(format!("bin={}", dir.join("bin").display()))
        .arg(&script)
        .status()
        .unwrap();
    let console = std::fs::read_to_string(dir.join("out/console.log")).unwrap_or_default();
    assert!(status.success(), "{test} failed in the VM:\n{console}");
    assert!(console.contains("test result: ok. 1 passed"), "{console}");
    let _ = std::fs::remove_dir_all(&dir);
    false
}

fn af_alg_works() -> bool {
    let mut data = [0u8; 512];
    baton::init::storage::crypt::afalg::decrypt(
        "xts(aes)",
        baton::init::storage::crypt::afalg::IvMode::Plain64,
        &[1u8; 64],
        &mut data,
    )
    .is_ok()
}

fn opens(path: &Path, passphrase: &str, slot: Option<u32>) -> Option<(Vec<u8>, u32)> {
    let file = std::fs::File::open(path).unwrap();
    let volume = header::read(&file).unwrap();
    unlock::open(&file, &volume, passphrase.as_bytes(), slot)
        .unwrap()
        .map(|o| (o.key.as_slice().to_vec(), o.slot))
}

#[test]
fn volumes_cryptsetup_formats_open_with_its_key() {
    if !here_or_in_a_vm("volumes_cryptsetup_formats_open_with_its_key") {
        return;
    }
    let cheap = ["--pbkdf-force-iterations", "1000"];
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "luks2-pbkdf2-sha256",
            [&["--type", "luks2", "--pbkdf", "pbkdf2"][..], &cheap].concat(),
        ),
        (
            "luks2-pbkdf2-sha512-aes128",
            [
                &[
                    "--type",
                    "luks2",
                    "--pbkdf",
                    "pbkdf2",
                    "--hash",
                    "sha512",
                    "--key-size",
                    "256",
                ][..],
                &cheap,
            ]
            .concat(),
        ),
        (
            "luks2-argon2id",
            vec![
                "--type",
                "luks2",
                "--pbkdf",
                "argon2id",
                "--pbkdf-memory",
                "8192",
                "--pbkdf-force-iterations",
                "4",
                "--pbkdf-parallel",
                "4",
            ],
        ),
        (
            "luks2-argon2i-4k",
            vec![
                "--type",
                "luks2",
                "--pbkdf",
                "argon2i",
                "--pbkdf-memory",
                "8192",
                "--pbkdf-force-iterations",
                "4",
                "--sector-size",
                "4096",
            ],
        ),
        ("luks1-xts", [&["--type", "luks1"][..], &cheap].concat()),
        (
            "luks1-cbc-essiv",
            [
                &[
                    "--type",
                    "luks1",
                    "--cipher",
                    "aes-cbc-essiv:sha256",
                    "--key-size",
                    "256",
                    "--hash",
                    "sha1",
                ][..],
                &cheap,
            ]
            .concat(),
        ),
    ];
    for (name, args) in cases {
        let path = volume(name, &args);
        let (key, slot) = opens(&path, PASSPHRASE, None).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(key, dumped_key(&path), "{name}");
        assert_eq!(slot, 0, "{name}");
        assert!(opens(&path, "not it", None).is_none(), "{name}");
    }
}

#[test]
fn a_second_slot_and_a_named_slot() {
    if !here_or_in_a_vm("a_second_slot_and_a_named_slot") {
        return;
    }
    let args = [
        "--type",
        "luks2",
        "--pbkdf",
        "pbkdf2",
        "--pbkdf-force-iterations",
        "1000",
    ];
    let path = volume("two-slots", &args);
    let key_file = path.with_extension("key");
    std::fs::write(&key_file, b"second").unwrap();
    // luksAddKey DEVICE NEWKEYFILE, the existing passphrase on standard input.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf %s {PASSPHRASE} | cryptsetup luksAddKey --batch-mode --key-file - --pbkdf pbkdf2 --pbkdf-force-iterations 1000 {} {}",
            path.display(),
            key_file.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let key = dumped_key(&path);
    assert_eq!(opens(&path, "second", None), Some((key.clone(), 1)));
    assert_eq!(opens(&path, "second", Some(1)), Some((key.clone(), 1)));
    assert_eq!(opens(&path, "second", Some(0)), None);
    assert_eq!(opens(&path, PASSPHRASE, Some(0)), Some((key, 0)));
}
