//! Which arrays to assemble and what to call them: `rd.md.uuid=` and the host's mdadm.conf
//! ARRAY lines choose, and the names follow mdadm's: the number or `/dev/md/NAME` the ARRAY
//! line gives, else a 0.90 array's own number, else the 1.x name (`host:NAME` gives
//! `/dev/md/NAME`, and `/dev/mdN` too when NAME is `N` or `mdN`), else the free numbers from
//! 127 down, as mdadm picks them for arrays it finds. Pure.

use crate::storage_names::ConfArray;

/// Whether the array `uuid_hex` named `name` is to be assembled: `rd.md.uuid=` lists the
/// ones wanted, when given; else mdadm.conf's ARRAY lines, when it has any (an `<ignore>`
/// line, or none matching, leaves it alone); else every array.
pub fn wanted(uuid_hex: &str, name: Option<&str>, uuids: &[String], conf: &[ConfArray]) -> bool {
    if !uuids.is_empty() {
        return uuids.iter().any(|u| u == uuid_hex);
    }
    if conf.is_empty() {
        return true;
    }
    conf_entry(uuid_hex, name, conf).is_some_and(|a| a.devname.is_some())
}

/// The ARRAY line for an array, by UUID or else by name.
pub fn conf_entry<'c>(
    uuid_hex: &str,
    name: Option<&str>,
    conf: &'c [ConfArray],
) -> Option<&'c ConfArray> {
    conf.iter()
        .find(|a| a.uuid.as_deref() == Some(uuid_hex))
        .or_else(|| {
            let name = name?;
            conf.iter()
                .find(|a| a.uuid.is_none() && a.name.as_deref() == Some(name))
        })
}

/// What an assembled array is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    /// `N` of `/dev/mdN`.
    pub number: u32,
    /// `NAME` of the `/dev/md/NAME` link.
    pub link: Option<String>,
}

/// The name for an array; `taken(N)` says whether mdN exists already.
pub fn choose(
    preferred_minor: Option<u32>,
    name: Option<&str>,
    conf: Option<&ConfArray>,
    taken: &dyn Fn(u32) -> bool,
) -> Option<Naming> {
    let mut link = name
        .map(|n| n.rsplit(':').next().unwrap_or(n))
        .filter(|n| safe_link(n))
        .map(str::to_owned);
    let mut number = None;
    if let Some(devname) = conf.and_then(|c| c.devname.as_deref()) {
        let short = devname
            .strip_prefix("/dev/md/")
            .or_else(|| devname.strip_prefix("/dev/"));
        match short.and_then(md_number) {
            Some(n) => number = Some(n),
            None => {
                if let Some(l) = devname.strip_prefix("/dev/md/").filter(|l| safe_link(l)) {
                    link = Some(l.to_owned());
                }
            }
        }
    }
    let number = number
        .or(preferred_minor)
        .or_else(|| link.as_deref().and_then(md_number))
        .filter(|n| *n < 1 << 20 && !taken(*n))
        .or_else(|| (0..=127).rev().find(|n| !taken(*n)))?;
    Some(Naming { number, link })
}

/// `N` of `mdN` or of a bare number.
fn md_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("md").unwrap_or(name);
    (!digits.is_empty() && digits.len() <= 7 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// A name that can be a link in /dev/md.
fn safe_link(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage_names::parse_conf;

    const CONF: &str = "\
# mdadm.conf written by the installer
HOMEHOST <system>
ARRAY /dev/md0 metadata=1.2 UUID=00000002:ba700000:00000000:00000002
   name=host:root
ARRAY /dev/md/data metadata=1.2 name=host:data UUID=00000004:ba700000:00000000:00000004
ARRAY <ignore> uuid=00000006:ba700000:00000000:00000006
";

    const ROOT: &str = "00000002ba7000000000000000000002";
    const DATA: &str = "00000004ba7000000000000000000004";
    const IGNORED: &str = "00000006ba7000000000000000000006";

    #[test]
    fn conf_arrays() {
        let conf = parse_conf(CONF);
        assert_eq!(conf.len(), 3);
        assert_eq!(conf[0].devname.as_deref(), Some("/dev/md0"));
        assert_eq!(conf[0].uuid.as_deref(), Some(ROOT));
        assert_eq!(conf[0].name.as_deref(), Some("host:root"));
        assert_eq!(conf[2].devname, None);
        assert!(wanted(ROOT, None, &[], &conf));
        assert!(!wanted(IGNORED, None, &[], &conf));
        assert!(!wanted("ff", None, &[], &conf));
        assert!(wanted("ff", None, &[], &[]));
        assert!(!wanted(ROOT, None, &[DATA.into()], &conf));
    }

    #[test]
    fn names_follow_mdadm() {
        let conf = parse_conf(CONF);
        let free = |_: u32| false;
        let root = conf_entry(ROOT, None, &conf);
        assert_eq!(
            choose(None, Some("host:root"), root, &free),
            Some(Naming {
                number: 0,
                link: Some("root".into())
            })
        );
        let data = conf_entry(DATA, None, &conf);
        assert_eq!(
            choose(None, Some("host:data"), data, &free),
            Some(Naming {
                number: 127,
                link: Some("data".into())
            })
        );
        // 0.90 keeps its number; a numeric 1.x name gives it; a taken one moves down.
        assert_eq!(
            choose(Some(3), None, None, &free).map(|n| n.number),
            Some(3)
        );
        assert_eq!(
            choose(None, Some("box:5"), None, &free),
            Some(Naming {
                number: 5,
                link: Some("5".into())
            })
        );
        let taken = |n: u32| n >= 126;
        assert_eq!(
            choose(None, None, None, &taken).map(|n| n.number),
            Some(125)
        );
        assert_eq!(
            choose(None, Some("h:../x"), None, &free).and_then(|n| n.link),
            None
        );
    }
}
