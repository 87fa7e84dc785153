//! Loading the image's console keymap (see `crate::keymap`) into the kernel, once, before
//! the first question asked on the screen: a passphrase prompt or the rescue shell. Not at
//! every boot: the kernel takes one ioctl per key action (16,384 for console-setup's
//! keymaps), which only a boot that asks something should pay for.

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};

static LOADED: AtomicBool = AtomicBool::new(false);

/// The keymap's home in the running init.
const PATH: &str = "/etc/baton/keymap";

/// `KDSKBENT` (linux/kd.h): sets one key action of one keymap.
const KDSKBENT: u32 = 0x4B47;

/// `struct kbentry`.
#[repr(C)]
struct KbEntry {
    table: u8,
    index: u8,
    value: u16,
}

/// Loads the keymap the image carries, if any, the first time it is called. A keymap that
/// cannot be loaded is named and the question is asked anyway (with the kernel's US
/// layout): a serial console never needed it.
pub fn load_once() {
    if LOADED.swap(true, Ordering::Relaxed) {
        return;
    }
    let bytes = match crate::bounded::read_bounded(PATH, crate::keymap::MAX_LEN as u64) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            log::warn!("cannot read the console keymap {PATH}: {e}");
            return;
        }
    };
    let keymap = match crate::keymap::parse(&bytes) {
        Ok(keymap) => keymap,
        Err(why) => {
            log::warn!("the console keymap {PATH}: {why}");
            return;
        }
    };
    // The keyboard's keymaps are the kernel's, shared by every virtual console: any one
    // of them sets them. Without virtual consoles (a serial-only kernel) there is nothing
    // to set.
    let tty = match std::fs::File::options()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/tty0")
    {
        Ok(tty) => tty,
        Err(e) => {
            log::debug!("no virtual console for the keymap: {e}");
            return;
        }
    };
    for (table, actions) in keymap.tables() {
        for (index, word) in (0..=u8::MAX).zip(actions.chunks_exact(2)) {
            let arg = KbEntry {
                table,
                index,
                value: crate::keymap::action(word),
            };
            // SAFETY: KDSKBENT reads one struct kbentry, which `arg` is. (The request is
            // c_ulong for glibc, c_int for musl: the number fits either.)
            if unsafe { libc::ioctl(tty.as_raw_fd(), KDSKBENT as _, &arg) } != 0 {
                log::warn!(
                    "the kernel refused the console keymap (keymap {table}, key {index}): {}",
                    std::io::Error::last_os_error()
                );
                return;
            }
        }
    }
    log::info!("console keymap loaded ({} keymaps)", keymap.keymaps());
}
