//! Device probes on threads of their own, so that the root search waits for a disk only as
//! long as it chooses. Opening and reading a dying disk can block in the kernel for
//! minutes (SCSI retries, a controller that never answers), uninterruptibly; on PID 1's
//! thread that would stall the whole boot past any `rootwait=` limit. A probe that outlasts
//! its patience is left running, its device reported as not answering, and its answer is
//! taken whenever it comes.
//!
//! Threads still running when the boot execs the real init are counted ([`abandoned`]):
//! one could be inside the allocator at the exec, so the emptying process, which would
//! share that memory afterwards, is not used then (see boot.rs).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// Probe threads started and not yet joined, over every search of the boot.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
/// A probe reads a few KiB into the heap and recurses nowhere.
const STACK: usize = 64 << 10;

/// How many probe threads are still running (or were never joined): non-zero only when a
/// device did not answer.
pub fn abandoned() -> usize {
    RUNNING.load(Ordering::Relaxed)
}

/// Answers in the order they came, and the signal that one came. (Not a channel: the
/// init's threads already use a mutex and a condition variable, and std's channels would
/// add their code to the binary.)
type Answers<T> = Arc<(Mutex<VecDeque<(String, T)>>, Condvar)>;

/// Probes by key, each on its own thread, answering into one queue.
pub struct Probes<T> {
    answers: Answers<T>,
    running: BTreeMap<String, JoinHandle<()>>,
}

impl<T: Send + 'static> Default for Probes<T> {
    fn default() -> Self {
        Probes {
            answers: Arc::new((Mutex::new(VecDeque::new()), Condvar::new())),
            running: BTreeMap::new(),
        }
    }
}

impl<T: Send + 'static> Probes<T> {
    /// Whether a probe of `key` is under way.
    pub fn is_running(&self, key: &str) -> bool {
        self.running.contains_key(key)
    }

    /// Keys of the probes still running.
    pub fn running(&self) -> impl Iterator<Item = &str> {
        self.running.keys().map(String::as_str)
    }

    /// Starts `probe` for `key` on a thread. `false` when no thread could be made: the
    /// caller then probes where it is (a probe is worth more than its bound).
    pub fn start(&mut self, key: &str, probe: impl FnOnce() -> T + Send + 'static) -> bool {
        let answers = Arc::clone(&self.answers);
        let name = key.to_owned();
        // Counted before the thread exists, so that it is never seen at zero while one runs.
        RUNNING.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("probe".into())
            .stack_size(STACK)
            .spawn(move || {
                let answer = probe();
                let (queue, came) = &*answers;
                if let Ok(mut queue) = queue.lock() {
                    queue.push_back((name, answer));
                    came.notify_one();
                }
            });
        match spawned {
            Ok(handle) => {
                self.running.insert(key.to_owned(), handle);
                true
            }
            Err(e) => {
                RUNNING.fetch_sub(1, Ordering::Relaxed);
                log::warn!("cannot start a thread to probe {key} ({e}); probing it here");
                false
            }
        }
    }

    /// The next answer, waiting until `deadline` at most; `None` when none came by then or
    /// nothing is running.
    pub fn next_until(&mut self, deadline: Instant) -> Option<(String, T)> {
        if self.running.is_empty() {
            return None;
        }
        let (key, answer) = {
            let (queue, came) = &*self.answers;
            let mut queue = queue.lock().ok()?;
            loop {
                if let Some(answer) = queue.pop_front() {
                    break answer;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                queue = came.wait_timeout(queue, left).ok()?.0;
            }
        };
        // It has answered: all that is left of it is its exit.
        if let Some(handle) = self.running.remove(&key) {
            let _ = handle.join();
            RUNNING.fetch_sub(1, Ordering::Relaxed);
        }
        Some((key, answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_probe_that_never_answers_is_left_at_the_deadline() {
        let mut probes = Probes::default();
        let (_hold, blocked) = std::sync::mpsc::channel::<()>();
        // Blocks until the test ends (its sender is dropped then).
        assert!(probes.start("stuck", move || blocked.recv().is_ok()));
        assert!(probes.start("quick", || true));
        let deadline = Instant::now() + Duration::from_millis(300);
        assert_eq!(probes.next_until(deadline), Some(("quick".into(), true)));
        let started = Instant::now();
        assert_eq!(probes.next_until(deadline), None);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(probes.is_running("stuck"));
        assert!(abandoned() >= 1);
        assert_eq!(probes.running().collect::<Vec<_>>(), ["stuck"]);
    }
}
