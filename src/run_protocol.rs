//! How `baton run` and the init's `baton.run` talk: the command, and where and how it runs,
//! go into the image as /etc/baton/run ([`Spec`], NUL-separated records, since the kernel
//! command line cannot carry a double quote or a newline); its streams travel on virtio
//! serial ports; how it ended comes back on the port `baton.status` as one line: `exit N`,
//! `signal N`, `timeout N` (the limit in seconds) or `notrun ERRNO`. [`parse_status`] reads
//! that line back on the host and [`exit_code`] turns it into a process's exit status.

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
    /// What it needed could not be made ready (a share, a port, a user): why.
    Refused(String),
}

/// What `baton run` ends with for its own failures, as timeout(1) does: distinct from any
/// status of the command's.
pub const OWN_FAILURE: u8 = 125;
/// The port the host's stdin comes in on.
pub const STDIN_PORT: &str = "baton.stdin";
/// The port the command's stdout goes out on.
pub const STDOUT_PORT: &str = "baton.stdout";
/// The port the command's stderr goes out on.
pub const STDERR_PORT: &str = "baton.stderr";

impl Outcome {
    /// The status port's line.
    pub fn status_line(&self) -> String {
        match self {
            Outcome::Exited(n) => format!("exit {n}"),
            Outcome::Signaled(n) => format!("signal {n}"),
            Outcome::TimedOut(secs) => format!("timeout {secs}"),
            Outcome::NotRun(errno) => format!("notrun {errno}"),
            // One line: the reader takes the first.
            Outcome::Refused(why) => format!("error {}", why.replace(['\n', '\r'], " ")),
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
            Outcome::Refused(why) => format!("baton: cannot run {command}: {why}"),
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
        "error" => Some(Outcome::Refused(number.to_owned())),
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
        Outcome::Refused(_) => i32::from(OWN_FAILURE),
    };
    u8::try_from(code & 0xff).unwrap_or(1)
}

/// How the command's standard streams reach the host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Streams {
    /// The console's terminal, for stdin, stdout and stderr alike (`baton.run -- CMD` on a
    /// kernel command line).
    #[default]
    Console,
    /// The virtio serial ports [`STDIN_PORT`], [`STDOUT_PORT`] and [`STDERR_PORT`]: the
    /// host's own streams, byte for byte, each apart.
    Ports,
    /// The first virtio console (`hvc0`), a terminal the host's terminal drives: its size
    /// and type as the host's.
    Terminal { rows: u16, cols: u16, term: String },
}

/// The command as a person would type it, for messages on both sides; "the shell" when
/// there is none.
pub fn shown(command: &[OsString]) -> String {
    match command.is_empty() {
        true => "the shell".to_owned(),
        false => command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// How a host directory is offered to the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareKind {
    /// Writable, changes reaching the host.
    ReadWrite,
    /// Read-only (on the host's side too).
    ReadOnly,
    /// Writable in the guest over a read-only share: changes go to a tmpfs.
    Overlay,
}

impl ShareKind {
    fn word(self) -> &'static str {
        match self {
            ShareKind::ReadWrite => "rw",
            ShareKind::ReadOnly => "ro",
            ShareKind::Overlay => "overlay",
        }
    }
}

/// A host directory shared under `tag`, mounted on `guest` (an absolute path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub kind: ShareKind,
    pub tag: String,
    pub guest: OsString,
}

/// Everything about the command `baton run` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spec {
    /// The command and its arguments; empty: the user's shell.
    pub command: Vec<OsString>,
    /// Where it starts (default `/`).
    pub cwd: Option<OsString>,
    /// Whom it runs as, by name (default root).
    pub user: Option<OsString>,
    /// Directories mounted before it starts, in this order.
    pub shares: Vec<Share>,
    pub streams: Streams,
    /// Configure the first network interface for qemu's user network.
    pub network: bool,
}

/// A bound on the records of a spec file.
const MAX_RECORDS: usize = MAX_ARGS + 256;
/// A bound on the shares of one run.
pub const MAX_SHARES: usize = 64;

/// The spec file: NUL-terminated records `KEY=VALUE`, `arg=` once per argument in order.
/// Values may hold any byte but NUL (arguments with newlines, paths with `=`).
pub fn spec_file(spec: &Spec) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    let mut record = |key: &str, value: &[u8]| {
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(0);
    };
    for arg in &spec.command {
        record("arg", arg.as_bytes());
    }
    if let Some(cwd) = &spec.cwd {
        record("cwd", cwd.as_bytes());
    }
    if let Some(user) = &spec.user {
        record("user", user.as_bytes());
    }
    for share in &spec.shares {
        let mut value = format!("{} {} ", share.kind.word(), share.tag).into_bytes();
        value.extend_from_slice(share.guest.as_bytes());
        record("share", &value);
    }
    match &spec.streams {
        Streams::Console => {}
        Streams::Ports => record("streams", b"ports"),
        Streams::Terminal { rows, cols, term } => {
            record("streams", b"terminal");
            record("rows", rows.to_string().as_bytes());
            record("cols", cols.to_string().as_bytes());
            record("term", term.as_bytes());
        }
    }
    if spec.network {
        record("network", b"user");
    }
    out
}

