//! The Debian package scripts/package builds, read back with dpkg-deb: what it replaces, what
//! it installs, and the man page and completion generated from `baton --help`.

use std::process::Command;

fn dpkg_deb(args: &[&str], deb: &str) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn member(deb: &str, path: &str) -> Vec<u8> {
    let script = format!("dpkg-deb --fsys-tarfile '{deb}' | tar -xO '{path}'");
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn the_package_replaces_the_generator_and_carries_everything() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let init = format!("{repo}/target/x86_64-unknown-linux-musl/release/baton-init");
    if !std::path::Path::new(&init).exists() {
        assert!(
            std::env::var("BATON_REQUIRE_KERNEL").as_deref() != Ok("1"),
            "{init} is missing: scripts/build runs before the tests"
        );
        eprintln!("skipped: run scripts/build first");
        return;
    }
    let out = Command::new(format!("{repo}/scripts/package"))
        .env("BATON_PACKAGE_NO_BUILD", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = format!("{repo}/{}", String::from_utf8_lossy(&out.stdout).trim());
    assert!(deb.ends_with("_amd64.deb"), "{deb}");

    let control = dpkg_deb(&["-f"], &deb);
    for field in [
        "Package: baton",
        "Provides: linux-initramfs-tool",
        "Conflicts: linux-initramfs-tool",
        "Architecture: amd64",
    ] {
        assert!(control.contains(field), "{field} missing:\n{control}");
    }
    let contents = dpkg_deb(&["-c"], &deb);
    for path in [
        "./usr/bin/baton",
        "./usr/lib/baton/baton-init",
        "./etc/kernel/postinst.d/zz-baton",
        "./etc/kernel/postrm.d/zz-baton",
        "./usr/lib/kernel/install.d/55-baton.install",
        "./etc/baton/baton.conf",
        "./usr/share/baton/initramfs-tools/hooks/baton",
        "./usr/share/man/man8/baton.8.gz",
        "./usr/share/bash-completion/completions/baton",
    ] {
        assert!(contents.contains(path), "{path} missing:\n{contents}");
    }
    assert!(contents.starts_with("drwxr-xr-x root/root"), "{contents}");
    // The packaged init is the one scripts/build made, byte for byte.
    assert_eq!(
        member(&deb, "./usr/lib/baton/baton-init"),
        std::fs::read(&init).unwrap()
    );

    // The man page and the completion come from --help: every command is in both.
    let help = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let gz = member(&deb, "./usr/share/man/man8/baton.8.gz");
    let mut gunzip = Command::new("gunzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        gunzip.stdin.take().unwrap().write_all(&gz).unwrap();
    }
    let man = String::from_utf8_lossy(&gunzip.wait_with_output().unwrap().stdout).into_owned();
    let completion = String::from_utf8_lossy(&member(
        &deb,
        "./usr/share/bash-completion/completions/baton",
    ))
    .into_owned();
    for command in ["build", "inspect", "update"] {
        assert!(help.contains(&format!("baton {command}")), "{help}");
        assert!(man.contains(&format!("baton {command}")), "{man}");
        assert!(completion.contains(command), "{completion}");
    }
    assert!(man.starts_with(".TH BATON 8"), "{man}");
}
