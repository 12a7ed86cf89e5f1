//! `completions SHELL`: the shell completion script of the whole command
//! line, written to stdout, made by `clap_complete` from the clap types.

use crate::cli::{Cli, CompletionShell};
use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;
use std::process::ExitCode;

pub fn completions(shell: CompletionShell) -> Result<ExitCode> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut cmd = visible(Cli::command());
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "rh-wasm", &mut out);
    std::io::Write::flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// The command line as completion offers it: the same, less the hidden
/// subcommands (`__worker`), which `clap_complete`'s scripts would list.
fn visible(full: clap::Command) -> clap::Command {
    let mut cmd = clap::Command::new("rh-wasm")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true);
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd.args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}
