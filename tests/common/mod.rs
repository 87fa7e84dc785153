//! What the tests that need a real kernel share: where the kernels are, building images and
//! disks once per test binary, and booting them under qemu. A missing kernel is a skip for
//! plain `cargo test` and a failure under scripts/test (BATON_REQUIRE_KERNEL=1).

#![allow(dead_code)]

pub mod debian;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// A kernel from qemu/fetch-kernel: its directory and its modules directory.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub dir: PathBuf,
    pub modules: PathBuf,
    /// A short name for file names: "6.1" or "6.12".
    pub tag: &'static str,
}

fn kernel_from(var: &str, tag: &'static str) -> Option<Kernel> {
    match std::env::var_os(var) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("lib/modules").is_dir(),
                "{var}={} has no lib/modules",
                dir.display()
            );
            let modules = modules_dir(&dir);
            Some(Kernel { dir, modules, tag })
        }
        None => {
            assert!(
                std::env::var("BATON_REQUIRE_KERNEL").as_deref() != Ok("1"),
                "{var} is not set (scripts/test sets it from qemu/fetch-kernel)"
            );
            eprintln!("skipped: set {var} to a directory from qemu/fetch-kernel");
            None
        }
    }
}

/// Debian bookworm's own kernel (6.1: storage drivers as plain .ko modules).
pub fn kernel() -> Option<Kernel> {
    kernel_from("BATON_KERNEL", "6.1")
}

/// The newer kernel bookworm carries (6.12: virtio built in, modules as .ko.xz).
pub fn kernel_new() -> Option<Kernel> {
    kernel_from("BATON_KERNEL_NEW", "6.12")
}

/// The directory qemu/fetch-kernel printed, from BATON_KERNEL.
pub fn kernel_dir() -> Option<PathBuf> {
    kernel().map(|k| k.dir)
}

/// `lib/modules/KVER` inside the kernel directory.
pub fn modules_dir(kernel: &Path) -> PathBuf {
    let base = kernel.join("lib/modules");
    let mut releases: Vec<PathBuf> = fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    releases.sort();
    releases.pop().expect("a kernel release directory")
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn work_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("boot");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds `key` once per test binary with `make`, which writes the file it is given.
fn once(key: &str, make: impl FnOnce(&Path)) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let map = built.get_or_insert_with(HashMap::new);
    if let Some(path) = map.get(key) {
        return path.clone();
    }
    let path = work_dir().join(key);
    make(&path);
    map.insert(key.to_owned(), path.clone());
    path
}

/// An image built by `baton build` with the given arguments, once per argument list.
pub fn image(kernel: &Kernel, name: &str, args: &[&str]) -> PathBuf {
    once(&format!("{name}-{}.img", kernel.tag), |out| {
        let result = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["build", "-o"])
            .arg(out)
            .arg("--modules-dir")
            .arg(&kernel.modules)
            .args(args)
            .output()
            .unwrap();
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
    })
}

/// The image for ext4 on virtio-blk, modules named explicitly.
pub fn virtio_ext4_image(kernel: &Kernel, name: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "--module",
        "virtio_pci",
        "--module",
        "virtio_blk",
        "--module",
        "ext4",
    ];
    args.extend_from_slice(extra);
    image(kernel, name, &args)
}

/// The generic image: every storage driver, loaded by the hardware found.
pub fn storage_image(kernel: &Kernel) -> PathBuf {
    image(kernel, "storage", &["--storage"])
}

/// The whole-disk ext4 root of qemu/make-rootfs.
pub fn plain_disk() -> PathBuf {
    once("root.img", |out| {
        let status = Command::new(repo().join("qemu/make-rootfs"))
            .arg(out)
            .status()
            .unwrap();
        assert!(status.success(), "qemu/make-rootfs failed");
    })
}

/// A partitioned disk from qemu/make-disk, once per argument list.
pub fn disk(name: &str, args: &[&str]) -> PathBuf {
    once(&format!("disk-{name}.img"), |out| {
        let result = Command::new(repo().join("qemu/make-disk"))
            .arg(out)
            .args(args)
            .output()
            .unwrap();
        assert!(
            result.status.success(),
            "qemu/make-disk: {}",
            String::from_utf8_lossy(&result.stderr)
        );
    })
}

