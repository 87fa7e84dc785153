//! The static `/init`: the kernel runs it as PID 1 from the initramfs. Under the name
//! `switch_root` or `run-init` it is that tool instead (see baton::init::applets).
//!
//! `main` is the C entry point musl calls, not Rust's: the standard runtime's start-up
//! (checking fds 0-2 with poll, ignoring SIGPIPE, an alternate signal stack with a guard
//! page for stack overflows) is half a dozen system calls PID 1 has no use for, and each
//! kind of call is slow the first time under an emulated CPU (TCG): measured, 10-20 ms of
//! the kernel's `Run /init` to baton's first step. PID 1 gets no signal it has no handler
//! for, so SIGPIPE needs nothing; its fds are /dev/console's (the image has the node) and
//! are pointed there again at the switch; a stack overflow ends PID 1 either way.

#![no_main]

use std::ffi::{c_char, c_int, CStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStringExt;

/// See baton::init::alloc: musl's own malloc is slow under an emulated CPU.
#[global_allocator]
static ALLOCATOR: baton::init::alloc::Allocator = baton::init::alloc::Allocator::new();

/// More arguments than the kernel can pass (MAX_ARG_STRINGS is far above any command line,
/// but the line itself is at most a few KiB): a bound for the loop over argv.
const MAX_ARGS: usize = 1 << 16;

#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: musl passes the process's argc and argv: argc pointers to NUL-terminated
    // strings, then a null pointer.
    let args = unsafe { arguments(argc, argv) };
    let status = run(&args);
    // Rust's runtime would flush stdout on the way out; without it, do it here.
    let _ = std::io::stdout().flush();
    c_int::from(status)
}

/// argv as owned bytes (an argument need not be UTF-8).
///
/// # Safety
/// `argv` must hold `argc` valid C strings, as the C runtime passes them to `main`.
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    let count = usize::try_from(argc).unwrap_or(0).min(MAX_ARGS);
    if argv.is_null() {
        return Vec::new();
    }
    (0..count)
        .map_while(|i| {
            // SAFETY: i < argc, so argv[i] is within the array (see above).
            let arg = unsafe { *argv.add(i) };
            // SAFETY: a non-null argv entry is a NUL-terminated string.
            (!arg.is_null())
                .then(|| OsString::from_vec(unsafe { CStr::from_ptr(arg) }.to_bytes().to_vec()))
        })
        .collect()
}

fn run(args: &[OsString]) -> u8 {
    if let Some((argv0, rest)) = args.split_first() {
        if let Some(applet) = baton::init::applets::by_name(argv0) {
            return baton::init::applets::run(applet, rest);
        }
        if argv0.as_encoded_bytes().ends_with(b"luks-open") {
            return baton::init::storage::crypt::open_tool::run(rest);
        }
    }
    // Run by hand on a live system, the boot would mount over /proc and /dev and try to
    // switch roots: refuse before doing anything.
    if std::process::id() != 1 {
        // The kernel asking for a module while the initramfs is the root (see
        // baton::init::modprobe).
        if let Some(name) = baton::init::modprobe::request(args) {
            return baton::init::modprobe::run(name);
        }
        if args
            .first()
            .is_some_and(|a| a.as_encoded_bytes().ends_with(b"modprobe"))
        {
            eprintln!("modprobe: this is baton's answer to the kernel's module requests (modprobe -q -- NAME) only");
            return 2;
        }
        eprintln!(
            "baton-init: this is the initramfs /init and must run as PID 1; see `baton build`"
        );
        return 2;
    }
    baton::init::boot::run(args.get(1..).unwrap_or_default().to_vec())
}

/// Replaces musl's `pthread_setname_np`, the only caller of its printf in the init: to name
/// another thread it formats `/proc/self/task/%d/comm`, and that pulls in 8 KB of printf and
/// float formatting. Rust's threads only ever name themselves (the module loaders are
/// `loadN`), which needs no path: `prctl(PR_SET_NAME)`, as musl does for that case.
#[no_mangle]
extern "C" fn pthread_setname_np(thread: libc::pthread_t, name: *const c_char) -> c_int {
    // SAFETY: pthread_self has no preconditions.
    if thread != unsafe { libc::pthread_self() } {
        return libc::ENOSYS;
    }
    // SAFETY: `name` is the caller's NUL-terminated string; the kernel copies at most 16
    // bytes of it.
    match unsafe { libc::prctl(libc::PR_SET_NAME, name) } {
        0 => 0,
        _ => std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL),
    }
}
