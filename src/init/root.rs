//! From `root=` to the device it names: waiting for it, loading drivers as hardware
//! appears and bringing up the storage stacks (LVM, MD) whose members show up. Mounting it
//! is `root_mount`.

use crate::cmdline::{CryptParams, StackParams};
use crate::init::coldplug::Plan;
use crate::init::devices::Registry;
use crate::init::modules::load::Loader;
use crate::init::storage::stack::Stack;
use crate::init::uevent::Listener;
use crate::rootspec::Record;
use crate::rootspec::{self, RootSpec};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The device the root was found on.
#[derive(Debug, Clone)]
pub struct Found {
    pub device: PathBuf,
    /// The filesystem the probe saw, if any.
    pub fstype: Option<String>,
}

/// Waits for the device `spec` names, loading drivers for the hardware as it shows up, and
/// returns as soon as a probed device matches. `limit` of `None` waits for ever, with a
/// progress line every few seconds naming what it waits for and what it has seen.
///
/// Drivers for the devices present (coldplug) are loaded in steps (`coldplug.rs`): PCI's
/// likeliest root controllers first, then the other buses, then the rest of PCI in tiers,
/// each only once the devices of the previous one have settled without the root among them: a root on virtio or NVMe never waits for the slow
/// probing of a legacy IDE controller it does not need. Devices the kernel announces later
/// (a disk behind a controller just loaded, a hot-plugged one) get their drivers at once.
pub fn wait_for_root(
    spec: &RootSpec,
    limit: Option<Duration>,
    loader: &mut Loader<'_>,
) -> Result<Found> {
    let (stack, crypt) = (StackParams::default(), CryptParams::default());
    wait_for_devices(spec, None, (&stack, &crypt), limit, false, loader).map(|(root, _)| root)
}

/// [`wait_for_root`], and then, when `resume=` names one, the device holding a hibernation
/// image. That one is looked for only until every coldplug driver has loaded and the
/// devices have settled (as `rootwait=0` waits for the root): a swap device that is not
/// there by then is not coming, and a boot without hibernation must not wait for it.
/// LVM and MD members and LUKS volumes met on the way are brought up as `stack` says.
/// `hinted`: the drivers on the root's path were asked for already (the image's hint), so
/// the first look comes before coldplug, which starts only if the root is not there.
pub fn wait_for_devices(
    spec: &RootSpec,
    resume: Option<&RootSpec>,
    stack: (&StackParams, &CryptParams),
    limit: Option<Duration>,
    hinted: bool,
    loader: &mut Loader<'_>,
) -> Result<(Found, Option<Found>)> {
    let mut search = Search::start(loader, hinted);
    search.stack = Some(Stack::new(stack.0, stack.1, spec, resume));
    let found = search.find("root", spec, limit);
    // A volume named to be unlocked that could not be ends the search, with its reason.
    if let Some(fatal) = search.stack.as_ref().and_then(Stack::fatal) {
        return Err(anyhow::anyhow!("{fatal}"));
    }
    let root = found.map_err(|seen| {
        anyhow::anyhow!(
            "root device {spec} did not appear within {} s (block devices present: {seen}); check root= and that the image has the disk's driver, or add rootwait",
            limit.map_or(0, |l| l.as_secs()),
        )
    })?;
    let Some(resume) = resume else {
        return Ok((root, None));
    };
    // A limit of nothing: as long as coldplug goes on, and at most its grace period.
    match search.find("resume", resume, Some(Duration::ZERO)) {
        Ok(found) => Ok((root, Some(found))),
        Err(seen) => {
            log::warn!(
                "resume device {resume} is not there (block devices present: {seen}): booting without resuming"
            );
            Ok((root, None))
        }
    }
}