/// One boot, described.
pub struct Boot<'a> {
    pub kernel: &'a Kernel,
    pub image: PathBuf,
    pub disks: Vec<PathBuf>,
    pub bus: &'a str,
    pub append: String,
    pub input: Option<&'a str>,
    /// A file (a FIFO) the serial console reads from instead, for a test that types.
    pub input_file: Option<PathBuf>,
    pub monitor: Option<PathBuf>,
    pub timeout: u32,
    /// More qemu options (`-smp 4`).
    pub qemu: Vec<String>,
}

impl<'a> Boot<'a> {
    pub fn new(kernel: &'a Kernel, image: PathBuf, disk: PathBuf, append: &str) -> Boot<'a> {
        Boot {
            kernel,
            image,
            disks: vec![disk],
            bus: "virtio",
            append: append.to_owned(),
            input: None,
            input_file: None,
            monitor: None,
            timeout: 90,
            qemu: Vec::new(),
        }
    }

    pub fn command(&self, name: &str) -> (Command, PathBuf) {
        let log = work_dir().join(format!("{name}.log"));
        let mut cmd = Command::new(repo().join("qemu/boot"));
        cmd.arg("--kernel")
            .arg(&self.kernel.dir)
            .arg("--initrd")
            .arg(&self.image);
        for disk in &self.disks {
            cmd.arg("--disk").arg(disk);
        }
        cmd.args([
            "--bus",
            self.bus,
            "--append",
            &self.append,
            "--timeout",
            &self.timeout.to_string(),
            "--log",
        ])
        .arg(&log);
        if let Some(text) = self.input {
            let input_file = work_dir().join(format!("{name}.input"));
            fs::write(&input_file, text).unwrap();
            cmd.arg("--input").arg(&input_file);
        }
        if let Some(file) = &self.input_file {
            cmd.arg("--input").arg(file);
        }
        if let Some(socket) = &self.monitor {
            cmd.arg("--monitor").arg(socket);
        }
        if !self.qemu.is_empty() {
            cmd.arg("--").args(&self.qemu);
        }
        (cmd, log)
    }

    /// Boots and returns the console log.
    /// Boots once more when the guest kernel died before any init ran (see
    /// [`kernel_died_before_init`]).
    pub fn run(&self, name: &str) -> String {
        let (mut cmd, log) = self.command(name);
        let mut console = String::new();
        for _ in 0..2 {
            let status = cmd.status().unwrap();
            assert!(status.success(), "qemu/boot failed for {name}");
            console = String::from_utf8_lossy(&fs::read(&log).unwrap()).into_owned();
            if !kernel_died_before_init(&console) {
                break;
            }
            eprintln!("{name}: the guest kernel died in its own start, booting once more");
        }
        console
    }
}

/// Whether a console shows the guest kernel dying on its own before it ran any init: a
/// panic whose trace runs through the kernel's start (`kernel_init_freeable` runs the
/// initcalls, before /init is executed). Under TCG with two vCPUs, Debian's 6.12 was seen
/// to oops once in some hundreds of boots while patching a static key in an initcall
/// (`sched_clock_init_late`). Nothing of baton's had run, so a test boots such a VM once
/// more; any other panic (an init that died, an oops after /init started) still fails.
pub fn kernel_died_before_init(console: &str) -> bool {
    console.contains("Kernel panic")
        && !console.contains("Attempted to kill init")
        && (console.contains("kernel_init_freeable") || console.contains(" start_kernel+"))
}

/// `baton run`'s output, run once more when its console tail shows the guest kernel dying
/// before any init ran ([`kernel_died_before_init`]).
pub fn vm_output(cmd: &mut Command) -> std::process::Output {
    let mut out = cmd.output().unwrap();
    if kernel_died_before_init(&String::from_utf8_lossy(&out.stderr)) {
        eprintln!("the guest kernel died in its own start, running the VM once more");
        out = cmd.output().unwrap();
    }
    out
}

/// The marker line the real root's /sbin/init printed, or a failure showing the console.
pub fn marker(log: &str) -> String {
    let console = without_cut_ins(log);
    match console.lines().find(|l| l.starts_with("BATON-MARKER")) {
        Some(line) => line.to_owned(),
        None => panic!("the real root's init never ran; console:\n{log}"),
    }
}

pub fn assert_has(log: &str, needle: &str) {
    assert!(
        log.contains(needle) || without_cut_ins(log).contains(needle),
        "{needle:?} not on the console:\n{log}"
    );
}

/// The console with the kernel's records taken out of the lines they cut into. The kernel
/// prints each record whole, but it may do so between any two characters a program wrote:
/// a CI run logged "BATON-HIBERNATING pid=1[   12.204826] PM: hibernation: hibernation
/// entry", the program's newline coming on the next line. A cut line is put back together
/// from its pieces, the records kept as lines of their own. The marker script's
/// `BATON-DMESG [  1.2] ...` lines carry a timestamp on purpose and are left whole.
pub fn without_cut_ins(console: &str) -> String {
    let mut out = String::with_capacity(console.len());
    let mut cut = String::new();
    for line in console.lines() {
        match record_start(line).filter(|_| !line.starts_with("BATON-DMESG ")) {
            Some(0) => out.push_str(line),
            Some(at) => {
                let (program, record) = line.split_at(at);
                cut.push_str(program);
                out.push_str(record);
            }
            None => {
                out.push_str(&cut);
                out.push_str(line);
                cut.clear();
            }
        }
        out.push('\n');
    }
    out.push_str(&cut);
    out
}

/// Where a kernel record's timestamp (`[    12.204826]`) starts in a line.
fn record_start(line: &str) -> Option<usize> {
    line.match_indices('[').map(|(at, _)| at).find(|&at| {
        let Some((stamp, _)) = line[at + 1..].split_once(']') else {
            return false;
        };
        let Some((secs, micros)) = stamp.trim_start().split_once('.') else {
            return false;
        };
        !secs.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && micros.len() == 6
            && micros.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The modules baton says it loaded (its "loaded N modules: a b c" line).
pub fn loaded_modules(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.starts_with("BATON-DMESG"))
        .find_map(|l| {
            l.split_once("modules: ")
                .filter(|_| l.contains("baton: loaded "))
                .map(|(_, m)| m)
        })
        .map(|m| m.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A whole-disk ext4 root made from qemu/root-tree after `change` has edited the tree: a
/// root without an init, without /dev, and the like. Built once per name.
pub fn custom_disk(name: &str, change: impl FnOnce(&Path)) -> PathBuf {
    once(&format!("custom-{name}.img"), |out| {
        let tree = work_dir().join(format!("custom-{name}.tree"));
        let _ = fs::remove_dir_all(&tree);
        let status = Command::new(repo().join("qemu/root-tree"))
            .arg(&tree)
            .status()
            .unwrap();
        assert!(status.success(), "qemu/root-tree failed");
        change(&tree);
        let status = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "batonroot", "-d"])
            .arg(&tree)
            .arg(out)
            .arg("32M")
            .env("E2FSPROGS_FAKE_TIME", "1")
            .status()
            .unwrap();
        assert!(status.success(), "mkfs.ext4 failed");
        fs::remove_dir_all(&tree).unwrap();
    })
}

/// A busybox root tree from qemu/root-tree, as a directory (to share into a VM), made once
/// per name and kept for the next run.
pub fn busybox_tree(name: &str) -> PathBuf {
    // Tests run side by side: one makes the tree while the others wait for it.
    static MAKING: Mutex<()> = Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = work_dir().join(format!("{name}.tree"));
    if !dir.join("sbin/init").exists() {
        let status = Command::new(repo().join("qemu/root-tree"))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "qemu/root-tree failed");
    }
    dir
}

/// A copy of `disk` with `bytes` written at `offset`: a damaged filesystem.
pub fn patched_disk(name: &str, disk: &Path, offset: u64, bytes: &[u8]) -> PathBuf {
    once(&format!("patched-{name}.img"), |out| {
        use std::os::unix::fs::FileExt;
        fs::copy(disk, out).unwrap();
        let file = fs::OpenOptions::new().write(true).open(out).unwrap();
        file.write_all_at(bytes, offset).unwrap();
    })
}

/// What an appended archive puts in the image.
pub enum Extra<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
}

/// `image` with an uncompressed newc archive appended, as the kernel accepts them: later
/// entries replace earlier ones, so this damages or overrides what `baton build` wrote.
pub fn with_appended(image: &Path, name: &str, extras: &[Extra<'_>]) -> PathBuf {
    let out = work_dir().join(format!("{name}.img"));
    let tree = work_dir().join(format!("{name}.extra"));
    let _ = fs::remove_dir_all(&tree);
    for extra in extras {
        match extra {
            Extra::File(path, data) => {
                let path = tree.join(path.trim_start_matches('/'));
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, data).unwrap();
            }
            Extra::Dir(path) => {
                fs::create_dir_all(tree.join(path.trim_start_matches('/'))).unwrap()
            }
        }
    }
    // Only the entries themselves: a "." or parent directory entry would change the modes
    // of the image's own directories.
    let mut list = String::new();
    for extra in extras {
        let path = match extra {
            Extra::File(path, _) | Extra::Dir(path) => path.trim_start_matches('/'),
        };
        list.push_str(path);
        list.push('\n');
    }
    let archive = Command::new("sh")
        .arg("-c")
        .arg("cpio --quiet -o -H newc -R 0:0")
        .current_dir(&tree)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(list.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(archive.status.success(), "cpio failed");
    let mut bytes = fs::read(image).unwrap();
    // The kernel looks for an archive header only at 4-byte offsets, skipping zeros.
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes.extend_from_slice(&archive.stdout);
    fs::write(&out, bytes).unwrap();
    fs::remove_dir_all(&tree).unwrap();
    out
}

/// The console shows that the kernel carried out `action`, with no panic, and that the
/// real init never ran.
pub fn assert_action(log: &str, action: &str) {
    let line = match action {
        "poweroff" => "reboot: Power down",
        "reboot" => "reboot: Restarting system",
        "halt" => "reboot: System halted",
        other => panic!("unknown action {other}"),
    };
    assert_has(log, line);
    assert!(!log.contains("Kernel panic"), "{log}");
    assert!(!log.contains("BATON-MARKER"), "the real init ran:\n{log}");
}

/// The static init `scripts/build` made, beside the host tool cargo built for the tests.
pub fn init_binary() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_baton"));
    let path = exe
        .parent()
        .unwrap()
        .join("../x86_64-unknown-linux-musl/init/baton-init");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build",
        path.display()
    );
    path
}

