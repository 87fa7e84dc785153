//! `baton run` as virtme-ng users drive it, on Debian's 6.1 and 6.12: the command's streams
//! apart and byte for byte, stdin piped in; the shell on a terminal (driven through a
//! pseudo-terminal as a person types); where it starts and as whom; further host
//! directories read-write, read-only and as overlays; disks; kernel arguments; a kernel
//! straight from a tree after `make`.

mod common;

use common::{kernel, kernel_new, work_dir, Kernel};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `baton run` on `k` with its modules, over 9p (unless `extra` says), in a cache of the
/// test's own, with the virtiofsd that enforces read-only first on PATH when there is one.
fn baton(k: &Kernel, root: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.arg("run")
        .arg("--kernel")
        .arg(kernel_image(k))
        .arg("--modules-dir")
        .arg(&k.modules)
        .arg("--root")
        .arg(root)
        .args(if extra.contains(&"--share") {
            &[][..]
        } else {
            &["--share", "9p"][..]
        })
        .args(["--timeout", "300"])
        .args(extra)
        .env("XDG_CACHE_HOME", work_dir().join("cache"));
    if let Some(dir) = common::read_only_virtiofsd() {
        cmd.env("PATH", common::path_with(&dir));
    }
    cmd
}

fn kernel_image(k: &Kernel) -> PathBuf {
    if k.dir.join("vmlinux").exists() {
        k.dir.join("vmlinux")
    } else {
        k.dir.join("vmlinuz")
    }
}

fn show(out: &Output) -> String {
    common::show_output(out)
}

