//! Starting a program from PID 1 while other threads may run (the module loaders, a device
//! probe): the only fork on the init's path.
//!
//! A forked child has one thread, but a copy of every lock as it was at the fork: if a
//! loading thread held the allocator's lock then, the child's first allocation waits for
//! ever, and PID 1 with it (it waits for the child's exec). So everything the child needs
//! is made before the fork: the C strings, the pointer arrays execve takes, every place the
//! program may be on PATH. The child then makes raw system calls only, on memory it does
//! not allocate, and ends in execve or `_exit`.

use nix::errno::Errno;
use std::ffi::{c_char, CString, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr::null;

/// The PATH to search when the environment has none (as musl's execvp does).
const DEFAULT_PATH: &[u8] = b"/usr/local/bin:/bin:/usr/bin";
/// A bound on the directories of PATH tried.
const MAX_PATH_ENTRIES: usize = 64;

/// A program with its arguments and environment, ready for execve in a forked child.
pub struct Prepared {
    /// Where the program may be, in the order tried: the name itself when it has a `/`,
    /// else each directory of PATH joined with it.
    candidates: Vec<CString>,
    /// Owned strings the pointer arrays point into; they must outlive the arrays.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    /// NULL-terminated, as execve takes them.
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
}

impl Prepared {
    /// `argv[0]` is looked up on the PATH of `env` as execvp would. `EINVAL` when an
    /// argument holds a NUL byte or there is no program; `ENOENT` when PATH gives no place.
    pub fn new(argv: &[OsString], env: &[OsString]) -> Result<Prepared, Errno> {
        let to_c = |s: &OsString| CString::new(s.as_bytes()).map_err(|_| Errno::EINVAL);
        let argv = argv.iter().map(to_c).collect::<Result<Vec<_>, _>>()?;
        let envp = env.iter().map(to_c).collect::<Result<Vec<_>, _>>()?;
        let program = argv.first().ok_or(Errno::EINVAL)?.as_bytes();
        if program.is_empty() {
            return Err(Errno::ENOENT);
        }
        let path = envp
            .iter()
            .find_map(|e| e.as_bytes().strip_prefix(b"PATH="))
            .unwrap_or(DEFAULT_PATH);
        let candidates = candidates(program, path);
        if candidates.is_empty() {
            return Err(Errno::ENOENT);
        }
        let pointers = |strings: &[CString]| {
            let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
            ptrs.push(null());
            ptrs
        };
        Ok(Prepared {
            candidates,
            argv_ptrs: pointers(&argv),
            envp_ptrs: pointers(&envp),
            _argv: argv,
            _envp: envp,
        })
    }

    /// The paths execve will be tried on, for tests.
    pub fn candidates(&self) -> impl Iterator<Item = &[u8]> {
        self.candidates.iter().map(|c| c.as_bytes())
    }
}

/// Where execvp would look for `program` on `path`: the name itself when it has a slash,
/// else each directory (an empty one is the current directory, as POSIX says).
fn candidates(program: &[u8], path: &[u8]) -> Vec<CString> {
    if program.contains(&b'/') {
        return CString::new(program).into_iter().collect();
    }
    path.split(|&b| b == b':')
        .take(MAX_PATH_ENTRIES)
        .filter_map(|dir| {
            let mut full = if dir.is_empty() {
                Vec::new()
            } else {
                let mut d = dir.to_vec();
                d.push(b'/');
                d
            };
            full.extend_from_slice(program);
            CString::new(full).ok()
        })
        .collect()
}

/// What the child does before the exec.
#[derive(Clone, Copy, Default)]
pub struct Setup<'a> {
    /// A session of its own (`setsid`).
    pub new_session: bool,
    /// A terminal for fds 0-2, made the controlling terminal.
    pub terminal: Option<BorrowedFd<'a>>,
    /// The terminal passes output bytes as they are (no `\n` to `\r\n`).
    pub raw_output: bool,
    /// Descriptors for fds 0, 1 and 2 (in place of `terminal`'s).
    pub streams: Option<[BorrowedFd<'a>; 3]>,
    /// Where to start (made before the fork); `/` when `None`.
    pub cwd: Option<&'a std::ffi::CStr>,
    /// Whom to run as: the groups are set first, while still root.
    pub identity: Option<&'a Identity>,
}

/// A user's ids, as `setgroups`, `setgid` and `setuid` take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
}

/// Forks and execs `program` as `setup` says. Returns the child once its exec succeeded,
/// or the exec's errno (the child then reaped). The child makes no allocation and takes no
/// lock, so this is safe with other threads running.
pub fn spawn(program: &Prepared, setup: &Setup<'_>) -> Result<nix::unistd::Pid, Errno> {
    use std::io::Read;
    // The child reports a failed exec through this pipe; a successful exec closes it
    // (O_CLOEXEC) with nothing written.
    let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the child runs only `exec_child`, which makes raw system calls on memory
    // prepared before the fork, then execs or `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        exec_child(program, setup, report_write.as_raw_fd());
    }
    let child = nix::unistd::Pid::from_raw(pid);
    drop(report_write);
    let mut errno = [0u8; 4];
    let exec_failed = std::fs::File::from(report_read)
        .read(&mut errno)
        .is_ok_and(|n| n == errno.len());
    if exec_failed {
        let _ = nix::sys::wait::waitpid(child, None);
        return Err(Errno::from_raw(i32::from_ne_bytes(errno)));
    }
    Ok(child)
}

