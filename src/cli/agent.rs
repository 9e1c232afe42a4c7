//! `tether agent`: the hidden command tether runs where a job's share runs, not for
//! people. On an instance, `tether agent SHARE` runs one share in the job's directory,
//! reporting to `status.json` (started by `tether run` in a tmux session); in a Batch
//! container, `tether agent --batch STAGE` runs the child's share from the job's stage.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::printer::Printer;
use super::Exit;
use tether::jobs::Status;

/// `tether agent SHARE`: runs one share of a job on the instance it was copied to, in the
/// job's directory (which holds the spec and the share), reporting to `status.json`.
/// Started by `tether run` in a tmux session; not for people.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The share file tether wrote for this instance.
    #[arg(required_unless_present = "batch")]
    pub share: Option<PathBuf>,
    /// Run this Batch child's share from the job's stage (`s3://bucket/prefix/`); the share
    /// is `AWS_BATCH_JOB_ARRAY_INDEX`'s.
    #[arg(long, value_name = "STAGE", conflicts_with = "share")]
    pub batch: Option<String>,
}

/// `tether agent --batch STAGE`: one Batch child.
async fn batch_agent(stage: &str) -> anyhow::Result<Exit> {
    let stage = tether::jobs::batch::Stage::parse(stage)
        .with_context(|| format!("`{stage}` is no stage (s3://bucket/prefix/)"))?;
    let index = match std::env::var("AWS_BATCH_JOB_ARRAY_INDEX") {
        Ok(text) => text
            .parse()
            .with_context(|| format!("AWS_BATCH_JOB_ARRAY_INDEX is `{text}`"))?,
        Err(_) => 0,
    };
    // Set by the run that submitted the job: what the stage must hold.
    let manifest_sha256 = std::env::var("TETHER_STAGE_SHA256").context(
        "TETHER_STAGE_SHA256 is not set: only a job tether submitted has a stage to trust",
    )?;
    let cloud = super::connect(None).await?;
    let scratch = tether::secrets::private_temp_dir("tether-batch-")
        .context("cannot make a scratch directory")?;
    let summary =
        tether::jobs::batch::agent(&cloud, &stage, &manifest_sha256, index, scratch.path()).await?;
    Ok(if summary.status == Status::Succeeded {
        Exit::Success
    } else {
        Exit::Error
    })
}

pub async fn exec(args: AgentArgs, _printer: &Printer) -> anyhow::Result<Exit> {
    let AgentArgs { share, batch } = args;
    if let Some(stage) = batch {
        return batch_agent(&stage).await;
    }
    let share = share.context("the share file is missing")?;
    let text = std::fs::read_to_string("tether.yaml").context("cannot read the job's spec")?;
    // The spec's local files (user data) stayed on the machine that started the job.
    let spec = tether::spec::parse("tether.yaml", &text)?;
    let share: tether::jobs::remote::Share = serde_json::from_slice(
        &std::fs::read(&share).with_context(|| format!("cannot read `{}`", share.display()))?,
    )
    .context("the share file is not tether's")?;
    let cloud = super::connect(spec.region.as_deref()).await?;
    let base_dir = std::env::current_dir().context("no working directory")?;
    let summary = tether::jobs::remote::agent(
        &cloud,
        &spec,
        share,
        (base_dir, Path::new("status.json")),
        false,
    )
    .await;
    Ok(if summary.status == Status::Succeeded {
        Exit::Success
    } else {
        Exit::Error
    })
}
