//! What an applet's command line asks for, parsed: the request to carry out, or the usage
//! text for a wrong one.

use std::ffi::OsString;
use std::path::PathBuf;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Help,
    Version,
    Run(Request),
}

/// A switch to perform.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub new_root: PathBuf,
    pub init: OsString,
    pub args: Vec<OsString>,
    /// `-c DEV`: stdin, stdout and stderr reopened on it after the switch.
    pub console: Option<OsString>,
    /// `-d CAPS` (run-init): capability numbers to drop before the exec.
    pub drop_caps: Vec<u32>,
    /// `-n` (run-init): only check that the init can be run.
    pub dry_run: bool,
    /// `-p` (run-init): keep the initramfs contents.
    pub keep: bool,
}

impl Request {
    /// NEW_ROOT, NEW_INIT and the init's own arguments, from the operands after the options;
    /// `missing` names the first two as the tool's usage does.
    pub(super) fn take_operands(
        mut self,
        operands: Vec<OsString>,
        missing: &str,
    ) -> Result<Parsed, Usage> {
        let mut operands = operands.into_iter();
        let (Some(new_root), Some(init)) = (operands.next(), operands.next()) else {
            return Err(Usage(format!("{missing} are required")));
        };
        self.new_root = PathBuf::from(new_root);
        self.init = init;
        self.args = operands.collect();
        Ok(Parsed::Run(self))
    }
}

/// A command line the tool cannot take: the reason, then the usage text, exit code 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage(pub String);
