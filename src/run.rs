//! `baton.run`: run one command in the new root instead of its init, then say how it ended
//! and power off. This is what a CI job booting a kernel wants from a throwaway VM: the
//! command's output on the console, and its exit status back on the host.
//!
//! The command is the words after `--` on the kernel command line, or, when there are
//! none, the image's /etc/baton/run (its arguments separated by NUL bytes: `baton run`
//! writes it, since the command line cannot carry a double quote or a newline). It runs as
//! PID 1's child, in a session of its own on the console's terminal, from `/`, with the
//! kernel's environment and a default PATH. PID 1 reaps whatever it leaves behind.
//!
//! How it ended goes to three places: a line on the console, the kernel log, and the
//! virtio serial port named `baton.status` when the VM has one (qemu: `-device
//! virtio-serial -device virtserialport,name=baton.status,chardev=...`), which the host
//! reads without parsing the console. The port's line is one of `exit N`, `signal N`,
//! `timeout N` (the limit in seconds) and `notrun ERRNO`; [`parse_status`] reads it back
//! and [`exit_code`] turns it into a process's exit status.

use std::ffi::OsString;
use std::time::{Duration, Instant};

/// The command in the image, written by `baton run`, relative to the initramfs's root.
pub const COMMAND_FILE: &str = "etc/baton/run";
/// The virtio serial port the status goes to.
pub const STATUS_PORT: &str = "baton.status";
/// A bound on the command's arguments from the file.
const MAX_ARGS: usize = 4096;
/// A bound on the command file.
pub const MAX_COMMAND_FILE: u64 = 1 << 20;
/// What the command finds on PATH when the kernel gave none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long the command's leftovers get to end once killed.
const REAP_LEFTOVERS: Duration = Duration::from_secs(2);

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
    /// It ran past the limit (in seconds) and was killed.
    TimedOut(u32),
    /// It could not be started: the errno of the exec.
    NotRun(i32),
}

impl Outcome {
    /// The status port's line.
    pub fn status_line(&self) -> String {
        match self {
            Outcome::Exited(n) => format!("exit {n}"),
            Outcome::Signaled(n) => format!("signal {n}"),
            Outcome::TimedOut(secs) => format!("timeout {secs}"),
            Outcome::NotRun(errno) => format!("notrun {errno}"),
        }
    }

    /// The console's line, naming the command.
    pub fn describe(&self, command: &str) -> String {
        match self {
            Outcome::Exited(n) => format!("baton: {command} exited with status {n}"),
            Outcome::Signaled(n) => format!(
                "baton: {command} was killed by signal {n} ({})",
                nix::sys::signal::Signal::try_from(*n).map_or("unknown", |s| s.as_str())
            ),
            Outcome::TimedOut(secs) => {
                format!("baton: {command} was still running after {secs} s and was killed")
            }
            Outcome::NotRun(errno) => format!(
                "baton: {command} could not be run: {}",
                nix::errno::Errno::from_raw(*errno).desc()
            ),
        }
    }
}

/// Reads a status line back (the host's side).
pub fn parse_status(line: &str) -> Option<Outcome> {
    let (kind, number) = line.trim().split_once(' ')?;
    match kind {
        "exit" => number.parse().ok().map(Outcome::Exited),
        "signal" => number.parse().ok().map(Outcome::Signaled),
        "timeout" => number.parse().ok().map(Outcome::TimedOut),
        "notrun" => number.parse().ok().map(Outcome::NotRun),
        _ => None,
    }
}

/// The exit status a process reporting `outcome` should end with, as shells and
/// timeout(1) do it: the command's own status; 128 + N for signal N; 124 for a timeout; 127
/// for a command not found and 126 for one that could not be run.
pub fn exit_code(outcome: &Outcome) -> u8 {
    let code = match outcome {
        Outcome::Exited(n) => *n,
        Outcome::Signaled(n) => 128 + n,
        Outcome::TimedOut(_) => 124,
        Outcome::NotRun(errno) if *errno == libc::ENOENT => 127,
        Outcome::NotRun(_) => 126,
    };
    u8::try_from(code & 0xff).unwrap_or(1)
}

/// The command file's arguments: NUL-separated, the last NUL optional. Empty arguments in
/// the middle are kept (`sh -c ''`).
pub fn parse_command_file(bytes: &[u8]) -> Vec<OsString> {
    use std::os::unix::ffi::OsStringExt;
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .take(MAX_ARGS)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}

/// The command file for `args` (the inverse of [`parse_command_file`]). Arguments cannot
/// hold a NUL byte, as no exec can take one.
pub fn command_file(args: &[OsString]) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for arg in args {
        out.extend_from_slice(arg.as_bytes());
        out.push(0);
    }
    out
}

/// The environment for the command: the kernel's, with a PATH if it gave none.
pub fn environment(kernel_env: &[OsString]) -> Vec<OsString> {
    use std::os::unix::ffi::OsStrExt;
    let mut env = kernel_env.to_vec();
    if !env.iter().any(|e| e.as_bytes().starts_with(b"PATH=")) {
        env.push(DEFAULT_PATH.into());
    }
    env
}

