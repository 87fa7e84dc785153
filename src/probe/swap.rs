//! Linux swap (include/linux/swap.h, `union swap_header`), for `resume=UUID=` and
//! `LABEL=`: the signature sits in the last 10 bytes of the first page, and version-1
//! headers carry a UUID and a label after the 1024-byte boot block. A swap area holding a
//! hibernation image has the signature replaced (kernel/power/swap.c `HIBERNATE_SIG`, and
//! the userspace suspend tools' own), but keeps its UUID and label: blkid calls it
//! `swsuspend`.

use super::device::{Filesystem, ReadAt};
use super::fields::{label_string, le32, uuid_string};

/// The page sizes the signature may end; x86 has only 4 KiB, the others are for arm64,
/// ppc64 and friends, as blkid looks.
const PAGE_SIZES: [u64; 4] = [4096, 8192, 16384, 65536];
const SIGNATURE_LEN: usize = 10;
const SWAP_SIGNATURES: [&[u8]; 2] = [b"SWAPSPACE2", b"SWAP-SPACE"];
const SUSPEND_SIGNATURES: [&[u8]; 4] = [
    b"S1SUSPEND\0",
    b"S2SUSPEND\0",
    b"ULSUSPEND\0",
    b"LINHIB0001",
];
/// `struct swap_header.info` after the boot block: version, last_page, nr_badpages, then
/// the 16-byte UUID and the 16-byte volume name.
const INFO: u64 = 1024;
const INFO_LEN: usize = 44;
const VERSION: usize = 0;
const UUID: usize = 12;
const LABEL: usize = 28;
const LABEL_LEN: usize = 16;

pub fn probe(dev: &dyn ReadAt) -> Option<Filesystem> {
    let fstype = PAGE_SIZES.iter().find_map(|&page| {
        let sig = dev.read_at(page - SIGNATURE_LEN as u64, SIGNATURE_LEN)?;
        if SWAP_SIGNATURES.contains(&sig.as_slice()) {
            Some("swap")
        } else if SUSPEND_SIGNATURES.contains(&sig.as_slice()) {
            Some("swsuspend")
        } else {
            None
        }
    })?;
    let info = dev.read_at(INFO, INFO_LEN)?;
    // Version 0 (SWAP-SPACE) has no UUID or label; neither does a header of a version
    // this code does not know.
    let (uuid, label) = if le32(&info, VERSION)? == 1 {
        (
            uuid_string(info.get(UUID..UUID + 16)?),
            label_string(info.get(LABEL..LABEL + LABEL_LEN)?),
        )
    } else {
        (None, None)
    };
    Some(Filesystem {
        fstype: fstype.to_owned(),
        uuid,
        label,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4 KiB-page swap header as mkswap writes it.
    fn header(signature: &[u8], version: u32) -> Vec<u8> {
        let mut page = vec![0u8; 4096];
        page[1024..1028].copy_from_slice(&version.to_le_bytes());
        page[1036..1052].copy_from_slice(&(1..=16).collect::<Vec<u8>>());
        page[1052..1056].copy_from_slice(b"swp1");
        page[4086..].copy_from_slice(signature);
        page
    }

    #[test]
    fn swap_and_hibernated_swap() {
        let fs = probe(&header(b"SWAPSPACE2", 1)).unwrap();
        assert_eq!(fs.fstype, "swap");
        assert_eq!(
            fs.uuid.as_deref(),
            Some("01020304-0506-0708-090a-0b0c0d0e0f10")
        );
        assert_eq!(fs.label.as_deref(), Some("swp1"));
        let fs = probe(&header(b"S1SUSPEND\0", 1)).unwrap();
        assert_eq!(fs.fstype, "swsuspend");
        assert_eq!(fs.label.as_deref(), Some("swp1"));
        assert_eq!(probe(&header(b"SWAP-SPACE", 0)).unwrap().uuid, None);
        assert_eq!(probe(&header(b"NOTASWAP!!", 1)), None);
        assert_eq!(probe(&vec![0u8; 100]), None);
    }
}
