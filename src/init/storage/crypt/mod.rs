//! LUKS volumes unlocked in PID 1: which volumes (`volumes`), the passphrase prompt
//! (`prompt`) or key file, the keyslot's material decrypted with the kernel's ciphers
//! (`afalg`), the volume key handed to dm-crypt through the kernel keyring (`keyring`) in
//! the table cryptsetup would load (`mapping`). Secrets live in [`secret::Secret`] only.

pub mod activate;
pub mod afalg;
pub mod bring_up;
pub mod header;
pub mod keyring;
pub mod mapping;
pub mod open_tool;
pub mod prompt;
pub mod secret;
pub mod unlock;
pub mod volumes;
