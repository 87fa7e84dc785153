//! What `root=` names, in every form users write (block/early-lookup.c, dracut, systemd),
//! and which probed device it picks. Pure: the devices come in as [`Record`]s.

use crate::probe::Filesystem;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSpec {
    /// `/dev/NAME` (a kernel device name) or another path that will hold a device node.
    Path(String),
    /// `MAJ:MIN`, or a hex device number like `801` or `fe00` (the kernel's old form).
    Number { major: u32, minor: u32 },
    /// `UUID=`: the filesystem UUID, compared without regard to case.
    Uuid(String),
    /// `LABEL=`: the filesystem label, exactly.
    Label(String),
    /// `PARTUUID=` (GPT GUID or MBR `SSSSSSSS-PP`), with `/PARTNROFF=N` picking the partition
    /// N numbers after it on the same disk.
    PartUuid { uuid: String, offset: i64 },
    /// `PARTLABEL=`: the GPT partition name, exactly.
    PartLabel(String),
}

/// Whether `name` can be a kernel block device name, one entry of /sys/class/block.
pub fn is_kernel_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}

impl RootSpec {
    /// The kernel's name for the device, for `/dev/NAME` (`vda` for `/dev/vda`).
    pub fn kernel_name(&self) -> Option<&str> {
        match self {
            RootSpec::Path(path) => path.strip_prefix("/dev/").filter(|n| is_kernel_name(n)),
            _ => None,
        }
    }
}

impl std::fmt::Display for RootSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootSpec::Path(p) => write!(f, "{p}"),
            RootSpec::Number { major, minor } => write!(f, "{major}:{minor}"),
            RootSpec::Uuid(u) => write!(f, "UUID={u}"),
            RootSpec::Label(l) => write!(f, "LABEL={l}"),
            RootSpec::PartUuid { uuid, offset: 0 } => write!(f, "PARTUUID={uuid}"),
            RootSpec::PartUuid { uuid, offset } => write!(f, "PARTUUID={uuid}/PARTNROFF={offset}"),
            RootSpec::PartLabel(l) => write!(f, "PARTLABEL={l}"),
        }
    }
}

/// udev's symlink directories, and the tag each stands for. devtmpfs has no such links and
/// there is no udev here, so baton resolves them itself.
const BY_DIRS: [(&str, &str); 4] = [
    ("/dev/disk/by-uuid/", "UUID="),
    ("/dev/disk/by-label/", "LABEL="),
    ("/dev/disk/by-partuuid/", "PARTUUID="),
    ("/dev/disk/by-partlabel/", "PARTLABEL="),
];

/// Parses a `root=` value.
pub fn parse_root(value: &str) -> Result<RootSpec, String> {
    for (dir, tag) in BY_DIRS {
        if let Some(name) = value.strip_prefix(dir) {
            return parse_root(&format!("{tag}{}", unescape_udev(name)));
        }
    }
    if value.starts_with("/dev/disk/") {
        return Err(format!(
            "root={value}: only udev creates /dev/disk/by-id and by-path links, and there is no udev here; use UUID=, LABEL=, PARTUUID= or PARTLABEL="
        ));
    }
    if value.starts_with('/') {
        return Ok(RootSpec::Path(value.to_owned()));
    }
    let tagged = |tag: &str| value.strip_prefix(tag).filter(|v| !v.is_empty());
    if let Some(uuid) = tagged("UUID=") {
        return Ok(RootSpec::Uuid(uuid.to_owned()));
    }
    if let Some(label) = tagged("LABEL=") {
        return Ok(RootSpec::Label(label.to_owned()));
    }
    if let Some(rest) = tagged("PARTUUID=") {
        return match rest.split_once('/') {
            None => Ok(RootSpec::PartUuid {
                uuid: rest.to_owned(),
                offset: 0,
            }),
            Some((uuid, tail)) => match tail.strip_prefix("PARTNROFF=").map(str::parse::<i64>) {
                Some(Ok(offset)) if !uuid.is_empty() => Ok(RootSpec::PartUuid {
                    uuid: uuid.to_owned(),
                    offset,
                }),
                _ => Err(format!("root={value}: expected PARTUUID=UUID/PARTNROFF=N")),
            },
        };
    }
    if let Some(label) = tagged("PARTLABEL=") {
        return Ok(RootSpec::PartLabel(label.to_owned()));
    }
    if let Some((major, minor)) = value.split_once(':') {
        return match (major.parse::<u32>(), minor.parse::<u32>()) {
            (Ok(major), Ok(minor)) => Ok(RootSpec::Number { major, minor }),
            _ => Err(format!(
                "root={value}: expected MAJ:MIN with decimal numbers"
            )),
        };
    }
    // A bare hex number is a dev_t in the kernel's "new" encoding (new_decode_dev()).
    match u32::from_str_radix(value, 16) {
        Ok(dev) => Ok(RootSpec::Number {
            major: (dev & 0xfff00) >> 8,
            minor: (dev & 0xff) | ((dev >> 12) & 0xfff00),
        }),
        Err(_) => Err(format!(
            "root={value}: not a device path, MAJ:MIN, hex device number, UUID=, LABEL=, PARTUUID= or PARTLABEL="
        )),
    }
}

