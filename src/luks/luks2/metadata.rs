//! LUKS2's JSON metadata (the on-disk format document, section 3) read into the volume's
//! parts: segment 0 and the digest and keyslots that hold its key. Checked as cryptsetup's
//! validation checks it, and refused by name where it describes something baton does not do:
//! a mandatory requirement (reencryption), a segment that is not plain `crypt` or carries
//! integrity protection, another kind of digest, keyslot area, KDF or splitter. Tokens are
//! not read.

pub use super::keyslots::MAX_KEYSLOT;
use super::keyslots::{self, Layout};
use super::object::{numbered, shown, Obj};
use crate::luks::json::Value;
use crate::luks::volume::{invalid, unsupported, Digest, Error, Flags, Keyslot, Segment};

/// The binary header's share of each header copy; the JSON area is the rest.
const BINARY_SIZE: u64 = 4096;
/// cryptsetup's bound on the keyslots area.
pub const MAX_KEYSLOTS_SIZE: u64 = 128 * 1024 * 1024;
/// Sector sizes dm-crypt takes.
pub const SECTOR_SIZES: [u32; 4] = [512, 1024, 2048, 4096];

/// The metadata's account of segment 0 and how to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Bytes of the volume key.
    pub key_size: u32,
    pub segment: Segment,
    /// Ordered as [`Volume::keyslots`](crate::luks::Volume::keyslots).
    pub keyslots: Vec<Keyslot>,
    pub digest: Digest,
    pub warnings: Vec<String>,
}

/// Reads the metadata of a header copy of `hdr_size` bytes.
pub fn parse(json: &Value, hdr_size: u64) -> Result<Metadata, Error> {
    let top = Obj::new(json, "metadata")?;
    let config = top.obj("config")?;
    // First: a header mid-reencryption is refused as that, whatever else it holds.
    requirements(&config)?;
    let layout = layout(&config, hdr_size)?;
    let flags = flags(&config)?;
    let keyslots_obj = top.obj("keyslots")?;
    let segment = segment(&top.obj("segments")?, layout, flags)?;
    let (all, warnings) = keyslots::parse(&keyslots_obj, layout)?;
    let digest = digest(&top.obj("digests")?, &keyslots_obj)?;
    let keyslots = keyslots::covered(all, &digest);
    let key_size = keyslots::key_size(&keyslots)?;
    Ok(Metadata {
        key_size,
        segment,
        keyslots,
        digest,
        warnings,
    })
}

fn requirements(config: &Obj) -> Result<(), Error> {
    if config.opt("requirements").is_none() {
        return Ok(());
    }
    let mandatory = config.obj("requirements")?.strings("mandatory")?;
    if mandatory.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = mandatory.iter().map(|s| shown(s)).collect();
    Err(unsupported(format!(
        "LUKS2 header requires {}, which baton cannot handle",
        names.join(", ")
    )))
}

fn layout(config: &Obj, hdr_size: u64) -> Result<Layout, Error> {
    let json_size = config.decimal("json_size")?;
    if Some(json_size) != hdr_size.checked_sub(BINARY_SIZE) {
        return Err(invalid(format!(
            "LUKS2 config: json_size {json_size} does not fit the header's size of {hdr_size}"
        )));
    }
    let keyslots_size = config.decimal("keyslots_size")?;
    if keyslots_size % 4096 != 0 || keyslots_size > MAX_KEYSLOTS_SIZE {
        return Err(invalid(format!(
            "LUKS2 config: keyslots_size {keyslots_size} is not a multiple of 4096 up to 128 MiB"
        )));
    }
    let keyslots_end = hdr_size
        .checked_mul(2)
        .and_then(|headers| headers.checked_add(keyslots_size))
        .ok_or_else(|| invalid("LUKS2 config: the keyslots area's end overflows"))?;
    Ok(Layout {
        hdr_size,
        keyslots_end,
    })
}

fn flags(config: &Obj) -> Result<Flags, Error> {
    let mut flags = Flags::default();
    for flag in config.strings("flags")? {
        match flag {
            "allow-discards" => flags.allow_discards = true,
            "same-cpu-crypt" => flags.same_cpu_crypt = true,
            "submit-from-crypt-cpus" => flags.submit_from_crypt_cpus = true,
            "no-read-workqueue" => flags.no_read_workqueue = true,
            "no-write-workqueue" => flags.no_write_workqueue = true,
            other => flags.unknown.push(other.to_owned()),
        }
    }
    Ok(flags)
}

