//! `tether completions SHELL`: the shell's completion script for tether, on stdout
//! (clap_complete, from the same argument definitions the parser uses).

use clap::{Args, CommandFactory};

use super::printer::Printer;
use super::{Cli, Exit};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn exec(args: CompletionsArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let CompletionsArgs { shell } = args;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tether", &mut script);
    printer.data(&String::from_utf8_lossy(&script))?;
    Ok(Exit::Success)
}
