//! Handing the machine to the real root: choose the init, check everything that could make
//! the switch a mistake, move the API filesystems over, make the new root `/`, free the
//! initramfs, and exec. The order follows systemd's switch_root() and busybox/klibc's
//! switch_root/run-init; the guards come first and nothing destructive happens before them.

use crate::mounts::is_mount_point;
use crate::rmrf::{self, Removal};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, stat, Mode, SFlag};
use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Where the kernel looks when `init=` is not given or fails (init/main.c).
pub const FALLBACK_INITS: [&str; 4] = ["/sbin/init", "/etc/init", "/bin/init", "/bin/sh"];

/// API filesystems carried into the new root.
const MOVED_MOUNTS: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];

/// Chooses the program to exec in the new root: `requested` if it is there and executable,
/// otherwise the kernel's list. Paths are resolved inside the new root, so an absolute
/// symlink such as /sbin/init -> /lib/systemd/systemd is followed there, not in the
/// initramfs.
pub fn choose_init(new_root: &Path, requested: Option<&str>) -> Result<String> {
    let root = open(
        new_root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("failed to open the new root {}", new_root.display()))?;
    let mut tried = Vec::new();
    if let Some(path) = requested {
        match check_executable(&root, path) {
            Ok(()) => return Ok(path.to_owned()),
            Err(why) => {
                log::error!(
                    "init={path} cannot be run from the new root ({why}); falling back to {}",
                    FALLBACK_INITS.join(", ")
                );
                tried.push(format!("{path}: {why}"));
            }
        }
    }
    for path in FALLBACK_INITS {
        if requested == Some(path) {
            continue;
        }
        match check_executable(&root, path) {
            Ok(()) => return Ok(path.to_owned()),
            Err(why) => tried.push(format!("{path}: {why}")),
        }
    }
    bail!(
        "no init to run in the new root {} (tried {}); pass init=PATH",
        new_root.display(),
        tried.join("; ")
    )
}

/// Whether `path` names an executable regular file inside `root`.
fn check_executable(root: &OwnedFd, path: &str) -> Result<(), String> {
    let fd = open_in_root(root, path).map_err(|e| e.desc().to_owned())?;
    let st = fstat(&fd).map_err(|e| e.desc().to_owned())?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG {
        return Err("not a regular file".into());
    }
    if st.st_mode & 0o111 == 0 {
        return Err("not executable".into());
    }
    Ok(())
}

/// `openat2(RESOLVE_IN_ROOT)`: resolves `path` as if `root` were `/`, symlinks included
/// (Linux 5.6+). On older kernels, a plain openat relative to the root is the best we have.
fn open_in_root(root: &OwnedFd, path: &str) -> Result<OwnedFd, Errno> {
    let relative = CString::new(path.trim_start_matches('/')).map_err(|_| Errno::EINVAL)?;
    // SAFETY: open_how is plain integers; all-zero is its documented empty value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid pointers to a NUL-terminated path and an open_how of the size we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            relative.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if ret >= 0 {
        // SAFETY: the kernel just gave us this descriptor and nobody else owns it.
        return Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) });
    }
    match Errno::last() {
        Errno::ENOSYS => nix::fcntl::openat(
            root,
            relative.as_c_str(),
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        ),
        errno => Err(errno),
    }
}

/// Result of a switch, for the log.
#[derive(Debug)]
pub struct Switched {
    /// `None` when the old root was not ramfs/tmpfs and so was left alone.
    pub removal: Option<Removal>,
}

