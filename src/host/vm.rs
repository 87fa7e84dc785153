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
use crate::run_protocol::{exit_code, parse_status, Outcome, ShareKind, Spec, Streams};
use crate::transport::Transport;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `baton run` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// A kernel image, or a kernel tree after `make` (its bzImage, its modules in place);
    /// `None`: the current directory's tree, else the running kernel.
    pub kernel: Option<PathBuf>,
    pub modules_dir: Option<PathBuf>,
    pub root: PathBuf,
    pub rw: bool,
    pub memory_mib: u32,
    /// 0: as many as this machine has.
    pub cpus: u32,
    /// `--share 9p|virtiofs`; `None`: virtiofs when a virtiofsd is at hand.
    pub share: Option<Transport>,
    pub timeout_secs: Option<u32>,
    /// Empty: an interactive shell.
    pub command: Vec<OsString>,
    /// Where the command starts, in the VM; `None`: this process's directory when it lies
    /// under the root, else `/`.
    pub cwd: Option<PathBuf>,
    pub user: Option<String>,
    pub dirs: Vec<DirShare>,
    pub disks: Vec<PathBuf>,
    /// Words for the kernel's command line.
    pub append: Vec<String>,
    /// Words for qemu, last.
    pub qemu_opts: Vec<String>,
    /// The console on stderr as it comes.
    pub verbose: bool,
}

impl RunOptions {
    /// The defaults, for a kernel and a command.
    pub fn new(kernel: Option<PathBuf>, command: Vec<OsString>) -> RunOptions {
        RunOptions {
            kernel,
            modules_dir: None,
            root: "/".into(),
            rw: false,
            memory_mib: 512,
            cpus: 0,
            share: None,
            timeout_secs: None,
            command,
            cwd: None,
            user: None,
            dirs: Vec::new(),
            disks: Vec::new(),
            append: Vec::new(),
            qemu_opts: Vec::new(),
            verbose: false,
        }
    }
}

/// `--rwdir`, `--rodir` or `--overlay-rwdir`: a host directory and where the VM sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirShare {
    pub kind: ShareKind,
    pub host: PathBuf,
    pub guest: PathBuf,
}

impl DirShare {
    /// `[GUEST=]HOST`, as virtme-ng spells it; the guest's path is the host's by default.
    pub fn parse(kind: ShareKind, value: &str) -> Result<DirShare, String> {
        let (guest, host) = match value.split_once('=') {
            Some((guest, host)) => (guest, host),
            None => (value, value),
        };
        if host.is_empty() {
            return Err(format!("{value:?}: no host directory"));
        }
        let guest = Path::new(guest);
        if !guest.is_absolute()
            || guest
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(format!(
                "{value:?}: the VM's path must be absolute, without '..'"
            ));
        }
        // The overlay's mount options are separated by commas and colons.
        let text = guest.to_string_lossy();
        if kind == ShareKind::Overlay && text.contains([',', ':']) {
            return Err(format!(
                "{value:?}: an overlay's path cannot hold ',' or ':'"
            ));
        }
        Ok(DirShare {
            kind,
            host: host.into(),
            guest: guest.into(),
        })
    }
}

/// The tag the root is shared under.
pub const TAG: &str = "baton-root";
/// How long past `--timeout` the VM may take to boot and power off before it is killed.
const VM_GRACE_SECS: u64 = 120;
pub use crate::run_protocol::OWN_FAILURE;
/// The modules every image carries: the virtio bus, the overlay, the ports. Those built
/// into a kernel are simply not there.
const MODULES: &[&str] = &["virtio_pci", "overlay", "virtio_console"];

/// The modules a run's image carries: [`MODULES`], the transport's, and the disks'
/// driver when there are disks. Each set is an image of its own in the cache: a module
/// left out is one the VM does not spend time loading.
fn modules_for(transport: Transport, disks: bool) -> Vec<&'static str> {
    let mut modules = MODULES.to_vec();
    modules.extend(transport.modules());
    if disks {
        modules.push("virtio_blk");
    }
    modules
}

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
    /// The root first (tag [`TAG`]), then the further directories.
    pub shares: Vec<HostShare>,
    pub status: PathBuf,
    /// The socket the console goes to.
    pub console: PathBuf,
    pub streams: MachineStreams,
    pub disks: Vec<Disk>,
    /// Words for qemu, last.
    pub extra: Vec<String>,
}

