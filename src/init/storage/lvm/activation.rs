//! What activating an LV means to device-mapper: the device's name and UUID as lvm2 gives
//! them (so that lvm2 and udev in the real root adopt it instead of activating it again),
//! and its table, one line per segment. Pure: the PVs' devices come in as `MAJ:MIN`.

use super::vg::{Lv, SegmentKind, Vg};

/// One line of a device-mapper table: sectors `start..start + length` map through `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLine {
    pub start: u64,
    pub length: u64,
    pub target: &'static str,
    pub params: String,
}

/// A device to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmDevice {
    /// `VG-LV`, each name's dashes doubled (`/dev/mapper/NAME`).
    pub name: String,
    /// `LVM-` and the VG's and LV's UUIDs without their dashes.
    pub uuid: String,
    pub table: Vec<TableLine>,
}

/// The device for `lv` of `vg`; `device_of` gives a PV's `MAJ:MIN` from its UUID. An LV with
/// a segment baton cannot map (thin, cache, raid, snapshot ...) or on a PV that is not here
/// is an error naming it.
pub fn device(
    vg: &Vg,
    lv: &Lv,
    device_of: &dyn Fn(&str) -> Option<String>,
) -> Result<DmDevice, String> {
    let what = format!("LV {}/{}", vg.name, lv.name);
    not_in_a_snapshot(vg, lv, &what)?;
    let sectors = |extents: u64| {
        extents
            .checked_mul(vg.extent_size)
            .ok_or_else(|| format!("{what}: sizes out of range"))
    };
    let mut table = Vec::new();
    let mut next = 0;
    for seg in &lv.segments {
        if seg.start_extent != next {
            return Err(format!("{what}: its segments leave a gap at extent {next}"));
        }
        next = seg
            .start_extent
            .checked_add(seg.extent_count)
            .ok_or_else(|| format!("{what}: sizes out of range"))?;
        let (stripe_size, stripes) = match &seg.kind {
            SegmentKind::Striped {
                stripe_size,
                stripes,
            } => (stripe_size, stripes),
            SegmentKind::Snapshot { .. } => {
                return Err(format!(
                    "{what} is a snapshot: baton activates linear and striped LVs only (lvm2 in an initramfs that carries it can)"
                ))
            }
            SegmentKind::Other(kind) => {
                return Err(format!(
                    "{what} is a {kind} LV: baton activates linear and striped LVs only (lvm2 in an initramfs that carries it can)"
                ))
            }
        };
        let count = u64::try_from(stripes.len()).unwrap_or(u64::MAX);
        if count == 0 || seg.extent_count % count != 0 {
            return Err(format!("{what}: a segment of {count} stripes"));
        }
        let mut targets = Vec::with_capacity(stripes.len());
        for (pv_name, first) in stripes {
            let pv = vg.pvs.iter().find(|p| &p.name == pv_name).ok_or_else(|| {
                format!("{what}: its segment names {pv_name}, which the VG lacks")
            })?;
            let dev = device_of(&pv.id)
                .ok_or_else(|| format!("{what}: PV {} ({pv_name}) is missing", pv.id))?;
            let offset = sectors(*first)?
                .checked_add(pv.pe_start)
                .ok_or_else(|| format!("{what}: sizes out of range"))?;
            targets.push(format!("{dev} {offset}"));
        }
        let (target, params) = match (stripes.len(), stripe_size) {
            (1, _) => ("linear", targets.join(" ")),
            (_, Some(chunk)) if *chunk > 0 => {
                ("striped", format!("{count} {chunk} {}", targets.join(" ")))
            }
            _ => return Err(format!("{what}: striped without a stripe size")),
        };
        table.push(TableLine {
            start: sectors(seg.start_extent)?,
            length: sectors(seg.extent_count)?,
            target,
            params,
        });
    }
    if table.is_empty() {
        return Err(format!("{what} has no segments"));
    }
    Ok(DmDevice {
        name: dm_name(&vg.name, &lv.name),
        uuid: format!("LVM-{}{}", vg.id.replace('-', ""), lv.id.replace('-', "")),
        table,
    })
}

/// lvm2's device-mapper name: `VG-LV`, each name's own dashes doubled.
fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

/// An error when `lv` is the origin or copy store of an old-style snapshot.
fn not_in_a_snapshot(vg: &Vg, lv: &Lv, what: &str) -> Result<(), String> {
    match snapshot_of(vg, &lv.name) {
        Some(snapshot) => Err(format!(
            "{what} is part of the snapshot {}/{snapshot}: its device must go through lvm2's snapshot targets, and a plain one would let writes bypass the snapshot (lvm2 in an initramfs that carries it can)",
            vg.name
        )),
        None => Ok(()),
    }
}

