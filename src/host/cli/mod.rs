//! The host tool's command line: parsed by clap into a [`Command`] (`args`), then run here;
//! `docs` makes the man pages and shell completions from the same definitions.

mod args;
pub mod docs;
mod run_args;

pub use args::{parse, Command};

use crate::host::image::build::{build, mtime_from_env, BuildReport};
use crate::host::image::compress::{human_size, read_bounded, Limits};
use crate::host::image::inspect::{format_listing, read_image_with, Listing};
use crate::host::update;
use anyhow::{bail, Context, Result};
use std::io::{self, Write};
use std::path::Path;

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
    let command = match parse(args, mtime_from_env()?) {
        Ok(command) => command,
        Err(err) => return Ok(usage_error(&err)),
    };
    match command {
        Command::Run(opts) => {
            return Ok(crate::host::vm::run(&opts).unwrap_or_else(|err| {
                let _ = writeln!(io::stderr(), "baton: error: {err:#}");
                crate::host::vm::OWN_FAILURE
            }))
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

/// What a command line clap refused, or a request for help or the version, comes to: help
/// and version on stdout (exit 0), anything else on stderr as baton's own error line
/// (exit 1, as every other failure).
fn usage_error(err: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    let text = err.render().to_string();
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            match to_stdout(|out| out.write_all(text.as_bytes())) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(io::stderr(), "baton: error: {e:#}");
                    1
                }
            }
        }
        // `baton` alone: what to type, as an error.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = write!(io::stderr(), "baton: error: no command given\n\n{text}");
            1
        }
        _ => {
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            let _ = write!(io::stderr(), "baton: error: {text}");
            1
        }
    }
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
