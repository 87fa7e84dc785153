//! The host tool's command line as clap sees it (the words of each `--help` are the doc
//! comments here), and its translation into the options each command runs with. Pure: no
//! I/O, so tests parse whole command lines.

pub use super::run_args::RunArgs;
use crate::host::check::command::CheckOptions;
use crate::host::image::build::{
    parse_include, BuildOptions, FirmwareSource, ModuleCompression, Storage,
};
use crate::host::image::compress::{parse_size, Compression, Limits};
use crate::host::image::microcode::Microcode;
use crate::host::keymap;
use crate::host::update::{Kernels, UpdateOptions};
use crate::host::vm::RunOptions;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

/// Build and inspect initramfs images whose /init is baton, update the images of the
/// installed kernels, check that an image can bring up a system's root, and run a command
/// in a VM.
#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    subcommand_required = true,
    after_help = "Each command says more with --help: baton build --help, baton inspect --help, \
baton update --help, baton check --help, baton timeline --help, baton run --help."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    Build(BuildArgs),
    Inspect(InspectArgs),
    Update(UpdateArgs),
    Check(CheckArgs),
    Timeline(TimelineArgs),
    Run(RunArgs),
}

/// Write an initramfs image.
///
/// The image holds the static baton init as /init, the skeleton of directories and device
/// nodes, the modules named with --module and everything they need (from a
/// /lib/modules/KVER-style --modules-dir), and the --include'd files.
///
/// Firmware: each module's firmware= files are looked up in --firmware-dir (default:
/// lib/firmware beside the modules directory, X/lib/firmware for X/lib/modules/KVER, if it
/// exists) as the kernel's loader searches it (updates/KVER, updates, KVER, the top; .zst and
/// .xz where the kernel reads them) and stored at lib/firmware/NAME; links resolve inside the
/// directory's system root. A file missing for a module named or detected is a warning. CPU
/// microcode from the same directory's intel-ucode/ and amd-ucode/ goes first, in an
/// uncompressed early archive the kernel reads at boot.
///
/// SOURCE_DATE_EPOCH sets every timestamp (default 0): same inputs, same bytes.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The image to write.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// A /lib/modules/KVER-style directory to take modules from.
    #[arg(long, value_name = "DIR")]
    pub modules_dir: Option<PathBuf>,
    /// A module to carry and load at boot, with everything it needs (repeatable; commas
    /// separate several).
    #[arg(short, long = "module", value_name = "NAME", value_delimiter = ',')]
    pub modules: Vec<String>,
    /// Carry the disk-controller and root-filesystem drivers of VMs and PCs, each loaded at
    /// boot only for the hardware present and the root's filesystem (=all: also RAID, SAS
    /// and Fibre Channel HBAs).
    #[arg(
        long,
        value_name = "SET",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "common",
        value_parser = ["common", "all"],
        overrides_with = "host"
    )]
    pub storage: Option<String>,
    /// Carry only what this running system's root needs: its filesystem and the drivers of
    /// its disk (from /proc/self/mountinfo and sysfs); where that cannot be seen, warn and
    /// build as --storage.
    #[arg(long, overrides_with = "storage")]
    pub host: bool,
    /// How module files are stored in the image.
    #[arg(long, value_enum, value_name = "HOW", default_value = "auto")]
    pub module_compression: ModuleCompressionArg,
    /// A file, link or tree of this machine to copy into the image at DEST (default: the
    /// same path); repeatable.
    #[arg(long = "include", value_name = "SRC[:DEST]", value_parser = include)]
    pub includes: Vec<(PathBuf, String)>,
    /// A static shell (busybox) for the rescue shell.
    #[arg(long, value_name = "PATH")]
    pub shell: Option<PathBuf>,
    /// The image's compression: auto is lz4 when the kernel's config says it unpacks lz4
    /// and it is 5.14 or later, gzip otherwise.
    #[arg(
        long,
        value_name = "HOW",
        default_value = "auto",
        value_parser = ["auto", "gzip", "zstd", "xz", "lz4", "none"]
    )]
    pub compress: String,
    /// Another /init: a static program or a #! script (baton stays in the image for its
    /// switch_root and run-init).
    #[arg(long, value_name = "PATH")]
    pub init: Option<PathBuf>,
    /// Where firmware and microcode come from, or none.
    #[arg(long, value_name = "DIR|none", value_parser = firmware_dir)]
    pub firmware_dir: Option<FirmwareSource>,
    /// Which CPU microcode the early archive carries: all (the default), host (this
    /// machine's CPUs only; the default with --host) or none.
    #[arg(long, value_name = "WHICH", value_parser = ["all", "host", "none"])]
    pub microcode: Option<String>,
    /// The console keymap loaded before a passphrase prompt or the rescue shell: a name
    /// loadkeys knows (de, fr-latin1), a keymap file, or none. Default: this system's
    /// (/etc/vconsole.conf, console-setup) with --host, else none (the US layout).
    #[arg(long, value_name = "NAME|PATH|none", value_parser = keymap)]
    pub keymap: Option<String>,
    /// The root's filesystem type (ext4, xfs, btrfs...), when known: with a CPU to spare,
    /// the init loads its driver beside the disk drivers instead of after the disk is found.
    /// Only a hint: the root is mounted as whatever it holds. Default: this system's with
    /// --host, else none (`baton update` gives its system's).
    #[arg(long, value_name = "TYPE", value_parser = fs_type)]
    pub root_fs: Option<String>,
    /// A driver on the root's path: its disk's, its controller's, its stack's (repeatable;
    /// commas separate several). The init loads these first and looks for the root before
    /// it reads the rest of the hardware. Only a hint: a root not there then is searched for
    /// with every driver the image has. `baton update` gives its running system's.
    #[arg(long = "root-driver", value_name = "MODULE", value_delimiter = ',', value_parser = module_name)]
    pub root_drivers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModuleCompressionArg {
    /// As the kernel ships them (.ko.xz, .ko.zst, .ko.gz), for it to decompress at load time
    /// (Linux 5.17+ with MODULE_DECOMPRESS)
    Keep,
    /// Every module plain
    Decompress,
    /// A --storage image keeps them where the kernel can decompress them; otherwise, unless
    /// --compress names a compression, it packs the modules off the root's known path with
    /// lz4 (.ko.lz4), unpacked by the init when one loads, and the image needs no
    /// compression of its own. Other images: plain
    Auto,
}

