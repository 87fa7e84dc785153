//! crypttab(5) as systemd and Debian's cryptsetup read it, for LUKS volumes: the lines of
//! `/etc/crypttab` and the option lists that `rd.luks.options=` and Arch's `cryptdevice=`
//! also carry. Pure: the init reads the image's crypttab, `baton update` the host's.
//!
//! Only what unlocking a LUKS volume with a passphrase or a key file in the image needs is
//! accepted. Options that change what a volume is (`plain`, `swap`, `tmp` — the last two
//! format the device at every boot), or where its key comes from (`keyscript=`, `header=`,
//! tokens) are refused by name: a volume baton cannot set up as asked is left alone.

use crate::rootspec::{parse_root, RootSpec};

/// At most this many lines, and this many options per line, are read.
pub const MAX_LINES: usize = 256;
const MAX_OPTIONS: usize = 64;

/// How one volume is to be set up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `discard`: pass discards through (dm-crypt's `allow_discards`).
    pub discard: bool,
    /// `readonly`, `read-only`.
    pub read_only: bool,
    /// `tries=N`: passphrase attempts (0: no limit; default 3).
    pub tries: Option<u32>,
    /// `timeout=N` seconds for the passphrase prompt (0: none).
    pub timeout_secs: Option<u32>,
    /// `key-slot=N`, `keyslot=N`: only this slot is tried.
    pub key_slot: Option<u32>,
    /// `keyfile-offset=N`, `keyfile-size=N`: the part of the key file that is the key.
    pub keyfile_offset: Option<u64>,
    pub keyfile_size: Option<u64>,
    /// `noauto`: not set up at boot.
    pub noauto: bool,
    /// Debian's `initramfs` and systemd's `x-initrd.attach`: unlocked in the initramfs.
    pub initramfs: bool,
    /// dm-crypt's performance flags: `same-cpu-crypt`, `submit-from-crypt-cpus`,
    /// `no-read-workqueue`, `no-write-workqueue`.
    pub perf: Vec<&'static str>,
}

/// Options that are read and then left to others: they concern the real system's use of
/// the volume, not how it is unlocked.
const IGNORED: &[&str] = &[
    "luks",
    "nofail",
    "_netdev",
    "x-systemd",
    "force",
    "headless",
];

/// Options that would make baton set up something else than asked, or from elsewhere.
const REFUSED: &[(&str, &str)] = &[
    (
        "plain",
        "plain dm-crypt volumes have no header to check a passphrase against",
    ),
    ("swap", "it formats the device as swap at every boot"),
    ("tmp", "it formats the device at every boot"),
    ("tcrypt", "TrueCrypt volumes are not supported"),
    ("bitlk", "BitLocker volumes are not supported"),
    ("fvault2", "FileVault volumes are not supported"),
    ("keyscript", "key scripts need a shell and their helpers"),
    ("header", "detached headers are not supported"),
    ("tpm2-device", "TPM2 tokens are not supported yet"),
    ("fido2-device", "FIDO2 tokens are not supported yet"),
    ("pkcs11-uri", "PKCS#11 tokens are not supported yet"),
    ("integrity", "integrity-protected volumes are not supported"),
    ("veracrypt", "VeraCrypt volumes are not supported"),
    ("offset", "plain dm-crypt volumes are not supported"),
    ("skip", "plain dm-crypt volumes are not supported"),
];

const PERF: &[&str] = &[
    "same-cpu-crypt",
    "submit-from-crypt-cpus",
    "no-read-workqueue",
    "no-write-workqueue",
];

