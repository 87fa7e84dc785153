use super::stack::{self, Layer};
use super::*;
use std::path::PathBuf;

/// A sysfs fixture: block devices under devices/, linked from class/block and dev/block,
/// each with the files the walk reads.
struct Sys(PathBuf);

impl Sys {
    fn new(name: &str) -> Sys {
        let dir = std::env::temp_dir().join(format!("baton-check-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("class/block")).unwrap();
        std::fs::create_dir_all(dir.join("dev/block")).unwrap();
        Sys(dir)
    }

    /// A block device `name` with number `dev`, its files, and its slaves.
    fn block(&self, name: &str, dev: &str, files: &[(&str, &str)], slaves: &[&str]) -> PathBuf {
        let dir = self.0.join("devices/virtual/block").join(name);
        std::fs::create_dir_all(dir.join("slaves")).unwrap();
        for (file, text) in files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, format!("{text}\n")).unwrap();
        }
        for slave in slaves {
            std::os::unix::fs::symlink(
                self.0.join("devices/virtual/block").join(slave),
                dir.join("slaves").join(slave),
            )
            .unwrap();
        }
        std::os::unix::fs::symlink(&dir, self.0.join("class/block").join(name)).unwrap();
        std::os::unix::fs::symlink(&dir, self.0.join("dev/block").join(dev)).unwrap();
        dir
    }
}

impl Drop for Sys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mountinfo(dev: &str, fstype: &str, source: &str) -> String {
    format!(
        "22 1 0:5 / /dev rw - devtmpfs udev rw\n29 1 {dev} / / rw,relatime shared:1 - {fstype} {source} rw\n"
    )
}

#[test]
fn the_root_mount_is_the_last_on_slash() {
    let text = format!(
        "{}30 29 0:40 / / rw - overlay overlay rw\n",
        mountinfo("254:1", "ext4", "/dev/vda1")
    );
    assert_eq!(
        stack::root_mount(&text),
        Some((0, 40, "overlay".into(), "overlay".into()))
    );
    assert_eq!(
        stack::root_mount(&mountinfo("254:1", "ext4", "/dev/vda1")),
        Some((254, 1, "ext4".into(), "/dev/vda1".into()))
    );
    assert_eq!(stack::root_mount("garbage\n\n1 2 3"), None);
}

#[test]
fn the_running_form_walks_slaves_down_to_the_disks() {
    // ext4 on LVM on dm-crypt on vda5: Debian's "encrypted LVM".
    let sys = Sys::new("running");
    sys.block("vda5", "254:5", &[("partition", "5")], &[]);
    sys.block(
        "dm-0",
        "253:0",
        &[
            ("dm/uuid", "CRYPT-LUKS2-0123-vda5_crypt"),
            ("dm/name", "vda5_crypt"),
        ],
        &["vda5"],
    );
    sys.block(
        "dm-1",
        "253:1",
        &[("dm/uuid", "LVM-abcdef"), ("dm/name", "debian--vg-root")],
        &["dm-0"],
    );
    let found = stack::running(
        &mountinfo("253:1", "ext4", "/dev/mapper/debian--vg-root"),
        &sys.0,
    )
    .unwrap();
    assert_eq!(
        found,
        [
            Layer::Filesystem {
                fstype: "ext4".into(),
                source: "/dev/mapper/debian--vg-root".into()
            },
            Layer::Lvm {
                vg: "debian-vg".into(),
                lv: "root".into()
            },
            Layer::Crypt {
                name: "vda5_crypt".into()
            },
            Layer::Disk {
                name: "vda5".into(),
                modules: vec![]
            },
        ]
    );
    // An MD mirror of two disks.
    sys.block("sda1", "8:1", &[], &[]);
    sys.block("sdb1", "8:17", &[], &[]);
    sys.block("md0", "9:0", &[("md/level", "raid1")], &["sda1", "sdb1"]);
    let found = stack::running(&mountinfo("9:0", "ext4", "/dev/md0"), &sys.0).unwrap();
    assert!(found.contains(&Layer::Md {
        name: "md0".into(),
        level: Some("raid1".into())
    }));
    assert_eq!(
        found
            .iter()
            .filter(|l| matches!(l, Layer::Disk { .. }))
            .count(),
        2
    );
    let nfs = stack::running(&mountinfo("0:50", "nfs4", "server:/export"), &sys.0).unwrap();
    assert!(nfs.contains(&Layer::Network {
        fstype: "nfs4".into()
    }));
}

#[test]
fn an_lv_built_on_other_lvs_is_not_taken_for_a_plain_one() {
    let sys = Sys::new("thin");
    sys.block("vda5", "254:5", &[("partition", "5")], &[]);
    // A thin LV: its slave is the pool, another LVM device. Not one baton can make.
    sys.block(
        "dm-2",
        "253:2",
        &[("dm/uuid", "LVM-pool-tpool"), ("dm/name", "vg-pool-tpool")],
        &["vda5"],
    );
    sys.block(
        "dm-3",
        "253:3",
        &[("dm/uuid", "LVM-thin"), ("dm/name", "vg-thin")],
        &["dm-2"],
    );
    let thin = stack::running(&mountinfo("253:3", "ext4", "/dev/mapper/vg-thin"), &sys.0).unwrap();
    assert!(
        matches!(&thin[1], Layer::DeviceMapper { name, kind } if name == "vg-thin" && kind.contains("thin")),
        "{thin:?}"
    );
}

