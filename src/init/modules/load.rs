//! Loading the modules the builder put in the image: the ones named at build time, the ones
//! a device's `modalias` asks for, and the filesystem the root turns out to have.
//!
//! `finit_module(2)` takes an open file, so the kernel reads the module straight from the
//! initramfs page cache: no copy through our memory, and signature checks see the file.
//! Modules the builder packed with lz4 are unpacked first (`packed`).

use crate::init::modules::aliases::Aliases;
use crate::init::modules::packed;
pub use crate::init::modules::schedule::State;
use crate::init::modules::schedule::{Schedule, Slot};
use crate::init::timeline as recorder;
use crate::manifest::{Manifest, ModuleEntry};
use crate::timeline;
use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// One module to insert: everything a loading thread needs, owned.
struct Job {
    path: String,
    params: CString,
    why: String,
}

/// The schedule and the signal that it changed, shared with the loading threads.
struct Shared {
    schedule: Mutex<Schedule<Job>>,
    changed: Condvar,
    /// Set when the loader is done with: the threads end once nothing is left to run.
    closing: Mutex<bool>,
    /// Whether loading threads wait on `changed`. Without them no one does, and a notify
    /// would only be a system call (Rust's condition variable makes one each time).
    threaded: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Schedule<Job>> {
        // A thread that panicked mid-update cannot exist (no code here panics), but a
        // poisoned lock must not become a panic in PID 1 either.
        self.schedule.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn closing(&self) -> bool {
        *self.closing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the waiting threads that the schedule changed.
    fn wake(&self) {
        if self.threaded {
            self.changed.notify_all();
        }
    }
}

/// Loads modules by name or alias, each at most once, each after what it needs. On a
/// machine with several CPUs, modules whose prerequisites are in start at once, one per
/// loading thread (the kernel runs a module's init in the thread that asked for it, so
/// drivers probe their hardware side by side); on one CPU they load in this thread, one
/// after another, as the caller asks for them.
pub struct Loader<'m> {
    modules: BTreeMap<&'m str, &'m ModuleEntry>,
    aliases: Aliases<'m>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    blacklist: Vec<String>,
    /// The CPU's modalias, read the first time a module with `cpu:` aliases is met.
    cpu: Option<Option<String>>,
    /// Parameters per module from the command line.
    params: Box<dyn Fn(&str) -> String + 'm>,
}

impl<'m> Loader<'m> {
    pub fn new(
        manifest: &'m Manifest,
        blacklist: Vec<String>,
        params: impl Fn(&str) -> String + 'm,
    ) -> Loader<'m> {
        Loader::with_threads(manifest, blacklist, params, loading_threads())
    }