/// Parses a comma-separated option list (`discard,tries=5`); unknown options are ignored
/// (as systemd does, with a note in `notes`), refused ones are an error naming why.
pub fn parse_options(list: &str, notes: &mut Vec<String>) -> Result<Options, String> {
    let mut out = Options::default();
    for option in list.split(',').filter(|o| !o.is_empty()).take(MAX_OPTIONS) {
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (option, None),
        };
        if let Some((_, why)) = REFUSED.iter().find(|(name, _)| *name == key) {
            return Err(format!("option {key}: {why}"));
        }
        let number = |v: Option<&str>| -> Result<u64, String> {
            v.and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("option {option}: expected {key}=NUMBER"))
        };
        let small = |v| number(v).and_then(|n| u32::try_from(n).map_err(|e| e.to_string()));
        match key {
            "discard" | "allow-discards" => out.discard = true,
            "readonly" | "read-only" => out.read_only = true,
            "tries" => out.tries = Some(small(value)?),
            "timeout" => out.timeout_secs = Some(small(value.map(|v| v.trim_end_matches('s')))?),
            "key-slot" | "keyslot" => out.key_slot = Some(small(value)?),
            "keyfile-offset" => out.keyfile_offset = Some(number(value)?),
            "keyfile-size" => out.keyfile_size = Some(number(value)?),
            "noauto" => out.noauto = true,
            "initramfs" | "x-initrd.attach" => out.initramfs = true,
            _ if PERF.contains(&key) => {
                if let Some(flag) = PERF.iter().find(|p| **p == key) {
                    out.perf.push(flag);
                }
            }
            _ if IGNORED
                .iter()
                .any(|i| key == *i || key.starts_with("x-systemd.")) => {}
            _ => notes.push(format!("option {key} is not known and was ignored")),
        }
    }
    Ok(out)
}

/// Where a volume's key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Typed at the prompt.
    Passphrase,
    /// A file in the image.
    File(String),
}

/// One crypttab line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The device-mapper name it gets (`/dev/mapper/NAME`).
    pub name: String,
    pub device: RootSpec,
    pub key: Key,
    pub options: Options,
}

/// A line that names a volume but cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub name: String,
    pub why: String,
}

/// The entries of a crypttab, and the lines refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Crypttab {
    pub entries: Vec<Entry>,
    pub refused: Vec<Refusal>,
    pub notes: Vec<String>,
}

pub fn parse(text: &str) -> Crypttab {
    let mut out = Crypttab::default();
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    for line in lines.take(MAX_LINES) {
        let fields: Vec<&str> = line.split_whitespace().take(5).collect();
        let name = fields.first().copied().unwrap_or_default().to_owned();
        match entry(&fields, &mut out.notes) {
            Ok(entry) => out.entries.push(entry),
            Err(why) => out.refused.push(Refusal { name, why }),
        }
    }
    out
}

fn entry(fields: &[&str], notes: &mut Vec<String>) -> Result<Entry, String> {
    let [name, device, rest @ ..] = fields else {
        return Err("a line needs at least a name and a device".into());
    };
    if name.contains('/') || name.len() >= 128 {
        return Err(format!("{name:?} cannot be a device-mapper name"));
    }
    let key = match rest.first().copied() {
        None | Some("none" | "-" | "") => Key::Passphrase,
        Some(path) => key_file(path)?,
    };
    let options = parse_options(rest.get(1).copied().unwrap_or_default(), notes)?;
    Ok(Entry {
        name: (*name).to_owned(),
        device: device_spec(device)?,
        key,
        options,
    })
}

/// A key file path: one in the image. systemd's `PATH:DEVICE` (a file on another
/// filesystem) and raw devices are refused.
pub fn key_file(path: &str) -> Result<Key, String> {
    if !path.starts_with('/') || path.contains(':') {
        return Err(format!(
            "key file {path}: only a file in the image (an absolute path) is supported"
        ));
    }
    if path == "/dev/urandom" || path == "/dev/random" {
        return Err(format!(
            "key file {path}: a random key means a volume formatted at every boot"
        ));
    }
    if path.starts_with("/dev/") {
        return Err(format!(
            "key file {path}: keys on raw devices are not supported"
        ));
    }
    Ok(Key::File(path.to_owned()))
}

/// The device field: `UUID=`, `LABEL=`, `PARTUUID=`, `PARTLABEL=`, a `/dev/disk/by-*/`
/// link (taken as what it names, so it matches before udev exists) or a device path.
pub fn device_spec(device: &str) -> Result<RootSpec, String> {
    let by = |kind: &str| device.strip_prefix(&format!("/dev/disk/by-{kind}/"));
    let spec = if let Some(uuid) = by("uuid") {
        RootSpec::Uuid(uuid.to_owned())
    } else if let Some(label) = by("label") {
        RootSpec::Label(label.to_owned())
    } else if let Some(partuuid) = by("partuuid") {
        RootSpec::PartUuid {
            uuid: partuuid.to_owned(),
            offset: 0,
        }
    } else if let Some(partlabel) = by("partlabel") {
        RootSpec::PartLabel(partlabel.to_owned())
    } else {
        parse_root(device)?
    };
    Ok(spec)
}

#[cfg(test)]
mod tests;
