//! Reading a file whose size is not ours to trust (sysfs, /proc, a tree's configuration, the
//! image's own files), up to a limit.

use std::io::Read;

/// Reads at most `limit` bytes of a file; a longer file is an error, not a silent cut.
///
/// The file's size, as fstat gives it, is only a hint (sysfs says 4096 for every attribute,
/// /proc says 0), and a hint bounded by the limit: the buffer is reserved once for it, so a
/// module of a megabyte is read into one allocation instead of by doubling, and a lying
/// size costs no more than the limit allows anyway.
pub fn read_bounded(path: &str, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let hint = file
        .metadata()
        .map_or(0, |m| m.len())
        .min(limit.saturating_add(1));
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(usize::try_from(hint).unwrap_or(0))
        .map_err(|_| std::io::Error::other(format!("cannot allocate {hint} bytes to read it")))?;
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!("longer than {limit} bytes")));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_whole_up_to_the_limit_and_refused_past_it() {
        let path = std::env::temp_dir().join(format!("baton-bounded-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 5000]).unwrap();
        let p = path.to_str().unwrap();
        let read = read_bounded(p, 5000).unwrap();
        assert_eq!(read, vec![7u8; 5000]);
        // Reserved once, for the file's size (one byte more at most, to see the end).
        assert!(read.capacity() <= 5001, "{}", read.capacity());
        let refused = read_bounded(p, 4999).unwrap_err();
        assert_eq!(refused.to_string(), "longer than 4999 bytes");
        std::fs::remove_file(&path).unwrap();
        // A size the file does not have: /proc says 0, and the whole is still read.
        let stat = read_bounded("/proc/self/stat", 1 << 16).unwrap();
        assert!(stat.ends_with(b"\n"), "{stat:?}");
        assert!(read_bounded("/proc/self/stat", 4).is_err());
    }
}
