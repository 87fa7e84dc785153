//! What an image carries besides modules: the firmware its modules declare (`firmware=` in
//! their `.modinfo`) and the CPU microcode in an uncompressed early archive at its start.
//! Built from Debian's real 6.1 modules with a made-up firmware tree, then inspected; and
//! booted under qemu with the real intel-microcode and amd64-microcode packages (from
//! qemu/fetch-microcode) to see what the kernel makes of the early archive.

mod common;

use baton::host::image::compress::{compress, Compression};
use baton::host::image::inspect::{read_image, Listing};
use baton::host::image::microcode::{intel_file_name, parse_cpuinfo};
use common::{marker, plain_disk, virtio_ext4_image, Boot, Kernel};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

fn baton() -> Command {
    Command::new(env!("CARGO_BIN_EXE_baton"))
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("firmware-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `baton build` with `args`; returns stderr, failing the test if the build failed.
fn build(args: &[&str], out: &Path) -> String {
    let result = baton()
        .args(["build", "-o"])
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    assert!(result.status.success(), "baton build {args:?}: {stderr}");
    stderr
}

fn listing(image: &Path) -> Vec<Listing> {
    read_image(&fs::read(image).unwrap()).unwrap()
}

fn entry<'a>(listings: &'a [Listing], path: &str) -> Option<&'a Listing> {
    listings.iter().find(|l| l.path == path)
}

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// The host's Intel microcode file name, if this machine has an Intel CPU.
fn host_intel_file() -> Option<String> {
    let cpus = parse_cpuinfo(&fs::read_to_string("/proc/cpuinfo").unwrap());
    cpus.iter()
        .find(|c| c.vendor == "GenuineIntel")
        .map(intel_file_name)
}

fn host_is_amd() -> bool {
    parse_cpuinfo(&fs::read_to_string("/proc/cpuinfo").unwrap())
        .iter()
        .any(|c| c.vendor == "AuthenticAMD")
}

/// A system tree: Debian's 6.1 modules at lib/modules/KVER (linked) and a made-up
/// lib/firmware for qla1280 (`firmware=qlogic/{12160,1280,1040}.bin`, named with --module)
/// and ums-eneub6250 (`firmware=ene-ub6250/...`, carried by --storage), plus microcode.
fn system_tree(kernel: &Kernel, name: &str) -> (PathBuf, String) {
    let root = tmp(name);
    let kver = kernel
        .modules
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    fs::create_dir_all(root.join("lib/modules")).unwrap();
    symlink(&kernel.modules, root.join("lib/modules").join(&kver)).unwrap();
    // The kernel's config where an installed kernel's is: it says which compressed
    // firmware the loader reads.
    fs::create_dir_all(root.join("boot")).unwrap();
    fs::copy(
        kernel.dir.join("config"),
        root.join("boot").join(format!("config-{kver}")),
    )
    .unwrap();
    let fw = root.join("lib/firmware");
    // An absolute link: relative to the tree's root, which the host's / does not have.
    write(&fw.join("vendor/ql1280.bin"), b"QL1280");
    assert!(!Path::new("/lib/firmware/vendor/ql1280.bin").exists());
    fs::create_dir_all(fw.join("qlogic")).unwrap();
    symlink(
        "/lib/firmware/vendor/ql1280.bin",
        fw.join("qlogic/1280.bin"),
    )
    .unwrap();
    // updates/KVER comes first in the loader's search.
    write(&fw.join("qlogic/12160.bin"), b"OLD");
    write(
        &fw.join(format!("updates/{kver}/qlogic/12160.bin")),
        b"NEW-12160",
    );
    // Debian's 6.1 loader reads .xz (CONFIG_FW_LOADER_COMPRESS_XZ): kept compressed.
    let xz = compress(b"ENE-MS-INIT", Compression::Xz).unwrap();
    write(&fw.join("ene-ub6250/ms_init.bin.xz"), &xz);
    // Microcode, made up: two Intel signatures (one with Debian's early-only suffix), the
    // host's own when it is an Intel CPU, and an AMD container.
    write(&fw.join("intel-ucode/06-8e-0a"), b"INTEL-8E");
    write(&fw.join("intel-ucode/06-55-04.initramfs"), b"INTEL-55");
    if let Some(host) = host_intel_file() {
        if host != "06-8e-0a" && host != "06-55-04" {
            write(&fw.join("intel-ucode").join(&host), b"INTEL-HOST");
        }
    }
    write(&fw.join("amd-ucode/microcode_amd_fam17h.bin"), b"AMD-17");
    write(&fw.join("amd-ucode/README"), b"not microcode");
    (root, kver)
}