/// Runs the command, reports how it ended, and powers off. Never returns.
pub fn run_and_power_off(command: &[OsString], timeout: Option<u32>, env: &[OsString]) -> ! {
    let shown = command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    log::info!("running {shown} (baton.run)");
    let outcome = run(command, timeout, &environment(env));
    let line = outcome.describe(&shown);
    crate::emergency::console_line(&line);
    log::info!("{}", line.trim_start_matches("baton: "));
    if let Err(why) = report_to_host(&outcome.status_line()) {
        log::info!("no status port for the host: {why}");
    }
    crate::emergency::stop(crate::cmdline::Action::Poweroff)
}

/// Starts the command and waits for it, for at most `timeout` seconds; then ends whatever
/// it left running.
fn run(command: &[OsString], timeout: Option<u32>, env: &[OsString]) -> Outcome {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let child = match crate::emergency::spawn_on_console(command, env, true) {
        Ok(child) => child,
        Err(errno) => return Outcome::NotRun(errno as i32),
    };
    let deadline = timeout.map(|secs| Instant::now() + Duration::from_secs(u64::from(secs)));
    let outcome = match wait_for(child, deadline) {
        Some(outcome) => outcome,
        None => {
            // Its whole session: setsid made the command a group leader.
            let _ = kill(Pid::from_raw(-child.as_raw()), Signal::SIGKILL);
            let _ = wait_for(child, Some(Instant::now() + REAP_LEFTOVERS));
            Outcome::TimedOut(timeout.unwrap_or(0))
        }
    };
    // Daemons it started would otherwise die mid-write at the power-off.
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    let _ = wait_for(Pid::from_raw(-1), Some(Instant::now() + REAP_LEFTOVERS));
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    crate::emergency::reap_children();
    outcome
}

/// Reaps children until `child` ends (its outcome) or the deadline passes (`None`). With
/// `child` -1, until no child is left.
fn wait_for(child: nix::unistd::Pid, deadline: Option<Instant>) -> Option<Outcome> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    // A bound on the loop: every turn either reaps a child or sleeps a little.
    for _ in 0..u32::MAX {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => {
                return Some(Outcome::Exited(code))
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                return Some(Outcome::Signaled(signal as i32))
            }
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => continue,
            // No child left at all.
            Err(nix::errno::Errno::ECHILD) => return Some(Outcome::Exited(0)),
            Err(_) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        // Children end rarely and the emulated CPU is slow: a short sleep costs the
        // command nothing and PID 1 no CPU.
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Writes `line` to the `baton.status` port.
fn report_to_host(line: &str) -> Result<(), String> {
    use std::io::Write;
    let port = find_port(STATUS_PORT).ok_or("no virtio serial port named baton.status")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&port)
        .map_err(|e| format!("cannot open {port}: {e}"))?;
    file.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| format!("cannot write {port}: {e}"))
}

/// The device node of the virtio serial port called `name`.
fn find_port(name: &str) -> Option<String> {
    let dir = "/sys/class/virtio-ports";
    crate::dirents::read_path(dir, 1024)
        .ok()?
        .iter()
        .filter_map(crate::dirents::Entry::name_str)
        .find(|port| {
            crate::inputs::read_bounded(&format!("{dir}/{port}/name"), 256)
                .is_ok_and(|n| n.strip_suffix(b"\n").unwrap_or(&n) == name.as_bytes())
        })
        .map(|port| format!("/dev/{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_read_back() {
        for outcome in [
            Outcome::Exited(0),
            Outcome::Exited(7),
            Outcome::Signaled(9),
            Outcome::TimedOut(30),
            Outcome::NotRun(libc::ENOENT),
        ] {
            assert_eq!(parse_status(&outcome.status_line()), Some(outcome.clone()));
        }
        assert_eq!(parse_status("exit 3\n"), Some(Outcome::Exited(3)));
        assert_eq!(parse_status("garbage"), None);
        assert_eq!(parse_status("exit x"), None);
    }

    #[test]
    fn exit_codes_as_shells_give_them() {
        assert_eq!(exit_code(&Outcome::Exited(7)), 7);
        assert_eq!(exit_code(&Outcome::Exited(0)), 0);
        assert_eq!(exit_code(&Outcome::Signaled(9)), 137);
        assert_eq!(exit_code(&Outcome::TimedOut(5)), 124);
        assert_eq!(exit_code(&Outcome::NotRun(libc::ENOENT)), 127);
        assert_eq!(exit_code(&Outcome::NotRun(libc::EACCES)), 126);
    }

    #[test]
    fn the_console_line_names_command_and_cause() {
        assert_eq!(
            Outcome::Exited(7).describe("sh -c exit 7"),
            "baton: sh -c exit 7 exited with status 7"
        );
        assert!(Outcome::Signaled(9)
            .describe("x")
            .contains("signal 9 (SIGKILL)"));
        assert!(Outcome::TimedOut(3).describe("x").contains("after 3 s"));
    }

    #[test]
    fn command_files_round_trip() {
        let args: Vec<OsString> = ["sh", "-c", "echo \"hi\"\nexit 7", ""]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(parse_command_file(&command_file(&args)), args);
        assert!(parse_command_file(b"").is_empty());
        assert_eq!(parse_command_file(b"true"), [OsString::from("true")]);
    }

    #[test]
    fn a_path_is_added_only_when_missing() {
        let env = environment(&["HOME=/".into(), "TERM=linux".into()]);
        assert!(env.iter().any(|e| e == DEFAULT_PATH));
        let env = environment(&["PATH=/bin".into()]);
        assert_eq!(env, [OsString::from("PATH=/bin")]);
    }
}