/// udev escapes unsafe characters in link names as `\xNN` (a label `my disk` becomes
/// `my\x20disk`).
fn unescape_udev(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hex = bytes
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The devices `spec` names, best first. More than one means duplicates (a cloned disk); the
/// caller uses the first and says so.
pub fn find<'a>(spec: &RootSpec, records: &'a [Record]) -> Vec<&'a Record> {
    // A stack member's UUID and label are its stack's, not a filesystem's.
    fn fs_uuid(r: &Record) -> Option<&str> {
        r.fs.as_ref()
            .filter(|f| !f.is_member())
            .and_then(|f| f.uuid.as_deref())
    }
    fn fs_label(r: &Record) -> Option<&str> {
        r.fs.as_ref()
            .filter(|f| !f.is_member())
            .and_then(|f| f.label.as_deref())
    }
    match spec {
        RootSpec::Path(_) => {
            let name = spec.kernel_name();
            records
                .iter()
                .filter(|r| Some(r.name.as_str()) == name)
                .collect()
        }
        RootSpec::Number { major, minor } => records
            .iter()
            .filter(|r| r.major == *major && r.minor == *minor)
            .collect(),
        RootSpec::Uuid(uuid) => records
            .iter()
            .filter(|r| fs_uuid(r).is_some_and(|u| u.eq_ignore_ascii_case(uuid)))
            .collect(),
        RootSpec::Label(label) => records
            .iter()
            .filter(|r| fs_label(r) == Some(label.as_str()))
            .collect(),
        RootSpec::PartLabel(label) => records
            .iter()
            .filter(|r| r.partlabel.as_deref() == Some(label.as_str()))
            .collect(),
        RootSpec::PartUuid { uuid, offset } => records
            .iter()
            .filter(|r| {
                r.partuuid
                    .as_deref()
                    .is_some_and(|u| u.eq_ignore_ascii_case(uuid))
            })
            .filter_map(|anchor| {
                if *offset == 0 {
                    return Some(anchor);
                }
                let number = i64::from(anchor.partition?).checked_add(*offset)?;
                records
                    .iter()
                    .find(|r| r.disk == anchor.disk && r.partition.map(i64::from) == Some(number))
            })
            .collect(),
    }
}

/// One block device and what is on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Kernel name: `vda`, `vda2`, `nvme0n1p1`.
    pub name: String,
    pub major: u32,
    pub minor: u32,
    /// For a partition: the disk it is on.
    pub disk: Option<String>,
    pub partition: Option<u32>,
    /// The filesystem, if one was recognised.
    pub fs: Option<Filesystem>,
    /// A whole disk with a partition table (its filesystems are on the partitions).
    pub has_table: bool,
    pub partuuid: Option<String>,
    pub partlabel: Option<String>,
}

impl Record {
    pub fn node(&self) -> String {
        format!("/dev/{}", self.name)
    }

    /// One line for logs: `vda2 (254:2) ext4 UUID=... LABEL=...`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} ({}:{})", self.name, self.major, self.minor);
        match &self.fs {
            Some(fs) => {
                s.push(' ');
                s.push_str(&fs.fstype);
                if let Some(u) = &fs.uuid {
                    s.push_str(&format!(" UUID={u}"));
                }
                if let Some(l) = &fs.label {
                    s.push_str(&format!(" LABEL={:?}", shortened(l)));
                }
            }
            None if self.has_table => s.push_str(" (partition table)"),
            None => s.push_str(" (nothing recognised)"),
        }
        if let Some(p) = &self.partuuid {
            s.push_str(&format!(" PARTUUID={p}"));
        }
        s
    }
}