/// Debian's own initramfs-tools image for `kernel` (built in a debootstrapped bookworm tree
/// by qemu/make-initramfs-tools-image, cached outside the repository), with baton's binary
/// as its run-init.
pub fn initramfs_tools_image_with_baton() -> PathBuf {
    once("initramfs-tools-baton.img", |out| {
        let result = Command::new(repo().join("qemu/make-initramfs-tools-image"))
            .arg(out)
            .arg("--baton-run-init")
            .arg(init_binary())
            .output()
            .unwrap();
        assert!(
            result.status.success(),
            "qemu/make-initramfs-tools-image: {}",
            String::from_utf8_lossy(&result.stderr)
        );
    })
}

/// A virtiofsd that can refuse the guest's writes (the Rust one, with `--readonly`): the
/// directory to put first on `baton run`'s PATH. From BATON_VIRTIOFSD (scripts/test sets it to
/// what scripts/deps built), else PATH, else scripts/deps's place. Missing: a skip, or a
/// failure under BATON_REQUIRE_TOOLS=1.
pub fn read_only_virtiofsd() -> Option<PathBuf> {
    let enforces = |program: &Path| {
        Command::new(program)
            .arg("--help")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("--readonly"))
    };
    if let Some(program) = std::env::var_os("BATON_VIRTIOFSD") {
        let program = PathBuf::from(program);
        assert!(
            enforces(&program),
            "BATON_VIRTIOFSD={} is not a virtiofsd with --readonly",
            program.display()
        );
        return program.parent().map(Path::to_path_buf);
    }
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([home.join(".cache/baton/tools/bin")])
        .find(|dir| dir.join("virtiofsd").is_file() && enforces(&dir.join("virtiofsd")));
    if found.is_none() {
        assert!(
            std::env::var("BATON_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "no virtiofsd with --readonly (scripts/deps builds one; set BATON_VIRTIOFSD)"
        );
        eprintln!("skipped: no virtiofsd with --readonly (scripts/deps builds one)");
    }
    found
}

