//! LUKS2 keyslots of type `luks2`: a KDF (PBKDF2 or Argon2), LUKS1's anti-forensic splitter
//! and a raw area in the keyslots area. Other types (`reencrypt`) cannot open a volume and
//! are skipped by name. Every `luks2` keyslot is checked, as cryptsetup checks them all; only
//! those the segment's digest covers are kept.

use super::object::{numbered, shown, Obj};
use crate::luks::volume::{
    invalid, overlapping, sort_keyslots, split_key_bytes, unsupported, Af, Area, Argon2Variant,
    Digest, Error, Kdf, Keyslot, Priority, KEY_BYTES, MAX_STRIPES,
};

/// Keyslots are numbered 0 to 31.
pub const MAX_KEYSLOT: u32 = 31;
/// Argon2's memory, in KiB: cryptsetup's bound (4 GiB); Argon2's own floor is 8 per lane.
pub const ARGON2_MAX_MEMORY: u32 = 4 * 1024 * 1024;
/// Argon2's own bound on lanes.
pub const ARGON2_MAX_LANES: u32 = 0xFF_FFFF;
/// A keyslot's KDF salt: cryptsetup opens no other length.
const SALT_LEN: usize = 32;

/// Where the headers and keyslots lie, from `config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// One header copy's size, binary and JSON.
    pub hdr_size: u64,
    /// The keyslots area's end: both copies, then the area.
    pub keyslots_end: u64,
}

/// Every `luks2` keyslot, checked, and a warning for each keyslot of another type.
pub(crate) fn parse(keyslots: &Obj, layout: Layout) -> Result<(Vec<Keyslot>, Vec<String>), Error> {
    let mut all = Vec::new();
    let mut areas = Vec::new();
    let mut warnings = Vec::new();
    for (key, value) in keyslots.members() {
        let id = numbered(key, MAX_KEYSLOT).ok_or_else(|| {
            invalid(format!(
                "LUKS2 keyslots: {} is not a number from 0 to {MAX_KEYSLOT}",
                shown(key)
            ))
        })?;
        let k = Obj::new(value, format!("keyslot {id}"))?;
        match k.str("type")? {
            "luks2" => {
                let (keyslot, area_len) = keyslot(id, &k, layout)?;
                areas.push((keyslot.area.offset, area_len, id));
                all.push(keyslot);
            }
            other => warnings.push(format!(
                "LUKS2 keyslot {id} is of type {}: skipped",
                shown(other)
            )),
        }
    }
    // Whole areas, as the header gives them, not only the parts a key takes.
    if let Some((a, b)) = overlapping(areas) {
        return Err(invalid(format!("LUKS2 keyslots {a} and {b} overlap")));
    }
    Ok((all, warnings))
}

/// The keyslots `digest` covers, ordered for trying.
pub(crate) fn covered(all: Vec<Keyslot>, digest: &Digest) -> Vec<Keyslot> {
    let mut usable: Vec<Keyslot> = all
        .into_iter()
        .filter(|k| digest.keyslots.contains(&k.id))
        .collect();
    sort_keyslots(&mut usable);
    usable
}

/// The volume key's size, which every usable keyslot must agree on.
pub(crate) fn key_size(keyslots: &[Keyslot]) -> Result<u32, Error> {
    let first = keyslots
        .first()
        .ok_or_else(|| unsupported("LUKS2 header has no keyslot for segment 0"))?;
    match keyslots.iter().find(|k| k.key_size != first.key_size) {
        Some(other) => Err(invalid(format!(
            "LUKS2 keyslots {} and {} hold keys of different sizes",
            first.id.min(other.id),
            first.id.max(other.id)
        ))),
        None => Ok(first.key_size),
    }
}

/// A keyslot, and its area's length in the header.
fn keyslot(id: u32, k: &Obj, layout: Layout) -> Result<(Keyslot, u64), Error> {
    let key_size = k.int32("key_size", KEY_BYTES)?;
    let priority = match k.opt("priority") {
        None => Priority::Normal,
        Some(_) => match k.int("priority", 0..=2)? {
            0 => Priority::Ignore,
            1 => Priority::Normal,
            _ => Priority::Prefer,
        },
    };
    let af = af(id, &k.obj("af")?)?;
    let kdf = kdf(id, &k.obj("kdf")?)?;
    let split_bytes = split_key_bytes(key_size, af.stripes);
    let (area, area_len) = area(id, &k.obj("area")?, split_bytes, layout)?;
    let keyslot = Keyslot {
        id,
        priority,
        key_size,
        area,
        kdf,
        af,
    };
    Ok((keyslot, area_len))
}

fn af(id: u32, af: &Obj) -> Result<Af, Error> {
    let kind = af.str("type")?;
    if kind != "luks1" {
        return Err(unsupported(format!(
            "LUKS2 keyslot {id} uses the anti-forensic splitter {}: not supported",
            shown(kind)
        )));
    }
    Ok(Af {
        stripes: af.int32("stripes", 1..=MAX_STRIPES)?,
        hash: af.name("hash")?,
    })
}

fn kdf(id: u32, kdf: &Obj) -> Result<Kdf, Error> {
    let variant = match kdf.str("type")? {
        "pbkdf2" => {
            return Ok(Kdf::Pbkdf2 {
                hash: kdf.name("hash")?,
                iterations: kdf.int32("iterations", 1..=u32::MAX)?,
                salt: kdf.base64("salt", SALT_LEN..=SALT_LEN)?,
            })
        }
        "argon2i" => Argon2Variant::I,
        "argon2id" => Argon2Variant::Id,
        other => {
            return Err(unsupported(format!(
                "LUKS2 keyslot {id} uses the KDF {}: not supported",
                shown(other)
            )))
        }
    };
    let lanes = kdf.int32("cpus", 1..=ARGON2_MAX_LANES)?;
    Ok(Kdf::Argon2 {
        variant,
        time: kdf.int32("time", 1..=u32::MAX)?,
        memory: kdf.int32("memory", lanes.saturating_mul(8)..=ARGON2_MAX_MEMORY)?,
        lanes,
        salt: kdf.base64("salt", SALT_LEN..=SALT_LEN)?,
    })
}

/// The keyslot's area: raw, after both header copies, within the keyslots area and large
/// enough for a split key of `split_bytes`; and its length in the header.
fn area(id: u32, area: &Obj, split_bytes: u64, layout: Layout) -> Result<(Area, u64), Error> {
    let kind = area.str("type")?;
    if kind != "raw" {
        return Err(unsupported(format!(
            "LUKS2 keyslot {id} has an area of type {}: not supported",
            shown(kind)
        )));
    }
    let offset = area.decimal("offset")?;
    let size = area.decimal("size")?;
    let headers_end = layout.hdr_size.saturating_mul(2);
    if offset < headers_end {
        return Err(invalid(format!(
            "LUKS2 keyslot {id}: its area at offset {offset} lies in the headers, which end at {headers_end}"
        )));
    }
    if size < split_bytes {
        return Err(invalid(format!(
            "LUKS2 keyslot {id}: its area of {size} bytes cannot hold its split key of {split_bytes}"
        )));
    }
    if !matches!(offset.checked_add(size), Some(end) if end <= layout.keyslots_end) {
        return Err(invalid(format!(
            "LUKS2 keyslot {id}: its area ({size} bytes at offset {offset}) runs past the keyslots area, which ends at {}",
            layout.keyslots_end
        )));
    }
    let area = Area {
        offset,
        size: split_bytes,
        cipher: area.name("encryption")?,
        key_size: area.int32("key_size", KEY_BYTES)?,
    };
    Ok((area, size))
}
