//! `tether force-unlock LOCK_ID`: break the project's lock, left by a run that was killed.

use std::path::PathBuf;

use clap::Args;

use super::printer::{Printer, WithHint};
use super::Exit;

#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    /// The lock's id, as the refused run or `tether apply`'s wait named it.
    pub lock_id: String,
    /// The spec file (names the project and region).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

pub async fn exec(args: ForceUnlockArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let ForceUnlockArgs { lock_id, file } = args;
    let spec = super::load_spec(&super::spec_path(file))?;
    let cloud = super::connect(spec.region.as_deref()).await?;
    match tether::lock::force_unlock(&cloud, &spec.project, &lock_id).await {
        Ok(held) => {
            printer.status(&format!(
                "Broke the {held}. If that run is still alive, it may still be changing the account."
            ));
            Ok(Exit::Success)
        }
        Err(error @ tether::lock::LockError::NotThisLock { .. }) => Err(WithHint::new(
            error.to_string(),
            "check the id: force-unlock breaks only the lock the project holds now, and only with its id",
        )
        .into()),
        Err(error @ tether::lock::LockError::NoLock { .. }) => Err(WithHint::new(
            error.to_string(),
            "nothing to do: the run that held it finished, or its lock was broken already",
        )
        .into()),
        Err(error) => Err(error.into()),
    }
}
