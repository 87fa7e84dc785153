//! LVM2, read from its PVs in-process: the label and metadata areas (`label`), the metadata
//! text (`text`), the volume group it describes (`vg`), VGs put together from the PVs seen
//! (`assembly`) and the device-mapper devices their LVs become (`activation`).

pub mod activation;
pub mod assembly;
pub mod label;
pub mod text;
pub mod vg;
