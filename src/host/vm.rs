//! `baton run`: boot a kernel in a throwaway qemu VM whose root is a directory of this
//! machine, run one command there, and end with the command's exit status.
//!
//! The image is built once per kernel and modules and kept in the cache; the command rides
//! in a small archive appended to it for each run (`/etc/baton/run`, so no quoting rules of
//! the kernel command line apply). The directory is shared over virtiofs when a virtiofsd
//! is at hand, 9p otherwise; read-only with a tmpfs overlay unless `--rw`. The command's
//! output is the VM's console, which goes straight to our stdout; its status comes back
//! through a virtio serial port into a file (see baton::init::run), never from the console.
//!
//! The argument lists for qemu and virtiofsd are pure functions, tested below; the whole
//! thing is tested by running it (tests/run_command.rs).

use crate::host::image::build::{build, BuildOptions, FirmwareSource};
use crate::run_protocol::{exit_code, parse_status};
use crate::transport::Transport;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `baton run` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    pub kernel: PathBuf,
    pub modules_dir: Option<PathBuf>,
    pub root: PathBuf,
    pub rw: bool,
    pub memory_mib: u32,
    pub cpus: u32,
    /// `--share 9p|virtiofs`; `None`: virtiofs when a virtiofsd is at hand.
    pub share: Option<Transport>,
    pub timeout_secs: Option<u32>,
    pub command: Vec<OsString>,
}

/// The tag the root is shared under.
pub const TAG: &str = "baton-root";
/// How long past `--timeout` the VM may take to boot and power off before it is killed.
const VM_GRACE_SECS: u64 = 120;
/// What baton's own failures end with, as timeout(1) does: distinct from the command's.
pub const OWN_FAILURE: u8 = 125;
/// The modules the image carries: the virtio bus, both transports, the overlay, and the
/// status port. Those built into a kernel are simply not there.
const MODULES: &[&str] = &[
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    "virtiofs",
    "overlay",
    "virtio_console",
];

/// The kernel's release (`6.1.0-57-amd64`) from its image: a bzImage's header names it
/// (boot protocol 2.00+: the `kernel_version` pointer at 0x20e); an ELF vmlinux carries
/// the banner `Linux version RELEASE (...`.
pub fn kernel_release(image: &[u8]) -> Option<String> {
    let word = |bytes: &[u8]| {
        let end = bytes
            .iter()
            .position(|&b| b == 0 || b == b' ')
            .unwrap_or(bytes.len());
        std::str::from_utf8(bytes.get(..end)?)
            .ok()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if image.get(0x202..0x206) == Some(b"HdrS") {
        let offset = u16::from_le_bytes(image.get(0x20e..0x210)?.try_into().ok()?);
        let at = 0x200 + usize::from(offset);
        return word(image.get(at..at.checked_add(256)?.min(image.len()))?);
    }
    let banner = b"Linux version ";
    let at = image.windows(banner.len()).position(|w| w == banner)? + banner.len();
    word(image.get(at..at.checked_add(256)?.min(image.len()))?)
}

/// Everything qemu is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
    pub memory_mib: u32,
    pub cpus: u32,
    pub kvm: bool,
    pub transport: Transport,
    pub root: PathBuf,
    pub read_only: bool,
    /// virtiofsd's socket (virtiofs only).
    pub socket: Option<PathBuf>,
    pub status: PathBuf,
}