/// List every entry of an image (cpio, plain or gzip/zstd/xz/lz4, concatenated).
///
/// Whatever the image's headers claim, reading it stops with an error past --max-unpacked
/// bytes of archives or when a decompressor asks for more than --max-decoder-memory (for a
/// zstd window or an xz dictionary). SIZE is bytes, or with a K, M or G suffix.
#[derive(Debug, Args)]
pub struct InspectArgs {
    pub image: PathBuf,
    /// The most unpacked data read.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = size)]
    pub max_unpacked: u64,
    /// The most memory a decompressor may ask for.
    #[arg(long, value_name = "SIZE", default_value = "128M", value_parser = size)]
    pub max_decoder_memory: u64,
}

/// Write /boot/initrd.img-KVER for the installed kernels.
///
/// For every installed kernel (-k all, the default) or one, as /etc/baton/baton.conf and
/// /etc/baton/conf.d/*.conf say. Each image is written to a temporary name, checked as
/// `baton check` does, and renamed: a failed build, or an image that could not bring up the
/// system's root, leaves the old image, says why (one line per layer) and exits 1.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The kernel release to write the image of, or all.
    #[arg(short = 'k', long, value_name = "KVER|all", value_parser = kernels)]
    pub kernel: Option<Kernels>,
    /// Update the system installed in DIR instead of this one (firmware and microcode from
    /// its lib/firmware).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Write the one kernel's image (-k KVER) to OUT instead.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

/// Say whether an image can bring up the root of this system.
///
/// IMAGE defaults to the one update would write for -k KVER (by default the newest
/// installed kernel). The root is this system's (from /proc/self/mountinfo and sysfs) or
/// that of the system in DIR (--root: its etc/fstab, etc/crypttab, etc/mdadm/mdadm.conf).
/// One line per layer: the filesystem, each layer between it and the disks (dm-crypt, LVM,
/// MD, network, multi-device), each disk's drivers, with what to do about each that fails.
/// Exit 0 when all pass.
#[derive(Debug, Args)]
pub struct CheckArgs {
    pub image: Option<PathBuf>,
    /// Check the system installed in DIR.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// The kernel whose image is checked.
    #[arg(short = 'k', long, value_name = "KVER", value_parser = kernel_release)]
    pub kernel: Option<String>,
}

/// When each step of a boot began and how long it took.
///
/// Each module's load is shown on its thread. Read from the file the init leaves in
/// /run/baton/timeline (the default), or from a console log or dmesg output with baton's
/// lines. Prints a table; --svg also draws it.
#[derive(Debug, Args)]
pub struct TimelineArgs {
    #[arg(value_name = "FILE|LOG", default_value = crate::timeline::PATH)]
    pub input: PathBuf,
    /// Also draw the timeline into OUT.
    #[arg(long, value_name = "OUT")]
    pub svg: Option<PathBuf>,
}

