//! Modules the builder packed with lz4 (`.ko.lz4`): a generic image carries some 170 modules
//! of which a boot loads a dozen, and a kernel without MODULE_DECOMPRESS (Debian's 6.1)
//! cannot unpack a module itself. Packing each on its own lets the kernel unpack the image
//! without unpacking them all; the few that load are unpacked here, into memory, and handed
//! over with `init_module(2)`. The drivers the root is known to need are stored plain and
//! go through `finit_module` as before.

use crate::bounded::read_bounded;
use crate::lz4_legacy;
use std::ffi::CStr;

/// What the builder appends to a packed module's file name.
pub const SUFFIX: &str = ".ko.lz4";

/// The largest packed file read: several times the largest storage or filesystem module
/// (btrfs, some 4 MB unpacked on Debian's 6.1).
const MAX_PACKED: u64 = 64 << 20;
/// The most a packed module may unpack to, checked before anything is allocated for it.
const MAX_UNPACKED: usize = 256 << 20;

/// Whether the builder packed this module file.
pub fn is_packed(path: &str) -> bool {
    path.ends_with(SUFFIX)
}

/// Unpacks the module at `path` and inserts it. The outer error is the file's (it could not
/// be read or unpacked), the inner one the kernel's answer.
pub fn insert(path: &str, params: &CStr) -> Result<nix::Result<()>, String> {
    let module = unpack(path)?;
    Ok(nix::kmod::init_module(&module, params))
}

fn unpack(path: &str) -> Result<Vec<u8>, String> {
    let packed =
        read_bounded(path, MAX_PACKED).map_err(|e| format!("failed to read {path}: {e}"))?;
    match lz4_legacy::decompress(&packed, MAX_UNPACKED) {
        Ok(Some((module, _))) => Ok(module),
        Ok(None) => Err(format!("{path} unpacks to more than {MAX_UNPACKED} bytes")),
        Err(e) => Err(format!("failed to unpack {path}: {e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A legacy stream of one block that holds `data` as literals: a valid packed file,
    /// made without the host's compressor.
    fn literals_only(data: &[u8]) -> Vec<u8> {
        let mut block = vec![0xf0];
        let mut more = data.len() - 15;
        while more >= 255 {
            block.push(255);
            more -= 255;
        }
        block.push(more as u8);
        block.extend_from_slice(data);
        let mut stream = lz4_legacy::MAGIC.to_vec();
        stream.extend_from_slice(&(block.len() as u32).to_le_bytes());
        stream.extend_from_slice(&block);
        stream
    }

    #[test]
    fn a_packed_module_unpacks_to_its_bytes_and_damage_is_named() {
        let dir = std::env::temp_dir().join(format!("baton-packed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let module: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let good = dir.join("m.ko.lz4");
        std::fs::write(&good, literals_only(&module)).unwrap();
        assert_eq!(unpack(good.to_str().unwrap()).unwrap(), module);

        let bad = dir.join("bad.ko.lz4");
        std::fs::write(&bad, b"\x7fELF not packed").unwrap();
        let err = unpack(bad.to_str().unwrap()).unwrap_err();
        assert!(
            err.contains("bad.ko.lz4") && err.contains("unpack"),
            "{err}"
        );
        let err = unpack(dir.join("missing.ko.lz4").to_str().unwrap()).unwrap_err();
        assert!(
            err.contains("failed to read") && err.contains("missing.ko.lz4"),
            "{err}"
        );
        assert!(is_packed("/lib/modules/6.1/kernel/fs/xfs/xfs.ko.lz4"));
        assert!(!is_packed("/lib/modules/6.1/kernel/fs/xfs/xfs.ko.xz"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
