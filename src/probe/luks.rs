//! LUKS volumes, cryptsetup's on-disk format: the header's version, UUID and (LUKS2) label,
//! as blkid reports them (TYPE=crypto_LUKS). Both versions start with the same magic and a
//! big-endian version; LUKS2's binary header keeps LUKS1's UUID offset.

use super::device::{Filesystem, ReadAt};

const MAGIC: &[u8] = b"LUKS\xba\xbe";
/// `u16`, big-endian.
const VERSION_AT: usize = 6;
/// LUKS2 only: the label, NUL-padded.
const LABEL_AT: usize = 24;
const LABEL_LEN: usize = 48;
/// Both versions: the UUID as text, NUL-padded.
const UUID_AT: usize = 168;
const UUID_LEN: usize = 40;

pub fn probe(dev: &dyn ReadAt) -> Option<Filesystem> {
    let header = dev.read_at(0, UUID_AT + UUID_LEN)?;
    if header.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    let version = u16::from_be_bytes(header.get(VERSION_AT..VERSION_AT + 2)?.try_into().ok()?);
    if version != 1 && version != 2 {
        return None;
    }
    let label = match version {
        2 => text(header.get(LABEL_AT..LABEL_AT + LABEL_LEN)?),
        _ => None,
    };
    Some(Filesystem {
        fstype: "crypto_LUKS".into(),
        uuid: text(header.get(UUID_AT..UUID_AT + UUID_LEN)?),
        label,
        version: Some(version.to_string()),
        uuid_sub: None,
    })
}

/// A NUL-padded text field: `None` when empty or not printable ASCII (a damaged header says
/// nothing trustworthy).
fn text(field: &[u8]) -> Option<String> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let bytes = field.get(..end)?;
    if bytes.is_empty() || !bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return None;
    }
    String::from_utf8(bytes.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u16, uuid: &str, label: &str) -> Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[..6].copy_from_slice(MAGIC);
        h[6..8].copy_from_slice(&version.to_be_bytes());
        h[LABEL_AT..LABEL_AT + label.len()].copy_from_slice(label.as_bytes());
        h[UUID_AT..UUID_AT + uuid.len()].copy_from_slice(uuid.as_bytes());
        h
    }

    #[test]
    fn both_versions() {
        let uuid = "7a2c0b1e-2222-4000-8000-000000000002";
        let two = probe(&header(2, uuid, "cryptroot")).unwrap();
        assert_eq!(two.fstype, "crypto_LUKS");
        assert_eq!(two.uuid.as_deref(), Some(uuid));
        assert_eq!(two.label.as_deref(), Some("cryptroot"));
        assert_eq!(two.version.as_deref(), Some("2"));
        // LUKS1 has no label: what lies there is its cipher name.
        let one = probe(&header(1, uuid, "aes")).unwrap();
        assert_eq!((one.label, one.version.as_deref()), (None, Some("1")));
        assert!(probe(&header(3, uuid, "")).is_none());
        let mut bad = header(2, uuid, "");
        bad[UUID_AT] = 0xff;
        assert_eq!(probe(&bad).unwrap().uuid, None);
    }
}
