//! The kernel's device-mapper interface (`linux/dm-ioctl.h`): ioctls on `/dev/mapper/control`
//! carrying a `struct dm_ioctl` header and, for a table, its target specs. The encoding is
//! pure (what is sent, what comes back); [`Control`] makes the calls.

use std::os::fd::{AsRawFd, OwnedFd};

/// The interface version asked for: 4.x is every kernel since 2.6.
const VERSION: [u32; 3] = [4, 0, 0];
/// `sizeof(struct dm_ioctl)`: the header, with the data after it.
pub const HEADER_SIZE: usize = 312;
const NAME_AT: usize = 48;
pub const NAME_LEN: usize = 128;
const UUID_AT: usize = NAME_AT + NAME_LEN;
pub const UUID_LEN: usize = 129;
/// `sizeof(struct dm_target_spec)`, before its parameters.
const SPEC_SIZE: usize = 40;
const TARGET_TYPE_LEN: usize = 16;
/// Room for the kernel's answer to calls that return data (a device's status).
const REPLY_ROOM: usize = 16 * 1024;

/// `_IOWR(0xfd, nr, struct dm_ioctl)`.
const fn request(nr: u32) -> u32 {
    (3 << 30) | ((HEADER_SIZE as u32) << 16) | (0xfd << 8) | nr
}
pub const DM_VERSION: u32 = request(0);
pub const DM_DEV_CREATE: u32 = request(3);
pub const DM_DEV_REMOVE: u32 = request(4);
pub const DM_DEV_SUSPEND: u32 = request(6);
pub const DM_DEV_STATUS: u32 = request(7);
pub const DM_TABLE_LOAD: u32 = request(9);

pub const DM_READONLY_FLAG: u32 = 1 << 0;
pub const DM_SUSPEND_FLAG: u32 = 1 << 1;

/// One target of a table, as the kernel takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub start: u64,
    pub length: u64,
    pub kind: &'a str,
    pub params: &'a str,
}

/// A request: the header for device `name` (and `uuid`) with `flags`, then `data`.
pub fn message(
    name: &str,
    uuid: &str,
    flags: u32,
    target_count: u32,
    data: &[u8],
) -> Result<Vec<u8>, String> {
    if name.len() >= NAME_LEN || name.is_empty() || name.contains('/') {
        return Err(format!(
            "device-mapper name {name:?} is empty, too long or has a '/'"
        ));
    }
    if uuid.len() >= UUID_LEN {
        return Err(format!("device-mapper UUID {uuid:?} is too long"));
    }
    let size = HEADER_SIZE + data.len().max(REPLY_ROOM);
    let mut out = vec![0u8; size];
    let mut put = |at: usize, bytes: &[u8]| {
        if let Some(dest) = out.get_mut(at..at + bytes.len()) {
            dest.copy_from_slice(bytes);
        }
    };
    for (i, v) in VERSION.iter().enumerate() {
        put(i * 4, &v.to_ne_bytes());
    }
    put(12, &u32::try_from(size).unwrap_or(u32::MAX).to_ne_bytes());
    put(16, &(HEADER_SIZE as u32).to_ne_bytes());
    put(20, &target_count.to_ne_bytes());
    put(28, &flags.to_ne_bytes());
    put(NAME_AT, name.as_bytes());
    put(UUID_AT, uuid.as_bytes());
    put(HEADER_SIZE, data);
    Ok(out)
}

/// The data of `DM_TABLE_LOAD`: each target's spec, then its parameters, NUL-terminated and
/// padded to 8 bytes; `next` is the offset of the following spec from this one's start.
pub fn table_data(targets: &[Target<'_>]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for t in targets {
        if t.kind.len() >= TARGET_TYPE_LEN || t.params.contains('\0') {
            return Err(format!("device-mapper target {:?} cannot be sent", t.kind));
        }
        let params_len = (t.params.len() + 1).next_multiple_of(8);
        let next = u32::try_from(SPEC_SIZE + params_len).map_err(|_| "a table line too long")?;
        let mut spec = Vec::with_capacity(SPEC_SIZE);
        spec.extend_from_slice(&t.start.to_ne_bytes());
        spec.extend_from_slice(&t.length.to_ne_bytes());
        spec.extend_from_slice(&0i32.to_ne_bytes()); // status, out only
        spec.extend_from_slice(&next.to_ne_bytes());
        spec.extend_from_slice(t.kind.as_bytes());
        spec.resize(SPEC_SIZE, 0);
        out.extend_from_slice(&spec);
        out.extend_from_slice(t.params.as_bytes());
        out.resize(out.len() + params_len - t.params.len(), 0);
    }
    Ok(out)
}

/// What a reply's header says: the interface version and the device's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub version: [u32; 3],
    pub flags: u32,
    /// The device's number (`dev_t`, the kernel's encoding).
    pub dev: u64,
}

pub fn reply(buffer: &[u8]) -> Option<Reply> {
    let u32_at = |at: usize| Some(u32::from_ne_bytes(buffer.get(at..at + 4)?.try_into().ok()?));
    Some(Reply {
        version: [u32_at(0)?, u32_at(4)?, u32_at(8)?],
        flags: u32_at(28)?,
        dev: u64::from_ne_bytes(buffer.get(40..48)?.try_into().ok()?),
    })
}

/// An open `/dev/mapper/control`.
pub struct Control(OwnedFd);

