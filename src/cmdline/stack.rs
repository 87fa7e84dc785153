//! The storage stack's words, with dracut's names: which LVM volumes to activate and which
//! MD arrays to assemble.

use super::values::{push_named as push, switch};

/// What the command line says of LVM and MD RAID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackParams {
    /// `rd.lvm=0` turns LVM activation off (on by default).
    pub lvm: bool,
    /// `rd.lvm.vg=VG`, repeatable: activate these VGs' LVs only.
    pub lvm_vgs: Vec<String>,
    /// `rd.lvm.lv=VG/LV`, repeatable: activate these LVs only.
    pub lvm_lvs: Vec<(String, String)>,
    /// `rd.md=0` turns MD assembly off (on by default).
    pub md: bool,
    /// `rd.md.uuid=`, repeatable: assemble these arrays only, as 32 lower-case hex digits
    /// (written with or without mdadm's colons or dashes).
    pub md_uuids: Vec<String>,
    /// `rd.md.conf=0`: ignore the image's mdadm.conf.
    pub md_conf: bool,
}

impl Default for StackParams {
    fn default() -> Self {
        StackParams {
            lvm: true,
            lvm_vgs: Vec::new(),
            lvm_lvs: Vec::new(),
            md: true,
            md_uuids: Vec::new(),
            md_conf: true,
        }
    }
}

/// Applies the word `key`[=`value`] if it is one of the stack's: `None` when it is not,
/// `Err(expected)` when its value makes no sense (the word is then ignored).
pub(super) fn apply(
    stack: &mut StackParams,
    key: &str,
    value: Option<&str>,
) -> Option<Result<(), &'static str>> {
    Some(match (key, value) {
        ("rd.lvm", _) => switch(&mut stack.lvm, value),
        ("rd.md", _) => switch(&mut stack.md, value),
        ("rd.md.conf", _) => switch(&mut stack.md_conf, value),
        ("rd.lvm.vg", Some(vg)) if !vg.is_empty() && !vg.contains('/') => {
            push(&mut stack.lvm_vgs, vg.to_owned())
        }
        ("rd.lvm.vg", _) => Err("a VG name"),
        ("rd.lvm.lv", Some(v)) => match v.split_once('/') {
            Some((vg, lv)) if !vg.is_empty() && !lv.is_empty() && !lv.contains('/') => {
                push(&mut stack.lvm_lvs, (vg.to_owned(), lv.to_owned()))
            }
            _ => Err("VG/LV"),
        },
        ("rd.md.uuid", Some(v)) => match md_uuid(v) {
            Some(uuid) => push(&mut stack.md_uuids, uuid),
            None => Err("an array UUID (32 hex digits)"),
        },
        _ => return None,
    })
}

/// An array UUID as mdadm prints it (`0a1b2c3d:...`), or as blkid does (dashed), reduced to
/// its 32 hex digits.
pub fn md_uuid(v: &str) -> Option<String> {
    let digits: String = v
        .chars()
        .filter(|c| !matches!(c, ':' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (digits.len() == 32 && digits.bytes().all(|b| b.is_ascii_hexdigit())).then_some(digits)
}

#[cfg(test)]
mod tests {
    use crate::cmdline::parse;

    #[test]
    fn lvm_words() {
        let p = parse("rd.lvm.lv=vg0/root rd.lvm.lv=vg0/swap rd.lvm.lv=vg0/root rd.lvm.vg=data");
        let lvs: Vec<(&str, &str)> = p
            .stack
            .lvm_lvs
            .iter()
            .map(|(v, l)| (v.as_str(), l.as_str()))
            .collect();
        assert_eq!(lvs, [("vg0", "root"), ("vg0", "swap")]);
        assert_eq!(p.stack.lvm_vgs, ["data"]);
        assert!(p.stack.lvm && p.warnings.is_empty());
        assert!(!parse("rd.lvm=0").stack.lvm);
        assert!(parse("rd.lvm=0 rd.lvm=1").stack.lvm);
        for bad in [
            "rd.lvm.lv=root",
            "rd.lvm.lv=/root",
            "rd.lvm.lv=a/b/c",
            "rd.lvm.vg=a/b",
        ] {
            let p = parse(bad);
            assert!(
                p.stack.lvm_lvs.is_empty() && p.stack.lvm_vgs.is_empty(),
                "{bad}"
            );
            assert_eq!(p.warnings.len(), 1, "{bad}");
        }
    }

    #[test]
    fn md_words() {
        let p = parse("rd.md.uuid=00000002:BA700000:00000000:00000002 rd.md.conf=0");
        assert_eq!(p.stack.md_uuids, ["00000002ba7000000000000000000002"]);
        assert!(p.stack.md && !p.stack.md_conf);
        assert!(!parse("rd.md=0").stack.md);
        let p = parse("rd.md.uuid=123 rd.md=maybe");
        assert!(p.stack.md_uuids.is_empty() && p.stack.md);
        assert_eq!(p.warnings.len(), 2);
    }

    #[test]
    fn lists_are_bounded() {
        let line: Vec<String> = (0..100).map(|n| format!("rd.lvm.vg=vg{n}")).collect();
        let p = parse(&line.join(" "));
        assert_eq!(p.stack.lvm_vgs.len(), 64);
        assert_eq!(p.warnings.len(), 36);
    }
}
