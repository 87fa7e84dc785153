//! Handing a volume key to dm-crypt the way cryptsetup does for LUKS2: as a `logon` key in
//! the kernel's keyring (readable by the kernel only), named in the table as
//! `:SIZE:logon:DESCRIPTION`, so the key never travels in a table any process can ask
//! for. The key is added to this thread's keyring, which dm-crypt searches while it loads
//! the table, and revoked and unlinked right after: dm-crypt keeps its own copy.

use std::ffi::CString;

const KEY_SPEC_THREAD_KEYRING: libc::c_long = -1;
const KEYCTL_REVOKE: libc::c_long = 3;
const KEYCTL_UNLINK: libc::c_long = 9;

/// A key in this thread's keyring, revoked and unlinked when dropped.
pub struct LogonKey {
    serial: libc::c_long,
}

impl LogonKey {
    /// Adds `key` as `logon` key `description` (`cryptsetup:UUID-dN`).
    pub fn add(description: &str, key: &[u8]) -> Result<LogonKey, String> {
        let kind = c"logon";
        let desc = CString::new(description).map_err(|_| "a key description with a NUL")?;
        // SAFETY: NUL-terminated strings and a payload of `key.len()` readable bytes.
        let serial = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                kind.as_ptr(),
                desc.as_ptr(),
                key.as_ptr(),
                key.len(),
                KEY_SPEC_THREAD_KEYRING,
            )
        };
        if serial < 0 {
            return Err(format!(
                "cannot add the volume key to the kernel keyring: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(LogonKey { serial })
    }
}

impl Drop for LogonKey {
    fn drop(&mut self) {
        // SAFETY: keyctl on a key serial this value holds; failures leave nothing unsafe.
        unsafe {
            libc::syscall(libc::SYS_keyctl, KEYCTL_REVOKE, self.serial);
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_UNLINK,
                self.serial,
                KEY_SPEC_THREAD_KEYRING,
            );
        }
    }
}

/// The description cryptsetup gives a LUKS2 volume key: the volume's UUID and the digest
/// that checks it (`cryptsetup:7a2c...-d0`).
pub fn description(uuid: &str, digest: u32) -> String {
    format!("cryptsetup:{uuid}-d{digest}")
}
