//! Firmware RAID members, whose arrays' metadata lives outside md (mdadm's "external"
//! metadata): Intel Matrix Storage (IMSM, blkid's `isw_raid_member`), with its signature in
//! the second-to-last sector, and SNIA DDF (`ddf_raid_member`), its anchor header in the
//! last. baton assembles neither; recognising them keeps their disks from being taken for
//! the filesystem their first array holds at sector 0, and lets the boot say what they are.

use super::device::{Filesystem, ReadAt};

const ISW_SIGNATURE: &[u8] = b"Intel Raid ISM Cfg Sig. ";
/// The version follows the signature: `1.0.00`, `1.3.00` ...
const ISW_VERSION_LEN: usize = 6;
const DDF_MAGIC: [u8; 4] = [0xde, 0x11, 0xde, 0x11];

/// Reads the last two sectors once and looks for either.
pub fn probe(dev: &dyn ReadAt) -> Option<Filesystem> {
    let size = dev.size()?;
    let at = size.checked_sub(1024)?;
    let tail = dev.read_at(at, 1024)?;
    let (isw, ddf) = tail.split_at(512);
    if isw.starts_with(ISW_SIGNATURE) {
        let version = isw
            .get(ISW_SIGNATURE.len()..ISW_SIGNATURE.len() + ISW_VERSION_LEN)
            .map(|v| String::from_utf8_lossy(v).trim_end_matches('\0').to_owned());
        return Some(Filesystem {
            fstype: "isw_raid_member".into(),
            version,
            ..Filesystem::default()
        });
    }
    if ddf.starts_with(&DDF_MAGIC) {
        return Some(Filesystem {
            fstype: "ddf_raid_member".into(),
            ..Filesystem::default()
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_at_the_end() {
        let mut disk = vec![0u8; 64 * 1024];
        let isw_at = disk.len() - 1024;
        disk[isw_at..isw_at + 30].copy_from_slice(b"Intel Raid ISM Cfg Sig. 1.3.00");
        let found = probe(&disk).unwrap();
        assert_eq!(found.fstype, "isw_raid_member");
        assert_eq!(found.version.as_deref(), Some("1.3.00"));
        let mut disk = vec![0u8; 64 * 1024];
        let ddf_at = disk.len() - 512;
        disk[ddf_at..ddf_at + 4].copy_from_slice(&DDF_MAGIC);
        assert_eq!(probe(&disk).unwrap().fstype, "ddf_raid_member");
        assert!(probe(&vec![0u8; 64 * 1024]).is_none());
        assert!(probe(&vec![0u8; 100]).is_none());
    }
}
