//! What the init reads before it does anything: the kernel command line (after the image's
//! default parameters) and the image's manifest. One place, shared by the boot and by the
//! module helper the kernel calls (see `modprobe`), so both read them the same way.

use crate::bounded::read_bounded;
use crate::cmdline::{self, BootParams};
use crate::manifest::{self, Manifest};
use anyhow::{Context, Result};

/// The longest manifest an image may carry. A `--storage` image's is about 1 MB (every
/// storage module and its aliases); this leaves room while bounding what a corrupt image
/// can make PID 1 read.
const MAX_MANIFEST: u64 = 16 << 20;
/// The kernel's command line is at most 2 KiB on x86 (COMMAND_LINE_SIZE); others allow more.
const MAX_CMDLINE: u64 = 64 << 10;
/// The image's default parameters: a short hand-written file.
const MAX_DEFAULTS: u64 = 64 << 10;

/// The manifest's text, `None` when the image has none (an image of someone else's making:
/// nothing to load). Any other failure to read it is an error.
pub fn manifest_text() -> Result<Option<String>> {
    let path = format!("/{}", manifest::PATH);
    match read_bounded(&path, MAX_MANIFEST) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| anyhow::anyhow!("failed to read {path}: it is not text")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("failed to read {path}")),
    }
}

/// The manifest, parsed; an empty one when the image has none.
pub fn parse_manifest(text: Option<&str>) -> Result<Manifest> {
    let path = format!("/{}", manifest::PATH);
    match text {
        Some(text) => Manifest::parse(text).map_err(|e| {
            anyhow::anyhow!(
                "failed to read {path}: {e}; the image is damaged or was not written by this baton: rebuild it with `baton build`"
            )
        }),
        None => {
            log::warn!("{path} is missing: no modules to load");
            Ok(Manifest::default())
        }
    }
}

/// The manifest, read and parsed.
pub fn read_manifest() -> Result<Manifest> {
    parse_manifest(manifest_text()?.as_deref())
}

/// The kernel command line after the image's defaults. Bytes that are not UTF-8 are
/// replaced rather than refused (see [`cmdline::decode`]).
pub fn read_params() -> Result<BootParams> {
    let bytes =
        read_bounded("/proc/cmdline", MAX_CMDLINE).context("failed to read /proc/cmdline")?;
    let (line, replaced) = cmdline::decode(&bytes);
    let defaults_path = format!("/{}", manifest::DEFAULTS_PATH);
    let defaults = read_bounded(&defaults_path, MAX_DEFAULTS)
        .map(|bytes| cmdline::decode(&bytes).0)
        .unwrap_or_default();
    let mut params =
        cmdline::parse_with_defaults(&cmdline::strip_comments(&defaults), line.trim_end());
    if replaced {
        params.warnings.push(
            "the kernel command line has bytes that are not UTF-8; they read as U+FFFD (and match labels with the same bytes)".to_owned(),
        );
    }
    Ok(params)
}
