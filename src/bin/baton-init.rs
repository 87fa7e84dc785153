//! The static `/init`: the kernel runs it as PID 1 from the initramfs.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Run by hand on a live system, the boot would mount over /proc and /dev and try to
    // switch roots: refuse before doing anything.
    if std::process::id() != 1 {
        // The kernel asking for a module while baton runs (see baton::modprobe).
        // args_os: std::env::args() panics on an argument that is not UTF-8.
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        if let Some(name) = baton::modprobe::request(&args) {
            return ExitCode::from(baton::modprobe::run(name));
        }
        eprintln!(
            "baton-init: this is the initramfs /init and must run as PID 1; see `baton build`"
        );
        return ExitCode::from(2);
    }
    baton::boot::run()
}
