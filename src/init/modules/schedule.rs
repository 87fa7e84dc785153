//! Which module loads may start now: each one waits for the modules it needs (its
//! dependencies, and for a softdep `post:` module the one it comes after), and starts as soon
//! as they are done, however many others are under way. Pure bookkeeping: the loader
//! (`load.rs`) puts jobs in and runs what comes out, on one thread or several.

use std::collections::{BTreeMap, VecDeque};

/// How one module's load ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Loaded,
    /// In the kernel already, built in or loaded before us.
    Present,
    /// The driver found no device it supports (ENODEV): normal for a generic image.
    NoDevice,
    /// Not for this CPU, or blacklisted, or not in the image: never tried.
    Skipped,
    Failed,
}

impl State {
    /// Whether the module's code is in the kernel now.
    pub fn in_kernel(self) -> bool {
        matches!(self, State::Loaded | State::Present)
    }
}

/// Where a module is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Known, but some module it needs is not done yet.
    Waiting,
    Ready,
    Running,
    Done(State),
}

/// The bookkeeping, generic over what a job carries (the loader's: the file and parameters).
pub struct Schedule<J> {
    slots: BTreeMap<String, Slot>,
    /// Waiting jobs and how many of their prerequisites are not done.
    waiting: BTreeMap<String, (J, usize)>,
    ready: VecDeque<(String, J)>,
    /// Who waits on whom: prerequisite -> the jobs waiting for it.
    dependents: BTreeMap<String, Vec<String>>,
    running: usize,
}

impl<J> Default for Schedule<J> {
    fn default() -> Self {
        Schedule {
            slots: BTreeMap::new(),
            waiting: BTreeMap::new(),
            ready: VecDeque::new(),
            dependents: BTreeMap::new(),
            running: 0,
        }
    }
}

impl<J> Schedule<J> {
    pub fn slot(&self, name: &str) -> Option<Slot> {
        self.slots.get(name).copied()
    }

    /// Marks `name` as being worked out (its prerequisites are being added): a module that,
    /// through softdeps, comes back to itself then sees it and does not recurse for ever.
    pub fn reserve(&mut self, name: &str) {
        self.slots.insert(name.to_owned(), Slot::Waiting);
    }

    /// A module that will not be loaded (skipped, or not in the image).
    pub fn settle(&mut self, name: &str, state: State) {
        self.slots.insert(name.to_owned(), Slot::Done(state));
        self.release(name);
    }

    /// Adds the job for `name`, to start once every module in `after` is done. Names in
    /// `after` that were never added do not hold it back.
    pub fn add(&mut self, name: &str, job: J, after: &[String]) {
        let mut pending = 0;
        for first in after {
            match self.slots.get(first) {
                Some(Slot::Done(_)) | None => {}
                Some(_) if first == name => {}
                Some(_) => {
                    pending += 1;
                    self.dependents
                        .entry(first.clone())
                        .or_default()
                        .push(name.to_owned());
                }
            }
        }
        if pending == 0 {
            self.slots.insert(name.to_owned(), Slot::Ready);
            self.ready.push_back((name.to_owned(), job));
        } else {
            self.slots.insert(name.to_owned(), Slot::Waiting);
            self.waiting.insert(name.to_owned(), (job, pending));
        }
    }

    /// The next job to run, if one may start. When nothing runs and nothing is ready but
    /// jobs still wait, they wait on each other (a softdep cycle): the oldest-named one
    /// starts anyway, as modprobe would load it.
    pub fn start_next(&mut self) -> Option<(String, J)> {
        if self.ready.is_empty() && self.running == 0 {
            if let Some(name) = self.waiting.keys().next().cloned() {
                if let Some((job, _)) = self.waiting.remove(&name) {
                    self.ready.push_back((name, job));
                }
            }
        }
        let (name, job) = self.ready.pop_front()?;
        self.slots.insert(name.clone(), Slot::Running);
        self.running += 1;
        Some((name, job))
    }

