//! The Debian package scripts/package builds, read back with dpkg-deb: what it replaces, what
//! it installs, and the man pages and completions made from the command line's definitions.

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
    let init = format!("{repo}/target/x86_64-unknown-linux-musl/init/baton-init");
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
        "./usr/share/man/man8/baton-build.8.gz",
        "./usr/share/man/man8/baton-inspect.8.gz",
        "./usr/share/man/man8/baton-update.8.gz",
        "./usr/share/man/man8/baton-check.8.gz",
        "./usr/share/man/man8/baton-timeline.8.gz",
        "./usr/share/man/man8/baton-run.8.gz",
        "./usr/share/bash-completion/completions/baton",
        "./usr/share/zsh/vendor-completions/_baton",
        "./usr/share/fish/vendor_completions.d/baton.fish",
    ] {
        assert!(contents.contains(path), "{path} missing:\n{contents}");
    }
    assert!(contents.starts_with("drwxr-xr-x root/root"), "{contents}");
    // The packaged init is the one scripts/build made, byte for byte.
    assert_eq!(
        member(&deb, "./usr/lib/baton/baton-init"),
        std::fs::read(&init).unwrap()
    );

    // Every command is in the help, has its page, and is in each shell's completion.
    let help = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let gunzip = |gz: Vec<u8>| {
        let mut child = Command::new("gunzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&gz).unwrap();
        }
        String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned()
    };
    let man = gunzip(member(&deb, "./usr/share/man/man8/baton.8.gz"));
    assert!(man.contains(".TH BATON 8"), "{man}");
    assert!(man.contains("/usr/lib/baton/baton-init"), "{man}");
    let completions: Vec<String> = [
        "./usr/share/bash-completion/completions/baton",
        "./usr/share/zsh/vendor-completions/_baton",
        "./usr/share/fish/vendor_completions.d/baton.fish",
    ]
    .iter()
    .map(|path| String::from_utf8_lossy(&member(&deb, path)).into_owned())
    .collect();
    for command in ["build", "inspect", "update", "check", "timeline", "run"] {
        assert!(help.contains(&format!("baton {command}")), "{help}");
        let page = gunzip(member(
            &deb,
            &format!("./usr/share/man/man8/baton-{command}.8.gz"),
        ));
        let title = format!(".TH BATON-{} 8", command.to_uppercase());
        assert!(page.contains(&title), "{page}");
        assert!(man.contains(command), "{man}");
        for completion in &completions {
            assert!(completion.contains(command), "{completion}");
        }
    }
}
