//! `baton update` on a system tree (Debian's 6.1 modules under `lib/modules`, a kernel in
//! `boot`, /etc/baton/baton.conf): it writes `boot/initrd.img-KVER` as configured, the image
//! boots, and a build that fails leaves the old image as it was. The kernel package hooks'
//! contract (arguments, DEB_MAINT_PARAMS, INITRD=No) against a stand-in `baton`.

mod common;

use common::{marker, plain_disk, Boot};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn baton() -> Command {
    Command::new(env!("CARGO_BIN_EXE_baton"))
}

/// A system tree for `kernel`: its modules (linked), a kernel file, and a baton.conf.
fn system(kernel: &common::Kernel, conf: &str) -> (PathBuf, String) {
    // One tree per test: they run side by side.
    let test = std::thread::current()
        .name()
        .unwrap_or("update")
        .replace("::", "-");
    let root = common::work_dir().join(format!("update-root-{test}"));
    let _ = fs::remove_dir_all(&root);
    let kver = kernel
        .modules
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    fs::create_dir_all(root.join("lib/modules")).unwrap();
    std::os::unix::fs::symlink(&kernel.modules, root.join("lib/modules").join(&kver)).unwrap();
    fs::create_dir_all(root.join("boot")).unwrap();
    fs::write(root.join(format!("boot/vmlinuz-{kver}")), b"a kernel").unwrap();
    fs::create_dir_all(root.join("etc/baton")).unwrap();
    fs::write(root.join("etc/baton/baton.conf"), conf).unwrap();
    (root, kver)
}

fn update(root: &Path) -> std::process::Output {
    baton()
        .args(["update", "--root"])
        .arg(root)
        .env("SOURCE_DATE_EPOCH", "0")
        .output()
        .unwrap()
}

