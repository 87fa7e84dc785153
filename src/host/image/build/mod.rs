//! `baton build`: turns options into an image file. Resolves everything it can now (module
//! order, decompression, the rescue shell) and writes the manifest the init reads at boot.
//! The steps, each in its own file: `programs` (/init, the applet links, the shell),
//! `module_set` (modules and the manifest), `blobs` (firmware and microcode), `include`,
//! and `output` (putting the image in place).

mod blobs;
mod include;
mod module_set;
mod options;
mod output;
mod programs;

pub use include::parse_include;
pub use module_set::{STORAGE, STORAGE_ALL_EXCLUDED, STORAGE_ALL_EXTRA};
pub use options::{
    mtime_from_env, BuildOptions, BuildReport, FirmwareSource, ModuleCompression, Storage,
};
pub use output::{put_in_place, sibling, IMAGE_MODE};
pub use programs::{find_init, APPLET_LINKS, BATON_BINARY, MODULE_HELPER_LINK};

use crate::host::image::compress::{compress, Compression};
use crate::host::image::entry::Entry;
use crate::host::image::firmware::FirmwareDir;
use crate::host::image::microcode::{self, Microcode};
use crate::host::image::newc;
use crate::host::image::skeleton;
use crate::manifest::{self, Manifest};
use anyhow::{bail, Context, Result};

/// What a host-only image says of the host's storage stack: its mdadm.conf (the arrays to
/// assemble, and their names) and, in the default command line after the configured
/// words, the LVs the root and swap are on (`rd.lvm.lv=`, as dracut's host-only images).
fn add_host_storage_config(
    image: &mut crate::host::image::entry::Image,
    opts: &BuildOptions,
    storage: Storage,
) -> Result<()> {
    let conf = std::path::Path::new("/").join(MDADM_CONF);
    if storage == Storage::Host && conf.exists() && image.get(MDADM_CONF).is_none() {
        include::add_include(image, &conf, MDADM_CONF)
            .with_context(|| format!("failed to include {}", conf.display()))?;
    }
    let mut defaults: Vec<String> = opts.cmdline.iter().cloned().collect();
    if storage == Storage::Host {
        defaults.extend(crate::host::detect::lvm_words(std::path::Path::new("/sys")));
    }
    if !defaults.is_empty() {
        image.insert(
            manifest::DEFAULTS_PATH,
            Entry::file(0o644, format!("{}\n", defaults.join(" ")).into_bytes()),
        )?;
    }
    Ok(())
}

/// Names the key files the image carries for its crypttab: whoever can read the image can
/// read them (the image is written 0600 for that reason).
fn say_key_files(image: &crate::host::image::entry::Image) {
    let Some(crate::host::image::entry::Body::File(text)) =
        image.get("etc/crypttab").map(|e| &e.body)
    else {
        return;
    };
    for entry in crate::crypttab::parse(&String::from_utf8_lossy(text)).entries {
        if let crate::crypttab::Key::File(path) = entry.key {
            if image.get(path.trim_start_matches('/')).is_some() {
                crate::host::detect::warn(&format!(
                    "the image carries the key file {path} of {}: anyone who can read the image can unlock it (it is written 0600)",
                    entry.name
                ));
            }
        }
    }
}

/// The root's filesystem as the image knows it before the boot finds it: given, or this
/// system's for a host-only image. (The drivers on its path are hinted where the image's
/// modules are chosen: `module_set::hint_root_drivers`.)
fn root_fs_hint(opts: &BuildOptions, storage: Storage) -> Option<String> {
    match &opts.root_fs {
        Some(given) => Some(given.clone()),
        None if storage == Storage::Host => {
            crate::host::detect::root_fstype(std::path::Path::new("/"))
        }
        None => None,
    }
}

/// The manifest, and beside it the alias patterns it need not carry (see
/// `manifest::answered_inline`): the init reads those only to match a device.
fn add_manifest(
    image: &mut crate::host::image::entry::Image,
    mut manifest: Manifest,
) -> Result<()> {
    let (inline, rest) = manifest.aliases.split_inline();
    manifest.aliases = inline;
    if !rest.is_empty() {
        let file = Manifest {
            aliases: rest,
            ..Manifest::default()
        };
        image.insert(
            manifest::ALIASES_PATH,
            Entry::file(0o644, file.render().into_bytes()),
        )?;
        manifest.alias_file = Some(format!("/{}", manifest::ALIASES_PATH));
    }
    image.insert(
        manifest::PATH,
        Entry::file(0o644, manifest.render().into_bytes()),
    )?;
    Ok(())
}

