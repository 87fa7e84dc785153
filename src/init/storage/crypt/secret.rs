//! Memory for passphrases, key files and keys: its own pages, locked so they are never
//! swapped out (zram or a swap device may be set up before the real init runs), and zeroed
//! before they are given back. Never copied into ordinary heap memory by this type: callers
//! read into it and derive from it in place.

use std::ptr::NonNull;

/// A fixed-capacity buffer of secret bytes; `len` of them are in use.
pub struct Secret {
    ptr: NonNull<u8>,
    capacity: usize,
    len: usize,
}

// SAFETY: the pages are owned by this value alone; nothing else holds the pointer.
unsafe impl Send for Secret {}

impl Secret {
    /// Room for `capacity` bytes, none in use yet. Fails only when the kernel has no
    /// memory to give; failing to lock is logged, not fatal (the secret is still zeroed).
    pub fn with_capacity(capacity: usize) -> Result<Secret, String> {
        let size = capacity.max(1);
        // SAFETY: an anonymous private mapping of `size` bytes; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "cannot map {size} bytes for a secret: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: the mapping just made; excluded from core dumps and forks' copies too.
        unsafe {
            if libc::mlock(ptr, size) != 0 {
                log::warn!(
                    "cannot lock a secret's memory: {}",
                    std::io::Error::last_os_error()
                );
            }
            libc::madvise(ptr, size, libc::MADV_DONTDUMP);
            libc::madvise(ptr, size, libc::MADV_DONTFORK);
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or("mmap returned no address")?;
        Ok(Secret {
            ptr,
            capacity: size,
            len: 0,
        })
    }

    /// `len` zero bytes, in use: for a key to be derived into.
    pub fn zeroed(len: usize) -> Result<Secret, String> {
        let mut secret = Secret::with_capacity(len)?;
        secret.len = len;
        Ok(secret)
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len <= capacity` bytes of the mapping, initialised (mmap zero-fills).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Appends one byte; false when full.
    pub fn push(&mut self, byte: u8) -> bool {
        if self.len == self.capacity {
            return false;
        }
        // SAFETY: `len < capacity`, inside the mapping.
        unsafe { self.ptr.as_ptr().add(self.len).write_volatile(byte) };
        self.len += 1;
        true
    }

    /// Forgets the last byte (Backspace), zeroing it.
    pub fn pop(&mut self) {
        if self.len > 0 {
            self.len -= 1;
            // SAFETY: the byte just forgotten, inside the mapping.
            unsafe { self.ptr.as_ptr().add(self.len).write_volatile(0) };
        }
    }

    /// Forgets everything (Ctrl-U), zeroing it.
    pub fn clear(&mut self) {
        while self.len > 0 {
            self.pop();
        }
    }

    /// Keeps only `range` of the bytes in use (a key file's `keyfile-offset`/`-size`).
    pub fn keep(&mut self, start: usize, len: usize) -> bool {
        let Some(end) = start.checked_add(len).filter(|end| *end <= self.len) else {
            return false;
        };
        self.as_mut_slice().copy_within(start..end, 0);
        while self.len > len {
            self.pop();
        }
        true
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left.
    pub fn spare(&self) -> usize {
        self.capacity - self.len
    }

    /// Reads everything `reader` gives into the spare room; Err when it does not fit.
    pub fn read_from(&mut self, reader: &mut impl std::io::Read) -> Result<(), String> {
        loop {
            if self.spare() == 0 {
                let mut probe = [0u8; 1];
                return match reader.read(&mut probe) {
                    Ok(0) => Ok(()),
                    Ok(_) => Err(format!("longer than {} bytes", self.capacity)),
                    Err(e) => Err(e.to_string()),
                };
            }
            // SAFETY: the spare room of the mapping, after the bytes in use.
            let room = unsafe {
                std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.len), self.spare())
            };
            match reader.read(room) {
                Ok(0) => return Ok(()),
                Ok(n) => self.len += n.min(room.len()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let base = self.ptr.as_ptr();
        for i in 0..self.capacity {
            // SAFETY: every byte of the mapping; volatile so the zeroing is not optimised
            // away as a dead store before the unmap.
            unsafe { base.add(i).write_volatile(0) };
        }
        // SAFETY: the mapping this value made, unmapped once.
        unsafe {
            libc::munlock(base.cast(), self.capacity);
            libc::munmap(base.cast(), self.capacity);
        }
    }
}

/// Zeroes `bytes` in a way the optimiser keeps: for ordinary buffers a secret passed
/// through (an ioctl's message).
pub fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: a valid, exclusive reference.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_edited_and_kept() {
        let mut s = Secret::with_capacity(8).unwrap();
        for b in b"secrex" {
            assert!(s.push(*b));
        }
        s.pop();
        assert!(s.push(b't'));
        assert_eq!(s.as_slice(), b"secret");
        assert!(s.keep(1, 3));
        assert_eq!(s.as_slice(), b"ecr");
        assert!(!s.keep(2, 5));
        s.clear();
        assert!(s.is_empty());
    }

    #[test]
    fn reading_is_bounded() {
        let mut s = Secret::with_capacity(4).unwrap();
        assert!(s.read_from(&mut &b"1234"[..]).is_ok());
        assert_eq!(s.as_slice(), b"1234");
        let mut s = Secret::with_capacity(4).unwrap();
        assert!(s.read_from(&mut &b"12345"[..]).is_err());
    }
}
