//! Loading the image's modules at boot: which to load for the devices present, on how many
//! threads and in what order (`schedule`), and the loading itself (`load`).

pub mod load;
pub mod schedule;
