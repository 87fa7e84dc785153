//! `baton run`'s command line: virtme-ng's spellings where it has one, and their
//! translation into [`RunOptions`].

use crate::host::vm::RunOptions;
use crate::transport::Transport;
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;

/// Boot a kernel in a VM whose root is a host directory, run a command, end with its status.
///
/// KVM when /dev/kvm works, else TCG. Ends with CMD's exit status (128+N for signal N, 124
/// past --timeout, 125 for baton's own failures). CMD's stdin, stdout and stderr are this
/// command's, each apart and byte for byte (stdin only when it is not a terminal); without
/// CMD, a shell runs on this terminal. It starts in the current directory when that lies
/// under DIR. The root is shared over virtiofs when a virtiofsd is at hand that enforces
/// read-only itself (the Rust virtiofsd; qemu's C one only with --rw), else 9p; read-only on
/// the host's side, under a tmpfs overlay, so CMD may write anywhere and DIR is never
/// changed, unless --rw. The image is built for the kernel's modules once and cached in
/// ~/.cache/baton/run. virtme-ng's spellings are accepted: --run, --exec, --rwdir, --rodir,
/// --overlay-rwdir, --disk, --append, --qemu-opts.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The kernel to boot: an image (bzImage or vmlinux), or a kernel tree after make (its
    /// arch/x86/boot/bzImage and its modules in place). Default: the current directory when
    /// it is such a tree, else this machine's running kernel.
    #[arg(long, visible_alias = "run", value_name = "KERNEL", num_args = 0..=1, default_missing_value = ".")]
    pub kernel: Option<PathBuf>,
    /// The kernel's modules (default: the tree's own, or /lib/modules/KVER).
    #[arg(long, value_name = "DIR")]
    pub modules_dir: Option<PathBuf>,
    /// The directory that is the VM's root.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Let the VM write to DIR.
    #[arg(long)]
    pub rw: bool,
    /// The VM's memory: MiB, or with a unit (512M, 2G).
    #[arg(long, value_name = "SIZE", default_value = "512", value_parser = memory())]
    pub memory: u32,
    /// The VM's CPUs, or "host" for as many as this machine has (as virtme-ng).
    #[arg(long, value_name = "N", default_value = "host", value_parser = cpus())]
    pub cpus: u32,
    /// How DIR is shared.
    #[arg(long, value_name = "HOW", value_parser = share())]
    pub share: Option<Transport>,
    /// Kill the command after SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = positive("seconds"))]
    pub timeout: Option<u32>,
    /// Where the command starts, in the VM (default: the current directory, when the VM has it).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Run as this user of the VM's root (default: root).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Share a host directory writable, at GUEST (default: the same path). Repeatable.
    #[arg(long, value_name = "[GUEST=]HOST")]
    pub rwdir: Vec<String>,
    /// Share a host directory read-only (on the host's side too). Repeatable.
    #[arg(long, value_name = "[GUEST=]HOST")]
    pub rodir: Vec<String>,
    /// Share a host directory writable in the VM only: changes go to memory. Repeatable.
    #[arg(long, value_name = "[GUEST=]HOST")]
    pub overlay_rwdir: Vec<String>,
    /// Attach a disk (raw or qcow2) as a virtio disk, vda first. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub disk: Vec<PathBuf>,
    /// Add to the kernel's command line (split as a shell would). Repeatable.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub append: Vec<String>,
    /// Add to qemu's arguments, last (split as a shell would). Repeatable.
    #[arg(long, value_name = "OPTS", allow_hyphen_values = true)]
    pub qemu_opts: Vec<String>,
    /// A network: "user" is qemu's user network (the host's loopback at 10.0.2.2).
    #[arg(long, visible_alias = "net", value_name = "KIND", value_parser = ["user"])]
    pub network: Option<String>,
    /// Show the VM's console (the kernel's and the init's messages) on stderr.
    #[arg(long, short)]
    pub verbose: bool,
    /// The command as one string for sh -c (virtme-ng's --exec).
    #[arg(long, value_name = "CMD", conflicts_with = "command")]
    pub exec: Option<String>,
    /// The command and its arguments, after --.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl RunArgs {
    pub(super) fn options(self) -> Result<RunOptions, String> {
        use crate::run_protocol::ShareKind;
        let mut dirs = Vec::new();
        for (kind, values) in [
            (ShareKind::ReadWrite, &self.rwdir),
            (ShareKind::ReadOnly, &self.rodir),
            (ShareKind::Overlay, &self.overlay_rwdir),
        ] {
            for value in values {
                dirs.push(crate::host::vm::DirShare::parse(kind, value)?);
            }
        }
        let split = |values: &[String]| -> Result<Vec<String>, String> {
            let mut words = Vec::new();
            for value in values {
                words.extend(crate::host::words::split(value)?);
            }
            Ok(words)
        };
        let command = match self.exec {
            Some(line) => vec!["sh".into(), "-c".into(), line.into()],
            None => self.command,
        };
        if let Some(cwd) = &self.cwd {
            if !cwd.is_absolute() {
                return Err(format!(
                    "--cwd {}: a path in the VM must be absolute",
                    cwd.display()
                ));
            }
        }
        Ok(RunOptions {
            modules_dir: self.modules_dir,
            root: self.root,
            rw: self.rw,
            memory_mib: self.memory,
            cpus: self.cpus,
            share: self.share,
            timeout_secs: self.timeout,
            cwd: self.cwd,
            user: self.user,
            dirs,
            disks: self.disk,
            append: split(&self.append)?,
            qemu_opts: split(&self.qemu_opts)?,
            verbose: self.verbose,
            network: self.network.is_some(),
            ..RunOptions::new(self.kernel, command)
        })
    }
}

