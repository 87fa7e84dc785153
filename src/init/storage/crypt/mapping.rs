//! The dm-crypt device for an unlocked volume, as cryptsetup makes it: the same name, the
//! same DM UUID (`CRYPT-LUKS2-<uuid without dashes>-<name>`), by which `cryptsetup status`
//! and `systemd-cryptsetup` in the real root recognise the device as theirs and leave it
//! be, and the same table (Documentation/admin-guide/device-mapper/dm-crypt.rst).

use super::secret::wipe;

/// How the table names the key.
pub enum KeyRef<'a> {
    /// `:SIZE:logon:DESCRIPTION`: a key in the kernel keyring (LUKS2, as cryptsetup).
    Logon(&'a str),
    /// The key itself in hex (LUKS1, as cryptsetup; or a kernel without keyrings).
    Hex(&'a [u8]),
}

/// Everything the table says.
pub struct Mapping<'a> {
    pub cipher: &'a str,
    pub key_size: usize,
    pub key: KeyRef<'a>,
    /// The IV offset, in 512-byte sectors.
    pub iv_tweak: u64,
    pub device: (u32, u32),
    /// Where the encrypted data start on the device, in 512-byte sectors.
    pub offset_sectors: u64,
    pub sector_size: u32,
    pub discard: bool,
    /// dm-crypt's performance flags, as crypttab names them (`same-cpu-crypt`).
    pub perf: &'a [&'a str],
}

/// cryptsetup's DM UUID for volume `uuid` opened as `name`.
pub fn dm_uuid(version: u8, uuid: &str, name: &str) -> String {
    let digits: String = uuid.chars().filter(|c| *c != '-').collect();
    format!("CRYPT-LUKS{version}-{digits}-{name}")
}

/// The crypt target's parameters. With a hex key they hold the key: the caller wipes them
/// ([`wipe_params`]) once the table is loaded.
pub fn params(m: &Mapping<'_>) -> String {
    let key = match m.key {
        KeyRef::Logon(description) => format!(":{}:logon:{description}", m.key_size),
        KeyRef::Hex(bytes) => hex(bytes),
    };
    let mut options: Vec<String> = Vec::new();
    if m.discard {
        options.push("allow_discards".into());
    }
    options.extend(m.perf.iter().map(|flag| flag.replace('-', "_")));
    if m.sector_size != 512 {
        options.push(format!("sector_size:{}", m.sector_size));
    }
    let mut line = format!(
        "{} {key} {} {}:{} {}",
        m.cipher, m.iv_tweak, m.device.0, m.device.1, m.offset_sectors
    );
    if !options.is_empty() {
        line.push_str(&format!(" {} {}", options.len(), options.join(" ")));
    }
    if let KeyRef::Hex(_) = m.key {
        let mut key = key.into_bytes();
        wipe(&mut key);
    }
    line
}

/// Zeroes a parameter string that held a key.
pub fn wipe_params(params: String) {
    let mut bytes = params.into_bytes();
    wipe(&mut bytes);
}

/// The device's length in 512-byte sectors: what lies after the data offset, or the
/// segment's own size; a multiple of the encryption sector.
pub fn length_sectors(
    device_bytes: u64,
    offset_sectors: u64,
    segment_bytes: Option<u64>,
    sector_size: u32,
) -> Result<u64, String> {
    let available = (device_bytes / 512)
        .checked_sub(offset_sectors)
        .ok_or("the device is smaller than the LUKS header says its data start")?;
    let wanted = segment_bytes.map_or(available, |b| b / 512);
    if wanted > available {
        return Err(format!(
            "the encrypted segment ({wanted} sectors) runs past the device's end ({available} sectors)"
        ));
    }
    let per = u64::from(sector_size / 512).max(1);
    let length = wanted - wanted % per;
    if length == 0 {
        return Err("the encrypted segment is empty".into());
    }
    Ok(length)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 15] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cryptsetups_uuid_and_tables() {
        assert_eq!(
            dm_uuid(2, "7a2c0b1e-2222-4000-8000-000000000002", "cryptroot"),
            "CRYPT-LUKS2-7a2c0b1e222240008000000000000002-cryptroot"
        );
        let mut m = Mapping {
            cipher: "aes-xts-plain64",
            key_size: 64,
            key: KeyRef::Logon("cryptsetup:7a2c-d0"),
            iv_tweak: 0,
            device: (254, 9),
            offset_sectors: 32768,
            sector_size: 4096,
            discard: true,
            perf: &["no-read-workqueue"],
        };
        assert_eq!(
            params(&m),
            "aes-xts-plain64 :64:logon:cryptsetup:7a2c-d0 0 254:9 32768 3 allow_discards no_read_workqueue sector_size:4096"
        );
        m.key = KeyRef::Hex(&[0x01, 0xab]);
        m.sector_size = 512;
        m.discard = false;
        m.perf = &[];
        assert_eq!(params(&m), "aes-xts-plain64 01ab 0 254:9 32768");
    }

    #[test]
    fn lengths() {
        let mib = 1024 * 1024;
        assert_eq!(length_sectors(20 * mib, 32768, None, 512), Ok(8192));
        assert_eq!(length_sectors(20 * mib + 1024, 32768, None, 4096), Ok(8192));
        assert_eq!(length_sectors(20 * mib, 32768, Some(mib), 512), Ok(2048));
        assert!(length_sectors(20 * mib, 32768, Some(8 * mib), 512).is_err());
        assert!(length_sectors(mib, 32768, None, 512).is_err());
    }
}
