//! The man pages (baton(8), and baton-build(8) and so on for each command) and the bash, zsh
//! and fish completions, made from the command line's own definitions so that they cannot
//! drift from it. scripts/package writes them with `baton-docs DIR` (src/bin/baton-docs.rs).

use super::args::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::Path;

/// What the top page says of the files baton reads and installs.
const FILES: &str = r#".SH FILES
.TP
/etc/baton/baton.conf, /etc/baton/conf.d/*.conf
what baton update builds
.TP
/usr/lib/baton/baton-init
the static init, also switch_root and run-init by name
"#;

/// Writes DIR/man/*.8 and DIR/completions/{baton.bash,_baton,baton.fish}.
pub fn write(dir: &Path) -> Result<()> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("failed to create {}", d.display()))?;
    }
    for (name, page) in man_pages()? {
        let path = man.join(format!("{name}.8"));
        std::fs::write(&path, page)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    for (shell, file) in [
        (Shell::Bash, "baton.bash"),
        (Shell::Zsh, "_baton"),
        (Shell::Fish, "baton.fish"),
    ] {
        let path = completions.join(file);
        std::fs::write(&path, completion(shell))
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(())
}

/// Each page's name (`baton`, `baton-build`, ...) and its roff text.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut top = Cli::command();
    top.build();
    let version = top.get_version().unwrap_or_default().to_owned();
    let mut pages = Vec::new();
    let mut page = Vec::new();
    clap_mangen::Man::new(top.clone())
        .title("BATON")
        .section("8")
        .source(format!("baton {version}"))
        .manual("System Administration")
        .render(&mut page)?;
    page.extend_from_slice(FILES.as_bytes());
    pages.push(("baton".to_owned(), page));
    // Not clap's own `help`: `baton help CMD` is `baton CMD --help`, which has its page.
    for sub in top
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("baton-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(
            sub.clone()
                .name(name.clone())
                .bin_name(format!("baton {}", sub.get_name())),
        )
        .title(name.to_uppercase())
        .section("8")
        .source(format!("baton {version}"))
        .manual("System Administration")
        .render(&mut page)?;
        pages.push((name, page));
    }
    Ok(pages)
}

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "baton", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_for_each_command_and_completions_name_them_all() {
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "baton",
                "baton-build",
                "baton-inspect",
                "baton-update",
                "baton-check",
                "baton-timeline",
                "baton-run"
            ]
        );
        let build = String::from_utf8(pages[1].1.clone()).unwrap();
        assert!(build.contains(".TH BATON-BUILD 8"), "{build}");
        assert!(build.contains("modules\\-dir"), "{build}");
        let top = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(top.contains("/usr/lib/baton/baton-init"), "{top}");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = String::from_utf8(completion(shell)).unwrap();
            for command in ["build", "inspect", "update", "check", "timeline", "run"] {
                assert!(text.contains(command), "{shell}: {command}");
            }
            assert!(text.contains("max-unpacked"), "{shell}");
        }
    }
}