#[test]
fn module_firmware_and_microcode_from_a_system_tree() {
    let Some(kernel) = common::kernel() else {
        return;
    };
    let (root, kver) = system_tree(&kernel, "tree");
    let modules = root.join("lib/modules").join(&kver);
    let modules = modules.to_str().unwrap();
    let out = root.join("generic.img");
    // No --firmware-dir: lib/firmware beside lib/modules/KVER.
    let stderr = build(
        &["--modules-dir", modules, "--storage", "--module", "qla1280"],
        &out,
    );

    // One warning, for the module named on the command line; the storage set's missing
    // firmware (ene-ub6250 declares six files, one is there) is silent.
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].starts_with("baton: warning: firmware for qla1280 not found in ")
            && warnings[0].ends_with("lib/firmware: qlogic/1040.bin"),
        "{stderr}"
    );
    let host_extra = host_intel_file().is_some_and(|h| h != "06-8e-0a" && h != "06-55-04");
    let (files, bytes) = if host_extra { (4, 32) } else { (3, 22) };
    assert!(
        stderr.contains(&format!(
            ", 3 firmware files, {files} microcode files ({bytes} bytes, uncompressed)"
        )),
        "{stderr}"
    );

    let image = fs::read(&out).unwrap();
    // The early archive is first, uncompressed, and holds only the microcode.
    assert!(image.starts_with(b"070701"));
    let listings = read_image(&image).unwrap();
    let early: Vec<&str> = listings
        .iter()
        .filter(|l| l.segment == 0)
        .map(|l| l.path.as_str())
        .collect();
    assert_eq!(
        early,
        [
            "kernel",
            "kernel/x86",
            "kernel/x86/microcode",
            "kernel/x86/microcode/AuthenticAMD.bin",
            "kernel/x86/microcode/GenuineIntel.bin"
        ]
    );
    assert!(listings
        .iter()
        .filter(|l| l.segment == 0)
        .all(|l| l.compression == Compression::None));
    // The main archive follows, in one segment: compressed as a whole, or, where the kernel
    // cannot decompress modules (this tree's 6.1), plain with its storage modules packed one
    // by one (`.ko.lz4`).
    let main: Vec<_> = listings.iter().filter(|l| l.segment != 0).collect();
    assert!(main.iter().all(|l| l.segment == 1));
    let packed = main.iter().any(|l| l.path.ends_with(".ko.lz4"));
    assert!(main
        .iter()
        .all(|l| (l.compression == Compression::None) == packed));
    let intel = &entry(&listings, "kernel/x86/microcode/GenuineIntel.bin")
        .unwrap()
        .data;
    // All of Intel's files, in name order, concatenated.
    let mut expected = b"INTEL-55".to_vec();
    if let Some(host) = host_intel_file().filter(|h| h != "06-8e-0a" && h != "06-55-04") {
        if host.as_str() < "06-8e-0a" {
            expected.extend_from_slice(b"INTEL-HOST");
            expected.extend_from_slice(b"INTEL-8E");
        } else {
            expected.extend_from_slice(b"INTEL-8E");
            expected.extend_from_slice(b"INTEL-HOST");
        }
    } else {
        expected.extend_from_slice(b"INTEL-8E");
    }
    assert_eq!(intel, &expected);
    assert_eq!(
        entry(&listings, "kernel/x86/microcode/AuthenticAMD.bin")
            .unwrap()
            .data,
        b"AMD-17"
    );

    // Firmware where the loader looks while the initramfs is the root.
    let file = |path: &str| entry(&listings, path).map(|l| (l.kind(), l.data.clone()));
    assert_eq!(
        file("lib/firmware/qlogic/1280.bin"),
        Some(('-', b"QL1280".to_vec()))
    );
    assert_eq!(
        file("lib/firmware/qlogic/12160.bin"),
        Some(('-', b"NEW-12160".to_vec()))
    );
    assert_eq!(
        file("lib/firmware/ene-ub6250/ms_init.bin.xz"),
        Some((
            '-',
            fs::read(root.join("lib/firmware/ene-ub6250/ms_init.bin.xz")).unwrap()
        ))
    );
    assert!(file("lib/firmware/qlogic/1040.bin").is_none());
    assert!(entry(&listings, "lib/firmware/vendor").is_none());
    assert!(entry(&listings, "lib/firmware/intel-ucode").is_none());
    // The module that asked for them is there too.
    assert!(listings
        .iter()
        .any(|l| l.path.ends_with("/qla1280.ko") && l.segment == 1));

    // Same inputs, same bytes.
    let again = root.join("again.img");
    build(
        &["--modules-dir", modules, "--storage", "--module", "qla1280"],
        &again,
    );
    assert_eq!(fs::read(&again).unwrap(), image);

    // --firmware-dir none: neither firmware nor microcode; the image is the compressed
    // stream alone.
    let bare = root.join("bare.img");
    let stderr = build(
        &[
            "--modules-dir",
            modules,
            "--module",
            "qla1280",
            "--firmware-dir",
            "none",
        ],
        &bare,
    );
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(!stderr.contains("firmware file"), "{stderr}");
    let bytes = fs::read(&bare).unwrap();
    assert!(Compression::detect(&bytes).is_some(), "compressed");
    assert!(!read_image(&bytes)
        .unwrap()
        .iter()
        .any(|l| l.path.starts_with("lib/firmware") || l.path.starts_with("kernel")));

    // --microcode none with the directory named: firmware, no early archive.
    let fw = root.join("lib/firmware");
    let no_ucode = root.join("no-ucode.img");
    build(
        &[
            "--modules-dir",
            modules,
            "--module",
            "qla1280",
            "--firmware-dir",
            fw.to_str().unwrap(),
            "--microcode",
            "none",
        ],
        &no_ucode,
    );
    let bytes = fs::read(&no_ucode).unwrap();
    assert!(Compression::detect(&bytes).is_some(), "no early archive");
    let listings = read_image(&bytes).unwrap();
    assert!(entry(&listings, "lib/firmware/qlogic/1280.bin").is_some());
    assert!(!listings.iter().any(|l| l.path.starts_with("kernel")));

    // --microcode host: this machine's CPU only.
    let host = root.join("host.img");
    build(
        &[
            "--modules-dir",
            modules,
            "--firmware-dir",
            fw.to_str().unwrap(),
            "--microcode",
            "host",
        ],
        &host,
    );
    let listings = listing(&host);
    let intel = entry(&listings, "kernel/x86/microcode/GenuineIntel.bin");
    let amd = entry(&listings, "kernel/x86/microcode/AuthenticAMD.bin");
    match host_intel_file() {
        Some(name) => {
            let want: &[u8] = match name.as_str() {
                "06-8e-0a" => b"INTEL-8E",
                "06-55-04" => b"INTEL-55",
                _ => b"INTEL-HOST",
            };
            assert_eq!(intel.unwrap().data, want);
            assert!(amd.is_none());
        }
        None => {
            assert!(intel.is_none());
            assert_eq!(amd.is_some(), host_is_amd());
        }
    }

    // A firmware directory that is not there is an error, not an empty image.
    let result = baton()
        .args(["build", "-o"])
        .arg(root.join("bad.img"))
        .args(["--firmware-dir"])
        .arg(root.join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&result.stderr).contains("is not a directory"));
    assert!(!root.join("bad.img").exists());
    fs::remove_dir_all(&root).unwrap();
}

