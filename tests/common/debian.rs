//! A freshly installed Debian bookworm to put baton on and boot: the tree of
//! qemu/make-systemd-tree (systemd, udev, initramfs-tools, the kernel through
//! linux-image-amd64), copied for each test, changed with apt in a chroot (qemu/in-tree),
//! and booted under qemu from its own /boot until systemd reports how the boot went.

use super::{repo, work_dir, Boot, Kernel, Typist};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// The cached tree and what its stamp says about it.
pub struct Tree {
    pub path: PathBuf,
    pub stamp: HashMap<String, String>,
}

impl Tree {
    pub fn get(&self, key: &str) -> &str {
        self.stamp
            .get(key)
            .unwrap_or_else(|| panic!("{}/.baton-tree has no {key}=", self.path.display()))
    }
}

/// Root and a kernel, or why the test cannot run.
pub fn can_run() -> bool {
    if super::kernel().is_none() {
        return false;
    }
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var("BATON_REQUIRE_ROOT_TESTS").as_deref() != Ok("1"),
            "installing the package into a Debian tree needs root (debootstrap, chroot)"
        );
        eprintln!("skipped: installing the package into a Debian tree needs root");
        return false;
    }
    let init = repo().join("target/x86_64-unknown-linux-musl/init/baton-init");
    if !repo().join("target/release/baton").is_file() || !init.is_file() {
        assert!(
            std::env::var("BATON_REQUIRE_KERNEL").as_deref() != Ok("1"),
            "target/release/baton or {} is missing: scripts/build runs before the tests",
            init.display()
        );
        eprintln!("skipped: the package needs scripts/build first");
        return false;
    }
    true
}

/// The bookworm system of qemu/make-systemd-tree (built once, about 100 s, then cached).
pub fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let start = Instant::now();
        let out = Command::new(repo().join("qemu/make-systemd-tree"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "qemu/make-systemd-tree: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let stamp = fs::read_to_string(path.join(".baton-tree"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        eprintln!(
            "debian_install: tree {} ready in {:.1} s",
            path.display(),
            start.elapsed().as_secs_f64()
        );
        Tree { path, stamp }
    })
}