impl Control {
    pub fn open() -> Result<Control, String> {
        std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/mapper/control")
            .map(|f| Control(f.into()))
            .map_err(|e| format!("/dev/mapper/control: {e} (is dm_mod loaded?)"))
    }

    /// Sends `message` with `request`; the kernel's reply is read back into it.
    pub fn call(&self, request: u32, message: &mut [u8]) -> Result<Reply, String> {
        // SAFETY: the buffer is at least HEADER_SIZE bytes and its data_size field says
        // exactly how long it is, so the kernel reads and writes only inside it.
        let rc = unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                // c_ulong for glibc, c_int for musl: the number fits either.
                request as _,
                message.as_mut_ptr(),
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        reply(message).ok_or_else(|| "a short device-mapper reply".into())
    }
}

impl Control {
    /// Creates device `name` (with `uuid`), loads `targets` as its table (read-only when
    /// `read_only`) and resumes it: the device is live when this returns. Returns its
    /// number; a device left half-made by a failed step is removed again. The buffers that
    /// carried the table are zeroed before they are freed: a crypt table may hold a key.
    pub fn create(
        &self,
        name: &str,
        uuid: &str,
        targets: &[Target<'_>],
        read_only: bool,
    ) -> Result<(u32, u32), String> {
        let count = u32::try_from(targets.len()).map_err(|_| "too many targets".to_owned())?;
        let mut table = table_data(targets)?;
        self.call(DM_DEV_CREATE, &mut message(name, uuid, 0, 0, &[])?)
            .map_err(|e| format!("cannot create device-mapper device {name}: {e}"))?;
        let flags = if read_only { DM_READONLY_FLAG } else { 0 };
        let made = (|| {
            let mut load = message(name, "", flags, count, &table)?;
            let loaded = self.call(DM_TABLE_LOAD, &mut load);
            super::crypt::secret::wipe(&mut load);
            loaded.map_err(|e| format!("the kernel refused {name}'s table: {e}"))?;
            // DM_DEV_SUSPEND without DM_SUSPEND_FLAG resumes: the table goes live.
            self.call(DM_DEV_SUSPEND, &mut message(name, "", 0, 0, &[])?)
                .map_err(|e| format!("cannot resume {name}: {e}"))
        })();
        super::crypt::secret::wipe(&mut table);
        match made {
            Ok(reply) => Ok(decode_dev(reply.dev)),
            Err(e) => {
                if let Ok(mut remove) = message(name, "", 0, 0, &[]) {
                    let _ = self.call(DM_DEV_REMOVE, &mut remove);
                }
                Err(e)
            }
        }
    }
}

/// The kernel's 64-bit `dev_t` encoding (`huge_encode_dev`) as major and minor.
pub fn decode_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000);
    let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_are_the_kernels() {
        // From strace of `dmsetup create`: DM_DEV_CREATE and DM_TABLE_LOAD.
        assert_eq!(DM_DEV_CREATE, 0xc138_fd03);
        assert_eq!(DM_TABLE_LOAD, 0xc138_fd09);
        assert_eq!(DM_VERSION, 0xc138_fd00);
    }

    #[test]
    fn a_table_load_message() {
        let data = table_data(&[
            Target {
                start: 0,
                length: 32768,
                kind: "linear",
                params: "254:0 2048",
            },
            Target {
                start: 32768,
                length: 8,
                kind: "zero",
                params: "",
            },
        ])
        .unwrap();
        // 40 + "254:0 2048\0" padded to 16, then 40 + 8.
        assert_eq!(data.len(), 56 + 48);
        assert_eq!(u32::from_ne_bytes(data[20..24].try_into().unwrap()), 56);
        assert_eq!(&data[24..30], b"linear");
        assert_eq!(&data[40..51], b"254:0 2048\0");
        assert_eq!(u64::from_ne_bytes(data[56..64].try_into().unwrap()), 32768);
        let msg = message("vg0-root", "LVM-abc", 0, 2, &data).unwrap();
        assert_eq!(&msg[NAME_AT..NAME_AT + 8], b"vg0-root");
        assert_eq!(&msg[UUID_AT..UUID_AT + 7], b"LVM-abc");
        assert_eq!(&msg[HEADER_SIZE..HEADER_SIZE + data.len()], &data[..]);
        let size = u32::from_ne_bytes(msg[12..16].try_into().unwrap()) as usize;
        assert_eq!(size, msg.len());
        assert_eq!(reply(&msg).unwrap().version, VERSION);
    }

    #[test]
    fn device_numbers() {
        assert_eq!(decode_dev(254 << 8), (254, 0));
        assert_eq!(decode_dev((253 << 8) | 3), (253, 3));
        // Minor 256 and up: the high bits sit above the major.
        assert_eq!(decode_dev((254 << 8) | (0x100 << 12) | 1), (254, 257));
    }

    #[test]
    fn what_cannot_be_sent_is_refused() {
        assert!(message(&"x".repeat(NAME_LEN), "", 0, 0, &[]).is_err());
        assert!(message("a/b", "", 0, 0, &[]).is_err());
        assert!(message("a", &"u".repeat(UUID_LEN), 0, 0, &[]).is_err());
        let long_kind = Target {
            start: 0,
            length: 1,
            kind: "a-very-long-target-type",
            params: "",
        };
        assert!(table_data(&[long_kind]).is_err());
    }
}