/// The firmware tree of Debian's intel-microcode and amd64-microcode packages.
fn real_microcode() -> Option<PathBuf> {
    let result = Command::new(common::repo().join("qemu/fetch-microcode"))
        .output()
        .unwrap();
    if !result.status.success() {
        let why = String::from_utf8_lossy(&result.stderr);
        assert!(
            std::env::var("BATON_REQUIRE_KERNEL").as_deref() != Ok("1"),
            "qemu/fetch-microcode failed: {why}"
        );
        eprintln!("skipped: qemu/fetch-microcode failed: {why}");
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(result.stdout).unwrap().trim());
    let fw = dir.join("lib/firmware");
    assert!(fw.join("intel-ucode").is_dir() && fw.join("amd-ucode").is_dir());
    Some(fw)
}

/// Boots with extra qemu arguments (a CPU model) and returns the console.
fn boot_on(kernel: &Kernel, image: PathBuf, name: &str, append: &str, qemu: &[&str]) -> String {
    let b = Boot::new(kernel, image, plain_disk(), append);
    let (mut cmd, log) = b.command(name);
    cmd.arg("--").args(qemu);
    assert!(
        cmd.status().unwrap().success(),
        "qemu/boot failed for {name}"
    );
    String::from_utf8_lossy(&fs::read(log).unwrap()).into_owned()
}

