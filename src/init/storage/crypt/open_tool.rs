//! `luks-open DEVICE NAME [KEYFILE|-]`: the init under another name opens one LUKS volume
//! as its boot would (`cryptsetup open --key-file`, without a prompt), for scripts and for
//! measuring the unlock against cryptsetup on the same machine (`scripts/bench luks`).
//! The key comes from KEYFILE, or standard input when it is `-` or absent.

use super::secret::Secret;
use super::volumes::Wanted;
use super::{activate, header, unlock};
use crate::crypttab::{Key, Options};
use crate::rootspec::{Record, RootSpec};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

pub const USAGE: &str = "usage: luks-open DEVICE NAME [KEYFILE|-]\n";
const MAX_KEY: usize = 8 * 1024 * 1024;

pub fn run(args: &[std::ffi::OsString]) -> u8 {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (device, name, key) = match args.as_slice() {
        [d, n] => (d, n, "-"),
        [d, n, k] => (d, n, k.as_str()),
        _ => {
            let _ = std::io::stderr().write_all(USAGE.as_bytes());
            return 2;
        }
    };
    match open(device, name, key) {
        Ok(message) => {
            let _ = writeln!(std::io::stderr(), "luks-open: {message}");
            0
        }
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "luks-open: {device}: {why}");
            1
        }
    }
}

fn open(device: &str, name: &str, key_path: &str) -> Result<String, String> {
    let mut key = Secret::with_capacity(MAX_KEY)?;
    let read = if key_path == "-" {
        key.read_from(&mut std::io::stdin().lock())
    } else {
        std::fs::File::open(key_path)
            .map_err(|e| e.to_string())
            .and_then(|mut f| key.read_from(&mut f))
    };
    read.map_err(|e| format!("cannot read the key: {e}"))?;
    let started = Instant::now();
    let file = std::fs::File::open(device).map_err(|e| e.to_string())?;
    let rdev = file.metadata().map_err(|e| e.to_string())?.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let kernel_name = std::fs::read_link(format!("/sys/dev/block/{major}:{minor}"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .ok_or("not a block device this kernel knows")?;
    let volume = header::read(&file).map_err(|e| e.to_string())?;
    let opened = unlock::open(&file, &volume, key.as_slice(), None)?
        .ok_or("no key available with this passphrase")?;
    drop(key);
    let record = Record {
        name: kernel_name,
        major,
        minor,
        disk: None,
        partition: None,
        fs: None,
        has_table: false,
        partuuid: None,
        partlabel: None,
    };
    let wanted = Wanted {
        device: RootSpec::Path(device.to_owned()),
        name: Some(name.to_owned()),
        key: Key::Passphrase,
        options: Options::default(),
    };
    let dev = activate::activate(&record, &volume, &wanted, name, &opened.key)?;
    Ok(format!(
        "opened {device} as /dev/mapper/{name} ({}:{}) with keyslot {} in {} ms",
        dev.0,
        dev.1,
        opened.slot,
        started.elapsed().as_millis()
    ))
}
