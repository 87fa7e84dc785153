//! Volume groups put together from the PVs seen so far: each PV brings its label and, when
//! it has a metadata area, its copy of the VG's metadata. The copy with the highest seqno
//! describes the VG (a PV that was offline during a change carries an older one); a VG is
//! complete when every PV its metadata lists is here, and only then may its LVs be
//! activated. Pure: what was seen comes in, what can be done goes out.

use super::vg::Vg;

/// One PV as seen on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenPv {
    /// The device it is on (`MAJ:MIN`) and its name, for messages (`vda`).
    pub device: String,
    pub name: String,
    pub uuid: String,
    /// Its metadata, if it has a metadata area that could be read.
    pub metadata: Option<Vg>,
}

/// A VG as far as its PVs have been seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgState {
    /// The newest metadata any of its PVs carries.
    pub vg: Vg,
    /// The PVs here: (PV UUID, device).
    pub present: Vec<(String, String)>,
    /// The PVs its metadata lists that have not been seen: (metadata name, UUID).
    pub missing: Vec<(String, String)>,
}

impl VgState {
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// The device of the PV `uuid`, if it is here.
    pub fn device_of(&self, uuid: &str) -> Option<String> {
        self.present
            .iter()
            .find_map(|(u, dev)| (u == uuid).then(|| dev.clone()))
    }

    /// What a PV of this VG is, for the waiting and failure messages: `LVM2 PV ... of VG vg0,
    /// which is missing 1 of 2 PVs`.
    pub fn describe(&self, pv_uuid: &str) -> String {
        let total = self.vg.pvs.len();
        let mut said = format!("LVM2 PV {pv_uuid} of VG {}", self.vg.name);
        if !self.missing.is_empty() {
            let names: Vec<&str> = self.missing.iter().map(|(_, u)| u.as_str()).collect();
            said.push_str(&format!(
                ", which is missing {} of {total} PVs ({})",
                self.missing.len(),
                names.join(", ")
            ));
        }
        said
    }
}

/// The VGs the PVs seen so far belong to, by VG UUID, in the order first seen. PVs whose VG
/// no copy of the metadata names (a PV without a metadata area whose VG's other PVs have
/// not come yet) are left out until one does.
pub fn assemble(seen: &[SeenPv]) -> Vec<VgState> {
    let mut newest: Vec<&Vg> = Vec::new();
    for vg in seen.iter().filter_map(|pv| pv.metadata.as_ref()) {
        match newest.iter_mut().find(|v| v.id == vg.id) {
            Some(known) if known.seqno < vg.seqno => *known = vg,
            Some(_) => {}
            None => newest.push(vg),
        }
    }
    newest
        .into_iter()
        .map(|vg| {
            let mut present = Vec::new();
            let mut missing = Vec::new();
            for pv in &vg.pvs {
                match seen.iter().find(|s| s.uuid == pv.id) {
                    Some(s) => present.push((pv.id.clone(), s.device.clone())),
                    None => missing.push((pv.name.clone(), pv.id.clone())),
                }
            }
            VgState {
                vg: vg.clone(),
                present,
                missing,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::storage::lvm::vg::Pv;

    fn vg(id: &str, seqno: u64, pvs: &[&str]) -> Vg {
        Vg {
            name: format!("vg-{id}"),
            id: id.into(),
            seqno,
            extent_size: 8192,
            pvs: pvs
                .iter()
                .enumerate()
                .map(|(i, id)| Pv {
                    name: format!("pv{i}"),
                    id: (*id).into(),
                    pe_start: 2048,
                    pe_count: 10,
                })
                .collect(),
            lvs: Vec::new(),
        }
    }

    fn seen(device: &str, uuid: &str, metadata: Option<Vg>) -> SeenPv {
        SeenPv {
            device: device.into(),
            name: device.into(),
            uuid: uuid.into(),
            metadata,
        }
    }

    #[test]
    fn complete_once_every_pv_is_here() {
        let two = vg("A", 5, &["p1", "p2"]);
        let first = [seen("254:0", "p1", Some(two.clone()))];
        let states = assemble(&first);
        assert_eq!(states.len(), 1);
        assert!(!states[0].complete());
        assert_eq!(
            states[0].describe("p1"),
            "LVM2 PV p1 of VG vg-A, which is missing 1 of 2 PVs (p2)"
        );
        // The second PV has no metadata area of its own: the first's copy names it.
        let both = [first[0].clone(), seen("254:16", "p2", None)];
        let states = assemble(&both);
        assert!(states[0].complete());
        assert_eq!(states[0].device_of("p2").as_deref(), Some("254:16"));
        assert_eq!(states[0].describe("p2"), "LVM2 PV p2 of VG vg-A");
    }

    #[test]
    fn the_newest_metadata_wins() {
        // p2 missed the change that added p3.
        let old = vg("A", 4, &["p1", "p2"]);
        let new = vg("A", 5, &["p1", "p2", "p3"]);
        let states = assemble(&[
            seen("254:16", "p2", Some(old.clone())),
            seen("254:0", "p1", Some(new)),
        ]);
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].vg.seqno, 5);
        assert_eq!(states[0].missing, [("pv2".to_owned(), "p3".to_owned())]);
        // Two VGs stay apart, and a PV nobody's metadata names waits.
        let states = assemble(&[
            seen("254:0", "p1", Some(old)),
            seen("254:32", "q1", Some(vg("B", 1, &["q1"]))),
            seen("254:48", "stray", None),
        ]);
        assert_eq!(states.len(), 2);
        assert!(states[1].complete());
    }
}