/// A directory qemu or virtiofsd serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostShare {
    pub tag: String,
    pub path: PathBuf,
    pub read_only: bool,
    /// virtiofsd's socket (virtiofs only).
    pub socket: Option<PathBuf>,
}

/// The command's streams, as qemu carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineStreams {
    /// Three serial ports, each on a socket: stdin, stdout, stderr.
    Ports([PathBuf; 3]),
    /// A virtio console on qemu's own stdio: a terminal's.
    Terminal,
}

/// A disk for the VM, its format as qemu names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    pub format: &'static str,
}

impl Disk {
    /// qcow2 when the file starts as one, raw otherwise.
    pub fn detect(path: &Path) -> Result<Disk> {
        use std::io::Read;
        let mut magic = [0u8; 4];
        let mut file = std::fs::File::open(path)
            .with_context(|| format!("cannot open the disk {}", path.display()))?;
        let qcow2 = file.read_exact(&mut magic).is_ok() && &magic == b"QFI\xfb";
        Ok(Disk {
            path: path.to_path_buf(),
            format: if qcow2 { "qcow2" } else { "raw" },
        })
    }
}

/// A value inside one of qemu's `key=value,...` options: its commas doubled, which qemu's
/// option parser reads as one comma. A directory named `a,readonly=off` must not add an
/// option.
pub fn qemu_escape(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// qemu's arguments for `machine`: no default devices, the console on its socket, the
/// shared directories, the ports, the disks, then the user's words.
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
        "-chardev".into(),
        format!("socket,id=console,path={}", qemu_escape(&m.console)),
        "-serial".into(),
        "chardev:console".into(),
        "-device".into(),
        "virtio-serial-pci,id=serial".into(),
        "-chardev".into(),
        format!("file,id=status,path={}", qemu_escape(&m.status)),
    ];
    let port = |args: &mut Vec<String>, chardev: &str, name: &str| {
        args.extend([
            "-device".into(),
            format!("virtserialport,bus=serial.0,chardev={chardev},name={name}"),
        ])
    };
    port(&mut args, "status", crate::run_protocol::STATUS_PORT);
    match &m.streams {
        MachineStreams::Ports(sockets) => {
            let names = [
                crate::run_protocol::STDIN_PORT,
                crate::run_protocol::STDOUT_PORT,
                crate::run_protocol::STDERR_PORT,
            ];
            for (n, (socket, name)) in sockets.iter().zip(names).enumerate() {
                args.extend([
                    "-chardev".into(),
                    format!("socket,id=stream{n},path={}", qemu_escape(socket)),
                ]);
                port(&mut args, &format!("stream{n}"), name);
            }
        }
        MachineStreams::Terminal => args.extend([
            // ^C is a byte for the guest's terminal, not a signal for qemu.
            "-chardev".into(),
            "stdio,id=terminal,signal=off".into(),
            "-device".into(),
            "virtconsole,bus=serial.0,chardev=terminal".into(),
        ]),
    }
    if m.transport == Transport::Virtiofs {
        // vhost-user needs the guest's memory shared with virtiofsd.
        args.extend([
            "-object".into(),
            format!(
                "memory-backend-memfd,id=mem,size={}M,share=on",
                m.memory_mib
            ),
            "-numa".into(),
            "node,memdev=mem".into(),
        ]);
    }
    for (n, share) in m.shares.iter().enumerate() {
        match m.transport {
            Transport::NineP => args.extend([
                "-fsdev".into(),
                format!(
                    "local,id=fs{n},path={},security_model=none,multidevs=remap{}",
                    qemu_escape(&share.path),
                    if share.read_only { ",readonly=on" } else { "" }
                ),
                "-device".into(),
                format!("virtio-9p-pci,fsdev=fs{n},mount_tag={}", share.tag),
            ]),
            Transport::Virtiofs => args.extend([
                "-chardev".into(),
                format!(
                    "socket,id=vfs{n},path={}",
                    qemu_escape(share.socket.as_deref().unwrap_or(Path::new("")))
                ),
                "-device".into(),
                format!("vhost-user-fs-pci,chardev=vfs{n},tag={}", share.tag),
            ]),
        }
    }
    for (n, disk) in m.disks.iter().enumerate() {
        args.extend([
            "-drive".into(),
            format!(
                "file={},format={},if=none,id=disk{n}",
                qemu_escape(&disk.path),
                disk.format
            ),
            "-device".into(),
            format!("virtio-blk-pci,drive=disk{n},serial=baton-disk{n}"),
        ]);
    }
    args.extend(m.extra.iter().cloned());
    args
}

