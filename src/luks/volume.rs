//! What a LUKS header says, in the one shape both versions are read into: the data segment
//! to map, the keyslots to try and the digest that proves a candidate volume key.

use std::fmt;

/// A LUKS volume as its header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// 1 or 2.
    pub version: u8,
    /// As written in the header (cryptsetup writes the lowercase, dashed form); may be empty.
    pub uuid: String,
    /// LUKS2 only.
    pub label: Option<String>,
    /// LUKS2 only.
    pub subsystem: Option<String>,
    /// Bytes of the volume key.
    pub key_size: u32,
    pub segment: Segment,
    /// The keyslots that hold the volume key of [`segment`](Self::segment), in the order to
    /// try them: by priority (preferred, normal, then those to be ignored), then by number.
    pub keyslots: Vec<Keyslot>,
    pub digest: Digest,
    /// What the init should log though it could read the volume: a damaged header copy, a
    /// keyslot skipped.
    pub warnings: Vec<String>,
}

impl Volume {
    /// The keyslots to try unattended: all but those whose priority says to ignore them.
    pub fn unlock_order(&self) -> impl Iterator<Item = &Keyslot> {
        self.keyslots
            .iter()
            .filter(|k| k.priority != Priority::Ignore)
    }
}

/// The encrypted data: what the dm-crypt table maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Where the data starts on the device, in bytes (0 only with a detached header).
    pub offset: u64,
    /// Its length in bytes; `None`: to the end of the device.
    pub size: Option<u64>,
    /// The IV of the segment's first sector, in 512-byte sectors (dm-crypt's iv_offset).
    pub iv_tweak: u64,
    /// cryptsetup's form, as dm-crypt's table takes it: `aes-xts-plain64`.
    pub cipher: String,
    /// Bytes per encryption sector: 512, 1024, 2048 or 4096.
    pub sector_size: u32,
    /// LUKS2's persistent activation flags (none for LUKS1).
    pub flags: Flags,
}

/// LUKS2's persistent activation flags (`config.flags`), each a dm-crypt table option.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub allow_discards: bool,
    pub same_cpu_crypt: bool,
    pub submit_from_crypt_cpus: bool,
    pub no_read_workqueue: bool,
    pub no_write_workqueue: bool,
    /// Flags baton does not know, for the log.
    pub unknown: Vec<String>,
}

/// One keyslot: a passphrase's way to the volume key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyslot {
    /// 0..=7 (LUKS1), 0..=31 (LUKS2).
    pub id: u32,
    pub priority: Priority,
    /// Bytes of the volume key it holds.
    pub key_size: u32,
    pub area: Area,
    pub kdf: Kdf,
    pub af: Af,
}

/// LUKS2 keyslot priorities (LUKS1 slots are all normal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// 0: only when asked for by number.
    Ignore,
    /// 1.
    Normal,
    /// 2: tried first.
    Prefer,
}

/// Where the keyslot's split key lies, encrypted with the key the KDF derives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    /// Bytes from the start of the device.
    pub offset: u64,
    /// Bytes to read and decrypt: the split key (key_size × stripes) rounded up to whole
    /// 512-byte sectors, as cryptsetup reads it. LUKS2's area may be longer (luksDump's "Area
    /// length"); it is checked to hold this much.
    pub size: u64,
    /// cryptsetup's form, `aes-xts-plain64`; see [`kernel_cipher`](super::kernel_cipher).
    pub cipher: String,
    /// Bytes of the key the KDF derives for it.
    pub key_size: u32,
}

/// How a passphrase becomes the area's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kdf {
    Pbkdf2 {
        hash: String,
        iterations: u32,
        salt: Vec<u8>,
    },
    Argon2 {
        variant: Argon2Variant,
        /// Passes over the memory.
        time: u32,
        /// KiB.
        memory: u32,
        /// Lanes (cryptsetup's "cpus").
        lanes: u32,
        salt: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Argon2Variant {
    I,
    Id,
}

/// The anti-forensic splitter (LUKS1's; the only one LUKS2 defines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Af {
    pub stripes: u32,
    pub hash: String,
}

/// PBKDF2 of a candidate volume key, to be compared with `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub hash: String,
    pub iterations: u32,
    pub salt: Vec<u8>,
    /// Its length is the PBKDF2 output length: 20 bytes for LUKS1.
    pub value: Vec<u8>,
    /// The keyslots it covers, by number: only these hold the key of the segment (LUKS2's
    /// digest covers segment 0; LUKS1's covers its active keyslots).
    pub keyslots: Vec<u32>,
}

/// Why a header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No LUKS header: no magic where either version puts one.
    NotLuks,
    /// The header breaks the format: damaged, or written by something that does not keep to it.
    Invalid(String),
    /// A well-formed header for something baton cannot do (integrity, reencryption, ...).
    Unsupported(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotLuks => f.write_str("not a LUKS header"),
            Error::Invalid(why) | Error::Unsupported(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {}

pub(crate) fn invalid(why: impl Into<String>) -> Error {
    Error::Invalid(why.into())
}

pub(crate) fn unsupported(why: impl Into<String>) -> Error {
    Error::Unsupported(why.into())
}

/// cryptsetup's bound on AF stripes is exactly 4000 (it writes that and opens nothing else);
/// fewer are harmless to read, more would only make a header cost more to try.
pub const MAX_STRIPES: u32 = 4000;

/// Key sizes, in bytes, of both the volume key and an area's key: from AES-128's 16 to 64,
/// XTS with a 256-bit cipher (AES, Serpent, Twofish), the largest cryptsetup offers. With
/// [`MAX_STRIPES`] this bounds a keyslot's split key at 256000 bytes.
pub const KEY_BYTES: std::ops::RangeInclusive<u32> = 16..=64;

pub const SECTOR: u64 = 512;

/// The bytes a split key of `key_size` × `stripes` takes, in whole 512-byte sectors.
pub(crate) fn split_key_bytes(key_size: u32, stripes: u32) -> u64 {
    (u64::from(key_size) * u64::from(stripes)).div_ceil(SECTOR) * SECTOR
}

/// A name from the header (a cipher, a mode, a hash): 1 to 64 printable ASCII characters
/// without spaces.
pub(crate) fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Orders keyslots as [`Volume::keyslots`] says.
pub(crate) fn sort_keyslots(keyslots: &mut [Keyslot]) {
    keyslots.sort_unstable_by_key(|k| (std::cmp::Reverse(k.priority), k.id));
}

/// Two keyslots whose areas share a byte, if any, of areas as (offset, length, keyslot).
pub(crate) fn overlapping(areas: impl IntoIterator<Item = (u64, u64, u32)>) -> Option<(u32, u32)> {
    let mut spans: Vec<(u64, u64, u32)> = areas
        .into_iter()
        .map(|(offset, len, id)| (offset, offset.saturating_add(len), id))
        .collect();
    spans.sort_unstable();
    spans.windows(2).find_map(|pair| match pair {
        [(_, end, a), (start, _, b)] if start < end => Some(((*a).min(*b), (*a).max(*b))),
        _ => None,
    })
}