/// A value inside one of qemu's `key=value,...` options: its commas doubled, which qemu's
/// option parser reads as one comma. A directory named `a,readonly=off` must not add an
/// option.
pub fn qemu_escape(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// qemu's arguments for `machine`: no default devices, the console on our stdout, the
/// shared root, the status port.
pub fn qemu_args(m: &Machine) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-display".into(),
        "none".into(),
        "-no-reboot".into(),
        "-accel".into(),
        if m.kvm { "kvm" } else { "tcg" }.into(),
        "-cpu".into(),
        if m.kvm { "host" } else { "max" }.into(),
        "-m".into(),
        format!("{}M", m.memory_mib),
        "-smp".into(),
        m.cpus.to_string(),
        "-kernel".into(),
        m.kernel.display().to_string(),
        "-initrd".into(),
        m.initrd.display().to_string(),
        "-append".into(),
        m.append.clone(),
        // The console: our stdout. Not stdin: qemu would put a terminal in raw mode.
        "-chardev".into(),
        "stdio,id=console,signal=off".into(),
        "-serial".into(),
        "chardev:console".into(),
        "-device".into(),
        "virtio-serial-pci,id=serial".into(),
        "-chardev".into(),
        format!("file,id=status,path={}", qemu_escape(&m.status)),
        "-device".into(),
        format!(
            "virtserialport,bus=serial.0,chardev=status,name={}",
            crate::run_protocol::STATUS_PORT
        ),
    ];
    match m.transport {
        Transport::NineP => args.extend([
            "-fsdev".into(),
            format!(
                "local,id=root,path={},security_model=none,multidevs=remap{}",
                qemu_escape(&m.root),
                if m.read_only { ",readonly=on" } else { "" }
            ),
            "-device".into(),
            format!("virtio-9p-pci,fsdev=root,mount_tag={TAG}"),
        ]),
        Transport::Virtiofs => args.extend([
            // vhost-user needs the guest's memory shared with virtiofsd.
            "-object".into(),
            format!(
                "memory-backend-memfd,id=mem,size={}M,share=on",
                m.memory_mib
            ),
            "-numa".into(),
            "node,memdev=mem".into(),
            "-chardev".into(),
            format!(
                "socket,id=vfs,path={}",
                qemu_escape(m.socket.as_deref().unwrap_or(Path::new("")))
            ),
            "-device".into(),
            format!("vhost-user-fs-pci,chardev=vfs,tag={TAG}"),
        ]),
    }
    args
}

/// The kernel command line: the shared root, quiet, the command's settings.
pub fn append(transport: Transport, rw: bool, timeout: Option<u32>) -> String {
    let mut line = format!(
        "console=ttyS0 quiet panic=-1 rootfstype={} root={TAG} {}",
        transport.fstype(),
        if rw { "rw" } else { "ro rd.overlay" }
    );
    line.push_str(" baton.run");
    if let Some(secs) = timeout {
        line.push_str(&format!(" baton.run.timeout={secs}"));
    }
    line
}

/// KVM when the CPU offers virtualization and /dev/kvm opens: a nested host may have the
/// device without the CPU flags, and then KVM cannot run a kernel at all.
fn kvm_usable() -> bool {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let virtualizes = flags
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    virtualizes
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok()
}

/// Builds the image for `modules`, or takes it from the cache (see baton::host::run_cache). A
/// cache that is not private is not used at all: the image is then built into `scratch`,
/// the run's own private directory, with a warning that says why.
fn image_for(modules: &Path, release: &str, scratch: &Path) -> Result<PathBuf> {
    let init_path = crate::host::image::build::find_init(None)?;
    let init = std::fs::read(&init_path)
        .with_context(|| format!("cannot read the init {}", init_path.display()))?;
    let dir = crate::host::run_cache::dir();
    let image = match crate::host::run_cache::private_dir(&dir) {
        Ok(()) => {
            let key = crate::host::run_cache::key(&init, MODULES, modules, release);
            let image = dir.join(format!("{release}-{key:016x}.img"));
            if crate::host::run_cache::trusted(&image) {
                return Ok(image);
            }
            // Whatever is there is not ours as we left it: built again.
            let _ = std::fs::remove_file(&image);
            image
        }
        Err(e) => {
            crate::host::detect::warn(&format!(
                "not using the image cache: {e:#}; building this run's image afresh"
            ));
            scratch.join("image.img")
        }
    };
    let opts = BuildOptions {
        modules_dir: Some(modules.to_path_buf()),
        modules: MODULES.iter().map(|m| m.to_string()).collect(),
        init: Some(init_path),
        // A VM's virtio devices need no firmware, and the CPU no microcode.
        firmware_dir: FirmwareSource::None,
        ..BuildOptions::new(image.clone(), 0)
    };
    build(&opts).with_context(|| format!("failed to build the image for {release}"))?;
    Ok(image)
}

/// The small archive with the command, appended to the image.
fn command_archive(command: &[OsString]) -> Result<Vec<u8>> {
    let mut image = crate::host::image::entry::Image::new();
    image
        .insert(
            crate::run_protocol::COMMAND_FILE,
            crate::host::image::entry::Entry::file(
                0o644,
                crate::run_protocol::command_file(command),
            ),
        )
        .map_err(|e| anyhow::anyhow!("{}", e.0))?;
    crate::host::image::newc::write(&image, 0).context("failed to write the command's archive")
}

