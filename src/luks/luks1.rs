//! LUKS1's header (the on-disk format specification, version 1.2.3): 592 bytes at the start
//! of the device, big-endian, with 8 keyslots. Checked as cryptsetup checks it before use:
//! text fields NUL-terminated, keyslot material after the header, before the data and not
//! overlapping; the bounds on key size and stripes are [`KEY_BYTES`] and [`MAX_STRIPES`].

use super::fields::{be_u16, be_u32, bytes, c_string};
use super::volume::{
    invalid, is_name, overlapping, sort_keyslots, split_key_bytes, unsupported, Af, Area, Digest,
    Error, Flags, Kdf, Keyslot, Priority, Segment, Volume, KEY_BYTES, MAX_STRIPES, SECTOR,
};

/// The header's size; the rest of its first 4096 bytes is unused.
pub const PHDR_SIZE: usize = 592;
pub const MAGIC: &[u8; 6] = b"LUKS\xba\xbe";
pub const KEYSLOTS: usize = 8;
/// A keyslot's `active` field.
pub const KEY_ENABLED: u32 = 0x00AC_71F3;
pub const KEY_DISABLED: u32 = 0x0000_DEAD;

const VERSION_AT: usize = 6;
const CIPHER_NAME_AT: usize = 8;
const CIPHER_MODE_AT: usize = 40;
const HASH_SPEC_AT: usize = 72;
const NAME_LEN: usize = 32;
const PAYLOAD_OFFSET_AT: usize = 104;
const KEY_BYTES_AT: usize = 108;
const MK_DIGEST_AT: usize = 112;
/// LUKS1's digest is 20 bytes of PBKDF2 output, whatever the hash.
const MK_DIGEST_LEN: usize = 20;
const MK_DIGEST_SALT_AT: usize = 132;
const SALT_LEN: usize = 32;
const MK_DIGEST_ITERATIONS_AT: usize = 164;
const UUID_AT: usize = 168;
const UUID_LEN: usize = 40;
const KEYBLOCKS_AT: usize = 208;
const KEYBLOCK_LEN: usize = 48;
// Within a keyblock.
const ACTIVE_AT: usize = 0;
const ITERATIONS_AT: usize = 4;
const SALT_AT: usize = 8;
const MATERIAL_OFFSET_AT: usize = 40;
const STRIPES_AT: usize = 44;

/// Parses a LUKS1 header (the device's first bytes, at least [`PHDR_SIZE`]).
pub fn parse(header: &[u8]) -> Result<Volume, Error> {
    if header.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
        return Err(Error::NotLuks);
    }
    let h = header
        .get(..PHDR_SIZE)
        .ok_or_else(|| invalid(format!("LUKS1 header cut short at {} bytes", header.len())))?;
    let field = |at, len| bytes(h, at, len).unwrap_or_default();
    let u32_at = |at| be_u32(h, at).unwrap_or_default();
    match be_u16(h, VERSION_AT) {
        Some(1) => {}
        v => {
            return Err(invalid(format!(
                "not a LUKS1 header: version {}",
                v.unwrap_or(0)
            )))
        }
    }
    let cipher_name = name(field(CIPHER_NAME_AT, NAME_LEN), "cipher name")?;
    let cipher_mode = name(field(CIPHER_MODE_AT, NAME_LEN), "cipher mode")?;
    let hash = name(field(HASH_SPEC_AT, NAME_LEN), "hash spec")?;
    let key_size = u32_at(KEY_BYTES_AT);
    if !KEY_BYTES.contains(&key_size) {
        return Err(invalid(format!(
            "LUKS1 key size of {key_size} bytes: not within {}..={}",
            KEY_BYTES.start(),
            KEY_BYTES.end()
        )));
    }
    let payload = u32_at(PAYLOAD_OFFSET_AT);
    let uuid = c_string(field(UUID_AT, UUID_LEN))
        .filter(|u| u.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| invalid("LUKS1 UUID is not NUL-terminated printable text"))?;
    let digest_iterations = u32_at(MK_DIGEST_ITERATIONS_AT);
    if digest_iterations == 0 {
        return Err(invalid("LUKS1 digest iterations are 0"));
    }
    let cipher = format!("{cipher_name}-{cipher_mode}");
    let volume = VolumeKey {
        key_size,
        cipher: &cipher,
        hash: &hash,
        payload,
    };
    let (mut keyslots, warnings) = keyslots(h, &volume)?;
    let digest = Digest {
        hash: hash.clone(),
        iterations: digest_iterations,
        salt: field(MK_DIGEST_SALT_AT, SALT_LEN).to_vec(),
        value: field(MK_DIGEST_AT, MK_DIGEST_LEN).to_vec(),
        keyslots: keyslots.iter().map(|k| k.id).collect(),
    };
    sort_keyslots(&mut keyslots);
    Ok(Volume {
        version: 1,
        uuid: uuid.to_owned(),
        label: None,
        subsystem: None,
        key_size,
        segment: Segment {
            offset: u64::from(payload) * SECTOR,
            size: None,
            iv_tweak: 0,
            cipher,
            sector_size: SECTOR as u32,
            flags: Flags::default(),
        },
        keyslots,
        digest,
        warnings,
    })
}

