//! The one failure path of the init: say what failed, then do what the command line asked
//! (`rd.emergency=`): start the rescue shell, reboot, power off or halt. PID 1 must never
//! exit (the kernel would panic and the message would scroll away), so nothing here returns
//! except the shell, after which the boot is tried again.
//!
//! The shell also serves `rd.break`: the same console, the same controlling terminal, and
//! every child reaped while it runs.

pub use crate::cmdline::Action;
use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// The action when none was configured: a shell if the image has one (and `rd.shell=0` did
/// not forbid it), else halt, which keeps the message on screen (a reboot would scroll it
/// away in a loop).
pub fn default_action(has_shell: bool) -> Action {
    if has_shell {
        Action::Shell
    } else {
        Action::Halt
    }
}

/// Reports the failure, then carries out `action`. Returns only after a rescue shell exits,
/// so the caller can try the boot again.
pub fn handle(error: &anyhow::Error, action: Action, shell: Option<&str>) {
    // The logger writes errors to the console itself whenever the kernel would not
    // (`loglevel=0`, /dev/kmsg unusable), so this line is seen either way.
    log::error!("boot failed: {error:#}");
    match (action, shell) {
        (Action::Shell, Some(shell)) => {
            console_line("baton: starting the rescue shell; exit it to try booting again");
            if let Err(why) = run_shell(shell) {
                log::error!("{why}; halting");
                stop(Action::Halt);
            }
        }
        (Action::Shell, None) => {
            console_line(
                "baton: no rescue shell here (none in the image: build with --shell; rd.shell=0; or the initramfs is already gone); halting",
            );
            stop(Action::Halt);
        }
        (other, _) => stop(other),
    }
}

pub fn console_line(line: &str) {
    let mut stderr = std::io::stderr();
    let _ = writeln!(stderr, "{line}");
    let _ = stderr.flush();
}

/// Runs the shell on the console and waits for it, reaping any other children meanwhile.
/// Fails only when the shell could not be started at all (so the caller does not loop).
pub fn run_shell(shell: &str) -> Result<(), String> {
    use nix::sys::wait::{waitpid, WaitStatus};
    crate::init::keymap::load_once();
    let child = spawn_on_console(&[shell.into()], &crate::init::switch::environment(), false)
        .map_err(|errno| format!("failed to run the rescue shell {shell}: {errno}"))?;
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, _)) | Ok(WaitStatus::Signaled(pid, _, _))
                if pid == child =>
            {
                return Ok(())
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Ok(()),
        }
    }
}

/// Starts `argv` (its first word looked up on the PATH of `env`) in a session of its own,
/// on the console's terminal as its controlling terminal, from `/`. With `raw_output` the
/// terminal passes the program's bytes as they are (no `\n` to `\r\n`): what `baton.run`'s
/// host copies out. Returns the child, or the errno of a failed start (the exec's own,
/// reported back through a pipe), the child then reaped. Safe while module loaders run on
/// other threads: see baton::init::spawn.
pub fn spawn_on_console(
    argv: &[OsString],
    env: &[OsString],
    raw_output: bool,
) -> Result<nix::unistd::Pid, nix::errno::Errno> {
    let program = crate::init::spawn::Prepared::new(argv, env)?;
    let terminal = console_terminal();
    let setup = crate::init::spawn::Setup {
        new_session: true,
        terminal: terminal.as_ref().map(|t| t.as_fd()),
        raw_output,
        ..Default::default()
    };
    crate::init::spawn::spawn(&program, &setup)
}

/// The terminal behind /dev/console (the last name in /sys/class/tty/console/active, which
/// is the one /dev/console writes to), opened read-write; `None` if there is none.
pub fn console_terminal() -> Option<OwnedFd> {
    let active = std::fs::read_to_string("/sys/class/tty/console/active").ok()?;
    let name = active.split_whitespace().last()?;
    if name.contains('/') {
        return None;
    }
    crate::init::spawn::open_terminal(&CString::new(format!("/dev/{name}")).ok()?)
}

/// Collects every child that has ended, without waiting: PID 1 inherits orphans, and the
/// real init should not start with zombies it never made. Bounded, as a loop over what the
/// kernel returns must be.
pub fn reap_children() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    for _ in 0..4096 {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

/// Reboots, powers off or halts. Never returns: if the kernel refuses, sleep for ever.
pub fn stop(action: Action) -> ! {
    use nix::sys::reboot::{reboot, RebootMode};
    nix::unistd::sync();
    let mode = match action {
        Action::Reboot => RebootMode::RB_AUTOBOOT,
        Action::Poweroff => RebootMode::RB_POWER_OFF,
        Action::Halt | Action::Shell => RebootMode::RB_HALT_SYSTEM,
    };
    let _ = reboot(mode);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