/// PATH with `dir` first.
pub fn path_with(dir: &Path) -> std::ffi::OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest)))
        .unwrap_or(rest)
}

/// `blkid -p -o export IMAGE` as a map, its escaped blanks unescaped.
pub fn blkid(image: &Path) -> std::collections::BTreeMap<String, String> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(image)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("\\ ", " ")))
        .collect()
}

/// The disks of storage stacks qemu/make-stack-disks makes with the real lvm2, mdadm and
/// cryptsetup (in a VM: this machine has no device-mapper or md driver), made once (one to
/// two minutes) and cached outside the repository; `None` (a skip) without a kernel.
pub fn stack_disks() -> Option<&'static Path> {
    static DISKS: OnceLock<PathBuf> = OnceLock::new();
    kernel()?;
    Some(DISKS.get_or_init(|| {
        let out = Command::new(repo().join("qemu/make-stack-disks"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "qemu/make-stack-disks: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }))
}

/// Waits until the console log at `path` has `needle` (at most `limit`), for tests that act
/// on a running VM.
pub fn wait_for_console(path: &Path, needle: &str, limit: std::time::Duration) {
    let started = std::time::Instant::now();
    loop {
        // Lossy: a console can carry bytes that are not UTF-8 (firmware output, a line cut).
        let log = String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
        if log.contains(needle) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{needle:?} never came on the console:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// qemu's human monitor of a running VM (`Boot::monitor`), one command at a time.
pub struct Monitor(std::os::unix::net::UnixStream);

impl Monitor {
    pub fn connect(socket: &Path) -> Monitor {
        let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let mut monitor = Monitor(stream);
        monitor.until_prompt();
        monitor
    }

    /// Runs `command` and returns what the monitor answered. Each answer ends with the
    /// next prompt: waiting for it keeps a command from being dropped with the connection.
    pub fn run(&mut self, command: &str) -> String {
        use std::io::Write;
        writeln!(self.0, "{command}").unwrap();
        self.until_prompt()
    }

    fn until_prompt(&mut self) -> String {
        use std::io::Read;
        let started = std::time::Instant::now();
        let mut said = Vec::new();
        let mut buf = [0u8; 4096];
        while started.elapsed() < std::time::Duration::from_secs(10) {
            if let Ok(n) = self.0.read(&mut buf) {
                said.extend_from_slice(&buf[..n]);
            }
            if String::from_utf8_lossy(&said).contains("\n(qemu)") {
                return String::from_utf8_lossy(&said).into_owned();
            }
        }
        panic!(
            "the monitor did not answer: {}",
            String::from_utf8_lossy(&said)
        );
    }
}

/// Plugs `disk` (copy-on-write) into the running VM whose monitor is at `socket`, as a
/// virtio-blk PCI device named `id`.
pub fn hot_add_disk(socket: &Path, disk: &Path, id: &str) {
    let mut monitor = Monitor::connect(socket);
    let reply = monitor.run(&format!(
        "drive_add 0 if=none,id={id}-drive,file={},format=raw,snapshot=on",
        disk.display()
    ));
    assert!(reply.contains("OK"), "drive_add: {reply}");
    monitor.run(&format!(
        "device_add virtio-blk-pci,drive={id}-drive,id={id}"
    ));
}

/// Types into a VM's serial console: a FIFO qemu reads its console input from (set it as
/// the boot's `input_file`), and answers typed as prompts appear on the console log.
pub struct Typist {
    pub path: PathBuf,
    fifo: fs::File,
}

impl Typist {
    pub fn new(name: &str) -> Typist {
        let path = work_dir().join(format!("{name}.fifo"));
        let _ = fs::remove_file(&path);
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // Read and write: opening does not wait for qemu, and qemu never sees the end of
        // its input.
        let fifo = fs::File::options()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        Typist { path, fifo }
    }

    /// Types `answers` one by one, each once the console log at `log` shows `prompt` one
    /// more time than before (at most 3 minutes each), then Enter.
    pub fn answer(&mut self, log: &Path, prompt: &str, answers: &[&str]) {
        use std::io::Write;
        for (i, answer) in answers.iter().enumerate() {
            let started = std::time::Instant::now();
            loop {
                let text = String::from_utf8_lossy(&fs::read(log).unwrap_or_default()).into_owned();
                if text.matches(prompt).count() > i {
                    break;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(180),
                    "prompt {} never came:\n{text}",
                    i + 1
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
            self.fifo
                .write_all(format!("{answer}\r").as_bytes())
                .unwrap();
        }
    }
}

/// A finished command's status, stdout and stderr, for an assertion's message.
pub fn show_output(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
