//! What the tests that need a real kernel share: where it is, and whether its absence is a
//! skip (plain `cargo test`) or a failure (scripts/test sets BATON_REQUIRE_KERNEL=1).

#![allow(dead_code)]

use std::path::PathBuf;

/// The kernel directory qemu/fetch-kernel printed, from BATON_KERNEL.
pub fn kernel_dir() -> Option<PathBuf> {
    match std::env::var_os("BATON_KERNEL") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("lib/modules").is_dir(),
                "BATON_KERNEL={} has no lib/modules",
                dir.display()
            );
            Some(dir)
        }
        None => {
            assert!(
                std::env::var("BATON_REQUIRE_KERNEL").as_deref() != Ok("1"),
                "BATON_KERNEL is not set (scripts/test sets it from qemu/fetch-kernel)"
            );
            eprintln!("skipped: set BATON_KERNEL to a directory from qemu/fetch-kernel");
            None
        }
    }
}

/// `lib/modules/KVER` inside the kernel directory.
pub fn modules_dir(kernel: &std::path::Path) -> PathBuf {
    let base = kernel.join("lib/modules");
    let mut releases: Vec<PathBuf> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    releases.sort();
    releases.pop().expect("a kernel release directory")
}
