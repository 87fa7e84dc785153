//! The initramfs is emptied after the exec by a process at the idle CPU priority, so that it
//! never slows the real init down. A real init that keeps every CPU busy must still not
//! keep the initramfs's memory pinned: it is given back within a few seconds whatever the
//! load.

mod common;

use common::{assert_has, storage_image, Boot};
use std::fs;

/// The root's init: one spinning shell per CPU, then it waits (sleeping, so it gets the
/// CPU when it wakes) for baton's report that the initramfs was freed, and prints the
/// kernel's log lines that time it.
const INIT: &str = r#"#!/bin/sh
bb=/bin/busybox
$bb mount -t proc proc /proc
for i in $($bb seq $($bb nproc)); do
    ( while :; do :; done ) &
done
for i in $($bb seq 60); do
    $bb dmesg | $bb grep -q 'baton: freed the initramfs' && break
    $bb sleep 0.5
done
$bb dmesg | $bb grep -E 'baton: (running|freed)' | $bb sed 's/^/BATON-DMESG /'
echo BATON-SPIN-DONE
$bb poweroff -f
"#;

/// The kernel log's time of the first line holding `needle`, in seconds.
fn logged_at(log: &str, needle: &str) -> f64 {
    let line = log
        .lines()
        .filter_map(|l| l.split("BATON-DMESG ").nth(1))
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in the kernel log: {log}"));
    line.trim_start_matches('[')
        .split(']')
        .next()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no time on {line:?}"))
}

#[test]
fn a_busy_real_init_gets_the_memory_back() {
    let Some(k) = common::kernel() else { return };
    let disk = common::custom_disk("spin", |tree| {
        fs::write(tree.join("sbin/init"), INIT).unwrap();
    });
    for cpus in [1, 2] {
        let mut boot = Boot::new(&k, storage_image(&k), disk.clone(), "root=/dev/vda");
        boot.qemu = vec!["-smp".into(), cpus.to_string()];
        let log = boot.run(&format!("busy-init-smp{cpus}"));
        assert_has(&log, "BATON-SPIN-DONE");
        let exec = logged_at(&log, "baton: running /sbin/init");
        let freed = logged_at(&log, "baton: freed the initramfs");
        eprintln!(
            "-smp {cpus}: the initramfs was freed {:.2} s after the exec",
            freed - exec
        );
        assert!(
            freed - exec <= 5.0,
            "-smp {cpus}: freed {:.2} s after the exec: {log}",
            freed - exec
        );
    }
}