/// Waits for something that is not a block device (a host directory's tag): tries `look`
/// until it finds it (`Ok(Some)`), fails (`Err`), or [`gives_up`] says to stop, loading the
/// drivers of the devices that appear meanwhile, as the root device search does.
/// `Ok(None)` when it gave up.
pub fn wait_until<T>(
    what: &str,
    limit: Option<Duration>,
    loader: &mut Loader<'_>,
    mut look: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let mut search = Search::start(loader, false);
    loop {
        if let Some(found) = look()? {
            log::info!(
                "found {what} after {} ms",
                search.started.elapsed().as_millis()
            );
            return Ok(Some(found));
        }
        let waited = search.started.elapsed();
        if gives_up(waited, limit, search.coldplug_done()) {
            return Ok(None);
        }
        if waited >= search.next_report {
            log::warn!("still waiting for {what} after {} s", waited.as_secs());
            search.next_report += PROGRESS_EVERY;
        }
        if matches!(search.listener, Listening::NotYet) {
            search.listen();
            continue;
        }
        if !search.load_next_tier() {
            search.wait_for_events(limit);
        }
    }
}

/// Whether to stop looking: the limit has passed and every coldplug driver has had its
/// chance (so `rootwait=0` still loads the disk's driver before giving up), or the limit and
/// a grace period for a coldplug that never settles have both passed.
pub fn gives_up(waited: Duration, limit: Option<Duration>, coldplug_done: bool) -> bool {
    match limit {
        None => false,
        Some(limit) => waited >= limit && (coldplug_done || waited >= limit + COLDPLUG_GRACE),
    }
}

/// The state of one search for the root.
struct Search<'l, 'm> {
    loader: &'l mut Loader<'m>,
    listener: Listening,
    /// Coldplug's steps still to take.
    coldplug: Plan,
    /// Coldplug is still to start: it does when the search starts listening, at once or,
    /// when the image's hint asked for the root's drivers, after a first look.
    coldplug_pending: bool,
    tiers_loaded: usize,
    registry: Registry,
    started: Instant,
    /// When the last device event arrived (or the last tier was loaded).
    last_event: Instant,
    next_report: Duration,
    /// LVM and MD, brought up as their members appear (the root search's only).
    stack: Option<Stack>,
}

impl<'l, 'm> Search<'l, 'm> {
    /// `hinted`: the drivers on the root's path were asked for already.
    fn start(loader: &'l mut Loader<'m>, hinted: bool) -> Search<'l, 'm> {
        // An image whose modules were all named at build time is loaded already: nothing
        // for coldplug to add, and the device is usually there at the first look, which
        // needs no events. Coldplug does: listen before it, so no device added meanwhile
        // is missed. With the root's drivers asked for by the image's hint, the first look
        // comes first too: on the machine the image was made for the root is there (on one
        // CPU the drivers loaded in this thread), and coldplug, which reads every device
        // and matches each against every alias, is not needed at all.
        let coldplug = loader.has_untried();
        let started = Instant::now();
        let mut search = Search {
            loader,
            listener: Listening::NotYet,
            coldplug: Plan::default(),
            coldplug_pending: coldplug,
            tiers_loaded: 0,
            registry: Registry::default(),
            started,
            last_event: started.checked_sub(SETTLE).unwrap_or(started),
            next_report: PROGRESS_EVERY,
            stack: None,
        };
        if coldplug && !hinted {
            search.listen();
        }
        search
    }

    /// Listens for device events from now on, and starts coldplug if it is still to: the
    /// devices already there are read once the socket is open, so that none added between
    /// the two is missed.
    fn listen(&mut self) {
        self.listener = Listening::open();
        if !self.coldplug_pending {
            return;
        }
        self.coldplug_pending = false;
        let scan_started = Instant::now();
        let (plan, devices) = Plan::start();
        log::info!(
            "coldplug: {devices} PCI devices, listed in {} ms",
            scan_started.elapsed().as_millis()
        );
        self.coldplug = plan;
        self.last_event = Instant::now()
            .checked_sub(SETTLE)
            .unwrap_or_else(Instant::now);
    }

