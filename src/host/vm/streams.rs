//! `baton run`'s side of the command's streams and the VM's console.
//!
//! Each rides on a unix socket in the run's private directory: baton listens, qemu
//! connects as it starts (`-chardev socket,path=...`), and a thread here copies between
//! the socket and our own stdin, stdout or stderr. This works whatever our streams are (a
//! terminal, a pipe, a file, a socket, closed), where handing qemu a path to reopen them
//! would not, and it keeps them apart and byte for byte. Once qemu has ended, its end of
//! every socket is closed, so the output threads have read everything when they end.
//!
//! The console (the kernel's and the init's messages) is not the command's output: it is
//! kept, its last part shown when the VM ends without the command's status, or copied to
//! stderr as it comes with `--verbose`.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// How much of the console is kept for a failure's report.
const CONSOLE_KEPT: usize = 64 << 10;

/// Where a stream goes on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Our stdin into the VM; `false`: nothing (the VM reads an end of file).
    In(bool),
    Stdout,
    Stderr,
    /// The console: kept, and on stderr too when `true`.
    Console(bool),
}

/// A socket qemu connects to, and the thread serving it.
pub struct Stream {
    pub socket: PathBuf,
    listener: Option<UnixListener>,
    flow: Flow,
    thread: Option<JoinHandle<()>>,
}

impl Stream {
    /// Listens on `dir/name.sock`, before qemu starts.
    pub fn listen(dir: &Path, name: &str, flow: Flow) -> Result<Stream> {
        let socket = dir.join(format!("{name}.sock"));
        let listener = UnixListener::bind(&socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        Ok(Stream {
            socket,
            listener: Some(listener),
            flow,
            thread: None,
        })
    }

    /// Serves the connection qemu makes, on a thread of its own.
    pub fn start(&mut self, console: &Console) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let flow = self.flow;
        let kept = console.kept.clone();
        self.thread = Some(std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            serve(stream, flow, &kept);
        }));
    }

    /// Waits until everything qemu wrote has been copied. Call once qemu has ended: a
    /// thread still waiting for qemu's connection is woken by one of our own.
    pub fn finish(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if matches!(self.flow, Flow::In(_)) {
            // It may be waiting on our stdin for ever; nothing more is owed to the VM.
            return;
        }
        if !thread.is_finished() {
            let _ = UnixStream::connect(&self.socket);
        }
        let _ = thread.join();
    }
}

fn serve(mut stream: UnixStream, flow: Flow, kept: &Mutex<Vec<u8>>) {
    match flow {
        Flow::In(forward) => {
            if forward {
                let mut stdin = std::io::stdin().lock();
                let _ = std::io::copy(&mut stdin, &mut stream);
            }
            // The end of our stdin is the end of the VM's: qemu reads what is left, then
            // the end of file, and tells the guest its host side closed, where a read
            // returns end of file. Only our writing half is shut: a socket closed in both
            // directions is a hang-up to qemu, which drops what it had not read yet. Kept
            // open until qemu closes its end.
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = stream.read(&mut [0u8; 1]);
        }
        Flow::Stdout => copy_out(&mut stream, &mut std::io::stdout()),
        Flow::Stderr => copy_out(&mut stream, &mut std::io::stderr()),
        Flow::Console(verbose) => {
            let mut buf = [0u8; 16 << 10];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                let bytes = buf.get(..n).unwrap_or_default();
                if verbose {
                    let _ = std::io::stderr().write_all(bytes);
                }
                keep(kept, bytes);
            }
        }
    }
}

/// Adds what the console showed to its last part, of at most [`CONSOLE_KEPT`] bytes.
fn keep(kept: &Mutex<Vec<u8>>, bytes: &[u8]) {
    if let Ok(mut kept) = kept.lock() {
        kept.extend_from_slice(bytes);
        let excess = kept.len().saturating_sub(CONSOLE_KEPT);
        kept.drain(..excess);
    }
}

/// Copies until qemu closes; a closed stdout of ours (a pipe's reader gone) keeps reading,
/// so the guest is never blocked writing.
fn copy_out(from: &mut UnixStream, to: &mut dyn Write) {
    let mut buf = [0u8; 64 << 10];
    let mut open = true;
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if open {
            open = to
                .write_all(buf.get(..n).unwrap_or_default())
                .and_then(|()| to.flush())
                .is_ok();
        }
    }
}

/// The console's last part, shared with its thread.
#[derive(Default, Clone)]
pub struct Console {
    kept: Arc<Mutex<Vec<u8>>>,
}

impl Console {
    /// Adds what the console showed (its thread does, as it reads).
    pub fn keep(&self, bytes: &[u8]) {
        keep(&self.kept, bytes);
    }

    /// The last lines the console showed, for a report.
    pub fn tail(&self, lines: usize) -> String {
        let kept = self.kept.lock().map(|k| k.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&kept).replace('\r', "");
        let all: Vec<&str> = text.lines().collect();
        all.get(all.len().saturating_sub(lines)..)
            .unwrap_or_default()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_keeps_its_last_lines() {
        let console = Console::default();
        console
            .kept
            .lock()
            .unwrap()
            .extend_from_slice(b"one\r\ntwo\r\nthree\r\n");
        assert_eq!(console.tail(2), "two\nthree");
        assert_eq!(console.tail(10), "one\ntwo\nthree");
    }

    #[test]
    fn output_reaches_its_stream_and_a_waiting_thread_is_woken() {
        let dir = std::env::temp_dir().join(format!("baton-streams-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let console = Console::default();
        let mut stream = Stream::listen(&dir, "console", Flow::Console(false)).unwrap();
        stream.start(&console);
        let mut qemu = UnixStream::connect(&stream.socket).unwrap();
        qemu.write_all(b"[ 1.0] hello\n").unwrap();
        drop(qemu);
        stream.finish();
        assert_eq!(console.tail(1), "[ 1.0] hello");
        // Nobody ever connected: finish does not hang.
        let mut idle = Stream::listen(&dir, "idle", Flow::Stdout).unwrap();
        idle.start(&console);
        idle.finish();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
