//! `baton run`: a command in a VM whose root is a host directory, its output on stdout and
//! its exit status as baton's. On Debian's 6.1 and 6.12, over 9p and virtiofs, with a busybox
//! tree and with this machine's own `/` (read-only, under the overlay).

mod common;

use common::{kernel, kernel_new, work_dir, Kernel};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tree() -> PathBuf {
    common::busybox_tree("run")
}

/// `baton run` with the kernel's own modules, in a cache of the test's own.
fn baton_run(k: &Kernel, share: &str, root: &Path, extra: &[&str], command: &[&str]) -> Output {
    let kernel = if k.dir.join("vmlinux").exists() {
        k.dir.join("vmlinux")
    } else {
        k.dir.join("vmlinuz")
    };
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("run")
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
        .env("XDG_CACHE_HOME", work_dir().join("cache"))
        .output()
        .unwrap()
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The command's status is baton's; its output arrives as it wrote it.
fn status_and_output(k: &Kernel, share: &str) {
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("first line\nsecond \"line\"\n"),
        "{}",
        show(&out)
    );
    assert!(stdout.contains("exited with status 7"), "{}", show(&out));
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
        String::from_utf8_lossy(&out.stdout).contains("killed by signal 9 (SIGKILL)"),
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
        String::from_utf8_lossy(&out.stdout).contains("was still running after 2 s"),
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

/// What a guest could change of the shared tree: every entry's path, type, mode, size,
/// contents and link target.
fn snapshot(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
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
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let sum = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                format!("{} bytes {sum:016x}", bytes.len())
            };
            out.push(format!(
                "{} {:o} {what}",
                path.strip_prefix(root).unwrap().display(),
                meta.permissions().mode()
            ));
        }
    }
    out.sort();
    out
}

/// A guest that remounts every mount read-write and then writes, changes, renames and
/// deletes wherever it can, the host's tree included (under /run/baton/lower).
const ATTACK: &str = r#"bb=busybox
for m in $($bb awk '{ print $2 }' /proc/mounts); do $bb mount -o remount,rw "$m" 2>/dev/null; done
low=/run/baton/lower
for d in / /etc /bin $low $low/etc $low/bin $low/sbin; do
    echo pwned >"$d/PWNED" 2>/dev/null && echo "wrote $d/PWNED"
done
echo pwned >>$low/sbin/init 2>/dev/null && echo "appended to the init"
$bb chmod 4777 $low/sbin/init 2>/dev/null && echo "chmod worked"
$bb touch -d 2001-01-01 $low/etc 2>/dev/null
$bb mkdir $low/newdir 2>/dev/null && echo "mkdir worked"
$bb ln -s /etc/shadow $low/newlink 2>/dev/null && echo "symlink worked"
$bb mv $low/etc $low/etc.moved 2>/dev/null && echo "rename worked"
$bb rm -rf $low/sbin 2>/dev/null
$bb ls $low/sbin >/dev/null 2>&1 || echo "delete worked"
exit 0
"#;

/// The attack leaves the host's tree byte for byte as it was.
fn read_only_holds(k: &Kernel, share: &str) {
    let root = common::busybox_tree(&format!("attack-{share}-{}", k.tag));
    let before = snapshot(&root);
    let out = baton_run(k, share, &root, &[], &["sh", "-c", ATTACK]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let after = snapshot(&root);
    let changed: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
    let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
    assert!(
        changed.is_empty() && gone.is_empty(),
        "the guest changed the host's tree over {share}: new {changed:?}, gone {gone:?}\n{}",
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

/// A shared directory whose path holds a comma (and what would be an option after it) is
/// shared as it is: qemu reads `,,` as one comma.
#[test]
fn a_comma_in_the_shared_path_adds_no_option() {
    let Some(k) = kernel() else { return };
    let root = common::busybox_tree("comma,readonly=off");
    let out = baton_run(
        &k,
        "9p",
        &root,
        &[],
        &["sh", "-c", "test -x /bin/busybox && echo shared"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("shared\n"),
        "{}",
        show(&out)
    );
}
