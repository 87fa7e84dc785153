//! Work that need not delay the real init (deleting the initramfs, the reports), done by a
//! process that starts on it only once PID 1 has exec'd the real init.
//!
//! The process is made with `clone(CLONE_VM)`: it shares PID 1's memory instead of copying
//! its page tables as fork does (that copy alone cost about 20 ms under qemu's emulated
//! CPU, on the critical path). Two processes on one memory must not both run, so the new
//! one first waits on a pipe whose only other write end is PID 1's, close-on-exec: it reads
//! end-of-file exactly when PID 1's exec has succeeded. By then PID 1 runs a new image in a
//! new memory, and the old one belongs to the waiting process alone, as a forked child's
//! copy would. If the exec fails, PID 1 goes on (other inits, the emergency path) and the
//! process keeps waiting, touching nothing. The real init inherits it as a child and reaps
//! it, as with util-linux's switch_root.
//!
//! Before it reads end-of-file the process makes only raw system calls on its own stack.

use anyhow::anyhow;
use nix::unistd::Pid;
use std::ffi::c_void;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The process's own stack, below which one page is left inaccessible, so that an overflow
/// faults instead of writing over a neighbouring mapping. The deletion recurses once per
/// directory level, holding a descriptor for each, so the open-file limit (1024 for PID 1)
/// bounds the depth at a few hundred KB of stack; the pages are touched only as used.
const STACK_BYTES: usize = 1 << 20;

/// How long past its delay the work may go on at the lowest priority before it hurries. A real init that keeps every CPU busy would otherwise leave it almost no time,
/// and the initramfs's memory (tens of MB for a generic image) pinned for as long.
const HURRY_AFTER: Duration = Duration::from_millis(500);

/// The niceness it then takes: the work left is short (a fraction of a second of CPU, most
/// of it giving pages back), and a machine that kept it waiting this long is saturated, so
/// an even share would stretch it over seconds (measured under qemu at one CPU against a
/// spinning init: 1.5 s at nice 0).
const HURRIED_NICE: libc::c_int = -10;

/// What the process is handed: the pipe's two ends as they are in its own file table, and
/// the work.
struct Job {
    wait: RawFd,
    hold: RawFd,
    delay: Duration,
    work: Work,
}

/// The work: it runs in the other process, alone on the memory PID 1 left.
pub type Work = Box<dyn FnOnce()>;

/// The waiting process; its work starts when `go`, PID 1's write end of the pipe, closes.
pub struct Deferred {
    pub pid: Pid,
    go: OwnedFd,
}

impl Deferred {
    /// Leaves the start to the exec, which closes `go` (close-on-exec). The descriptor is
    /// kept open until then on purpose: closing it earlier would let the process run beside
    /// this one on the same memory.
    pub fn start_at_exec(self) -> Pid {
        let _ = self.go.into_raw_fd();
        // The exec leaves a memory another process still uses, and for that case the
        // kernel clears the thread-id word the C library registered at start
        // (set_tid_address) and wakes a futex on it: a slow path (it pins the page) that
        // costs its translation under an emulated CPU, for a wake-up no one waits for (this
        // process has no other threads by now). Registering no word skips it. Should the
        // exec fail, nothing relies on the word: PID 1 never exits.
        // SAFETY: a null address only tells the kernel there is nothing to clear.
        unsafe {
            libc::syscall(
                libc::SYS_set_tid_address,
                std::ptr::null_mut::<libc::c_int>(),
            )
        };
        self.pid
    }

    /// Starts the work now and waits for it to end (for tests, which do not exec): this
    /// process only sleeps in waitpid meanwhile.
    pub fn run_and_wait(self) -> nix::Result<nix::sys::wait::WaitStatus> {
        drop(self.go);
        nix::sys::wait::waitpid(self.pid, None)
    }
}

/// Starts the process; it runs `work`, after `delay`, once the returned [`Deferred`] says
/// so. The caller must not be running other threads that could hold a lock `work` takes
/// (the module loading threads are joined before the switch).
/// On failure the work comes back with the error, to be done some other way.
pub fn spawn(delay: Duration, work: Work) -> Result<Deferred, (anyhow::Error, Work)> {
    let (wait, go) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(pipe) => pipe,
        Err(errno) => return Err((anyhow!("cannot make a pipe: {errno}"), work)),
    };
    // SAFETY: sysconf only reads (musl takes the page size from the auxiliary vector).
    let guard = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let mapped = STACK_BYTES + guard;
    // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            mapped,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        let error = std::io::Error::last_os_error();
        return Err((anyhow!("cannot map a stack: {error}"), work));
    }
    // SAFETY: the lowest page of the mapping just made, which nothing else uses.
    if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } != 0 {
        let error = std::io::Error::last_os_error();
        // SAFETY: the mapping just made, unused.
        unsafe { libc::munmap(base, mapped) };
        return Err((
            anyhow!("cannot protect the stack's guard page: {error}"),
            work,
        ));
    }
    let job = Box::into_raw(Box::new(Job {
        wait: wait.as_raw_fd(),
        hold: go.as_raw_fd(),
        delay,
        work,
    }));
    // SAFETY: the stack is the mapping above its guard page and grows down from the
    // mapping's end, which mmap aligned to a page. `job` is leaked to the child: this
    // process never frees it (see below), so it outlives the child's use of it.
    let pid = unsafe {
        let top = base.cast::<u8>().add(mapped).cast::<c_void>();
        libc::clone(
            child,
            top,
            libc::CLONE_VM | libc::SIGCHLD,
            job.cast::<c_void>(),
        )
    };
    if pid < 0 {
        let error = std::io::Error::last_os_error();
        // SAFETY: no child was made, so `job` and the stack are ours again.
        let job = unsafe {
            libc::munmap(base, mapped);
            Box::from_raw(job)
        };
        return Err((anyhow!("cannot clone: {error}"), job.work));
    }
    // The child has its own copy of the file table; this process keeps only the write end.
    drop(wait);
    Ok(Deferred {
        pid: Pid::from_raw(pid),
        go,
    })
}

