//! The `baton` tool, on the build host: the command line (`cli`), images (`image`: build,
//! inspect, compression, firmware, microcode), the module set (`modules`, `elf`), what this
//! machine runs on (`detect`), `update` and its configuration (`config`), `check`, the
//! timeline's table and drawing (`timeline`), and `baton run`'s VM (`vm`, `virtiofsd`,
//! `run_cache`).

pub mod check;
pub mod cli;
pub mod config;
pub mod detect;
pub mod elf;
pub mod image;
pub mod image_crypttab;
pub mod installed;
pub mod keymap;
pub mod modules;
pub mod run_cache;
pub mod timeline;
pub mod update;
pub mod virtiofsd;
pub mod vm;
pub mod words;
