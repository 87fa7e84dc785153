//! LUKS headers, cryptsetup's on-disk formats, read into what unlocking a volume takes: the
//! segment to map, the keyslots to try and the digest that recognises the volume key. Pure
//! functions over bytes, bounded whatever the bytes: the init reads the device and hands its
//! header over ([`luks2`] says which bytes, and in which order).
//!
//! - [`luks1`]: the 592-byte header of version 1.
//! - [`luks2`]: the two binary headers and the JSON metadata of version 2, with its own
//!   [`json`] and [`base64`] readers.
//! - [`Volume`]: both versions' common shape; [`kernel_cipher`] turns its cipher names into
//!   the kernel crypto API's.

pub mod base64;
mod cipher;
mod fields;
pub mod json;
pub mod luks1;
pub mod luks2;
mod volume;

pub use cipher::{kernel_cipher, Iv, KernelCipher};
pub use volume::{
    Af, Area, Argon2Variant, Digest, Error, Flags, Kdf, Keyslot, Priority, Segment, Volume,
    KEY_BYTES, MAX_STRIPES,
};

/// Both versions' magic at the device's start (LUKS2's primary header).
pub const MAGIC: &[u8; 6] = b"LUKS\xba\xbe";

/// The version of the LUKS header at the start of `start`, `None` without its magic.
pub fn version(start: &[u8]) -> Option<u16> {
    if start.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
        return None;
    }
    fields::be_u16(start, MAGIC.len())
}

/// The volume whose header is at the start of `start`: LUKS1 by its version, else LUKS2
/// (whose secondary header can stand in for a damaged primary, magic included). For LUKS2,
/// `start` holds both header copies, twice the header's size (32 KiB by default).
pub fn read(start: &[u8]) -> Result<Volume, Error> {
    match version(start) {
        Some(1) => luks1::parse(start),
        _ => luks2::read(start),
    }
}

#[cfg(test)]
mod tests;