#[test]
fn real_microcode_goes_first_and_the_kernel_reads_it() {
    let Some(kernel) = common::kernel() else {
        return;
    };
    let Some(fw) = real_microcode() else {
        return;
    };
    let fw = fw.to_str().unwrap();
    let with = virtio_ext4_image(&kernel, "microcode-all", &["--firmware-dir", fw]);
    let without = virtio_ext4_image(&kernel, "microcode-none", &["--microcode", "none"]);
    let size = |p: &Path| fs::metadata(p).unwrap().len();
    eprintln!(
        "image with all of Debian's microcode: {} bytes; without: {} bytes",
        size(&with),
        size(&without)
    );
    let listings = listing(&with);
    assert_eq!(listings[0].compression, Compression::None);
    let blob = |path: &str| entry(&listings, path).map_or(0, |l| l.data.len());
    // Intel's whole set is tens of MB, AMD's some hundred KB; both come before the rest.
    assert!(blob("kernel/x86/microcode/GenuineIntel.bin") > 1 << 20);
    assert!(blob("kernel/x86/microcode/AuthenticAMD.bin") > 10 << 10);
    assert!(listings
        .iter()
        .filter(|l| l.path.starts_with("kernel/"))
        .all(|l| l.segment == 0));

    // qemu's default CPU (AuthenticAMD family 0xf, with the hypervisor bit): the kernel's
    // loader stays off in a guest and says nothing; the image boots as it would without.
    let log = boot_on(
        &kernel,
        with.clone(),
        "microcode-default-cpu",
        "root=/dev/vda",
        &[],
    );
    marker(&log);
    assert!(
        !log.lines().any(|l| l.contains("microcode:")),
        "the loader spoke on qemu's default CPU:\n{log}"
    );
    assert!(!log.contains("Initramfs unpacking failed"), "{log}");

    // An AMD family 19h CPU (qemu's EPYC-Milan: model 1, stepping 1) without the hypervisor
    // bit: the loader reads AuthenticAMD.bin from the early archive and caches the patches of
    // its family (shown by the debug message of verify_and_add_patch), among them the one for
    // this CPU's equivalence ID 0xa011. TCG does not emulate the patch-loader MSR, so the
    // patch level stays qemu's and no update is reported.
    let milan = ["-cpu", "EPYC-Milan,-hypervisor"];
    let append = "root=/dev/vda dyndbg=\"file amd.c +p\" ignore_loglevel";
    let log = boot_on(&kernel, with, "microcode-milan", append, &milan);
    marker(&log);
    let added: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("microcode: verify_and_add_patch: Added patch_id: "))
        .collect();
    assert!(
        added.iter().any(|l| l.ends_with("proc_id: 0xa011")),
        "no patch for this CPU was read from the early archive:\n{log}"
    );
    assert!(log.contains("microcode: CPU0: patch_level="), "{log}");
    assert!(!log.contains("microcode updated early"), "{log}");
    // The same boot without the early archive: nothing read.
    let log = boot_on(&kernel, without, "microcode-milan-none", append, &milan);
    marker(&log);
    assert!(!log.contains("Added patch_id"), "{log}");
}
