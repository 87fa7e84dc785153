//! LVM2, read from its PVs in-process: the label and metadata areas (`label`), the metadata
//! text (`text`), the volume group it describes (`vg`), VGs put together from the PVs seen
//! (`assembly`), which LVs to activate (`select`), the device-mapper devices they become
//! (`activation`), and all of it in the root search (`bring_up`).

pub mod activation;
pub mod assembly;
pub mod bring_up;
pub mod label;
pub mod select;
pub mod text;
pub mod vg;