/// A command line, ready to run.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Build(BuildOptions),
    Inspect { image: PathBuf, limits: Limits },
    Update(UpdateOptions),
    Check(CheckOptions),
    Timeline(crate::host::timeline::command::Options),
    Run(RunOptions),
}

/// Parses arguments (without the program name). `mtime` is passed in so that tests need not
/// touch the environment. Help and version requests come back as clap's errors of those
/// kinds, to be printed as they are.
pub fn parse<I, T>(args: I, mtime: u32) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = std::iter::once(OsString::from("baton")).chain(args.into_iter().map(Into::into));
    let cli = Cli::try_parse_from(args)?;
    Ok(match cli.command {
        Sub::Build(b) => Command::Build(b.options(mtime)),
        Sub::Inspect(i) => Command::Inspect {
            image: i.image,
            limits: Limits {
                max_unpacked: i.max_unpacked,
                max_decoder_memory: i.max_decoder_memory,
            },
        },
        Sub::Update(u) => Command::Update(UpdateOptions {
            kernels: u.kernel.unwrap_or(Kernels::All),
            root: u.root,
            output: u.output,
            mtime,
        }),
        Sub::Check(c) => Command::Check(CheckOptions {
            root: c.root,
            kernel: c.kernel,
            image: c.image,
        }),
        Sub::Timeline(t) => Command::Timeline(crate::host::timeline::command::Options {
            input: t.input,
            svg: t.svg,
        }),
        Sub::Run(r) => Command::Run(r.options().map_err(|e| {
            <Cli as clap::CommandFactory>::command()
                .error(clap::error::ErrorKind::ValueValidation, e)
        })?),
    })
}

impl BuildArgs {
    fn options(self, mtime: u32) -> BuildOptions {
        let mut opts = BuildOptions::new(self.output, mtime);
        opts.modules_dir = self.modules_dir;
        opts.modules = self.modules.into_iter().filter(|m| !m.is_empty()).collect();
        opts.storage = match (self.host, self.storage.as_deref()) {
            (true, _) => Storage::Host,
            (false, Some("all")) => Storage::All,
            (false, Some(_)) => Storage::Common,
            (false, None) => Storage::None,
        };
        opts.module_compression = match self.module_compression {
            ModuleCompressionArg::Keep => ModuleCompression::Keep,
            ModuleCompressionArg::Decompress => ModuleCompression::Decompress,
            ModuleCompressionArg::Auto => ModuleCompression::Auto,
        };
        opts.includes = self.includes;
        opts.shell = self.shell;
        // The value parser allowed only the names parse_choice knows.
        opts.compression = Compression::parse_choice(&self.compress).unwrap_or(None);
        opts.init = self.init;
        if let Some(source) = self.firmware_dir {
            opts.firmware_dir = source;
        }
        opts.microcode = self
            .microcode
            .as_deref()
            .and_then(|m| Microcode::parse(m).ok());
        opts.keymap = match (self.keymap, self.host) {
            (Some(none), _) if none == "none" => keymap::Choice::None,
            (Some(given), _) => keymap::Choice::Given(given),
            (None, true) => keymap::Choice::System(PathBuf::from("/")),
            (None, false) => keymap::Choice::None,
        };
        opts.root_fs = self.root_fs;
        opts.root_drivers = self.root_drivers;
        opts
    }
}

fn include(spec: &str) -> Result<(PathBuf, String), String> {
    parse_include(spec).map_err(|e| format!("{e:#}"))
}

fn fs_type(value: &str) -> Result<String, String> {
    if crate::host::detect::is_fs_type(value) {
        Ok(value.to_owned())
    } else {
        Err("expected a filesystem type, as in /proc/filesystems (ext4, xfs, btrfs)".to_owned())
    }
}

fn module_name(value: &str) -> Result<String, String> {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        Ok(crate::modules::modinfo::normalize(value))
    } else {
        Err("expected a module's name (virtio_blk, nvme, dm-mod)".to_owned())
    }
}

fn keymap(value: &str) -> Result<String, String> {
    match value {
        "" => Err("expected a keymap name, a file or none".to_owned()),
        given => Ok(given.to_owned()),
    }
}

fn size(value: &str) -> Result<u64, String> {
    parse_size(value).map_err(|e| format!("{e:#}"))
}

fn firmware_dir(value: &str) -> Result<FirmwareSource, String> {
    match value {
        "" => Err("expected a directory or none".to_owned()),
        "none" => Ok(FirmwareSource::None),
        dir => Ok(FirmwareSource::Dir(PathBuf::from(dir))),
    }
}

