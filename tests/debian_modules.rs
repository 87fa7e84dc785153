//! Module resolution on the real `.ko` files of Debian's kernel package, which ships no
//! modules.dep: everything comes from each module's own `.modinfo`.

mod common;

use baton::host::modules::order::{resolve, Catalog, Lookup};
use baton::host::modules::tree::ModuleTree;
use baton::modules::modinfo;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn ext4_on_virtio_resolves_in_a_loadable_order() {
    let Some(kernel) = common::kernel_dir() else {
        return;
    };
    let mut tree = ModuleTree::open(&common::modules_dir(&kernel)).unwrap();
    // `-` and `_` alike, as modprobe takes them.
    let order = resolve(&mut tree, &names(&["virtio-pci", "virtio_blk", "ext4"])).unwrap();
    let position = |m: &str| order.modules.iter().position(|x| x == m);

    // What the boot-lab notes found by hand for 6.1, each exactly once.
    let want = [
        "virtio_ring",
        "virtio",
        "virtio_pci_legacy_dev",
        "virtio_pci_modern_dev",
        "virtio_pci",
        "virtio_blk",
        "crc16",
        "mbcache",
        "jbd2",
        "crc32c_generic",
        "ext4",
    ];
    for module in want {
        if tree.lookup(module).unwrap() == Lookup::Builtin {
            continue;
        }
        assert!(
            position(module).is_some(),
            "{module} missing from {:?}",
            order.modules
        );
    }
    let mut seen = order.modules.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        order.modules.len(),
        "duplicates in {:?}",
        order.modules
    );

    // Every depends= and softdep pre: comes before the module that needs it.
    for (index, module) in order.modules.iter().enumerate() {
        let info = tree.info(module).unwrap();
        for dep in info.depends.iter().chain(info.softdep_pre.iter()) {
            if let Lookup::Modules(providers) = tree.lookup(dep).unwrap() {
                for provider in providers {
                    let at = position(&provider).unwrap();
                    assert!(
                        at < index,
                        "{provider} must load before {module}: {:?}",
                        order.modules
                    );
                }
            }
        }
    }
    // crc32c reaches the image only through ext4's softdep on an alias: without it the
    // mount of a metadata_csum filesystem fails.
    assert!(position("crc32c_generic").unwrap() < position("ext4").unwrap());
}

#[test]
fn modinfo_of_a_real_module() {
    let Some(kernel) = common::kernel_dir() else {
        return;
    };
    let tree = ModuleTree::open(&common::modules_dir(&kernel)).unwrap();
    let bytes = tree.read_module("ext4").unwrap();
    let info = baton::host::modules::file::read(&bytes).unwrap();
    assert_eq!(info.name.as_deref(), Some("ext4"));
    assert!(info.depends.iter().any(|d| d == "jbd2"), "{info:?}");
    assert!(info.aliases.iter().any(|a| a == "fs-ext4"), "{info:?}");
    assert!(!info.softdep_pre.is_empty(), "{info:?}");
}

