//! How storage stacks name their devices, read the same way by the init (which makes them)
//! and the host tool (which checks a system's root is among them): lvm2's device paths
//! (`/dev/VG/LV`, `/dev/mapper/VG-LV`) and mdadm.conf's ARRAY lines. Pure.

/// The VG and LV a device path names, as lvm2's nodes spell them: `/dev/VG/LV`, or
/// `/dev/mapper/VG-LV` with each name's own dashes doubled.
pub fn lv_of_path(path: &str) -> Option<(String, String)> {
    if let Some(name) = path.strip_prefix("/dev/mapper/") {
        return split_dm_name(name);
    }
    let rest = path.strip_prefix("/dev/")?;
    let (vg, lv) = rest.split_once('/')?;
    let reserved = [
        "disk", "mapper", "md", "block", "char", "bus", "input", "dri", "net",
    ];
    if vg.is_empty() || lv.is_empty() || lv.contains('/') || reserved.contains(&vg) {
        return None;
    }
    Some((vg.to_owned(), lv.to_owned()))
}

/// `VG-LV` with dashes doubled inside each name, split at the single dash.
pub fn split_dm_name(name: &str) -> Option<(String, String)> {
    let bytes = name.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes.get(at) == Some(&b'-') {
            if bytes.get(at + 1) == Some(&b'-') {
                at += 2;
                continue;
            }
            let (vg, lv) = (name.get(..at)?, name.get(at + 1..)?);
            if vg.is_empty() || lv.is_empty() {
                return None;
            }
            return Some((vg.replace("--", "-"), lv.replace("--", "-")));
        }
        at += 1;
    }
    None
}

/// One `ARRAY` line of mdadm.conf.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfArray {
    /// `/dev/md0`, `/dev/md/root`; `None` for `<ignore>`.
    pub devname: Option<String>,
    /// `uuid=`, as 32 hex digits.
    pub uuid: Option<String>,
    /// `name=`.
    pub name: Option<String>,
}

/// At most this many ARRAY lines are read: a host with more arrays than this boots from
/// none of the rest.
const MAX_ARRAYS: usize = 256;

/// The ARRAY lines of an mdadm.conf (a line starting with white space continues the one
/// before it; `#` starts a comment).
pub fn parse_conf(text: &str) -> Vec<ConfArray> {
    let mut joined: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        match joined.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push(' ');
                last.push_str(line);
            }
            _ => joined.push(line.to_owned()),
        }
    }
    let mut arrays = Vec::new();
    for line in &joined {
        let mut words = line.split_whitespace();
        if !words
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("ARRAY"))
        {
            continue;
        }
        if arrays.len() == MAX_ARRAYS {
            break;
        }
        let mut array = ConfArray::default();
        for word in words {
            match word.split_once('=') {
                Some(("uuid" | "UUID", v)) => array.uuid = crate::cmdline::md_uuid(v),
                Some(("name" | "NAME", v)) => array.name = Some(v.to_owned()),
                Some(_) => {}
                None if word.starts_with("/dev/") => array.devname = Some(word.to_owned()),
                None => {}
            }
        }
        arrays.push(array);
    }
    arrays
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_lvs() {
        let lv = |vg: &str, lv: &str| Some((vg.to_owned(), lv.to_owned()));
        assert_eq!(lv_of_path("/dev/vg0/root"), lv("vg0", "root"));
        assert_eq!(lv_of_path("/dev/mapper/vg0-root"), lv("vg0", "root"));
        assert_eq!(
            lv_of_path("/dev/mapper/my--vg-my--lv"),
            lv("my-vg", "my-lv")
        );
        assert_eq!(lv_of_path("/dev/mapper/a--b--c-d"), lv("a-b-c", "d"));
        for not in [
            "/dev/vda",
            "/dev/disk/by-uuid/x",
            "/dev/md/root",
            "/dev/mapper/cryptroot",
            "/dev/mapper/-x",
            "/dev/mapper/x-",
            "UUID=abc",
        ] {
            assert_eq!(lv_of_path(not), None, "{not}");
        }
    }

    #[test]
    fn conf_lines_are_bounded() {
        let lines = "ARRAY /dev/md1 uuid=1\n".repeat(1000);
        assert_eq!(parse_conf(&lines).len(), MAX_ARRAYS);
    }
}
