//! LVM in the root search: each PV read once as it appears, its VG put together, and the
//! wanted LVs of a complete VG activated through device-mapper, with the names, links and
//! udev entries lvm2 would have made.

use super::assembly::{assemble, SeenPv, VgState};
use super::select::{Selection, Want};
use super::{activation, label, vg};
use crate::init::storage::dm::{Control, Target};
use crate::init::storage::nodes;
use crate::probe::ReadAt;
use std::collections::{BTreeMap, BTreeSet};

/// At most this many PVs are read: a VG of more is not one an initramfs should assemble
/// blind, and the bound keeps a hostile disk set from growing the list for ever.
const MAX_PVS: usize = 256;

#[derive(Default)]
pub struct Lvm {
    pvs: Vec<SeenPv>,
    /// What could not be read of a PV, by device name.
    unreadable: BTreeMap<String, String>,
    /// LVs activated (`VG/LV`).
    active: BTreeSet<String>,
    /// Named LVs that cannot be activated, and why (reported when the root does not come).
    refused: BTreeMap<String, String>,
    control: Option<Control>,
}

impl Lvm {
    /// Reads the PV on device `name` (`MAJ:MIN` `dev`) from `node`.
    pub fn add_pv(&mut self, name: &str, dev: (u32, u32), node: &dyn ReadAt) {
        if self.pvs.len() >= MAX_PVS {
            return;
        }
        match read_pv(node) {
            Ok((uuid, metadata)) => self.pvs.push(SeenPv {
                device: format!("{}:{}", dev.0, dev.1),
                name: name.to_owned(),
                uuid,
                metadata,
            }),
            Err(why) => {
                log::warn!("{name} is an LVM PV baton cannot read: {why}");
                self.unreadable.insert(name.to_owned(), why);
            }
        }
    }

    /// Activates the wanted LVs of every complete VG not activated yet; returns whether a
    /// device was made: their kernel names (`dm-0`). `control` opens device-mapper (loading
    /// its module) when first needed.
    pub fn activate(
        &mut self,
        selection: &Selection,
        control: &mut dyn FnMut() -> Result<Control, String>,
    ) -> Vec<String> {
        let mut made = Vec::new();
        for state in assemble(&self.pvs) {
            if !state.complete() {
                continue;
            }
            for lv in state.vg.lvs.iter().filter(|lv| lv.visible) {
                let key = format!("{}/{}", state.vg.name, lv.name);
                if self.active.contains(&key) || self.refused.contains_key(&key) {
                    continue;
                }
                let want = selection.wants(&state.vg.name, &lv.name);
                if want == Want::No {
                    continue;
                }
                match self.activate_one(&state, lv, control) {
                    Ok(node) => {
                        made.push(node);
                        self.active.insert(key);
                        if self.all_active(&state.vg) {
                            nodes::mark_vg_online(&state.vg.name);
                        }
                    }
                    Err(why) => {
                        if want == Want::Named {
                            log::warn!("{why}");
                        } else {
                            log::info!("not activating {key}: {why}");
                        }
                        self.refused.insert(key, why);
                    }
                }
            }
        }
        made
    }

    /// Whether every LV of `vg` that lvm2 would autoactivate is active.
    fn all_active(&self, vg: &vg::Vg) -> bool {
        vg.lvs
            .iter()
            .filter(|lv| lv.visible)
            .all(|lv| self.active.contains(&format!("{}/{}", vg.name, lv.name)))
    }

    fn activate_one(
        &mut self,
        state: &VgState,
        lv: &vg::Lv,
        control: &mut dyn FnMut() -> Result<Control, String>,
    ) -> Result<String, String> {
        let device = activation::device(&state.vg, lv, &|uuid| state.device_of(uuid))?;
        if self.control.is_none() {
            self.control = Some(control()?);
        }
        let Some(dm) = &self.control else {
            return Err("no device-mapper".into());
        };
        let targets: Vec<Target<'_>> = device
            .table
            .iter()
            .map(|line| Target {
                start: line.start,
                length: line.length,
                kind: line.target,
                params: &line.params,
            })
            .collect();
        let dev = dm.create(&device.name, &device.uuid, &targets, false)?;
        let node = format!("dm-{}", dev.1);
        log::info!(
            "activated LV {}/{} as /dev/mapper/{} ({node})",
            state.vg.name,
            lv.name,
            device.name
        );
        let links = [
            format!("mapper/{}", device.name),
            format!("{}/{}", state.vg.name, lv.name),
        ];
        for link in &links {
            if let Err(e) = nodes::link(link, &node) {
                log::warn!("cannot link /dev/{link}: {e}");
            }
        }
        let entry = nodes::DmEntry {
            dev,
            name: &device.name,
            uuid: &device.uuid,
            lv: Some((&state.vg.name, &lv.name)),
        };
        if let Err(e) = nodes::write_dm_entry(&entry) {
            log::warn!("cannot write udev's entry for {}: {e}", device.name);
        }
        Ok(node)
    }

    /// What the PV on device `name` belongs to, for messages.
    pub fn describe(&self, name: &str) -> Option<String> {
        if let Some(why) = self.unreadable.get(name) {
            return Some(format!("an LVM PV baton cannot read ({why})"));
        }
        let pv = self.pvs.iter().find(|p| p.name == name)?;
        let states = assemble(&self.pvs);
        match states.iter().find(|s| s.device_of(&pv.uuid).is_some()) {
            Some(state) => Some(state.describe(&pv.uuid)),
            None => Some(format!(
                "LVM2 PV {} without metadata, whose VG's other PVs have not appeared",
                pv.uuid
            )),
        }
    }

    /// Why wanted LVs are not active: refused ones, and VGs still missing PVs.
    pub fn problems(&self, selection: &Selection) -> Vec<String> {
        let mut out: Vec<String> = self.refused.values().cloned().collect();
        for state in assemble(&self.pvs) {
            let wanted = state
                .vg
                .lvs
                .iter()
                .any(|lv| selection.wants(&state.vg.name, &lv.name) != Want::No);
            if !state.complete() && wanted {
                let names: Vec<String> = state
                    .missing
                    .iter()
                    .map(|(name, uuid)| format!("{name} ({uuid})"))
                    .collect();
                out.push(format!(
                    "VG {} is missing {} of {} PVs: {}; its LVs are not activated",
                    state.vg.name,
                    state.missing.len(),
                    state.vg.pvs.len(),
                    names.join(", ")
                ));
            }
        }
        out
    }
}

/// A PV's UUID and, if it has a metadata area, the VG its newest copy describes.
fn read_pv(node: &dyn ReadAt) -> Result<(String, Option<vg::Vg>), String> {
    let pv = label::read_label(node).ok_or("its label cannot be read")?;
    let mut newest: Option<vg::Vg> = None;
    let mut last_error = None;
    for area in &pv.metadata_areas {
        match label::read_metadata(node, *area).and_then(|text| vg::parse(&text)) {
            Ok(vg) if newest.as_ref().map_or(true, |n| n.seqno < vg.seqno) => newest = Some(vg),
            Ok(_) => {}
            Err(e) => last_error = Some(e),
        }
    }
    match (newest, last_error) {
        (None, Some(e)) => Err(e),
        (vg, _) => Ok((pv.uuid, vg)),
    }
}
