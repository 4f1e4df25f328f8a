//! `aio-trace man [--dir DIR]` (hidden): the man page (roff) generated from
//! the clap definitions: aio-trace(1) on stdout, or aio-trace.1 and one
//! aio-trace-COMMAND.1 per command written into DIR (what `cargo xtask
//! install` puts in PREFIX/share/man/man1).

use std::{io::Write, path::Path, process::ExitCode};

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::cli::{Cli, ManArgs};

/// aio-trace(1) in roff.
pub fn page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

/// Writes aio-trace.1 and aio-trace-COMMAND.1 for every visible command into `dir`.
pub fn write_pages(dir: &Path) -> std::io::Result<()> {
    clap_mangen::generate_to(Cli::command(), dir)
}

pub fn run(args: ManArgs) -> anyhow::Result<ExitCode> {
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            write_pages(&dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&page()?)?;
            stdout.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible_subcommands() -> Vec<String> {
        Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_owned())
            .collect()
    }

    #[test]
    fn the_man_page_is_roff_naming_every_subcommand() {
        let page = String::from_utf8(page().unwrap()).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
        assert!(page.contains(".TH aio-trace 1"), "{page}");
        assert!(page.contains(".SH SYNOPSIS"), "{page}");
        assert!(page.contains(env!("CARGO_PKG_VERSION")), "{page}");
        for name in visible_subcommands() {
            assert!(page.contains(&name), "the man page lacks {name}");
        }
        // The hidden generators are not documented as commands.
        assert!(!page.contains("aio\\-trace\\-completions"), "{page}");
    }

    #[test]
    fn every_command_gets_its_own_page() {
        let dir = std::env::temp_dir().join(format!("aio-trace-man-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_pages(&dir).unwrap();
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        let mut expected: Vec<String> = visible_subcommands()
            .iter()
            .map(|s| format!("aio-trace-{s}.1"))
            .collect();
        expected.push("aio-trace.1".into());
        expected.sort();
        assert_eq!(files, expected);
        let snoop = std::fs::read_to_string(dir.join("aio-trace-snoop.1")).unwrap();
        assert!(snoop.contains("\\-\\-json"), "{snoop}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
