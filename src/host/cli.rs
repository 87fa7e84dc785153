//! The host tool's command line: parsed into a [`Command`] by a pure function, then run.

use crate::host::image::build::{
    build, mtime_from_env, parse_include, BuildOptions, BuildReport, FirmwareSource,
    ModuleCompression, Storage,
};
use crate::host::image::compress::{human_size, parse_size, read_bounded, Compression, Limits};
use crate::host::image::inspect::{format_listing, read_image_with, Listing};
use crate::host::image::microcode::Microcode;
use crate::host::update::{self, Kernels, UpdateOptions};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const USAGE: &str = "\
usage: baton build -o OUT [--modules-dir DIR] [--module NAME]... [--storage[=all] | --host]
                   [--module-compression keep|decompress|auto] [--include SRC[:DEST]]...
                   [--shell PATH] [--compress auto|gzip|zstd|xz|lz4|none] [--init PATH]
                   [--firmware-dir DIR|none] [--microcode all|host|none]
       baton inspect [--max-unpacked SIZE] [--max-decoder-memory SIZE] IMAGE
       baton update [-k KVER|all] [--root DIR] [-o OUT]
       baton check [--root DIR] [-k KVER] [IMAGE]
       baton timeline [FILE|LOG] [--svg OUT]
       baton run --kernel VMLINUZ [--modules-dir DIR] --root DIR [--rw] [--memory MIB]
                 [--cpus N] [--share 9p|virtiofs] [--timeout SECS] -- CMD [ARGS...]
       baton --version

build    write an initramfs image: the static baton init as /init, the skeleton of
         directories and device nodes, the modules named with --module and everything they
         need (from a /lib/modules/KVER-style --modules-dir), and the --include'd files.
         --storage adds the disk-controller and root-filesystem drivers of VMs and PCs
         (--storage=all: also RAID, SAS and Fibre Channel HBAs), each loaded at boot only
         for the hardware present and the root's filesystem. --host instead adds only what
         this running system's root needs: its filesystem and the drivers of its disk (from
         /proc/self/mountinfo and sysfs); where that cannot be seen (a chroot, a root on no
         block device) it warns and builds as --storage.
         Firmware: each module's firmware= files are looked up in --firmware-dir (default:
         lib/firmware beside the modules directory, X/lib/firmware for X/lib/modules/KVER,
         if it exists) as the kernel's loader searches it (updates/KVER, updates, KVER, the
         top; .zst and .xz where the kernel reads them) and stored at lib/firmware/NAME;
         links resolve inside the directory's system root. A file missing for a module
         named or detected is a warning. CPU microcode from the same directory's
         intel-ucode/ and amd-ucode/ goes first, in an uncompressed early archive the
         kernel reads at boot (kernel/x86/microcode/GenuineIntel.bin, AuthenticAMD.bin):
         --microcode all (the default), host (this machine's CPUs only; the default with
         --host) or none.
         --compress auto (the default) is lz4 when the kernel's config (config-KVER in the
         modules' system's /boot, or beside them) says it unpacks lz4 and it is 5.14 or
         later (lz4 is fastest to write and to unpack), gzip otherwise.
         SOURCE_DATE_EPOCH sets every timestamp (default 0): same inputs, same bytes.
inspect  list every entry of an image (cpio, plain or gzip/zstd/xz/lz4, concatenated).
         Whatever the image's headers claim, reading it stops with an error past
         --max-unpacked bytes of archives (default 1G) or when a decompressor asks for more
         than --max-decoder-memory (default 128M, for a zstd window or an xz dictionary).
         SIZE is bytes, or with a K, M or G suffix.
