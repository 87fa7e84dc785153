//! LUKS2's header (cryptsetup's on-disk format document): two copies, each a 4096-byte
//! binary header and a JSON area, `hdr_size` bytes together; the primary at 0, the secondary
//! right after it. Each copy is checked alone (magic, version, size, offset, SHA-256 over the
//! whole copy with its checksum field zeroed, JSON); of the valid ones the newer (higher
//! `seqid`) is read, the primary when they agree.
//!
//! The init reads, as cryptsetup does:
//! 1. 4096 bytes at 0: [`judge_binary`] gives the primary's size; that many bytes at 0 go to
//!    [`judge_copy`].
//! 2. The secondary: if the primary is valid, at its size; if not, at each of
//!    [`secondary_offsets`] in turn (the primary's size could be what is damaged) until one
//!    holds a valid copy: 4096 bytes there to [`judge_binary`], then its size to
//!    [`judge_copy`].
//! 3. [`choose`] between the two, and [`volume`] reads the chosen copy's metadata.
//!
//! [`read`] does all of it over the device's first bytes held in memory.

mod keyslots;
pub mod metadata;
mod object;

use sha2::{Digest as _, Sha256};

use super::fields::{be_u16, be_u64, bytes, c_string};
use super::json::{self, Value};
use super::volume::{invalid, unsupported, Error, Volume};

pub const MAGIC_PRIMARY: &[u8; 6] = b"LUKS\xba\xbe";
pub const MAGIC_SECONDARY: &[u8; 6] = b"SKUL\xba\xbe";
/// The binary header's size; the JSON area follows it.
pub const BINARY_SIZE: usize = 4096;
/// The header sizes cryptsetup allows (16 KiB to 4 MiB, powers of two), which are also where
/// a secondary header can lie.
pub const SECONDARY_OFFSETS: [u64; 9] = [
    0x4000, 0x8000, 0x1_0000, 0x2_0000, 0x4_0000, 0x8_0000, 0x10_0000, 0x20_0000, 0x40_0000,
];

const VERSION_AT: usize = 6;
const HDR_SIZE_AT: usize = 8;
const SEQID_AT: usize = 16;
const LABEL_AT: usize = 24;
const LABEL_LEN: usize = 48;
const CHECKSUM_ALG_AT: usize = 72;
const CHECKSUM_ALG_LEN: usize = 32;
const UUID_AT: usize = 168;
const UUID_LEN: usize = 40;
const SUBSYSTEM_AT: usize = 208;
const HDR_OFFSET_AT: usize = 256;
const CSUM_AT: usize = 448;
const CSUM_LEN: usize = 64;

/// Which copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Primary,
    Secondary,
}

/// A binary header that passed the checks that come before its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryHeader {
    pub which: Which,
    /// Where it lies, in bytes: 0 for the primary, its size for the secondary.
    pub offset: u64,
    /// The copy's size, binary header and JSON area: one of [`SECONDARY_OFFSETS`].
    pub hdr_size: u64,
    /// Raised by each update; the higher of two valid copies is the newer.
    pub seqid: u64,
    pub label: Option<String>,
    pub subsystem: Option<String>,
    pub uuid: String,
}

/// A header copy that passed its checksum, with its JSON metadata parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    pub binary: BinaryHeader,
    pub json: Value,
}

/// The copy to read, and what to log about the other.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    pub copy: Copy,
    /// Set when a copy is damaged or older than the other ("using the secondary header").
    pub warning: Option<String>,
}

