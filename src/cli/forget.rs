//! `tether forget ADDRESS...`: stop managing resources without touching them. Their marks
//! of ownership (tags, IAM path, the project's records) come off; the resources and their
//! data stay. What the spec still declares cannot be forgotten: remove it first.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::printer::Printer;
use super::Exit;
use tether::model::Address;
use tether::plan::{Action, Mode};

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The resources to let go of, as plans name them: `instance.worker`,
    /// `bucket.my-data`, `iam_user.alice`, `account.alias`.
    #[arg(value_name = "ADDRESS", required = true, value_parser = parse_address)]
    pub addresses: Vec<Address>,
    /// The spec file (names the project and region).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Go ahead without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub lock: super::LockOptions,
}

fn parse_address(text: &str) -> Result<Address, String> {
    text.parse()
}

pub async fn exec(args: ForgetArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let ForgetArgs {
        addresses,
        file,
        auto_approve,
        lock,
    } = args;
    let spec = super::load_spec(&super::spec_path(file))?;
    let cloud = super::connect(spec.region.as_deref()).await?;
    let forget = async {
        let mut plan =
            super::fresh_plan(printer, &cloud, &spec, Mode::Apply, false, &addresses).await?;
        // Only the letting go of what was asked: the rest of the plan (the spec's own
        // `forget:` list included) is `apply`'s.
        plan.changes
            .retain(|c| c.action == Action::Forget && addresses.contains(&c.address));
        plan.local_changes.clear();
        let missing: Vec<String> = addresses
            .iter()
            .filter(|address| plan.change(address).is_none())
            .map(|address| format!("  {address}"))
            .collect();
        if !missing.is_empty() {
            bail!(
                "project `{}` does not own these, so there is nothing to let go of:\n{}\n(`tether plan` lists what it owns; a resource already let go of stays so)",
                spec.project,
                missing.join("\n")
            );
        }
        printer.status(tether::render::plan_text(&plan).trim_end());
        if !auto_approve
            && !super::confirm(
                printer,
                "Stop managing these? They stay in the account as they are.",
            )
            .await?
        {
            printer.status("Forget cancelled: nothing was changed.");
            return Ok(Exit::Error);
        }
        super::changes::run_plan(printer, &cloud, &plan, 10).await
    };
    super::with_lock(printer, &cloud, &spec.project, "forget", &lock, forget).await
}
