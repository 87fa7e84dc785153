//! The init binary under other names: `switch_root` (busybox's and util-linux's) and
//! `run-init` (klibc's, which Debian's initramfs-tools calls), chosen by the last component
//! of argv[0], so a symlink or a copy both work. Shell-script initramfs images keep their
//! scripts and get baton's switch: the same guards and fd-based deletion as its own boot.
//!
//! Each tool's command line is parsed by a pure function (`parse`), then one executor
//! (`perform`) runs the request: every check before anything changes, then the switch,
//! the console, the capabilities, the exec. Messages go to stderr as the originals print
//! them, and to /dev/kmsg, so a failed switch in someone's script is explained in dmesg.

mod getopt;
mod request;
pub mod run_init;
pub mod switch_root;

pub use request::{Parsed, Request, Usage};

use crate::init::switch;
use std::ffi::{OsStr, OsString};
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applet {
    SwitchRoot,
    RunInit,
}

impl Applet {
    pub fn name(self) -> &'static str {
        match self {
            Applet::SwitchRoot => "switch_root",
            Applet::RunInit => "run-init",
        }
    }
}

/// The applet `argv0` names, if any: its last path component.
pub fn by_name(argv0: &OsStr) -> Option<Applet> {
    let name = argv0.as_encoded_bytes().rsplit(|&b| b == b'/').next()?;
    match name {
        b"switch_root" => Some(Applet::SwitchRoot),
        b"run-init" => Some(Applet::RunInit),
        _ => None,
    }
}

/// Runs `applet` with `args` (without argv[0]); returns the exit code.
pub fn run(applet: Applet, args: &[OsString]) -> u8 {
    crate::init::kmsg::install();
    let parsed = match applet {
        Applet::SwitchRoot => switch_root::parse(args),
        Applet::RunInit => run_init::parse(args),
    };
    let usage = match applet {
        Applet::SwitchRoot => switch_root::USAGE,
        Applet::RunInit => run_init::USAGE,
    };
    match parsed {
        Ok(Parsed::Help) => {
            let _ = write!(std::io::stdout(), "{usage}");
            0
        }
        Ok(Parsed::Version) => {
            let _ = writeln!(
                std::io::stdout(),
                "{} from baton {}",
                applet.name(),
                env!("CARGO_PKG_VERSION")
            );
            0
        }
        Ok(Parsed::Run(request)) => perform(applet.name(), &request),
        Err(Usage(why)) => {
            let tool = Tool(applet.name());
            tool.error(&why);
            let _ = write!(std::io::stderr(), "{usage}");
            1
        }
    }
}

/// Reports as the tool: stderr, as the originals print, and the kernel log.
struct Tool(&'static str);

impl Tool {
    fn info(&self, message: &str) {
        crate::init::kmsg::record(log::Level::Info, &format!("{}: {message}", self.0));
    }

    fn warn(&self, message: &str) {
        let line = format!("{}: {message}", self.0);
        crate::init::kmsg::record(log::Level::Warn, &line);
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    fn error(&self, message: &str) {
        let line = format!("{}: {message}", self.0);
        crate::init::kmsg::record(log::Level::Error, &line);
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    /// A refusal or failure: exit code 1, as every original uses for them.
    fn fail(&self, message: &str) -> u8 {
        self.error(message);
        1
    }
}

/// Every check first, then the switch, the console, the capabilities and the exec. Returns
/// only on failure (or after a dry run), with the exit code.
fn perform(name: &'static str, request: &Request) -> u8 {
    let tool = Tool(name);
    // As busybox and klibc take it: relative to the current directory, through symlinks.
    let new_root = match std::fs::canonicalize(&request.new_root) {
        Ok(path) => path,
        Err(e) => {
            let shown = request.new_root.display();
            return tool.fail(&format!("refusing to switch root: {shown}: {e}"));
        }
    };
    let root = new_root.display().to_string();
    let init = request.init.to_string_lossy().into_owned();
    if let Err(e) = switch::check_new_root_is_mounted(&new_root) {
        return tool.fail(&format!("{e:#}"));
    }
    if let Err(why) = switch::check_init(&new_root, &init) {
        let message = format!("{init}: {why} (in the new root {root})");
        if request.dry_run {
            tool.info(&format!("-n: {message}"));
            return 1;
        }
        return tool.fail(&format!("refusing to switch root: {message}"));
    }
    if request.dry_run {
        tool.info(&format!("-n: {init} can be run in {root}"));
        return 0;
    }
    if let Err(e) = switch::check_pid1() {
        return tool.fail(&format!("{e:#}"));
    }
    // What could make dropping capabilities fail, found out while nothing has changed.
    if let Err(why) = crate::init::caps::check(&request.drop_caps, &new_root) {
        return tool.fail(&format!("refusing to switch root: {why}"));
    }
    tool.info(&format!("switching to {root}, then running {init}"));
    let emptying = if request.keep {
        switch::Emptying::Keep
    } else {
        switch::Emptying::Here
    };
    let switched = match switch::switch_root(&new_root, emptying) {
        Ok(switched) => switched,
        Err(e) => return tool.fail(&format!("{e:#}")),
    };
    report_removal(&tool, &switched, request.keep);
    if let Some(console) = &request.console {
        // As busybox does: a console that cannot be opened is a warning, not a reason to
        // stop a boot that has already switched.
        if let Err(e) = switch::reopen_console_at(console) {
            tool.warn(&format!("{e:#}"));
        }
    }
    if let Err(why) = crate::init::caps::drop_all(&request.drop_caps) {
        return tool.fail(&why);
    }
    if !request.drop_caps.is_empty() {
        let names: Vec<String> = request
            .drop_caps
            .iter()
            .map(|&c| crate::init::caps::name(c))
            .collect();
        tool.info(&format!("dropped {}", names.join(",")));
    }
    crate::init::emergency::reap_children();
    tool.info(&format!("running {init}"));
    let error = match switch::exec_init(&request.init, &request.args, &switch::environment()) {
        Ok(never) => match never {},
        Err(error) => error,
    };
    tool.error(&format!("{error:#}"));
    exec_failure_code(&error)
}

/// What emptying the initramfs freed, or why it was kept.
fn report_removal(tool: &Tool, switched: &switch::Switched, keep: bool) {
    match &switched.removal {
        Some(removal) => {
            tool.info(&format!(
                "freed the initramfs: {} entries removed",
                removal.removed
            ));
            if let Some(first) = &removal.first_error {
                tool.warn(&format!(
                    "could not remove everything from the initramfs, first failure: {first}"
                ));
            }
        }
        None if keep => tool.info("-p: kept the initramfs contents"),
        None => {}
    }
}

/// util-linux's codes for a failed exec, which shells use too: 127 when the file is not
/// there, 126 when it is but cannot be run.
fn exec_failure_code(error: &anyhow::Error) -> u8 {
    match error.root_cause().downcast_ref::<nix::errno::Errno>() {
        Some(nix::errno::Errno::ENOENT) => 127,
        _ => 126,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_by_the_last_component_of_argv0() {
        assert_eq!(by_name(OsStr::new("switch_root")), Some(Applet::SwitchRoot));
        assert_eq!(
            by_name(OsStr::new("/usr/bin/run-init")),
            Some(Applet::RunInit)
        );
        assert_eq!(by_name(OsStr::new("/init")), None);
        assert_eq!(by_name(OsStr::new("run-init-not")), None);
        assert_eq!(by_name(OsStr::new("")), None);
    }
}