/// Checks the first 4096 bytes of a copy read at `offset` (0: the primary; else a secondary,
/// whose size must be its offset), which tell how many bytes the whole copy has.
pub fn judge_binary(data: &[u8], offset: u64) -> Result<BinaryHeader, Error> {
    let which = if offset == 0 {
        Which::Primary
    } else {
        Which::Secondary
    };
    let magic = match which {
        Which::Primary => MAGIC_PRIMARY,
        Which::Secondary => MAGIC_SECONDARY,
    };
    if data.get(..magic.len()) != Some(magic.as_slice()) {
        return Err(Error::NotLuks);
    }
    let b = data
        .get(..BINARY_SIZE)
        .ok_or_else(|| invalid(format!("cut short at {} bytes", data.len())))?;
    let version = be_u16(b, VERSION_AT).unwrap_or_default();
    if version != 2 {
        return Err(invalid(format!("version {version}, not 2")));
    }
    let hdr_size = be_u64(b, HDR_SIZE_AT).unwrap_or_default();
    if !SECONDARY_OFFSETS.contains(&hdr_size) {
        return Err(invalid(format!(
            "size {hdr_size} is not a power of two from 16 KiB to 4 MiB"
        )));
    }
    let hdr_offset = be_u64(b, HDR_OFFSET_AT).unwrap_or_default();
    if hdr_offset != offset {
        return Err(invalid(format!(
            "it says it lies at {hdr_offset}, not {offset}"
        )));
    }
    if which == Which::Secondary && hdr_size != offset {
        return Err(invalid(format!(
            "its size {hdr_size} is not its offset {offset}"
        )));
    }
    let field = |at, len| bytes(b, at, len).unwrap_or_default();
    match c_string(field(CHECKSUM_ALG_AT, CHECKSUM_ALG_LEN)) {
        Some("sha256") => {}
        alg => {
            return Err(unsupported(format!(
                "checksum algorithm {:?}: not supported",
                alg.unwrap_or("?")
            )))
        }
    }
    let uuid = c_string(field(UUID_AT, UUID_LEN))
        .filter(|u| u.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| invalid("UUID is not NUL-terminated printable text"))?;
    Ok(BinaryHeader {
        which,
        offset,
        hdr_size,
        seqid: be_u64(b, SEQID_AT).unwrap_or_default(),
        label: label(field(LABEL_AT, LABEL_LEN)),
        subsystem: label(field(SUBSYSTEM_AT, LABEL_LEN)),
        uuid: uuid.to_owned(),
    })
}

/// A label or subsystem: text before the first NUL (cryptsetup keeps 47 bytes at most);
/// `None` when empty or not printable UTF-8, as nothing to match a device by.
fn label(field: &[u8]) -> Option<String> {
    let field = field.get(..LABEL_LEN - 1)?;
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = std::str::from_utf8(field.get(..end)?).ok()?;
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_owned())
}

/// Checks a whole copy read at `offset` (at least its `hdr_size` bytes): its binary header,
/// its checksum and its JSON area (an object from the first byte, then NULs to the end).
pub fn judge_copy(data: &[u8], offset: u64) -> Result<Copy, Error> {
    let binary = judge_binary(data, offset)?;
    let size = usize::try_from(binary.hdr_size).unwrap_or(usize::MAX);
    let copy = data
        .get(..size)
        .ok_or_else(|| invalid(format!("cut short at {} of its {size} bytes", data.len())))?;
    if checksum(copy).as_slice() != bytes_at(copy, CSUM_AT, 32) {
        return Err(invalid("checksum mismatch"));
    }
    let area = copy.get(BINARY_SIZE..).unwrap_or_default();
    if area.first() != Some(&b'{') {
        return Err(invalid("JSON area does not start with an object"));
    }
    let end = area
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| invalid("JSON area has no terminating NUL"))?;
    if area.get(end..).unwrap_or_default().iter().any(|&b| b != 0) {
        return Err(invalid("JSON area holds more after its terminating NUL"));
    }
    let json = json::parse(area).map_err(|e| invalid(format!("JSON metadata: {e}")))?;
    Ok(Copy { binary, json })
}

fn bytes_at(b: &[u8], at: usize, len: usize) -> &[u8] {
    bytes(b, at, len).unwrap_or_default()
}

/// SHA-256 over a copy with its checksum field read as zeros.
pub fn checksum(copy: &[u8]) -> [u8; 32] {
    let (head, rest) = copy.split_at_checked(CSUM_AT).unwrap_or((copy, &[]));
    let tail = rest.get(CSUM_LEN..).unwrap_or_default();
    let mut hash = Sha256::new();
    hash.update(head);
    hash.update([0u8; CSUM_LEN]);
    hash.update(tail);
    hash.finalize().into()
}

