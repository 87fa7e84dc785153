//! What a kernel module says about itself (its `.modinfo`: aliases, dependencies, firmware),
//! and the shell-style patterns module names are matched with. The host resolves sets of
//! modules with these (`host::modules`), the init loads them (`init::modules`).

pub mod glob;
pub mod modinfo;
