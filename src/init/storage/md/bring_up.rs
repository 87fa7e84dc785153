//! MD RAID in the root search: each member read once as it appears, and each wanted array
//! started through the md driver as soon as every slot has a member, or degraded once the
//! wait for its missing members is over, with the `/dev/md/NAME` link mdadm would make.

use super::assembly::{
    arrays, level_name, uuid_hex, uuid_string, ArrayState, Readiness, SeenMember,
};
use super::kernel;
use super::member::{self, Role};
use super::naming;
use crate::cmdline::StackParams;
use crate::init::storage::nodes;
use crate::probe::ReadAt;
use crate::storage_names::ConfArray;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long an array short of members waits, after coldplug is done and since its last
/// member appeared, before it starts degraded: a disk that is coming has announced itself
/// by then (mdadm's udev rules wait for a timer of the same kind).
pub const DEGRADED_WAIT: Duration = Duration::from_secs(5);
/// At most this many members are read.
const MAX_MEMBERS: usize = 512;

pub struct Md {
    enabled: bool,
    uuids: Vec<String>,
    conf: Vec<ConfArray>,
    seen: Vec<SeenMember>,
    /// When each array's newest member appeared.
    last_member: BTreeMap<[u8; 16], Instant>,
    /// Arrays started (or given up on), and problems to report.
    done: BTreeSet<[u8; 16]>,
    problems: BTreeMap<[u8; 16], String>,
    /// Device names of members not read, and why.
    unreadable: BTreeMap<String, String>,
}

impl Md {
    pub fn new(params: &StackParams, conf: Vec<ConfArray>) -> Md {
        Md {
            enabled: params.md,
            uuids: params.md_uuids.clone(),
            conf: if params.md_conf { conf } else { Vec::new() },
            seen: Vec::new(),
            last_member: BTreeMap::new(),
            done: BTreeSet::new(),
            problems: BTreeMap::new(),
            unreadable: BTreeMap::new(),
        }
    }

    /// Reads the member on device `name` (`dev`) from `node`.
    pub fn add_member(&mut self, name: &str, dev: (u32, u32), node: &dyn ReadAt) {
        if !self.enabled || self.seen.len() >= MAX_MEMBERS {
            return;
        }
        let read = crate::probe::md::find(node)
            .ok_or("its superblock cannot be read")
            .and_then(|sb| member::read(&sb).ok_or("its superblock makes no sense"));
        match read {
            Ok(member) => {
                self.last_member.insert(member.array_uuid, Instant::now());
                self.seen.push(SeenMember {
                    name: name.to_owned(),
                    dev,
                    member,
                });
            }
            Err(why) => {
                log::warn!("{name} is an MD member baton cannot read: {why}");
                self.unreadable.insert(name.to_owned(), why.to_owned());
            }
        }
    }

    /// Starts what can start. `quiet` is whether the devices have settled (coldplug done);
    /// `last_chance` that the search is about to give up, so anything that can run degraded
    /// runs now. `load` loads a personality's module by alias. Returns the arrays started
    /// (`md0`).
    pub fn start(
        &mut self,
        quiet: bool,
        last_chance: bool,
        load: &mut dyn FnMut(&str),
    ) -> Vec<String> {
        let mut started = Vec::new();
        let mut decided = Vec::new();
        for array in arrays(&self.seen) {
            if self.done.contains(&array.uuid) || !self.wanted(&array) {
                continue;
            }
            let waited = self
                .last_member
                .get(&array.uuid)
                .map_or(true, |t| t.elapsed() >= DEGRADED_WAIT);
            let outcome = match array.readiness() {
                Readiness::Complete => Some(self.run(&array, load)),
                Readiness::Degraded(missing) if last_chance || (quiet && waited) => {
                    log::warn!(
                        "{}: starting degraded, without slot {}",
                        array.describe(),
                        missing
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    Some(self.run(&array, load))
                }
                Readiness::CannotRun(why) if last_chance || (quiet && waited) => {
                    Some(Err(format!("{}: cannot start: {why}", array.describe())))
                }
                _ => None,
            };
            match outcome {
                Some(Ok(node)) => {
                    started.push(node);
                    decided.push((array.uuid, None));
                }
                Some(Err(why)) => {
                    log::warn!("{why}");
                    decided.push((array.uuid, Some(why)));
                }
                None => {}
            }
        }
        for (uuid, problem) in decided {
            self.done.insert(uuid);
            if let Some(why) = problem {
                self.problems.insert(uuid, why);
            }
        }
        started
    }

    fn wanted(&self, array: &ArrayState<'_>) -> bool {
        naming::wanted(
            &uuid_hex(&array.uuid),
            array.name(),
            &self.uuids,
            &self.conf,
        )
    }

    fn run(&self, array: &ArrayState<'_>, load: &mut dyn FnMut(&str)) -> Result<String, String> {
        let newest = array
            .members
            .iter()
            .map(|s| &s.member)
            .max_by_key(|m| m.events)
            .ok_or("no members")?;
        let conf = naming::conf_entry(&uuid_hex(&array.uuid), array.name(), &self.conf);
        let naming = naming::choose(newest.preferred_minor, array.name(), conf, &kernel::taken)
            .ok_or("no free md device number")?;
        load("md_mod");
        load(&format!("md-level-{}", newest.level));
        // Members in slot order, spares last, as mdadm adds them.
        let mut members: Vec<&SeenMember> = array.members.clone();
        // Spares (all u64::MAX) keep no order of their own: by name, so the sort need
        // not be stable (the init carries one sort algorithm, not two).
        members.sort_unstable_by_key(|s| {
            let slot = match s.member.role {
                Role::Active(slot) => u64::from(slot),
                _ => u64::MAX,
            };
            (slot, s.name.clone())
        });
        let devices: Vec<(String, (u32, u32))> =
            members.iter().map(|s| (s.name.clone(), s.dev)).collect();
        let refused = kernel::start(naming.number, array.version(), &devices)?;
        for why in &refused {
            log::warn!("md{}: the kernel refused member {why}", naming.number);
        }
        let node = format!("md{}", naming.number);
        log::info!(
            "started {} {} (UUID {}) from {} as /dev/{node}",
            level_name(newest.level),
            array.name().unwrap_or(""),
            uuid_string(&array.uuid),
            devices
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(link) = &naming.link {
            if let Err(e) = nodes::link(&format!("md/{link}"), &node) {
                log::warn!("cannot link /dev/md/{link}: {e}");
            }
        }
        Ok(node)
    }

    /// What the member on device `name` belongs to, for messages.
    pub fn describe(&self, name: &str) -> Option<String> {
        if let Some(why) = self.unreadable.get(name) {
            return Some(format!("an MD member baton cannot read ({why})"));
        }
        let seen = self.seen.iter().find(|s| s.name == name)?;
        let all = arrays(&self.seen);
        let array = all.iter().find(|a| a.uuid == seen.member.array_uuid)?;
        let role = match seen.member.role {
            Role::Active(slot) => format!("slot {slot}"),
            Role::Spare => "a spare".into(),
            Role::Faulty => "a faulty member".into(),
        };
        Some(format!("{role} of {}", array.describe()))
    }

    pub fn problems(&self) -> Vec<String> {
        self.problems.values().cloned().collect()
    }
}
