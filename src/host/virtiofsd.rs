//! The virtiofsd that serves `baton run`'s shared root, and what it can promise.
//!
//! Two programs answer to the name. qemu's own C virtiofsd (Debian bookworm's
//! qemu-system-common, /usr/lib/qemu/virtiofsd) takes `-o` options and has no read-only
//! mode: it runs as root and writes whatever the guest asks, so a guest that remounts its
//! root read-write writes the host's directory. The Rust virtiofsd (the `virtiofsd` crate,
//! packaged as /usr/libexec/virtiofsd by Fedora and by Debian from trixie) takes long
//! options and has `--readonly`, which refuses every write on the host's side. A read-only
//! share is served only by the second kind; without one, `baton run` shares over 9p, where
//! qemu itself enforces `readonly=on`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the packages put it; a `virtiofsd` on PATH is tried first.
const KNOWN_PLACES: &[&str] = &["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"];

/// A virtiofsd found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Virtiofsd {
    pub program: PathBuf,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The Rust virtiofsd: long options, `--readonly`.
    Rust,
    /// qemu's C virtiofsd: `-o` options, no read-only mode.
    Qemu,
}

impl Kind {
    /// What its `--help` says it is.
    pub fn from_help(help: &str) -> Option<Kind> {
        if help.contains("--shared-dir") {
            help.contains("--readonly").then_some(Kind::Rust)
        } else if help.contains("source=") {
            Some(Kind::Qemu)
        } else {
            None
        }
    }

    /// Whether it can refuse the guest's writes itself.
    pub fn read_only_capable(self) -> bool {
        self == Kind::Rust
    }
}

/// The virtiofsds on this machine, in the order tried: PATH first, then the packages'
/// places. Each is asked what it is.
pub fn installed() -> Vec<Virtiofsd> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("virtiofsd"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut found: Vec<Virtiofsd> = Vec::new();
    for program in on_path
        .into_iter()
        .chain(KNOWN_PLACES.iter().map(PathBuf::from))
    {
        if !program.is_file() || found.iter().any(|f| f.program == program) {
            continue;
        }
        let Ok(out) = Command::new(&program).arg("--help").output() else {
            continue;
        };
        let help = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(kind) = Kind::from_help(&help) {
            found.push(Virtiofsd { program, kind });
        }
    }
    found
}

/// The one to use: for a read-only share only one that enforces it.
pub fn choose(installed: &[Virtiofsd], read_only: bool) -> Option<&Virtiofsd> {
    installed
        .iter()
        .find(|v| !read_only || v.kind.read_only_capable())
}

/// Its arguments to serve `root` on `socket`.
pub fn args(v: &Virtiofsd, socket: &Path, root: &Path, read_only: bool) -> Vec<String> {
    match v.kind {
        Kind::Rust => {
            let mut args = vec![
                format!("--socket-path={}", socket.display()),
                format!("--shared-dir={}", root.display()),
                "--cache=auto".into(),
                // Its default announces the host's submounts (/dev, /proc under `/`): they
                // would be automount points in the guest, which an overlay refuses as
                // lower directories ("the new root has no /dev").
                "--no-announce-submounts".into(),
                // A chroot works for any directory, `/` included; its default namespace
                // sandbox fails with EBUSY for `/` on some hosts.
                "--sandbox=chroot".into(),
            ];
            if read_only {
                args.push("--readonly".into());
            }
            args
        }
        Kind::Qemu => vec![
            format!("--socket-path={}", socket.display()),
            "-o".into(),
            format!("source={}", fuse_escape(&root.display().to_string())),
            "-o".into(),
            "cache=auto".into(),
            // Not announce_submounts: the host's submounts (/dev, /proc) would then be
            // automount points in the guest, which an overlay cannot use as directories.
            "-o".into(),
            "sandbox=chroot".into(),
        ],
    }
}

/// A value inside a FUSE option string (`-o a=b,c`): commas and backslashes escaped with a
/// backslash, as libfuse's option parser reads them.
pub fn fuse_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == ',' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_from_its_help() {
        assert_eq!(
            Kind::from_help("Usage: virtiofsd [OPTIONS] --shared-dir <SHARED_DIR>\n      --readonly  Mark the filesystem read-only"),
            Some(Kind::Rust)
        );
        assert_eq!(
            Kind::from_help(
                "usage: virtiofsd [options]\n    -o source=PATH   shared directory tree"
            ),
            Some(Kind::Qemu)
        );
        // A Rust one too old for --readonly is no use for a read-only share, nor trusted
        // to take the C one's options.
        assert_eq!(Kind::from_help("--shared-dir <DIR>"), None);
        assert_eq!(Kind::from_help("something else"), None);
    }

    #[test]
    fn a_read_only_share_needs_a_virtiofsd_that_enforces_it() {
        let qemu = Virtiofsd {
            program: "/usr/lib/qemu/virtiofsd".into(),
            kind: Kind::Qemu,
        };
        let rust = Virtiofsd {
            program: "/usr/libexec/virtiofsd".into(),
            kind: Kind::Rust,
        };
        assert_eq!(choose(std::slice::from_ref(&qemu), true), None);
        assert_eq!(choose(std::slice::from_ref(&qemu), false), Some(&qemu));
        assert_eq!(choose(&[qemu.clone(), rust.clone()], true), Some(&rust));
        let ro = args(&rust, Path::new("/t/s"), Path::new("/srv/a,b"), true).join(" ");
        assert_eq!(
            ro,
            "--socket-path=/t/s --shared-dir=/srv/a,b --cache=auto --no-announce-submounts --sandbox=chroot --readonly"
        );
        let rw = args(&rust, Path::new("/t/s"), Path::new("/srv"), false);
        assert!(!rw.iter().any(|a| a == "--readonly"));
        let c = args(&qemu, Path::new("/t/s"), Path::new("/srv/a,b\\c"), false);
        assert!(c.iter().any(|a| a == "source=/srv/a\\,b\\\\c"), "{c:?}");
    }
}