#[test]
fn builtin_and_unknown_modules() {
    let Some(kernel) = common::kernel_dir() else {
        return;
    };
    let dir = common::modules_dir(&kernel);
    let mut tree = ModuleTree::open(&dir).unwrap();
    let builtin_list = std::fs::read_to_string(dir.join("modules.builtin")).unwrap();
    let first = builtin_list.lines().next().unwrap();
    let name = modinfo::name_from_file(first.rsplit('/').next().unwrap()).unwrap();
    let order = resolve(&mut tree, std::slice::from_ref(&name)).unwrap();
    assert!(
        order.modules.is_empty(),
        "{name} is built in: nothing to load"
    );
    assert_eq!(order.builtin, [name]);

    let err = resolve(&mut tree, &names(&["no_such_module_anywhere"])).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

#[test]
fn fat_brings_the_tables_it_asks_for_when_it_mounts() {
    // Debian's config: codepage 437, iocharset "ascii". FAT's mount fails without them, and
    // no depends= or softdep names them.
    for kernel in [common::kernel(), common::kernel_new()]
        .into_iter()
        .flatten()
    {
        let mut tree = ModuleTree::open(&kernel.modules).unwrap();
        assert!(
            tree.config().is_some(),
            "{}: no kernel config found",
            kernel.tag
        );
        let order = resolve(&mut tree, &names(&["vfat"])).unwrap();
        let position = |m: &str| order.modules.iter().position(|x| x == m);
        for table in ["nls_cp437", "nls_ascii"] {
            let (Some(table_at), Some(vfat_at)) = (position(table), position("vfat")) else {
                panic!(
                    "{}: {table} or vfat missing from {:?}",
                    kernel.tag, order.modules
                );
            };
            assert!(table_at < vfat_at, "{}: {:?}", kernel.tag, order.modules);
        }
        assert!(position("nls_utf8").is_none(), "only what the config names");
    }
}

/// An installed kernel (depmod run: modules.alias) and the same modules fresh out of the
/// package (no index) give the very same image: the index only saves reading every
/// module's `.modinfo` to find aliases. Both build times are printed (a benchmark, not a
/// bound).
#[test]
fn depmods_index_changes_the_speed_not_the_image() {
    let Some(kernel) = common::kernel_dir() else {
        return;
    };
    let modules = common::modules_dir(&kernel);
    let release = modules.file_name().unwrap().to_str().unwrap().to_owned();
    let depmod = ["/usr/sbin/depmod", "/sbin/depmod"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(depmod) = depmod else {
        assert!(
            std::env::var("BATON_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "depmod is missing: run scripts/deps"
        );
        eprintln!("skipped: depmod is missing (scripts/deps installs kmod)");
        return;
    };
    // A system root with the package's modules (hard links: no copying) and its config.
    let root = common::work_dir().join("installed-kernel");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("lib/modules")).unwrap();
    std::fs::create_dir_all(root.join("boot")).unwrap();
    let tree = root.join("lib/modules").join(&release);
    let status = std::process::Command::new("cp")
        .arg("-al")
        .arg(&modules)
        .arg(&tree)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::copy(
        kernel.join("config"),
        root.join(format!("boot/config-{release}")),
    )
    .unwrap();
    let status = std::process::Command::new(depmod)
        .arg("-b")
        .arg(&root)
        .arg(&release)
        .status()
        .unwrap();
    assert!(status.success(), "depmod failed");
    assert!(tree.join("modules.alias").is_file());

    let build = |name: &str| {
        let out = common::work_dir().join(name);
        let started = std::time::Instant::now();
        let result = std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["build", "--storage", "--firmware-dir", "none", "-o"])
            .arg(&out)
            .arg("--modules-dir")
            .arg(&tree)
            .env("SOURCE_DATE_EPOCH", "0")
            .output()
            .unwrap();
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        (std::fs::read(out).unwrap(), started.elapsed())
    };
    let (indexed, with_index) = build("indexed.img");
    std::fs::rename(tree.join("modules.alias"), tree.join("modules.alias.off")).unwrap();
    let (read, without_index) = build("modinfo.img");
    eprintln!(
        "baton build --storage for {release}: {:.2} s with modules.alias, {:.2} s without",
        with_index.as_secs_f64(),
        without_index.as_secs_f64()
    );
    assert!(indexed == read, "the index changed the image");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn root_drivers_the_image_cannot_hint_are_named_and_left_out() {
    let Some(kernel) = common::kernel_dir() else {
        return;
    };
    let dir = common::modules_dir(&kernel);
    let builtin_list = std::fs::read_to_string(dir.join("modules.builtin")).unwrap();
    let first = builtin_list.lines().next().unwrap();
    let builtin = modinfo::name_from_file(first.rsplit('/').next().unwrap()).unwrap();
    let out = common::work_dir().join("root-driver-hints.img");
    let result = std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .args([
            "build",
            "--compress",
            "none",
            "--firmware-dir",
            "none",
            "-o",
        ])
        .arg(&out)
        .arg("--modules-dir")
        .arg(&dir)
        .args(["--module", "virtio_blk", "--root-driver"])
        .arg(format!("virtio-blk,nvme,no_such_driver,{builtin}"))
        .env("SOURCE_DATE_EPOCH", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let warned = |name: &str| stderr.contains(&format!("root driver {name} left out"));
    assert!(
        warned("nvme") && stderr.contains("not in the image"),
        "{stderr}"
    );
    assert!(
        warned("no_such_driver") && stderr.contains("no module or built-in driver"),
        "{stderr}"
    );
    assert!(!warned("virtio_blk") && !warned(&builtin), "{stderr}");
    let image = std::fs::read(&out).unwrap();
    let manifest = String::from_utf8_lossy(&image);
    assert!(
        manifest.contains("\nroot-drivers virtio_blk\n"),
        "the hint keeps what the image carries"
    );
}

#[test]
fn a_generic_image_packs_the_modules_off_the_roots_path_and_keeps_device_aliases_aside() {
    let Some(kernel) = common::kernel() else {
        return;
    };
    let dir = kernel.modules.clone();
    let build = |name: &str, args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--storage", "--firmware-dir", "none"]);
        let image = common::image(&kernel, name, &args);
        baton::host::image::inspect::read_image(&std::fs::read(image).unwrap()).unwrap()
    };
    let hinted = &["--root-fs", "ext4", "--root-driver", "virtio_blk"];
    let packed = build("generic-packed", hinted);
    let mut tree = ModuleTree::open(&dir).unwrap();
    let on_path = resolve(&mut tree, &names(&["virtio_blk", "ext4"])).unwrap();
    let module_of = |path: &str| modinfo::name_from_file(path.rsplit('/').next()?);
    let (mut plain, mut lz4) = (Vec::new(), 0);
    for entry in packed.iter().filter(|e| e.path.contains(".ko")) {
        assert_eq!(
            entry.compression,
            baton::host::image::compress::Compression::None,
            "packed modules need no compression around them"
        );
        if let Some(stem) = entry.path.strip_suffix(".lz4") {
            // Each unpacks to exactly the tree's module.
            let name = module_of(stem).unwrap();
            let (module, used) = baton::lz4_legacy::decompress(&entry.data, usize::MAX)
                .unwrap()
                .unwrap();
            assert_eq!(used, entry.data.len(), "{}", entry.path);
            assert_eq!(module, tree.read_module(&name).unwrap(), "{}", entry.path);
            assert!(
                !on_path.modules.contains(&name),
                "{name} is on the root's path"
            );
            lz4 += 1;
        } else {
            plain.push(module_of(&entry.path).unwrap());
        }
    }
    // The manifest keeps the aliases a hinted boot looks up (fs-ext4); the device patterns
    // coldplug needs are in their own file.
    let text = |path: &str| {
        let entry = packed.iter().find(|e| e.path == path).unwrap();
        String::from_utf8(entry.data.clone()).unwrap()
    };
    let manifest = baton::manifest::Manifest::parse(&text("etc/baton/manifest")).unwrap();
    let device_aliases = baton::manifest::Manifest::parse(&text("etc/baton/aliases"))
        .unwrap()
        .aliases;
    assert_eq!(manifest.alias_file.as_deref(), Some("/etc/baton/aliases"));
    assert!(manifest.aliases.pairs().any(|a| a == ("fs-ext4", "ext4")));
    assert!(manifest.aliases.len() < 200, "{}", manifest.aliases.len());
    assert!(device_aliases
        .pairs()
        .any(|(p, m)| p.starts_with("virtio:d00000002v") && m == "virtio_blk"));
    assert!(device_aliases.len() > 1000, "{}", device_aliases.len());
    plain.sort();
    let mut want = on_path.modules.clone();
    want.sort();
    assert_eq!(
        plain, want,
        "stored plain: the root's path and nothing else"
    );
    assert!(lz4 > 100, "only {lz4} modules packed");

    // Asked to decompress, every module is plain and the image is compressed as a whole.
    let whole = build(
        "generic-whole",
        &["--root-fs", "ext4", "--module-compression", "decompress"],
    );
    assert!(whole.iter().all(|e| !e.path.ends_with(".lz4")
        && e.compression != baton::host::image::compress::Compression::None));
    // A compression asked for is one for the whole image, over plain modules: packing them
    // first would leave zstd nothing to shrink and the boot two things to unpack.
    let zstd = build("generic-zstd", &["--root-fs", "ext4", "--compress", "zstd"]);
    assert!(zstd.iter().all(|e| !e.path.ends_with(".lz4")
        && e.compression == baton::host::image::compress::Compression::Zstd));
}
