//! The host's terminal under `baton run`'s shell: qemu puts it in raw mode for the guest
//! and restores it when it exits normally; killed, it restores nothing. Its settings are
//! therefore taken before qemu starts and put back when the guard is dropped, on every
//! path out of the run.

use nix::sys::termios::{tcgetattr, tcsetattr, SetArg, Termios};

/// The terminal's settings as they were.
pub struct Saved(Termios);

impl Saved {
    /// The settings of the terminal on stdin; `None` when it is not one.
    pub fn take() -> Option<Saved> {
        tcgetattr(std::io::stdin()).ok().map(Saved)
    }
}

impl Drop for Saved {
    fn drop(&mut self) {
        // TCSADRAIN: what qemu wrote is shown before the settings change under it.
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.0);
    }
}
