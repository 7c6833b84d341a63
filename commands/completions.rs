//! `phs completions`: print a shell completion script or the man page.

use std::process::ExitCode;

use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell;

/// Print a shell completion script (or the man page) on stdout.
///
/// e.g. `phs completions bash > /etc/bash_completion.d/phs`. The generated
/// files are also in the repository's completions/ folder.
#[derive(Debug, Args)]
pub struct Opts {
    pub target: Target,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Target {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
    /// The man page (roff).
    Man,
}

pub fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    let shell = match opts.target {
        Target::Bash => Shell::Bash,
        Target::Zsh => Shell::Zsh,
        Target::Fish => Shell::Fish,
        Target::Elvish => Shell::Elvish,
        Target::Powershell => Shell::PowerShell,
        Target::Man => {
            clap_mangen::Man::new(cmd).render(&mut out)?;
            return write(out);
        }
    };
    clap_complete::generate(shell, &mut cmd, "phs", &mut out);
    write(out)
}

fn write(bytes: Vec<u8>) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&bytes)?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