update   write /boot/initrd.img-KVER for the installed kernels (-k all, the default) or one,
         as /etc/baton/baton.conf and /etc/baton/conf.d/*.conf say; --root DIR updates the
         system installed in DIR instead of this one (firmware and microcode from its
         lib/firmware); -o OUT writes the one kernel's image (-k KVER) to OUT instead. Each
         image is written to a temporary name, checked as `baton check` does, and renamed:
         a failed build, or an image that could not bring up the system's root, leaves the
         old image, says why (one line per layer) and exits 1.
check    say whether IMAGE (default: the one update would write for -k KVER, by default
         the newest installed kernel) can bring up the root of this system (from
         /proc/self/mountinfo and sysfs) or of the system in DIR (--root: its etc/fstab,
         etc/crypttab, etc/mdadm/mdadm.conf): one line per layer, the filesystem, each
         layer between it and the disks (dm-crypt, LVM, MD, network, multi-device), each
         disk's drivers, with what to do about each that fails. Exit 0 when all pass.
run      boot the kernel in a qemu VM (KVM when /dev/kvm works, else TCG) whose root is the
         host's directory DIR, run CMD in it, and end with CMD's exit status (128+N for
         signal N, 124 past --timeout, 125 for baton's own failures). DIR is shared over
         virtiofs when a virtiofsd is at hand that enforces read-only itself (the Rust
         virtiofsd; qemu's C one only with --rw), else 9p (--share chooses); read-only on
         the host's side, under a tmpfs overlay, so CMD may write anywhere and DIR is never
         changed, unless --rw. CMD's output is the VM's console, on stdout.
         The image is built for the kernel's modules (--modules-dir, default
         /lib/modules/KVER) once and cached in ~/.cache/baton/run. --memory defaults to
         512 (MiB), --cpus to 1.
timeline when each step of a boot began and how long it took, each module's load on its
         thread: from the file the init leaves in /run/baton/timeline (the default), or
         from a console log or dmesg output with baton's lines. Prints a table; --svg OUT
         also draws it.
";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Build(BuildOptions),
    Inspect { image: PathBuf, limits: Limits },
    Update(UpdateOptions),
    Check(crate::host::check::command::CheckOptions),
    Timeline(crate::host::timeline::command::Options),
    Run(crate::host::vm::RunOptions),
    Help,
    Version,
}

/// Parses arguments (without the program name). Pure apart from nothing: the mtime is
/// passed in so tests need not touch the environment.
pub fn parse(args: &[String], mtime: u32) -> Result<Command> {
    let mut args = args.iter();
    let Some(sub) = args.next() else {
        bail!("no command given\n{USAGE}");
    };
    match sub.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" => Ok(Command::Version),
        "inspect" => parse_inspect(&mut args),
        "build" => parse_build(&mut args, mtime).map(Command::Build),
        "update" => parse_update(&mut args, mtime).map(Command::Update),
        "check" => parse_check(&mut args).map(Command::Check),
        "timeline" => crate::host::timeline::command::parse(&mut args).map(Command::Timeline),
        "run" => parse_run(&mut args).map(Command::Run),
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn parse_run(args: &mut std::slice::Iter<'_, String>) -> Result<crate::host::vm::RunOptions> {
    let mut opts = crate::host::vm::RunOptions {
        kernel: PathBuf::new(),
        modules_dir: None,
        root: PathBuf::new(),
        rw: false,
        memory_mib: 512,
        cpus: 1,
        share: None,
        timeout_secs: None,
        command: Vec::new(),
    };
    let (mut kernel, mut root) = (None, None);
    while let Some(arg) = args.next() {
        let (flag, inline) = split_flag(arg);
        let mut number = |what: &str| -> Result<u32> {
            let value = option_value(flag, inline, args)?;
            value
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("{flag} {value:?}: expected a positive number of {what}"))
        };
        match flag {
            "--" => {
                opts.command = args.by_ref().map(OsString::from).collect();
                break;
            }
            "--kernel" => kernel = Some(PathBuf::from(option_value(flag, inline, args)?)),
            "--modules-dir" => {
                opts.modules_dir = Some(PathBuf::from(option_value(flag, inline, args)?))
            }
            "--root" => root = Some(PathBuf::from(option_value(flag, inline, args)?)),
            "--rw" => opts.rw = true,
            "--memory" => opts.memory_mib = number("MiB")?,
            "--cpus" => opts.cpus = number("CPUs")?,
            "--timeout" => opts.timeout_secs = Some(number("seconds")?),
            "--share" => {
                opts.share = match option_value(flag, inline, args)?.as_str() {
                    "9p" => Some(crate::transport::Transport::NineP),
                    "virtiofs" => Some(crate::transport::Transport::Virtiofs),
                    other => bail!("--share {other}: expected 9p or virtiofs"),
                }
            }
            _ => bail!("unexpected argument {arg:?} (the command goes after --)\n{USAGE}"),
        }
    }
    opts.kernel = kernel.context("baton run needs --kernel VMLINUZ")?;
    opts.root = root.context("baton run needs --root DIR")?;
    if opts.command.is_empty() {
        bail!("baton run needs a command after --");
    }
    Ok(opts)
}

fn parse_inspect(args: &mut std::slice::Iter<'_, String>) -> Result<Command> {
    let mut limits = Limits::DEFAULT;
    let mut image = None;
    while let Some(arg) = args.next() {
        let (flag, inline) = split_flag(arg);
        let mut value = || -> Result<u64> {
            parse_size(&option_value(flag, inline, args)?).with_context(|| flag.to_owned())
        };
        match flag {
            "--max-unpacked" => limits.max_unpacked = value()?,
            "--max-decoder-memory" => limits.max_decoder_memory = value()?,
            _ if flag.starts_with("--") => bail!("unknown option {arg:?}\n{USAGE}"),
            _ if image.is_none() => image = Some(PathBuf::from(arg)),
            _ => bail!("unexpected argument {arg:?}"),
        }
    }
    let image = image.context("inspect needs an IMAGE")?;
    Ok(Command::Inspect { image, limits })
}

fn parse_build(args: &mut std::slice::Iter<'_, String>, mtime: u32) -> Result<BuildOptions> {
    let mut opts = BuildOptions::new(PathBuf::new(), mtime);
    let mut output = None;
    while let Some(arg) = args.next() {
        // Accept both `--opt value` and `--opt=value`.
        let (flag, inline) = split_flag(arg);
        let mut value = || option_value(flag, inline, args);
        match flag {
            "-o" | "--output" => output = Some(PathBuf::from(value()?)),
            "--modules-dir" => opts.modules_dir = Some(PathBuf::from(value()?)),
            "--module" | "-m" => {
                for name in value()?.split(',').filter(|s| !s.is_empty()) {
                    opts.modules.push(name.to_owned());
                }
            }
            "--host" => opts.storage = Storage::Host,
            "--storage" => {
                opts.storage = match inline {
                    None | Some("common") => Storage::Common,
                    Some("all") => Storage::All,
                    Some(other) => bail!("--storage={other}: expected common or all"),
                }
            }
            "--module-compression" => {
                opts.module_compression = match value()?.as_str() {
                    "keep" => ModuleCompression::Keep,
                    "decompress" => ModuleCompression::Decompress,
                    "auto" => ModuleCompression::Auto,
                    other => {
                        bail!("--module-compression {other}: expected keep, decompress or auto")
                    }
                }
            }
            "--include" => opts.includes.push(parse_include(&value()?)?),
            "--shell" => opts.shell = Some(PathBuf::from(value()?)),
            "--compress" => opts.compression = Compression::parse_choice(&value()?)?,
            "--init" => opts.init = Some(PathBuf::from(value()?)),
            "--firmware-dir" => {
                opts.firmware_dir = match value()?.as_str() {
                    "" => bail!("--firmware-dir needs a directory or none"),
                    "none" => FirmwareSource::None,
                    dir => FirmwareSource::Dir(PathBuf::from(dir)),
                }
            }
            "--microcode" => {
                opts.microcode = Some(Microcode::parse(&value()?).context("--microcode")?)
            }
            _ => bail!("unknown option {arg:?}\n{USAGE}"),
        }
    }
    opts.output = output.context("build needs -o OUT")?;
    Ok(opts)
}

fn parse_update(args: &mut std::slice::Iter<'_, String>, mtime: u32) -> Result<UpdateOptions> {
    let mut opts = UpdateOptions {
        kernels: Kernels::All,
        root: PathBuf::from("/"),
        output: None,
        mtime,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = split_flag(arg);
        let mut value = || option_value(flag, inline, args);
        match flag {
            "-k" | "--kernel" => {
                opts.kernels = match value()?.as_str() {
                    "all" => Kernels::All,
                    kver if kver.is_empty() || kver.contains('/') => {
                        bail!("-k {kver:?}: expected a kernel release or all")
                    }
                    kver => Kernels::One(kver.to_owned()),
                }
            }
            "--root" => opts.root = PathBuf::from(value()?),
            "-o" | "--output" => opts.output = Some(PathBuf::from(value()?)),
            _ => bail!("unknown option {arg:?}\n{USAGE}"),
        }
    }
    Ok(opts)
}

fn parse_check(
    args: &mut std::slice::Iter<'_, String>,
) -> Result<crate::host::check::command::CheckOptions> {
    let mut opts = crate::host::check::command::CheckOptions {
        root: PathBuf::from("/"),
        kernel: None,
        image: None,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = split_flag(arg);
        match flag {
            "-k" | "--kernel" => {
                let kver = option_value(flag, inline, args)?;
                if kver.is_empty() || kver.contains('/') {
                    bail!("-k {kver:?}: expected a kernel release");
                }
                opts.kernel = Some(kver);
            }
            "--root" => opts.root = PathBuf::from(option_value(flag, inline, args)?),
            image if !image.starts_with('-') && opts.image.is_none() => {
                opts.image = Some(PathBuf::from(image))
            }
            _ => bail!("unknown option {arg:?}\n{USAGE}"),
        }
    }
    Ok(opts)
}

/// `--opt=value` split into the flag and its value; anything else is a flag alone.
fn split_flag(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
        _ => (arg, None),
    }
}

/// The value of `flag`: given with `=`, or the next argument (`--opt value`).
fn option_value(
    flag: &str,
    inline: Option<&str>,
    args: &mut std::slice::Iter<'_, String>,
) -> Result<String> {
    match inline {
        Some(value) => Ok(value.to_owned()),
        None => args
            .next()
            .cloned()
            .with_context(|| format!("{flag} needs a value")),
    }
}

/// Reads an image file, at most `limits.max_unpacked` bytes of it: a compressed image is
/// smaller than the archives it unpacks to, an uncompressed one is them (give or take zero
/// padding), and the path may name something endless (`/dev/zero`, a pipe).
fn read_image_file(path: &Path, limits: &Limits) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("failed to read {}", path.display()))?;
    let max = usize::try_from(limits.max_unpacked).unwrap_or(usize::MAX);
    let mut data = Vec::new();
    let complete = read_bounded(file, max, &mut data)
        .with_context(|| format!("failed to read {}", path.display()))?;
    if !complete {
        bail!(
            "{} is larger than {}, the limit on unpacked data (--max-unpacked)",
            path.display(),
            human_size(limits.max_unpacked)
        );
    }
    Ok(data)
}

fn write_listing(out: &mut dyn Write, listings: &[Listing]) -> io::Result<()> {
    let mut last_segment = None;
    for l in listings {
        if last_segment != Some(l.segment) {
            writeln!(out, "# archive {} ({})", l.segment, l.compression.name())?;
            last_segment = Some(l.segment);
        }
        writeln!(out, "{}", format_listing(l))?;
    }
    Ok(())
}

/// Writes to standard output through `write`. A reader that went away (`baton inspect | head`)
/// is the normal end of the output, not an error: it ends quietly. Any other failure is.
fn to_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let result = write(&mut out).and_then(|()| out.flush());
    // After a failed write, dropping the writer would only try the buffered rest again.
    let _ = out.into_parts();
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("failed to write to standard output"),
    }
}

/// Runs the command line; returns the exit status (the command's, for `baton run`).
pub fn run(args: &[String]) -> Result<u8> {
    match parse(args, mtime_from_env()?)? {
        Command::Run(opts) => {
            return Ok(crate::host::vm::run(&opts).unwrap_or_else(|err| {
                let _ = writeln!(io::stderr(), "baton: error: {err:#}");
                crate::host::vm::OWN_FAILURE
            }))
        }
        Command::Help => to_stdout(|out| out.write_all(USAGE.as_bytes()))?,
        Command::Version => {
            to_stdout(|out| writeln!(out, "baton {}", env!("CARGO_PKG_VERSION")))?;
        }
        Command::Inspect { image, limits } => {
            let data = read_image_file(&image, &limits)?;
            let listings = read_image_with(&data, &limits)
                .with_context(|| format!("failed to read image {}", image.display()))?;
            drop(data);
            to_stdout(|out| write_listing(out, &listings))?;
        }
        Command::Timeline(options) => {
            let table = crate::host::timeline::command::run(&options)?;
            to_stdout(|out| out.write_all(table.as_bytes()))?;
        }
        Command::Check(opts) => {
            if !crate::host::check::command::run(&opts)? {
                return Ok(1);
            }
        }
        Command::Update(opts) => {
            let written = update::run(&opts)?;
            if written.is_empty() {
                let _ = writeln!(
                    io::stderr(),
                    "baton: no kernels installed in {}",
                    opts.root.display()
                );
            }
            for (kver, report) in written {
                let _ = writeln!(
                    io::stderr(),
                    "baton: wrote the image for {kver} ({} bytes, {} modules{})",
                    report.bytes,
                    report.modules.len(),
                    extras(&report)
                );
            }
        }
        Command::Build(opts) => {
            let report = build(&opts)?;
            // The image is written; a closed stderr must not turn that into a failure.
            let _ = writeln!(
                io::stderr(),
                "baton: wrote {} ({} bytes, {} entries, {}; {} modules{}{})",
                opts.output.display(),
                report.bytes,
                report.entries,
                report.compression.name(),
                report.modules.len(),
                extras(&report),
                if report.modules.is_empty() {
                    String::new()
                } else {
                    format!(": {}", report.modules.join(" "))
                }
            );
        }
    }
    Ok(0)
}

/// The summary line's firmware and microcode part: `, 3 firmware files, 131 microcode
/// files (21 MB, uncompressed)`; nothing when there are none.
fn extras(report: &BuildReport) -> String {
    let mut out = String::new();
    if !report.firmware.is_empty() {
        let n = report.firmware.len();
        out.push_str(&format!(
            ", {n} firmware file{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    if report.microcode_files > 0 {
        let n = report.microcode_files;
        out.push_str(&format!(
            ", {n} microcode file{} ({} bytes, uncompressed)",
            if n == 1 { "" } else { "s" },
            report.microcode_bytes
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn update_options() {
        assert_eq!(
            parse(&args("update"), 3).unwrap(),
            Command::Update(UpdateOptions {
                kernels: Kernels::All,
                root: PathBuf::from("/"),
                output: None,
                mtime: 3
            })
        );
        let Command::Update(o) = parse(&args("update -k 6.1.0-57-amd64 --root=/mnt"), 0).unwrap()
        else {
            panic!()
        };
        assert_eq!(o.kernels, Kernels::One("6.1.0-57-amd64".into()));
        assert_eq!(o.root, PathBuf::from("/mnt"));
        let Command::Update(o) = parse(&args("update -k 6.1 -o /tmp/stage/initrd"), 0).unwrap()
        else {
            panic!()
        };
        assert_eq!(o.output, Some(PathBuf::from("/tmp/stage/initrd")));
        assert!(parse(&args("update -k ../x"), 0).is_err());
        assert!(parse(&args("update --force"), 0).is_err());
    }

    #[test]
    fn build_options() {
        let Command::Build(o) = parse(
            &args("build -o out.img --modules-dir /m --module ext4 -m virtio-blk,virtio_pci --include a:/etc/a --include /etc/b --compress=zstd --shell /bin/busybox"),
            7,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.output, PathBuf::from("out.img"));
        assert_eq!(o.modules, ["ext4", "virtio-blk", "virtio_pci"]);
        assert_eq!(
            o.includes,
            [
                (PathBuf::from("a"), "/etc/a".to_owned()),
                (PathBuf::from("/etc/b"), "/etc/b".to_owned())
            ]
        );
        assert_eq!(o.compression, Some(Compression::Zstd));
        assert_eq!(o.mtime, 7);
        assert_eq!(o.firmware_dir, FirmwareSource::BesideModules);
        assert_eq!(o.microcode, None);
    }

    #[test]
    fn firmware_and_microcode_options() {
        let build = |s: &str| match parse(&args(s), 0).unwrap() {
            Command::Build(o) => o,
            other => panic!("{other:?}"),
        };
        let o = build("build -o x --firmware-dir /srv/fw --microcode host");
        assert_eq!(
            o.firmware_dir,
            FirmwareSource::Dir(PathBuf::from("/srv/fw"))
        );
        assert_eq!(o.microcode, Some(Microcode::Host));
        let o = build("build -o x --firmware-dir=none --microcode=none");
        assert_eq!(o.firmware_dir, FirmwareSource::None);
        assert_eq!(o.microcode, Some(Microcode::None));
        assert_eq!(
            build("build -o x --microcode all").microcode,
            Some(Microcode::All)
        );
        for bad in [
            "build -o x --microcode",
            "build -o x --microcode some",
            "build -o x --firmware-dir",
            "build -o x --firmware-dir=",
        ] {
            assert!(parse(&args(bad), 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(parse(&args(""), 0).is_err());
        assert!(parse(&args("build"), 0).is_err());
        assert!(parse(&args("build -o"), 0).is_err());
        assert!(parse(&args("build -o x --compress bzip2"), 0).is_err());
        assert!(parse(&args("build -o x --frobnicate"), 0).is_err());
        assert!(parse(&args("inspect"), 0).is_err());
        assert!(parse(&args("explode"), 0).is_err());
    }

    #[test]
    fn inspect_options() {
        assert_eq!(
            parse(&args("inspect img"), 0).unwrap(),
            Command::Inspect {
                image: PathBuf::from("img"),
                limits: Limits::DEFAULT
            }
        );
        assert_eq!(
            parse(
                &args("inspect --max-unpacked 64M img --max-decoder-memory=8388608"),
                0
            )
            .unwrap(),
            Command::Inspect {
                image: PathBuf::from("img"),
                limits: Limits {
                    max_unpacked: 64 << 20,
                    max_decoder_memory: 8 << 20
                }
            }
        );
        for bad in [
            "inspect a b",
            "inspect --max-unpacked",
            "inspect --max-unpacked 0 img",
            "inspect --max-unpacked 12X img",
            "inspect --max-unpacked 99999999999G img",
            "inspect --frobnicate img",
        ] {
            assert!(parse(&args(bad), 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn include_specs() {
        assert_eq!(
            parse_include("/a/b:/c").unwrap(),
            (PathBuf::from("/a/b"), "/c".to_owned())
        );
        assert_eq!(
            parse_include("x:y:/z").unwrap(),
            (PathBuf::from("x:y"), "/z".to_owned())
        );
        assert_eq!(
            parse_include("/odd:name").unwrap(),
            (PathBuf::from("/odd:name"), "/odd:name".to_owned())
        );
    }
}
