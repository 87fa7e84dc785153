//! The programs inside the image: /init (baton's own, another static init, or a `#!`
//! script), baton's binary under the names other tools' scripts call it by, the kernel's
//! module helper, and the rescue shell.

use crate::host::elf::Elf;
use crate::host::image::entry::{Entry, Image};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// Where the rescue shell goes in the image.
pub(super) const SHELL_PATH: &str = "bin/sh";

/// Where baton's binary goes when `/init` is something else (`--init SCRIPT`), so the
/// script can still `exec switch_root`.
pub const BATON_BINARY: &str = "usr/lib/baton/baton-init";

/// The names baton's binary answers to, where the peers' scripts look for them: busybox
/// images call `switch_root` through PATH (its applet links live in /sbin), mkinitcpio calls
/// /usr/bin/switch_root, initramfs-tools /usr/bin/run-init (merged /usr) or /bin/run-init.
pub const APPLET_LINKS: [&str; 4] = [
    "usr/bin/switch_root",
    "usr/bin/run-init",
    "sbin/switch_root",
    "bin/run-init",
];

/// Where the kernel runs its module helper when a driver asks for a module at run time (the
/// default `kernel.modprobe`, CONFIG_MODPROBE_PATH): FAT for its codepage, crypto for an
/// algorithm, a filesystem by `fs-` name. An initramfs has no modprobe, so baton's binary
/// answers there from the image's manifest (see baton::init::modprobe) for as long as the
/// initramfs is the root; after the switch the same path is the real root's modprobe. No
/// kernel setting changes hands, and none has to be put back.
pub const MODULE_HELPER_LINK: &str = "sbin/modprobe";

/// Puts the init at /init (`--init`: a static program or a `#!` script; by default baton's
/// own) and baton's binary under its applet names. Returns the path /init came from.
pub(super) fn add_init(image: &mut Image, explicit: Option<&Path>) -> Result<PathBuf> {
    let (init, init_bytes) = match explicit {
        Some(path) => (path.to_owned(), read_init(path)?),
        None => {
            let path = find_init(None)?;
            let bytes = read_static_program(&path, "init")?;
            (path, bytes)
        }
    };
    // baton's own binary, for the applet names: the one /init is, unless --init named
    // something else (a script, another init), then the one beside this program.
    let baton = match (explicit, find_init(None)) {
        (None, _) => None,
        (Some(_), Ok(path)) => Some(read_static_program(&path, "baton's init")?),
        (Some(_), Err(_)) if !init_bytes.starts_with(b"#!") => None,
        (Some(_), Err(e)) => {
            return Err(e.context("an --init script needs baton's own binary beside it"))
        }
    };
    // Whether the binary the links name is baton's: only baton's may answer the kernel's
    // module requests (someone else's static init must never be run as a helper).
    let is_baton = explicit.is_none() || baton.is_some();
    let target = match baton {
        Some(bytes) if bytes != init_bytes => {
            image.insert(BATON_BINARY, Entry::file(0o755, bytes))?;
            format!("/{BATON_BINARY}")
        }
        _ => "/init".to_owned(),
    };
    image.insert("init", Entry::file(0o755, init_bytes))?;
    for link in APPLET_LINKS {
        image.insert(link, Entry::symlink(&target))?;
    }
    if is_baton {
        image.insert(MODULE_HELPER_LINK, Entry::symlink(&target))?;
    }
    Ok(init)
}

/// `--init`: a static program, or a script the kernel can run (`#!`, its interpreter in the
/// image: the `--shell` busybox, say).
fn read_init(path: &Path) -> Result<Vec<u8>> {
    let bytes =
        fs::read(path).with_context(|| format!("failed to read init {}", path.display()))?;
    if bytes.starts_with(b"#!") {
        return Ok(bytes);
    }
    read_static_program(path, "init").map_err(|e| {
        e.context(format!(
            "init {} is neither a static program nor a #! script",
            path.display()
        ))
    })
}

/// Finds the static init: `--init`, `$BATON_INIT`, or next to this program in the layouts
/// `scripts/build` (cargo's target directory) and an installation produce.
pub fn find_init(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os("BATON_INIT") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("failed to find this program's own path")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [
        dir.join("baton-init"),
        dir.join("../x86_64-unknown-linux-musl/init/baton-init"),
        dir.join("../../x86_64-unknown-linux-musl/init/baton-init"),
        dir.join("../lib/baton/baton-init"),
    ];
    // `cargo build` also leaves a dynamically linked baton-init beside this program; only a
    // static one can be an initramfs /init.
    let is_static = |path: &Path| {
        fs::read(path).ok().and_then(|bytes| {
            Elf::parse(&bytes)
                .ok()
                .and_then(|elf| elf.needs_interpreter().ok())
        }) == Some(false)
    };
    for candidate in &candidates {
        if candidate.is_file() && is_static(candidate) {
            return Ok(candidate.clone());
        }
    }
    bail!(
        "cannot find the static init (baton-init): looked in {}; run scripts/build, or pass --init PATH",
        candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )
}

/// Reads a program that must run inside the initramfs, where there is no dynamic loader.
fn read_static_program(path: &Path, what: &str) -> Result<Vec<u8>> {
    let bytes =
        fs::read(path).with_context(|| format!("failed to read {what} {}", path.display()))?;
    let elf = Elf::parse(&bytes)
        .with_context(|| format!("{what} {} is not a program", path.display()))?;
    if elf
        .needs_interpreter()
        .with_context(|| format!("failed to read {what} {}", path.display()))?
    {
        bail!(
            "{what} {} is dynamically linked; an initramfs has no shared libraries, use a static build",
            path.display()
        );
    }
    Ok(bytes)
}

pub(super) fn add_shell(image: &mut Image, shell: &Path) -> Result<()> {
    let bytes = read_static_program(shell, "shell")?;
    // busybox decides what to be by argv[0]: as /bin/sh it is the shell, and the other
    // applets stay reachable as `busybox ls` or after `busybox --install -s`.
    let is_busybox = bytes.windows(9).any(|w| w == b"BusyBox v");
    if is_busybox {
        image.insert("bin/busybox", Entry::file(0o755, bytes))?;
        image.insert(SHELL_PATH, Entry::symlink("busybox"))?;
    } else {
        image.insert(SHELL_PATH, Entry::file(0o755, bytes))?;
    }
    Ok(())
}
