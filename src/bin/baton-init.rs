//! The static `/init`: the kernel runs it as PID 1 from the initramfs. Under the name
//! `switch_root` or `run-init` it is that tool instead (see baton::applets).

use std::process::ExitCode;

fn main() -> ExitCode {
    // args_os: std::env::args() panics on an argument that is not UTF-8.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some((argv0, rest)) = args.split_first() {
        if let Some(applet) = baton::applets::by_name(argv0) {
            return ExitCode::from(baton::applets::run(applet, rest));
        }
    }
    // Run by hand on a live system, the boot would mount over /proc and /dev and try to
    // switch roots: refuse before doing anything.
    if std::process::id() != 1 {
        // The kernel asking for a module while baton runs (see baton::modprobe).
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
