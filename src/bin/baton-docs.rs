//! `baton-docs DIR`: writes baton's man pages (DIR/man/*.8) and its bash, zsh and fish
//! completions (DIR/completions/) for packaging. Not installed: the package carries what it
//! wrote.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: baton-docs DIR");
        return ExitCode::from(2);
    };
    match baton::host::cli::docs::write(std::path::Path::new(&dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("baton-docs: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
