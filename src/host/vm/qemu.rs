//! qemu's side of `baton run`: the machine it is told to make, as a pure function of what
//! the run needs (tested below), and whether KVM can run it.

use crate::transport::Transport;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The tag the root is shared under.
pub const TAG: &str = "baton-root";

/// Everything qemu is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub kernel: PathBuf,
    /// `-bios`, when not qemu's default.
    pub firmware: Option<PathBuf>,
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
    /// qemu's user network on a virtio card.
    pub network: bool,
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
/// ports, the shared directories, the disks, then the user's words.
pub fn qemu_args(m: &Machine) -> Vec<String> {
    let mut args: Vec<String> = [
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-accel",
        if m.kvm { "kvm" } else { "tcg" },
        "-cpu",
        if m.kvm { "host" } else { "max" },
    ]
    .map(String::from)
    .to_vec();
    args.extend([
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
    ]);
    if let Some(firmware) = &m.firmware {
        args.extend(["-bios".into(), firmware.display().to_string()]);
    }
    port_args(m, &mut args);
    share_args(m, &mut args);
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
    if m.network {
        args.extend([
            "-netdev".into(),
            "user,id=net0".into(),
            "-device".into(),
            "virtio-net-pci,netdev=net0".into(),
        ]);
    }
    args.extend(m.extra.iter().cloned());
    args
}

/// The virtio serial bus: the status port, then the streams' ports or the terminal.
fn port_args(m: &Machine, args: &mut Vec<String>) {
    let port = |args: &mut Vec<String>, chardev: &str, name: &str| {
        args.extend([
            "-device".into(),
            format!("virtserialport,bus=serial.0,chardev={chardev},name={name}"),
        ])
    };
    args.extend([
        "-device".into(),
        "virtio-serial-pci,id=serial".into(),
        "-chardev".into(),
        format!("file,id=status,path={}", qemu_escape(&m.status)),
    ]);
    port(args, "status", crate::run_protocol::STATUS_PORT);
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
                port(args, &format!("stream{n}"), name);
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
}

/// Each shared directory over the transport: a 9p device qemu serves, or a vhost-user
/// device a virtiofsd serves (with the guest's memory shared with it).
fn share_args(m: &Machine, args: &mut Vec<String>) {
    if m.transport == Transport::Virtiofs {
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
pub(super) fn kvm_usable() -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    fn machine(transport: Transport) -> Machine {
        Machine {
            kernel: "/k/vmlinuz".into(),
            firmware: Some("/usr/share/qemu/qboot.rom".into()),
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
                    tag: "baton.dir0".into(),
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
            network: true,
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
            args.contains("-netdev user,id=net0 -device virtio-net-pci,netdev=net0")
                && args.ends_with("-device virtio-rng-pci"),
            "the user's words come last: {args}"
        );
        assert!(!args.contains("stdio"), "{args}");
        assert!(args.contains("-bios /usr/share/qemu/qboot.rom"), "{args}");
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
    fn disks_are_raw_unless_they_start_as_qcow2() {
        let dir = std::env::temp_dir().join(format!("baton-disks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let raw = dir.join("raw.img");
        std::fs::write(&raw, [0u8; 512]).unwrap();
        assert_eq!(Disk::detect(&raw).unwrap().format, "raw");
        let qcow = dir.join("d.qcow2");
        std::fs::write(&qcow, b"QFI\xfb\0\0\0\x03").unwrap();
        assert_eq!(Disk::detect(&qcow).unwrap().format, "qcow2");
        std::fs::write(&raw, b"QF").unwrap();
        assert_eq!(Disk::detect(&raw).unwrap().format, "raw", "short");
        assert!(Disk::detect(&dir.join("none")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