    /// Looks for the device `spec` names (`what` it is, for the log) until it appears, or
    /// until [`gives_up`] says to stop: then the devices that were there, described.
    fn find(
        &mut self,
        what: &str,
        spec: &RootSpec,
        limit: Option<Duration>,
    ) -> Result<Found, String> {
        loop {
            if let Some(found) = self.look_at_named(what, spec, limit) {
                return Ok(found);
            }
            let patience = self.patience(limit);
            self.registry.refresh(patience);
            let records = self.registry.records();
            if let Some(found) = self.matching(what, spec, &records) {
                return Ok(found);
            }
            let quiet = self.coldplug_done();
            let waited = self.started.elapsed();
            let last_chance = gives_up(waited, limit, quiet);
            // Arrays still waiting for members start degraded at the last chance, if they can.
            let made = self.advance_stack(&records, quiet || last_chance, last_chance);
            if self.stack.as_ref().and_then(Stack::fatal).is_some() {
                return Err(String::new());
            }
            if !made.is_empty() {
                if let Some(found) = self.made_matching(what, spec, &made) {
                    return Ok(found);
                }
                continue;
            }
            if last_chance {
                return Err(self.seen(&records));
            }
            self.report_progress(what, spec, waited, &records);
            // Listening from now on, then a second look: nothing added between the first
            // look and the socket is missed.
            if matches!(self.listener, Listening::NotYet) {
                self.listen();
                continue;
            }
            if !self.load_next_tier() {
                self.wait_for_events(limit);
            }
        }
    }

    /// `root=/dev/NAME`, the usual form for a VM: that device alone, before every look at
    /// all of them, from its node, then as sysfs describes it. The node's record is not
    /// kept: the full look (partition numbers, PARTUUIDs) is what later searches match
    /// against. The node first only when no driver is still loading: devtmpfs makes a disk's
    /// node before the disk is open for business, and an open in between makes the kernel
    /// ask its module helper for `block-major-N` (measured at -smp 2, where the search runs
    /// beside the loading threads: two such requests, 150 ms). sysfs first then.
    fn look_at_named(
        &mut self,
        what: &str,
        spec: &RootSpec,
        limit: Option<Duration>,
    ) -> Option<Found> {
        let name = spec.kernel_name()?;
        let settled = !self.loader.busy();
        let patience = self.patience(limit);
        // The named device's node is read here, not on a probe thread: a thread costs this
        // path 35 ms under an emulated CPU (root search 20 -> 57 ms, medians of 10 at
        // -smp 1), and a root that never answers cannot boot anyway (its kernel would wait
        // as long). Every other device is probed on a thread.
        if let Some(record) = settled
            .then(|| crate::init::devices::probe_node(name))
            .flatten()
        {
            if let Some(found) = self.matching(what, spec, std::slice::from_ref(&record)) {
                return Some(found);
            }
        }
        self.registry.look_at(name, patience);
        self.matching(what, spec, &self.registry.records())
    }

    /// Until when a look at the devices waits for their probes: a second, or less when the
    /// limit comes sooner, so that a device that never answers holds neither the limit nor
    /// the loading of drivers for devices that appear meanwhile.
    fn patience(&self, limit: Option<Duration>) -> Instant {
        let now = Instant::now();
        let mut until = now + PROBE_PATIENCE;
        if let Some(end) = limit.map(|l| self.started + l) {
            if end > now {
                until = until.min(end);
            }
        }
        until
    }

    fn advance_stack(&mut self, records: &[Record], quiet: bool, last_chance: bool) -> Vec<String> {
        match &mut self.stack {
            Some(stack) => stack.advance(records, self.loader, quiet, last_chance),
            None => Vec::new(),
        }
    }

    /// The device `spec` names among those the stack just made, read from their nodes
    /// here: they are made of devices that answered, and a probe thread would cost this
    /// path tens of ms under an emulated CPU.
    fn made_matching(&self, what: &str, spec: &RootSpec, made: &[String]) -> Option<Found> {
        let records: Vec<Record> = made
            .iter()
            .filter_map(|name| crate::init::devices::probe_node(name))
            .collect();
        self.matching(what, spec, &records)
    }

    /// The devices present (what each stack member belongs to), those that did not
    /// answer, and the volumes that could not come up, for messages.
    fn seen(&self, records: &[Record]) -> String {
        let mut said = seen(records, |r| self.stack.as_ref().and_then(|s| s.describe(r)));
        let silent = self.registry.not_answering();
        if !silent.is_empty() {
            said.push_str(&format!("; not answering: {}", silent.join(", ")));
        }
        for problem in self.stack.iter().flat_map(Stack::problems) {
            said.push_str(&format!("; {problem}"));
        }
        said
    }

