//! How `baton run` and the init's `baton.run` talk: the command goes into the image as
//! /etc/baton/run (its arguments separated by NUL bytes, since the kernel command line
//! cannot carry a double quote or a newline), and how it ended comes back on the virtio
//! serial port `baton.status` as one line: `exit N`, `signal N`, `timeout N` (the limit in
//! seconds) or `notrun ERRNO`. [`parse_status`] reads that line back on the host and
//! [`exit_code`] turns it into a process's exit status.

use std::ffi::OsString;

/// The command in the image, written by `baton run`, relative to the initramfs's root.
pub const COMMAND_FILE: &str = "etc/baton/run";
/// The virtio serial port the status goes to.
pub const STATUS_PORT: &str = "baton.status";
/// A bound on the command's arguments from the file.
const MAX_ARGS: usize = 4096;
/// A bound on the command file.
pub const MAX_COMMAND_FILE: u64 = 1 << 20;

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
    /// It ran past the limit (in seconds) and was killed.
    TimedOut(u32),
    /// It could not be started: the errno of the exec.
    NotRun(i32),
}

impl Outcome {
    /// The status port's line.
    pub fn status_line(&self) -> String {
        match self {
            Outcome::Exited(n) => format!("exit {n}"),
            Outcome::Signaled(n) => format!("signal {n}"),
            Outcome::TimedOut(secs) => format!("timeout {secs}"),
            Outcome::NotRun(errno) => format!("notrun {errno}"),
        }
    }

    /// The console's line, naming the command.
    pub fn describe(&self, command: &str) -> String {
        match self {
            Outcome::Exited(n) => format!("baton: {command} exited with status {n}"),
            Outcome::Signaled(n) => format!(
                "baton: {command} was killed by signal {n} ({})",
                nix::sys::signal::Signal::try_from(*n).map_or("unknown", |s| s.as_str())
            ),
            Outcome::TimedOut(secs) => {
                format!("baton: {command} was still running after {secs} s and was killed")
            }
            Outcome::NotRun(errno) => format!(
                "baton: {command} could not be run: {}",
                nix::errno::Errno::from_raw(*errno).desc()
            ),
        }
    }
}

/// Reads a status line back (the host's side).
pub fn parse_status(line: &str) -> Option<Outcome> {
    let (kind, number) = line.trim().split_once(' ')?;
    match kind {
        "exit" => number.parse().ok().map(Outcome::Exited),
        "signal" => number.parse().ok().map(Outcome::Signaled),
        "timeout" => number.parse().ok().map(Outcome::TimedOut),
        "notrun" => number.parse().ok().map(Outcome::NotRun),
        _ => None,
    }
}

/// The exit status a process reporting `outcome` should end with, as shells and
/// timeout(1) do it: the command's own status; 128 + N for signal N; 124 for a timeout; 127
/// for a command not found and 126 for one that could not be run.
pub fn exit_code(outcome: &Outcome) -> u8 {
    let code = match outcome {
        Outcome::Exited(n) => *n,
        Outcome::Signaled(n) => 128 + n,
        Outcome::TimedOut(_) => 124,
        Outcome::NotRun(errno) if *errno == libc::ENOENT => 127,
        Outcome::NotRun(_) => 126,
    };
    u8::try_from(code & 0xff).unwrap_or(1)
}

/// The command file's arguments: NUL-separated, the last NUL optional. Empty arguments in
/// the middle are kept (`sh -c ''`).
pub fn parse_command_file(bytes: &[u8]) -> Vec<OsString> {
    use std::os::unix::ffi::OsStringExt;
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .take(MAX_ARGS)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}

/// The command file for `args` (the inverse of [`parse_command_file`]). Arguments cannot
/// hold a NUL byte, as no exec can take one.
pub fn command_file(args: &[OsString]) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for arg in args {
        out.extend_from_slice(arg.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_read_back() {
        for outcome in [
            Outcome::Exited(0),
            Outcome::Exited(7),
            Outcome::Signaled(9),
            Outcome::TimedOut(30),
            Outcome::NotRun(libc::ENOENT),
        ] {
            assert_eq!(parse_status(&outcome.status_line()), Some(outcome.clone()));
        }
        assert_eq!(parse_status("exit 3\n"), Some(Outcome::Exited(3)));
        assert_eq!(parse_status("garbage"), None);
        assert_eq!(parse_status("exit x"), None);
    }

    #[test]
    fn exit_codes_as_shells_give_them() {
        assert_eq!(exit_code(&Outcome::Exited(7)), 7);
        assert_eq!(exit_code(&Outcome::Exited(0)), 0);
        assert_eq!(exit_code(&Outcome::Signaled(9)), 137);
        assert_eq!(exit_code(&Outcome::TimedOut(5)), 124);
        assert_eq!(exit_code(&Outcome::NotRun(libc::ENOENT)), 127);
        assert_eq!(exit_code(&Outcome::NotRun(libc::EACCES)), 126);
    }

    #[test]
    fn the_console_line_names_command_and_cause() {
        assert_eq!(
            Outcome::Exited(7).describe("sh -c exit 7"),
            "baton: sh -c exit 7 exited with status 7"
        );
        assert!(Outcome::Signaled(9)
            .describe("x")
            .contains("signal 9 (SIGKILL)"));
        assert!(Outcome::TimedOut(3).describe("x").contains("after 3 s"));
    }

    #[test]
    fn command_files_round_trip() {
        let args: Vec<OsString> = ["sh", "-c", "echo \"hi\"\nexit 7", ""]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(parse_command_file(&command_file(&args)), args);
        assert!(parse_command_file(b"").is_empty());
        assert_eq!(parse_command_file(b"true"), [OsString::from("true")]);
    }
}
