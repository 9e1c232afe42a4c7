//! `tether validate`: parse and check the spec; no AWS call.

use std::path::PathBuf;

use clap::Args;

use super::printer::Printer;
use super::Exit;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

pub fn exec(args: ValidateArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let ValidateArgs { file } = args;
    let path = super::spec_path(file);
    let spec = super::load_spec(&path)?;
    printer.status(&format!(
        "{} is valid: project `{}`, {} bucket(s), {} IAM group(s), {} IAM user(s).",
        path.display(),
        spec.project,
        spec.buckets.len(),
        spec.groups.len(),
        spec.users.len()
    ));
    Ok(Exit::Success)
}
