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

use crate::run_protocol::{exit_code, parse_status, Outcome, ShareKind, Spec, Streams};
use crate::transport::Transport;

pub mod image;
pub mod kernel;
pub mod pvh;
pub mod qemu;
pub mod share;
pub mod streams;
pub mod terminal;

use anyhow::{bail, Context, Result};
use image::{image_for, modules_for, write_initrd};
use kernel::kernel_and_modules;
pub use qemu::TAG;
use qemu::{append, kvm_usable, qemu_args, Disk, HostShare, Machine, MachineStreams};
use share::{choose_transport, start_virtiofsd};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use streams::{Console, Flow, Stream};

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
    /// qemu's user network, the guest configured for it.
    pub network: bool,
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
            network: false,
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

/// How long past `--timeout` the VM may take to boot and power off before it is killed.
const VM_GRACE_SECS: u64 = 120;
pub use crate::run_protocol::OWN_FAILURE;

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
    let (kernel, release, modules) =
        kernel_and_modules(opts.kernel.as_deref(), opts.modules_dir.as_deref())?;
    let (root, dirs) = directories(opts)?;
    let disks = opts
        .disks
        .iter()
        .map(|d| Disk::detect(d))
        .collect::<Result<Vec<_>>>()?;
    // Every directory the VM must not write is refused on this side: the root unless
    // --rw, each --rodir, each --overlay-rwdir's lower layer.
    let any_read_only = !opts.rw || dirs.iter().any(|d| d.kind != ShareKind::ReadWrite);
    let (transport, virtiofsd) = choose_transport(opts.share, any_read_only)?;
    let work = tempdir()?;
    let spec = spec(opts, &root, &dirs, shell);
    let mut shares = host_shares(root, &dirs, opts.rw);
    // The virtiofsds first: they get ready while the initrd and the sockets are made.
    let mut daemons = match (transport, &virtiofsd) {
        (Transport::Virtiofs, Some(v)) => serve_virtiofs(v, &mut shares, &work.path)?,
        _ => Vec::new(),
    };
    let carried = modules_for(transport, !disks.is_empty(), opts.network);
    let image = image_for(&modules, &carried, &release, &work.path)?;
    let initrd = write_initrd(&spec, &image, &work.path)?;
    let console = Console::default();
    let (mut sockets, streams) = listen(&work.path, shell, stdin_tty, opts.verbose)?;
    let booted = pvh::bootable(&kernel);
    let machine = Machine {
        firmware: pvh::firmware(&booted),
        kernel: booted,
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
        status: work.path.join("status"),
        console: sockets
            .first()
            .map(|s| s.socket.clone())
            .unwrap_or_default(),
        streams,
        disks,
        network: opts.network,
        extra: opts.qemu_opts.clone(),
    };
    for daemon in &mut daemons {
        daemon.ready()?;
    }
    let qemu_status = boot(&machine, shell, opts.timeout_secs, &mut sockets, &console);
    drop(daemons);
    let qemu_status = qemu_status.map_err(|e| with_console(e, &console))?;
    outcome(&machine.status, qemu_status, &console, &opts.command)
}

/// A failure of the VM's (killed past its timeout) with what its console last showed: a
/// guest stuck in the kernel says why there (a hung task, an oops), and nowhere else.
fn with_console(e: anyhow::Error, console: &Console) -> anyhow::Error {
    let tail = console.tail(CONSOLE_LINES);
    if tail.trim().is_empty() {
        return e;
    }
    anyhow::anyhow!("{e:#}; the console's last lines:\n{tail}")
}

/// A virtiofsd for each share, each on its own socket in `work`.
fn serve_virtiofs(
    virtiofsd: &crate::host::virtiofsd::Virtiofsd,
    shares: &mut [HostShare],
    work: &Path,
) -> Result<Vec<share::Daemon>> {
    let mut daemons = Vec::new();
    for (n, share) in shares.iter_mut().enumerate() {
        let socket = work.join(format!("virtiofsd{n}.sock"));
        let daemon = start_virtiofsd(
            Transport::Virtiofs,
            Some(virtiofsd),
            &socket,
            &share.path,
            share.read_only,
        )?;
        daemons.extend(daemon);
        share.socket = Some(socket);
    }
    Ok(daemons)
}

