//! The command's streams under `baton run`: the host's stdin, stdout and stderr as three
//! virtio serial ports (byte for byte, each apart, no terminal in between), or, for a
//! shell, the first virtio console, a terminal the host's terminal drives.
//!
//! The ports' driver (virtio_console) may still be binding when the command is due, and
//! devtmpfs makes the nodes a moment after: both are waited for, within a bound.

use crate::run_protocol::{STDERR_PORT, STDIN_PORT, STDOUT_PORT};
use anyhow::{bail, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long the ports and the console may take to appear.
const APPEAR: Duration = Duration::from_secs(10);
/// The virtio console the host's terminal is on: the VM's only one.
const TERMINAL: &str = "/dev/hvc0";

/// The three ports, opened for fds 0, 1 and 2.
pub fn ports() -> Result<Vec<OwnedFd>> {
    let deadline = Instant::now() + APPEAR;
    let mut fds = Vec::new();
    for (name, write) in [
        (STDIN_PORT, false),
        (STDOUT_PORT, true),
        (STDERR_PORT, true),
    ] {
        let path = loop {
            match find_port(name) {
                Some(path) if std::path::Path::new(&path).exists() => break path,
                _ if Instant::now() >= deadline => {
                    bail!(
                        "no virtio serial port named {name} after {} s",
                        APPEAR.as_secs()
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let file = std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {path} (the port {name}): {e}"))?;
        fds.push(OwnedFd::from(file));
    }
    Ok(fds)
}

/// The virtio console, sized as the host's terminal (`rows` or `cols` 0: left as is).
pub fn terminal(rows: u16, cols: u16) -> Result<OwnedFd> {
    let deadline = Instant::now() + APPEAR;
    let path = c"/dev/hvc0";
    let tty = loop {
        if let Some(fd) = crate::init::spawn::open_terminal(path) {
            break fd;
        }
        if Instant::now() >= deadline {
            bail!(
                "no virtio console {TERMINAL} after {} s (the image needs virtio_console)",
                APPEAR.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if rows > 0 && cols > 0 {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: an open descriptor and a winsize that outlives the call.
        if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
            log::warn!(
                "cannot set {TERMINAL}'s size: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(tty)
}

/// The device node of the virtio serial port called `name`.
pub fn find_port(name: &str) -> Option<String> {
    let dir = "/sys/class/virtio-ports";
    crate::init::dirents::read_path(dir, 1024)
        .ok()?
        .iter()
        .filter_map(crate::init::dirents::Entry::name_str)
        .find(|port| {
            crate::bounded::read_bounded(&format!("{dir}/{port}/name"), 256)
                .is_ok_and(|n| n.strip_suffix(b"\n").unwrap_or(&n) == name.as_bytes())
        })
        .map(|port| format!("/dev/{port}"))
}
