//! `run-init [-d CAP,...] [-c CONSOLE_DEV] [-n] [-p] NEW_ROOT NEW_INIT [ARGS...]`: klibc's
//! run-init, as Debian's initramfs-tools calls it (`run-init -n` to choose the init, then
//! `exec run-init ${drop_caps} ...`), and busybox's applet of the same name.

use super::getopt::{self, Opt};
use super::request::{Parsed, Request, Usage};
use std::ffi::OsString;

pub const USAGE: &str = "\
Usage: exec run-init [-d caps] [-c consoledev] [-n] [-p] /real-root /sbin/init \"$@\"

/real-root should be the mount point of the real root filesystem
and /sbin/init the init to run there. /dev, /proc, /sys and /run
are moved into /real-root, everything else in the initramfs is
deleted, /real-root becomes / and /sbin/init is executed.
PID must be 1, except for a dry run.

	-d caps	Drop these capabilities (cap_sys_module,...)
	-c dev	Reopen stdio to dev (default /dev/console)
	-n	Dry run: exit 0 if /sbin/init can be run in /real-root
	-p	Keep the initramfs contents
";

/// The console run-init opens when `-c` is not given.
const DEFAULT_CONSOLE: &str = "/dev/console";

pub fn parse(args: &[OsString]) -> Result<Parsed, Usage> {
    let (options, operands) = getopt::parse(args, "np", "cd")?;
    let mut request = Request {
        console: Some(OsString::from(DEFAULT_CONSOLE)),
        ..Request::default()
    };
    for option in options {
        match option {
            Opt::Flag('n') => request.dry_run = true,
            Opt::Flag('p') => request.keep = true,
            Opt::Value('c', console) => request.console = Some(console),
            Opt::Value('d', list) => {
                let caps = crate::init::caps::parse_list(&list.to_string_lossy())
                    .map_err(|e| Usage(e.to_string()))?;
                request.drop_caps.extend(caps);
            }
            Opt::Long(long) if long == "help" => return Ok(Parsed::Help),
            Opt::Long(long) => return Err(Usage(format!("unrecognized option '--{long}'"))),
            other => return Err(Usage(format!("unexpected option {other:?}"))),
        }
    }
    request.take_operands(operands, "/real-root and /sbin/init")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn initramfs_tools_calls() {
        let Parsed::Run(r) = parse(&args(&["-n", "/root", "/sbin/init"])).unwrap() else {
            panic!("not a run");
        };
        assert!(r.dry_run);
        assert_eq!(
            r.console.as_deref(),
            Some(std::ffi::OsStr::new("/dev/console"))
        );
        let Parsed::Run(r) = parse(&args(&[
            "-d",
            "cap_sys_module,CAP_SYS_RAWIO",
            "-p",
            "/root",
            "/sbin/init",
            "--",
            "single",
        ]))
        .unwrap() else {
            panic!("not a run");
        };
        assert_eq!(r.drop_caps, [16, 17]);
        assert!(r.keep && !r.dry_run);
        assert_eq!(r.args, args(&["--", "single"]));
    }

    #[test]
    fn unknown_capabilities_and_bad_usage_are_errors() {
        assert_eq!(
            parse(&args(&["-d", "cap_flying", "/root", "/sbin/init"])).unwrap_err(),
            Usage("unknown capability: cap_flying".into())
        );
        assert!(parse(&args(&["/root"])).is_err());
        assert!(parse(&args(&["-x", "/root", "/sbin/init"])).is_err());
    }
}
