//! The dm-crypt device of an unlocked volume, made and announced as cryptsetup would: the
//! table of `mapping`, the key in the kernel keyring (`keyring`) for LUKS2, the
//! `/dev/mapper` link and udev's database entry.

use super::keyring;
use super::mapping::{self, KeyRef, Mapping};
use super::secret::Secret;
use super::volumes::Wanted;
use crate::init::storage::dm::{Control, Target};
use crate::init::storage::nodes;
use crate::luks::{Flags, Volume};
use crate::rootspec::Record;

/// Makes the dm-crypt device, with the key in the kernel keyring for LUKS2 (or in hex when
/// this kernel has no keyrings, and always for LUKS1, as cryptsetup does).
pub fn activate(
    record: &Record,
    volume: &Volume,
    wanted: &Wanted,
    name: &str,
    key: &Secret,
) -> Result<(u32, u32), String> {
    let segment = &volume.segment;
    if segment.offset == 0 {
        // A header made for a detached use: mapping from 0 would expose the header itself.
        return Err("its data start at 0 (a detached header): refusing to map it".into());
    }
    let offset_sectors = segment.offset / 512;
    let length = mapping::length_sectors(
        device_bytes(&record.name)?,
        offset_sectors,
        segment.size,
        segment.sector_size,
    )?;
    let description = keyring::description(&volume.uuid, 0);
    let logon = (volume.version == 2)
        .then(|| keyring::LogonKey::add(&description, key.as_slice()))
        .and_then(|added| {
            added
                .map_err(|e| log::warn!("{e}: the key goes in the table"))
                .ok()
        });
    let flags = &segment.flags;
    let perf = perf_flags(&wanted.options.perf, flags);
    let params = mapping::params(&Mapping {
        cipher: &segment.cipher,
        key_size: key.len(),
        key: match logon {
            Some(_) => KeyRef::Logon(&description),
            None => KeyRef::Hex(key.as_slice()),
        },
        iv_tweak: segment.iv_tweak,
        device: (record.major, record.minor),
        offset_sectors,
        sector_size: segment.sector_size,
        discard: wanted.options.discard || flags.allow_discards,
        perf: &perf,
    });
    let uuid = mapping::dm_uuid(volume.version, &volume.uuid, name);
    let target = Target {
        start: 0,
        length,
        kind: "crypt",
        params: &params,
    };
    let made = Control::open().and_then(|dm| {
        dm.create(
            name,
            &uuid,
            std::slice::from_ref(&target),
            wanted.options.read_only,
        )
    });
    mapping::wipe_params(params);
    drop(logon);
    let dev = made?;
    let kernel = format!("dm-{}", dev.1);
    if let Err(e) = nodes::link(&format!("mapper/{name}"), &kernel) {
        log::warn!("cannot link /dev/mapper/{name}: {e}");
    }
    let entry = nodes::DmEntry {
        dev,
        name,
        uuid: &uuid,
        lv: None,
    };
    if let Err(e) = nodes::write_dm_entry(&entry) {
        log::warn!("cannot record {name} for udev: {e}");
    }
    Ok(dev)
}

/// A block device's size in bytes, from sysfs.
fn device_bytes(name: &str) -> Result<u64, String> {
    crate::bounded::read_bounded(&format!("/sys/class/block/{name}/size"), 64)
        .ok()
        .and_then(|b| String::from_utf8_lossy(&b).trim().parse::<u64>().ok())
        .map(|sectors| sectors.saturating_mul(512))
        .ok_or_else(|| format!("cannot read the size of {name}"))
}

/// dm-crypt's performance flags: crypttab's, and the header's persistent ones.
fn perf_flags(asked: &[&'static str], flags: &Flags) -> Vec<&'static str> {
    let mut perf = asked.to_vec();
    for (on, flag) in [
        (flags.same_cpu_crypt, "same-cpu-crypt"),
        (flags.submit_from_crypt_cpus, "submit-from-crypt-cpus"),
        (flags.no_read_workqueue, "no-read-workqueue"),
        (flags.no_write_workqueue, "no-write-workqueue"),
    ] {
        if on && !perf.contains(&flag) {
            perf.push(flag);
        }
    }
    perf
}
