//! The kernels installed in a system (`/`, or a tree) and what `baton update` builds for
//! each, as /etc/baton/baton.conf and conf.d say. `baton check` asks the same questions.

use crate::host::config::{self, Config, ModuleSet};
use crate::host::image::build::{BuildOptions, FirmwareSource, ModuleCompression, Storage};
use crate::host::image::compress::Compression;
use crate::host::image::microcode::Microcode;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The kernels installed in `root`: a modules directory and the kernel beside it in /boot.
pub fn installed_kernels(root: &Path) -> Result<Vec<String>> {
    let modules = root.join("lib/modules");
    let entries = match std::fs::read_dir(&modules) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("failed to list {}", modules.display())),
    };
    let mut kernels: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|kver| root.join(format!("boot/vmlinuz-{kver}")).is_file())
        .collect();
    kernels.sort();
    Ok(kernels)
}

/// baton.conf, then conf.d/*.conf in name order.
pub fn read_config(root: &Path) -> Result<Config> {
    let dir = root.join("etc/baton");
    let mut files = vec![dir.join("baton.conf")];
    if let Ok(entries) = std::fs::read_dir(dir.join("conf.d")) {
        let mut extra: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        extra.sort();
        files.extend(extra);
    }
    let mut config = Config::default();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", file.display())),
        };
        config::apply(&mut config, &file.display().to_string(), &text)?;
    }
    Ok(config)
}

/// What `baton build` is asked for one kernel.
pub fn build_options(config: &Config, root: &Path, kver: &str, mtime: u32) -> Result<BuildOptions> {
    let mut includes = Vec::new();
    for spec in &config.include {
        let (src, dest) = crate::host::image::build::parse_include(spec)?;
        // The source is a path of the system being updated.
        includes.push((root.join(src.strip_prefix("/").unwrap_or(&src)), dest));
    }
    // The system's arrays, as its mdadm.conf names them, whatever the module set.
    let mdadm_conf = root.join(crate::host::image::build::MDADM_CONF);
    if mdadm_conf.exists() {
        includes.push((mdadm_conf, crate::host::image::build::MDADM_CONF.to_owned()));
    }
    let files = crypttab_for_image(root, &mut includes)?;
    let modules = config.extra_modules.clone();
    let storage = match config.modules {
        ModuleSet::Generic => Storage::Common,
        ModuleSet::Host if root == Path::new("/") => Storage::Host,
        ModuleSet::Host => {
            crate::host::detect::warn(&format!(
                "modules=host: cannot see the devices of the system in {} (host detection works on the running system only); building the generic image instead",
                root.display()
            ));
            Storage::Common
        }
    };
    Ok(BuildOptions {
        output: root.join(format!("boot/initrd.img-{kver}")),
        modules_dir: Some(root.join(format!("lib/modules/{kver}"))),
        modules,
        storage,
        module_compression: ModuleCompression::Auto,
        includes,
        files,
        shell: config.shell.as_ref().map(PathBuf::from),
        compression: Compression::parse_choice(&config.compress)?,
        init: None,
        cmdline: (!config.cmdline.is_empty()).then(|| config.cmdline.join(" ")),
        mtime,
        // ROOT/lib/firmware, beside ROOT/lib/modules/KVER: the system's own firmware.
        firmware_dir: FirmwareSource::BesideModules,
        microcode: microcode_choice(config, root)?,
        keymap: keymap_choice(config, root),
        root_fs: crate::host::detect::root_fstype(root),
        // The running system's: a tree's devices are not this machine's.
        root_drivers: match (&config.modules, root == Path::new("/")) {
            (ModuleSet::Generic, true) => {
                crate::host::detect::root_drivers(root).unwrap_or_default()
            }
            _ => Vec::new(),
        },
    })
}

/// `microcode=` of the configuration; unset, the running system's CPUs' only, as Debian's
/// intel-microcode hook tailors its early archive by default (all of Intel's is some 20 MB
/// more for the kernel to unpack at every boot). A tree may be another machine's: there
/// the build's own default (every file).
fn microcode_choice(config: &Config, root: &Path) -> Result<Option<Microcode>> {
    match config.microcode.as_deref() {
        Some(choice) => Ok(Some(Microcode::parse(choice)?)),
        None if root == Path::new("/") => Ok(Some(Microcode::Host)),
        None => Ok(None),
    }
}

/// `keymap=` of the configuration: none, a name or a file of the system; unset, the one
/// the system set up.
fn keymap_choice(config: &Config, root: &Path) -> crate::host::keymap::Choice {
    use crate::host::keymap::Choice;
    match config.keymap.as_deref() {
        None => Choice::System(root.to_owned()),
        Some("none") => Choice::None,
        Some(given) => match given.strip_prefix('/') {
            Some(path) => Choice::Given(root.join(path).display().to_string()),
            None => Choice::Given(given.to_owned()),
        },
    }
}