/// The kernel command line: the shared root, quiet, the command's settings, then the
/// user's words (`--append`: the kernel takes the last of a repeated parameter).
pub fn append(transport: Transport, rw: bool, timeout: Option<u32>, words: &[String]) -> String {
    let mut line = format!(
        "console=ttyS0 quiet panic=-1 rootfstype={} root={TAG} {}",
        transport.fstype(),
        if rw { "rw" } else { "ro rd.overlay" }
    );
    line.push_str(" baton.run");
    if let Some(secs) = timeout {
        line.push_str(&format!(" baton.run.timeout={secs}"));
    }
    for word in words {
        line.push(' ');
        line.push_str(word);
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
fn image_for(modules: &Path, carried: &[&str], release: &str, scratch: &Path) -> Result<PathBuf> {
    let init_path = crate::host::image::build::find_init(None)?;
    let init = std::fs::read(&init_path)
        .with_context(|| format!("cannot read the init {}", init_path.display()))?;
    let dir = crate::host::run_cache::dir();
    let image = match crate::host::run_cache::private_dir(&dir) {
        Ok(()) => {
            let key = crate::host::run_cache::key(&init, carried, modules, release);
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
        modules: carried.iter().map(|m| m.to_string()).collect(),
        init: Some(init_path),
        // A VM's virtio devices need no firmware, and the CPU no microcode.
        firmware_dir: FirmwareSource::None,
        ..BuildOptions::new(image.clone(), 0)
    };
    build(&opts).with_context(|| format!("failed to build the image for {release}"))?;
    Ok(image)
}

/// The small archive with the command's spec, put before the image.
fn command_archive(spec: &Spec) -> Result<Vec<u8>> {
    let mut image = crate::host::image::entry::Image::new();
    image
        .insert(
            crate::run_protocol::COMMAND_FILE,
            crate::host::image::entry::Entry::file(0o644, crate::run_protocol::spec_file(spec)),
        )
        .map_err(|e| anyhow::anyhow!("{}", e.0))?;
    crate::host::image::newc::write(&image, 0).context("failed to write the command's archive")
}

/// The tag of the `n`th further directory (the root's is [`TAG`]).
fn share_tag(n: usize) -> String {
    format!("baton.dir{n}")
}

/// Where the command starts: `--cwd`, else this process's directory seen from the VM when
/// it lies under the root (or under a further directory), else `/`.
fn start_dir(opts: &RunOptions, root: &Path, dirs: &[DirShare]) -> Option<PathBuf> {
    if let Some(cwd) = &opts.cwd {
        return Some(cwd.clone());
    }
    let here = std::env::current_dir().ok()?.canonicalize().ok()?;
    // The innermost share wins: the one the VM mounts over the root.
    for dir in dirs.iter().rev() {
        if let Ok(rest) = here.strip_prefix(&dir.host) {
            return Some(dir.guest.join(rest));
        }
    }
    here.strip_prefix(root)
        .ok()
        .map(|rest| Path::new("/").join(rest))
}

/// Whether `fd` is a terminal.
fn is_terminal(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// Runs the command in a VM; returns the exit status to end with.
pub fn run(opts: &RunOptions) -> Result<u8> {
    use std::os::fd::AsFd;
    if opts
        .command
        .iter()
        .any(|a| std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str()).contains(&0))
    {
        bail!("an argument of the command contains a NUL byte");
    }
    let stdin_tty = is_terminal(std::io::stdin().as_fd());
    let shell = opts.command.is_empty();
    if shell && !(stdin_tty && is_terminal(std::io::stdout().as_fd())) {
        bail!("no command, and stdin or stdout is not a terminal for a shell: give the command after --");
    }
    let (kernel, release, modules) = kernel_and_modules(opts)?;
    let root = opts
        .root
        .canonicalize()
        .with_context(|| format!("cannot share {}", opts.root.display()))?;
    if !root.is_dir() {
        bail!("cannot share {}: not a directory", root.display());
    }
    let mut dirs = Vec::new();
    for dir in &opts.dirs {
        let host = dir
            .host
            .canonicalize()
            .with_context(|| format!("cannot share {}", dir.host.display()))?;
        if !host.is_dir() {
            bail!("cannot share {}: not a directory", host.display());
        }
        dirs.push(DirShare {
            host,
            ..dir.clone()
        });
    }
    let disks = opts
        .disks
        .iter()
        .map(|d| Disk::detect(d))
        .collect::<Result<Vec<_>>>()?;
    let qemu = "qemu-system-x86_64";
    // Every directory the VM must not write is refused on this side: the root unless
    // --rw, each --rodir, each --overlay-rwdir's lower layer.
    let any_read_only = !opts.rw || dirs.iter().any(|d| d.kind != ShareKind::ReadWrite);
    let (transport, virtiofsd) = choose_transport(opts.share, any_read_only)?;
    let work = tempdir()?;
    let spec = Spec {
        command: opts.command.clone(),
        cwd: start_dir(opts, &root, &dirs).map(PathBuf::into_os_string),
        user: opts.user.clone().map(OsString::from),
        shares: dirs
            .iter()
            .enumerate()
            .map(|(n, d)| crate::run_protocol::Share {
                kind: d.kind,
                tag: share_tag(n),
                guest: d.guest.clone().into_os_string(),
            })
            .collect(),
        streams: match shell {
            true => {
                let (rows, cols) = terminal_size();
                Streams::Terminal {
                    rows,
                    cols,
                    term: std::env::var("TERM").unwrap_or_default(),
                }
            }
            false => Streams::Ports,
        },
        network: false,
    };
    let image = image_for(
        &modules,
        &modules_for(transport, !disks.is_empty()),
        &release,
        &work.path,
    )?;
    let initrd = write_initrd(&spec, &image, &work.path)?;
    let status = work.path.join("status");

    let mut shares = vec![HostShare {
        tag: TAG.into(),
        path: root,
        read_only: !opts.rw,
        socket: None,
    }];
    shares.extend(dirs.iter().enumerate().map(|(n, d)| HostShare {
        tag: share_tag(n),
        path: d.host.clone(),
        read_only: d.kind != ShareKind::ReadWrite,
        socket: None,
    }));
    let mut daemons = Vec::new();
    if transport == Transport::Virtiofs {
        for (n, share) in shares.iter_mut().enumerate() {
            let socket = work.path.join(format!("virtiofsd{n}.sock"));
            daemons.extend(start_virtiofsd(
                transport,
                virtiofsd.as_ref(),
                &socket,
                &share.path,
                share.read_only,
            )?);
            share.socket = Some(socket);
        }
    }

    use crate::host::vm_streams::{Console, Flow, Stream};
    let console = Console::default();
    let mut sockets = vec![Stream::listen(
        &work.path,
        "console",
        Flow::Console(opts.verbose),
    )?];
    let streams = match shell {
        true => MachineStreams::Terminal,
        false => {
            for (name, flow) in [
                ("stdin", Flow::In(!stdin_tty)),
                ("stdout", Flow::Stdout),
                ("stderr", Flow::Stderr),
            ] {
                sockets.push(Stream::listen(&work.path, name, flow)?);
            }
            let path = |n: usize| sockets.get(n).map(|s| s.socket.clone()).unwrap_or_default();
            MachineStreams::Ports([path(1), path(2), path(3)])
        }
    };
    let machine = Machine {
        kernel: crate::host::vm_kernel::bootable(&kernel),
        initrd,
        append: append(transport, opts.rw, opts.timeout_secs, &opts.append),
        memory_mib: opts.memory_mib,
        cpus: match opts.cpus {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            n => n,
        },
        kvm: kvm_usable(),
        transport,
        shares,
        status: status.clone(),
        console: sockets
            .first()
            .map(|s| s.socket.clone())
            .unwrap_or_default(),
        streams,
        disks,
        extra: opts.qemu_opts.clone(),
    };
    let saved = shell.then(crate::host::vm_terminal::Saved::take).flatten();
    let mut command = Command::new(qemu);
    command.args(qemu_args(&machine));
    if !shell {
        command.stdin(std::process::Stdio::null());
    }
    let spawned = command.spawn().map_err(|e| match e.kind() {
        // Found out here rather than by a run of `qemu --version` first: 30 ms saved.
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("{qemu} is not installed (Debian: apt install qemu-system-x86)")
        }
        _ => anyhow::Error::new(e).context(format!("cannot start {qemu}")),
    });
    let mut vm = match spawned {
        Ok(vm) => vm,
        Err(e) => {
            drop(saved);
            return Err(e);
        }
    };
    for socket in &mut sockets {
        socket.start(&console);
    }
    let qemu_status = wait_for_vm(&mut vm, opts.timeout_secs);
    // The terminal as it was, whatever qemu left it as (killed, it restores nothing).
    drop(saved);
    for socket in &mut sockets {
        socket.finish();
    }
    drop(daemons);
    let qemu_status = qemu_status?;
    let reported = std::fs::read_to_string(&status).unwrap_or_default();
    match reported.lines().find_map(parse_status) {
        Some(Outcome::Refused(why)) => bail!("in the VM: {why}"),
        Some(outcome) => {
            if let Outcome::NotRun(_) | Outcome::Signaled(_) | Outcome::TimedOut(_) = outcome {
                eprintln!("{}", outcome.describe(&shown(&opts.command)));
            }
            Ok(exit_code(&outcome))
        }
        None => bail!(
            "the VM ended without reporting the command's status (qemu: {qemu_status}); the console's last lines:\n{}",
            console.tail(CONSOLE_LINES)
        ),
    }
}

/// How many of the console's last lines a failure shows.
const CONSOLE_LINES: usize = 30;

/// The command as a person would type it, for a message.
fn shown(command: &[OsString]) -> String {
    match command.is_empty() {
        true => "the shell".into(),
        false => command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The size of the terminal on stdout: (rows, columns), 0 when unknown.
fn terminal_size() -> (u16, u16) {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: a winsize that outlives the call.
    if unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut size) } != 0 {
        return (0, 0);
    }
    (size.ws_row, size.ws_col)
}

/// The kernel image, its release (read from it), and its modules: `--modules-dir`, else
/// the tree's own when `--kernel` names a kernel tree after `make`, else the installed
/// /lib/modules/RELEASE.
fn kernel_and_modules(opts: &RunOptions) -> Result<(PathBuf, String, PathBuf)> {
    let given = match &opts.kernel {
        Some(kernel) => kernel.clone(),
        None => default_kernel()?,
    };
    let tree = given.is_dir().then_some(given.as_path());
    let image = match tree {
        Some(tree) => tree_kernel(tree)?,
        None => given.clone(),
    };
    let release = crate::host::run_cache::release_of(&image, || {
        let kernel = std::fs::read(&image)
            .with_context(|| format!("cannot read the kernel {}", image.display()))?;
        kernel_release(&kernel).with_context(|| {
            format!(
                "{} does not look like a Linux kernel image (no version in it)",
                image.display()
            )
        })
    })?;
    if !crate::host::run_cache::valid_release(&release) {
        bail!(
            "{}: the kernel's release {release:?} is not a plain file name; refusing to use it in paths",
            image.display()
        );
    }
    let modules = match (&opts.modules_dir, tree) {
        (Some(dir), _) => dir.clone(),
        (None, Some(tree)) => tree.to_path_buf(),
        (None, None) => {
            let installed = PathBuf::from("/lib/modules").join(&release);
            if !installed.is_dir() {
                bail!(
                    "no modules for {release} in /lib/modules: pass --modules-dir DIR (the kernel's lib/modules/{release})"
                );
            }
            installed
        }
    };
    Ok((image, release, modules))
}

/// Without `--kernel`: the current directory when it is a kernel tree after `make`, as
/// virtme-ng does, else the kernel this machine runs.
fn default_kernel() -> Result<PathBuf> {
    let here = PathBuf::from(".");
    if here.join("Makefile").is_file() && tree_kernel(&here).is_ok() {
        return Ok(here);
    }
    let release = nix::sys::utsname::uname()
        .context("uname failed")?
        .release()
        .to_string_lossy()
        .into_owned();
    let running = PathBuf::from(format!("/boot/vmlinuz-{release}"));
    if !running.is_file() {
        bail!(
            "no --kernel, the current directory is no kernel tree, and {} is missing",
            running.display()
        );
    }
    Ok(running)
}

/// The image `make` leaves in a kernel tree: the ELF vmlinux when it has a PVH entry (qemu
/// boots it directly), else the bzImage, else a vmlinux without one.
pub fn tree_kernel(tree: &Path) -> Result<PathBuf> {
    let vmlinux = tree.join("vmlinux");
    if crate::host::vm_kernel::file_has_pvh_entry(&vmlinux) {
        return Ok(vmlinux);
    }
    let candidates = [tree.join("arch/x86/boot/bzImage"), vmlinux];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "{} holds no kernel: neither arch/x86/boot/bzImage nor vmlinux (run make there first)",
                tree.display()
            )
        })
}