/// In the forked child. Raw calls only: no allocation, no lock, no Rust I/O.
fn exec_child(program: &Prepared, setup: &Setup<'_>, report: i32) -> ! {
    // SAFETY: each call takes integers or pointers to memory made before the fork, which
    // this process owns a copy of; none allocates.
    unsafe {
        if setup.new_session {
            libc::setsid();
        }
        if let Some(tty) = setup.terminal {
            for target in 0..=2 {
                libc::dup2(tty.as_raw_fd(), target);
            }
            // The console's own terminal as the controlling terminal, so job control and
            // ^C work: /dev/console never becomes one (the kernel opens it `noctty`),
            // which is why busybox has `cttyhack`.
            libc::ioctl(0, libc::TIOCSCTTY, 1);
            if setup.raw_output {
                let mut termios: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut termios) == 0 {
                    termios.c_oflag &= !libc::OPOST;
                    libc::tcsetattr(0, libc::TCSANOW, &termios);
                }
            }
        }
        if let Some([stdin, stdout, stderr]) = setup.streams {
            libc::dup2(stdin.as_raw_fd(), 0);
            libc::dup2(stdout.as_raw_fd(), 1);
            libc::dup2(stderr.as_raw_fd(), 2);
        }
        let cwd = setup.cwd.unwrap_or(c"/");
        if libc::chdir(cwd.as_ptr()) != 0 {
            fail(report);
        }
        if let Some(id) = setup.identity {
            // A process that keeps root's groups or gid after setuid is not that user.
            if libc::setgroups(id.groups.len(), id.groups.as_ptr()) != 0
                || libc::setgid(id.gid) != 0
                || libc::setuid(id.uid) != 0
            {
                fail(report);
            }
        }
        // execvp's rule: the first place that exists wins; EACCES is remembered so that a
        // program found but not executable is not reported as missing.
        let mut errno = libc::ENOENT;
        let mut denied = false;
        for candidate in &program.candidates {
            libc::execve(
                candidate.as_ptr(),
                program.argv_ptrs.as_ptr(),
                program.envp_ptrs.as_ptr(),
            );
            let e = *libc::__errno_location();
            match e {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => denied = true,
                other => {
                    errno = other;
                    break;
                }
            }
        }
        if denied && errno == libc::ENOENT {
            errno = libc::EACCES;
        }
        report_errno(report, errno)
    }
}

/// In the forked child: reports the last call's errno to the parent and ends.
///
/// # Safety
/// Only from the forked child: `_exit` skips every destructor.
unsafe fn fail(report: i32) -> ! {
    report_errno(report, *libc::__errno_location())
}

/// In the forked child: reports `errno` to the parent and ends.
unsafe fn report_errno(report: i32, errno: i32) -> ! {
    let bytes = errno.to_ne_bytes();
    libc::write(report, bytes.as_ptr().cast(), bytes.len());
    libc::_exit(127)
}

/// The terminal behind `path`, opened read-write for a child's stdio; `None` if it cannot
/// be opened.
pub fn open_terminal(path: &std::ffi::CStr) -> Option<OwnedFd> {
    // SAFETY: a NUL-terminated path; the descriptor is owned below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    // SAFETY: a descriptor the kernel just returned, owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_program_is_looked_up_on_the_environments_path() {
        let p = Prepared::new(&os(&["sh", "-c", "x"]), &os(&["PATH=/bin::/usr/bin"])).unwrap();
        let found: Vec<&[u8]> = p.candidates().collect();
        assert_eq!(found, [&b"/bin/sh"[..], b"sh", b"/usr/bin/sh"]);
        let p = Prepared::new(&os(&["./run"]), &os(&["PATH=/bin"])).unwrap();
        assert_eq!(p.candidates().collect::<Vec<_>>(), [&b"./run"[..]]);
        let p = Prepared::new(&os(&["sh"]), &[]).unwrap();
        assert_eq!(p.candidates().count(), 3, "musl's default PATH");
        assert_eq!(Prepared::new(&[], &[]).err(), Some(Errno::EINVAL));
        assert_eq!(Prepared::new(&os(&[""]), &[]).err(), Some(Errno::ENOENT));
        let nul = vec![OsString::from("a\0b")];
        assert_eq!(Prepared::new(&nul, &[]).err(), Some(Errno::EINVAL));
    }

    #[test]
    fn a_failed_exec_reports_its_errno() {
        let p =
            Prepared::new(&os(&["baton-no-such-program"]), &os(&["PATH=/nonexistent"])).unwrap();
        assert_eq!(spawn(&p, &Setup::default()).err(), Some(Errno::ENOENT));
        // Found but not executable: EACCES, not "not found".
        let p = Prepared::new(&os(&["passwd"]), &os(&["PATH=/nonexistent:/etc"])).unwrap();
        assert_eq!(spawn(&p, &Setup::default()).err(), Some(Errno::EACCES));
        let p = Prepared::new(&os(&["true"]), &os(&["PATH=/usr/bin:/bin"])).unwrap();
        let child = spawn(&p, &Setup::default()).unwrap();
        assert_eq!(
            nix::sys::wait::waitpid(child, None).unwrap(),
            nix::sys::wait::WaitStatus::Exited(child, 0)
        );
    }
}
