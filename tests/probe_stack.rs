//! The members of storage stacks, on disks the real lvm2, mdadm and cryptsetup made
//! (qemu/make-stack-disks, in a VM: this machine has no device-mapper or md driver): every
//! probe against `blkid -p`, and a boot that finds a member where a root was asked for.

mod common;

use baton::probe::probe_filesystem;
use common::{assert_has, kernel, stack_disks as disks, Boot};
use std::collections::BTreeMap;
use std::path::Path;

/// blkid's fields, without the file's name and the usage class (the probe has neither).
fn blkid(image: &Path) -> BTreeMap<String, String> {
    let mut fields = common::blkid(image);
    fields.remove("DEVNAME");
    fields.remove("USAGE");
    fields
}

#[test]
fn every_member_as_blkid_sees_it() {
    let Some(dir) = disks() else { return };
    let expected = [
        ("lvm", "LVM2_member", "LVM2 001", None),
        ("md12-a", "linux_raid_member", "1.2", Some("baton:md12")),
        ("md11-b", "linux_raid_member", "1.1", Some("baton:md11")),
        ("md10-a", "linux_raid_member", "1.0", Some("baton:md10")),
        ("md090-b", "linux_raid_member", "0.90.0", None),
        ("luks2", "crypto_LUKS", "2", Some("cryptroot")),
        ("luks1", "crypto_LUKS", "1", None),
    ];
    for (name, fstype, version, label) in expected {
        let image = dir.join(format!("{name}.img"));
        let ours = probe_filesystem(&std::fs::File::open(&image).unwrap())
            .unwrap_or_else(|| panic!("{name}: nothing found"));
        let mut fields = BTreeMap::new();
        fields.insert("TYPE".to_owned(), ours.fstype.clone());
        for (key, value) in [
            ("UUID", &ours.uuid),
            ("LABEL", &ours.label),
            ("VERSION", &ours.version),
            ("UUID_SUB", &ours.uuid_sub),
        ] {
            if let Some(value) = value {
                fields.insert(key.to_owned(), value.clone());
            }
        }
        assert_eq!(fields, blkid(&image), "{name}");
        assert_eq!(
            (
                ours.fstype.as_str(),
                ours.version.as_deref(),
                ours.label.as_deref()
            ),
            (fstype, Some(version), label),
            "{name} as made"
        );
    }
}

/// A RAID1 member whose superblock is at the end (1.0, as /boot arrays often are) holds its
/// array's filesystem at sector 0. `root=UUID=` of that filesystem must not mount one leg of
/// the mirror behind the array's back: the member is named for what it is, and the root did
/// not appear. A root named by its node that is an LVM PV is refused with the reason.
#[test]
fn a_member_is_never_mounted_as_a_root() {
    let (Some(k), Some(dir)) = (kernel(), disks()) else {
        return;
    };
    let image = common::image(
        &k,
        "stack-probe",
        &["--module", "virtio_blk,virtio_pci,ext4"],
    );
    let mut boot = Boot::new(
        &k,
        image.clone(),
        dir.join("md10-a.img"),
        "root=UUID=5e1f0c2a-0000-4000-8000-000000000b06 rootwait=2 rd.emergency=poweroff",
    );
    let log = boot.run("stack-raid-member");
    assert_has(&log, "did not appear within 2 s");
    assert_has(
        &log,
        "linux_raid_member UUID=00000006-ba70-0000-0000-000000000006",
    );
    assert!(!log.contains("mounted root"), "{log}");
    assert!(!log.contains("BATON-MARKER"), "{log}");

    boot.disks = vec![dir.join("lvm.img")];
    boot.append = "root=/dev/vda rd.emergency=poweroff".into();
    let log = boot.run("stack-lvm-node");
    assert_has(&log, "/dev/vda is an LVM physical volume, not a filesystem");
    assert!(!log.contains("mounted root"), "{log}");
}