#[test]
fn the_tree_form_reads_fstab_crypttab_and_mdadm_conf() {
    let none = |_: &str| None;
    let tree = |fstab: &str, crypttab: &str, mdadm: &str| {
        stack::tree(fstab, crypttab, mdadm, &none).unwrap().unwrap()
    };
    let lvm = tree(
        "# comment\n/dev/mapper/vg0-root / ext4 errors=remount-ro 0 1\n",
        "",
        "",
    );
    assert_eq!(
        lvm.get(1),
        Some(&Layer::Lvm {
            vg: "vg0".into(),
            lv: "root".into()
        })
    );
    let crypt = tree(
        "/dev/mapper/cryptroot / ext4 defaults 0 1\n",
        "cryptroot UUID=1234 none luks,discard\n",
        "",
    );
    assert_eq!(
        crypt.get(1),
        Some(&Layer::Crypt {
            name: "cryptroot".into()
        })
    );
    let md = tree("/dev/md0 / ext4 defaults 0 1\n", "", "");
    assert!(matches!(md.get(1), Some(Layer::Md { name, .. }) if name == "md0"));
    let vg_path = tree("/dev/vg0/root / xfs defaults 0 1\n", "", "");
    assert!(matches!(vg_path.get(1), Some(Layer::Lvm { vg, .. }) if vg == "vg0"));
    // A root by UUID that this machine does not have: what the system assembles says.
    let by_uuid = tree(
        "UUID=abcd / ext4 defaults 0 1\n",
        "",
        "ARRAY /dev/md/0 metadata=1.2 UUID=x name=host:0\n",
    );
    assert!(matches!(by_uuid.get(1), Some(Layer::Md { name, .. }) if name == "0"));
    let plain = tree(
        "UUID=abcd / ext4 defaults 0 1\n/dev/vdb /home ext4 defaults 0 2\n",
        "",
        "",
    );
    assert_eq!(plain.len(), 1);
    assert_eq!(stack::tree("", "", "", &none).unwrap(), None);
}

fn image(modules: &[&str], fs_aliases: &[(&str, &str)], builtin: &[&str]) -> Capabilities {
    Capabilities {
        modules: modules.iter().map(|m| m.to_string()).collect(),
        aliases: fs_aliases.iter().copied().collect(),
        builtin: builtin.iter().map(|m| m.to_string()).collect(),
    }
}

#[test]
fn each_layer_is_judged_and_named() {
    let caps = image(
        &["virtio_blk", "ext4"],
        &[("fs-ext3", "ext4")],
        &["virtio_pci"],
    );
    let plain = [
        Layer::Filesystem {
            fstype: "ext3".into(),
            source: "/dev/vda1".into(),
        },
        Layer::Disk {
            name: "vda1".into(),
            modules: vec!["virtio_blk".into(), "virtio_pci".into()],
        },
    ];
    assert!(
        judge(&plain, &caps).iter().all(|f| f.ok),
        "{:?}",
        judge(&plain, &caps)
    );
    let xfs_on_nvme = [
        Layer::Filesystem {
            fstype: "xfs".into(),
            source: "/dev/nvme0n1p2".into(),
        },
        Layer::Disk {
            name: "nvme0n1p2".into(),
            modules: vec!["nvme".into()],
        },
    ];
    let found = judge(&xfs_on_nvme, &caps);
    assert!(
        !found[0].ok && found[0].line.contains("modules_add=xfs"),
        "{found:?}"
    );
    assert!(
        !found[1].ok && found[1].line.contains("lacks its driver nvme"),
        "{found:?}"
    );
    let lvm = [Layer::Lvm {
        vg: "vg0".into(),
        lv: "root".into(),
    }];
    let found = judge(&lvm, &caps);
    assert!(!found[0].ok);
    assert!(
        found[0]
            .line
            .contains("LVM logical volume vg0/root: the image lacks dm_mod"),
        "{found:?}"
    );
    let md = [Layer::Md {
        name: "md0".into(),
        level: Some("raid5".into()),
    }];
    let found = judge(&md, &caps);
    assert!(
        !found[0].ok && found[0].line.contains("lacks md_mod, raid456"),
        "{found:?}"
    );
    let with = Capabilities::new(
        &crate::manifest::Manifest::default(),
        "kernel/drivers/md/md-mod.ko\nkernel/drivers/md/raid456.ko\nkernel/drivers/md/dm-mod.ko\n",
    );
    assert!(judge(&md, &with)[0].ok);
    assert!(judge(&lvm, &with)[0].ok);
}

#[test]
fn builtin_modules_are_read_from_modules_builtin() {
    let caps = Capabilities::new(
        &crate::manifest::Manifest::default(),
        "kernel/drivers/virtio/virtio_pci.ko\nkernel/fs/ext4/ext4.ko\n",
    );
    assert!(caps.has_module("virtio_pci"));
    assert!(caps.has_filesystem("ext4"));
    assert!(!caps.has_filesystem("xfs"));
}
