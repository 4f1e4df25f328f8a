//! `aio-trace completions SHELL` (hidden): the shell's completion script,
//! generated from the clap definitions, on stdout. `cargo xtask install`
//! installs the bash, zsh and fish ones.

use std::{io::Write, process::ExitCode};

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionsArgs};

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "aio-trace", &mut out);
    out
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script(args.shell))?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The visible subcommands (not the hidden `completions` and `man`).
    fn subcommands() -> Vec<String> {
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_owned())
            .collect();
        assert!(names.len() >= 8, "{names:?}");
        names
    }

    #[test]
    fn the_bash_completion_names_every_subcommand_and_option() {
        let script = String::from_utf8(script(Shell::Bash)).unwrap();
        assert!(script.contains("complete -F _aio__trace"), "{script}");
        for name in subcommands() {
            assert!(script.contains(&name), "bash completion lacks {name}");
        }
        assert!(script.contains("--json"));
        assert!(script.contains("--inflight-timeout"));
    }

    #[test]
    fn zsh_and_fish_completions_name_every_subcommand() {
        for shell in [Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(script(shell)).unwrap();
            assert!(script.contains("aio-trace"), "{shell}");
            for name in subcommands() {
                assert!(script.contains(&name), "{shell} completion lacks {name}");
            }
        }
    }
}
