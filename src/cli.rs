//! The host tool's command line: parsed into a [`Command`] by a pure function, then run.

use crate::image::build::{build, mtime_from_env, BuildOptions, ModuleCompression, Storage};
use crate::image::compress::Compression;
use crate::image::inspect::{format_listing, read_image};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: baton build -o OUT [--modules-dir DIR] [--module NAME]... [--storage[=all]]
                   [--module-compression keep|decompress|auto] [--include SRC[:DEST]]...
                   [--shell PATH] [--compress gzip|zstd|xz|lz4|none] [--init PATH]
       baton inspect IMAGE
       baton --version

build    write an initramfs image: the static baton init as /init, the skeleton of
         directories and device nodes, the modules named with --module and everything they
         need (from a /lib/modules/KVER-style --modules-dir), and the --include'd files.
         --storage adds the disk-controller and root-filesystem drivers of VMs and PCs
         (--storage=all: also RAID, SAS and Fibre Channel HBAs), each loaded at boot only
         for the hardware present and the root's filesystem.
         SOURCE_DATE_EPOCH sets every timestamp (default 0): same inputs, same bytes.
inspect  list every entry of an image (cpio, plain or gzip/zstd/xz/lz4, concatenated).
";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Build(BuildOptions),
    Inspect(PathBuf),
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
        "inspect" => {
            let image = args.next().context("inspect needs an IMAGE")?;
            if let Some(extra) = args.next() {
                bail!("unexpected argument {extra:?}");
            }
            Ok(Command::Inspect(PathBuf::from(image)))
        }
        "build" => parse_build(&mut args, mtime).map(Command::Build),
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn parse_build(args: &mut std::slice::Iter<'_, String>, mtime: u32) -> Result<BuildOptions> {
    let mut opts = BuildOptions {
        output: PathBuf::new(),
        modules_dir: None,
        modules: Vec::new(),
        storage: Storage::None,
        module_compression: ModuleCompression::Auto,
        includes: Vec::new(),
        shell: None,
        compression: Compression::Gzip,
        init: None,
        mtime,
    };
    let mut output = None;
    while let Some(arg) = args.next() {
        // Accept both `--opt value` and `--opt=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => args
                    .next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value")),
            }
        };
        match flag {
            "-o" | "--output" => output = Some(PathBuf::from(value()?)),
            "--modules-dir" => opts.modules_dir = Some(PathBuf::from(value()?)),
            "--module" | "-m" => {
                for name in value()?.split(',').filter(|s| !s.is_empty()) {
                    opts.modules.push(name.to_owned());
                }
            }
            "--storage" => {
                opts.storage = match inline.as_deref() {
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
            "--compress" => opts.compression = Compression::parse(&value()?)?,
            "--init" => opts.init = Some(PathBuf::from(value()?)),
            _ => bail!("unknown option {arg:?}\n{USAGE}"),
        }
    }
    opts.output = output.context("build needs -o OUT")?;
    Ok(opts)
}

/// `SRC:DEST`, or `SRC` alone to keep the same path. Split at the last colon, since the
/// destination is an image path the user chose and source paths may contain colons.
fn parse_include(spec: &str) -> Result<(PathBuf, String)> {
    let (src, dest) = match spec.rsplit_once(':') {
        Some((src, dest)) if !src.is_empty() && dest.starts_with('/') => (src, dest),
        _ => (spec, spec),
    };
    if src.is_empty() || dest.is_empty() {
        bail!("--include {spec:?}: expected SRC[:DEST]");
    }
    Ok((PathBuf::from(src), dest.to_owned()))
}

pub fn run(args: &[String]) -> Result<()> {
    match parse(args, mtime_from_env()?)? {
        Command::Help => print!("{USAGE}"),
        Command::Version => println!("baton {}", env!("CARGO_PKG_VERSION")),
        Command::Inspect(path) => {
            let data = std::fs::read(&path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            let listings = read_image(&data)
                .with_context(|| format!("failed to read image {}", path.display()))?;
            let mut last_segment = None;
            for l in &listings {
                if last_segment != Some(l.segment) {
                    println!("# archive {} ({})", l.segment, l.compression.name());
                    last_segment = Some(l.segment);
                }
                println!("{}", format_listing(l));
            }
        }
        Command::Build(opts) => {
            let report = build(&opts)?;
            eprintln!(
                "baton: wrote {} ({} bytes, {} entries, {}; {} modules{})",
                opts.output.display(),
                report.bytes,
                report.entries,
                opts.compression.name(),
                report.modules.len(),
                if report.modules.is_empty() {
                    String::new()
                } else {
                    format!(": {}", report.modules.join(" "))
                }
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
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
        assert_eq!(o.compression, Compression::Zstd);
        assert_eq!(o.mtime, 7);
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
