//! LVM2, read from its PVs in-process: the label and metadata areas (`label`), the metadata
//! text (`text`), the volume group it describes (`vg`) and the device-mapper devices its LVs
//! become (`activation`).

pub mod activation;
pub mod label;
pub mod text;
pub mod vg;