/// target/debian/baton_VERSION_amd64.deb from the binaries scripts/build made, once.
pub fn package() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let out = Command::new(repo().join("scripts/package"))
            .env("BATON_PACKAGE_NO_BUILD", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/package: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        repo().join(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// A fresh copy of the cached tree for one test to change (a reflink copy where the
/// filesystem can, about 800 MB otherwise).
pub fn scratch(name: &str) -> PathBuf {
    let dir = work_dir().join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("tree");
    let status = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(&tree().path)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success(), "cp -a of the tree failed");
    copy
}

/// Runs a command chrooted in `root` with the tree's apt cache; its output, stdout and
/// stderr together, or a failure showing them.
pub fn in_tree(root: &Path, envs: &[&str], script: &str) -> String {
    let mut cmd = Command::new(repo().join("qemu/in-tree"));
    cmd.arg("--apt-cache").arg(tree().get("apt_cache"));
    for env in envs {
        cmd.args(["--env", env]);
    }
    let out = cmd
        .arg(root)
        .args(["/bin/sh", "-c", &format!("exec 2>&1; {script}")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "in the tree: {script}\nfailed ({}):\n{text}",
        out.status
    );
    text
}

/// apt-get in `root`, timed, its output shown.
pub fn apt(root: &Path, args: &str) -> String {
    let start = Instant::now();
    let out = in_tree(root, &[], &format!("apt-get -o Dpkg::Use-Pty=0 {args}"));
    eprintln!(
        "debian_install: apt-get {args} ({:.1} s):\n{out}",
        start.elapsed().as_secs_f64()
    );
    out
}

/// dpkg's two-letter state of a package in `root` ("ii", "rc"), or "" when dpkg knows none.
pub fn dpkg_state(root: &Path, package: &str) -> String {
    in_tree(
        root,
        &[],
        &format!("dpkg-query -W -f='${{db:Status-Abbrev}}' {package} 2>/dev/null || true"),
    )
    .trim()
    .to_owned()
}

/// `baton inspect IMAGE`, one line per entry.
pub fn listing(image: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("inspect")
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "baton inspect {}: {}",
        image.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn has_entry(listing: &str, path: &str) -> bool {
    listing.lines().any(|l| l.ends_with(&format!(" {path}")))
}

/// An image baton wrote: its manifest and the init.
pub fn assert_batons(image: &Path) {
    let list = listing(image);
    assert!(
        has_entry(&list, "etc/baton/manifest") && has_entry(&list, "init"),
        "{} is not baton's image:\n{list}",
        image.display()
    );
}

/// An image initramfs-tools wrote (after Debian's early microcode archive, if any).
pub fn assert_initramfs_tools(image: &Path) {
    let list = listing(image);
    assert!(
        has_entry(&list, "conf/initramfs.conf")
            && has_entry(&list, "scripts/local")
            && !has_entry(&list, "etc/baton/manifest"),
        "{} is not initramfs-tools' image:\n{list}",
        image.display()
    );
}

/// What baton-report.service printed on the console.
pub struct Report {
    pub state: String,
    pub failed: Vec<String>,
    pub analyze: Vec<String>,
}

/// The report's lines, wherever they start: the login prompt of the serial getty can land
/// in front of one.
pub fn report(log: &str) -> Option<Report> {
    let marked = |tag: &str| -> Vec<String> {
        log.lines()
            .filter_map(|l| l.find(tag).map(|i| l[i + tag.len()..].trim().to_owned()))
            .collect()
    };
    if marked("BATON-REPORT-END").is_empty() {
        return None;
    }
    Some(Report {
        state: marked("BATON-SYSTEMD state=").into_iter().next()?,
        failed: marked("BATON-FAILED ")
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect(),
        analyze: marked("BATON-ANALYZE "),
    })
}

/// The kernel in `root`'s /boot as qemu/boot takes it: a directory with the ELF vmlinux
/// (booted through PVH, about 2.4 s quicker under TCG), or the bzImage when that fails.
pub fn kernel_of(root: &Path, kver: &str, tag: &'static str) -> Kernel {
    let dir = root.parent().unwrap().join(format!("kernel-{kver}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let vmlinuz = root.join(format!("boot/vmlinuz-{kver}"));
    let extracted = Command::new(repo().join("qemu/extract-vmlinux"))
        .arg(&vmlinuz)
        .arg(dir.join("vmlinux"))
        .status()
        .unwrap();
    if !extracted.success() {
        fs::copy(&vmlinuz, dir.join("vmlinuz")).unwrap();
    }
    Kernel {
        dir,
        modules: root.join(format!("lib/modules/{kver}")),
        tag,
    }
}

/// Boots `root` as it is now: an ext4 disk made from it (with the UUID its fstab names),
/// the kernel and initrd of its own /boot. Returns the console log once systemd has
/// reported "running" with no failed unit, or fails showing the report.
pub fn boot(root: &Path, kver: &str, tag: &'static str, name: &str) -> String {
    let uuid = tree().get("uuid");
    let disk = root.parent().unwrap().join("disk.img");
    make_ext4(root, &disk, uuid, "root");
    let log = boot_disks(
        root,
        kver,
        tag,
        name,
        std::slice::from_ref(&disk),
        &format!("root=UUID={uuid}"),
        &[],
    );
    fs::remove_file(&disk).unwrap();
    log
}

/// The modules the booted system had once its udev settled (the report unit's BATON-LSMOD
/// line, which the serial getty's login prompt can precede on the same line).
pub fn loaded_after_boot(log: &str) -> std::collections::BTreeSet<String> {
    let line = log
        .lines()
        .find_map(|l| l.split_once("BATON-LSMOD ").map(|(_, modules)| modules))
        .unwrap_or_else(|| panic!("no BATON-LSMOD line (an old tree?):\n{log}"));
    line.split_whitespace().map(str::to_owned).collect()
}

/// An ext4 image of `tree` with `uuid` and `label`, sized for it and what a boot writes.
pub fn make_ext4(tree: &Path, out: &Path, uuid: &str, label: &str) {
    let size = fs_size_mb(tree);
    let made = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", label, "-U", uuid, "-d"])
        .arg(tree)
        .arg(out)
        .arg(format!("{size}M"))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "mkfs.ext4 -d {} failed", tree.display());
}

/// Boots the kernel and initrd of `root`'s /boot on `disks` with `append`, and returns the
/// console log once systemd has reported "running" with no failed unit, or fails showing
/// the report.
pub fn boot_disks(
    root: &Path,
    kver: &str,
    tag: &'static str,
    name: &str,
    disks: &[PathBuf],
    append: &str,
    passphrases: &[&str],
) -> String {
    let kernel = kernel_of(root, kver, tag);
    let mut boot = Boot::new(
        &kernel,
        root.join(format!("boot/initrd.img-{kver}")),
        disks[0].clone(),
        append,
    );
    boot.disks = disks.to_vec();
    // systemd's whole boot under TCG: about 20 s with baton's image, 35 s with stock.
    boot.timeout = 300;
    let mut typist = (!passphrases.is_empty()).then(|| Typist::new(name));
    boot.input_file = typist.as_ref().map(|t| t.path.clone());
    let (mut cmd, log) = boot.command(name);
    let _ = fs::remove_file(&log);
    let start = Instant::now();
    let mut child = cmd.args(["--memory", "1024"]).spawn().unwrap();
    if let Some(typist) = &mut typist {
        typist.answer(&log, "Please enter passphrase for disk ", passphrases);
    }
    let status = child.wait().unwrap();
    let took = start.elapsed().as_secs_f64();
    assert!(status.success(), "qemu/boot failed for {name}");
    let log = String::from_utf8_lossy(&fs::read(&log).unwrap()).into_owned();
    let Some(report) = report(&log) else {
        panic!("{name}: systemd never reported (emergency mode, a hang?); console:\n{log}");
    };
    let evidence: Vec<&str> = log
        .lines()
        .filter(|l| {
            ["BATON-JOURNAL", "BATON-ERR", "BATON-WARN"]
                .iter()
                .any(|t| l.contains(t))
        })
        .collect();
    assert!(
        report.state == "running" && report.failed.is_empty(),
        "{name}: systemd is {:?}, failed units {:?}\n{}\nconsole: {}",
        report.state,
        report.failed,
        evidence.join("\n"),
        log
    );
    eprintln!(
        "debian: {name}: state={} failed=none, qemu {took:.1} s; {}\n{}",
        report.state,
        report.analyze.join(" / "),
        evidence.join("\n")
    );
    log
}

/// The tree's size and room for the journal and what the boot writes (the disk is
/// attached copy-on-write, so nothing is kept).
pub fn fs_size_mb(root: &Path) -> u64 {
    let out = Command::new("du").arg("-sm").arg(root).output().unwrap();
    let mb: u64 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du -sm");
    mb * 13 / 10 + 256
}

/// Puts the package where apt in the chroot can read it.
pub fn copy_package(root: &Path) -> String {
    let deb = package();
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    fs::copy(deb, root.join("tmp").join(&name)).unwrap();
    format!("/tmp/{name}")
}
