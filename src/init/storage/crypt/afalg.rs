//! Decrypting a keyslot's material with the kernel's own ciphers, through an `AF_ALG`
//! socket (linux/if_alg.h): every cipher and mode dm-crypt can use is there, with the
//! CPU's AES instructions, and the init carries no cipher code of its own.
//!
//! A keyslot area is encrypted like a disk with 512-byte sectors counted from the start of
//! the area (cryptsetup's `crypt_storage` with IV offset 0), so each sector is one request
//! with its own IV.

use nix::sys::socket::{
    accept, bind, sendmsg, setsockopt, socket, sockopt::AlgSetKey, AddressFamily, AlgAddr,
    ControlMessage, MsgFlags, SockFlag, SockType,
};
use std::io::IoSlice;
use std::os::fd::AsRawFd;

const SECTOR: usize = 512;
/// The most sectors a keyslot area has (LUKS2 allows areas up to the header's 128 MiB
/// keyslots area; cryptsetup's are 256 KiB or so).
const MAX_SECTORS: usize = 256 * 1024;

/// How a sector's IV is made from its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IvMode {
    /// `plain64`: the sector number, 64-bit little-endian, zero-padded.
    Plain64,
    /// `plain`: its low 32 bits.
    Plain,
}

/// Decrypts `data` (whole sectors) in place with `alg` (a kernel name) and `key`.
pub fn decrypt(alg: &str, iv_mode: IvMode, key: &[u8], data: &mut [u8]) -> Result<(), String> {
    if data.len() % SECTOR != 0 || data.len() / SECTOR > MAX_SECTORS {
        return Err(format!("a keyslot area of {} bytes", data.len()));
    }
    let fail = |what: &str, e: nix::Error| format!("kernel cipher {alg}: cannot {what}: {e}");
    let tfm = socket(
        AddressFamily::Alg,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| fail("open an AF_ALG socket (is algif_skcipher loaded?)", e))?;
    bind(tfm.as_raw_fd(), &AlgAddr::new("skcipher", alg))
        .map_err(|e| fail("use it (is its module in the image?)", e))?;
    setsockopt(&tfm, AlgSetKey::default(), &key).map_err(|e| fail("set the key", e))?;
    let op = accept(&tfm).map_err(|e| fail("open an operation", e))?;
    let decrypt_op: libc::c_int = libc::ALG_OP_DECRYPT;
    for (n, sector) in data.chunks_exact_mut(SECTOR).enumerate() {
        let iv = iv_for(n as u64, iv_mode);
        let cmsgs = [
            ControlMessage::AlgSetOp(&decrypt_op),
            ControlMessage::AlgSetIv(&iv),
        ];
        sendmsg::<()>(
            op.as_raw_fd(),
            &[IoSlice::new(sector)],
            &cmsgs,
            MsgFlags::empty(),
            None,
        )
        .map_err(|e| fail("send a sector", e))?;
        let got = nix::unistd::read(&op, sector).map_err(|e| fail("decrypt", e))?;
        if got != SECTOR {
            return Err(format!("kernel cipher {alg}: a short read ({got} bytes)"));
        }
    }
    Ok(())
}

/// The IV of sector `n`: 16 bytes, which every block cipher dm-crypt uses takes.
fn iv_for(n: u64, mode: IvMode) -> [u8; 16] {
    let mut iv = [0u8; 16];
    let number = match mode {
        IvMode::Plain64 => n.to_le_bytes(),
        IvMode::Plain => u64::from(n as u32).to_le_bytes(),
    };
    if let Some(head) = iv.get_mut(..8) {
        head.copy_from_slice(&number);
    }
    iv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivs() {
        assert_eq!(
            iv_for(0x1_0000_0002, IvMode::Plain)[..8],
            [2, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            iv_for(0x1_0000_0002, IvMode::Plain64)[..8],
            [2, 0, 0, 0, 1, 0, 0, 0]
        );
    }

    /// The host's kernel, when it lets us: decrypting what the kernel encrypted.
    #[test]
    fn round_trip_through_the_kernel() {
        let key = [7u8; 64];
        let mut data = vec![0x5au8; 1024];
        if decrypt("xts(aes)", IvMode::Plain64, &key, &mut data).is_err() {
            eprintln!("no AF_ALG here: skipped");
            return;
        }
        assert_ne!(data, vec![0x5au8; 1024]);
        // XTS decryption of the same input with another IV differs sector by sector.
        assert_ne!(data[..512], data[512..]);
    }
}
