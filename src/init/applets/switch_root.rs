//! `switch_root [-c CONSOLE_DEV] NEW_ROOT NEW_INIT [ARGS...]`: busybox's form, which also
//! takes util-linux's (`-h`/`--help`, `-V`/`--version`, no `-c`). Like util-linux, /dev,
//! /proc, /sys and /run are moved into the new root when they are mount points (busybox
//! leaves that to the script).

use super::getopt::{self, Opt};
use super::request::{Parsed, Request, Usage};
use std::ffi::OsString;

pub const USAGE: &str = "\
Usage: switch_root [-c CONSOLE_DEV] NEW_ROOT NEW_INIT [ARGS]

Free initramfs and switch to another root fs:
move /dev, /proc, /sys and /run into NEW_ROOT, delete all in /,
move NEW_ROOT to /, execute NEW_INIT. PID must be 1.
NEW_ROOT must be a mountpoint.

	-c DEV	Reopen stdio to DEV after switch
	-h	Show this help
	-V	Show the version
";

pub fn parse(args: &[OsString]) -> Result<Parsed, Usage> {
    let (options, operands) = getopt::parse(args, "hV", "c")?;
    let mut request = Request::default();
    for option in options {
        match option {
            Opt::Flag('h') => return Ok(Parsed::Help),
            Opt::Long(long) if long == "help" => return Ok(Parsed::Help),
            Opt::Flag('V') => return Ok(Parsed::Version),
            Opt::Long(long) if long == "version" => return Ok(Parsed::Version),
            Opt::Value('c', console) => request.console = Some(console),
            Opt::Long(long) => return Err(Usage(format!("unrecognized option '--{long}'"))),
            other => return Err(Usage(format!("unexpected option {other:?}"))),
        }
    }
    request.take_operands(operands, "NEW_ROOT and NEW_INIT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn busybox_and_util_linux_forms() {
        let Parsed::Run(r) = parse(&args(&[
            "-c",
            "/dev/console",
            "/newroot",
            "/sbin/init",
            "-s",
            "--x",
        ]))
        .unwrap() else {
            panic!("not a run");
        };
        assert_eq!(r.new_root, PathBuf::from("/newroot"));
        assert_eq!(r.init, "/sbin/init");
        assert_eq!(r.args, args(&["-s", "--x"]));
        assert_eq!(
            r.console.as_deref(),
            Some(std::ffi::OsStr::new("/dev/console"))
        );
        assert!(!r.dry_run && !r.keep && r.drop_caps.is_empty());
        assert_eq!(parse(&args(&["-h"])).unwrap(), Parsed::Help);
        assert_eq!(parse(&args(&["--help"])).unwrap(), Parsed::Help);
        assert_eq!(parse(&args(&["-V"])).unwrap(), Parsed::Version);
        assert_eq!(parse(&args(&["--version"])).unwrap(), Parsed::Version);
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &[][..],
            &["/newroot"],
            &["-x", "/a", "/b"],
            &["-c"],
            &["--force", "/a", "/b"],
            &["-n", "/a", "/b"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