/// Makes `new_root` the root of the system. Refuses, before changing anything, unless this
/// is PID 1 and `new_root` is a different filesystem from `/`. The old root's contents are
/// deleted only if it is ramfs or tmpfs.
pub fn switch_root(new_root: &Path) -> Result<Switched> {
    let pid = nix::unistd::getpid().as_raw();
    if pid != 1 {
        bail!("refusing to switch root: this process is PID {pid}, not 1");
    }
    let old_root = open(
        "/",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("failed to open the old root /")?;
    let deletable = rmrf::is_ram_filesystem(&old_root).context("failed to statfs /")?;
    let old_dev = fstat(&old_root).context("failed to stat /")?.st_dev;
    let new_dev = stat(new_root)
        .with_context(|| format!("failed to stat the new root {}", new_root.display()))?
        .st_dev;
    if new_dev == old_dev {
        bail!(
            "refusing to switch root: {} is on the same filesystem as / (is the root mounted?)",
            new_root.display()
        );
    }
    if !deletable {
        log::warn!("/ is not ramfs or tmpfs: switching without deleting anything in it");
    }

    // MS_MOVE fails when the parent mount is shared; the initramfs is private already, but
    // a tmpfs root set up by someone else may not be.
    if let Err(errno) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    ) {
        log::warn!("failed to make / private: {}", errno.desc());
    }
    for api in MOVED_MOUNTS {
        move_mount(api, new_root)?;
    }

    nix::unistd::chdir(new_root)
        .with_context(|| format!("failed to chdir to {}", new_root.display()))?;
    // pivot_root keeps the old root reachable until unmounted, then frees it; it fails with
    // EINVAL when / is the kernel's rootfs, which can never be unmounted: there we move the
    // new root over / instead.
    match nix::unistd::pivot_root(".", ".") {
        Ok(()) => {
            umount2(".", MntFlags::MNT_DETACH)
                .context("failed to detach the old root after pivot_root")?;
        }
        Err(Errno::EINVAL) => {
            mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .with_context(|| format!("failed to move {} to /", new_root.display()))?;
            nix::unistd::chroot(".").context("failed to chroot into the new root")?;
        }
        Err(errno) => return Err(errno).context("failed to pivot_root into the new root"),
    }
    nix::unistd::chdir("/").context("failed to chdir to the new /")?;

    let removal = if deletable {
        Some(rmrf::remove_children(&old_root).context("failed to empty the old root")?)
    } else {
        None
    };
    Ok(Switched { removal })
}

/// Moves one API mount into the new root, or detaches it if the new root has nowhere to put
/// it (a mount left behind in the initramfs would pin it in memory).
fn move_mount(api: &str, new_root: &Path) -> Result<()> {
    let source = Path::new(api);
    if !is_mount_point(source) {
        return Ok(());
    }
    let target = new_root.join(api.trim_start_matches('/'));
    if target.is_dir() {
        mount(
            Some(source),
            &target,
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .with_context(|| format!("failed to move {api} to {}", target.display()))
    } else {
        log::warn!(
            "{} does not exist in the new root; unmounting {api}",
            target.display()
        );
        umount2(source, MntFlags::MNT_DETACH).with_context(|| format!("failed to unmount {api}"))
    }
}

/// Points fds 0-2 at the new root's /dev/console, as the kernel does for the init it starts.
pub fn reopen_console() -> Result<()> {
    let console = open("/dev/console", OFlag::O_RDWR, Mode::empty())
        .context("failed to open /dev/console")?;
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        if unsafe { libc::dup2(console.as_raw_fd(), target) } < 0 {
            return Err(Errno::last())
                .with_context(|| format!("failed to point fd {target} at /dev/console"));
        }
    }
    Ok(())
}

/// Execs the real init with the arguments and environment the kernel gave us: the kernel
/// already put its unknown words and everything after `--` in our argv, exactly what it would
/// have handed to the real init.
pub fn exec_init(init: &str, args: &[String], env: &[String]) -> Result<Infallible> {
    let to_c =
        |s: &str| CString::new(s).with_context(|| format!("argument {s:?} contains a NUL byte"));
    let path = to_c(init)?;
    let mut argv = vec![path.clone()];
    for arg in args {
        argv.push(to_c(arg)?);
    }
    let envp = env.iter().map(|e| to_c(e)).collect::<Result<Vec<_>>>()?;
    nix::unistd::execve(&path, &argv, &envp).with_context(|| format!("failed to exec {init}"))
}
