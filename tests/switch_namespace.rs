//! The switch and the deletion, for real, in private mount and PID namespaces: nothing here
//! touches the host's mounts. Needs root; without it the test says so and passes, unless
//! BATON_REQUIRE_ROOT_TESTS=1 (set by scripts/test) makes that a failure.
//!
//! Each scenario runs in a fresh process (this binary re-executed with the scenario's name),
//! because a process can enter a new PID namespace only once, and the namespace's first
//! child must be PID 1 for the switch to agree to run.

use baton::init::{rmrf, switch};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chroot, fork, ForkResult};
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const SCENARIOS: [&str; 8] = [
    "switch_frees_initramfs_and_spares_other_filesystems",
    "a_child_frees_initramfs_after_the_switch",
    "deletion_stops_at_mount_points_and_symlinks",
    "refuses_to_delete_when_root_is_on_disk",
    "refuses_when_not_pid_1",
    "refuses_when_new_root_is_not_mounted",
    "keeps_the_initramfs_when_asked",
    "a_target_with_its_own_mount_keeps_it",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--scenario") {
        let name = args.get(pos + 1).cloned().unwrap_or_default();
        let work = PathBuf::from(args.get(pos + 2).cloned().unwrap_or_default());
        return run_scenario(&name, &work);
    }
    if !nix::unistd::geteuid().is_root() {
        if std::env::var("BATON_REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
            eprintln!("switch_namespace: needs root (BATON_REQUIRE_ROOT_TESTS=1)");
            return ExitCode::FAILURE;
        }
        eprintln!("switch_namespace: skipped, needs root");
        return ExitCode::SUCCESS;
    }
    // libtest-style filter: `cargo test --test switch_namespace NAME`.
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let exe = std::env::current_exe().expect("own path");
    let mut failed = 0;
    for name in SCENARIOS {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        // On the disk, not in a tmpfs /tmp: one scenario needs a non-RAM filesystem.
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(&base).expect("target tmpdir");
        let work = base.join(format!("ns-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).expect("work dir");
        let status = Command::new(&exe)
            .args(["--scenario", name])
            .arg(&work)
            .status()
            .expect("run scenario");
        let _ = fs::remove_dir_all(&work);
        if status.success() {
            println!("test {name} ... ok");
        } else {
            println!("test {name} ... FAILED ({status})");
            failed += 1;
        }
    }
    if failed == 0 {
        println!("test result: ok");
        ExitCode::SUCCESS
    } else {
        println!("test result: FAILED. {failed} failed");
        ExitCode::FAILURE
    }
}

fn run_scenario(name: &str, work: &Path) -> ExitCode {
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID).expect("unshare");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
    let result = std::panic::catch_unwind(|| match name {
        "switch_frees_initramfs_and_spares_other_filesystems" => {
            switch_frees_initramfs(work, switch::Emptying::Here)
        }
        "a_child_frees_initramfs_after_the_switch" => {
            switch_frees_initramfs(work, switch::Emptying::Later)
        }
        "deletion_stops_at_mount_points_and_symlinks" => deletion_stops_at_mounts(work),
        "refuses_to_delete_when_root_is_on_disk" => refuses_on_disk(work),
        "refuses_when_not_pid_1" => refuses_when_not_pid_1(work),
        "refuses_when_new_root_is_not_mounted" => refuses_unmounted_new_root(work),
        "keeps_the_initramfs_when_asked" => keeps_the_initramfs(work),
        "a_target_with_its_own_mount_keeps_it" => own_mount_kept(work),
        other => panic!("unknown scenario {other}"),
    });
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn tmpfs(at: &Path) {
    fs::create_dir_all(at).unwrap();
    mount(
        Some("tmpfs"),
        at,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )
    .unwrap();
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn executable(path: &Path) {
    write(path, "#!/bin/sh\n");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs `f` in a child that is PID 1 of the new PID namespace; returns its exit code.
fn as_pid1(f: impl FnOnce() -> i32) -> i32 {
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
            WaitStatus::Exited(_, code) => code,
            other => panic!("child ended with {other:?}"),
        },
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Two other filesystems inside the fake initramfs: a tmpfs at mnt/other holding a sentinel,
/// and a bind mount of the disk directory `outside` at mnt/bind.
fn mount_other_filesystems(fake: &Path, outside: &Path) {
    tmpfs(&fake.join("mnt/other"));
    write(&fake.join("mnt/other/sentinel"), "must survive");
    fs::create_dir_all(fake.join("mnt/bind")).unwrap();
    mount(
        Some(outside),
        &fake.join("mnt/bind"),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
}

/// A sentinel file is still there with its content.
fn assert_survives(path: &Path) {
    assert_eq!(
        fs::read_to_string(path).unwrap(),
        "must survive",
        "{}",
        path.display()
    );
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn open_dir(path: &Path) -> OwnedFd {
    fs::File::open(path).unwrap().into()
}

/// A fake initramfs on tmpfs with every kind of entry, a symlink pointing at files outside
/// it, another filesystem mounted inside it (tmpfs and a bind mount of a disk directory) with
/// sentinels, API mounts to carry over, and a new root on its own tmpfs.
///
/// With `Emptying::Later` the deletion runs in a child of the new PID 1, which reaps it
/// here as the real init would: the result must be the same.
fn switch_frees_initramfs(work: &Path, emptying: switch::Emptying) {
    let outside = work.join("outside");
    write(&outside.join("sentinel"), "must survive");
    write(&outside.join("deeper/sentinel"), "must survive");

    let fake = work.join("fake");
    tmpfs(&fake);
    executable(&fake.join("init"));
    write(&fake.join("etc/baton/manifest"), "baton-manifest 1\n");
    write(&fake.join("lib/modules/x/kernel/a/b/c/d.ko"), "module");
    std::os::unix::fs::symlink(&outside, fake.join("link-to-outside")).unwrap();
    std::os::unix::fs::symlink("/", fake.join("link-to-root")).unwrap();
    std::os::unix::fs::symlink(outside.join("sentinel"), fake.join("etc/link-to-sentinel"))
        .unwrap();
    nix::unistd::mkfifo(
        &fake.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();

    mount_other_filesystems(&fake, &outside);

    // API mounts the switch must carry into the new root.
    tmpfs(&fake.join("run"));
    write(&fake.join("run/carried"), "moved with /run");

    let new_root = fake.join("sysroot");
    tmpfs(&new_root);
    executable(&new_root.join("sbin/init"));
    for dir in ["dev", "proc", "sys", "run"] {
        fs::create_dir_all(new_root.join(dir)).unwrap();
    }

    let old_root = open_dir(&fake);
    let other = open_dir(&fake.join("mnt/other"));

    let code = as_pid1(|| {
        chroot(&fake).unwrap();
        std::env::set_current_dir("/").unwrap();
        assert_eq!(
            switch::choose_init(Path::new("/sysroot"), Some("/not/there")).unwrap(),
            "/sbin/init",
            "a missing init= falls back to /sbin/init"
        );
        let switched = switch::switch_root(Path::new("/sysroot"), emptying).unwrap();
        if emptying == switch::Emptying::Later {
            let old_root = switched.old_root.expect("the old root is handed back");
            assert!(switched.removal.is_none());
            // The process sharing this one's memory, started here instead of by an exec.
            let deferred = baton::init::deferred::spawn(
                std::time::Duration::ZERO,
                Box::new(move || old_root.empty_now()),
            )
            .map_err(|(e, _)| e)
            .expect("a process empties the old root");
            let pid = deferred.pid;
            let status = deferred.run_and_wait().unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
        } else {
            let removal = switched.removal.expect("tmpfs root is emptied");
            assert!(removal.first_error.is_none(), "{removal:?}");
            assert!(removal.removed >= 10, "{removal:?}");
        }
        // We are in the new root now, with /run carried over.
        assert!(Path::new("/sbin/init").exists());
        assert_eq!(
            fs::read_to_string("/run/carried").unwrap(),
            "moved with /run"
        );
        assert!(!Path::new("/init").exists());
        0
    });
    assert_eq!(code, 0, "the switch failed in the child");

    // Everything of the old initramfs is gone. (pivot_root + lazy unmount detached the mounts
    // inside it first, so even their mount points could go; see the next scenario for a
    // deletion that meets mounted filesystems.)
    assert_eq!(names_in(&fd_path(&old_root)), Vec::<String>::new());
    // Nothing on the other filesystems was touched.
    assert_survives(&fd_path(&other).join("sentinel"));
    assert_survives(&outside.join("sentinel"));
    assert_survives(&outside.join("deeper/sentinel"));
}

/// The deletion itself, with filesystems still mounted inside (as on the MS_MOVE path,
/// where the rootfs stays attached): it removes everything of its own filesystem, leaves
/// the mount points and never reaches through them or through symlinks.
fn deletion_stops_at_mounts(work: &Path) {
    let outside = work.join("outside");
    write(&outside.join("sentinel"), "must survive");
    let fake = work.join("fake");
    tmpfs(&fake);
    write(&fake.join("a/b/c/file"), "x");
    std::os::unix::fs::symlink(&outside, fake.join("a/link-to-outside")).unwrap();
    std::os::unix::fs::symlink("/", fake.join("link-to-root")).unwrap();
    mount_other_filesystems(&fake, &outside);
    write(&fake.join("mnt/plain/file"), "x");
    // A file can be a mount point too: unlinking it must fail, not reach the file.
    write(&fake.join("mnt/file-bind"), "");
    mount(
        Some(&outside.join("sentinel")),
        &fake.join("mnt/file-bind"),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();

    let removal = rmrf::remove_children(open_dir(&fake)).unwrap();
    assert!(removal.first_error.is_none(), "{removal:?}");
    assert_eq!(removal.skipped_mounts, 3, "{removal:?}");
    assert_eq!(names_in(&fake), ["mnt"]);
    assert_eq!(names_in(&fake.join("mnt")), ["bind", "file-bind", "other"]);
    assert_survives(&fake.join("mnt/file-bind"));
    assert_survives(&fake.join("mnt/other/sentinel"));
    assert_survives(&outside.join("sentinel"));
}

/// An old root on a disk filesystem is never emptied: neither by the switch nor by asking
/// the deletion directly.
fn refuses_on_disk(work: &Path) {
    let root = work.join("diskroot");
    write(&root.join("precious"), "must survive");
    write(&root.join("dir/precious"), "must survive");
    // A bind mount of itself makes the directory a mount point, as a real / is.
    mount(
        Some(&root),
        &root,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let disk = open_dir(&root);
    assert!(
        !rmrf::is_ram_filesystem(&disk).unwrap(),
        "test needs a disk filesystem"
    );
    let err = rmrf::remove_children(&disk).unwrap_err();
    assert!(err.to_string().contains("refusing to delete"), "{err}");

    let new_root = root.join("sysroot");
    tmpfs(&new_root);
    executable(&new_root.join("sbin/init"));
    let code = as_pid1(|| {
        chroot(&root).unwrap();
        std::env::set_current_dir("/").unwrap();
        let switched = switch::switch_root(Path::new("/sysroot"), switch::Emptying::Here).unwrap();
        assert!(switched.removal.is_none());
        0
    });
    assert_eq!(code, 0);
    assert_survives(&fd_path(&disk).join("precious"));
    assert_survives(&fd_path(&disk).join("dir/precious"));
}

fn refuses_when_not_pid_1(work: &Path) {
    let fake = work.join("fake");
    tmpfs(&fake);
    write(&fake.join("file"), "stays");
    tmpfs(&fake.join("sysroot"));
    // This process is not in the new PID namespace it created: its PID is not 1.
    let err = switch::switch_root(&fake.join("sysroot"), switch::Emptying::Here).unwrap_err();
    assert!(err.to_string().contains("not 1"), "{err}");
    assert!(fake.join("file").exists());
}

fn refuses_unmounted_new_root(work: &Path) {
    let fake = work.join("fake");
    tmpfs(&fake);
    write(&fake.join("file"), "stays");
    executable(&fake.join("sysroot/sbin/init"));
    let code = as_pid1(|| {
        chroot(&fake).unwrap();
        std::env::set_current_dir("/").unwrap();
        let err = switch::switch_root(Path::new("/sysroot"), switch::Emptying::Here).unwrap_err();
        assert!(err.to_string().contains("same filesystem"), "{err}");
        0
    });
    assert_eq!(code, 0);
    assert!(fake.join("file").exists());
}

/// `run-init -p`: the switch happens, the initramfs contents stay.
fn keeps_the_initramfs(work: &Path) {
    let fake = work.join("fake");
    tmpfs(&fake);
    write(&fake.join("init"), "the old init");
    let new_root = fake.join("sysroot");
    tmpfs(&new_root);
    executable(&new_root.join("sbin/init"));
    let old_root = open_dir(&fake);
    let code = as_pid1(|| {
        chroot(&fake).unwrap();
        std::env::set_current_dir("/").unwrap();
        let switched = switch::switch_root(Path::new("/sysroot"), switch::Emptying::Keep).unwrap();
        assert!(switched.removal.is_none());
        assert!(Path::new("/sbin/init").exists(), "in the new root");
        0
    });
    assert_eq!(code, 0);
    assert_eq!(
        fs::read_to_string(fd_path(&old_root).join("init")).unwrap(),
        "the old init"
    );
}

/// util-linux's rule: when the script already mounted something on NEW_ROOT/run, that mount
/// stays and the initramfs's /run is detached instead of stacked on top.
fn own_mount_kept(work: &Path) {
    let fake = work.join("fake");
    tmpfs(&fake);
    tmpfs(&fake.join("run"));
    write(&fake.join("run/initramfs-run"), "from the initramfs");
    let new_root = fake.join("sysroot");
    tmpfs(&new_root);
    executable(&new_root.join("sbin/init"));
    tmpfs(&new_root.join("run"));
    write(&new_root.join("run/own-run"), "mounted by the script");
    let code = as_pid1(|| {
        chroot(&fake).unwrap();
        std::env::set_current_dir("/").unwrap();
        switch::switch_root(Path::new("/sysroot"), switch::Emptying::Here).unwrap();
        assert_eq!(
            fs::read_to_string("/run/own-run").unwrap(),
            "mounted by the script"
        );
        assert!(!Path::new("/run/initramfs-run").exists());
        0
    });
    assert_eq!(code, 0);
}