/// Runs the command in a VM; returns the exit status to end with.
pub fn run(opts: &RunOptions) -> Result<u8> {
    if opts.command.is_empty() {
        bail!("baton run needs a command after --");
    }
    if opts
        .command
        .iter()
        .any(|a| std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str()).contains(&0))
    {
        bail!("an argument of the command contains a NUL byte");
    }
    let (release, modules) = kernel_and_modules(opts)?;
    let root = opts
        .root
        .canonicalize()
        .with_context(|| format!("cannot share {}", opts.root.display()))?;
    if !root.is_dir() {
        bail!("cannot share {}: not a directory", root.display());
    }
    let qemu = "qemu-system-x86_64";
    if Command::new(qemu).arg("--version").output().is_err() {
        bail!("{qemu} is not installed (Debian: apt install qemu-system-x86)");
    }
    let read_only = !opts.rw;
    let (transport, virtiofsd) = choose_transport(opts.share, read_only)?;
    let work = tempdir()?;
    let image = image_for(&modules, &release, &work.path)?;
    let initrd = write_initrd(&opts.command, &image, &work.path)?;
    let status = work.path.join("status");
    let socket = work.path.join("virtiofsd.sock");

    let daemon = start_virtiofsd(transport, virtiofsd.as_ref(), &socket, &root, read_only)?;

    let machine = Machine {
        kernel: opts.kernel.clone(),
        initrd,
        append: append(transport, opts.rw, opts.timeout_secs),
        memory_mib: opts.memory_mib,
        cpus: opts.cpus,
        kvm: kvm_usable(),
        transport,
        root,
        read_only,
        socket: (transport == Transport::Virtiofs).then_some(socket),
        status: status.clone(),
    };
    let mut vm = Command::new(qemu)
        .args(qemu_args(&machine))
        .stdin(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {qemu}"))?;
    let qemu_status = wait_for_vm(&mut vm, opts.timeout_secs)?;
    drop(daemon);
    let reported = std::fs::read_to_string(&status).unwrap_or_default();
    match reported.lines().find_map(parse_status) {
        Some(outcome) => Ok(exit_code(&outcome)),
        None => bail!(
            "the VM ended without reporting the command's status (qemu: {qemu_status}); the console output above says why"
        ),
    }
}

/// The kernel's release, read from the image, and its modules directory.
fn kernel_and_modules(opts: &RunOptions) -> Result<(String, PathBuf)> {
    let kernel = std::fs::read(&opts.kernel)
        .with_context(|| format!("cannot read the kernel {}", opts.kernel.display()))?;
    let release = kernel_release(&kernel).with_context(|| {
        format!(
            "{} does not look like a Linux kernel image (no version in it)",
            opts.kernel.display()
        )
    })?;
    if !crate::host::run_cache::valid_release(&release) {
        bail!(
            "{}: the kernel's release {release:?} is not a plain file name; refusing to use it in paths",
            opts.kernel.display()
        );
    }
    drop(kernel);
    let modules = match &opts.modules_dir {
        Some(dir) => dir.clone(),
        None => {
            let installed = PathBuf::from("/lib/modules").join(&release);
            if !installed.is_dir() {
                bail!(
                    "no modules for {release} in /lib/modules: pass --modules-dir DIR (the kernel's lib/modules/{release})"
                );
            }
            installed
        }
    };
    Ok((release, modules))
}

