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
//! reads without parsing the console (the line's grammar: `crate::run_protocol`).

use crate::run_protocol::{Outcome, STATUS_PORT};
use std::ffi::OsString;
use std::time::{Duration, Instant};

/// What the command finds on PATH when the kernel gave none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long the command's leftovers get to end once killed.
const REAP_LEFTOVERS: Duration = Duration::from_secs(2);

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
    crate::init::emergency::console_line(&line);
    log::info!("{}", line.trim_start_matches("baton: "));
    if let Err(why) = report_to_host(&outcome.status_line()) {
        log::info!("no status port for the host: {why}");
    }
    crate::init::emergency::stop(crate::cmdline::Action::Poweroff)
}

/// Starts the command and waits for it, for at most `timeout` seconds; then ends whatever
/// it left running.
fn run(command: &[OsString], timeout: Option<u32>, env: &[OsString]) -> Outcome {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let child = match crate::init::emergency::spawn_on_console(command, env, true) {
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
    crate::init::emergency::reap_children();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_added_only_when_missing() {
        let env = environment(&["HOME=/".into(), "TERM=linux".into()]);
        assert!(env.iter().any(|e| e == DEFAULT_PATH));
        let env = environment(&["PATH=/bin".into()]);
        assert_eq!(env, [OsString::from("PATH=/bin")]);
    }
}
