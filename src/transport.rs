//! The two ways a host shares a directory as a VM's root, as `rootfstype=` names them: what
//! `baton run` sets up on the host and what the init mounts.

/// How the host shares the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// 9P2000.L over virtio (qemu `-virtfs` / `virtio-9p-pci`).
    NineP,
    /// FUSE over virtio (qemu `vhost-user-fs-pci` and a virtiofsd).
    Virtiofs,
}

impl Transport {
    /// The transport `rootfstype=` names, when it names exactly one of them.
    pub fn from_rootfstype(fstypes: &[String]) -> Option<Transport> {
        match fstypes {
            [one] if one == "9p" => Some(Transport::NineP),
            [one] if one == "virtiofs" => Some(Transport::Virtiofs),
            _ => None,
        }
    }

    /// The kernel's name for the filesystem.
    pub fn fstype(self) -> &'static str {
        match self {
            Transport::NineP => "9p",
            Transport::Virtiofs => "virtiofs",
        }
    }

    /// The modules that carry it, in load order, for images that name them rather than
    /// load them by the device's alias (the small image of `baton run`).
    pub fn modules(self) -> &'static [&'static str] {
        match self {
            Transport::NineP => &["9pnet_virtio", "9p"],
            Transport::Virtiofs => &["virtiofs"],
        }
    }
}
