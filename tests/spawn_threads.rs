//! PID 1 forks its shells and commands while module loaders may still run on other
//! threads. A forked child inherits every lock as it was at the fork: if it allocated
//! before its exec while a loader held the allocator's lock, it would wait for ever, and PID
//! 1 with it. This runs the init's own allocator with threads allocating without pause,
//! forks many children through baton::init::spawn, and checks that every one reached its exec.

use baton::init::spawn::{spawn, Prepared, Setup};
use nix::sys::wait::{waitpid, WaitStatus};
use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: baton::init::alloc::Allocator = baton::init::alloc::Allocator::new();

const FORKS: usize = 300;
const THREADS: usize = 3;
/// Far longer than the forks take on a loaded machine (about a second here): a run still
/// going after this has a child stuck before its exec.
const STUCK_AFTER: Duration = Duration::from_secs(120);

#[test]
fn forked_children_reach_their_exec_while_threads_allocate() {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut kept: Vec<Vec<u8>> = Vec::new();
                let mut n = t;
                while !stop.load(Ordering::Relaxed) {
                    n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    kept.push(vec![0u8; 16 + n % 4096]);
                    if kept.len() > 64 {
                        kept.swap_remove(n % 64);
                    }
                }
            })
        })
        .collect();
    // spawn returns once the child's exec has closed its report pipe; a child stuck before
    // its exec blocks it for ever, so the forks run on a thread of their own, watched.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let argv: Vec<OsString> = vec!["true".into()];
        let env: Vec<OsString> = vec!["PATH=/usr/bin:/bin".into()];
        for n in 0..FORKS {
            let program = Prepared::new(&argv, &env).unwrap();
            let child = spawn(&program, &Setup::default()).expect("spawn");
            assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
            let _ = done.send(n + 1);
        }
    });
    let deadline = Instant::now() + STUCK_AFTER;
    let mut reached = 0;
    while reached < FORKS {
        let left = deadline.saturating_duration_since(Instant::now());
        match finished.recv_timeout(left) {
            Ok(n) => reached = n,
            Err(_) => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    if reached < FORKS {
        kill_children();
    }
    assert_eq!(
        reached,
        FORKS,
        "child {} of {FORKS} never reached its exec",
        reached + 1
    );
}

/// Kills this process's children: a stuck one would hold the test's output open, and the
/// run would hang instead of failing.
fn kill_children() {
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children.split_whitespace().filter_map(|p| p.parse().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