/// The process's entry point, on its own stack.
extern "C" fn child(arg: *mut c_void) -> libc::c_int {
    let job = arg.cast::<Job>();
    // Raw calls only until the parent has exec'd: errno and every lock are still shared.
    // SAFETY: `job` points at the Job leaked by `spawn`; its fds are numbers in this
    // process's own file table, which clone copied.
    let (wait, hold) = unsafe { ((*job).wait, (*job).hold) };
    // SAFETY: closing our copy of the write end, so that only the parent's remains.
    unsafe { libc::syscall(libc::SYS_close, hold) };
    // A batch process at the lowest niceness: woken by the exec, a process of this policy
    // does not preempt the real init starting (a normal one would, with the credit of its
    // sleep), and while others want the CPU it gets about 1/70 of it. Not the idle policy:
    // on a saturated machine a process at that priority waited a second and more for each
    // time slice (measured under qemu), too long even to notice its own timer below. Not
    // fatal if refused.
    set_policy(libc::SCHED_BATCH, 19);
    let mut byte = 0u8;
    // SAFETY: reads at most one byte into a local.
    let n = unsafe { libc::syscall(libc::SYS_read, wait, std::ptr::addr_of_mut!(byte), 1) };
    // Only end-of-file means the exec happened (nothing is ever written). A failed read
    // (a signal with a handler, say) cannot tell whether the parent still runs on this
    // memory: leave the work undone rather than risk it.
    if n != 0 {
        return 0;
    }
    // From here on the memory is this process's alone.
    // SAFETY: as above; the Job is taken back exactly once.
    let job = unsafe { Box::from_raw(job) };
    // SAFETY: our copy of the read end, no longer needed.
    drop(unsafe { OwnedFd::from_raw_fd(job.wait) });
    // The limit counts from the exec, delay included.
    raise_priority_after(job.delay + HURRY_AFTER);
    if !job.delay.is_zero() {
        std::thread::sleep(job.delay);
    }
    // Its own open of /dev/kmsg: the one it shares with the real init's parent counts
    // against the same rate limit.
    crate::init::kmsg::after_fork();
    (job.work)();
    0
}

/// Arms a timer that makes this process an ordinary one (SCHED_OTHER, at
/// [`HURRIED_NICE`]) after `after`. A signal, because a process at the lowest priority on a
/// busy machine runs in short slices far apart and cannot be counted on to look at a clock
/// in time; the handler runs at its next slice. Not fatal if refused: the work then stays
/// at the lowest priority.
fn raise_priority_after(after: Duration) {
    extern "C" fn raise(_: libc::c_int) {
        set_policy(libc::SCHED_OTHER, HURRIED_NICE);
    }
    // SAFETY: sigaction and setitimer with structures filled in here; the handler only
    // makes raw system calls. This process has its own handler table (no CLONE_SIGHAND).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = raise as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()) != 0 {
            return;
        }
        let mut unblock: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut unblock);
        libc::sigaddset(&mut unblock, libc::SIGALRM);
        libc::sigprocmask(libc::SIG_UNBLOCK, &unblock, std::ptr::null_mut());
        let timer = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: after.as_secs().try_into().unwrap_or(1),
                tv_usec: after.subsec_micros().into(),
            },
        };
        libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
    }
}

/// This process's scheduling policy and niceness, by raw system calls (async-signal-safe,
/// and usable before the exec on the memory shared with PID 1; musl's wrappers of the
/// policy calls only return ENOSYS). Failures are ignored: the priority is a preference.
fn set_policy(policy: libc::c_int, nice: libc::c_int) {
    // Priority 0, which every policy here takes, with room to spare for the kernel's
    // struct sched_param (one int).
    let param = [0 as libc::c_int; 8];
    // SAFETY: raw system calls with integers and a pointer to a local.
    unsafe {
        libc::syscall(libc::SYS_sched_setscheduler, 0, policy, param.as_ptr());
        libc::syscall(libc::SYS_setpriority, libc::PRIO_PROCESS, 0, nice);
    }
}
