//! Coldplug: the devices present when the root search starts, as udev's coldplug reads
//! them (each device's `modalias` in sysfs), and the order their drivers are asked for.
//!
//! Reading sysfs costs about a millisecond a device under an emulated CPU, and a PC or VM
//! has dozens of devices on buses no root sits behind. So the PCI bus is read first and its
//! likeliest root controllers (virtio, NVMe, AHCI, SAS) loaded at once; every other bus
//! (ACPI, platform, virtio-mmio, Hyper-V's VMBus...) is read only when those drivers are in
//! and no device event is waiting, which for a root on PCI is usually after it was found.
//! Then the rest of PCI in tiers, each once the devices of the last have settled.

use std::collections::VecDeque;

/// A bound on the buses, and on the devices of one bus, read for coldplug.
const MAX_SYSFS_ENTRIES: usize = 1 << 16;

/// One step of the coldplug.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// These modaliases' drivers.
    Load(Vec<String>),
    /// Every bus but PCI, read when its turn comes; loaded without waiting for the devices
    /// to settle first.
    OtherBuses,
}

/// The steps still to take, the next first.
#[derive(Debug, Default)]
pub struct Plan {
    steps: VecDeque<Step>,
}

impl Plan {
    /// Reads the PCI bus and plans the rest. Returns the plan and how many PCI devices it
    /// read.
    pub fn start() -> (Plan, usize) {
        let pci = bus_aliases("pci");
        let count = pci.len();
        (Plan::from_pci(pci), count)
    }

    fn from_pci(pci: Vec<String>) -> Plan {
        let mut tiers: Vec<Vec<String>> = vec![Vec::new(); 3];
        for alias in pci {
            if let Some(list) = tiers.get_mut(tier(&alias)) {
                list.push(alias);
            }
        }
        let mut steps = VecDeque::new();
        let mut tiers = tiers.into_iter();
        if let Some(first) = tiers.next().filter(|t| !t.is_empty()) {
            steps.push_back(Step::Load(first));
        }
        steps.push_back(Step::OtherBuses);
        steps.extend(tiers.filter(|t| !t.is_empty()).map(Step::Load));
        Plan { steps }
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether the next step waits for the devices of the last to settle.
    pub fn next_waits_to_settle(&self) -> bool {
        !matches!(self.steps.front(), Some(Step::OtherBuses))
    }

    /// The next step's modaliases (reading the other buses when it is their turn).
    pub fn take_next(&mut self) -> Option<Vec<String>> {
        match self.steps.pop_front()? {
            Step::Load(aliases) => Some(aliases),
            Step::OtherBuses => {
                let started = std::time::Instant::now();
                let aliases = other_buses();
                log::info!(
                    "coldplug: {} devices on the other buses, listed in {} ms",
                    aliases.len(),
                    started.elapsed().as_millis()
                );
                Some(aliases)
            }
        }
    }
}

/// The modalias of every device now, for a rescan after lost events.
pub fn all_aliases() -> Vec<String> {
    let mut all = bus_aliases("pci");
    all.extend(other_buses());
    all
}

/// Every bus's devices but PCI's. CPU features are left out: they name crypto and power
/// drivers, not storage.
fn other_buses() -> Vec<String> {
    let buses = crate::init::dirents::read_path("/sys/bus", MAX_SYSFS_ENTRIES).unwrap_or_default();
    let mut aliases = Vec::new();
    for bus in buses
        .iter()
        .filter_map(crate::init::dirents::Entry::name_str)
        .filter(|bus| !matches!(*bus, "cpu" | "pci"))
    {
        aliases.extend(bus_aliases(bus));
    }
    aliases.sort_unstable();
    aliases.dedup();
    aliases
}

/// The modaliases of one bus's devices, sorted, without repeats.
fn bus_aliases(bus: &str) -> Vec<String> {
    let devices = format!("/sys/bus/{bus}/devices");
    let Ok(entries) = crate::init::dirents::read_path(&devices, MAX_SYSFS_ENTRIES) else {
        return Vec::new();
    };
    let mut aliases: Vec<String> = entries
        .iter()
        .filter_map(crate::init::dirents::Entry::name_str)
        .filter_map(|device| std::fs::read_to_string(format!("{devices}/{device}/modalias")).ok())
        .map(|alias| alias.trim().to_owned())
        .collect();
    aliases.sort_unstable();
    aliases.dedup();
    aliases
}

/// Which coldplug tier a device belongs to: 0 for the controllers a modern root sits
/// behind (virtio, NVMe, AHCI, SAS) and every non-PCI device, 1 for other storage and buses
/// that lead to it (SCSI and RAID HBAs, USB, SD), 2 for the rest, legacy IDE among them.
pub fn tier(modalias: &str) -> usize {
    let Some(pci) = modalias.strip_prefix("pci:") else {
        return 0;
    };
    let field = |key: &str, len: usize| {
        pci.find(key)
            .and_then(|at| pci.get(at + key.len()..at + key.len() + len))
    };
    let vendor = field("v", 8).unwrap_or_default();
    let class = (
        field("bc", 2).unwrap_or_default(),
        field("sc", 2).unwrap_or_default(),
    );
    match class {
        _ if vendor == "00001AF4" => 0,
        ("01", "08") | ("01", "06") | ("01", "07") => 0,
        ("01", "01") => 2,
        ("01", _) | ("0C", "03") | ("08", "05") => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_put_modern_controllers_first() {
        // virtio (any class), NVMe, AHCI; then SCSI HBAs and USB; IDE last.
        assert_eq!(
            tier("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"),
            0
        );
        assert_eq!(
            tier("pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02"),
            0
        );
        assert_eq!(
            tier("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"),
            0
        );
        assert_eq!(
            tier("pci:v00001000d00000097sv00001000sd00003090bc01sc07i00"),
            0
        );
        assert_eq!(
            tier("pci:v00001000d00000012sv00000000sd00000000bc01sc00i00"),
            1
        );
        assert_eq!(
            tier("pci:v00008086d00007020sv00001AF4sd00001100bc0Csc03i00"),
            1
        );
        assert_eq!(
            tier("pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80"),
            2
        );
        assert_eq!(
            tier("pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00"),
            2
        );
        assert_eq!(tier("virtio:d00000002v00001AF4"), 0);
        assert_eq!(tier("acpi:PNP0A03:"), 0);
    }

    #[test]
    fn pci_root_controllers_first_then_the_other_buses_then_the_rest() {
        let virtio = "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00";
        let usb = "pci:v00008086d00007020sv00001AF4sd00001100bc0Csc03i00";
        let ide = "pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80";
        let mut plan = Plan::from_pci(vec![ide.into(), usb.into(), virtio.into()]);
        assert!(plan.next_waits_to_settle());
        assert_eq!(plan.take_next(), Some(vec![virtio.to_owned()]));
        assert!(!plan.next_waits_to_settle(), "the other buses come at once");
        assert_eq!(plan.steps.front(), Some(&Step::OtherBuses));
        plan.steps.pop_front();
        assert!(plan.next_waits_to_settle());
        assert_eq!(plan.take_next(), Some(vec![usb.to_owned()]));
        assert_eq!(plan.take_next(), Some(vec![ide.to_owned()]));
        assert!(plan.is_empty());
        // No PCI root controller (Hyper-V Gen2, a microvm): the other buses first.
        let plan = Plan::from_pci(vec![ide.into()]);
        assert_eq!(plan.steps.front(), Some(&Step::OtherBuses));
    }
}
