//! A `log` backend writing to the kernel ring buffer through /dev/kmsg, so `dmesg` on the
//! booted system shows what baton did, with each line's level (Documentation/ABI/testing/
//! dev-kmsg). The device is opened lazily: the image ships a /dev/kmsg node so logging works
//! from the first instruction, and devtmpfs replaces it later with the same device.
//!
//! Errors must reach a human even when the kernel hides them (`loglevel=0`, or `quiet` with
//! a low console level): those are also written to the console directly, but only when the
//! kernel would not print them itself, so nothing appears twice.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

/// Longest message body; the kernel rejects records over about 1 KiB with EINVAL.
const MAX_MESSAGE: usize = 900;
const UNKNOWN: u8 = u8::MAX;

/// The kernel lets each opener of /dev/kmsg write 10 records in 5 s and drops the rest
/// (`printk.devkmsg=ratelimit`, the default, with a per-open limit: devkmsg_open() in
/// kernel/printk/printk.c). The logger opens the device again before every 10th record
/// instead of switching the limit off through `printk_devkmsg`, a setting it would have to
/// read, change and put back: procfs writes PID 1 would pay for on every boot. A user who
/// set `printk.devkmsg=off` gets nothing from baton, as from anyone.
const RECORDS_PER_OPEN: u32 = 10;

pub struct KmsgLogger {
    /// The open device and the records written through it.
    kmsg: Mutex<Option<(File, u32)>>,
    /// The kernel's console_loglevel: records with a level below it reach the console.
    console_level: AtomicU8,
}

static LOGGER: KmsgLogger = KmsgLogger {
    kmsg: Mutex::new(None),
    console_level: AtomicU8::new(UNKNOWN),
};

/// Installs the logger. Safe to call more than once.
pub fn install() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Debug);
}

/// For a child just forked: its own open of the device from the next record on. The one it
/// inherited shares its parent's rate limit (the kernel counts per open file), and the
/// parent may use up what is left of it.
pub fn after_fork() {
    if let Ok(mut guard) = LOGGER.kmsg.lock() {
        *guard = None;
    }
}

/// syslog priorities as /dev/kmsg takes them (`<3>` is KERN_ERR).
fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// The console log level, the first field of /proc/sys/kernel/printk's text.
fn console_level(printk: &str) -> Option<u8> {
    printk.split_whitespace().next()?.parse().ok()
}

/// Whether the kernel itself echoes records of this level to the console; `false` while the
/// console level is unknown (before /proc is mounted). It is read when first needed, for a
/// warning or an error: a boot that has neither never reads it.
pub fn kernel_prints(level: log::Level) -> bool {
    let mut console = LOGGER.console_level.load(Ordering::Relaxed);
    if console == UNKNOWN {
        if let Some(level) = std::fs::read_to_string("/proc/sys/kernel/printk")
            .ok()
            .as_deref()
            .and_then(console_level)
        {
            LOGGER.console_level.store(level, Ordering::Relaxed);
            console = level;
        }
    }
    console != UNKNOWN && priority(level) < console
}

/// Writes one message to the kernel log only, never to the console: for programs that
/// report on stderr themselves (`switch_root`, `run-init`). Returns whether it was logged.
pub fn record(level: log::Level, message: &str) -> bool {
    LOGGER.write_kmsg(priority(level), message)
}

/// Cuts a message to what one kmsg record holds, at a character boundary.
fn truncate(message: &str) -> &str {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.get(..end).unwrap_or_default()
}

impl KmsgLogger {
    fn write_kmsg(&self, prio: u8, message: &str) -> bool {
        let Ok(mut guard) = self.kmsg.lock() else {
            return false;
        };
        // One write is one record: format it whole first. Multi-line messages become one
        // record per line, or the kernel would keep only the first.
        let mut ok = true;
        for line in message.lines() {
            if !matches!(guard.as_ref(), Some((_, written)) if *written < RECORDS_PER_OPEN) {
                *guard = OpenOptions::new()
                    .write(true)
                    .open("/dev/kmsg")
                    .ok()
                    .map(|file| (file, 0));
            }
            let Some((file, written)) = guard.as_mut() else {
                return false;
            };
            let record = format!("<{prio}>baton: {}\n", truncate(line));
            ok &= file.write_all(record.as_bytes()).is_ok();
            *written += 1;
        }
        ok
    }
}