fn kernels(value: &str) -> Result<Kernels, String> {
    match value {
        "all" => Ok(Kernels::All),
        kver => kernel_release(kver)
            .map(Kernels::One)
            .map_err(|_| "expected a kernel release or all".to_owned()),
    }
}

fn kernel_release(value: &str) -> Result<String, String> {
    if value.is_empty() || value.contains('/') {
        return Err("expected a kernel release".to_owned());
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    /// Words as a shell splits them, so that a test reads as a person types it.
    fn parse_words(s: &str, mtime: u32) -> Result<Command, clap::Error> {
        parse(crate::host::words::split(s).unwrap(), mtime)
    }

    fn ok(s: &str) -> Command {
        parse_words(s, 0).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn build(s: &str) -> BuildOptions {
        match ok(s) {
            Command::Build(o) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn update_options() {
        assert_eq!(
            parse_words("update", 3).unwrap(),
            Command::Update(UpdateOptions {
                kernels: Kernels::All,
                root: PathBuf::from("/"),
                output: None,
                mtime: 3
            })
        );
        let Command::Update(o) = ok("update -k 6.1.0-57-amd64 --root=/mnt") else {
            panic!()
        };
        assert_eq!(o.kernels, Kernels::One("6.1.0-57-amd64".into()));
        assert_eq!(o.root, PathBuf::from("/mnt"));
        let Command::Update(o) = ok("update -k 6.1 -o /tmp/stage/initrd") else {
            panic!()
        };
        assert_eq!(o.output, Some(PathBuf::from("/tmp/stage/initrd")));
        let Command::Update(o) = ok("update -k all") else {
            panic!()
        };
        assert_eq!(o.kernels, Kernels::All);
        let err = parse_words("update -k ../x", 0).unwrap_err().to_string();
        assert!(err.contains("expected a kernel release or all"), "{err}");
        assert!(parse_words("update --force", 0).is_err());
    }

    #[test]
    fn root_fs_hint() {
        assert_eq!(
            build("build -o x --storage --root-fs xfs")
                .root_fs
                .as_deref(),
            Some("xfs")
        );
        assert_eq!(build("build -o x --storage").root_fs, None);
        let err = parse_words("build -o x --root-fs ext4/../x", 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a filesystem type"), "{err}");
    }

    #[test]
    fn root_driver_hints() {
        assert_eq!(
            build("build -o x --storage --root-driver virtio-blk --root-driver virtio_pci,dm_mod")
                .root_drivers,
            ["virtio_blk", "virtio_pci", "dm_mod"]
        );
        assert!(build("build -o x --storage").root_drivers.is_empty());
        let err = parse_words("build -o x --root-driver ../x", 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a module's name"), "{err}");
    }

    #[test]
    fn build_options() {
        let o = build("build -o out.img --modules-dir /m --module ext4 -m virtio-blk,virtio_pci --include a:/etc/a --include /etc/b --compress=zstd --shell /bin/busybox");
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
        assert_eq!(o.firmware_dir, FirmwareSource::BesideModules);
        assert_eq!(o.microcode, None);
        assert_eq!(o.storage, Storage::None);
        assert_eq!(o.module_compression, ModuleCompression::Auto);
        let Command::Build(o) = parse_words("build -o x", 7).unwrap() else {
            panic!()
        };
        assert_eq!((o.mtime, o.compression), (7, None));
    }

    #[test]
    fn storage_sets_the_last_one_wins() {
        assert_eq!(build("build -o x --storage").storage, Storage::Common);
        assert_eq!(build("build -o x --storage=all").storage, Storage::All);
        assert_eq!(
            build("build -o x --storage=common").storage,
            Storage::Common
        );
        assert_eq!(build("build -o x --host").storage, Storage::Host);
        assert_eq!(build("build -o x --storage --host").storage, Storage::Host);
        assert_eq!(
            build("build -o x --host --storage=all").storage,
            Storage::All
        );
        assert!(parse_words("build -o x --storage=some", 0).is_err());
        // The set is given with `=`: a word after --storage is not its value.
        assert!(parse_words("build -o x --storage all", 0).is_err());
        assert_eq!(
            build("build -o x --module-compression keep").module_compression,
            ModuleCompression::Keep
        );
        assert!(parse_words("build -o x --module-compression maybe", 0).is_err());
    }

    #[test]
    fn firmware_and_microcode_options() {
        let o = build("build -o x --firmware-dir /srv/fw --microcode host");
        assert_eq!(
            o.firmware_dir,
            FirmwareSource::Dir(PathBuf::from("/srv/fw"))
        );
        assert_eq!(o.microcode, Some(Microcode::Host));
        use crate::host::keymap::Choice;
        assert_eq!(build("build -o x").keymap, Choice::None);
        assert_eq!(
            build("build -o x --host").keymap,
            Choice::System(PathBuf::from("/"))
        );
        assert_eq!(
            build("build -o x --host --keymap none").keymap,
            Choice::None
        );
        assert_eq!(
            build("build -o x --keymap fr-latin1").keymap,
            Choice::Given("fr-latin1".into())
        );
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
            assert!(parse_words(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        for bad in [
            "",
            "build",
            "build -o",
            "build -o x --compress bzip2",
            "build -o x --frobnicate",
            "build -o x --include=",
            "inspect",
            "explode",
            "check -k a/b",
            "check a b",
            "timeline a b",
            "timeline --svg",
            "timeline --frob",
        ] {
            let err = parse_words(bad, 0).unwrap_err();
            assert!(
                !matches!(
                    err.kind(),
                    ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
                ),
                "{bad}"
            );
        }
        for help in ["--help", "-h", "help", "build --help", "help run"] {
            assert_eq!(
                parse_words(help, 0).unwrap_err().kind(),
                ErrorKind::DisplayHelp
            );
        }
        for version in ["--version", "-V"] {
            let err = parse_words(version, 0).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::DisplayVersion);
            assert_eq!(
                err.render().to_string(),
                format!("baton {}\n", env!("CARGO_PKG_VERSION"))
            );
        }
    }

    #[test]
    fn inspect_options() {
        assert_eq!(
            ok("inspect img"),
            Command::Inspect {
                image: PathBuf::from("img"),
                limits: Limits::DEFAULT
            }
        );
        assert_eq!(
            ok("inspect --max-unpacked 64M img --max-decoder-memory=8388608"),
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
            assert!(parse_words(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn check_timeline_and_run_options() {
        assert_eq!(
            ok("check --root /mnt -k 6.1 img"),
            Command::Check(CheckOptions {
                root: PathBuf::from("/mnt"),
                kernel: Some("6.1".into()),
                image: Some(PathBuf::from("img")),
            })
        );
        let Command::Timeline(t) = ok("timeline boot.log --svg out.svg") else {
            panic!()
        };
        assert_eq!(t.input, PathBuf::from("boot.log"));
        assert_eq!(t.svg, Some(PathBuf::from("out.svg")));
        let Command::Timeline(t) = ok("timeline") else {
            panic!()
        };
        assert_eq!(t.input, PathBuf::from("/run/baton/timeline"));
        let Command::Run(r) = ok("run --kernel k --root / --share=9p --timeout 5 -- sh -c 'x y'")
        else {
            panic!()
        };
        assert_eq!(
            (r.kernel, r.root, r.memory_mib, r.cpus),
            (Some(PathBuf::from("k")), PathBuf::from("/"), 512, 0)
        );
        assert_eq!(
            (r.share, r.timeout_secs),
            (Some(crate::transport::Transport::NineP), Some(5))
        );
        assert_eq!(r.command, ["sh", "-c", "x y"]);
        // The command's own options are its own.
        let Command::Run(r) = ok("run --kernel k --root / -- ls --rw -l") else {
            panic!()
        };
        assert!(!r.rw);
        assert_eq!(r.command, ["ls", "--rw", "-l"]);
        for bad in [
            "run --kernel k --root / true",
            "run --memory 1X -- true",
            "run --memory 16M -- true",
            "run --cwd rel -- true",
            "run --rwdir rel=/x -- true",
            "run --append a=\\\"open -- true",
            "run --exec x -- true",
            "run --kernel k --root / --memory 0 -- true",
            "run --kernel k --root / --share nfs -- true",
        ] {
            assert!(parse_words(bad, 0).is_err(), "{bad}");
        }
        let err = parse_words("run --kernel k --root / --share nfs", 0).unwrap_err();
        assert!(
            err.to_string().contains("[possible values: 9p, virtiofs]"),
            "{err}"
        );
    }

    #[test]
    fn include_specs() {
        assert_eq!(
            include("/a/b:/c").unwrap(),
            (PathBuf::from("/a/b"), "/c".to_owned())
        );
        assert_eq!(
            include("x:y:/z").unwrap(),
            (PathBuf::from("x:y"), "/z".to_owned())
        );
        assert_eq!(
            include("/odd:name").unwrap(),
            (PathBuf::from("/odd:name"), "/odd:name".to_owned())
        );
    }
}
