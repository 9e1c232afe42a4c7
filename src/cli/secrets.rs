//! `tether secrets pull [NAME...]`: local copies of the team's secrets from Parameter Store.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::printer::{Printer, WithHint};
use super::Exit;
use tether::secrets::Written;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Write local copies of the spec's secrets (private keys 0400, credentials and
    /// passwords 0600), or of the named key pairs' and users' only.
    Pull(PullArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Key pairs and users of the spec (all when none is named).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

pub async fn exec(command: SecretsCommand, printer: &Printer) -> anyhow::Result<Exit> {
    let SecretsCommand::Pull(PullArgs { names, file }) = command;
    let spec = super::load_spec(&super::spec_path(file))?;
    let cloud = super::connect(spec.region.as_deref()).await?;
    let pulled = match tether::pull::pull(&cloud, &spec, &names, super::home().as_deref()).await
    {
        Ok(pulled) => pulled,
        Err(error @ tether::pull::PullError::Write(tether::secrets::OwnedWriteError::NotOurs { .. })) => {
            return Err(WithHint::new(
                error.to_string(),
                "move that file away (it may be someone's own key), or set `private_key_file` to another path",
            )
            .into())
        }
        Err(error) => return Err(error.into()),
    };
    if pulled.is_empty() {
        printer.status("The spec has no secrets to pull.");
    }
    for copy in &pulled {
        let verb = match copy.written {
            Written::Written => "wrote",
            Written::Unchanged => "up to date",
        };
        printer.status(&format!(
            "{}: {} {verb}: {}",
            copy.owner,
            copy.what,
            copy.file.display()
        ));
    }
    Ok(Exit::Success)
}
