//! The one failure path of the init: say what failed, then do what the command line asked
//! (`rd.emergency=`): start the rescue shell, reboot, power off or halt. PID 1 must never
//! exit (the kernel would panic and the message would scroll away), so nothing here returns
//! except the shell, after which the boot is tried again.

use std::ffi::CString;
use std::io::Write;
use std::time::Duration;

/// What to do when the boot cannot continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Shell,
    Reboot,
    Poweroff,
    Halt,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "shell" => Some(Action::Shell),
            "reboot" => Some(Action::Reboot),
            "poweroff" => Some(Action::Poweroff),
            "halt" => Some(Action::Halt),
            _ => None,
        }
    }

    /// The action when none was configured: a shell if the image has one, else halt, which
    /// keeps the message on screen (a reboot would scroll it away in a loop).
    pub fn default_for(has_shell: bool) -> Action {
        if has_shell {
            Action::Shell
        } else {
            Action::Halt
        }
    }
}

/// Reports the failure, then carries out `action`. Returns only after a rescue shell exits,
/// so the caller can try the boot again.
pub fn handle(error: &anyhow::Error, action: Action, shell: Option<&str>) {
    let message = format!("{error:#}");
    // The logger writes errors to the console itself whenever the kernel would not
    // (`loglevel=0`, /dev/kmsg unusable), so this line is seen either way.
    log::error!("boot failed: {message}");
    match (action, shell) {
        (Action::Shell, Some(shell)) => {
            console_line("baton: starting the rescue shell; exit it to try booting again");
            run_shell(shell);
        }
        (Action::Shell, None) => {
            console_line("baton: no rescue shell in this image (build with --shell); halting");
            stop(Action::Halt);
        }
        (other, _) => stop(other),
    }
}

fn console_line(line: &str) {
    let mut stderr = std::io::stderr();
    let _ = writeln!(stderr, "{line}");
    let _ = stderr.flush();
}

/// Runs the shell on the console and waits for it, reaping any other children meanwhile.
fn run_shell(shell: &str) {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{execv, fork, setsid, ForkResult};
    let Ok(path) = CString::new(shell) else {
        return;
    };
    // SAFETY: the init is single-threaded, so the child may do anything before exec.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = setsid();
            // Make the console the shell's controlling terminal so job control and ^C work.
            unsafe {
                libc::ioctl(0, libc::TIOCSCTTY, 1);
            }
            let _ = execv(&path, &[path.as_c_str()]);
            console_line(&format!("baton: failed to exec the rescue shell {shell}"));
            // The child must not return into the init's code; _exit skips atexit handlers.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => loop {
            match waitpid(None, None) {
                Ok(WaitStatus::Exited(pid, _)) | Ok(WaitStatus::Signaled(pid, _, _))
                    if pid == child =>
                {
                    return
                }
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
        },
        Err(errno) => console_line(&format!("baton: failed to start the rescue shell: {errno}")),
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
