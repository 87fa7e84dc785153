//! Asking for a passphrase on every console the kernel writes to (a serial line and the
//! screen alike, as /proc/consoles lists them): the first answer wins. Echo is off, and
//! the line is edited here rather than by the terminal, so Backspace works whether the
//! terminal sends DEL or ^H, and Ctrl-U clears the line.

use super::secret::Secret;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// cryptsetup's limit on a typed passphrase.
pub const MAX_PASSPHRASE: usize = 512;
/// At most this many consoles are asked.
const MAX_CONSOLES: usize = 8;

/// What one typed byte does to the line.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit {
    Continue,
    /// Enter: the line is the answer.
    Done,
    /// Ctrl-C or Ctrl-D on an empty line: no answer from this console.
    Cancel,
}

/// Applies `byte` to `line`: printable bytes (and UTF-8's) are kept, DEL and ^H erase one,
/// ^U erases all, ^W too (a passphrase has no words worth keeping).
pub fn edit(line: &mut Secret, byte: u8) -> Edit {
    match byte {
        b'\r' | b'\n' => Edit::Done,
        0x7f | 0x08 => {
            line.pop();
            Edit::Continue
        }
        0x15 | 0x17 => {
            line.clear();
            Edit::Continue
        }
        0x03 => Edit::Cancel,
        0x04 if line.is_empty() => Edit::Cancel,
        b if b >= 0x20 => {
            line.push(b);
            Edit::Continue
        }
        _ => Edit::Continue,
    }
}

/// Why no passphrase came.
#[derive(Debug)]
pub enum NoAnswer {
    Timeout,
    /// Every console was cancelled or closed.
    Cancelled,
    Failed(String),
}

struct Console {
    file: std::fs::File,
    saved: Option<Termios>,
    line: Secret,
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(self.file.as_fd(), SetArg::TCSANOW, saved);
        }
        let _ = self.file.write_all(b"\n");
    }
}

/// Writes `text` on every console and returns the first line typed on one of them, or
/// why none came within `timeout`.
pub fn ask(text: &str, timeout: Option<Duration>) -> Result<Secret, NoAnswer> {
    crate::init::keymap::load_once();
    let mut consoles = open_consoles()?;
    for console in &mut consoles {
        let _ = console.file.write_all(text.as_bytes());
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut open = vec![true; consoles.len()];
    loop {
        let wait = match deadline {
            Some(end) => match end.checked_duration_since(Instant::now()) {
                Some(left) => {
                    PollTimeout::from(u16::try_from(left.as_millis()).unwrap_or(u16::MAX))
                }
                None => return Err(NoAnswer::Timeout),
            },
            None => PollTimeout::from(u16::MAX),
        };
        let mut fds: Vec<PollFd<'_>> = consoles
            .iter()
            .map(|c| PollFd::new(c.file.as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, wait) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => {
                return Err(NoAnswer::Failed(format!(
                    "cannot wait for the consoles: {e}"
                )))
            }
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        for ((console, ready), still_open) in consoles.iter_mut().zip(ready).zip(open.iter_mut()) {
            if !ready || !*still_open {
                continue;
            }
            let mut byte = [0u8; 1];
            match console.file.read(&mut byte) {
                Ok(1) => match edit(&mut console.line, byte[0]) {
                    Edit::Continue => {}
                    Edit::Done => {
                        return Ok(std::mem::replace(
                            &mut console.line,
                            Secret::with_capacity(0).map_err(NoAnswer::Failed)?,
                        ))
                    }
                    Edit::Cancel => *still_open = false,
                },
                Ok(_) => *still_open = false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => *still_open = false,
            }
        }
        if !open.iter().any(|o| *o) {
            return Err(NoAnswer::Cancelled);
        }
    }
}

/// Writes `text` on every console (what the prompt's answer led to).
pub fn say(text: &str) {
    let listed = std::fs::read_to_string("/proc/consoles").unwrap_or_default();
    let mut paths = console_devices(&listed);
    if paths.is_empty() {
        paths.push("/dev/console".into());
    }
    for path in paths {
        if let Ok(mut file) = open_console(&path, false) {
            let _ = file.write_all(text.as_bytes());
        }
    }
}

/// The consoles of /proc/consoles (or /dev/console), each set to deliver bytes as typed
/// without echo.
fn open_consoles() -> Result<Vec<Console>, NoAnswer> {
    let listed = std::fs::read_to_string("/proc/consoles").unwrap_or_default();
    let mut paths: Vec<String> = console_devices(&listed);
    if paths.is_empty() {
        paths.push("/dev/console".into());
    }
    let mut consoles = Vec::new();
    for path in paths {
        let file = match open_console(&path, true) {
            Ok(file) => file,
            Err(e) => {
                log::warn!("cannot ask for a passphrase on {path}: {e}");
                continue;
            }
        };
        let saved = termios::tcgetattr(file.as_fd()).ok();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            raw.local_flags
                .remove(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG);
            raw.local_flags.remove(LocalFlags::ECHONL);
            for (index, value) in [
                (SpecialCharacterIndices::VMIN, 1),
                (SpecialCharacterIndices::VTIME, 0),
            ] {
                if let Some(cc) = raw.control_chars.get_mut(index as usize) {
                    *cc = value;
                }
            }
            let _ = termios::tcsetattr(file.as_fd(), SetArg::TCSAFLUSH, &raw);
        }
        let line = Secret::with_capacity(MAX_PASSPHRASE).map_err(NoAnswer::Failed)?;
        consoles.push(Console { file, saved, line });
    }
    if consoles.is_empty() {
        return Err(NoAnswer::Failed("no console to ask on".into()));
    }
    Ok(consoles)
}

/// A console, opened without becoming PID 1's controlling terminal (which would carry over
/// to the real init, and keep the rescue shell from taking the terminal for itself).
fn open_console(path: &str, read: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options()
        .read(read)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)
}

/// The device of each console /proc/consoles lists (`ttyS0`, `tty0`), as paths; the
/// screen's `tty0` (whichever VT is in front) asked through it.
pub fn console_devices(proc_consoles: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in proc_consoles
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        let path = format!("/dev/{name}");
        if crate::rootspec::is_kernel_name(name) && !out.contains(&path) {
            out.push(path);
        }
        if out.len() == MAX_CONSOLES {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_editing() {
        let mut line = Secret::with_capacity(16).unwrap();
        let feed =
            |bytes: &[u8], line: &mut Secret| bytes.iter().map(|b| edit(line, *b)).last().unwrap();
        assert_eq!(feed(b"wrong\x15pas", &mut line), Edit::Continue);
        assert_eq!(feed(b"x\x7fs\x08s\r", &mut line), Edit::Done);
        assert_eq!(line.as_slice(), b"pass");
        line.clear();
        assert_eq!(edit(&mut line, 0x04), Edit::Cancel);
        assert_eq!(feed(b"\x1b[A", &mut line), Edit::Continue);
        assert_eq!(line.as_slice(), b"[A");
    }

    #[test]
    fn consoles_listed() {
        let listed = "ttyS0                -W- (EC p a)    4:64\ntty0                 -WU (E  p  )    4:1\nttyS0 again\n";
        assert_eq!(console_devices(listed), ["/dev/ttyS0", "/dev/tty0"]);
    }
}
