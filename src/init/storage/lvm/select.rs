//! Which LVs to activate, as dracut chooses them: `rd.lvm.lv=VG/LV` and `rd.lvm.vg=VG`
//! name them when given; otherwise the VGs the root and `resume=` are on when they are
//! named by path (`/dev/VG/LV`, `/dev/mapper/VG-LV`), and every VG when either is named
//! another way (a filesystem UUID inside an LV is seen only once the LV is active).
//! `rd.lvm=0` activates nothing. Pure.

use crate::cmdline::StackParams;
use crate::storage_names::lv_of_path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    enabled: bool,
    /// Named LVs and VGs: an LV among them that cannot be activated is an error to report,
    /// not one to pass over.
    lvs: Vec<(String, String)>,
    vgs: Vec<String>,
    /// Nothing named, nothing known: every VG.
    all: bool,
}

/// Whether and how an LV is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    No,
    /// Named, by the command line or as the root's own device.
    Named,
    /// Part of every VG being activated.
    Any,
}

impl Selection {
    /// From the command line and the root's and resume device's `root=` forms.
    pub fn new(params: &StackParams, root: Option<&str>, resume: Option<&str>) -> Selection {
        let mut selection = Selection {
            enabled: params.lvm,
            lvs: params.lvm_lvs.clone(),
            vgs: params.lvm_vgs.clone(),
            all: false,
        };
        if !selection.lvs.is_empty() || !selection.vgs.is_empty() {
            return selection;
        }
        for spec in [root, resume].into_iter().flatten() {
            match lv_of_path(spec) {
                Some((vg, lv)) => {
                    selection.vgs.push(vg.clone());
                    selection.lvs.push((vg, lv));
                }
                None => selection.all = true,
            }
        }
        if root.is_none() {
            selection.all = true;
        }
        selection
    }

    pub fn wants(&self, vg: &str, lv: &str) -> Want {
        if !self.enabled {
            return Want::No;
        }
        if self.lvs.iter().any(|(v, l)| v == vg && l == lv) {
            return Want::Named;
        }
        if self.all || self.vgs.iter().any(|v| v == vg) {
            return Want::Any;
        }
        Want::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::parse;

    fn select(line: &str, root: Option<&str>, resume: Option<&str>) -> Selection {
        Selection::new(&parse(line).stack, root, resume)
    }

    #[test]
    fn dracuts_choice() {
        // The root's VG when the root is named by path.
        let s = select("", Some("/dev/mapper/vg0-root"), None);
        assert_eq!(s.wants("vg0", "root"), Want::Named);
        assert_eq!(s.wants("vg0", "swap"), Want::Any);
        assert_eq!(s.wants("data", "home"), Want::No);
        // Every VG when it is named by UUID: the LV must be active to be found.
        let s = select("", Some("UUID=5e1f"), None);
        assert_eq!(s.wants("data", "home"), Want::Any);
        let s = select("", Some("/dev/vg0/root"), Some("UUID=1"));
        assert_eq!(s.wants("data", "swap"), Want::Any);
        // The command line's names are all there is.
        let s = select("rd.lvm.lv=vg0/root rd.lvm.vg=data", Some("UUID=x"), None);
        assert_eq!(s.wants("vg0", "root"), Want::Named);
        assert_eq!(s.wants("vg0", "swap"), Want::No);
        assert_eq!(s.wants("data", "x"), Want::Any);
        assert_eq!(s.wants("other", "x"), Want::No);
        let s = select("rd.lvm=0", Some("/dev/vg0/root"), None);
        assert_eq!(s.wants("vg0", "root"), Want::No);
    }
}