/// `--memory`: MiB, or a number with K, M, G or T (as qemu's `-m` reads it).
fn memory() -> impl Fn(&str) -> Result<u32, String> + Clone {
    |value| {
        let (number, unit) = match value.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
            Some((at, _)) => value.split_at(at),
            None => (value, "M"),
        };
        let shift = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
            "K" => -10,
            "M" => 0,
            "G" => 10,
            "T" => 20,
            _ => {
                return Err(format!(
                    "{value:?}: expected MiB, or a size like 512M or 2G"
                ))
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{value:?}: expected MiB, or a size like 512M or 2G"))?;
        let mib = if shift < 0 { n >> 10 } else { n << shift };
        u32::try_from(mib)
            .ok()
            .filter(|&m| m >= 64)
            .ok_or_else(|| format!("{value:?}: expected at least 64 MiB"))
    }
}

/// `--cpus`: a positive number, or `host` (0: as many as this machine has).
fn cpus() -> impl Fn(&str) -> Result<u32, String> + Clone {
    |value| match value {
        "host" | "all" => Ok(0),
        _ => positive("CPUs")(value),
    }
}

fn share() -> impl clap::builder::TypedValueParser<Value = Transport> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["9p", "virtiofs"]).map(|v| match v.as_str() {
        "9p" => Transport::NineP,
        _ => Transport::Virtiofs,
    })
}

/// A parser of positive numbers of `what`.
fn positive(what: &'static str) -> impl Fn(&str) -> Result<u32, String> + Clone {
    move |value| {
        value
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("expected a positive number of {what}"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::{parse, Command};
    use super::*;

    fn ok(s: &str) -> Command {
        parse(crate::host::words::split(s).unwrap(), 0).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn run_options_as_virtme_ng_spells_them() {
        let Command::Run(r) = ok("run --run --exec 'make -j2 check' --memory 2G --cpus host --rwdir /o --rodir /g=/h --overlay-rwdir /etc --disk d.img --disk e.qcow2 --append 'a=1 b=\"x y\"' --append c --qemu-opts '-device virtio-rng-pci' --cwd /src --user me -v") else {
            panic!()
        };
        assert_eq!(
            (r.kernel, r.root),
            (Some(PathBuf::from(".")), PathBuf::from("/"))
        );
        assert_eq!(r.command, ["sh", "-c", "make -j2 check"]);
        assert_eq!((r.memory_mib, r.cpus), (2048, 0));
        let dirs: Vec<_> = r
            .dirs
            .iter()
            .map(|d| (d.kind, d.host.to_str().unwrap(), d.guest.to_str().unwrap()))
            .collect();
        use crate::run_protocol::ShareKind;
        assert_eq!(
            dirs,
            [
                (ShareKind::ReadWrite, "/o", "/o"),
                (ShareKind::ReadOnly, "/h", "/g"),
                (ShareKind::Overlay, "/etc", "/etc")
            ]
        );
        assert_eq!(r.disks, [PathBuf::from("d.img"), PathBuf::from("e.qcow2")]);
        assert_eq!(r.append, ["a=1", "b=x y", "c"]);
        assert_eq!(r.qemu_opts, ["-device", "virtio-rng-pci"]);
        assert_eq!(
            (r.cwd, r.user.as_deref(), r.verbose),
            (Some(PathBuf::from("/src")), Some("me"), true)
        );
        let Command::Run(r) = ok("run") else { panic!() };
        assert_eq!(
            (r.kernel, r.command.len()),
            (None, 0),
            "a shell on the running kernel"
        );
        let Command::Run(r) = ok("run --memory 768 -- true") else {
            panic!()
        };
        assert_eq!(r.memory_mib, 768);
    }
}
