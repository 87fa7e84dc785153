//! The init's side of the timeline: events recorded from whichever thread runs the step,
//! written to `/run/baton/timeline` at the switch. The model and the file format are in
//! `crate::timeline`.

use crate::timeline::{render, summary, Event, Kind, MAX_EVENTS, PATH};
use std::sync::Mutex;

/// Microseconds on `CLOCK_MONOTONIC`; 0 if the clock cannot be read (it always can).
pub fn now_us() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0) / 1000
        })
        .unwrap_or(0)
}

/// The events of this boot so far. A process-wide list, since the module loaders and the
/// boot's steps record into it from wherever they run.
static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());

/// Adds an event (past the bound it is dropped: the timeline is for reading, not for
/// failing the boot).
pub fn record(event: Event) {
    let mut events = EVENTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if events.len() < MAX_EVENTS {
        events.push(event);
    }
}

/// A step of the boot from now until the returned guard is dropped.
pub fn phase(name: &str) -> Phase {
    Phase {
        name: name.to_owned(),
        start_us: now_us(),
    }
}

pub struct Phase {
    name: String,
    start_us: u64,
}

impl Drop for Phase {
    fn drop(&mut self) {
        record(Event {
            start_us: self.start_us,
            end_us: now_us(),
            lane: 0,
            kind: Kind::Phase,
            name: std::mem::take(&mut self.name),
        });
    }
}

/// An instant worth noting (the exec of the real init); returns it.
pub fn mark(name: &str) -> u64 {
    let now = now_us();
    record(Event {
        start_us: now,
        end_us: now,
        lane: 0,
        kind: Kind::Mark,
        name: name.to_owned(),
    });
    now
}

/// Every event so far, in the order they began.
pub fn snapshot() -> Vec<Event> {
    let mut events = EVENTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    // Ties by name: the same order every time, without a stable sort.
    events.sort_unstable_by(|a, b| {
        (a.start_us, a.end_us, &a.name).cmp(&(b.start_us, b.end_us, &b.name))
    });
    events
}

/// Writes the file (creating `/run/baton`) and logs the summary. Failure to write is a
/// warning: the boot does not depend on it.
pub fn save() {
    let events = snapshot();
    if let Err(why) = write_in(std::path::Path::new("/run"), &render(&events)) {
        log::warn!("not writing {PATH}: {why}");
    }
    log::info!("{}", summary(&events));
}

/// Writes `text` to `baton/timeline` under `run`, only when `run` is a tmpfs (or ramfs):
/// the /run that moved into the new root. When the new root had no /run directory, ours
/// was detached at the switch, and `/run` is then a directory of the real root's disk,
/// which a boot must not write to.
pub fn write_in(run: &std::path::Path, text: &str) -> Result<(), String> {
    let fs = nix::sys::statfs::statfs(run).map_err(|e| format!("{}: {e}", run.display()))?;
    if !crate::init::rmrf::is_ram_filesystem_type(fs.filesystem_type()) {
        return Err(format!(
            "{} is not a tmpfs (the new root had no /run to move it to)",
            run.display()
        ));
    }
    let dir = run.join("baton");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("timeline"), text))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_only_to_a_tmpfs() {
        // The source tree is usually on a disk, /dev/shm a tmpfs.
        let on_ram = |p: &std::path::Path| {
            crate::init::rmrf::is_ram_filesystem_type(
                nix::sys::statfs::statfs(p).unwrap().filesystem_type(),
            )
        };
        let disk = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        if !on_ram(disk) {
            let err = write_in(disk, "x").unwrap_err();
            assert!(err.contains("is not a tmpfs"), "{err}");
            assert!(!disk.join("baton/timeline").exists());
        }
        let shm = std::path::Path::new("/dev/shm");
        if on_ram(shm) {
            let run = shm.join(format!("baton-timeline-{}", std::process::id()));
            std::fs::create_dir_all(&run).unwrap();
            write_in(&run, "x").unwrap();
            assert_eq!(
                std::fs::read_to_string(run.join("baton/timeline")).unwrap(),
                "x"
            );
            std::fs::remove_dir_all(&run).unwrap();
        }
    }
}
