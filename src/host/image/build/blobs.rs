//! The files the kernel loads rather than runs: the firmware the image's modules declare, and
//! the CPU microcode that goes first, in the early archive.

use super::module_set::ModuleFirmware;
use crate::host::image::entry::{Entry, Image};
use crate::host::image::firmware::{self, FirmwareDir, Search};
use crate::host::image::microcode::{self, Microcode};
use anyhow::{Context, Result};

/// The microcode `choice` asks for from `dir`. The host's CPUs come from /proc/cpuinfo;
/// when that cannot be read, every file is taken, with a warning (an image with too much
/// microcode still boots; one without its CPU's misses the fixes).
pub(super) fn microcode_blobs(
    dir: &FirmwareDir,
    choice: Microcode,
) -> Result<Vec<microcode::Blob>> {
    let select = match choice {
        Microcode::None => return Ok(Vec::new()),
        Microcode::All => microcode::Select::All,
        Microcode::Host => match microcode::host_cpus() {
            Ok(cpus) => microcode::Select::Cpus(cpus),
            Err(e) => {
                crate::host::detect::warn(&format!("{e:#}; adding all the microcode instead"));
                microcode::Select::All
            }
        },
    };
    microcode::collect(dir, &select)
}

/// Adds the firmware the modules declare, each file once, at `lib/firmware/NAME`. A file
/// that is not there is silent for modules that may never load (`--storage` carries drivers
/// for hardware most machines lack) and a one-line warning per module for those named or
/// detected, which will load. Returns the names added and the warnings.
pub(super) fn add_firmware(
    image: &mut Image,
    dir: &FirmwareDir,
    search: &Search,
    wanted: &[ModuleFirmware],
) -> Result<(Vec<String>, Vec<String>)> {
    let mut added: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    // Each name is looked up once; whether it was found counts for every module naming it.
    let mut looked_up: std::collections::BTreeMap<&str, bool> = Default::default();
    for module in wanted {
        let mut missing = Vec::new();
        for name in &module.names {
            if let Some(&found) = looked_up.get(name.as_str()) {
                if !found {
                    missing.push(name.as_str());
                }
                continue;
            }
            let found = firmware::lookup(dir, search, name).with_context(|| {
                format!("failed to look up firmware {name} for {}", module.module)
            })?;
            looked_up.insert(name, !found.is_empty());
            if found.is_empty() {
                missing.push(name.as_str());
            }
            for file in found {
                let dest = format!("{}/{}", firmware::IMAGE_DIR, file.name);
                if added.contains(&file.name) {
                    continue;
                }
                match image.insert(&dest, Entry::file(0o644, file.data)) {
                    Ok(()) => added.push(file.name),
                    // Two names that cannot both be paths (`a` and `a/b`): the first stays.
                    Err(e) => warnings.push(format!("firmware {}: {e}", file.name)),
                }
            }
        }
        if module.explicit && !missing.is_empty() {
            warnings.push(format!(
                "firmware for {} not found in {}: {}",
                module.module,
                dir.display(),
                missing.join(" ")
            ));
        }
    }
    added.sort();
    Ok((added, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::image::entry::Body;
    use std::fs;

    fn module(name: &str, names: &[&str], explicit: bool) -> ModuleFirmware {
        ModuleFirmware {
            module: name.to_owned(),
            names: names.iter().map(|n| n.to_string()).collect(),
            explicit,
        }
    }

    #[test]
    fn firmware_once_each_and_warnings_only_for_modules_that_will_load() {
        let root =
            std::env::temp_dir().join(format!("baton-build-firmware-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let fw = root.join("lib/firmware");
        fs::create_dir_all(fw.join("v")).unwrap();
        fs::write(fw.join("v/a.bin"), b"A").unwrap();
        fs::write(fw.join("b.bin"), b"B").unwrap();
        let dir = FirmwareDir::new(&fw);
        let search = Search {
            release: "6.1.0-1-amd64".into(),
            kernel_reads: None,
        };
        let mut image = Image::new();
        let (added, warnings) = add_firmware(
            &mut image,
            &dir,
            &search,
            &[
                // A storage driver: its missing file is no news.
                module("storage_hba", &["v/a.bin", "gone.bin"], false),
                // Named by the user, sharing both names, one missing: one line.
                module(
                    "named",
                    &["gone.bin", "v/a.bin", "b.bin", "also-gone.bin"],
                    true,
                ),
                module("named_ok", &["b.bin"], true),
            ],
        )
        .unwrap();
        assert_eq!(added, ["b.bin", "v/a.bin"]);
        assert_eq!(
            warnings,
            [format!(
                "firmware for named not found in {}: gone.bin also-gone.bin",
                fw.display()
            )]
        );
        assert_eq!(
            image.get("lib/firmware/v/a.bin").unwrap().body,
            Body::File(b"A".to_vec())
        );
        assert_eq!(
            image.get("lib/firmware/b.bin").unwrap().body,
            Body::File(b"B".to_vec())
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