    /// The device `spec` names among `records`, if it is there.
    fn matching(&self, what: &str, spec: &RootSpec, records: &[Record]) -> Option<Found> {
        let found = rootspec::find(spec, records);
        if let Some(first) = found.first() {
            if found.len() > 1 {
                let all: Vec<&str> = found.iter().map(|r| r.name.as_str()).collect();
                log::warn!(
                    "{what}={spec} matches {}; using {}",
                    all.join(", "),
                    first.name
                );
            }
            log::info!(
                "{what} {spec} is {} (after {} ms)",
                first.describe(),
                self.started.elapsed().as_millis()
            );
            return Some(Found {
                device: PathBuf::from(mapper_node(first).unwrap_or_else(|| first.node())),
                fstype: first.fs.as_ref().map(|f| f.fstype.clone()),
            });
        }
        // A path udev or device-mapper would make (/dev/mapper/root) is not a kernel name:
        // take it once the node exists. A kernel name (/dev/vda) waits for its record: its
        // node can appear between a failed open and this check, and the record brings the
        // probed filesystem.
        match spec {
            RootSpec::Path(path) if spec.kernel_name().is_none() && is_block_device(path) => {
                // A link to a device probed already (/dev/vg0/root -> ../dm-0) brings what
                // the probe saw.
                let target = std::fs::canonicalize(path).ok();
                let name = target.as_ref().and_then(|t| t.strip_prefix("/dev").ok());
                let record = records.iter().find(|r| name == Some(Path::new(&r.name)));
                Some(Found {
                    device: PathBuf::from(path),
                    fstype: record.and_then(|r| r.fs.as_ref()).map(|f| f.fstype.clone()),
                })
            }
            _ => None,
        }
    }

    /// Every coldplug tier is loaded and the devices have gone quiet.
    fn coldplug_done(&self) -> bool {
        !self.coldplug_pending && self.coldplug.is_empty() && self.settled()
    }

    /// No device event for a while, and no driver still loading (on another thread) that
    /// may yet announce a device.
    fn settled(&self) -> bool {
        self.last_event.elapsed() >= SETTLE && !self.loader.busy()
    }

    fn report_progress(
        &mut self,
        what: &str,
        spec: &RootSpec,
        waited: Duration,
        records: &[Record],
    ) {
        if waited >= self.next_report {
            log::warn!(
                "still waiting for {what} device {spec} after {} s (block devices present: {})",
                waited.as_secs(),
                self.seen(records)
            );
            self.next_report += PROGRESS_EVERY;
        }
    }

    /// Loads the next coldplug step once the devices of the last one have settled (the
    /// first at once: modules asked for before it, such as the root's expected filesystem,
    /// bring no devices to wait for; the other buses once the drivers asked for are in and
    /// the devices they announced are handled). Returns whether it did something (then
    /// look at the devices again at once).
    fn load_next_tier(&mut self) -> bool {
        if self.coldplug.is_empty() {
            return false;
        }
        if self.tiers_loaded > 0 {
            if self.coldplug.next_waits_to_settle() {
                if !self.settled() {
                    return false;
                }
            } else if self.loader.busy() {
                return false;
            } else if self.take_events(Duration::ZERO) {
                return true;
            }
        }
        let Some(tier) = self.coldplug.take_next() else {
            return false;
        };
        for alias in tier {
            self.loader.load_alias(&alias);
        }
        self.tiers_loaded += 1;
        self.last_event = Instant::now();
        true
    }

    /// Sleeps until a device event, the next rescan, progress line, tier or the limit;
    /// loads the driver for every device added meanwhile.
    fn wait_for_events(&mut self, limit: Option<Duration>) {
        let waited = self.started.elapsed();
        let mut wait = self.next_report.saturating_sub(waited).min(RESCAN_EVERY);
        // Up to the limit, not past it: once it has passed, the search goes on only until
        // coldplug settles, and must sleep between looks rather than spin.
        if let Some(left) = limit.map(|l| l.saturating_sub(waited)) {
            if !left.is_zero() {
                wait = wait.min(left);
            }
        }
        if !self.coldplug.is_empty() {
            // Until the devices settle; once they have, only drivers still loading hold
            // the next tier back, and they announce nothing when they find no device. The
            // other buses wait only for the drivers.
            let settle_left = SETTLE.saturating_sub(self.last_event.elapsed());
            wait = wait.min(
                if settle_left.is_zero() || !self.coldplug.next_waits_to_settle() {
                    POLL_WITHOUT_EVENTS
                } else {
                    settle_left
                },
            );
        }
        if matches!(self.listener, Listening::Open(_)) {
            self.take_events(wait);
        } else {
            std::thread::sleep(wait.min(POLL_WITHOUT_EVENTS));
        }
    }

