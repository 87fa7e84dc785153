//! Arrays put together from the members seen so far, and whether each can start: complete
//! (every slot has a current member), degraded (short of members the level can do without,
//! started only once the wait for them is over), or not at all (raid0 or linear short of a
//! member, more missing than the redundancy covers). Pure: members come in, decisions go
//! out; the kernel's md driver does the assembly itself.

use super::member::{Member, Role};

/// One member as seen on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenMember {
    /// The device's kernel name (`vdb`) and number.
    pub name: String,
    pub dev: (u32, u32),
    pub member: Member,
}

/// What an array's members allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Every slot has a current member.
    Complete,
    /// Slots without a current member (named by number), which the level can do without.
    Degraded(Vec<u32>),
    /// Why it cannot start with the members here.
    CannotRun(String),
}

/// An array as far as its members have been seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayState<'a> {
    pub uuid: [u8; 16],
    pub members: Vec<&'a SeenMember>,
}

impl ArrayState<'_> {
    /// The member whose superblock describes the array: the newest.
    fn newest(&self) -> Option<&Member> {
        self.members
            .iter()
            .map(|s| &s.member)
            .max_by_key(|m| m.events)
    }

    pub fn version(&self) -> &'static str {
        self.newest().map_or("1.2", |m| m.version)
    }

    /// The 1.x name (`host:name`).
    pub fn name(&self) -> Option<&str> {
        self.newest().and_then(|m| m.name.as_deref())
    }

    pub fn level(&self) -> i32 {
        self.newest().map_or(0, |m| m.level)
    }

    /// The members the kernel will take as current: within one event of the newest (a
    /// member one behind missed only the final clean mark, as md itself allows).
    fn current(&self) -> impl Iterator<Item = &SeenMember> {
        let newest = self.newest().map_or(0, |m| m.events);
        self.members
            .iter()
            .copied()
            .filter(move |s| s.member.events.saturating_add(1) >= newest)
    }

    /// Slots with no current member, and the slots the array has.
    fn missing_slots(&self) -> Vec<u32> {
        let raid_disks = self.newest().map_or(0, |m| m.raid_disks);
        // Bounded by MAX_RAID_DISKS in readiness(): a superblock's count is the disk's say.
        (0..raid_disks.min(MAX_RAID_DISKS))
            .filter(|slot| !self.current().any(|s| s.member.role == Role::Active(*slot)))
            .collect()
    }

    pub fn readiness(&self) -> Readiness {
        let Some(newest) = self.newest() else {
            return Readiness::CannotRun("no members".into());
        };
        if newest.raid_disks == 0 || newest.raid_disks > MAX_RAID_DISKS {
            return Readiness::CannotRun(format!(
                "its superblock says it has {} devices",
                newest.raid_disks
            ));
        }
        if newest.features & !super::member::KNOWN_FEATURES != 0 {
            return Readiness::CannotRun(format!(
                "its superblock has features baton leaves to mdadm (0x{:x}: a reshape in progress?)",
                newest.features
            ));
        }
        let missing = self.missing_slots();
        if missing.is_empty() {
            return Readiness::Complete;
        }
        let spare = match newest.level {
            1 => newest.raid_disks - 1,
            4 | 5 => 1,
            6 => 2,
            // Near copies on an n-disk raid10: a neighbour's loss is survivable, the
            // kernel decides which; one missing always is.
            10 => 1,
            _ => 0,
        };
        if missing.len() as u32 > spare {
            return Readiness::CannotRun(format!(
                "{} is missing {} of {} devices (slot{} {}), more than it can run without",
                level_name(newest.level),
                missing.len(),
                newest.raid_disks,
                if missing.len() == 1 { "" } else { "s" },
                list(&missing),
            ));
        }
        Readiness::Degraded(missing)
    }

    /// What the array is, for messages: `RAID1 array baton:md12 (UUID ...), 1 of 2 devices`.
    pub fn describe(&self) -> String {
        let raid_disks = self.newest().map_or(0, |m| m.raid_disks);
        let present = raid_disks.saturating_sub(self.missing_slots().len() as u32);
        let mut said = format!("{} array", level_name(self.level()));
        if let Some(name) = self.name() {
            said.push_str(&format!(" {name}"));
        }
        said.push_str(&format!(
            " (UUID {}), {present} of {raid_disks} devices here",
            uuid_string(&self.uuid)
        ));
        said
    }
}

/// The most devices an array may claim: md's own limit for 1.x is 1920, and no root needs
/// more than this.
const MAX_RAID_DISKS: u32 = 256;