/// How the root is shared: a read-only root is read-only on the host's side, over virtiofs
/// only with a virtiofsd that refuses writes itself, else over 9p, where qemu does.
fn choose_transport(
    share: Option<Transport>,
    read_only: bool,
) -> Result<(Transport, Option<crate::host::virtiofsd::Virtiofsd>)> {
    let virtiofsds = crate::host::virtiofsd::installed();
    let virtiofsd = crate::host::virtiofsd::choose(&virtiofsds, read_only).cloned();
    let transport = match share {
        Some(Transport::Virtiofs) if virtiofsd.is_none() => {
            if virtiofsds.is_empty() {
                bail!("no virtiofsd (Debian: qemu-system-common has /usr/lib/qemu/virtiofsd; cargo install virtiofsd); use --share 9p");
            }
            bail!(
                "--share virtiofs: the virtiofsd here ({}) cannot refuse the guest's writes, so a read-only root over it would not be read-only on this machine; install the Rust virtiofsd (cargo install virtiofsd, or the virtiofsd package from Debian 13), use --share 9p, or --rw",
                virtiofsds
                    .iter()
                    .map(|v| v.program.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Some(t) => t,
        None if virtiofsd.is_some() => Transport::Virtiofs,
        None => Transport::NineP,
    };
    Ok((transport, virtiofsd))
}

/// The initrd: the command's archive, then the cached image.
fn write_initrd(command: &[OsString], image: &Path, work: &Path) -> Result<PathBuf> {
    let initrd = work.join("initrd.img");
    // The command's archive goes first: the kernel reads an uncompressed archive before a
    // compressed one on every version, where one appended after an lz4 stream was refused
    // by Debian's 6.12 ("invalid magic at start of compressed archive").
    let mut bytes = command_archive(command)?;
    bytes.extend(
        std::fs::read(image).with_context(|| format!("failed to read {}", image.display()))?,
    );
    std::fs::write(&initrd, bytes)
        .with_context(|| format!("failed to write {}", initrd.display()))?;
    Ok(initrd)
}

/// The virtiofsd serving the root, once its socket is there; none over 9p.
fn start_virtiofsd(
    transport: Transport,
    virtiofsd: Option<&crate::host::virtiofsd::Virtiofsd>,
    socket: &Path,
    root: &Path,
    read_only: bool,
) -> Result<Option<Daemon>> {
    let mut daemon = None;
    if let (Transport::Virtiofs, Some(v)) = (transport, virtiofsd) {
        let child = Command::new(&v.program)
            .args(crate::host::virtiofsd::args(v, socket, root, read_only))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", v.program.display()))?;
        daemon = Some(Daemon(child));
        wait_for_socket(socket, daemon.as_mut())?;
    }

    Ok(daemon)
}

/// Waits for qemu to end.
fn wait_for_vm(
    vm: &mut std::process::Child,
    timeout_secs: Option<u32>,
) -> Result<std::process::ExitStatus> {
    // With a timeout, the VM itself is bounded too: a kernel that hangs before the command
    // runs (or after) must not hang the CI job.
    let deadline = timeout_secs.map(|secs| {
        std::time::Instant::now() + std::time::Duration::from_secs(u64::from(secs) + VM_GRACE_SECS)
    });
    Ok(loop {
        if let Some(status) = vm.try_wait().context("cannot wait for qemu")? {
            break status;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            let _ = vm.kill();
            let _ = vm.wait();
            bail!(
                "the VM did not end within {VM_GRACE_SECS} s of the command's timeout; killed it"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    })
}

/// A helper process ended (and reaped) when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (up to 10 s) for virtiofsd to listen.
fn wait_for_socket(socket: &Path, daemon: Option<&mut Daemon>) -> Result<()> {
    let Some(daemon) = daemon else { return Ok(()) };
    for _ in 0..1000 {
        if socket.exists() {
            return Ok(());
        }
        if let Ok(Some(status)) = daemon.0.try_wait() {
            let mut said = String::new();
            if let Some(mut err) = daemon.0.stderr.take() {
                use std::io::Read;
                let _ = err.read_to_string(&mut said);
            }
            bail!(
                "virtiofsd failed ({status}): {}",
                said.lines().last().unwrap_or("no message")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    bail!("virtiofsd did not open {} within 10 s", socket.display())
}

/// A private directory removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A directory only this user can enter: it holds the command, the status, virtiofsd's
/// socket (whoever connects to it reads the shared directory) and, when the cache is not
/// used, the image.
fn tempdir() -> Result<TempDir> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for n in 0..1000u32 {
        let path = base.join(format!("baton-run-{}-{n}", std::process::id()));
        if std::fs::DirBuilder::new().mode(0o700).create(&path).is_ok() {
            return Ok(TempDir { path });
        }
    }
    bail!("cannot create a directory in {}", base.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_from_bzimage_headers_and_banners() {
        let mut bz = vec![0u8; 0x400];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        let version = b"6.1.0-57-amd64 (debian-kernel@lists.debian.org)";
        bz[0x300..0x300 + version.len()].copy_from_slice(version);
        assert_eq!(kernel_release(&bz).as_deref(), Some("6.1.0-57-amd64"));
        let elf = b"\x7fELF....Linux version 6.12.117+deb12-amd64 (debian-kernel@lists".to_vec();
        assert_eq!(
            kernel_release(&elf).as_deref(),
            Some("6.12.117+deb12-amd64")
        );
        assert_eq!(kernel_release(b"not a kernel"), None);
        // A header pointing past the end is no release, not a panic.
        bz[0x20e..0x210].copy_from_slice(&0xffffu16.to_le_bytes());
        assert_eq!(kernel_release(&bz[..0x400]), None);
    }

    fn machine(transport: Transport) -> Machine {
        Machine {
            kernel: "/k/vmlinuz".into(),
            initrd: "/t/initrd.img".into(),
            append: append(transport, false, Some(30)),
            memory_mib: 512,
            cpus: 2,
            kvm: false,
            transport,
            root: "/srv/tree".into(),
            read_only: true,
            socket: Some("/t/vfs.sock".into()),
            status: "/t/status".into(),
        }
    }

    #[test]
    fn qemu_shares_the_root_and_the_status_port() {
        let args = qemu_args(&machine(Transport::NineP)).join(" ");
        assert!(
            args.contains("-accel tcg -cpu max -m 512M -smp 2"),
            "{args}"
        );
        assert!(args.contains("-fsdev local,id=root,path=/srv/tree,security_model=none,multidevs=remap,readonly=on"), "{args}");
        assert!(
            args.contains("virtio-9p-pci,fsdev=root,mount_tag=baton-root"),
            "{args}"
        );
        assert!(args.contains("file,id=status,path=/t/status"), "{args}");
        assert!(args.contains("name=baton.status"), "{args}");
        let args = qemu_args(&machine(Transport::Virtiofs)).join(" ");
        assert!(
            args.contains("memory-backend-memfd,id=mem,size=512M,share=on"),
            "{args}"
        );
        assert!(args.contains("socket,id=vfs,path=/t/vfs.sock"), "{args}");
        assert!(
            args.contains("vhost-user-fs-pci,chardev=vfs,tag=baton-root"),
            "{args}"
        );
        assert!(!args.contains("9p"), "{args}");
    }

    #[test]
    fn the_run_directory_is_private_and_goes_away() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir().unwrap();
        let meta = std::fs::symlink_metadata(&dir.path).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
        let path = dir.path.clone();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn commas_in_paths_add_no_options() {
        let mut m = machine(Transport::NineP);
        m.root = "/srv/a,readonly=off".into();
        m.status = "/t,x/status".into();
        let args = qemu_args(&m);
        assert!(
            args.iter().any(|a| a
                == "local,id=root,path=/srv/a,,readonly=off,security_model=none,multidevs=remap,readonly=on"),
            "{args:?}"
        );
        assert!(args.iter().any(|a| a == "file,id=status,path=/t,,x/status"));
        m.transport = Transport::Virtiofs;
        m.socket = Some("/t,y/vfs.sock".into());
        let args = qemu_args(&m);
        assert!(args
            .iter()
            .any(|a| a == "socket,id=vfs,path=/t,,y/vfs.sock"));
    }

    #[test]
    fn the_command_line_asks_for_the_shared_root_and_the_run() {
        assert_eq!(
            append(Transport::NineP, false, Some(30)),
            "console=ttyS0 quiet panic=-1 rootfstype=9p root=baton-root ro rd.overlay baton.run baton.run.timeout=30"
        );
        assert_eq!(
            append(Transport::Virtiofs, true, None),
            "console=ttyS0 quiet panic=-1 rootfstype=virtiofs root=baton-root rw baton.run"
        );
        // The kernel's own parser reads it back as baton does.
        let p = crate::cmdline::parse(&append(Transport::NineP, false, Some(5)));
        assert!(p.run && p.overlay && p.read_only);
        assert_eq!(p.run_timeout_secs, Some(5));
        assert_eq!(p.root.as_deref(), Some(TAG));
    }

    #[test]
    fn the_command_archive_holds_the_command() {
        let command: Vec<OsString> = ["sh", "-c", "echo \"a b\""]
            .iter()
            .map(OsString::from)
            .collect();
        let archive = command_archive(&command).unwrap();
        let listing = crate::host::image::inspect::read_image_with(
            &archive,
            &crate::host::image::compress::Limits::DEFAULT,
        )
        .unwrap();
        let text = format!("{listing:?}");
        assert!(text.contains("etc/baton/run"), "{text}");
    }
}