    /// A job that `next` handed out has ended.
    pub fn finished(&mut self, name: &str, state: State) {
        self.running = self.running.saturating_sub(1);
        self.slots.insert(name.to_owned(), Slot::Done(state));
        self.release(name);
    }

    /// The jobs that were waiting on `name` and now wait on one fewer.
    fn release(&mut self, name: &str) {
        for dependent in self.dependents.remove(name).unwrap_or_default() {
            let now_ready = match self.waiting.get_mut(&dependent) {
                Some((_, pending)) => {
                    *pending = pending.saturating_sub(1);
                    *pending == 0
                }
                None => false,
            };
            if now_ready {
                if let Some((job, _)) = self.waiting.remove(&dependent) {
                    self.slots.insert(dependent.clone(), Slot::Ready);
                    self.ready.push_back((dependent, job));
                }
            }
        }
    }

    /// Nothing is running, ready or waiting.
    pub fn idle(&self) -> bool {
        self.running == 0 && self.ready.is_empty() && self.waiting.is_empty()
    }

    /// Whether every one of `names` has ended (or was never added).
    pub fn all_done(&self, names: &[String]) -> bool {
        names.iter().all(|n| {
            !matches!(
                self.slots.get(n),
                Some(Slot::Waiting | Slot::Ready | Slot::Running)
            )
        })
    }

    /// Whether `name` was ever added or settled.
    pub fn knows(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependencies_first_and_independent_ones_together() {
        let mut s = Schedule::default();
        // virtio_blk needs virtio; ext4 needs jbd2; virtio and jbd2 can start together.
        s.add("virtio", (), &[]);
        s.add("virtio_blk", (), &names(&["virtio"]));
        s.add("jbd2", (), &[]);
        s.add("ext4", (), &names(&["jbd2"]));
        let (a, ()) = s.start_next().unwrap();
        let (b, ()) = s.start_next().unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("virtio", "jbd2"));
        assert!(s.start_next().is_none(), "the dependents wait");
        s.finished("jbd2", State::Loaded);
        assert_eq!(s.start_next().unwrap().0, "ext4");
        assert!(s.start_next().is_none());
        s.finished("virtio", State::Loaded);
        assert_eq!(s.start_next().unwrap().0, "virtio_blk");
        assert!(!s.idle());
        s.finished("ext4", State::Loaded);
        s.finished("virtio_blk", State::NoDevice);
        assert!(s.idle());
        assert_eq!(s.slot("virtio_blk"), Some(Slot::Done(State::NoDevice)));
        assert!(s.all_done(&names(&["ext4", "virtio_blk", "never-added"])));
    }

    #[test]
    fn a_failed_or_skipped_prerequisite_still_releases() {
        let mut s = Schedule::default();
        s.add("crc32c", (), &[]);
        s.add("ext4", (), &names(&["crc32c"]));
        let (first, ()) = s.start_next().unwrap();
        s.finished(&first, State::Failed);
        assert_eq!(s.start_next().unwrap().0, "ext4");
        // A prerequisite that will never load (blacklisted) does not hold anything back.
        let mut s = Schedule::<()>::default();
        s.settle("nls", State::Skipped);
        s.add("vfat", (), &names(&["nls"]));
        assert_eq!(s.slot("vfat"), Some(Slot::Ready));
    }

    #[test]
    fn a_cycle_does_not_wait_for_ever() {
        let mut s = Schedule::default();
        s.reserve("a");
        s.reserve("b");
        s.add("a", (), &names(&["b"]));
        s.add("b", (), &names(&["a"]));
        let (first, ()) = s.start_next().unwrap();
        assert_eq!(first, "a");
        s.finished("a", State::Loaded);
        assert_eq!(s.start_next().unwrap().0, "b");
        s.finished("b", State::Loaded);
        assert!(s.idle());
    }
}
