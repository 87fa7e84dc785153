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

use crate::init::spawn::Identity;
use crate::run_protocol::{Outcome, Spec, Streams, STATUS_PORT};
use crate::transport::Transport;
use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// What the command finds on PATH when the kernel gave none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// A bound on /etc/passwd and /etc/group.
const MAX_USER_FILE: u64 = 4 << 20;
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
pub fn run_and_power_off(run: &Run, env: &[OsString]) -> ! {
    let shown = crate::run_protocol::shown(&run.spec.command);
    log::info!("running {shown} (baton.run)");
    let outcome = match prepare(run, env) {
        Ok(ready) => execute(&ready, run.timeout),
        Err(error) => Outcome::Refused(format!("{error:#}")),
    };
    let line = outcome.describe(&shown);
    crate::init::emergency::console_line(&line);
    log::info!("{}", line.trim_start_matches("baton: "));
    if let Err(why) = report_to_host(&outcome.status_line()) {
        log::info!("no status port for the host: {why}");
    }
    crate::init::emergency::stop(crate::cmdline::Action::Poweroff)
}

/// What `baton.run` runs: the spec, its limit in seconds, and the transport of the root
/// (which the shares come over too).
#[derive(Debug, Clone)]
pub struct Run {
    pub spec: Spec,
    pub timeout: Option<u32>,
    pub transport: Option<Transport>,
}

/// Everything made before the fork.
struct Ready {
    program: crate::init::spawn::Prepared,
    streams: Vec<OwnedFd>,
    terminal: bool,
    cwd: CString,
    identity: Option<Identity>,
}

/// The shares mounted, the streams opened, the user looked up, the program found.
fn prepare(run: &Run, env: &[OsString]) -> anyhow::Result<Ready> {
    let spec = &run.spec;
    if !spec.shares.is_empty() {
        let transport = run
            .transport
            .ok_or_else(|| anyhow::anyhow!("the root is not a host's directory (rootfstype=9p or virtiofs), so no further one can be shared"))?;
        crate::init::run_shares::mount_all(&spec.shares, transport)?;
    }
    if spec.network {
        let interface = crate::init::run_network::configure()
            .map_err(|e| anyhow::anyhow!("the network: {e}"))?;
        log::info!("network: {interface} is 10.0.2.15/24, the host 10.0.2.2 (qemu's user network)");
    }
    let mut env = environment(env);
    let user = match &spec.user {
        Some(name) => {
            let name = name.to_string_lossy();
            let passwd = read_text("/etc/passwd")?;
            let user = crate::init::users::find_user(&passwd, &name)
                .ok_or_else(|| anyhow::anyhow!("no user {name} in the root's /etc/passwd"))?;
            env = crate::init::users::environment(&env, &user);
            let group = read_text("/etc/group").unwrap_or_default();
            Some((crate::init::users::identity(&user, &group), user))
        }
        None => None,
    };
    let (streams, terminal) = match &spec.streams {
        Streams::Console => (Vec::new(), false),
        Streams::Ports => (crate::init::run_streams::ports()?, false),
        Streams::Terminal { rows, cols, term } => {
            env.retain(|e| {
                !std::os::unix::ffi::OsStrExt::as_bytes(e.as_os_str()).starts_with(b"TERM=")
            });
            if !term.is_empty() {
                env.push(format!("TERM={term}").into());
            }
            (
                vec![crate::init::run_streams::terminal(*rows, *cols)?],
                true,
            )
        }
    };
    let command = match spec.command.is_empty() {
        true => vec![OsString::from(login_shell(user.as_ref().map(|(_, u)| u)))],
        false => spec.command.clone(),
    };
    let cwd = spec.cwd.clone().unwrap_or_else(|| "/".into());
    if let Err(e) = std::fs::metadata(&cwd) {
        anyhow::bail!("cannot start in {}: {e}", cwd.to_string_lossy());
    }
    let cwd = CString::new(std::os::unix::ffi::OsStringExt::into_vec(cwd))
        .map_err(|_| anyhow::anyhow!("the directory to start in holds a NUL byte"))?;
    let program = crate::init::spawn::Prepared::new(&command, &env).map_err(|e| {
        anyhow::anyhow!(
            "cannot prepare {}: {}",
            command
                .first()
                .map(|c| c.to_string_lossy())
                .unwrap_or_default(),
            e.desc()
        )
    })?;
    Ok(Ready {
        program,
        streams,
        terminal,
        cwd,
        identity: user.map(|(id, _)| id),
    })
}

/// The shell a login would start: the user's, else root's, else /bin/sh.
fn login_shell(user: Option<&crate::init::users::User>) -> String {
    user.map(|u| u.shell.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            read_text("/etc/passwd")
                .ok()
                .and_then(|p| crate::init::users::find_user(&p, "root").map(|u| u.shell))
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".to_owned())
}

/// A small text file of the root, bounded.
fn read_text(path: &str) -> anyhow::Result<String> {
    let bytes = crate::bounded::read_bounded(path, MAX_USER_FILE)
        .map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Starts the command and waits for it, for at most `timeout` seconds; then ends whatever
/// it left running.
fn execute(ready: &Ready, timeout: Option<u32>) -> Outcome {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let spawned = match ready.streams.as_slice() {
        [] => spawn_on_console(ready),
        [tty] if ready.terminal => spawn_with(ready, Some(tty.as_fd()), None),
        [stdin, stdout, stderr] => spawn_with(
            ready,
            None,
            Some([stdin.as_fd(), stdout.as_fd(), stderr.as_fd()]),
        ),
        _ => Err(nix::errno::Errno::EINVAL),
    };
    let child = match spawned {
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

/// On the console's terminal, its output bytes as they are (`baton.run -- CMD`).
fn spawn_on_console(ready: &Ready) -> Result<nix::unistd::Pid, nix::errno::Errno> {
    let terminal = crate::init::emergency::console_terminal();
    spawn_with(ready, terminal.as_ref().map(|t| t.as_fd()), None)
}

fn spawn_with(
    ready: &Ready,
    terminal: Option<BorrowedFd<'_>>,
    streams: Option<[BorrowedFd<'_>; 3]>,
) -> Result<nix::unistd::Pid, nix::errno::Errno> {
    let setup = crate::init::spawn::Setup {
        new_session: true,
        terminal,
        // A terminal a person types at keeps its output processing; the console's
        // output is a log the host reads byte for byte.
        raw_output: ready.streams.is_empty(),
        streams,
        cwd: Some(&ready.cwd),
        identity: ready.identity.as_ref(),
    };
    crate::init::spawn::spawn(&ready.program, &setup)
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
    let port = crate::init::run_streams::find_port(STATUS_PORT)
        .ok_or("no virtio serial port named baton.status")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&port)
        .map_err(|e| format!("cannot open {port}: {e}"))?;
    file.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| format!("cannot write {port}: {e}"))
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
