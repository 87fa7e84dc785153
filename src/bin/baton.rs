//! `baton`, the host tool: `baton build` bakes the init into an initramfs image, `baton
//! inspect` lists any image, `baton run` runs a command in a VM and ends with its status. Arguments are parsed into options with no I/O (see
//! `baton::host::cli`); this file only runs them and turns errors into exit code 1.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match baton::host::cli::run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // eprintln! would panic if stderr is gone; the exit code still tells.
            let _ = writeln!(std::io::stderr(), "baton: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