/// The system's crypttab lines the image needs (see `host::image_crypttab`), as a file for
/// the image, with the key files they name added to `includes`. On the running system the
/// root's own volumes are known from sysfs; for a tree, from its configuration alone.
fn crypttab_for_image(
    root: &Path,
    includes: &mut Vec<(PathBuf, String)>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let path = root.join("etc/crypttab");
    let text = match crate::bounded::read_bounded(&path.display().to_string(), 256 * 1024) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => return Ok(Vec::new()),
    };
    // The running system, when / is this machine's mounted root; a tree, or a chroot
    // (where no mount of / is visible), is known from its configuration alone.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let running_stack = (root == Path::new("/"))
        .then(|| crate::host::check::stack::running(&mountinfo, Path::new("/sys")).ok())
        .flatten();
    let running = running_stack.is_some();
    let root_names: Vec<String> = match running_stack {
        Some(layers) => layers
            .into_iter()
            .filter_map(|layer| match layer {
                crate::host::check::Layer::Crypt { name } => Some(name),
                _ => None,
            })
            .collect(),
        None => {
            // The fstab: a root on /dev/mapper/NAME that crypttab sets up.
            let fstab = std::fs::read_to_string(root.join("etc/fstab")).unwrap_or_default();
            crate::host::check::stack::fstab_root(&fstab)
                .and_then(|(source, _)| source.strip_prefix("/dev/mapper/").map(str::to_owned))
                .filter(|name| crate::host::check::stack::crypttab_names(&text).contains(name))
                .into_iter()
                .collect()
        }
    };
    let image = crate::host::image_crypttab::for_image(&text, &root_names, running)
        .map_err(anyhow::Error::msg)?;
    for key in &image.key_files {
        includes.push((root.join(key.trim_start_matches('/')), key.clone()));
    }
    if image.text.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![("etc/crypttab".to_owned(), image.text.into_bytes())])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("baton-update-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for kver in ["6.1.0-1-amd64", "6.12.9-amd64", "5.10.0-old"] {
            std::fs::create_dir_all(root.join("lib/modules").join(kver)).unwrap();
        }
        std::fs::create_dir_all(root.join("boot")).unwrap();
        for kver in ["6.1.0-1-amd64", "6.12.9-amd64"] {
            std::fs::write(root.join(format!("boot/vmlinuz-{kver}")), b"kernel").unwrap();
        }
        root
    }

    #[test]
    fn kernels_are_those_with_modules_and_a_kernel() {
        let root = tree("kernels");
        assert_eq!(
            installed_kernels(&root).unwrap(),
            ["6.1.0-1-amd64", "6.12.9-amd64"]
        );
        assert!(installed_kernels(&root.join("nothing")).unwrap().is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn microcode_unset_is_the_running_systems_own() {
        let config = Config::default();
        let running = Path::new("/");
        assert_eq!(
            microcode_choice(&config, running).unwrap(),
            Some(Microcode::Host)
        );
        assert_eq!(
            microcode_choice(&config, Path::new("/srv/tree")).unwrap(),
            None
        );
        let none = Config {
            microcode: Some("none".into()),
            ..config
        };
        assert_eq!(
            microcode_choice(&none, running).unwrap(),
            Some(Microcode::None)
        );
    }

    #[test]
    fn config_files_in_order_into_build_options() {
        let root = tree("config");
        std::fs::create_dir_all(root.join("etc/baton/conf.d")).unwrap();
        std::fs::write(
            root.join("etc/baton/baton.conf"),
            "compress=zstd\nmodules_add=nvme\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/baton/conf.d/20-b.conf"),
            "modules_add+=uas\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/baton/conf.d/10-a.conf"),
            "modules_add+=dm_crypt\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/baton/conf.d/ignored.txt"), "nonsense").unwrap();
        let config = read_config(&root).unwrap();
        assert_eq!(config.extra_modules, ["nvme", "dm_crypt", "uas"]);
        let opts = build_options(&config, &root, "6.1.0-1-amd64", 0).unwrap();
        assert_eq!(opts.output, root.join("boot/initrd.img-6.1.0-1-amd64"));
        assert_eq!(
            opts.modules_dir,
            Some(root.join("lib/modules/6.1.0-1-amd64"))
        );
        assert_eq!(opts.storage, Storage::Common);
        assert_eq!(opts.compression, Some(Compression::Zstd));
        // modules=host on a tree that is not the running system: generic, with a warning.
        let host = Config {
            modules: ModuleSet::Host,
            ..config.clone()
        };
        let opts = build_options(&host, &root, "6.1.0-1-amd64", 0).unwrap();
        assert_eq!(opts.storage, Storage::Common);
        // Microcode: unset, the build's default for a tree (all; host with modules=host);
        // microcode= decides.
        assert_eq!(opts.microcode, None);
        assert_eq!(opts.firmware_dir, FirmwareSource::BesideModules);
        let none = Config {
            microcode: Some("none".into()),
            ..config.clone()
        };
        let opts = build_options(&none, &root, "6.1.0-1-amd64", 0).unwrap();
        assert_eq!(opts.microcode, Some(Microcode::None));

        // Keymap: unset, the system's; keymap= a name, a file of the system, or none.
        use crate::host::keymap::Choice;
        assert_eq!(opts.keymap, Choice::System(root.clone()));
        for (value, choice) in [
            ("none", Choice::None),
            ("de", Choice::Given("de".into())),
            (
                "/etc/my.kmap",
                Choice::Given(root.join("etc/my.kmap").display().to_string()),
            ),
        ] {
            let config = Config {
                keymap: Some(value.into()),
                ..config.clone()
            };
            let opts = build_options(&config, &root, "6.1.0-1-amd64", 0).unwrap();
            assert_eq!(opts.keymap, choice, "keymap={value}");
        }
        std::fs::write(root.join("etc/baton/conf.d/30-c.conf"), "colour=blue\n").unwrap();
        let err = read_config(&root).unwrap_err().to_string();
        assert!(
            err.ends_with("conf.d/30-c.conf:1: unknown setting \"colour\""),
            "{err}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
