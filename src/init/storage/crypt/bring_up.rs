//! Unlocking the LUKS volumes the root search meets, one at a time as they appear: the
//! key file first if the volume has one, then the passphrases typed for other volumes this
//! boot (one passphrase for several disks is asked once), then the prompt; the dm-crypt
//! device made and announced as cryptsetup would.

use super::activate::activate;
use super::secret::Secret;
use super::unlock::{self, Opened};
use super::volumes::{self, Wanted};
use super::{header, prompt};
use crate::cmdline::CryptParams;
use crate::crypttab::Key;
use crate::luks::Volume;
use crate::rootspec::Record;
use std::time::Duration;

/// Where `baton build` carries crypttab, and the most of it read.
const CRYPTTAB: &str = "/etc/crypttab";
const MAX_CRYPTTAB_BYTES: u64 = 64 * 1024;
/// The most a key file may be (cryptsetup's default limit).
const MAX_KEY_FILE: usize = 8 * 1024 * 1024;
/// Passphrases kept for the next volume.
const MAX_KEPT: usize = 8;
/// Prompts when `tries=0` asks for no limit: still a bound.
const UNLIMITED_TRIES: u32 = 1000;
const DEFAULT_TRIES: u32 = 3;

pub struct Crypt {
    wanted: Vec<Wanted>,
    timeout_secs: Option<u32>,
    passphrases: Vec<Secret>,
    /// Volumes dealt with, by UUID, and what became of them (for the messages).
    done: Vec<(String, String)>,
    /// A volume named to be unlocked that could not be: the boot cannot go on as asked.
    fatal: Option<String>,
}

impl Crypt {
    pub fn new(params: &CryptParams) -> Crypt {
        let text = crate::bounded::read_bounded(CRYPTTAB, MAX_CRYPTTAB_BYTES)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let mut notes = Vec::new();
        let wanted = volumes::wanted(params, &crate::crypttab::parse(&text), &mut notes);
        for note in notes {
            log::warn!("{note}");
        }
        Crypt {
            wanted,
            timeout_secs: params.timeout_secs,
            passphrases: Vec::new(),
            done: Vec::new(),
            fatal: None,
        }
    }

    /// Unlocks the volume `record` is, if it is wanted and not done yet. `load` puts a
    /// module (or an alias's modules) in the kernel. Returns the kernel name of the
    /// device made (`dm-3`).
    pub fn open(&mut self, record: &Record, load: &mut dyn FnMut(&str)) -> Option<String> {
        let uuid = record.fs.as_ref()?.uuid.clone()?.to_ascii_lowercase();
        if self.fatal.is_some() || self.done.iter().any(|(u, _)| *u == uuid) {
            return None;
        }
        let wanted = self.wanted.iter().find(|w| w.matches(record))?.clone();
        let name = wanted.name_for(&uuid);
        let result = self.unlock(record, &wanted, &name, load);
        match result {
            Ok(kernel_name) => {
                self.done.push((uuid, format!("unlocked as {name}")));
                Some(kernel_name)
            }
            Err(why) => {
                let message = format!("cannot unlock {name} ({uuid}) on {}: {why}", record.name);
                self.done.push((uuid, why));
                self.fatal = Some(message);
                None
            }
        }
    }

    fn unlock(
        &mut self,
        record: &Record,
        wanted: &Wanted,
        name: &str,
        load: &mut dyn FnMut(&str),
    ) -> Result<String, String> {
        // On the timeline: the whole unlock, and within it the wait for a passphrase, so
        // the machine's share (key derivation, the mapping) is the difference.
        let _step = crate::init::timeline::phase(&format!("unlock:{name}"));
        let device = std::fs::File::open(record.node())
            .map_err(|e| format!("cannot open {}: {e}", record.node()))?;
        let volume = header::read(&device).map_err(|e| e.to_string())?;
        for warning in &volume.warnings {
            log::warn!("{}: {warning}", record.name);
        }
        load_modules(&volume, load);
        let opened = self.key_for(&device, &volume, wanted, name)?;
        let dev = activate(record, &volume, wanted, name, &opened.key)?;
        log::info!(
            "unlocked {} ({}) with keyslot {} as /dev/mapper/{name}",
            record.name,
            volume.uuid,
            opened.slot
        );
        Ok(format!("dm-{}", dev.1))
    }

