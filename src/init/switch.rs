//! Handing the machine to the real root: choose the init, check everything that could make
//! the switch a mistake, move the API filesystems over, make the new root `/`, free the
//! initramfs, and exec. The order follows systemd's switch_root() and busybox/klibc's
//! switch_root/run-init; the guards come first and nothing destructive happens before them.

use crate::init::mounts::is_mount_point;
use crate::init::rmrf::{self, Removal};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, stat, Mode, SFlag};
use std::convert::Infallible;
use std::ffi::{CString, OsString};
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
/// (Linux 5.6+). Older kernels get the same resolution done by hand.
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
        Errno::ENOSYS => open_in_root_by_hand(root, path),
        errno => Err(errno),
    }
}

/// How many symlinks one lookup may follow: the kernel's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;

/// What `RESOLVE_IN_ROOT` does, one component at a time: each opened with `O_NOFOLLOW`; a
/// symlink's target is walked in its place, from `root` when it is absolute; `..` never goes
/// above `root`. A plain `openat` would follow `/sbin/init -> /lib/systemd/systemd` into the
/// initramfs instead of the new root, and judge a good init missing.
pub(crate) fn open_in_root_by_hand(root: &OwnedFd, path: &str) -> Result<OwnedFd, Errno> {
    use std::collections::VecDeque;
    use std::os::unix::ffi::OsStrExt;
    let components = |p: &[u8]| -> Vec<Vec<u8>> {
        p.split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .map(<[u8]>::to_vec)
            .collect()
    };
    let mut pending: VecDeque<Vec<u8>> = components(path.as_bytes()).into();
    // The directories walked so far, below `root`; `..` pops one.
    let mut walked: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == b".." {
            walked.pop();
            continue;
        }
        let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
        let here = walked.last().unwrap_or(root);
        let fd = nix::fcntl::openat(
            here,
            name.as_c_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let kind = SFlag::from_bits_truncate(fstat(&fd)?.st_mode) & SFlag::S_IFMT;
        if kind != SFlag::S_IFLNK {
            walked.push(fd);
            continue;
        }
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(Errno::ELOOP);
        }
        // An empty path reads the link an O_PATH descriptor points at (readlinkat(2)).
        let target = nix::fcntl::readlinkat(&fd, c"")?;
        let target = target.as_bytes();
        if target.starts_with(b"/") {
            walked.clear();
        }
        for component in components(target).into_iter().rev() {
            pending.push_front(component);
        }
    }
    match walked.pop() {
        Some(fd) => Ok(fd),
        None => nix::unistd::dup(root),
    }
}

/// The directories the real init needs in the new root before anything is changed: /dev
/// for its console (and for /dev to be moved there), /proc for everything else. Without
/// them the switch would succeed and the real init fail with no console to say so.
pub fn check_new_root(new_root: &Path) -> Result<()> {
    let root = open(
        new_root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("failed to open the new root {}", new_root.display()))?;
    for dir in ["/dev", "/proc"] {
        if !is_real_dir(&root, dir.trim_start_matches('/')) {
            bail!(
                "the new root {} has no {dir} directory, which the real init needs (for its console and the kernel's API filesystems): create it in the root filesystem (mkdir {dir})",
                new_root.display()
            );
        }
    }
    Ok(())
}

/// [`is_real_dir`] for a directory named by path (false when it cannot be opened).
pub fn is_real_dir_at(dir: &Path, name: &str) -> bool {
    open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .is_ok_and(|fd| is_real_dir(&fd, name))
}

/// Whether `name` in `dir` is a directory itself, not a symlink to one: mount(2) follows
/// symlinks in its target, and a link in the new root could point the move anywhere.
fn is_real_dir<Fd: std::os::fd::AsFd>(dir: Fd, name: &str) -> bool {
    nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

/// What to do with the old root's contents once the new root is `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emptying {
    /// Leave them (`switch_root -p`-like tools asked so).
    Keep,
    /// Delete them before returning, as busybox and klibc do.
    Here,
    /// Hand them back as an [`OldRoot`], to be emptied after the exec by a process the real
    /// init inherits (and reaps), as util-linux's switch_root does (see baton::init::deferred), or
    /// by PID 1 when it does not exec. The checks are the same either way.
    Later,
}