/// How the root is shared: a read-only root is read-only on the host's side, over virtiofs
/// only with a virtiofsd that refuses writes itself, else over 9p, where qemu does.
fn choose_transport(
    share: Option<Transport>,
    read_only: bool,
) -> Result<(Transport, Option<crate::host::virtiofsd::Virtiofsd>)> {
    if share == Some(Transport::NineP) {
        // Asking each virtiofsd what it is costs a few ms each: not for nothing.
        return Ok((Transport::NineP, None));
    }
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
fn write_initrd(spec: &Spec, image: &Path, work: &Path) -> Result<PathBuf> {
    let initrd = work.join("initrd.img");
    // The command's archive goes first: the kernel reads an uncompressed archive before a
    // compressed one on every version, where one appended after an lz4 stream was refused
    // by Debian's 6.12 ("invalid magic at start of compressed archive").
    let mut bytes = command_archive(spec)?;
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
            append: append(transport, false, Some(30), &[]),
            memory_mib: 512,
            cpus: 2,
            kvm: false,
            transport,
            shares: vec![
                HostShare {
                    tag: TAG.into(),
                    path: "/srv/tree".into(),
                    read_only: true,
                    socket: Some("/t/vfs0.sock".into()),
                },
                HostShare {
                    tag: share_tag(0),
                    path: "/home/me/out".into(),
                    read_only: false,
                    socket: Some("/t/vfs1.sock".into()),
                },
            ],
            status: "/t/status".into(),
            console: "/t/console.sock".into(),
            streams: MachineStreams::Ports([
                "/t/stdin.sock".into(),
                "/t/stdout.sock".into(),
                "/t/stderr.sock".into(),
            ]),
            disks: vec![Disk {
                path: "/d/a.qcow2".into(),
                format: "qcow2",
            }],
            extra: vec!["-device".into(), "virtio-rng-pci".into()],
        }
    }

    #[test]
    fn qemu_shares_the_directories_and_the_ports() {
        let args = qemu_args(&machine(Transport::NineP)).join(" ");
        assert!(
            args.contains("-accel tcg -cpu max -m 512M -smp 2"),
            "{args}"
        );
        assert!(args.contains("-fsdev local,id=fs0,path=/srv/tree,security_model=none,multidevs=remap,readonly=on"), "{args}");
        assert!(
            args.contains("virtio-9p-pci,fsdev=fs0,mount_tag=baton-root"),
            "{args}"
        );
        assert!(args.contains("-fsdev local,id=fs1,path=/home/me/out,security_model=none,multidevs=remap -device virtio-9p-pci,fsdev=fs1,mount_tag=baton.dir0"), "{args}");
        assert!(args.contains("file,id=status,path=/t/status"), "{args}");
        assert!(args.contains("name=baton.status"), "{args}");
        assert!(
            args.contains("socket,id=console,path=/t/console.sock -serial chardev:console"),
            "{args}"
        );
        assert!(args.contains("socket,id=stream1,path=/t/stdout.sock -device virtserialport,bus=serial.0,chardev=stream1,name=baton.stdout"), "{args}");
        assert!(args.contains("-drive file=/d/a.qcow2,format=qcow2,if=none,id=disk0 -device virtio-blk-pci,drive=disk0"), "{args}");
        assert!(
            args.ends_with("-device virtio-rng-pci"),
            "the user's words come last: {args}"
        );
        assert!(!args.contains("stdio"), "{args}");
        let args = qemu_args(&machine(Transport::Virtiofs)).join(" ");
        assert!(
            args.contains("memory-backend-memfd,id=mem,size=512M,share=on"),
            "{args}"
        );
        assert!(args.contains("socket,id=vfs0,path=/t/vfs0.sock"), "{args}");
        assert!(
            args.contains("vhost-user-fs-pci,chardev=vfs0,tag=baton-root"),
            "{args}"
        );
        assert!(
            args.contains("vhost-user-fs-pci,chardev=vfs1,tag=baton.dir0"),
            "{args}"
        );
        assert!(!args.contains("9p"), "{args}");
        let mut shell = machine(Transport::NineP);
        shell.streams = MachineStreams::Terminal;
        let args = qemu_args(&shell).join(" ");
        assert!(args.contains("-chardev stdio,id=terminal,signal=off -device virtconsole,bus=serial.0,chardev=terminal"), "{args}");
        assert!(!args.contains("baton.stdout"), "{args}");
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
        m.shares.truncate(1);
        if let Some(root) = m.shares.first_mut() {
            root.path = "/srv/a,readonly=off".into();
            root.socket = Some("/t,y/vfs.sock".into());
        }
        m.status = "/t,x/status".into();
        let args = qemu_args(&m);
        assert!(
            args.iter().any(|a| a
                == "local,id=fs0,path=/srv/a,,readonly=off,security_model=none,multidevs=remap,readonly=on"),
            "{args:?}"
        );
        assert!(args.iter().any(|a| a == "file,id=status,path=/t,,x/status"));
        m.transport = Transport::Virtiofs;
        let args = qemu_args(&m);
        assert!(args
            .iter()
            .any(|a| a == "socket,id=vfs0,path=/t,,y/vfs.sock"));
    }

    #[test]
    fn shared_directories_are_spelled_as_virtme_ng_spells_them() {
        let d = DirShare::parse(ShareKind::ReadWrite, "/home/me/out").unwrap();
        assert_eq!(
            (d.host.as_path(), d.guest.as_path()),
            (Path::new("/home/me/out"), Path::new("/home/me/out"))
        );
        let d = DirShare::parse(ShareKind::ReadOnly, "/mnt/src=../src").unwrap();
        assert_eq!(
            (d.host.as_path(), d.guest.as_path()),
            (Path::new("../src"), Path::new("/mnt/src"))
        );
        assert!(DirShare::parse(ShareKind::ReadOnly, "rel=/x").is_err());
        assert!(DirShare::parse(ShareKind::ReadOnly, "/a/../b=/x").is_err());
        assert!(DirShare::parse(ShareKind::ReadOnly, "/a=").is_err());
        assert!(DirShare::parse(ShareKind::Overlay, "/a,b=/x").is_err());
        assert!(DirShare::parse(ShareKind::ReadWrite, "/a,b=/x").is_ok());
    }

    #[test]
    fn disks_are_raw_unless_they_start_as_qcow2() {
        let dir = tempdir().unwrap();
        let raw = dir.path.join("raw.img");
        std::fs::write(&raw, [0u8; 512]).unwrap();
        assert_eq!(Disk::detect(&raw).unwrap().format, "raw");
        let qcow = dir.path.join("d.qcow2");
        std::fs::write(&qcow, b"QFI\xfb\0\0\0\x03").unwrap();
        assert_eq!(Disk::detect(&qcow).unwrap().format, "qcow2");
        std::fs::write(&raw, b"QF").unwrap();
        assert_eq!(Disk::detect(&raw).unwrap().format, "raw", "short");
        assert!(Disk::detect(&dir.path.join("none")).is_err());
    }

    #[test]
    fn the_command_line_asks_for_the_shared_root_and_the_run() {
        assert_eq!(
            append(Transport::NineP, false, Some(30), &["foo=\"a b\"".into(), "x".into()]),
            "console=ttyS0 quiet panic=-1 rootfstype=9p root=baton-root ro rd.overlay baton.run baton.run.timeout=30 foo=\"a b\" x"
        );
        assert_eq!(
            append(Transport::Virtiofs, true, None, &[]),
            "console=ttyS0 quiet panic=-1 rootfstype=virtiofs root=baton-root rw baton.run"
        );
        // The kernel's own parser reads it back as baton does.
        let p = crate::cmdline::parse(&append(Transport::NineP, false, Some(5), &[]));
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
        let archive = command_archive(&Spec {
            command,
            ..Spec::default()
        })
        .unwrap();
        let listing = crate::host::image::inspect::read_image_with(
            &archive,
            &crate::host::image::compress::Limits::DEFAULT,
        )
        .unwrap();
        let text = format!("{listing:?}");
        assert!(text.contains("etc/baton/run"), "{text}");
    }
}