fn name(field: &[u8], what: &str) -> Result<String, Error> {
    c_string(field)
        .filter(|s| is_name(s))
        .map(str::to_owned)
        .ok_or_else(|| invalid(format!("LUKS1 {what} is not a NUL-terminated name")))
}

/// What every keyslot shares: the volume key's size, cipher and hash, and where the data
/// starts (`payload`, in sectors: 0 with a detached header, where the data's place is not
/// known).
struct VolumeKey<'a> {
    key_size: u32,
    cipher: &'a str,
    hash: &'a str,
    payload: u32,
}

/// The active keyslots, checked, and a warning for each in an unknown state.
fn keyslots(h: &[u8], volume: &VolumeKey) -> Result<(Vec<Keyslot>, Vec<String>), Error> {
    let mut warnings = Vec::new();
    let mut keyslots = Vec::new();
    let blocks = h.get(KEYBLOCKS_AT..).unwrap_or_default();
    for (id, block) in (0u32..).zip(blocks.chunks_exact(KEYBLOCK_LEN).take(KEYSLOTS)) {
        match be_u32(block, ACTIVE_AT).unwrap_or_default() {
            KEY_ENABLED => keyslots.push(keyslot(id, block, volume)?),
            KEY_DISABLED => {}
            state => warnings.push(format!(
                "LUKS1 keyslot {id} is in an unknown state (0x{state:08x}): skipped"
            )),
        }
    }
    if let Some((a, b)) = overlapping(keyslots.iter().map(|k| (k.area.offset, k.area.size, k.id))) {
        return Err(invalid(format!("LUKS1 keyslots {a} and {b} overlap")));
    }
    if keyslots.is_empty() {
        return Err(unsupported("LUKS1 header has no active keyslot"));
    }
    Ok((keyslots, warnings))
}

