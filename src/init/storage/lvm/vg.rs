//! A volume group as its metadata describes it: its PVs (by UUID, where their extents start,
//! how many), its LVs and their segments. Only what activating linear and striped LVs needs
//! is taken; any other segment type is kept by name, so that an LV made of one is refused
//! with the reason rather than skipped.

use super::text::{self, Section};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vg {
    pub name: String,
    pub id: String,
    pub seqno: u64,
    /// In 512-byte sectors.
    pub extent_size: u64,
    pub pvs: Vec<Pv>,
    pub lvs: Vec<Lv>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pv {
    /// The metadata's name for it (`pv0`), which segments use.
    pub name: String,
    /// Its UUID, as the label carries it (with dashes).
    pub id: String,
    /// Where its first extent starts, in sectors.
    pub pe_start: u64,
    pub pe_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lv {
    pub name: String,
    pub id: String,
    /// `VISIBLE` in its status: the LVs users name (hidden ones are parts of others).
    pub visible: bool,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub start_extent: u64,
    pub extent_count: u64,
    pub kind: SegmentKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentKind {
    /// `striped` (one stripe: linear): each stripe is a PV's name and its first extent.
    Striped {
        /// In sectors; none for a single stripe.
        stripe_size: Option<u64>,
        stripes: Vec<(String, u64)>,
    },
    /// An old-style snapshot: the LV whose blocks it keeps (`origin`) and the LV holding
    /// the copies (`cow_store`). Neither may be activated plainly: writes to the origin
    /// would bypass the snapshot.
    Snapshot { origin: String, cow: String },
    /// thin, cache, raid1, mirror ...: named, not activated.
    Other(String),
}

/// The VG in a metadata text.
pub fn parse(metadata: &str) -> Result<Vg, String> {
    let top = text::parse(metadata)?;
    let mut sections = top.sections();
    let (name, vg) = sections
        .next()
        .ok_or("the metadata holds no volume group")?;
    if sections.next().is_some() {
        return Err("the metadata holds more than one volume group".into());
    }
    let number = |s: &Section, key: &str, what: &str| -> Result<u64, String> {
        s.int(key)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| format!("{what}: no {key}"))
    };
    let extent_size = number(vg, "extent_size", name)?;
    if extent_size == 0 {
        return Err(format!("{name}: extent_size is 0"));
    }
    let pvs = vg
        .section("physical_volumes")
        .map(|pvs| {
            pvs.sections()
                .map(|(pv_name, pv)| {
                    Ok(Pv {
                        name: pv_name.to_owned(),
                        id: pv.str("id").ok_or(format!("{pv_name}: no id"))?.to_owned(),
                        pe_start: number(pv, "pe_start", pv_name)?,
                        pe_count: number(pv, "pe_count", pv_name)?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .transpose()?
        .unwrap_or_default();
    let lvs = vg
        .section("logical_volumes")
        .map(|lvs| {
            lvs.sections()
                .map(|(lv_name, lv)| parse_lv(lv_name, lv))
                .collect::<Result<Vec<_>, String>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(Vg {
        name: name.to_owned(),
        id: vg.str("id").ok_or(format!("{name}: no id"))?.to_owned(),
        seqno: number(vg, "seqno", name)?,
        extent_size,
        pvs,
        lvs,
    })
}

fn parse_lv(name: &str, lv: &Section) -> Result<Lv, String> {
    let number = |s: &Section, key: &str| -> Result<u64, String> {
        s.int(key)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| format!("LV {name}: a segment without {key}"))
    };
    let mut segments = Vec::new();
    for (_, seg) in lv.sections().filter(|(k, _)| k.starts_with("segment")) {
        let kind = match seg.str("type") {
            Some("striped") => SegmentKind::Striped {
                stripe_size: seg.int("stripe_size").and_then(|n| u64::try_from(n).ok()),
                stripes: stripes(seg).ok_or(format!("LV {name}: unreadable stripes"))?,
            },
            Some("snapshot") => SegmentKind::Snapshot {
                origin: seg.str("origin").unwrap_or_default().to_owned(),
                cow: seg.str("cow_store").unwrap_or_default().to_owned(),
            },
            Some(other) => SegmentKind::Other(other.to_owned()),
            None => return Err(format!("LV {name}: a segment without a type")),
        };
        segments.push(Segment {
            start_extent: number(seg, "start_extent")?,
            extent_count: number(seg, "extent_count")?,
            kind,
        });
    }
    segments.sort_unstable_by_key(|s| s.start_extent);
    Ok(Lv {
        name: name.to_owned(),
        id: lv.str("id").ok_or(format!("LV {name}: no id"))?.to_owned(),
        visible: lv
            .strings("status")
            .is_some_and(|status| status.contains(&"VISIBLE")),
        segments,
    })
}

/// `stripes = ["pv0", 0, "pv1", 0]`: pairs of a PV's name and its first extent.
fn stripes(seg: &Section) -> Option<Vec<(String, u64)>> {
    let text::Value::List(items) = seg.value("stripes")? else {
        return None;
    };
    items
        .chunks(2)
        .map(|pair| match pair {
            [text::Value::Str(pv), text::Value::Int(extent)] => {
                Some((pv.clone(), u64::try_from(*extent).ok()?))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_PVS: &str = r#"vg1 {
id = "musQwO-ePKU-vf5U-sXRU-SI44-HtES-OAKG5u"
seqno = 7
extent_size = 8192
physical_volumes {
pv0 { id = "aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg" pe_start = 2048 pe_count = 100 }
pv1 { id = "hhhhhh-bbbb-cccc-dddd-eeee-ffff-gggggg" pe_start = 2048 pe_count = 100 }
}
logical_volumes {
root { id = "x" status = ["READ", "WRITE", "VISIBLE"]
segment1 { start_extent = 0 extent_count = 10 type = "striped" stripe_count = 2 stripe_size = 128 stripes = ["pv0", 0, "pv1", 0] }
}
pool_tdata { id = "y" status = ["READ"]
segment1 { start_extent = 0 extent_count = 5 type = "thin-pool" }
}
snapshot0 { id = "z" status = ["READ"]
segment1 { start_extent = 0 extent_count = 10 type = "snapshot" chunk_size = 8 origin = "root" cow_store = "snap" }
}
}
}
contents = "Text Format Volume Group"
"#;

    #[test]
    fn a_vg_of_two_pvs() {
        let vg = parse(TWO_PVS).unwrap();
        assert_eq!(
            (vg.name.as_str(), vg.seqno, vg.extent_size),
            ("vg1", 7, 8192)
        );
        assert_eq!(vg.pvs.len(), 2);
        assert_eq!(vg.pvs[1].pe_count, 100);
        let root = &vg.lvs[0];
        assert!(root.visible);
        assert_eq!(
            root.segments[0].kind,
            SegmentKind::Striped {
                stripe_size: Some(128),
                stripes: vec![("pv0".into(), 0), ("pv1".into(), 0)]
            }
        );
        assert!(!vg.lvs[1].visible);
        assert_eq!(
            vg.lvs[1].segments[0].kind,
            SegmentKind::Other("thin-pool".into())
        );
        assert_eq!(
            vg.lvs[2].segments[0].kind,
            SegmentKind::Snapshot {
                origin: "root".into(),
                cow: "snap".into()
            }
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let err = parse("vg { id = \"x\" seqno = 1 }").unwrap_err();
        assert!(err.contains("no extent_size"), "{err}");
        let err = parse(&TWO_PVS.replace("pe_count = 100 }\npv1", "}\npv1")).unwrap_err();
        assert!(err.contains("pv0: no pe_count"), "{err}");
        let err = parse(&TWO_PVS.replace("\"pv1\", 0]", "\"pv1\"]")).unwrap_err();
        assert!(err.contains("unreadable stripes"), "{err}");
        assert!(parse("contents = \"x\"").is_err());
    }
}
