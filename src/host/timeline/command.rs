//! `baton timeline [FILE|LOG] [--svg OUT]`: a boot's timeline as a table, and drawn.

use super::{console, draw};
use crate::timeline::Event;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The timeline file, or a console log or dmesg output with baton's lines.
    pub input: PathBuf,
    pub svg: Option<PathBuf>,
}

/// Largest input read: a console log of a whole boot is well under this.
const MAX_INPUT: u64 = 64 << 20;

/// The events of a timeline file, or failing that of the baton lines in a log.
pub fn read(options: &Options) -> Result<Vec<Event>> {
    use std::io::Read;
    let mut data = Vec::new();
    let path = &options.input;
    let file =
        std::fs::File::open(path).with_context(|| format!("failed to read {}", path.display()))?;
    file.take(MAX_INPUT + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("failed to read {}", path.display()))?;
    if data.len() as u64 > MAX_INPUT {
        bail!("{} is larger than {MAX_INPUT} bytes", path.display());
    }
    let text = String::from_utf8_lossy(&data);
    if text.starts_with("# baton timeline") {
        return crate::timeline::parse(&text)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{} is damaged", path.display()));
    }
    let events = console::parse(&text);
    if events.is_empty() {
        bail!(
            "{} is neither a baton timeline nor a log with baton's lines in it",
            path.display()
        );
    }
    Ok(events)
}

/// The table, and the SVG when asked for.
pub fn run(options: &Options) -> Result<String> {
    let events = read(options)?;
    if let Some(out) = &options.svg {
        std::fs::write(out, draw::svg(&events))
            .with_context(|| format!("failed to write {}", out.display()))?;
    }
    Ok(draw::table(&events))
}
