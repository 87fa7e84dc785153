//! The words that name LUKS volumes to unlock: dracut's and systemd's `rd.luks.*` (and
//! systemd's `luks.*`, which its initrd also reads), and Arch's `cryptdevice=` and
//! `cryptkey=`. A volume no word and no crypttab line names is never touched.

use super::values::{push_named as push, switch};
use crate::crypttab::{device_spec, key_file, Key};
use crate::rootspec::RootSpec;

/// A volume named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedVolume {
    pub device: RootSpec,
    /// `/dev/mapper/NAME`; `None`: `luks-UUID`, as dracut and systemd name it.
    pub name: Option<String>,
    /// Options given with it (`cryptdevice=`'s third field).
    pub options: String,
}

/// What the command line says of LUKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptParams {
    /// `rd.luks=0` turns unlocking off.
    pub enabled: bool,
    /// `rd.luks.crypttab=0`: the image's crypttab is not read.
    pub crypttab: bool,
    pub volumes: Vec<NamedVolume>,
    /// `rd.luks.key=`: a key file for one volume (`Some(uuid)`) or for all (`None`).
    pub keys: Vec<(Option<String>, Key)>,
    /// `rd.luks.options=`: for one volume or all.
    pub options: Vec<(Option<String>, String)>,
    /// `rd.luks.timeout=N`: how long a prompt waits (0: for ever).
    pub timeout_secs: Option<u32>,
}

impl Default for CryptParams {
    fn default() -> Self {
        CryptParams {
            enabled: true,
            crypttab: true,
            volumes: Vec::new(),
            keys: Vec::new(),
            options: Vec::new(),
            timeout_secs: None,
        }
    }
}

/// Applies `key`[=`value`] if it is one of LUKS's words: `None` when it is not,
/// `Err(expected)` when its value makes no sense.
pub(super) fn apply(
    crypt: &mut CryptParams,
    key: &str,
    value: Option<&str>,
) -> Option<Result<(), &'static str>> {
    let key = key.strip_prefix("rd.").unwrap_or(key);
    Some(match (key, value) {
        ("luks", _) => switch(&mut crypt.enabled, value),
        ("luks.crypttab", _) => switch(&mut crypt.crypttab, value),
        ("luks.uuid", Some(v)) => match uuid(v) {
            Some(uuid) => add_volume(crypt, RootSpec::Uuid(uuid), None, ""),
            None => Err("a LUKS UUID"),
        },
        ("luks.name", Some(v)) => match v.split_once('=') {
            Some((u, name)) if uuid(u).is_some() && dm_name(name) => {
                let spec = RootSpec::Uuid(uuid(u).unwrap_or_default());
                add_volume(crypt, spec, Some(name), "")
            }
            _ => Err("UUID=NAME"),
        },
        ("luks.key", Some(v)) => match luks_key(v) {
            Some(entry) => push(&mut crypt.keys, entry),
            None => Err("a key file in the image: PATH or UUID=PATH"),
        },
        ("luks.options", Some(v)) => {
            let entry = match v.split_once('=') {
                Some((u, opts)) if uuid(u).is_some() => (uuid(u), opts.to_owned()),
                _ => (None, v.to_owned()),
            };
            push(&mut crypt.options, entry)
        }
        ("luks.timeout", Some(v)) => match v.trim_end_matches('s').parse() {
            Ok(secs) => {
                crypt.timeout_secs = Some(secs);
                Ok(())
            }
            Err(_) => Err("a number of seconds"),
        },
        ("cryptdevice", Some(v)) => match cryptdevice(v) {
            Some((device, name, options)) => add_volume(crypt, device, Some(name), options),
            None => Err("DEVICE:NAME[:OPTIONS]"),
        },
        ("cryptkey", Some(v)) => match v.strip_prefix("rootfs:").map(key_file) {
            Some(Ok(file)) => push(&mut crypt.keys, (None, file)),
            _ => Err("rootfs:PATH (a key file in the image)"),
        },
        _ => return None,
    })
}

fn add_volume(
    crypt: &mut CryptParams,
    device: RootSpec,
    name: Option<&str>,
    options: &str,
) -> Result<(), &'static str> {
    // A later word for the same device gives it its name (rd.luks.uuid= then .name=).
    if let Some(known) = crypt.volumes.iter_mut().find(|v| v.device == device) {
        if name.is_some() {
            known.name = name.map(str::to_owned);
        }
        return Ok(());
    }
    push(
        &mut crypt.volumes,
        NamedVolume {
            device,
            name: name.map(str::to_owned),
            options: options.to_owned(),
        },
    )
}