/// The snapshot LV whose origin or copy-on-write store `lv` is, if any.
fn snapshot_of<'v>(vg: &'v Vg, lv: &str) -> Option<&'v str> {
    vg.lvs.iter().find_map(|other| {
        other.segments.iter().find_map(|seg| match &seg.kind {
            SegmentKind::Snapshot { origin, cow } if origin == lv || cow == lv => {
                Some(other.name.as_str())
            }
            _ => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::storage::lvm::vg::{Pv, Segment};

    fn vg(lvs: Vec<Lv>) -> Vg {
        let pv = |n: u32| Pv {
            name: format!("pv{n}"),
            id: format!("pv-uuid-{n}"),
            pe_start: 2048,
            pe_count: 100,
        };
        Vg {
            name: "my-vg".into(),
            id: "VGVGVG-1111-2222".into(),
            seqno: 3,
            extent_size: 8192,
            pvs: vec![pv(0), pv(1)],
            lvs,
        }
    }

    fn lv(segments: Vec<Segment>) -> Lv {
        Lv {
            name: "root-fs".into(),
            id: "LVLVLV-3333".into(),
            visible: true,
            segments,
        }
    }

    fn striped(
        start: u64,
        count: u64,
        stripe_size: Option<u64>,
        stripes: &[(&str, u64)],
    ) -> Segment {
        Segment {
            start_extent: start,
            extent_count: count,
            kind: SegmentKind::Striped {
                stripe_size,
                stripes: stripes.iter().map(|(p, e)| (p.to_string(), *e)).collect(),
            },
        }
    }

    fn devices(id: &str) -> Option<String> {
        match id {
            "pv-uuid-0" => Some("254:0".into()),
            "pv-uuid-1" => Some("254:16".into()),
            _ => None,
        }
    }

    #[test]
    fn linear_segments_and_names() {
        let lv = lv(vec![
            striped(0, 4, None, &[("pv0", 0)]),
            striped(4, 2, None, &[("pv1", 10)]),
        ]);
        let dev = device(&vg(vec![]), &lv, &devices).unwrap();
        assert_eq!(dev.name, "my--vg-root--fs");
        assert_eq!(dev.uuid, "LVM-VGVGVG11112222LVLVLV3333");
        let lines: Vec<String> = dev
            .table
            .iter()
            .map(|l| format!("{} {} {} {}", l.start, l.length, l.target, l.params))
            .collect();
        assert_eq!(
            lines,
            [
                "0 32768 linear 254:0 2048",
                "32768 16384 linear 254:16 83968"
            ]
        );
    }

    #[test]
    fn striped_over_two_pvs() {
        let lv = lv(vec![striped(0, 10, Some(128), &[("pv0", 0), ("pv1", 0)])]);
        let dev = device(&vg(vec![]), &lv, &devices).unwrap();
        assert_eq!(dev.table[0].target, "striped");
        assert_eq!(dev.table[0].params, "2 128 254:0 2048 254:16 2048");
        assert_eq!(dev.table[0].length, 10 * 8192);
    }

    #[test]
    fn what_cannot_be_mapped_is_named() {
        let vg = vg(vec![]);
        let thin = lv(vec![Segment {
            start_extent: 0,
            extent_count: 1,
            kind: SegmentKind::Other("thin".into()),
        }]);
        let err = device(&vg, &thin, &devices).unwrap_err();
        assert!(err.contains("LV my-vg/root-fs is a thin LV"), "{err}");
        let missing = |_: &str| None;
        let err = device(&vg, &lv(vec![striped(0, 4, None, &[("pv0", 0)])]), &missing).unwrap_err();
        assert!(err.contains("PV pv-uuid-0 (pv0) is missing"), "{err}");
        let gap = lv(vec![striped(1, 4, None, &[("pv0", 0)])]);
        assert!(device(&vg, &gap, &devices)
            .unwrap_err()
            .contains("gap at extent 0"));
        let err = device(&vg, &lv(vec![striped(0, 4, None, &[("pv9", 0)])]), &devices).unwrap_err();
        assert!(err.contains("names pv9"), "{err}");
        assert!(device(&vg, &lv(vec![]), &devices).is_err());
        let huge = lv(vec![striped(0, u64::MAX, None, &[("pv0", 0)])]);
        assert!(device(&vg, &huge, &devices)
            .unwrap_err()
            .contains("out of range"));
    }

    /// An old-style snapshot of root-fs: neither the origin nor the copy store is mapped
    /// plainly (writes to the origin would go around the snapshot), nor the snapshot.
    #[test]
    fn snapshots_and_their_origins_are_left_to_lvm2() {
        let origin = lv(vec![striped(0, 4, None, &[("pv0", 0)])]);
        let mut cow = lv(vec![striped(0, 2, None, &[("pv1", 0)])]);
        cow.name = "snap".into();
        let mut snapshot = lv(vec![Segment {
            start_extent: 0,
            extent_count: 4,
            kind: SegmentKind::Snapshot {
                origin: "root-fs".into(),
                cow: "snap".into(),
            },
        }]);
        snapshot.name = "snapshot0".into();
        snapshot.visible = false;
        let vg = vg(vec![origin.clone(), cow.clone(), snapshot.clone()]);
        for lv in [&origin, &cow] {
            let err = device(&vg, lv, &devices).unwrap_err();
            assert!(
                err.contains("is part of the snapshot my-vg/snapshot0"),
                "{err}"
            );
        }
        let err = device(&vg, &snapshot, &devices).unwrap_err();
        assert!(err.contains("is a snapshot"), "{err}");
    }
}