/// Where to look for the secondary copy: at the primary's size first when its binary header
/// gave one, then at every other size cryptsetup allows.
pub fn secondary_offsets(primary_size: Option<u64>) -> Vec<u64> {
    let first = primary_size.filter(|s| SECONDARY_OFFSETS.contains(s));
    first
        .into_iter()
        .chain(SECONDARY_OFFSETS.into_iter().filter(|&o| Some(o) != first))
        .collect()
}

/// What a copy's failure says in a message.
fn why(e: &Error) -> String {
    match e {
        Error::NotLuks => "no LUKS2 magic".into(),
        other => other.to_string(),
    }
}

/// Of the two copies' judgements, the valid one, or the newer of two.
pub fn choose(
    primary: Result<Copy, Error>,
    secondary: Result<Copy, Error>,
) -> Result<Chosen, Error> {
    let (copy, warning) = match (primary, secondary) {
        (Ok(p), Ok(s)) if s.binary.seqid > p.binary.seqid => {
            let warning = format!(
                "the primary LUKS2 header is older (seqid {}) than the secondary (seqid {}): using the secondary header",
                p.binary.seqid, s.binary.seqid
            );
            (s, Some(warning))
        }
        (Ok(p), Ok(s)) => {
            let warning = (p.binary.seqid > s.binary.seqid).then(|| {
                format!(
                    "the secondary LUKS2 header is older (seqid {}) than the primary (seqid {})",
                    s.binary.seqid, p.binary.seqid
                )
            });
            (p, warning)
        }
        (Ok(p), Err(e)) => (
            p,
            Some(format!(
                "the secondary LUKS2 header is damaged ({})",
                why(&e)
            )),
        ),
        (Err(e), Ok(s)) => {
            let warning = format!(
                "the primary LUKS2 header is damaged ({}): using the secondary header",
                why(&e)
            );
            (s, Some(warning))
        }
        (Err(Error::NotLuks), Err(Error::NotLuks)) => return Err(Error::NotLuks),
        (Err(p), Err(s)) => {
            return Err(invalid(format!(
                "both LUKS2 headers are damaged: the primary ({}), the secondary ({})",
                why(&p),
                why(&s)
            )))
        }
    };
    Ok(Chosen { copy, warning })
}

/// The volume the chosen copy describes.
pub fn volume(chosen: &Chosen) -> Result<Volume, Error> {
    let binary = &chosen.copy.binary;
    let m = metadata::parse(&chosen.copy.json, binary.hdr_size)?;
    let warnings = chosen.warning.iter().cloned().chain(m.warnings).collect();
    Ok(Volume {
        version: 2,
        uuid: binary.uuid.clone(),
        label: binary.label.clone(),
        subsystem: binary.subsystem.clone(),
        key_size: m.key_size,
        segment: m.segment,
        keyslots: m.keyslots,
        digest: m.digest,
        warnings,
    })
}

/// The whole reading over the device's first bytes (both copies: twice the header's size).
/// A copy beyond `start` counts as unreadable.
pub fn read(start: &[u8]) -> Result<Volume, Error> {
    let at = |offset: u64| -> Result<Copy, Error> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|o| start.get(o..))
            .ok_or(Error::NotLuks)?;
        judge_copy(bytes, offset)
    };
    let primary = at(0);
    let candidates = match &primary {
        Ok(p) => vec![p.binary.hdr_size],
        Err(_) => secondary_offsets(judge_binary(start, 0).ok().map(|b| b.hdr_size)),
    };
    // The first valid copy; failing that, the first failure that found a header at all.
    let mut secondary = Err(Error::NotLuks);
    for offset in candidates {
        let copy = at(offset);
        match (&copy, &secondary) {
            (Ok(_), _) => {
                secondary = copy;
                break;
            }
            (Err(Error::NotLuks), _) => {}
            (Err(_), Err(Error::NotLuks)) => secondary = copy,
            (Err(_), _) => {}
        }
    }
    volume(&choose(primary, secondary)?)
}
