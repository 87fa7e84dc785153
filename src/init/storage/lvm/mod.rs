//! LVM2, read from its PVs in-process: the label and metadata areas (`label`), the metadata
//! text (`text`) and the volume group it describes (`vg`).

pub mod label;
pub mod text;
pub mod vg;
