//! The proof on a real Debian: baton's package installed with apt into a freshly installed
//! bookworm (qemu/make-systemd-tree: systemd, udev, initramfs-tools, the kernel through
//! linux-image-amd64, all as apt installs them), which it must take over from
//! initramfs-tools (both provide and conflict with linux-initramfs-tool). The system then
//! boots through baton's image to a systemd that reports "running" with no failed unit. A
//! newer kernel installed with apt (6.12) gets its image from baton's kernel hook and boots
//! the same way; purged, its image goes with it. Installing initramfs-tools again removes
//! baton and gives the images back to initramfs-tools, and that system boots too.
//!
//! Also the kernel-install plugin, run alone with a staging directory and through systemd's
//! own kernel-install (bookworm's 252) with a Boot Loader Specification layout.
//!
//! Every step runs chrooted in a copy of the cached tree (qemu/in-tree), with apt's .debs
//! from the tree's cache: nothing is downloaded once the tree exists. Needs root and
//! BATON_KERNEL (the tree is made for that kernel); skipped without them, a failure under
//! BATON_REQUIRE_ROOT_TESTS=1.

mod common;

use common::{assert_has, Boot, Kernel};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// The cached tree and what its stamp says about it.
struct Tree {
    path: PathBuf,
    stamp: HashMap<String, String>,
}

impl Tree {
    fn get(&self, key: &str) -> &str {
        self.stamp
            .get(key)
            .unwrap_or_else(|| panic!("{}/.baton-tree has no {key}=", self.path.display()))
    }
}