/// Where the init reads mdadm.conf (and where Debian keeps it).
pub const MDADM_CONF: &str = "etc/mdadm/mdadm.conf";

pub fn build(opts: &BuildOptions) -> Result<BuildReport> {
    let mut image = skeleton::default_image().map_err(anyhow::Error::msg)?;
    let mut manifest = Manifest::default();

    let init = programs::add_init(&mut image, opts.init.as_deref())?;
    let firmware_dir = firmware_dir(opts)?;
    let added = module_set::add_modules(&mut image, &mut manifest, opts, firmware_dir.is_some())?;
    manifest.root_fs = root_fs_hint(opts, added.storage);
    let firmware = match (&firmware_dir, &added.search) {
        (Some(dir), Some(search)) => {
            let (files, warnings) = blobs::add_firmware(&mut image, dir, search, &added.firmware)?;
            for warning in warnings {
                crate::host::detect::warn(&warning);
            }
            files
        }
        _ => Vec::new(),
    };
    if let Some(shell) = &opts.shell {
        programs::add_shell(&mut image, shell)?;
        manifest.shell = Some(format!("/{}", programs::SHELL_PATH));
    }
    for (src, dest) in &opts.includes {
        include::add_include(&mut image, src, dest)
            .with_context(|| format!("failed to include {} as {dest}", src.display()))?;
    }
    for (dest, contents) in &opts.files {
        image.insert(dest, Entry::file(0o644, contents.clone()))?;
    }
    say_key_files(&image);
    if let Some(keymap) = crate::host::keymap::for_image(&opts.keymap)? {
        image.insert(crate::keymap::IMAGE_PATH, Entry::file(0o644, keymap))?;
    }
    add_host_storage_config(&mut image, opts, added.storage)?;
    // Written last so --include cannot replace them by accident.
    add_manifest(&mut image, manifest)?;

    // The early microcode archive goes first and uncompressed: the kernel reads it before
    // it can decompress anything.
    let blobs = match &firmware_dir {
        Some(dir) => {
            let choice = opts.microcode.unwrap_or(if added.storage == Storage::Host {
                Microcode::Host
            } else {
                Microcode::All
            });
            blobs::microcode_blobs(dir, choice)?
        }
        None => Vec::new(),
    };
    let mut out = if blobs.is_empty() {
        Vec::new()
    } else {
        microcode::archive(&blobs, opts.mtime)?
    };
    // Modules packed one by one are most of a generic image: packing them again as a whole
    // would only make the kernel copy them through its decompressor.
    let compression = opts.compression.unwrap_or_else(|| match added.packed {
        true => Compression::None,
        false => Compression::default_for(added.kernel_config.as_ref(), added.release.as_deref()),
    });
    out.extend_from_slice(&packed_archive(&image, opts.mtime, compression)?);
    output::write_atomically(&opts.output, &out)?;
    Ok(BuildReport {
        bytes: out.len() as u64,
        entries: image.len(),
        modules: added.modules,
        init,
        firmware,
        microcode_files: blobs.iter().map(|b| b.files.len()).sum(),
        microcode_bytes: blobs.iter().map(|b| b.data.len()).sum(),
        compression,
    })
}

/// Where firmware and microcode come from, if anywhere.
fn firmware_dir(opts: &BuildOptions) -> Result<Option<FirmwareDir>> {
    Ok(match &opts.firmware_dir {
        FirmwareSource::None => None,
        FirmwareSource::BesideModules => opts
            .modules_dir
            .as_deref()
            .and_then(FirmwareDir::beside_modules),
        FirmwareSource::Dir(dir) => {
            let fw = FirmwareDir::new(dir);
            if !fw.is_dir()? {
                bail!("firmware directory {} is not a directory", dir.display());
            }
            Some(fw)
        }
    })
}

/// The main archive, compressed.
fn packed_archive(
    image: &crate::host::image::entry::Image,
    mtime: u32,
    compression: Compression,
) -> Result<Vec<u8>> {
    let archive = newc::write(image, mtime).context("failed to write the cpio archive")?;
    compress(&archive, compression)
        .with_context(|| format!("failed to compress the image with {}", compression.name()))
}