#[test]
fn writes_the_configured_image_and_it_boots() {
    let Some(k) = common::kernel() else { return };
    let (root, kver) = system(&k, "compress=zstd\ncmdline=\"rd.emergency=poweroff\"\n");
    let result = update(&root);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let image = root.join(format!("boot/initrd.img-{kver}"));
    let listing = baton().arg("inspect").arg(&image).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("# archive 0 (zstd)"), "{listing}");
    assert!(
        listing.contains("virtio_blk.ko"),
        "generic: every storage driver"
    );
    assert!(listing.contains("etc/baton/cmdline"), "{listing}");
    // The generic image finds the root by label on whatever bus it is.
    let log = Boot::new(&k, image.clone(), plain_disk(), "root=LABEL=batonroot").run("update");
    assert!(marker(&log).contains("root=[/dev/vda ext4 ro"), "{log}");

    // A configuration mistake: the update fails, naming the line, and the image stays.
    let before = fs::read(&image).unwrap();
    fs::write(root.join("etc/baton/baton.conf"), "compress=brotli\n").unwrap();
    let result = update(&root);
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains(
            "baton.conf:1: compress=\"brotli\": expected auto, gzip, zstd, xz, lz4 or none"
        ),
        "{stderr}"
    );
    assert_eq!(fs::read(&image).unwrap(), before);
    // So does a build that fails half-way (a module that does not exist).
    fs::write(
        root.join("etc/baton/baton.conf"),
        "modules_add=no_such_module\n",
    )
    .unwrap();
    let result = update(&root);
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("the old image, if any, is unchanged"),
        "{stderr}"
    );
    assert_eq!(fs::read(&image).unwrap(), before);
    let leftovers: Vec<_> = fs::read_dir(root.join("boot"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

/// Runs a kernel hook with a stand-in `baton` that records its arguments.
fn hook(name: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = common::work_dir().join(format!("hook-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let record = dir.join("called");
    let stub = dir.join("baton");
    fs::write(
        &stub,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", record.display()),
    )
    .unwrap();
    fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(common::repo().join(format!("initramfs/hooks/kernel/{name}")));
    cmd.args(args)
        .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
        .env_remove("DEB_MAINT_PARAMS")
        .env_remove("INITRD");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let status = cmd.status().unwrap();
    let called = fs::read_to_string(&record).unwrap_or_default();
    (status.code().unwrap_or(-1), called)
}

#[test]
fn kernel_postinst_hook_follows_the_kernel_packages_contract() {
    let postinst = "postinst.d/zz-baton";
    let image = ["6.1.0-57-amd64", "/boot/vmlinuz-6.1.0-57-amd64"];
    assert_eq!(
        hook(
            postinst,
            &image,
            &[("DEB_MAINT_PARAMS", "'configure' '6.1.0-57'")]
        ),
        (0, "update -k 6.1.0-57-amd64\n".to_owned())
    );
    assert_eq!(
        hook(postinst, &image, &[]),
        (0, "update -k 6.1.0-57-amd64\n".to_owned())
    );
    // Not on abort-upgrade and the like; not when the package says INITRD=No.
    assert_eq!(
        hook(
            postinst,
            &image,
            &[("DEB_MAINT_PARAMS", "'abort-upgrade' '6.1.0-56'")]
        ),
        (0, String::new())
    );
    assert_eq!(
        hook(postinst, &image, &[("INITRD", "No")]),
        (0, String::new())
    );
    // A package that passes no version is an error, as for initramfs-tools.
    assert_eq!(hook(postinst, &[], &[]).0, 2);
    // The postrm hook does nothing on an upgrade, and nothing for a kernel with no image.
    assert_eq!(
        hook(
            "postrm.d/zz-baton",
            &["9.9.9-none"],
            &[("DEB_MAINT_PARAMS", "'upgrade' '1'")]
        ),
        (0, String::new())
    );
    assert_eq!(
        hook(
            "postrm.d/zz-baton",
            &["9.9.9-none"],
            &[("DEB_MAINT_PARAMS", "'remove'")]
        )
        .0,
        0
    );
}

/// `-o OUT` puts the one kernel's image where kernel-install collects it, and nowhere else.
#[test]
fn update_writes_one_kernels_image_where_told() {
    let Some(k) = common::kernel() else { return };
    let (root, kver) = system(&k, "");
    let staged = root.join("staging/initrd");
    fs::create_dir_all(staged.parent().unwrap()).unwrap();
    // Over a world-readable image an older tool left, under umask 0: the new one is the
    // owner's only (it can hold key files and secrets on its command line).
    fs::write(&staged, b"old image").unwrap();
    fs::set_permissions(&staged, fs::Permissions::from_mode(0o644)).unwrap();
    let result = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_baton"))
        .args(["update", "--root"])
        .arg(&root)
        .args(["-k", &kver, "-o"])
        .arg(&staged)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(staged.is_file());
    assert_eq!(
        fs::metadata(&staged).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert!(!root.join(format!("boot/initrd.img-{kver}")).exists());
    // One path cannot hold every kernel's image.
    let result = baton()
        .args(["update", "--root"])
        .arg(&root)
        .arg("-o")
        .arg(&staged)
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&result.stderr).contains("name its kernel with -k KVER"));
}

/// `baton build --host` on the machine running the tests: the root's filesystem and its
/// disk's drivers, or, where the root is on no block device, the generic set and a warning.
/// When the machine's disk is virtio (as on these VMs), the host-only image boots one.
#[test]
fn host_only_image_carries_what_this_machines_root_needs() {
    let Some(k) = common::kernel() else { return };
    let out = common::work_dir().join("host-only.img");
    let result = baton()
        .args(["build", "--host", "-o"])
        .arg(&out)
        .arg("--modules-dir")
        .arg(&k.modules)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let root = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .map(str::to_owned)
        .unwrap();
    let on_block_device = !root.split(' ').nth(2).unwrap().starts_with("0:");
    let fstype = root.split(" - ").nth(1).unwrap().split(' ').next().unwrap();
    let listing = baton().arg("inspect").arg(&out).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    if !on_block_device {
        assert!(stderr.contains("warning: host-only:"), "{stderr}");
        assert!(listing.contains("virtio_blk.ko"), "generic: {listing}");
        return;
    }
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(
        listing.contains(&format!("/{fstype}.ko")),
        "the root's {fstype}: {listing}"
    );
    let generic = common::storage_image(&k);
    assert!(
        fs::metadata(&out).unwrap().len() < fs::metadata(&generic).unwrap().len() / 2,
        "host-only is smaller than generic"
    );
    if listing.contains("virtio_blk.ko") && fstype == "ext4" {
        let log = Boot::new(&k, out, plain_disk(), "root=LABEL=batonroot").run("host-only");
        assert!(marker(&log).contains("root=[/dev/vda ext4 ro"), "{log}");
    }
}

/// A system whose root is on a layer baton cannot bring up (the network, as its fstab says,
/// or a LUKS volume whose crypttab line wants a key script) keeps the image it has: `baton
/// update` names the layer and exits 1, and `baton check` says the same. Roots on LUKS, LVM
/// and MD RAID, and a plain root, are checked and written, the image carrying the system's
/// mdadm.conf, the crypttab lines the root needs and console-setup's keymap.
#[test]
fn an_image_that_could_not_boot_the_root_replaces_nothing() {
    let Some(k) = common::kernel() else { return };
    let (root, kver) = system(&k, "");
    let image = root.join(format!("boot/initrd.img-{kver}"));
    // The system's configuration, and the image that booted it.
    let configure = |fstab: &str, crypttab: &str, mdadm: &str| {
        fs::write(&image, b"the image that booted").unwrap();
        fs::write(root.join("etc/fstab"), fstab).unwrap();
        fs::write(root.join("etc/crypttab"), crypttab).unwrap();
        fs::create_dir_all(root.join("etc/mdadm")).unwrap();
        fs::write(root.join("etc/mdadm/mdadm.conf"), mdadm).unwrap();
    };
    let check = || {
        let out = baton()
            .args(["check", "--root"])
            .arg(&root)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    configure("server:/export / nfs4 defaults 0 0\n", "", "");
    let layer = "network (nfs4)";
    let result = update(&root);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(layer), "{layer:?} not in: {stderr}");
    assert!(stderr.contains("could not bring up the root"), "{stderr}");
    assert_eq!(fs::read(&image).unwrap(), b"the image that booted");
    let (code, stdout) = check();
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("FAIL root is on the {layer}")),
        "{stdout}"
    );
    let leftovers: Vec<_> = fs::read_dir(root.join("boot"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    // A LUKS root whose crypttab wants a key script: baton would leave it locked.
    configure(
        "/dev/mapper/cryptroot / ext4 defaults 0 1\n",
        "cryptroot UUID=0f1e2d3c-0000-4000-8000-000000000000 none luks,keyscript=decrypt_keyctl\n",
        "",
    );
    let result = update(&root);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("key scripts need a shell"), "{stderr}");
    assert_eq!(fs::read(&image).unwrap(), b"the image that booted");
    // Roots on LVM and MD (the image has device-mapper and md) and a plain root: checked
    // and written, with the system's mdadm.conf.
    let written = [
        (
            "/dev/mapper/cryptroot / ext4 defaults 0 1\n",
            "",
            "ok   encrypted volume cryptroot (LUKS): baton assembles it (dm_crypt, algif_skcipher there)",
        ),
        (
            "/dev/mapper/vg0-root / ext4 errors=remount-ro 0 1\n",
            "",
            "ok   LVM logical volume vg0/root: baton assembles it (dm_mod there)",
        ),
        (
            "UUID=5a5a5a5a-0000-4000-8000-000000000000 / ext4 defaults 0 1\n",
            "ARRAY /dev/md/0 metadata=1.2 UUID=01234567:89abcdef:01234567:89abcdef name=host:0\n",
            "ok   MD RAID array 0: baton assembles it (md_mod there)",
        ),
        (
            "UUID=5a5a5a5a-0000-4000-8000-000000000000 / ext4 defaults 0 1\n",
            "",
            "ok   filesystem ext4 from UUID=",
        ),
    ];
    let crypttab = "cryptroot UUID=0f1e2d3c-0000-4000-8000-000000000000 none luks,discard\n";
    // Debian's console-setup keeps the keyboard's keymap compiled for the console: the
    // image carries it for the passphrase prompt.
    fs::create_dir_all(root.join("etc/console-setup")).unwrap();
    fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keymap/cached_UTF-8_del.kmap.gz"
        ),
        root.join("etc/console-setup/cached_UTF-8_del.kmap.gz"),
    )
    .unwrap();
    for (fstab, mdadm, line) in written {
        configure(fstab, crypttab, mdadm);
        let result = update(&root);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(result.status.success(), "{stderr}");
        assert_ne!(fs::read(&image).unwrap(), b"the image that booted");
        let (code, stdout) = check();
        assert_eq!(code, Some(0), "{stdout}");
        assert!(stdout.contains(line), "{stdout}");
        let listing = baton().arg("inspect").arg(&image).output().unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout);
        assert!(listing.contains("etc/mdadm/mdadm.conf"), "{listing}");
        assert!(listing.contains("etc/crypttab"), "{listing}");
        assert!(listing.contains("etc/baton/keymap"), "{listing}");
    }
}
