//! The storage stack as the root search meets it: every device the search probes that is
//! an LVM PV or an MD member is read once, and what becomes possible is done at once (an
//! array started, a VG's LVs activated). The devices made go through the search's probe
//! like any disk, so LVM on MD, or MD on LVM, assembles in whatever order things appear.

use super::crypt::bring_up::Crypt;
use super::dm::Control;
use super::lvm::bring_up::Lvm;
use super::lvm::select::Selection;
use super::md::bring_up::Md;
use crate::cmdline::{CryptParams, StackParams};
use crate::init::modules::load::Loader;
use crate::rootspec::{Record, RootSpec};
use std::collections::BTreeSet;

/// Where the host's mdadm.conf is carried in the image.
const MDADM_CONF: [&str; 2] = ["/etc/mdadm/mdadm.conf", "/etc/mdadm.conf"];
/// The most of it read.
const MAX_CONF_BYTES: u64 = 256 * 1024;

pub struct Stack {
    selection: Selection,
    lvm: Lvm,
    md: Md,
    crypt: Crypt,
    /// Devices already read, by name and number (a name can come back as another device).
    looked: BTreeSet<(String, u32, u32)>,
}

impl Stack {
    pub fn new(
        params: &StackParams,
        crypt: &CryptParams,
        root: &RootSpec,
        resume: Option<&RootSpec>,
    ) -> Stack {
        let root = root.to_string();
        let resume = resume.map(ToString::to_string);
        let conf = MDADM_CONF
            .iter()
            .find_map(|path| crate::bounded::read_bounded(path, MAX_CONF_BYTES).ok())
            .map(|bytes| crate::storage_names::parse_conf(&String::from_utf8_lossy(&bytes)))
            .unwrap_or_default();
        Stack {
            selection: Selection::new(params, Some(&root), resume.as_deref()),
            lvm: Lvm::default(),
            md: Md::new(params, conf),
            crypt: Crypt::new(crypt),
            looked: BTreeSet::new(),
        }
    }

    /// Reads the members among `records` not read yet, then starts and activates what
    /// they complete. `quiet`: the devices have settled, so arrays short of members may
    /// start degraded after their wait; `last_chance`: the search is giving up, so they
    /// start now. Returns the kernel names of the devices made (`md0`, `dm-0`): the search
    /// looks at them at once.
    pub fn advance(
        &mut self,
        records: &[Record],
        loader: &mut Loader<'_>,
        quiet: bool,
        last_chance: bool,
    ) -> Vec<String> {
        let mut made = Vec::new();
        // A module by name (`dm_mod`) or a personality by alias (`md-level-1`), in the
        // kernel before the array or table that needs it: asked of the loader (which waits
        // for one its threads are loading) unless it is built in.
        let mut load = |what: &str| {
            let by_alias = ["md-level-", "crypto-", "algif-"];
            let names = if by_alias.iter().any(|prefix| what.starts_with(prefix)) {
                loader.load_alias(what)
            } else if built_in(what) {
                return;
            } else {
                loader.load(what, "the storage stack");
                vec![what.to_owned()]
            };
            loader.wait_for(&names);
        };
        for record in records {
            let Some(fs) = &record.fs else { continue };
            if fs.fstype == "crypto_LUKS" {
                made.extend(self.crypt.open(record, &mut load));
                continue;
            }
            let key = (record.name.clone(), record.major, record.minor);
            let is_pv = fs.fstype == "LVM2_member";
            let is_md = fs.fstype == "linux_raid_member";
            if !(is_pv || is_md) || self.looked.contains(&key) {
                continue;
            }
            self.looked.insert(key);
            let node = match std::fs::File::open(record.node()) {
                Ok(file) => file,
                Err(e) => {
                    log::warn!("cannot open {}: {e}", record.node());
                    continue;
                }
            };
            let dev = (record.major, record.minor);
            if is_pv {
                self.lvm.add_pv(&record.name, dev, &node);
            } else {
                self.md.add_member(&record.name, dev, &node);
            }
        }
        made.extend(self.md.start(quiet, last_chance, &mut load));
        let mut control = || {
            load("dm_mod");
            Control::open()
        };
        made.extend(self.lvm.activate(&self.selection, &mut control));
        made
    }

    /// What a device holds when it is a stack member, for the search's messages.
    pub fn describe(&self, record: &Record) -> Option<String> {
        let fstype = record.fs.as_ref().map(|fs| fs.fstype.as_str());
        if let Some(firmware @ ("isw_raid_member" | "ddf_raid_member")) = fstype {
            return crate::probe::member_kind(firmware).map(str::to_owned);
        }
        self.lvm
            .describe(&record.name)
            .or_else(|| self.md.describe(&record.name))
            .or_else(|| self.crypt.describe(record))
    }

    /// Why the boot cannot go on: a volume named to be unlocked could not be.
    pub fn fatal(&self) -> Option<&str> {
        self.crypt.fatal()
    }

    /// Why wanted volumes did not come up, for the failure message.
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.md.problems();
        out.extend(self.lvm.problems(&self.selection));
        out
    }
}

/// Whether module `name` is built into the kernel: it has a /sys/module directory but no
/// `initstate` (a loadable module's says `coming` while its init runs, `live` after; its
/// directory appears before its init has made its devices, so it alone proves nothing).
fn built_in(name: &str) -> bool {
    let dir = std::path::Path::new("/sys/module").join(name);
    dir.is_dir() && !dir.join("initstate").exists()
}