    /// Takes the device events that come within `wait`, loading the driver of every device
    /// added. Returns whether one was about a device (not a module's own).
    fn take_events(&mut self, wait: Duration) -> bool {
        let Listening::Open(listener) = &self.listener else {
            return false;
        };
        let received = listener.wait(wait);
        let mut devices = false;
        for event in &received.events {
            // A module's own event (its entry in /sys/module) is no device: the loader
            // knows when a load ends.
            if event.subsystem.as_deref() != Some("module") {
                self.last_event = Instant::now();
                devices = true;
            }
            if let (Some(alias), "add") = (&event.modalias, event.action.as_str()) {
                self.loader.load_alias(alias);
            }
        }
        if received.overflowed {
            // Dropped events may have announced devices that need a driver: read every
            // device's modalias again, as coldplug did (drivers tried already are skipped).
            self.last_event = Instant::now();
            devices = true;
            let aliases = crate::init::coldplug::all_aliases();
            log::info!(
                "device events were lost (socket buffer full): rescanned {} devices",
                aliases.len()
            );
            for alias in aliases {
                self.loader.load_alias(&alias);
            }
        }
        devices
    }
}

/// The search's socket for the kernel's device events.
enum Listening {
    /// Not needed yet: the first look at the devices comes first.
    NotYet,
    Open(Listener),
    /// The socket could not be opened: the search polls.
    Failed,
}

impl Listening {
    fn open() -> Listening {
        match Listener::open() {
            Ok(listener) => Listening::Open(listener),
            Err(errno) => {
                log::warn!("cannot listen for device events ({errno}); polling instead");
                Listening::Failed
            }
        }
    }
}

/// How long the device events must pause before the next tier of drivers is loaded.
const SETTLE: Duration = Duration::from_millis(250);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Even with events, look at sysfs again now and then: an event can be lost when the socket
/// buffer overflows.
const RESCAN_EVERY: Duration = Duration::from_millis(500);
const POLL_WITHOUT_EVENTS: Duration = Duration::from_millis(20);
/// How long one look waits for a device's probe: far longer than a healthy disk takes to
/// give its first KiB, even emulated; a disk that takes longer is looked at again later.
const PROBE_PATIENCE: Duration = Duration::from_secs(1);
/// How long past the limit a coldplug that keeps announcing devices may go on.
const COLDPLUG_GRACE: Duration = Duration::from_secs(10);

/// A device-mapper device's `/dev/mapper/NAME`, the name the real system mounts it by.
fn mapper_node(record: &Record) -> Option<String> {
    record.name.strip_prefix("dm-")?;
    let sys = format!("/sys/block/{}/dm/name", record.name);
    let name = crate::bounded::read_bounded(&sys, 256).ok()?;
    let node = format!("/dev/mapper/{}", String::from_utf8(name).ok()?.trim());
    is_block_device(&node).then_some(node)
}

fn seen(records: &[Record], member_of: impl Fn(&Record) -> Option<String>) -> String {
    if records.is_empty() {
        return "none".to_owned();
    }
    records
        .iter()
        .map(|r| match member_of(r) {
            Some(what) => format!("{}: {what}", r.describe()),
            None => r.describe(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_block_device(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootwait_zero_still_lets_coldplug_finish() {
        let zero = Some(Duration::ZERO);
        assert!(
            !gives_up(Duration::ZERO, zero, false),
            "drivers not loaded yet"
        );
        assert!(gives_up(Duration::ZERO, zero, true));
        assert!(!gives_up(Duration::from_secs(9), zero, false));
        assert!(
            gives_up(COLDPLUG_GRACE, zero, false),
            "a coldplug that never settles"
        );
        assert!(!gives_up(
            Duration::from_secs(2),
            Some(Duration::from_secs(3)),
            true
        ));
        assert!(gives_up(
            Duration::from_secs(3),
            Some(Duration::from_secs(3)),
            true
        ));
        assert!(
            !gives_up(Duration::from_secs(3600), None, true),
            "rootwait: for ever"
        );
    }
}