/// Reads a spec file back (the inverse of [`spec_file`]). Unknown keys are errors: the
/// file is written by the same baton that reads it.
pub fn parse_spec_file(bytes: &[u8]) -> Result<Spec, String> {
    use std::os::unix::ffi::OsStrExt;
    let mut spec = Spec::default();
    let (mut terminal, mut rows, mut cols, mut term) = (false, 0u16, 0u16, String::new());
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Ok(spec);
    }
    for (n, record) in bytes.split(|&b| b == 0).enumerate() {
        if n >= MAX_RECORDS {
            return Err(format!("more than {MAX_RECORDS} records"));
        }
        let at = record.iter().position(|&b| b == b'=');
        let (key, value) = match at {
            Some(at) => (
                record.get(..at).unwrap_or_default(),
                record.get(at + 1..).unwrap_or_default(),
            ),
            None => {
                return Err(format!(
                    "a record without '=': {:?}",
                    String::from_utf8_lossy(record)
                ))
            }
        };
        let text = || {
            std::str::from_utf8(value)
                .map_err(|_| format!("{} is not UTF-8", String::from_utf8_lossy(key)))
        };
        let number = |what: &str| -> Result<u16, String> {
            text()?.parse().map_err(|_| {
                format!(
                    "{what} is not a number: {:?}",
                    String::from_utf8_lossy(value)
                )
            })
        };
        match key {
            b"arg" => {
                if spec.command.len() >= MAX_ARGS {
                    return Err(format!("more than {MAX_ARGS} arguments"));
                }
                spec.command
                    .push(std::ffi::OsStr::from_bytes(value).to_owned());
            }
            b"cwd" => spec.cwd = Some(absolute(value, "cwd")?),
            b"user" => spec.user = Some(std::ffi::OsStr::from_bytes(value).to_owned()),
            b"share" => {
                if spec.shares.len() >= MAX_SHARES {
                    return Err(format!("more than {MAX_SHARES} shares"));
                }
                spec.shares.push(parse_share(value)?);
            }
            b"streams" => match value {
                b"ports" => spec.streams = Streams::Ports,
                b"terminal" => terminal = true,
                _ => {
                    return Err(format!(
                        "unknown streams {:?}",
                        String::from_utf8_lossy(value)
                    ))
                }
            },
            b"rows" => rows = number("rows")?,
            b"cols" => cols = number("cols")?,
            b"term" => term = text()?.to_owned(),
            b"network" if value == b"user" => spec.network = true,
            _ => {
                return Err(format!(
                    "unknown record {:?}",
                    String::from_utf8_lossy(record)
                ))
            }
        }
    }
    if terminal {
        spec.streams = Streams::Terminal { rows, cols, term };
    }
    Ok(spec)
}

/// `KIND TAG PATH`.
fn parse_share(value: &[u8]) -> Result<Share, String> {
    let mut words = value.splitn(3, |&b| b == b' ');
    let kind = match words.next() {
        Some(b"rw") => ShareKind::ReadWrite,
        Some(b"ro") => ShareKind::ReadOnly,
        Some(b"overlay") => ShareKind::Overlay,
        _ => {
            return Err(format!(
                "a share of unknown kind: {:?}",
                String::from_utf8_lossy(value)
            ))
        }
    };
    let tag = words
        .next()
        .and_then(|t| std::str::from_utf8(t).ok())
        .filter(|t| !t.is_empty() && t.len() <= 36)
        .ok_or_else(|| {
            format!(
                "a share without a tag: {:?}",
                String::from_utf8_lossy(value)
            )
        })?;
    let guest = absolute(words.next().unwrap_or_default(), "a share's path")?;
    Ok(Share {
        kind,
        tag: tag.to_owned(),
        guest,
    })
}

/// An absolute path without `..`, as a value.
fn absolute(value: &[u8], what: &str) -> Result<OsString, String> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(value));
    let parent = path
        .components()
        .any(|c| c == std::path::Component::ParentDir);
    if !path.is_absolute() || parent {
        return Err(format!(
            "{what} is not an absolute path without '..': {}",
            path.display()
        ));
    }
    Ok(path.as_os_str().to_owned())
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
            Outcome::Refused("no user me in /etc/passwd".into()),
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
        assert_eq!(exit_code(&Outcome::Refused("x".into())), 125);
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
    fn spec_files_round_trip() {
        let words = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        let spec = Spec {
            command: words(&["sh", "-c", "echo \"hi\"\nexit 7", "", "a=b"]),
            cwd: Some("/home/me/src tree".into()),
            user: Some("me".into()),
            shares: vec![
                Share {
                    kind: ShareKind::ReadWrite,
                    tag: "baton.share1".into(),
                    guest: "/tmp/a b".into(),
                },
                Share {
                    kind: ShareKind::Overlay,
                    tag: "baton.share2".into(),
                    guest: "/srv".into(),
                },
            ],
            streams: Streams::Terminal {
                rows: 40,
                cols: 132,
                term: "xterm-256color".into(),
            },
            network: true,
        };
        assert_eq!(parse_spec_file(&spec_file(&spec)), Ok(spec));
        let ports = Spec {
            command: words(&["true"]),
            streams: Streams::Ports,
            ..Spec::default()
        };
        assert_eq!(parse_spec_file(&spec_file(&ports)), Ok(ports));
        assert_eq!(parse_spec_file(b""), Ok(Spec::default()));
    }

    #[test]
    fn bad_spec_files_are_refused() {
        for bad in [
            &b"true\0"[..],
            b"cwd=relative\0",
            b"cwd=/a/../etc\0",
            b"share=rw baton.share1 relative\0",
            b"share=rx baton.share1 /a\0",
            b"share=rw  /a\0",
            b"streams=pipes\0",
            b"rows=many\0",
            b"unknown=1\0",
        ] {
            assert!(
                parse_spec_file(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let many = b"arg=x\0".repeat(MAX_ARGS + 1);
        assert!(parse_spec_file(&many).is_err());
    }
}