/// A directory of the test's own, empty.
fn fresh(name: &str) -> PathBuf {
    let dir = work_dir().join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// stdin piped in reaches the command to its last byte and its end; stdout and stderr come
/// back apart, byte for byte; the command starts in the directory baton was started in, as
/// the user named, with that user's groups.
fn streams(k: &Kernel) {
    let tree = common::busybox_tree("run-user");
    fs::write(
        tree.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ntester:x:1234:1234:A tester:/home/tester:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        tree.join("etc/group"),
        "root:x:0:\nkvm:x:104:other,tester\ntester:x:1234:\n",
    )
    .unwrap();
    let input: Vec<u8> = (0..=255u8).cycle().take(256 * 300).collect();
    let script =
        "cat; pwd >&2; id -u >&2; id -G >&2; echo $HOME >&2; printf 'no newline' >&2; exit 4";
    let mut child = baton(k, &tree, &["--user", "tester"])
        .args(["--", "sh", "-c", script])
        .current_dir(tree.join("bin"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = {
        let input = input.clone();
        std::thread::spawn(move || stdin.write_all(&input))
    };
    let out = child.wait_with_output().unwrap();
    feed.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        out.stdout == input,
        "stdout differs from stdin: {} bytes of {}",
        out.stdout.len(),
        input.len()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "/bin\n1234\n1234 104\n/home/tester\nno newline",
        "{}",
        show(&out)
    );
}

#[test]
fn streams_on_6_1() {
    let Some(k) = kernel() else { return };
    streams(&k);
}

#[test]
fn streams_on_6_12() {
    let Some(k) = kernel_new() else { return };
    streams(&k);
}

/// One VM with every option a CI job passes: this machine's `/` as the root (for blkid),
/// a directory read-write, one read-only, one as an overlay, a disk, kernel arguments, qemu
/// options, a start directory. Each says what it saw; the host's side is checked after.
fn options(k: &Kernel, share: &str) {
    use std::os::unix::fs::PermissionsExt;
    if share == "virtiofs" && common::read_only_virtiofsd().is_none() {
        return;
    }
    let dir = fresh(&format!("options-{share}-{}", k.tag));
    let (rw, ro, ov) = (dir.join("rw"), dir.join("ro"), dir.join("ov"));
    for d in [&rw, &ro, &ov] {
        fs::create_dir(d).unwrap();
        fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    }
    fs::write(ro.join("kept"), "ro\n").unwrap();
    fs::write(ov.join("f"), "host\n").unwrap();
    fs::set_permissions(ov.join("f"), fs::Permissions::from_mode(0o666)).unwrap();
    let disk = dir.join("disk.img");
    fs::File::create(&disk).unwrap().set_len(16 << 20).unwrap();
    let made = Command::new("mkfs.ext4")
        .args(["-q", "-L", "batondisk"])
        .arg(&disk)
        .status()
        .unwrap();
    assert!(made.success());
    // --qemu-opts: a second disk of qemu's own spelling, read-only.
    let extra = dir.join("extra.img");
    fs::File::create(&extra).unwrap().set_len(1 << 20).unwrap();
    let script = "pwd; test -b /dev/vdb && echo qemu-opts; \
        echo from-guest > /mnt/rw/written; \
        (echo x > /mnt/ro/new) 2>/dev/null && echo ro-writable || echo ro-refused; \
        echo guest > /mnt/ov/f; cat /mnt/ov/f; \
        blkid -s LABEL -o value /dev/vda; \
        cat /proc/cmdline";
    let mut cmd = baton(k, Path::new("/"), &["--share", share]);
    cmd
        .arg(format!("--rwdir=/mnt/rw={}", rw.display()))
        .arg(format!("--rodir=/mnt/ro={}", ro.display()))
        .arg(format!("--overlay-rwdir=/mnt/ov={}", ov.display()))
        .arg("--disk")
        .arg(&disk)
        .args(["--append", "baton.test=\"a b\" x=1", "--append", "y=2"])
        .arg("--qemu-opts")
        .arg(format!(
            "-drive if=none,id=extra,format=raw,readonly=on,file={} -device virtio-blk-pci,drive=extra",
            extra.display()
        ))
        .args(["--cwd", "/mnt/ro", "--", "sh", "-c", script]);
    let out = common::vm_output(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(
        lines.get(..5).unwrap_or_default(),
        ["/mnt/ro", "qemu-opts", "ro-refused", "guest", "batondisk"],
        "{}",
        show(&out)
    );
    let cmdline = lines.get(5).copied().unwrap_or_default();
    assert!(cmdline.ends_with(" baton.test=a b x=1 y=2"), "{cmdline}");
    // The host's side: the write went through, the others did not.
    assert_eq!(
        fs::read_to_string(rw.join("written")).unwrap(),
        "from-guest\n"
    );
    assert!(!ro.join("new").exists());
    assert_eq!(fs::read_to_string(ov.join("f")).unwrap(), "host\n");
}

#[test]
fn options_on_6_1() {
    let Some(k) = kernel() else { return };
    options(&k, "9p");
}

#[test]
fn options_on_6_12() {
    let Some(k) = kernel_new() else { return };
    options(&k, "9p");
}

/// Each directory over a virtiofsd of its own, the read-only ones refused there.
#[test]
fn options_over_virtiofs_on_6_12() {
    let Some(k) = kernel_new() else { return };
    options(&k, "virtiofs");
}

/// `--network user`: the guest reaches a server on the host's loopback through qemu's
/// 10.0.2.2, with qemu's DNS forwarder in its resolv.conf.
fn network(k: &Kernel) {
    use std::io::Read;
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let serve = std::thread::spawn(move || {
        let (mut peer, _) = server.accept().unwrap();
        peer.write_all(b"hello from the host\n").unwrap();
        let mut asked = String::new();
        let _ = peer.read_to_string(&mut asked);
    });
    let tree = common::busybox_tree("run");
    let script = format!("busybox nc 10.0.2.2 {port} </dev/null; cat /etc/resolv.conf");
    let out = common::vm_output(
        baton(k, &tree, &["--network", "user"]).args(["--", "sh", "-c", &script]),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the host\nnameserver 10.0.2.3\n",
        "{}",
        show(&out)
    );
    serve.join().unwrap();
}

#[test]
fn network_on_6_1() {
    let Some(k) = kernel() else { return };
    network(&k);
}

#[test]
fn network_on_6_12() {
    let Some(k) = kernel_new() else { return };
    network(&k);
}

/// No command: a shell on the terminal, sized as the host's, of the host's type; ^C
/// interrupts its foreground job; its exit status is baton's; the host's terminal settings
/// are back afterwards. Driven through a pseudo-terminal by tests/common/pty_drive.py.
fn shell(k: &Kernel) {
    let tree = common::busybox_tree("run");
    let mut cmd = Command::new("python3");
    cmd.arg(common::repo().join("tests/common/pty_drive.py"))
        .arg(env!("CARGO_BIN_EXE_baton"))
        .args(baton(k, &tree, &[]).get_args())
        .env("XDG_CACHE_HOME", work_dir().join("cache"))
        .env("TERM", "xterm-256color");
    let out = cmd.output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    for line in [
        "prompt: yes",
        "size: yes",
        "term: yes",
        "interrupted: yes",
        "status: 3",
        "terminal restored: yes",
    ] {
        assert!(
            said.lines().any(|l| l == line),
            "no {line:?}:\n{}",
            show(&out)
        );
    }
}

#[test]
fn shell_on_6_1() {
    let Some(k) = kernel() else { return };
    shell(&k);
}

#[test]
fn shell_on_6_12() {
    let Some(k) = kernel_new() else { return };
    shell(&k);
}

/// A kernel tree as `make` leaves it, from Debian's package: arch/x86/boot/bzImage, each
/// module beside its sources as modules.order lists it (`.o`, as since 6.2), modules.builtin,
/// .config, include/config/kernel.release. Nothing installed, no depmod.
fn kernel_tree(k: &Kernel) -> PathBuf {
    let tree = fresh(&format!("kernel-tree-{}", k.tag));
    let installed = &k.modules;
    fs::create_dir_all(tree.join("arch/x86/boot")).unwrap();
    fs::copy(k.dir.join("vmlinuz"), tree.join("arch/x86/boot/bzImage")).unwrap();
    fs::write(tree.join("Makefile"), "VERSION = 6\n").unwrap();
    fs::create_dir_all(tree.join("include/config")).unwrap();
    let release = installed
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    fs::write(
        tree.join("include/config/kernel.release"),
        format!("{release}\n"),
    )
    .unwrap();
    if k.dir.join("config").exists() {
        fs::copy(k.dir.join("config"), tree.join(".config")).unwrap();
    }
    fs::copy(
        installed.join("modules.builtin"),
        tree.join("modules.builtin"),
    )
    .unwrap();
    let order = fs::read_to_string(installed.join("modules.order")).unwrap();
    let mut listed = String::new();
    for rel in order.lines() {
        let Some(rel) = rel
            .strip_prefix("kernel/")
            .and_then(|r| r.strip_suffix(".ko"))
        else {
            continue;
        };
        let to = tree.join(format!("{rel}.ko"));
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        let from = installed.join(format!("kernel/{rel}.ko"));
        let packed = installed.join(format!("kernel/{rel}.ko.xz"));
        if from.exists() {
            std::os::unix::fs::symlink(&from, &to).unwrap();
        } else if packed.exists() && RUN_MODULES.iter().any(|d| rel.starts_with(d)) {
            // A build leaves modules uncompressed: 6.12's packaged .ko.xz unpacked, those
            // of the directories `baton run` takes its modules from.
            let out = Command::new("xz").arg("-dc").arg(&packed).output().unwrap();
            assert!(out.status.success(), "xz -dc {}", packed.display());
            fs::write(&to, out.stdout).unwrap();
        } else {
            continue;
        }
        listed.push_str(&format!("{rel}.o\n"));
    }
    fs::write(tree.join("modules.order"), listed).unwrap();
    tree
}

/// Where the modules of `baton run`'s image live in the tree (enough of 6.12's to unpack).
const RUN_MODULES: &[&str] = &[
    "drivers/virtio/",
    "drivers/char/",
    "drivers/block/",
    "fs/9p/",
    "net/9p/",
    "fs/netfs/",
    "fs/fscache/",
    "fs/overlayfs/",
    "fs/fuse/",
];

/// `--kernel DIR` boots the tree's bzImage with the tree's modules; `--kernel` without a
/// value, in the tree, does the same.
fn a_kernel_tree_after_make_boots_as_it_is(k: &Kernel) {
    let tree = kernel_tree(k);
    let root = common::busybox_tree("run");
    let cache = work_dir().join(format!("cache-kernel-tree-{}", k.tag));
    let _ = fs::remove_dir_all(&cache);
    for by_value in [true, false] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.arg("run");
        if by_value {
            cmd.arg("--kernel").arg(&tree);
        } else {
            cmd.arg("--kernel").current_dir(&tree);
        }
        cmd.arg("--root")
            .arg(&root)
            .args(["--share", "9p", "--timeout", "300", "--"])
            .args(["sh", "-c", "uname -r; grep -c '^9p ' /proc/modules"])
            .env("XDG_CACHE_HOME", &cache);
        let out = common::vm_output(&mut cmd);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let release = k
            .modules
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{release}\n1\n"),
            "{}",
            show(&out)
        );
    }
}

#[test]
fn a_kernel_tree_after_make_boots_on_6_1() {
    let Some(k) = kernel() else { return };
    a_kernel_tree_after_make_boots_as_it_is(&k);
}

#[test]
fn a_kernel_tree_after_make_boots_on_6_12() {
    let Some(k) = kernel_new() else { return };
    a_kernel_tree_after_make_boots_as_it_is(&k);
}

/// The one failure a test boots again for is told apart from the ones it must report: the
/// kernel's oops inside its initcalls (as 6.12 printed it once under TCG), against an init
/// that died and a panic after /init started.
#[test]
fn only_a_kernel_dying_in_its_own_start_is_booted_again() {
    let initcall = "[    4.262538]  ? __pfx_sched_clock_init_late+0x10/0x10\n\
        [    4.262663]  do_one_initcall+0x5b/0x320\n\
        [    4.262695]  kernel_init_freeable+0x31b/0x460\n\
        [    4.263944] Kernel panic - not syncing: Fatal exception in interrupt\n";
    assert!(common::kernel_died_before_init(initcall));
    let init_died = "[    1.2] Run /init as init process\n\
        [    1.9] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n";
    assert!(!common::kernel_died_before_init(init_died));
    let later = "[    1.2] Run /init as init process\n\
        [    2.0]  ext4_fill_super+0x1a/0x30\n\
        [    2.1] Kernel panic - not syncing: Fatal exception\n";
    assert!(!common::kernel_died_before_init(later));
}
