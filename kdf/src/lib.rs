//! LUKS key derivation: PBKDF2 and Argon2 (to be written).
