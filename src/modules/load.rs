//! Loading the modules the builder put in the image, in the order it resolved.
//!
//! `finit_module(2)` takes an open file, so the kernel reads the module straight from the
//! initramfs page cache: no copy through our memory, and signature checks see the file.

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};
use std::ffi::CString;
use std::fs::File;
use std::time::{Duration, Instant};

/// How one module's load went.
#[derive(Debug)]
pub enum Outcome {
    Loaded(Duration),
    /// Already in the kernel (loaded earlier, or built in under another file name).
    AlreadyLoaded,
    /// The driver found no device it supports (ENODEV): normal for a generic image.
    NoDevice,
    Failed(String),
}

/// Loads one module file with the given parameters (`a=1 b=2`).
pub fn load(path: &str, params: &str) -> Outcome {
    let started = Instant::now();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(format!("failed to open {path}: {e}")),
    };
    let Ok(params) = CString::new(params) else {
        return Outcome::Failed(format!("parameters for {path} contain a NUL byte"));
    };
    match finit_module(&file, &params, ModuleInitFlags::empty()) {
        Ok(()) => Outcome::Loaded(started.elapsed()),
        Err(Errno::EEXIST) => Outcome::AlreadyLoaded,
        Err(Errno::ENODEV) => Outcome::NoDevice,
        Err(errno) => Outcome::Failed(format!("failed to load module {path}: {errno}")),
    }
}

/// Loads every module in order, logging each. A failure is logged and the rest still load:
/// a driver for absent hardware fails with ENODEV and that is fine; whether the root can be
/// found is decided later, with a message naming what is missing.
pub fn load_all(modules: &[(String, String)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (path, params) in modules {
        match load(path, params) {
            Outcome::Loaded(took) => {
                log::info!("loaded {} in {} ms", name_of(path), took.as_millis())
            }
            Outcome::AlreadyLoaded => log::info!("{} is already loaded", name_of(path)),
            Outcome::NoDevice => {
                log::info!("{}: no device for this driver (ENODEV)", name_of(path))
            }
            Outcome::Failed(why) => {
                log::warn!("{why}");
                failures.push(why);
            }
        }
    }
    failures
}

/// `lib/modules/6.1.0/kernel/fs/ext4/ext4.ko` -> `ext4`, for log lines.
fn name_of(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split('.').next().unwrap_or(file)
}
