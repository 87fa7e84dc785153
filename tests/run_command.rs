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
