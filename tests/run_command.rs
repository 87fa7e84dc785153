//! `baton run`: a command in a VM whose root is a host directory, its output on stdout and
//! its exit status as baton's (the options virtme-ng users type: tests/run_options.rs). On Debian's 6.1 and 6.12, over 9p and virtiofs, with a busybox
//! tree and with this machine's own `/` (read-only, under the overlay).

mod common;

use common::{kernel, kernel_new, work_dir, Kernel};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tree() -> PathBuf {
    common::busybox_tree("run")
}

/// `baton run` with the kernel's own modules, in a cache of the test's own, with the
/// virtiofsd that enforces read-only first on PATH when there is one.
fn baton_command(
    k: &Kernel,
    share: &str,
    root: &Path,
    extra: &[&str],
    command: &[&str],
) -> Command {
    let kernel = if k.dir.join("vmlinux").exists() {
        k.dir.join("vmlinux")
    } else {
        k.dir.join("vmlinuz")
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.arg("run")
        .arg("--kernel")
        .arg(kernel)
        .arg("--modules-dir")
        .arg(&k.modules)
        .arg("--root")
        .arg(root)
        .args(["--share", share])
        // A bound for a VM that never ends, unless the test sets its own.
        .args(if extra.contains(&"--timeout") {
            &[][..]
        } else {
            &["--timeout", "300"][..]
        })
        .args(extra)
        .arg("--")
        .args(command)
        .env("XDG_CACHE_HOME", work_dir().join("cache"));
    if share == "virtiofs" {
        if let Some(dir) = common::read_only_virtiofsd() {
            cmd.env("PATH", common::path_with(&dir));
        }
    }
    cmd
}

fn baton_run(k: &Kernel, share: &str, root: &Path, extra: &[&str], command: &[&str]) -> Output {
    common::vm_output(&mut baton_command(k, share, root, extra, command))
}

/// Whether this machine can share read-only over `share`: virtiofs needs a virtiofsd that
/// enforces it (a skip without one, a failure under BATON_REQUIRE_TOOLS=1).
fn can_share_read_only(share: &str) -> bool {
    share != "virtiofs" || common::read_only_virtiofsd().is_some()
}

fn show(out: &Output) -> String {
    common::show_output(out)
}

/// The command's status is baton's; its output arrives as it wrote it.
fn status_and_output(k: &Kernel, share: &str) {
    if !can_share_read_only(share) {
        return;
    }
    let out = baton_run(
        k,
        share,
        &tree(),
        &[],
        &[
            "sh",
            "-c",
            "echo \"first line\"; echo 'second \"line\"'; exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
    // Byte for byte: nothing of the console's, no terminal's \r.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "first line\nsecond \"line\"\n",
        "{}",
        show(&out)
    );
    assert!(out.stderr.is_empty(), "{}", show(&out));
}

#[test]
fn status_and_output_over_9p_on_6_1() {
    let Some(k) = kernel() else { return };
    status_and_output(&k, "9p");
}

#[test]
fn status_and_output_over_virtiofs_on_6_1() {
    let Some(k) = kernel() else { return };
    status_and_output(&k, "virtiofs");
}

#[test]
fn status_and_output_over_9p_on_6_12() {
    let Some(k) = kernel_new() else { return };
    status_and_output(&k, "9p");
}

#[test]
fn status_and_output_over_virtiofs_on_6_12() {
    let Some(k) = kernel_new() else { return };
    status_and_output(&k, "virtiofs");
}

#[test]
fn success_is_zero_with_the_output() {
    let Some(k) = kernel() else { return };
    let out = baton_run(&k, "9p", &tree(), &[], &["sh", "-c", "echo 'all good'"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("all good\n"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_signal_is_128_plus_its_number() {
    let Some(k) = kernel() else { return };
    let out = baton_run(&k, "9p", &tree(), &[], &["sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("killed by signal 9 (SIGKILL)"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_command_past_its_timeout_is_killed() {
    let Some(k) = kernel() else { return };
    let out = baton_run(
        &k,
        "9p",
        &tree(),
        &["--timeout", "2"],
        &["busybox", "sleep", "600"],
    );
    assert_eq!(out.status.code(), Some(124), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was still running after 2 s"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_missing_command_is_127() {
    let Some(k) = kernel() else { return };
    let out = baton_run(&k, "9p", &tree(), &[], &["no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", show(&out));
}

/// This machine's own `/`, read-only: the command writes through the overlay and the host
/// never sees it.
fn host_root_under_the_overlay(k: &Kernel, share: &str) {
    if !can_share_read_only(share) {
        return;
    }
    let probe = format!("/tmp/baton-run-probe-{share}-{}", k.tag);
    let _ = std::fs::remove_file(&probe);
    let out = baton_run(
        k,
        share,
        Path::new("/"),
        &[],
        &[
            "sh",
            "-c",
            &format!("echo written >{probe} && cat {probe} && test -d /usr/bin"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("written\n"),
        "{}",
        show(&out)
    );
    assert!(
        !Path::new(&probe).exists(),
        "the VM wrote {probe} on the host"
    );
}

#[test]
fn the_host_root_under_the_overlay_over_9p() {
    let Some(k) = kernel() else { return };
    host_root_under_the_overlay(&k, "9p");
}

#[test]
fn the_host_root_under_the_overlay_over_virtiofs() {
    let Some(k) = kernel() else { return };
    host_root_under_the_overlay(&k, "virtiofs");
}

#[test]
fn the_host_root_under_the_overlay_over_9p_on_6_12() {
    let Some(k) = kernel_new() else { return };
    host_root_under_the_overlay(&k, "9p");
}

#[test]
fn the_host_root_under_the_overlay_over_virtiofs_on_6_12() {
    let Some(k) = kernel_new() else { return };
    host_root_under_the_overlay(&k, "virtiofs");
}

#[test]
fn a_missing_kernel_is_one_line_and_125() {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args([
            "run",
            "--kernel",
            "/no/such/vmlinuz",
            "--root",
            "/",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot read the kernel /no/such/vmlinuz"),
        "{stderr}"
    );
}

#[test]
fn errors_are_one_line_and_125() {
    let Some(k) = kernel() else { return };
    let out = baton_run(&k, "9p", Path::new("/no/such/dir"), &[], &["true"]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot share /no/such/dir"), "{stderr}");
}

/// What a guest could change of the shared tree: every entry's path, type, mode, owner,
/// links, modification time, size, contents and link target.
fn snapshot(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                pending.push(path.clone());
                "dir".to_owned()
            } else if meta.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                let sum = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                format!("{} bytes {sum:016x}", bytes.len())
            } else {
                format!("special {:x}", meta.rdev())
            };
            out.push(format!(
                "{} {:o} {}:{} n{} t{}.{} {what}",
                path.strip_prefix(root).unwrap().display(),
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.nlink(),
                meta.mtime(),
                meta.mtime_nsec()
            ));
        }
    }
    out.sort();
    out
}

/// A guest that makes every mount read-write, mounts the shared tag afresh read-write beside
/// them, and then, in both views of the host's tree, appends to, truncates, chmods, chowns
/// and retimes every file and directory, writes a new file into every directory, adds a
/// directory, a symlink, a device node and a hard link, and renames and deletes. It says what
/// worked. Each program started costs about 0.3 s under TCG, so the applets take every path
/// at once and the per-entry writes are the shell's own.
const ATTACK: &str = r#"bb=busybox
for m in $($bb awk '{ print $2 }' /proc/mounts); do
    $bb mount -o remount,rw "$m" 2>/dev/null && echo "remounted $m rw"
done
$bb mkdir -p /tmp/again /tmp/kit/newdir
$bb ln -s /etc/shadow /tmp/kit/newlink
$bb mknod /tmp/kit/null c 1 3
$bb mount -t virtiofs -o rw baton-root /tmp/again 2>/dev/null ||
    $bb mount -t 9p -o rw,trans=virtio,version=9p2000.L baton-root /tmp/again 2>/dev/null &&
    echo "mounted the tag again"
for top in /run/baton/lower /tmp/again; do
    $bb grep -q " $top " /proc/mounts || continue
    files=$($bb find $top -xdev ! -type d)
    dirs=$($bb find $top -xdev -type d)
    set -- $files; nfiles=$#
    set -- $dirs; echo "attacking $top: $nfiles files, $# dirs"
    for f in $files; do
        { echo pwned >>"$f"; } 2>/dev/null && echo "appended to $f"
    done
    for d in $dirs; do
        { echo pwned >"$d/PWNED"; } 2>/dev/null && echo "wrote $d/PWNED"
    done
    $bb truncate -s 1 $files 2>/dev/null && echo "truncated in $top"
    $bb chmod 4777 $files $dirs 2>/dev/null && echo "chmod in $top"
    $bb chown 1:1 $files $dirs 2>/dev/null && echo "chown in $top"
    $bb touch -h -d 2001-01-01 $files $dirs 2>/dev/null && echo "touched in $top"
    $bb cp -a /tmp/kit/. $top/etc/ 2>/dev/null && echo "new entries in $top/etc"
    $bb ln $top/bin/busybox $top/hardlink 2>/dev/null && echo "hard link in $top"
    $bb mv $top/etc $top/etc.moved 2>/dev/null && echo "renamed $top/etc"
    $bb rm -rf $top/sbin $top/etc/issue 2>/dev/null
    $bb test -e $top/sbin || echo "deleted $top/sbin"
done
exit 0
"#;

/// The attack leaves the host's tree as it was, byte for byte, on a tree made afresh (an
/// attack that worked once must not leave its changes for the next run to compare against).
fn read_only_holds(k: &Kernel, share: &str) {
    if !can_share_read_only(share) {
        return;
    }
    let name = format!("attack-{share}-{}", k.tag);
    let _ = std::fs::remove_dir_all(work_dir().join(format!("{name}.tree")));
    let root = common::busybox_tree(&name);
    let before = snapshot(&root);
    let out = baton_run(k, share, &root, &[], &["sh", "-c", ATTACK]);
    // The tree first: where the share is writable, the guest's shell can die of its own
    // truncated busybox (SIGBUS), and the tree says more than that status.
    let after = snapshot(&root);
    let changed: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
    let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
    assert!(
        changed.is_empty() && gone.is_empty(),
        "the guest changed the host's tree over {share}: new {changed:?}, gone {gone:?}\n{}",
        show(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // The attack did run: the host's tree was remounted read-write and walked.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("remounted /run/baton/lower rw")
            && stdout.contains("attacking /run/baton/lower: 5 files, 10 dirs"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_read_only_root_stays_read_only_on_the_host_over_9p() {
    let Some(k) = kernel() else { return };
    read_only_holds(&k, "9p");
}

#[test]
fn a_read_only_root_stays_read_only_on_the_host_over_virtiofs() {
    let Some(k) = kernel() else { return };
    read_only_holds(&k, "virtiofs");
}

#[test]
fn a_read_only_root_stays_read_only_on_the_host_over_9p_on_6_12() {
    let Some(k) = kernel_new() else { return };
    read_only_holds(&k, "9p");
}

#[test]
fn a_read_only_root_stays_read_only_on_the_host_over_virtiofs_on_6_12() {
    let Some(k) = kernel_new() else { return };
    read_only_holds(&k, "virtiofs");
}

/// The system's own virtiofsds only (qemu's C one on bookworm), or `None` when one of them
/// enforces read-only (then there is nothing to refuse here).
fn system_path_without_read_only_virtiofsd() -> Option<&'static str> {
    const SYSTEM: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let enforces = |p: &Path| {
        Command::new(p)
            .arg("--help")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--readonly"))
    };
    let mut places = SYSTEM
        .split(':')
        .map(|d| Path::new(d).join("virtiofsd"))
        .chain(["/usr/libexec/virtiofsd".into()]);
    let has_c = Path::new("/usr/lib/qemu/virtiofsd").is_file();
    if !has_c || places.any(|p| p.is_file() && enforces(&p)) {
        eprintln!("skipped: needs qemu's C virtiofsd and no read-only one in the system's places");
        return None;
    }
    Some(SYSTEM)
}

/// Over qemu's C virtiofsd, which cannot refuse writes, a read-only share over virtiofs is
/// refused with the reason (no VM starts), where it used to be exported writable.
#[test]
fn virtiofs_read_only_is_refused_over_a_virtiofsd_that_cannot_enforce_it() {
    let Some(k) = kernel() else { return };
    let Some(path) = system_path_without_read_only_virtiofsd() else {
        return;
    };
    let out = baton_command(&k, "virtiofs", &tree(), &[], &["true"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot refuse the guest's writes") && stderr.contains("--share 9p"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "a VM ran: {}", show(&out));
}

/// A directory whose name holds a comma and what would be an option after it is shared as it
/// is, and so are the run's own files in a TMPDIR with a comma (qemu's status file, the
/// socket): qemu reads `,,` as one comma, the C virtiofsd `\,`.
fn a_comma_adds_no_option(k: &Kernel, share: &str, extra: &[&str], path: Option<&str>) {
    let name = format!("comma,readonly=off,{share}{}", extra.join(""));
    let root = common::busybox_tree(&name);
    let tmp = work_dir().join("tmp,id=x");
    std::fs::create_dir_all(&tmp).unwrap();
    let _ = std::fs::remove_file(root.join("written"));
    let rw = extra.contains(&"--rw");
    let script = if rw {
        "test -x /bin/busybox && echo shared && echo yes >/written"
    } else {
        "test -x /bin/busybox && echo shared"
    };
    let mut cmd = baton_command(k, share, &root, extra, &["sh", "-c", script]);
    cmd.env("TMPDIR", &tmp);
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    let out = common::vm_output(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("shared\n"),
        "{}",
        show(&out)
    );
    // --rw writes the very directory named, not another one.
    assert_eq!(root.join("written").exists(), rw);
}

#[test]
fn a_comma_in_the_shared_path_adds_no_option() {
    let Some(k) = kernel() else { return };
    a_comma_adds_no_option(&k, "9p", &[], None);
}

#[test]
fn a_comma_in_the_shared_path_adds_no_option_over_virtiofs() {
    let Some(k) = kernel() else { return };
    if can_share_read_only("virtiofs") {
        a_comma_adds_no_option(&k, "virtiofs", &[], None);
    }
}

/// --rw over qemu's C virtiofsd (its `-o source=` escaping), which serves writable shares.
#[test]
fn a_comma_in_the_shared_path_over_the_c_virtiofsd_with_rw() {
    let Some(k) = kernel() else { return };
    let Some(path) = system_path_without_read_only_virtiofsd() else {
        return;
    };
    a_comma_adds_no_option(&k, "virtiofs", &["--rw"], Some(path));
}

/// A kernel whose version string would climb out of the cache and /lib/modules is refused
/// before its release reaches a path.
#[test]
fn a_kernel_release_that_is_no_file_name_is_refused() {
    let dir = work_dir().join("bad-release");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for release in ["../../../../tmp/x", "6.1/evil", ".."] {
        let kernel = dir.join("vmlinux");
        std::fs::write(
            &kernel,
            format!("\x7fELF....Linux version {release} (someone@somewhere)"),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["run", "--kernel"])
            .arg(&kernel)
            .arg("--modules-dir")
            .arg(&dir)
            .args(["--root", "/", "--share", "9p", "--", "true"])
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125), "{}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("is not a plain file name"),
            "{release}: {stderr}"
        );
        assert!(!dir.join("cache").exists(), "{release}: {stderr}");
    }
}