/// A LUKS UUID as the words write it: dracut allows a `luks-` prefix; compared lower-case.
fn uuid(v: &str) -> Option<String> {
    let v = v.strip_prefix("luks-").unwrap_or(v);
    let ok = (8..=40).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    ok.then(|| v.to_ascii_lowercase())
}

fn dm_name(name: &str) -> bool {
    !name.is_empty() && name.len() < 128 && !name.contains('/')
}

/// `rd.luks.key=`: systemd's `UUID=PATH`, or dracut's `PATH` (a `:DEVICE` after it names
/// a filesystem to read the key from, which is not supported).
fn luks_key(v: &str) -> Option<(Option<String>, Key)> {
    if let Some((u, path)) = v.split_once('=').filter(|(u, _)| uuid(u).is_some()) {
        return Some((uuid(u), key_file(path).ok()?));
    }
    Some((None, key_file(v).ok()?))
}

/// Arch's `cryptdevice=DEVICE:NAME[:OPTIONS]`. DEVICE may itself be `UUID=...`.
fn cryptdevice(v: &str) -> Option<(RootSpec, &str, &str)> {
    let (device, rest) = v.split_once(':')?;
    let (name, options) = rest.split_once(':').unwrap_or((rest, ""));
    dm_name(name).then_some(())?;
    Some((device_spec(device).ok()?, name, options))
}

#[cfg(test)]
mod tests {
    use crate::cmdline::parse;
    use crate::crypttab::Key;
    use crate::rootspec::RootSpec;

    #[test]
    fn dracut_and_systemd_words() {
        let p = parse(
            "rd.luks.uuid=luks-7A2C0B1E-2222-4000-8000-000000000002 \
             rd.luks.name=7a2c0b1e-2222-4000-8000-000000000002=cryptroot \
             luks.uuid=11111111-1111-4000-8000-000000000001 \
             rd.luks.key=/etc/keys/root.key rd.luks.key=11111111-1111-4000-8000-000000000001=/k \
             rd.luks.options=discard rd.luks.timeout=30 rd.luks.crypttab=0",
        );
        let c = &p.crypt;
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(c.volumes.len(), 2);
        assert_eq!(
            c.volumes[0].device,
            RootSpec::Uuid("7a2c0b1e-2222-4000-8000-000000000002".into())
        );
        assert_eq!(c.volumes[0].name.as_deref(), Some("cryptroot"));
        assert_eq!(c.volumes[1].name, None);
        assert_eq!(c.keys[0], (None, Key::File("/etc/keys/root.key".into())));
        assert_eq!(
            c.keys[1].0.as_deref(),
            Some("11111111-1111-4000-8000-000000000001")
        );
        assert_eq!(c.options, [(None, "discard".to_owned())]);
        assert_eq!(c.timeout_secs, Some(30));
        assert!(c.enabled && !c.crypttab);
        assert!(!parse("rd.luks=0").crypt.enabled);
    }

    #[test]
    fn arch_words() {
        let p = parse("cryptdevice=UUID=abcdef01-2345:cryptroot:allow-discards cryptkey=rootfs:/crypto_keyfile.bin");
        let v = &p.crypt.volumes[0];
        assert_eq!(v.device, RootSpec::Uuid("abcdef01-2345".into()));
        assert_eq!(
            (v.name.as_deref(), v.options.as_str()),
            (Some("cryptroot"), "allow-discards")
        );
        assert_eq!(
            p.crypt.keys,
            [(None, Key::File("/crypto_keyfile.bin".into()))]
        );
        let p = parse("cryptdevice=/dev/sda2:root");
        assert_eq!(
            p.crypt.volumes[0].device,
            RootSpec::Path("/dev/sda2".into())
        );
    }

    #[test]
    fn bad_values_are_warned_about() {
        for bad in [
            "rd.luks.uuid=xyz",
            "rd.luks.name=nouuid",
            "rd.luks.key=/key:UUID=1234abcd",
            "rd.luks.key=relative",
            "cryptdevice=/dev/sda2",
            "cryptkey=/dev/sdb:ext4:/key",
            "rd.luks.timeout=soon",
        ] {
            let p = parse(bad);
            assert_eq!(p.warnings.len(), 1, "{bad}");
            assert!(
                p.crypt.volumes.is_empty() && p.crypt.keys.is_empty(),
                "{bad}"
            );
        }
    }
}