/// A label as logged: a hostile disk's label may be hundreds of characters of garbage.
fn shortened(label: &str) -> String {
    const MAX_CHARS: usize = 48;
    match label.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", label.get(..cut).unwrap_or_default()),
        None => label.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Filesystem;

    fn record(name: &str, minor: u32, disk: Option<&str>, partition: Option<u32>) -> Record {
        Record {
            name: name.to_owned(),
            major: 254,
            minor,
            disk: disk.map(str::to_owned),
            partition,
            fs: None,
            has_table: false,
            partuuid: None,
            partlabel: None,
        }
    }

    fn sample() -> Vec<Record> {
        let mut vda = record("vda", 0, None, None);
        vda.has_table = true;
        let mut vda1 = record("vda1", 1, Some("vda"), Some(1));
        vda1.fs = Some(Filesystem {
            fstype: "vfat".into(),
            uuid: Some("1234-ABCD".into()),
            label: Some("EFI".into()),
            ..Default::default()
        });
        vda1.partuuid = Some("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee1".into());
        vda1.partlabel = Some("esp".into());
        let mut vda2 = record("vda2", 2, Some("vda"), Some(2));
        vda2.fs = Some(Filesystem {
            fstype: "ext4".into(),
            uuid: Some("6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into()),
            label: Some("my root".into()),
            ..Default::default()
        });
        vda2.partuuid = Some("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee2".into());
        vda2.partlabel = Some("root".into());
        vec![vda, vda1, vda2]
    }

    fn pick(value: &str) -> Vec<String> {
        let records = sample();
        let spec = parse_root(value).unwrap();
        find(&spec, &records)
            .into_iter()
            .map(|r| r.name.clone())
            .collect()
    }

    #[test]
    fn kernel_names() {
        let name = |s: &str| parse_root(s).unwrap().kernel_name().map(str::to_owned);
        assert_eq!(name("/dev/vda").as_deref(), Some("vda"));
        assert_eq!(name("/dev/nvme0n1p2").as_deref(), Some("nvme0n1p2"));
        assert_eq!(name("/dev/mapper/root"), None, "not a kernel name");
        assert_eq!(name("UUID=1234-abcd"), None);
    }

    #[test]
    fn every_form_finds_its_device() {
        assert_eq!(pick("/dev/vda2"), ["vda2"]);
        assert_eq!(pick("254:2"), ["vda2"]);
        assert_eq!(pick("fe02"), ["vda2"]);
        assert_eq!(pick("UUID=6A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"), ["vda2"]);
        assert_eq!(pick("UUID=1234-abcd"), ["vda1"]);
        assert_eq!(pick("LABEL=my root"), ["vda2"]);
        assert_eq!(
            pick("PARTUUID=AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEE2"),
            ["vda2"]
        );
        assert_eq!(
            pick("PARTUUID=aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee1/PARTNROFF=1"),
            ["vda2"]
        );
        assert_eq!(
            pick("PARTUUID=aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee2/PARTNROFF=-1"),
            ["vda1"]
        );
        assert_eq!(pick("PARTLABEL=root"), ["vda2"]);
        assert_eq!(
            pick("/dev/disk/by-uuid/6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
            ["vda2"]
        );
        assert_eq!(pick("/dev/disk/by-label/my\\x20root"), ["vda2"]);
        assert_eq!(
            pick("/dev/disk/by-partuuid/aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee1"),
            ["vda1"]
        );
        assert_eq!(pick("/dev/disk/by-partlabel/esp"), ["vda1"]);
    }

    #[test]
    fn near_misses_find_nothing() {
        assert!(pick("LABEL=My Root").is_empty(), "labels are exact");
        assert!(pick("PARTLABEL=ROOT").is_empty());
        assert!(pick("PARTUUID=aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee2/PARTNROFF=5").is_empty());
        assert!(pick("/dev/vdb").is_empty());
        assert!(
            pick("/dev/mapper/root").is_empty(),
            "paths below /dev are waited for, not matched"
        );
    }

    #[test]
    fn bad_forms_are_errors() {
        for bad in [
            "vda",
            "8:x",
            "UUID=",
            "PARTUUID=x/PARTNROFF=y",
            "PARTUUID=/PARTNROFF=1",
            "/dev/disk/by-id/ata-X",
        ] {
            assert!(parse_root(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_root("801").unwrap(),
            RootSpec::Number { major: 8, minor: 1 }
        );
        assert_eq!(
            parse_root("10010303").unwrap(),
            RootSpec::Number {
                major: 259,
                minor: 0x10003
            }
        );
    }

    #[test]
    fn a_huge_partnroff_matches_nothing() {
        assert!(pick(&format!(
            "PARTUUID=aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee2/PARTNROFF={}",
            i64::MAX
        ))
        .is_empty());
        assert!(pick(&format!(
            "PARTUUID=aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee2/PARTNROFF={}",
            i64::MIN
        ))
        .is_empty());
    }

    #[test]
    fn display_round_trips() {
        for value in [
            "UUID=x",
            "LABEL=y z",
            "PARTUUID=a/PARTNROFF=2",
            "PARTLABEL=p",
            "/dev/sda1",
            "8:1",
        ] {
            assert_eq!(parse_root(value).unwrap().to_string(), value);
        }
    }

    #[test]
    fn a_stack_member_never_answers_uuid_or_label() {
        // A RAID1 member (metadata 1.0) and the filesystem its array holds share nothing
        // but the array's UUID and name, which are not a filesystem's.
        let mut member = record("vdb", 16, None, None);
        member.fs = Some(Filesystem {
            fstype: "linux_raid_member".into(),
            uuid: Some("00000006-ba70-0000-0000-000000000006".into()),
            label: Some("host:md0".into()),
            ..Default::default()
        });
        let records = vec![member];
        for spec in [
            "UUID=00000006-ba70-0000-0000-000000000006",
            "LABEL=host:md0",
        ] {
            assert!(
                find(&parse_root(spec).unwrap(), &records).is_empty(),
                "{spec}"
            );
        }
        // By its node it is still that device: the boot then says what it holds.
        assert_eq!(find(&parse_root("/dev/vdb").unwrap(), &records).len(), 1);
    }
}