    /// The volume key, from the key file, a passphrase typed before, or the prompt.
    fn key_for(
        &mut self,
        device: &std::fs::File,
        volume: &Volume,
        wanted: &Wanted,
        name: &str,
    ) -> Result<Opened, String> {
        let slot = wanted.options.key_slot;
        if let Key::File(path) = &wanted.key {
            // As systemd-cryptsetup: a key file that is missing or wrong leaves the prompt.
            match read_key_file(path, wanted) {
                Ok(key) => match unlock::open(device, volume, key.as_slice(), slot)? {
                    Some(opened) => return Ok(opened),
                    None => log::warn!(
                        "key file {path} does not open {name}: asking for the passphrase"
                    ),
                },
                Err(why) => log::warn!("{why}: asking for the passphrase of {name}"),
            }
        }
        for known in &self.passphrases {
            if let Some(opened) = unlock::open(device, volume, known.as_slice(), slot)? {
                return Ok(opened);
            }
        }
        let tries = match wanted.options.tries.unwrap_or(DEFAULT_TRIES) {
            0 => UNLIMITED_TRIES,
            n => n,
        };
        let timeout = wanted
            .options
            .timeout_secs
            .or(self.timeout_secs)
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(u64::from(s)));
        let question = format!(
            "Please enter passphrase for disk {name} ({}): ",
            volume.uuid
        );
        for attempt in 1..=tries {
            log::info!("asking for the passphrase of {name} ({})", volume.uuid);
            let waiting = crate::init::timeline::phase(&format!("passphrase:{name}"));
            let answer = prompt::ask(&question, timeout);
            drop(waiting);
            let typed = answer.map_err(|why| match why {
                prompt::NoAnswer::Timeout => format!(
                    "no passphrase was typed within {} s",
                    timeout.map_or(0, |t| t.as_secs())
                ),
                prompt::NoAnswer::Cancelled => "the passphrase prompt was cancelled".into(),
                prompt::NoAnswer::Failed(why) => why,
            })?;
            if let Some(opened) = unlock::open(device, volume, typed.as_slice(), slot)? {
                if self.passphrases.len() < MAX_KEPT {
                    self.passphrases.push(typed);
                }
                return Ok(opened);
            }
            log::warn!(
                "no key available with this passphrase for {name} (try {attempt} of {tries})"
            );
            prompt::say("No key available with this passphrase.\n");
        }
        Err(format!(
            "no key available with the passphrases typed ({tries} tries)"
        ))
    }

    /// What a LUKS device is to the search's messages.
    pub fn describe(&self, record: &Record) -> Option<String> {
        let fs = record.fs.as_ref()?;
        if fs.fstype != "crypto_LUKS" {
            return None;
        }
        let uuid = fs.uuid.as_deref().unwrap_or_default().to_ascii_lowercase();
        if let Some((_, what)) = self.done.iter().find(|(u, _)| *u == uuid) {
            return Some(format!("LUKS volume, {what}"));
        }
        if self.wanted.iter().any(|w| w.matches(record)) {
            return Some("LUKS volume, to unlock".into());
        }
        Some("LUKS volume, not named to be unlocked (rd.luks.uuid=, rd.luks.name= or the image's crypttab)".into())
    }

    /// Why the boot cannot go on, once a named volume could not be unlocked.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }
}

/// The kernel's pieces for this volume: dm-crypt, AF_ALG's skcipher, and the cipher's mode
/// and algorithm by the aliases their modules carry (built-in ones need nothing).
fn load_modules(volume: &Volume, load: &mut dyn FnMut(&str)) {
    load("dm_crypt");
    load("algif_skcipher");
    let mut ciphers = vec![volume.segment.cipher.as_str()];
    ciphers.extend(volume.keyslots.iter().map(|k| k.area.cipher.as_str()));
    let mut asked: Vec<String> = Vec::new();
    for spec in ciphers {
        let mut parts = spec.split('-');
        let (cipher, mode, iv) = (parts.next(), parts.next(), parts.next());
        let essiv = iv.and_then(|iv| iv.strip_prefix("essiv:"));
        let names = [cipher, mode, essiv.map(|_| "essiv"), essiv];
        for alias in names.into_iter().flatten().map(|n| format!("crypto-{n}")) {
            if !asked.contains(&alias) {
                load(&alias);
                asked.push(alias);
            }
        }
    }
}

/// The key file's bytes, as much of them as `keyfile-offset`/`keyfile-size` say.
pub fn read_key_file(path: &str, wanted: &Wanted) -> Result<Secret, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("key file {path}: {e}"))?;
    let mut key = Secret::with_capacity(MAX_KEY_FILE)?;
    key.read_from(&mut file)
        .map_err(|e| format!("key file {path}: {e}"))?;
    let offset = usize::try_from(wanted.options.keyfile_offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let size = wanted
        .options
        .keyfile_size
        .map_or(key.len().saturating_sub(offset), |s| {
            usize::try_from(s).unwrap_or(usize::MAX)
        });
    if !key.keep(offset, size) {
        return Err(format!(
            "key file {path} is shorter than keyfile-offset and keyfile-size ask"
        ));
    }
    Ok(key)
}