/// The arrays the members seen belong to, in the order first seen.
pub fn arrays(seen: &[SeenMember]) -> Vec<ArrayState<'_>> {
    let mut out: Vec<ArrayState<'_>> = Vec::new();
    for s in seen {
        match out.iter_mut().find(|a| a.uuid == s.member.array_uuid) {
            Some(array) => array.members.push(s),
            None => out.push(ArrayState {
                uuid: s.member.array_uuid,
                members: vec![s],
            }),
        }
    }
    out
}

/// The array UUID as mdadm writes it: four groups of eight hex digits, colon-separated.
pub fn uuid_string(uuid: &[u8; 16]) -> String {
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    let groups: Vec<&str> = (0..4).filter_map(|i| hex.get(i * 8..i * 8 + 8)).collect();
    groups.join(":")
}

/// The UUID as 32 hex digits, as `rd.md.uuid=` is compared.
pub fn uuid_hex(uuid: &[u8; 16]) -> String {
    uuid.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn level_name(level: i32) -> String {
    match level {
        -1 => "linear".into(),
        n => format!("RAID{n}"),
    }
}

fn list(slots: &[u32]) -> String {
    let names: Vec<String> = slots.iter().map(u32::to_string).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(uuid: u8, level: i32, raid_disks: u32, role: Role, events: u64) -> Member {
        Member {
            version: "1.2",
            array_uuid: [uuid; 16],
            name: Some("host:data".into()),
            preferred_minor: None,
            level,
            layout: 0,
            chunk_sectors: 0,
            raid_disks,
            role,
            events,
            data_offset: 2048,
            features: 0,
        }
    }

    fn seen(name: &str, member: Member) -> SeenMember {
        SeenMember {
            name: name.into(),
            dev: (254, 0),
            member,
        }
    }

    #[test]
    fn members_group_by_array() {
        let all = [
            seen("vda", member(1, 1, 2, Role::Active(0), 10)),
            seen("vdb", member(2, 0, 2, Role::Active(0), 10)),
            seen("vdc", member(1, 1, 2, Role::Active(1), 10)),
        ];
        let arrays = arrays(&all);
        assert_eq!(arrays.len(), 2);
        assert_eq!(arrays[0].readiness(), Readiness::Complete);
        assert_eq!(
            arrays[1].readiness(),
            Readiness::CannotRun(
                "RAID0 is missing 1 of 2 devices (slot 1), more than it can run without".into()
            )
        );
        assert_eq!(
            arrays[1].describe(),
            "RAID0 array host:data (UUID 02020202:02020202:02020202:02020202), 1 of 2 devices here"
        );
    }

    #[test]
    fn redundancy_decides_what_runs_degraded() {
        for (level, disks, have, runs) in [
            (1, 2, 1, true),
            (5, 3, 2, true),
            (5, 3, 1, false),
            (6, 4, 2, true),
            (-1, 2, 1, false),
            (10, 4, 3, true),
        ] {
            let all: Vec<SeenMember> = (0..have)
                .map(|slot| seen("vd", member(7, level, disks, Role::Active(slot), 5)))
                .collect();
            let r = arrays(&all)[0].readiness();
            assert_eq!(matches!(r, Readiness::Degraded(_)), runs, "{level} {r:?}");
        }
    }

    #[test]
    fn a_stale_member_does_not_fill_its_slot() {
        let all = [
            seen("vda", member(1, 1, 2, Role::Active(0), 20)),
            seen("vdb", member(1, 1, 2, Role::Active(1), 12)),
        ];
        assert_eq!(arrays(&all)[0].readiness(), Readiness::Degraded(vec![1]));
        // One event behind is current: the kernel takes it.
        let all = [
            seen("vda", member(1, 1, 2, Role::Active(0), 20)),
            seen("vdb", member(1, 1, 2, Role::Active(1), 19)),
        ];
        assert_eq!(arrays(&all)[0].readiness(), Readiness::Complete);
    }

    #[test]
    fn hostile_counts_and_features_are_refused() {
        let all = [seen("vda", member(1, 1, u32::MAX, Role::Active(0), 1))];
        assert!(matches!(
            arrays(&all)[0].readiness(),
            Readiness::CannotRun(_)
        ));
        let mut reshaping = member(1, 5, 3, Role::Active(0), 1);
        reshaping.features = 0x4;
        let all = [seen("vda", reshaping)];
        assert!(matches!(
            arrays(&all)[0].readiness(),
            Readiness::CannotRun(_)
        ));
    }

    #[test]
    fn uuid_forms() {
        let mut uuid = [0u8; 16];
        uuid[3] = 2;
        uuid[4] = 0xba;
        uuid[5] = 0x70;
        assert_eq!(uuid_string(&uuid), "00000002:ba700000:00000000:00000000");
        assert_eq!(uuid_hex(&uuid), "00000002ba7000000000000000000000");
    }
}
