//! From a passphrase (or key file) to the volume key, as cryptsetup opens a keyslot: the
//! slot's KDF derives the area key, the kernel decrypts the area, the anti-forensic merge
//! yields a candidate, and the digest proves it. Every intermediate lives in a [`Secret`].

use super::afalg;
use super::secret::Secret;
use crate::luks::{kernel_cipher, Argon2Variant, Iv, Kdf, Keyslot, Volume};
use baton_kdf::{af_merge, argon2, pbkdf2, Argon2Kind, Argon2Params, Hash};
use std::os::unix::fs::FileExt;
use std::time::Instant;

/// A keyslot that opened: the volume key, and which slot gave it.
pub struct Opened {
    pub key: Secret,
    pub slot: u32,
}

/// Tries `passphrase` on the volume's keyslots (only `only_slot` when given): `Ok(None)`
/// when none takes it. An error is a slot that could not be tried at all (its cipher, its
/// memory), named, when no other slot took the passphrase either.
pub fn open(
    device: &std::fs::File,
    volume: &Volume,
    passphrase: &[u8],
    only_slot: Option<u32>,
) -> Result<Option<Opened>, String> {
    let mut trouble: Option<String> = None;
    let slots = volume
        .unlock_order()
        .filter(|slot| only_slot.map_or(true, |n| n == slot.id))
        .filter(|slot| volume.digest.keyslots.contains(&slot.id));
    for slot in slots {
        let started = Instant::now();
        match try_slot(device, volume, slot, passphrase) {
            Ok(Some(key)) => {
                log::info!(
                    "keyslot {} of {} opened in {} ms",
                    slot.id,
                    volume.uuid,
                    started.elapsed().as_millis()
                );
                return Ok(Some(Opened { key, slot: slot.id }));
            }
            Ok(None) => log::debug!(
                "keyslot {} of {}: not this key ({} ms)",
                slot.id,
                volume.uuid,
                started.elapsed().as_millis()
            ),
            Err(why) => {
                log::warn!("keyslot {} of {}: {why}", slot.id, volume.uuid);
                trouble.get_or_insert(format!("keyslot {}: {why}", slot.id));
            }
        }
    }
    match trouble {
        Some(why) => Err(why),
        None => Ok(None),
    }
}

fn try_slot(
    device: &std::fs::File,
    volume: &Volume,
    slot: &Keyslot,
    passphrase: &[u8],
) -> Result<Option<Secret>, String> {
    let cipher = kernel_cipher(&slot.area.cipher)
        .ok_or_else(|| format!("its cipher {} is not one baton can use", slot.area.cipher))?;
    let alg = match &cipher.iv {
        Iv::Essiv { hash } => format!("essiv({},{hash})", cipher.alg),
        _ => cipher.alg.clone(),
    };
    let iv = match cipher.iv {
        Iv::Plain => afalg::IvMode::Plain,
        _ => afalg::IvMode::Plain64,
    };
    let af_hash = Hash::from_name(&slot.af.hash)
        .ok_or_else(|| format!("its hash {} is not one baton has", slot.af.hash))?;
    let mut area_key = Secret::zeroed(usize_of(slot.area.key_size)?)?;
    derive(&slot.kdf, passphrase, area_key.as_mut_slice())?;
    let mut area = Secret::zeroed(usize_of(slot.area.size)?)?;
    device
        .read_exact_at(area.as_mut_slice(), slot.area.offset)
        .map_err(|e| format!("cannot read its key material: {e}"))?;
    afalg::decrypt(&alg, iv, area_key.as_slice(), area.as_mut_slice())?;
    drop(area_key);
    let key_len = usize_of(slot.key_size)?;
    let split_len = key_len * usize_of(slot.af.stripes)?;
    let split = area
        .as_slice()
        .get(..split_len)
        .ok_or("its key material is shorter than its stripes")?;
    let mut candidate = Secret::zeroed(key_len)?;
    af_merge(
        af_hash,
        split,
        key_len,
        slot.af.stripes,
        candidate.as_mut_slice(),
    )
    .map_err(|e| e.to_string())?;
    drop(area);
    Ok(matches_digest(volume, candidate.as_slice())?.then_some(candidate))
}

/// Derives the area key from the passphrase as the slot's KDF says.
fn derive(kdf: &Kdf, passphrase: &[u8], out: &mut [u8]) -> Result<(), String> {
    match kdf {
        Kdf::Pbkdf2 {
            hash,
            iterations,
            salt,
        } => {
            let hash =
                Hash::from_name(hash).ok_or_else(|| format!("PBKDF2 hash {hash} is not known"))?;
            pbkdf2(hash, passphrase, salt, *iterations, out);
            Ok(())
        }
        Kdf::Argon2 {
            variant,
            time,
            memory,
            lanes,
            salt,
        } => {
            enough_memory(*memory)?;
            let cpus = u32::try_from(crate::init::modules::load::usable_cpus()).unwrap_or(1);
            let params = Argon2Params {
                kind: match variant {
                    Argon2Variant::I => Argon2Kind::Argon2i,
                    Argon2Variant::Id => Argon2Kind::Argon2id,
                },
                time_cost: *time,
                memory_kib: *memory,
                lanes: *lanes,
                threads: (*lanes).min(cpus).max(1),
            };
            argon2(&params, passphrase, salt, out).map_err(|e| e.to_string())
        }
    }
}

/// Whether the volume's digest says `key` is its key (compared in constant time).
fn matches_digest(volume: &Volume, key: &[u8]) -> Result<bool, String> {
    let digest = &volume.digest;
    let hash = Hash::from_name(&digest.hash)
        .ok_or_else(|| format!("digest hash {} is not known", digest.hash))?;
    let mut computed = Secret::zeroed(digest.value.len())?;
    pbkdf2(
        hash,
        key,
        &digest.salt,
        digest.iterations,
        computed.as_mut_slice(),
    );
    let differ = computed
        .as_slice()
        .iter()
        .zip(&digest.value)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    Ok(differ == 0 && !digest.value.is_empty())
}

/// An Argon2 slot asks for `kib` KiB: refused with the numbers when the machine does not
/// have them free, rather than left to the OOM killer (which, for PID 1, is a panic).
fn enough_memory(kib: u32) -> Result<(), String> {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_available_kib(&text));
    match available {
        Some(free) if u64::from(kib) > free => Err(format!(
            "its Argon2 key derivation needs {} MiB of memory and this machine has {} MiB available",
            kib / 1024,
            free / 1024
        )),
        _ => Ok(()),
    }
}

pub fn mem_available_kib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn usize_of(n: impl TryInto<usize>) -> Result<usize, String> {
    n.try_into()
        .map_err(|_| "a size beyond this machine's".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn available_memory() {
        let text = "MemTotal:  2000000 kB\nMemFree:  100 kB\nMemAvailable:  1500000 kB\n";
        assert_eq!(super::mem_available_kib(text), Some(1_500_000));
        assert_eq!(super::mem_available_kib("MemTotal: 1 kB"), None);
    }
}