/// Result of a switch.
#[derive(Debug)]
pub struct Switched {
    /// What `Emptying::Here` removed; `None` when the old root was not ramfs/tmpfs and so
    /// was left alone, or was kept, or is to be emptied later.
    pub removal: Option<Removal>,
    /// With `Emptying::Later`: the old root, checked and ready to be emptied.
    pub old_root: Option<OldRoot>,
}

/// The old root after a switch: checked to be ramfs or tmpfs, and open (close-on-exec) so
/// that its contents can still be reached and deleted once it is no longer `/`.
#[derive(Debug)]
pub struct OldRoot(OwnedFd);

impl OldRoot {
    /// Empties the old root here and now, and logs what was removed.
    pub fn empty_now(&self) {
        log_removal(empty_old_root(&self.0).as_ref());
    }
}

/// Makes `new_root` the root of the system. Refuses, before changing anything, unless this
/// is PID 1 and `new_root` is a mount point of a different filesystem from `/`. The old
/// root's contents are deleted as `emptying` says, and only if it is ramfs or tmpfs.
pub fn switch_root(new_root: &Path, emptying: Emptying) -> Result<Switched> {
    check_new_root_is_mounted(new_root)?;
    check_pid1()?;
    let old_root = open(
        "/",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("failed to open the old root /")?;
    let old_fs = nix::sys::statfs::fstatfs(&old_root)
        .context("failed to statfs /")?
        .filesystem_type();
    let deletable = rmrf::is_ram_filesystem_type(old_fs);
    // ramfs is the kernel's rootfs whenever root= is on its command line, and nobody mounts
    // ramfs as / by hand: the rootfs, which pivot_root refuses (below).
    let on_rootfs = old_fs == rmrf::RAMFS_MAGIC;
    if !deletable {
        log::warn!("/ is not ramfs or tmpfs: switching without deleting anything in it");
    }
    let deletable = deletable && emptying != Emptying::Keep;

    enter_new_root(new_root, on_rootfs)?;
    // The point of no return: the new root is `/`. Whatever fails from here on is reported
    // and the real init still runs; there is no initramfs to go back to.
    if let Err(errno) = nix::unistd::chdir("/") {
        log::warn!("failed to chdir to the new /: {errno}");
    }
    if !deletable {
        return Ok(Switched {
            removal: None,
            old_root: None,
        });
    }
    if emptying == Emptying::Later {
        return Ok(Switched {
            removal: None,
            old_root: Some(OldRoot(old_root)),
        });
    }
    Ok(Switched {
        removal: empty_old_root(&old_root),
        old_root: None,
    })
}

/// Moves the API mounts into the new root and makes it `/` (pivot_root, or a move over the
/// kernel's rootfs and a chroot). Fails only before anything has changed.
fn enter_new_root(new_root: &Path, on_rootfs: bool) -> Result<()> {
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
    // Nothing has changed yet, so a failure here leaves the initramfs as it was.
    nix::unistd::chdir(new_root)
        .with_context(|| format!("failed to chdir to {}", new_root.display()))?;
    let root = open(
        new_root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("failed to open the new root {}", new_root.display()))?;
    for api in MOVED_MOUNTS {
        move_mount(api, new_root, &root);
    }
    drop(root);

    // pivot_root keeps the old root reachable until unmounted, then frees it; it fails with
    // EINVAL when / is the kernel's rootfs, which can never be unmounted: there we move the
    // new root over / instead. On a ramfs / the call is not even made: its failure is a
    // kernel path of its own, which costs its translation under an emulated CPU.
    let pivoted = match on_rootfs {
        true => Err(Errno::EINVAL),
        false => nix::unistd::pivot_root(".", "."),
    };
    match pivoted {
        Ok(()) => {
            if let Err(errno) = umount2(".", MntFlags::MNT_DETACH) {
                log::warn!("failed to detach the old root after pivot_root: {errno}");
            }
        }
        Err(Errno::EINVAL) => {
            mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .with_context(|| format!("failed to move {} to /", new_root.display()))?;
            nix::unistd::chroot(".").context("failed to chroot into the new root")?;
        }
        Err(errno) => return Err(errno).context("failed to pivot_root into the new root"),
    }
    Ok(())
}

fn empty_old_root(old_root: &OwnedFd) -> Option<Removal> {
    match rmrf::remove_children(old_root) {
        Ok(removal) => Some(removal),
        Err(e) => {
            log::warn!("failed to empty the old root: {e:#}");
            None
        }
    }
}

/// The log lines for an emptied initramfs.
pub fn log_removal(removal: Option<&Removal>) {
    if let Some(removal) = removal {
        log::info!("freed the initramfs: {} entries removed", removal.removed);
        if let Some(first) = &removal.first_error {
            log::warn!("could not remove everything from the initramfs, first failure: {first}");
        }
    }
}

/// Only PID 1 may switch: another process would leave the real init's parent behind.
pub fn check_pid1() -> Result<()> {
    let pid = nix::unistd::getpid().as_raw();
    if pid != 1 {
        bail!("refusing to switch root: this process is PID {pid}, not 1");
    }
    Ok(())
}

/// Refuses a new root that is not a mount point of another filesystem: switching to a
/// directory of the initramfs itself would delete the new root with the old, and MS_MOVE
/// needs a mount point anyway.
pub fn check_new_root_is_mounted(new_root: &Path) -> Result<()> {
    let new = stat(new_root)
        .with_context(|| format!("failed to stat the new root {}", new_root.display()))?;
    let old = stat("/").context("failed to stat /")?;
    if (new.st_dev, new.st_ino) == (old.st_dev, old.st_ino) {
        bail!(
            "refusing to switch root: {} is the current root",
            new_root.display()
        );
    }
    if new.st_dev == old.st_dev {
        bail!(
            "refusing to switch root: {} is on the same filesystem as / (is the root mounted there?)",
            new_root.display()
        );
    }
    if !is_mount_point(new_root) {
        bail!(
            "refusing to switch root: {} is not a mount point; mount the root on it, not above it",
            new_root.display()
        );
    }
    Ok(())
}

/// Whether `path` names an executable regular file inside `new_root` (symlinks resolved
/// there): what `run-init -n` answers, and what the switch checks before it starts.
pub fn check_init(new_root: &Path, path: &str) -> Result<(), String> {
    let root = open(
        new_root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open {}: {}", new_root.display(), e.desc()))?;
    check_executable(&root, path)
}

/// Moves one API mount into the new root, or detaches it if the new root has nowhere to put
/// it (a mount left behind in the initramfs would pin it in memory).
fn move_mount(api: &str, new_root: &Path, root: &OwnedFd) {
    let source = Path::new(api);
    if !is_mount_point(source) {
        return;
    }
    let name = api.trim_start_matches('/');
    let target = new_root.join(name);
    // util-linux's rule: a target that is a mount point already (the script mounted a
    // fresh /proc there itself) keeps its mount, and ours is detached. A move that fails is
    // a warning too, as there: the switch goes on, and the real init mounts its own.
    let why = if !is_real_dir(root, name) || is_mount_point(&target) {
        format!(
            "{} is not a directory in the new root, or has its own mount",
            target.display()
        )
    } else {
        match mount(
            Some(source),
            &target,
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        ) {
            Ok(()) => return,
            Err(errno) => format!("failed to move {api} to {}: {errno}", target.display()),
        }
    };
    log::warn!("{why}; unmounting {api}");
    if let Err(errno) = umount2(source, MntFlags::MNT_DETACH) {
        log::warn!("failed to unmount {api}: {errno}");
    }
}

/// Points fds 0-2 at the new root's /dev/console, as the kernel does for the init it starts.
pub fn reopen_console() -> Result<()> {
    reopen_console_at(std::ffi::OsStr::new("/dev/console"))
}

/// Points fds 0-2 at `path` (`switch_root -c`, `run-init -c`).
pub fn reopen_console_at(path: &std::ffi::OsStr) -> Result<()> {
    let shown = path.to_string_lossy();
    let console = open(path, OFlag::O_RDWR, Mode::empty())
        .with_context(|| format!("failed to open {shown}"))?;
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        if unsafe { libc::dup2(console.as_raw_fd(), target) } < 0 {
            return Err(Errno::last())
                .with_context(|| format!("failed to point fd {target} at {shown}"));
        }
    }
    Ok(())
}

/// This process's environment as `KEY=VALUE` strings for execve: the kernel's own, for the
/// real init. Bytes, not necessarily UTF-8.
pub fn environment() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(key, value)| {
            let mut pair = key;
            pair.push("=");
            pair.push(value);
            pair
        })
        .collect()
}