/// Root and a kernel, or why the test cannot run.
fn can_run() -> bool {
    if common::kernel().is_none() {
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
    let init = common::repo().join("target/x86_64-unknown-linux-musl/release/baton-init");
    if !common::repo().join("target/release/baton").is_file() || !init.is_file() {
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
fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let start = Instant::now();
        let out = Command::new(common::repo().join("qemu/make-systemd-tree"))
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
fn package() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let out = Command::new(common::repo().join("scripts/package"))
            .env("BATON_PACKAGE_NO_BUILD", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/package: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        common::repo().join(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// A fresh copy of the cached tree for one test to change (a reflink copy where the
/// filesystem can, about 800 MB otherwise).
fn scratch(name: &str) -> PathBuf {
    let dir = common::work_dir().join(name);
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
fn in_tree(root: &Path, envs: &[&str], script: &str) -> String {
    let mut cmd = Command::new(common::repo().join("qemu/in-tree"));
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
fn apt(root: &Path, args: &str) -> String {
    let start = Instant::now();
    let out = in_tree(root, &[], &format!("apt-get -o Dpkg::Use-Pty=0 {args}"));
    eprintln!(
        "debian_install: apt-get {args} ({:.1} s):\n{out}",
        start.elapsed().as_secs_f64()
    );
    out
}

/// dpkg's two-letter state of a package in `root` ("ii", "rc"), or "" when dpkg knows none.
fn dpkg_state(root: &Path, package: &str) -> String {
    in_tree(
        root,
        &[],
        &format!("dpkg-query -W -f='${{db:Status-Abbrev}}' {package} 2>/dev/null || true"),
    )
    .trim()
    .to_owned()
}

/// `baton inspect IMAGE`, one line per entry.
fn listing(image: &Path) -> String {
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

fn has_entry(listing: &str, path: &str) -> bool {
    listing.lines().any(|l| l.ends_with(&format!(" {path}")))
}

/// An image baton wrote: its manifest and the init.
fn assert_batons(image: &Path) {
    let list = listing(image);
    assert!(
        has_entry(&list, "etc/baton/manifest") && has_entry(&list, "init"),
        "{} is not baton's image:\n{list}",
        image.display()
    );
}

/// An image initramfs-tools wrote (after Debian's early microcode archive, if any).
fn assert_initramfs_tools(image: &Path) {
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
struct Report {
    state: String,
    failed: Vec<String>,
    analyze: Vec<String>,
}

/// The report's lines, wherever they start: the login prompt of the serial getty can land
/// in front of one.
fn report(log: &str) -> Option<Report> {
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
fn kernel_of(root: &Path, kver: &str, tag: &'static str) -> Kernel {
    let dir = root.parent().unwrap().join(format!("kernel-{kver}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let vmlinuz = root.join(format!("boot/vmlinuz-{kver}"));
    let extracted = Command::new(common::repo().join("qemu/extract-vmlinux"))
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
fn boot(root: &Path, kver: &str, tag: &'static str, name: &str) -> String {
    let uuid = tree().get("uuid");
    let disk = root.parent().unwrap().join("disk.img");
    let size = fs_size_mb(root);
    let made = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "root", "-U", uuid, "-d"])
        .arg(root)
        .arg(&disk)
        .arg(format!("{size}M"))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "mkfs.ext4 -d {} failed", root.display());
    let kernel = kernel_of(root, kver, tag);
    let mut boot = Boot::new(
        &kernel,
        root.join(format!("boot/initrd.img-{kver}")),
        disk.clone(),
        &format!("root=UUID={uuid}"),
    );
    // systemd's whole boot under TCG: about 20 s with baton's image, 35 s with stock.
    boot.timeout = 300;
    let (mut cmd, log) = boot.command(name);
    let start = Instant::now();
    let status = cmd.args(["--memory", "1024"]).status().unwrap();
    let took = start.elapsed().as_secs_f64();
    fs::remove_file(&disk).unwrap();
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
        "debian_install: {name}: state={} failed=none, qemu {took:.1} s; {}\n{}",
        report.state,
        report.analyze.join(" / "),
        evidence.join("\n")
    );
    log
}

/// The tree's size and room for the journal and what the boot writes (the disk is
/// attached copy-on-write, so nothing is kept).
fn fs_size_mb(root: &Path) -> u64 {
    let out = Command::new("du").arg("-sm").arg(root).output().unwrap();
    let mb: u64 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du -sm");
    mb * 13 / 10 + 256
}

/// Puts the package where apt in the chroot can read it.
fn copy_package(root: &Path) -> String {
    let deb = package();
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    fs::copy(deb, root.join("tmp").join(&name)).unwrap();
    format!("/tmp/{name}")
}

#[test]
fn installs_on_bookworm_boots_systemd_takes_new_kernels_and_hands_back() {
    if !can_run() {
        return;
    }
    let start = Instant::now();
    let tree = tree();
    let kver = tree.get("kernel").to_owned();
    let new_package = tree.get("new_kernel").to_owned();
    let new_kver = new_package
        .strip_prefix("linux-image-")
        .expect("a linux-image- package")
        .to_owned();
    let root = scratch("debian-install");
    let image = root.join(format!("boot/initrd.img-{kver}"));
    let new_image = root.join(format!("boot/initrd.img-{new_kver}"));
    assert_initramfs_tools(&image);

    // apt replaces initramfs-tools with baton (linux-initramfs-tool), and baton's postinst
    // writes the installed kernel's image.
    let deb = copy_package(&root);
    let out = apt(&root, &format!("install -y {deb}"));
    assert_eq!(dpkg_state(&root, "baton"), "ii", "{out}");
    assert_ne!(dpkg_state(&root, "initramfs-tools"), "ii", "{out}");
    assert_has(&out, &format!("baton: wrote the image for {kver}"));
    assert_batons(&image);

    let log = boot(&root, &kver, "6.1", "debian-install-6.1");
    assert_has(&log, "baton: running /sbin/init");

    // A newer kernel: the kernel package's postinst hooks; baton's writes the image and
    // initramfs-tools' (left behind as a conffile) does nothing without update-initramfs.
    let out = apt(&root, "install -y linux-image-6.12-amd64");
    assert_eq!(dpkg_state(&root, &new_package), "ii", "{out}");
    assert!(!out.contains("update-initramfs: Generating"), "{out}");
    assert_batons(&new_image);
    let log = boot(&root, &new_kver, "6.12", "debian-install-6.12");
    assert_has(&log, "baton: running /sbin/init");

    // Purged, the kernel takes its image with it; the other kernel's stays.
    let out = apt(
        &root,
        &format!("purge -y linux-image-6.12-amd64 {new_package}"),
    );
    let state = dpkg_state(&root, &new_package);
    assert!(
        state.is_empty() || state == "un",
        "{new_package} is {state}:\n{out}"
    );
    assert!(
        !new_image.exists(),
        "{} is still there:\n{out}",
        new_image.display()
    );
    assert_batons(&image);

    // initramfs-tools back: baton is removed (its conffiles stay, as dpkg does), and
    // initramfs-tools' trigger writes its own image again.
    let out = apt(&root, "install -y initramfs-tools");
    assert_eq!(dpkg_state(&root, "initramfs-tools"), "ii", "{out}");
    assert_eq!(dpkg_state(&root, "baton"), "rc", "{out}");
    assert!(!root.join("usr/bin/baton").exists());
    assert_initramfs_tools(&image);
    let log = boot(&root, &kver, "6.1", "debian-install-initramfs-tools");
    assert!(!log.contains("baton: running /sbin/init"), "{log}");

    fs::remove_dir_all(root.parent().unwrap()).unwrap();
    eprintln!(
        "debian_install: install, 3 boots, upgrade, purge, hand-back: {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// A loader entry's initrd lines.
fn entry_initrds(root: &Path, machine_id: &str, kver: &str) -> Vec<String> {
    let entry = root.join(format!("boot/loader/entries/{machine_id}-{kver}.conf"));
    fs::read_to_string(&entry)
        .unwrap_or_else(|e| panic!("{}: {e}", entry.display()))
        .lines()
        .filter_map(|l| l.strip_prefix("initrd"))
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn kernel_install_plugin_builds_the_initrd_once() {
    if !can_run() {
        return;
    }
    let tree = tree();
    let kver = tree.get("kernel").to_owned();
    let root = scratch("debian-kernel-install");
    let deb = copy_package(&root);
    apt(&root, &format!("install -y {deb}"));
    let plugin = "/usr/lib/kernel/install.d/55-baton.install";
    let boot_image = fs::read(root.join(format!("boot/initrd.img-{kver}"))).unwrap();

    // Alone, as kernel-install runs it where no other plugin stages an initrd: it builds
    // the system's image (baton.conf's, the same bytes as /boot's) into the staging area.
    let stage = root.join("tmp/stage");
    fs::create_dir_all(&stage).unwrap();
    let out = in_tree(
        &root,
        &[
            "KERNEL_INSTALL_STAGING_AREA=/tmp/stage",
            "KERNEL_INSTALL_VERBOSE=1",
            &format!(
                "KERNEL_INSTALL_PLUGINS={plugin} /usr/lib/kernel/install.d/90-loaderentry.install"
            ),
        ],
        &format!("{plugin} add {kver} /boot/entry/{kver} /boot/vmlinuz-{kver}"),
    );
    eprintln!("debian_install: {plugin} add:\n{out}");
    assert_batons(&stage.join("initrd"));
    assert!(
        fs::read(stage.join("initrd")).unwrap() == boot_image,
        "the staged initrd differs from /boot's"
    );
    let staged: Vec<_> = fs::read_dir(&stage).unwrap().collect();
    assert_eq!(
        staged.len(),
        1,
        "only the initrd is left in the staging area"
    );

    // Initrds given on the command line, `remove`, a kernel that is not installed.
    let empty = root.join("tmp/stage-empty");
    fs::create_dir_all(&empty).unwrap();
    let env = ["KERNEL_INSTALL_STAGING_AREA=/tmp/stage-empty"];
    in_tree(
        &root,
        &env,
        &format!(
            "{plugin} add {kver} /boot/entry/{kver} /boot/vmlinuz-{kver} /boot/initrd.img-{kver}"
        ),
    );
    in_tree(
        &root,
        &env,
        &format!("{plugin} remove {kver} /boot/entry/{kver}"),
    );
    let out = in_tree(
        &root,
        &env,
        &format!("{plugin} add 0.0.0-none /boot/entry/0 /boot/vmlinuz-{kver} && echo WRONG || echo exit=$?"),
    );
    assert_has(&out, "exit=1");
    assert_has(&out, "baton could not build the initrd for 0.0.0-none");
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0, "{out}");

    // systemd's own kernel-install, Boot Loader Specification layout. Debian's
    // 85-initrd.install stages /boot/initrd.img-KVER (baton's, from the kernel hook), so the
    // entry gets that one alone, not a second copy built by the plugin.
    let machine_id = fs::read_to_string(root.join("etc/machine-id"))
        .unwrap()
        .trim()
        .to_owned();
    let setup =
        "echo layout=bls >/etc/kernel/install.conf; echo root=UUID=x ro >/etc/kernel/cmdline";
    let out = in_tree(
        &root,
        &[],
        &format!("{setup}; kernel-install -v add {kver} /boot/vmlinuz-{kver}"),
    );
    eprintln!("debian_install: kernel-install add (Debian's plugins):\n{out}");
    let entry_dir = format!("/boot/{machine_id}/{kver}");
    assert_eq!(
        entry_initrds(&root, &machine_id, &kver),
        [format!("{entry_dir}/initrd.img-{kver}")],
        "{out}"
    );
    in_tree(&root, &[], &format!("kernel-install remove {kver}"));

    // With Debian's plugin masked, baton's builds the entry's one initrd.
    let out = in_tree(
        &root,
        &[],
        &format!(
            "ln -s /dev/null /etc/kernel/install.d/85-initrd.install; \
             kernel-install -v add {kver} /boot/vmlinuz-{kver}"
        ),
    );
    eprintln!("debian_install: kernel-install add (85-initrd masked):\n{out}");
    assert_eq!(
        entry_initrds(&root, &machine_id, &kver),
        [format!("{entry_dir}/initrd")],
        "{out}"
    );
    let staged = root.join(format!("boot/{machine_id}/{kver}/initrd"));
    assert_batons(&staged);
    assert!(fs::read(&staged).unwrap() == boot_image);
    in_tree(&root, &[], &format!("kernel-install remove {kver}"));
    assert!(!root.join(format!("boot/{machine_id}/{kver}")).exists());

    fs::remove_dir_all(root.parent().unwrap()).unwrap();
}
