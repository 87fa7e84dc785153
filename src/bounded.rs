//! Reading a file whose size is not ours to trust (sysfs, /proc, a tree's configuration, the
//! image's own files), up to a limit.

/// Reads at most `limit` bytes of a file; a longer file is an error, not a silent cut.
pub fn read_bounded(path: &str, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!("longer than {limit} bytes")));
    }
    Ok(bytes)
}