impl log::Log for KmsgLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let prio = priority(record.level());
        let message = record.args().to_string();
        let logged = self.write_kmsg(prio, &message);
        let important = record.level() <= log::Level::Warn;
        if !logged || (important && !kernel_prints(record.level())) {
            let label = match record.level() {
                log::Level::Error => "error: ",
                log::Level::Warn => "warning: ",
                _ => "",
            };
            let _ = writeln!(std::io::stderr(), "baton: {label}{message}");
        }
    }

    fn flush(&self) {}
}

/// The kernel's own log from a point on: a failed mount says why only there ("EXT4-fs
/// (vda): VFS: Can't find ext4 filesystem"), and the user should read it in baton's message.
pub struct Tail {
    kmsg: File,
}

/// Records read at most per [`Tail::lines`]: a bound on a loop over the kernel's output.
const TAIL_MAX_RECORDS: usize = 256;

impl Tail {
    /// Starts at the end of the log: only what is logged from now on is read.
    pub fn start() -> Option<Tail> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::OpenOptionsExt;
        let mut kmsg = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()?;
        kmsg.seek(SeekFrom::End(0)).ok()?;
        Some(Tail { kmsg })
    }

    /// What the kernel said since [`Tail::start`], for the end of an error message:
    /// ` (the kernel said: A / B)` with its last two messages, or nothing.
    pub fn said(tail: Option<Tail>) -> String {
        let said = tail.map(|t| t.lines(2)).unwrap_or_default();
        if said.is_empty() {
            String::new()
        } else {
            format!(" (the kernel said: {})", said.join(" / "))
        }
    }

    /// The last `keep` messages the kernel logged since [`Tail::start`], baton's own left out.
    pub fn lines(mut self, keep: usize) -> Vec<String> {
        use std::io::Read;
        let mut messages = Vec::new();
        let mut buf = vec![0u8; 8192];
        for _ in 0..TAIL_MAX_RECORDS {
            // One read, one record; EPIPE means records were overwritten: read on.
            match self.kmsg.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(message) = buf.get(..n).and_then(record_message) {
                        messages.push(message);
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        let skip = messages.len().saturating_sub(keep);
        messages.split_off(skip)
    }
}

/// The text of one /dev/kmsg record, `PRIO,SEQ,USEC,FLAGS;TEXT\n KEY=VALUE...`, unless it
/// is one of baton's own.
fn record_message(record: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(record);
    let (_, message) = text.split_once(';')?;
    let message = message.lines().next()?.trim();
    (!message.is_empty() && !message.starts_with("baton:")).then(|| message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_char_boundaries() {
        let long = "é".repeat(1000);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_MESSAGE);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate("short"), "short");
    }

    #[test]
    fn kernel_records() {
        assert_eq!(
            record_message(b"3,812,1834222,-;EXT4-fs (vda): VFS: Can't find ext4 filesystem\n SUBSYSTEM=block\n").as_deref(),
            Some("EXT4-fs (vda): VFS: Can't find ext4 filesystem")
        );
        assert_eq!(
            record_message(b"6,813,1834300,-;baton: loaded ext4\n"),
            None
        );
        assert_eq!(record_message(b"no separator"), None);
    }

    #[test]
    fn levels() {
        assert_eq!(priority(log::Level::Error), 3);
        assert_eq!(priority(log::Level::Info), 6);
        assert_eq!(console_level("4\t4\t1\t7\n"), Some(4));
        assert_eq!(console_level("7 4 1 7"), Some(7));
        assert_eq!(console_level(""), None);
    }
}