    /// With `threads` loading threads; 0 loads in the caller's thread.
    pub fn with_threads(
        manifest: &'m Manifest,
        blacklist: Vec<String>,
        params: impl Fn(&str) -> String + 'm,
        threads: usize,
    ) -> Loader<'m> {
        let shared = Arc::new(Shared {
            schedule: Mutex::new(Schedule::default()),
            changed: Condvar::new(),
            closing: Mutex::new(false),
            threaded: threads > 0,
        });
        let mut handles = Vec::new();
        for lane in 1..=threads {
            let shared = Arc::clone(&shared);
            match std::thread::Builder::new()
                .name(format!("load{lane}"))
                .spawn(move || work(&shared, lane, false))
            {
                Ok(handle) => handles.push(handle),
                // Fewer threads (or none: then this one loads) is slower, not wrong.
                Err(e) => {
                    log::warn!("cannot start a module loading thread: {e}");
                    break;
                }
            }
        }
        // Inserted one by one: collecting into a map sorts with a stable sort, whose code
        // the init would carry only for this.
        let mut modules = BTreeMap::new();
        for m in &manifest.modules {
            modules.insert(m.name.as_str(), m);
        }
        Loader {
            modules,
            aliases: Aliases::new(&manifest.aliases, manifest.alias_file.as_deref()),
            shared,
            threads: handles,
            blacklist,
            cpu: None,
            params: Box::new(params),
        }
    }

    /// Whether modules load on threads of their own (the machine has CPUs to spare).
    pub fn threaded(&self) -> bool {
        !self.threads.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// Whether some module in the image has not been asked for yet: only then can a
    /// device's modalias still bring something new.
    pub fn has_untried(&self) -> bool {
        let schedule = self.shared.lock();
        self.modules.keys().any(|name| !schedule.knows(name))
    }

    /// Asks for `name` (a module in the image, `-` and `_` alike) and what it needs. `why`
    /// says what asked for it, for the log. With loading threads it returns at once; call
    /// [`Loader::wait_for`] where the module must be in.
    pub fn load(&mut self, name: &str, why: &str) {
        self.want(name, why, None);
        self.run_here();
    }

    /// Whether `name` is in the kernel now (after [`Loader::wait_for`]).
    pub fn in_kernel(&self, name: &str) -> bool {
        let name = crate::modules::modinfo::normalize(name);
        matches!(self.shared.lock().slot(&name), Some(Slot::Done(state)) if state.in_kernel())
    }

    fn want(&mut self, name: &str, why: &str, after: Option<&str>) {
        let name = crate::modules::modinfo::normalize(name);
        if self.shared.lock().knows(&name) {
            return;
        }
        let Some(entry) = self.modules.get(name.as_str()).copied() else {
            log::warn!("module {name} ({why}) is not in this image");
            self.shared.lock().settle(&name, State::Skipped);
            return;
        };
        if self.blacklist.contains(&name) {
            log::info!("{name}: skipped, module_blacklist= names it");
            self.shared.lock().settle(&name, State::Skipped);
            return;
        }
        if !entry.cpu.is_empty() && !entry.suits_cpu(self.cpu_modalias()) {
            log::info!("{name}: skipped, this CPU lacks the features it is for");
            self.shared.lock().settle(&name, State::Skipped);
            return;
        }
        self.shared.lock().reserve(&name);
        for dep in &entry.deps {
            self.want(dep, &format!("needed by {name}"), None);
        }
        let job = match CString::new((self.params)(&entry.name)) {
            Ok(params) => Job {
                path: entry.path.clone(),
                params,
                why: why.to_owned(),
            },
            Err(_) => {
                log::warn!("parameters for {} contain a NUL byte", entry.name);
                self.shared.lock().settle(&name, State::Failed);
                return;
            }
        };
        let mut after_these: Vec<String> = entry
            .deps
            .iter()
            .map(|d| crate::modules::modinfo::normalize(d))
            .collect();
        after_these.extend(after.map(str::to_owned));
        self.shared.lock().add(&name, job, &after_these);
        self.shared.wake();
        for post in &entry.post {
            self.want(post, &format!("after {name}"), Some(&name));
        }
    }

    /// Without loading threads, loads here whatever may start.
    fn run_here(&self) {
        if self.threads.is_empty() {
            // Lane 0: PID 1's own thread.
            work(&self.shared, 0, true);
        }
    }

    fn cpu_modalias(&mut self) -> Option<&str> {
        self.cpu
            .get_or_insert_with(|| std::fs::read_to_string("/sys/devices/system/cpu/modalias").ok())
            .as_deref()
    }

    /// Asks for every module whose alias pattern matches `alias` (a device's modalias, or
    /// a name like `fs-ext4`). Returns the names that matched.
    pub fn load_alias(&mut self, alias: &str) -> Vec<String> {
        let matched: Vec<String> = self.aliases.matching(alias);
        for name in &matched {
            self.want(name, &format!("for {alias}"), None);
        }
        self.run_here();
        matched
    }

    /// Whether modules asked for are still loading (or waiting to): the devices their
    /// drivers will find have not all shown up yet.
    pub fn busy(&self) -> bool {
        !self.shared.lock().idle()
    }

    /// Waits until each of `names` has been loaded or has failed.
    pub fn wait_for(&self, names: &[String]) {
        let names: Vec<String> = names
            .iter()
            .map(|n| crate::modules::modinfo::normalize(n))
            .collect();
        self.run_here();
        let mut schedule = self.shared.lock();
        while !schedule.all_done(&names) {
            schedule = self
                .shared
                .changed
                .wait(schedule)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits until nothing is left to load.
    pub fn wait_all(&self) {
        self.run_here();
        let mut schedule = self.shared.lock();
        while !schedule.idle() {
            schedule = self
                .shared
                .changed
                .wait(schedule)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for Loader<'_> {
    /// Everything asked for is loaded, then the threads end: nothing is left running into
    /// the switch.
    fn drop(&mut self) {
        self.wait_all();
        {
            // Set under the schedule's lock, which a thread holds from its look at
            // `closing` until it sleeps: it either sees the flag or is woken by the notify.
            let _schedule = self.shared.lock();
            *self
                .shared
                .closing
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = true;
        }
        self.shared.wake();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

/// How many loading threads: one per CPU this process may run on, none on a single CPU
/// (there, a thread only adds switching).
fn loading_threads() -> usize {
    match usable_cpus() {
        n if n > 1 => n.min(MAX_THREADS),
        _ => 0,
    }
}

/// The CPUs this process may run on. Not `std::thread::available_parallelism`, which also
/// reads the cgroup hierarchy's quotas through /proc and /sys: files an initramfs has no
/// cgroups in, and reads that cost milliseconds each the first time under TCG.
pub fn usable_cpus() -> usize {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
                .count()
        })
        .unwrap_or(1)
}

/// A bound for machines with hundreds of CPUs: a boot loads tens of modules.
const MAX_THREADS: usize = 8;

/// A loading thread's life: take a job that may start, insert the module, record how it
/// ended, and again. `until_idle` is for loading in the caller's thread: return when
/// nothing may start, rather than wait for more.
fn work(shared: &Shared, lane: usize, until_idle: bool) {
    loop {
        let (name, job) = {
            let mut schedule = shared.lock();
            loop {
                if let Some(next) = schedule.start_next() {
                    break next;
                }
                if until_idle || shared.closing() {
                    return;
                }
                schedule = shared
                    .changed
                    .wait(schedule)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        let state = insert(&name, &job, lane);
        shared.lock().finished(&name, state);
        shared.wake();
    }
}

fn insert(name: &str, job: &Job, lane: usize) -> State {
    // A packed module's time includes its reading and unpacking: that is its cost to the boot.
    let start_us = recorder::now_us();
    let result = match insert_file(job) {
        Ok(result) => result,
        Err(why) => {
            log::warn!("failed to load module {name}: {why}");
            return State::Failed;
        }
    };
    let end_us = recorder::now_us();
    recorder::record(timeline::Event {
        start_us,
        end_us,
        lane: u32::try_from(lane).unwrap_or(u32::MAX),
        kind: timeline::Kind::Module,
        name: name.to_owned(),
    });
    match result {
        Ok(()) => {
            let thread = match lane {
                0 => String::new(),
                n => format!(" on thread {n}"),
            };
            log::info!(
                "loaded {name} in {} ms{thread} ({})",
                end_us.saturating_sub(start_us) / 1000,
                job.why
            );
            State::Loaded
        }
        Err(Errno::EEXIST) => State::Present,
        Err(Errno::ENODEV) => {
            log::info!("{name}: no device for this driver (ENODEV)");
            State::NoDevice
        }
        Err(errno) => {
            log::warn!(
                "failed to load module {name}: {}",
                explain_load_error(errno)
            );
            State::Failed
        }
    }
}

/// Hands the module file to the kernel. The outer error is the file's (it could not be
/// opened, read or unpacked), the inner one the kernel's answer.
fn insert_file(job: &Job) -> Result<nix::Result<()>, String> {
    if packed::is_packed(&job.path) {
        return packed::insert(&job.path, &job.params);
    }
    let file = File::open(&job.path).map_err(|e| format!("failed to open {}: {e}", job.path))?;
    Ok(finit_module(&file, &job.params, init_flags(&job.path)))
}

/// Why `finit_module` refused a module, in words that say what to change. The boot goes on:
/// the root may not need this module.
pub fn explain_load_error(errno: Errno) -> String {
    let why = match errno {
        Errno::ENOEXEC => {
            "it is not a module for this kernel (built for another version, or damaged); rebuild the image from this kernel's own modules"
        }
        Errno::EKEYREJECTED | Errno::EBADMSG | Errno::ENOKEY => {
            "its signature was refused (Secure Boot or module.sig_enforce); use the kernel's own signed modules"
        }
        Errno::ENOENT => {
            "it needs a symbol the kernel does not have (a dependency missing, or one from another kernel); dmesg names it"
        }
        Errno::EINVAL => "the kernel refused it (bad parameters, or a version mismatch); dmesg says which",
        Errno::EPERM => "loading modules is not allowed (kernel.modules_disabled or lockdown)",
        _ => "dmesg may say more",
    };
    format!("{errno}: {why}")
}

/// `MODULE_INIT_COMPRESSED_FILE` (include/uapi/linux/module.h, Linux 5.17+ built with
/// MODULE_DECOMPRESS): the kernel decompresses the module itself. Not in nix or libc yet.
const MODULE_INIT_COMPRESSED_FILE: libc::c_uint = 4;

/// Flags for a module file: compressed files (kept so by `--keep-module-compression`) are
/// handed to the kernel to decompress.
fn init_flags(path: &str) -> ModuleInitFlags {
    if [".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|s| path.ends_with(s))
    {
        ModuleInitFlags::from_bits_retain(MODULE_INIT_COMPRESSED_FILE)
    } else {
        ModuleInitFlags::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_failures_say_what_to_change() {
        assert!(explain_load_error(Errno::ENOEXEC).contains("not a module for this kernel"));
        assert!(explain_load_error(Errno::EKEYREJECTED).contains("signature was refused"));
        assert!(explain_load_error(Errno::ENOENT).starts_with("ENOENT: "));
    }
}