/// The root and the further directories, as the host resolves them.
fn directories(opts: &RunOptions) -> Result<(PathBuf, Vec<DirShare>)> {
    let resolve = |path: &Path| -> Result<PathBuf> {
        let resolved = path
            .canonicalize()
            .with_context(|| format!("cannot share {}", path.display()))?;
        if !resolved.is_dir() {
            bail!("cannot share {}: not a directory", resolved.display());
        }
        Ok(resolved)
    };
    let root = resolve(&opts.root)?;
    let dirs = opts
        .dirs
        .iter()
        .map(|dir| {
            Ok(DirShare {
                host: resolve(&dir.host)?,
                ..dir.clone()
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((root, dirs))
}

/// What the VM's init is told: the command, where and as whom, the directories, the
/// streams.
fn spec(opts: &RunOptions, root: &Path, dirs: &[DirShare], shell: bool) -> Spec {
    Spec {
        command: opts.command.clone(),
        cwd: start_dir(opts, root, dirs).map(PathBuf::into_os_string),
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
        network: opts.network,
    }
}

/// The root first, then each further directory, read-only where the VM must not write.
fn host_shares(root: PathBuf, dirs: &[DirShare], rw: bool) -> Vec<HostShare> {
    let mut shares = vec![HostShare {
        tag: TAG.into(),
        path: root,
        read_only: !rw,
        socket: None,
    }];
    shares.extend(dirs.iter().enumerate().map(|(n, d)| HostShare {
        tag: share_tag(n),
        path: d.host.clone(),
        read_only: d.kind != ShareKind::ReadWrite,
        socket: None,
    }));
    shares
}

/// The sockets qemu connects to: the console's, and for a command the three streams'.
fn listen(
    work: &Path,
    shell: bool,
    stdin_tty: bool,
    verbose: bool,
) -> Result<(Vec<Stream>, MachineStreams)> {
    let mut sockets = vec![Stream::listen(work, "console", Flow::Console(verbose))?];
    if shell {
        return Ok((sockets, MachineStreams::Terminal));
    }
    for (name, flow) in [
        ("stdin", Flow::In(!stdin_tty)),
        ("stdout", Flow::Stdout),
        ("stderr", Flow::Stderr),
    ] {
        sockets.push(Stream::listen(work, name, flow)?);
    }
    let path = |n: usize| sockets.get(n).map(|s| s.socket.clone()).unwrap_or_default();
    let ports = MachineStreams::Ports([path(1), path(2), path(3)]);
    Ok((sockets, ports))
}

/// Runs qemu until it ends, its streams served; the terminal (for a shell) as it was
/// afterwards, whatever qemu left it as (killed, it restores nothing).
fn boot(
    machine: &Machine,
    shell: bool,
    timeout_secs: Option<u32>,
    sockets: &mut [Stream],
    console: &Console,
) -> Result<std::process::ExitStatus> {
    let qemu = "qemu-system-x86_64";
    let saved = shell.then(terminal::Saved::take).flatten();
    let mut command = Command::new(qemu);
    command.args(qemu_args(machine));
    if !shell {
        command.stdin(std::process::Stdio::null());
    }
    let mut vm = command.spawn().map_err(|e| match e.kind() {
        // Found out here rather than by a run of `qemu --version` first: 30 ms saved.
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("{qemu} is not installed (Debian: apt install qemu-system-x86)")
        }
        _ => anyhow::Error::new(e).context(format!("cannot start {qemu}")),
    })?;
    for socket in sockets.iter_mut() {
        socket.start(console);
    }
    let status = wait_for_vm(&mut vm, timeout_secs);
    drop(saved);
    for socket in sockets.iter_mut() {
        socket.finish();
    }
    status
}

/// The exit status to end with, from what the VM reported.
fn outcome(
    status: &Path,
    qemu_status: std::process::ExitStatus,
    console: &Console,
    command: &[OsString],
) -> Result<u8> {
    // The guest writes this file: only its first line is read, within a bound.
    let mut reported = String::new();
    if let Ok(file) = std::fs::File::open(status) {
        use std::io::Read;
        let _ = file.take(STATUS_BYTES).read_to_string(&mut reported);
    }
    match reported.lines().find_map(parse_status) {
        Some(Outcome::Refused(why)) => bail!("in the VM: {why}"),
        Some(outcome) => {
            if let Outcome::NotRun(_) | Outcome::Signaled(_) | Outcome::TimedOut(_) = outcome {
                eprintln!("{}", outcome.describe(&crate::run_protocol::shown(command)));
            }
            Ok(exit_code(&outcome))
        }
        None => bail!(
            "the VM ended without reporting the command's status (qemu: {qemu_status}); the console's last lines:\n{}",
            console.tail(CONSOLE_LINES)
        ),
    }
}

/// The most of the status file read: a line is a few dozen bytes, a hostile guest may
/// write gigabytes.
const STATUS_BYTES: u64 = 4096;
/// How many of the console's last lines a failure shows.
const CONSOLE_LINES: usize = 30;

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
        // The VM's end is baton's: a short look keeps that wait short, at no cost.
        std::thread::sleep(std::time::Duration::from_millis(5));
    })
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
    fn a_vm_killed_past_its_timeout_shows_its_console() {
        let killed = || anyhow::anyhow!("the VM did not end; killed it");
        let console = Console::default();
        assert_eq!(
            with_console(killed(), &console).to_string(),
            "the VM did not end; killed it"
        );
        console.keep(b"[  1.0] boot\r\n[ 243.1] INFO: task baton-init:1 blocked for more than 120 seconds.\r\n");
        let shown = format!("{:#}", with_console(killed(), &console));
        assert!(
            shown.starts_with("the VM did not end; killed it; the console's last lines:\n"),
            "{shown}"
        );
        assert!(
            shown.ends_with("blocked for more than 120 seconds."),
            "{shown}"
        );
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
}
