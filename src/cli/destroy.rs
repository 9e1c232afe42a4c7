//! `tether destroy`: delete everything the spec's project owns, and nothing else.

use std::path::PathBuf;

use clap::Args;

use super::changes::ChangeOptions;
use super::printer::Printer;
use super::Exit;
use tether::plan::Mode;

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The spec file (names the project and region).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub options: ChangeOptions,
}

pub async fn exec(args: DestroyArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let DestroyArgs {
        file,
        options:
            ChangeOptions {
                auto_approve,
                parallelism,
                lock,
                empty_tagged_buckets,
            },
    } = args;
    let spec = super::load_spec(&super::spec_path(file))?;
    let cloud = super::connect(spec.region.as_deref()).await?;
    let destroy = async {
        let plan = super::fresh_plan(
            printer,
            &cloud,
            &spec,
            Mode::Destroy,
            empty_tagged_buckets,
            &[],
        )
        .await?;
        printer.status(tether::render::plan_text(&plan).trim_end());
        if plan.has_changes()
            && !auto_approve
            && !super::confirm(
                printer,
                &format!(
                    "Do you really want to destroy everything project `{}` owns?",
                    spec.project
                ),
            )
            .await?
        {
            printer.status("Destroy cancelled: nothing was changed.");
            return Ok(Exit::Error);
        }
        super::changes::run_plan(printer, &cloud, &plan, parallelism.into()).await
    };
    super::with_lock(printer, &cloud, &spec.project, "destroy", &lock, destroy).await
}