/// An active keyslot's block, checked against the header.
fn keyslot(id: u32, block: &[u8], volume: &VolumeKey) -> Result<Keyslot, Error> {
    let VolumeKey {
        key_size,
        cipher,
        hash,
        payload,
    } = *volume;
    let u32_at = |at| be_u32(block, at).unwrap_or_default();
    let iterations = u32_at(ITERATIONS_AT);
    if iterations == 0 {
        return Err(invalid(format!("LUKS1 keyslot {id}: iterations are 0")));
    }
    let stripes = u32_at(STRIPES_AT);
    if !(1..=MAX_STRIPES).contains(&stripes) {
        return Err(invalid(format!(
            "LUKS1 keyslot {id}: {stripes} stripes, not within 1..={MAX_STRIPES}"
        )));
    }
    let sector = u64::from(u32_at(MATERIAL_OFFSET_AT));
    let offset = sector * SECTOR;
    let size = split_key_bytes(key_size, stripes);
    if offset < PHDR_SIZE as u64 {
        return Err(invalid(format!(
            "LUKS1 keyslot {id}: key material at sector {sector} overlaps the header"
        )));
    }
    if payload != 0 && offset + size > u64::from(payload) * SECTOR {
        return Err(invalid(format!(
            "LUKS1 keyslot {id}: key material (sector {sector}, {size} bytes) runs into the data at sector {payload}"
        )));
    }
    Ok(Keyslot {
        id,
        priority: Priority::Normal,
        key_size,
        area: Area {
            offset,
            size,
            cipher: cipher.to_owned(),
            key_size,
        },
        kdf: Kdf::Pbkdf2 {
            hash: hash.to_owned(),
            iterations,
            salt: bytes(block, SALT_AT, SALT_LEN).unwrap_or_default().to_vec(),
        },
        af: Af {
            stripes,
            hash: hash.to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const XTS: &[u8] = include_bytes!("../../tests/fixtures/luks/luks1-xts.bin");

    fn edit(at: usize, value: &[u8]) -> Vec<u8> {
        let mut h = XTS.to_vec();
        h[at..at + value.len()].copy_from_slice(value);
        h
    }

    fn slot(n: usize, field: usize) -> usize {
        KEYBLOCKS_AT + n * KEYBLOCK_LEN + field
    }

    fn error(h: &[u8]) -> String {
        parse(h).unwrap_err().to_string()
    }

    #[test]
    fn header_checks() {
        assert_eq!(
            parse(&XTS[..100]).unwrap_err().to_string(),
            "LUKS1 header cut short at 100 bytes"
        );
        assert_eq!(
            parse(&edit(0, b"LUKS\xba\xbf")).unwrap_err(),
            Error::NotLuks
        );
        assert_eq!(
            error(&edit(VERSION_AT, &[0, 2])),
            "not a LUKS1 header: version 2"
        );
        assert_eq!(
            error(&edit(CIPHER_NAME_AT, &[b'a'; 32])),
            "LUKS1 cipher name is not a NUL-terminated name"
        );
        assert_eq!(
            error(&edit(CIPHER_MODE_AT, b"\0")),
            "LUKS1 cipher mode is not a NUL-terminated name"
        );
        assert_eq!(
            error(&edit(HASH_SPEC_AT, b"sha 256\0")),
            "LUKS1 hash spec is not a NUL-terminated name"
        );
        assert_eq!(
            error(&edit(KEY_BYTES_AT, &8u32.to_be_bytes())),
            "LUKS1 key size of 8 bytes: not within 16..=64"
        );
        assert_eq!(
            error(&edit(KEY_BYTES_AT, &65u32.to_be_bytes())),
            "LUKS1 key size of 65 bytes: not within 16..=64"
        );
        assert_eq!(
            error(&edit(UUID_AT, &[b'1'; 40])),
            "LUKS1 UUID is not NUL-terminated printable text"
        );
        assert_eq!(
            error(&edit(UUID_AT, b"\x01\0")),
            "LUKS1 UUID is not NUL-terminated printable text"
        );
        assert_eq!(
            error(&edit(MK_DIGEST_ITERATIONS_AT, &[0; 4])),
            "LUKS1 digest iterations are 0"
        );
    }

    #[test]
    fn keyslot_checks() {
        assert_eq!(
            error(&edit(slot(5, ITERATIONS_AT), &[0; 4])),
            "LUKS1 keyslot 5: iterations are 0"
        );
        assert_eq!(
            error(&edit(slot(0, STRIPES_AT), &4001u32.to_be_bytes())),
            "LUKS1 keyslot 0: 4001 stripes, not within 1..=4000"
        );
        assert_eq!(
            error(&edit(slot(0, STRIPES_AT), &[0; 4])),
            "LUKS1 keyslot 0: 0 stripes, not within 1..=4000"
        );
        assert_eq!(
            error(&edit(slot(0, MATERIAL_OFFSET_AT), &1u32.to_be_bytes())),
            "LUKS1 keyslot 0: key material at sector 1 overlaps the header"
        );
        // Slot 5 is at sector 2528, 500 sectors long: the data starts at 4096.
        assert_eq!(
            error(&edit(slot(5, MATERIAL_OFFSET_AT), &3597u32.to_be_bytes())),
            "LUKS1 keyslot 5: key material (sector 3597, 256000 bytes) runs into the data at sector 4096"
        );
        assert!(parse(&edit(slot(5, MATERIAL_OFFSET_AT), &3596u32.to_be_bytes())).is_ok());
        // A detached header (payload 0) leaves the material's end unchecked.
        let mut detached = edit(PAYLOAD_OFFSET_AT, &[0; 4]);
        detached[slot(5, MATERIAL_OFFSET_AT)..][..4].copy_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(parse(&detached).unwrap().segment.offset, 0);
        assert_eq!(
            error(&edit(slot(5, MATERIAL_OFFSET_AT), &507u32.to_be_bytes())),
            "LUKS1 keyslots 0 and 5 overlap"
        );
        assert!(parse(&edit(slot(5, MATERIAL_OFFSET_AT), &508u32.to_be_bytes())).is_ok());
        // Fewer stripes: a smaller area.
        let v = parse(&edit(slot(5, STRIPES_AT), &1u32.to_be_bytes())).unwrap();
        assert_eq!(
            (v.keyslots[1].af.stripes, v.keyslots[1].area.size),
            (1, 512)
        );
    }

    #[test]
    fn keyslot_states() {
        let v = parse(&edit(slot(3, ACTIVE_AT), &0x1234u32.to_be_bytes())).unwrap();
        assert_eq!(
            v.warnings,
            ["LUKS1 keyslot 3 is in an unknown state (0x00001234): skipped"]
        );
        assert_eq!(v.keyslots.len(), 2);
        let mut none = edit(slot(0, ACTIVE_AT), &KEY_DISABLED.to_be_bytes());
        none[slot(5, ACTIVE_AT)..][..4].copy_from_slice(&KEY_DISABLED.to_be_bytes());
        assert_eq!(
            parse(&none).unwrap_err(),
            Error::Unsupported("LUKS1 header has no active keyslot".into())
        );
        // An inactive slot's fields are not read.
        let v = parse(&edit(slot(1, STRIPES_AT), &[0xff; 4])).unwrap();
        assert!(v.warnings.is_empty());
    }
}