/// Execs the real init with the arguments and environment the kernel gave us: the kernel
/// already put its unknown words and everything after `--` in our argv, exactly what it would
/// have handed to the real init. They are bytes, not necessarily UTF-8.
pub fn exec_init(
    init: impl AsRef<std::ffi::OsStr>,
    args: &[OsString],
    env: &[OsString],
) -> Result<Infallible> {
    let init = init.as_ref();
    use std::os::unix::ffi::OsStrExt;
    let to_c = |s: &[u8]| {
        CString::new(s).with_context(|| {
            format!(
                "argument {:?} contains a NUL byte",
                String::from_utf8_lossy(s)
            )
        })
    };
    let path = to_c(init.as_bytes())?;
    let shown = init.to_string_lossy();
    let mut argv = vec![path.clone()];
    for arg in args {
        argv.push(to_c(arg.as_bytes())?);
    }
    let envp = env
        .iter()
        .map(|e| to_c(e.as_bytes()))
        .collect::<Result<Vec<_>>>()?;
    nix::unistd::execve(&path, &argv, &envp).with_context(|| format!("failed to exec {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// A new root with `/sbin/init -> /lib/systemd/systemd` (absolute, as Debian ships it),
    /// a relative link, and links that try to leave the root.
    fn tree() -> (std::path::PathBuf, OwnedFd) {
        let dir = std::env::temp_dir().join(format!(
            "baton-resolve-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("lib/systemd")).unwrap();
        std::fs::create_dir_all(dir.join("sbin")).unwrap();
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let systemd = dir.join("lib/systemd/systemd");
        std::fs::write(&systemd, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&systemd, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink("/lib/systemd/systemd", dir.join("sbin/init")).unwrap();
        symlink("../lib/systemd/systemd", dir.join("bin/init")).unwrap();
        symlink(
            "../../../../../../lib/systemd/systemd",
            dir.join("bin/deep"),
        )
        .unwrap();
        symlink("/sbin/loop", dir.join("sbin/loop")).unwrap();
        let fd = open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        (dir, fd)
    }

    fn same_file(a: &OwnedFd, b: &Path) -> bool {
        let (a, b) = (fstat(a).unwrap(), stat(b).unwrap());
        (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    }

    #[test]
    fn by_hand_resolution_stays_inside_the_root() {
        let (dir, root) = tree();
        let systemd = dir.join("lib/systemd/systemd");
        for path in ["/sbin/init", "/bin/init", "bin/deep", "/../sbin/./init"] {
            let fd = open_in_root_by_hand(&root, path).unwrap();
            assert!(same_file(&fd, &systemd), "{path}");
        }
        assert_eq!(
            open_in_root_by_hand(&root, "/sbin/loop").unwrap_err(),
            Errno::ELOOP
        );
        assert_eq!(
            open_in_root_by_hand(&root, "/sbin/nothing").unwrap_err(),
            Errno::ENOENT
        );
        assert!(same_file(&open_in_root_by_hand(&root, "/").unwrap(), &dir));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn by_hand_resolution_agrees_with_openat2() {
        let (dir, root) = tree();
        for path in [
            "/sbin/init",
            "/bin/init",
            "/bin/deep",
            "/sbin/loop",
            "/nope",
        ] {
            let by_hand = open_in_root_by_hand(&root, path).map(|fd| fstat(&fd).unwrap().st_ino);
            let kernel = open_in_root(&root, path).map(|fd| fstat(&fd).unwrap().st_ino);
            assert_eq!(by_hand, kernel, "{path}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn init_behind_an_absolute_symlink_is_chosen() {
        let (dir, _root) = tree();
        assert_eq!(choose_init(&dir, None).unwrap(), "/sbin/init");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_new_root_needs_dev_and_proc() {
        let (dir, _root) = tree();
        let err = check_new_root(&dir).unwrap_err().to_string();
        assert!(err.contains("has no /dev directory"), "{err}");
        std::fs::create_dir(dir.join("dev")).unwrap();
        let err = check_new_root(&dir).unwrap_err().to_string();
        assert!(err.contains("has no /proc directory"), "{err}");
        symlink("/dev", dir.join("proc")).unwrap();
        let err = check_new_root(&dir).unwrap_err().to_string();
        assert!(
            err.contains("has no /proc directory"),
            "a symlink is not a mount point: {err}"
        );
        std::fs::remove_file(dir.join("proc")).unwrap();
        std::fs::create_dir(dir.join("proc")).unwrap();
        check_new_root(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
