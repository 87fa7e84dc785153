//! Loading the image's modules at boot: which to load for the devices present, on how many
//! threads and in what order (`schedule`), and the loading itself (`load`; `packed` for the
//! modules the builder packed with lz4).

pub mod load;
pub mod packed;
pub mod schedule;