/// Segment 0, the only one: more are there only mid-reencryption.
fn segment(segments: &Obj, layout: Layout, flags: Flags) -> Result<Segment, Error> {
    for (key, _) in segments.members() {
        if numbered(key, u32::MAX).is_none() {
            return Err(invalid(format!(
                "LUKS2 segments: {} is not a number",
                shown(key)
            )));
        }
    }
    let count = segments.members().len();
    if count > 1 {
        return Err(unsupported(format!(
            "LUKS2 header has {count} segments: baton handles one"
        )));
    }
    let s = Obj::new(segments.get("0")?, "segment 0")?;
    let kind = s.str("type")?;
    if kind != "crypt" {
        return Err(unsupported(format!(
            "LUKS2 segment 0 is of type {}: not supported",
            shown(kind)
        )));
    }
    if let Some(integrity) = s.opt("integrity") {
        let kind = integrity
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        return Err(unsupported(format!(
            "LUKS2 segment 0 has integrity protection ({}): not supported",
            shown(kind)
        )));
    }
    let offset = s.decimal("offset")?;
    let size = match s.str("size")? {
        "dynamic" => None,
        _ => match s.decimal("size")? {
            0 => return Err(invalid("LUKS2 segment 0: size is 0")),
            n => Some(n),
        },
    };
    let sector_size = s.int32("sector_size", 512..=4096)?;
    if !SECTOR_SIZES.contains(&sector_size) {
        return Err(invalid(format!(
            "LUKS2 segment 0: sector_size {sector_size} is not 512, 1024, 2048 or 4096"
        )));
    }
    if offset % 512 != 0 || size.is_some_and(|n| n % u64::from(sector_size) != 0) {
        return Err(invalid(format!(
            "LUKS2 segment 0: offset {offset} or size {size:?} is not aligned to its sectors"
        )));
    }
    // Offset 0: a detached header, whose keyslots lie elsewhere.
    if offset != 0 && offset < layout.keyslots_end {
        return Err(invalid(format!(
            "LUKS2 segment 0 at offset {offset} overlaps the keyslots area, which ends at {}",
            layout.keyslots_end
        )));
    }
    Ok(Segment {
        offset,
        size,
        iv_tweak: s.decimal("iv_tweak")?,
        cipher: s.name("encryption")?,
        sector_size,
        flags,
    })
}

/// The digest that covers segment 0.
fn digest(digests: &Obj, keyslots: &Obj) -> Result<Digest, Error> {
    let mut found: Option<(&str, Obj)> = None;
    for (key, value) in digests.members() {
        if numbered(key, u32::MAX).is_none() {
            return Err(invalid(format!(
                "LUKS2 digests: {} is not a number",
                shown(key)
            )));
        }
        let d = Obj::new(value, format!("digest {key}"))?;
        if !d.strings("segments")?.contains(&"0") {
            continue;
        }
        if let Some((first, _)) = found {
            return Err(invalid(format!(
                "LUKS2 digests {first} and {key} both cover segment 0"
            )));
        }
        found = Some((key, d));
    }
    let (key, d) = found.ok_or_else(|| invalid("LUKS2 header has no digest for segment 0"))?;
    let kind = d.str("type")?;
    if kind != "pbkdf2" {
        return Err(unsupported(format!(
            "LUKS2 digest {key} is of type {}: not supported",
            shown(kind)
        )));
    }
    let mut covered = Vec::new();
    for slot in d.strings("keyslots")? {
        let id = numbered(slot, MAX_KEYSLOT)
            .filter(|_| keyslots.opt(slot).is_some())
            .ok_or_else(|| {
                invalid(format!(
                    "LUKS2 digest {key} covers keyslot {}, which does not exist",
                    shown(slot)
                ))
            })?;
        covered.push(id);
    }
    Ok(Digest {
        hash: d.name("hash")?,
        iterations: d.int32("iterations", 1..=u32::MAX)?,
        salt: d.base64("salt", 1..=64)?,
        value: d.base64("digest", 1..=64)?,
        keyslots: covered,
    })
}

#[cfg(test)]
mod tests;