/// The PV lvm2 made, read as the init reads it: its label, its metadata area's current text
/// (checksums checked) and the volume group it describes.
#[test]
fn the_volume_group_on_the_pv_lvm2_made() {
    use baton::init::storage::lvm::{activation, label, vg};
    let Some(dir) = disks() else { return };
    let disk = std::fs::File::open(dir.join("lvm.img")).unwrap();
    let pv = label::read_label(&disk).unwrap();
    assert_eq!(pv.uuid, "1VGmLL-bt0n-pv01-aaaa-bbbb-cccc-dddd01");
    assert_eq!(pv.device_size, 48 << 20);
    assert_eq!(pv.metadata_areas.len(), 1);
    let text = label::read_metadata(&disk, pv.metadata_areas[0]).unwrap();
    let vg = vg::parse(&text).unwrap();
    assert_eq!((vg.name.as_str(), vg.extent_size), ("vg0", 8192));
    assert!(vg.seqno >= 1);
    assert_eq!(vg.pvs.len(), 1);
    assert_eq!(
        (vg.pvs[0].id.as_str(), vg.pvs[0].pe_start),
        (pv.uuid.as_str(), 2048)
    );
    let root = vg.lvs.iter().find(|lv| lv.name == "root").unwrap();
    assert!(root.visible);
    assert_eq!(root.segments.len(), 1);
    assert_eq!(root.segments[0].extent_count, 4);
    assert_eq!(
        root.segments[0].kind,
        vg::SegmentKind::Striped {
            stripe_size: None,
            stripes: vec![("pv0".into(), 0)]
        }
    );

    // The device lvm2 made of it, with the name, UUID and table baton would give it (the
    // PV's MAJ:MIN as the VM numbered it).
    let made = std::fs::read_to_string(dir.join("dm.txt")).unwrap();
    let line = made.lines().find(|l| l.starts_with("vg0-root ")).unwrap();
    let fields: Vec<&str> = line.split(' ').collect();
    let pv_device = fields[5].to_owned();
    let ours =
        activation::device(&vg, root, &|id| (id == pv.uuid).then(|| pv_device.clone())).unwrap();
    let table: Vec<String> = ours
        .table
        .iter()
        .map(|l| format!("{} {} {} {}", l.start, l.length, l.target, l.params))
        .collect();
    assert_eq!(
        format!("{} {} {}", ours.name, ours.uuid, table.join(" ")),
        line
    );
}

/// Each RAID1 pair mdadm made, read as assembly reads it: one array, level 1, two devices,
/// each member in its own slot, both current (the same event count), and the data where
/// the version puts it (at the start for the versions whose superblock is at the end).
#[test]
fn the_raid_members_mdadm_made() {
    use baton::init::storage::md::member::{self, Role};
    let Some(dir) = disks() else { return };
    for (array, version) in [
        ("md12", "1.2"),
        ("md11", "1.1"),
        ("md10", "1.0"),
        ("md090", "0.90"),
    ] {
        let members: Vec<member::Member> = ["a", "b"]
            .iter()
            .map(|leg| {
                let disk = std::fs::File::open(dir.join(format!("{array}-{leg}.img"))).unwrap();
                let sb = baton::probe::md::find(&disk).unwrap();
                member::read(&sb).unwrap()
            })
            .collect();
        let (a, b) = (&members[0], &members[1]);
        assert_eq!(a.version, version);
        assert_eq!(a.array_uuid, b.array_uuid, "{array}");
        assert_eq!((a.level, a.raid_disks), (1, 2), "{array}");
        let mut roles = [a.role, b.role];
        roles.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(roles, [Role::Active(0), Role::Active(1)], "{array}");
        assert_eq!(a.events, b.events, "{array}");
        assert_eq!(a.features & !member::KNOWN_FEATURES, 0, "{array}");
        match version {
            "1.0" | "0.90" => assert_eq!(a.data_offset, 0, "{array}"),
            _ => assert!(a.data_offset > 0, "{array}"),
        }
        if version != "0.90" {
            assert_eq!(a.name.as_deref(), Some(format!("baton:{array}").as_str()));
        }
    }
}
