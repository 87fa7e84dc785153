//! Reading a directory with getdents64 into a buffer of our own, rather than through
//! opendir(3).
//!
//! Why: musl's opendir and fdopendir allocate the `DIR` with musl's own malloc, which the
//! init otherwise never calls (its memory comes from baton::init::alloc). Under an emulated CPU
//! (qemu's TCG) that first malloc cost 11-13 ms of the boot, measured inside the emptying
//! of the initramfs. The parsing is a pure function over the kernel's records, tested below.

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd};

/// What the kernel says an entry is (`d_type`); filesystems may not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Directory,
    Other,
    Unknown,
}

/// One directory entry: its name (bytes, never `.` or `..`) and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub kind: Kind,
}

impl Entry {
    /// The name as text, when it is UTF-8 (sysfs names always are).
    pub fn name_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.name).ok()
    }
}

/// The kernel's buffer for one getdents64 call; each call returns as many whole records as
/// fit.
const BUFFER: usize = 8192;
/// `linux_dirent64`: d_ino (8), d_off (8), d_reclen (2), d_type (1), then the name.
const NAME_AT: usize = 19;
const RECLEN_AT: usize = 16;
const TYPE_AT: usize = 18;
/// `DT_DIR` and `DT_UNKNOWN` from <dirent.h>.
const DT_DIR: u8 = 4;
const DT_UNKNOWN: u8 = 0;

/// The entries of the directory open as `dir`, from its current position to its end, at
/// most `limit` of them (a bound for a directory that never ends).
pub fn read<Fd: AsFd>(dir: Fd, limit: usize) -> Result<Vec<Entry>, Errno> {
    let mut entries = Vec::new();
    let mut buf = vec![0u8; BUFFER];
    // Every call returns at least one record or ends the loop, so `limit` calls suffice.
    for _ in 0..=limit {
        if entries.len() >= limit {
            break;
        }
        // SAFETY: the buffer is valid for writes of its length; the kernel writes at most
        // that many bytes and returns how many.
        let got = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_fd().as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let got = usize::try_from(got).map_err(|_| Errno::last())?;
        if got == 0 {
            break;
        }
        parse(buf.get(..got).unwrap_or_default(), &mut entries, limit);
    }
    Ok(entries)
}

/// The entries of the directory at `path` (see [`read`]).
pub fn read_path(path: &str, limit: usize) -> Result<Vec<Entry>, Errno> {
    let dir = open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    read(&dir, limit)
}

/// Appends the entries of one buffer of `linux_dirent64` records to `out`, skipping `.`
/// and `..`, stopping at `limit` entries or at the first record that does not fit.
pub fn parse(mut buf: &[u8], out: &mut Vec<Entry>, limit: usize) {
    while out.len() < limit {
        let Some(reclen) = buf
            .get(RECLEN_AT..RECLEN_AT + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(|b| usize::from(u16::from_ne_bytes(b)))
        else {
            return;
        };
        let (Some(record), Some(rest)) = (buf.get(..reclen), buf.get(reclen..)) else {
            return;
        };
        if reclen <= NAME_AT {
            return;
        }
        let name = record.get(NAME_AT..).unwrap_or_default();
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        if name != b"." && name != b".." && !name.is_empty() {
            let kind = match record.get(TYPE_AT) {
                Some(&DT_DIR) => Kind::Directory,
                Some(&DT_UNKNOWN) | None => Kind::Unknown,
                Some(_) => Kind::Other,
            };
            out.push(Entry {
                name: name.to_vec(),
                kind,
            });
        }
        buf = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record as the kernel lays it out, padded to 8 bytes.
    fn record(name: &str, kind: u8) -> Vec<u8> {
        let len = (NAME_AT + name.len() + 1).div_ceil(8) * 8;
        let mut r = vec![0u8; len];
        r[RECLEN_AT..RECLEN_AT + 2].copy_from_slice(&u16::try_from(len).unwrap().to_ne_bytes());
        r[TYPE_AT] = kind;
        r[NAME_AT..NAME_AT + name.len()].copy_from_slice(name.as_bytes());
        r
    }

    #[test]
    fn reads_names_and_kinds_without_dots() {
        let buf = [
            record(".", DT_DIR),
            record("..", DT_DIR),
            record("lib", DT_DIR),
            record("init", 8),
            record("odd", DT_UNKNOWN),
        ]
        .concat();
        let mut out = Vec::new();
        parse(&buf, &mut out, 100);
        let got: Vec<(&str, Kind)> = out
            .iter()
            .map(|e| (e.name_str().unwrap(), e.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("lib", Kind::Directory),
                ("init", Kind::Other),
                ("odd", Kind::Unknown)
            ]
        );
    }

    #[test]
    fn stops_at_the_limit_and_at_broken_records() {
        let buf = [record("a", 8), record("b", 8), record("c", 8)].concat();
        let mut out = Vec::new();
        parse(&buf, &mut out, 2);
        assert_eq!(out.len(), 2);
        // A record claiming more than the buffer holds, or too little for a name, ends it.
        let mut broken = record("a", 8);
        broken[RECLEN_AT..RECLEN_AT + 2].copy_from_slice(&999u16.to_ne_bytes());
        let mut out = Vec::new();
        parse(&[record("x", 8), broken].concat(), &mut out, 100);
        assert_eq!(out.len(), 1);
        let mut zero = record("a", 8);
        zero[RECLEN_AT..RECLEN_AT + 2].copy_from_slice(&0u16.to_ne_bytes());
        let mut out = Vec::new();
        parse(&zero, &mut out, 100);
        assert!(out.is_empty());
        parse(&[1, 2, 3], &mut out, 100);
        assert!(out.is_empty());
    }

    #[test]
    fn reads_a_real_directory() {
        let dir = std::env::temp_dir().join(format!("baton-dirents-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("file"), b"x").unwrap();
        let mut names: Vec<(String, Kind)> = read_path(dir.to_str().unwrap(), 100)
            .unwrap()
            .into_iter()
            .map(|e| (e.name_str().unwrap().to_owned(), e.kind))
            .collect();
        names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names.len(), 2);
        assert_eq!(names[0].0, "file");
        assert_eq!(names[1], ("sub".to_owned(), Kind::Directory));
    }
}
