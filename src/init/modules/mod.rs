//! Loading the image's modules at boot: which to load for the devices present, on how many
//! threads and in what order (`schedule`), the loading itself (`load`; `packed` for the
//! modules the builder packed with lz4) and the alias patterns names are matched against
//! (`aliases`).

pub mod aliases;
pub mod load;
pub mod packed;
pub mod schedule;
