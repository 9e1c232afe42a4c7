//! `tether plan`: read the account, diff it against the spec, print what would change.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::printer::Printer;
use super::Exit;
use tether::plan::Mode;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print the plan as JSON on stdout (format_version 1), and nothing else there.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when the account would not change, 2 when it would, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan to FILE, for `tether apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Empty buckets tagged `force_destroy` that the plan deletes even without the project's
    /// record of creating them (a tag anyone may write is no proof).
    #[arg(long)]
    pub empty_tagged_buckets: bool,
}

pub async fn exec(args: PlanArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let PlanArgs {
        file,
        json,
        detailed_exitcode,
        out,
        empty_tagged_buckets,
    } = args;
    let spec = super::load_spec(&super::spec_path(file))?;
    let cloud = super::connect(spec.region.as_deref()).await?;
    let plan = super::fresh_plan(
        printer,
        &cloud,
        &spec,
        Mode::Apply,
        empty_tagged_buckets,
        &[],
    )
    .await?;
    let costs = super::plan_costs(printer, &plan)?;
    if json {
        printer.json(&super::plan_json(&plan, costs.clone()))?;
    } else {
        printer.status(tether::render::plan_text(&plan).trim_end());
        if let Some(costs) = &costs {
            printer.status(&format!(
                "\n{}",
                tether::render::costs_text(costs).trim_end()
            ));
        }
        if let Some(warning) = over_budget(&spec, costs.as_ref()) {
            printer.status(&warning);
        }
        if !spec.jobs.is_empty() {
            printer.status(&jobs_text(&spec));
        }
        super::note_unheld_copies(printer, &spec);
    }
    if let Some(out) = out {
        std::fs::write(&out, super::plan_json(&plan, costs))
            .with_context(|| format!("cannot write the plan to `{}`", out.display()))?;
        printer.status(&format!(
            "\nSaved the plan to {}. Apply exactly this plan with: tether apply {}",
            out.display(),
            out.display()
        ));
        if plan.has_local_changes() {
            printer.status(
                "The saved plan holds the account's changes only; `tether apply` with the spec also updates this machine's SSH aliases.",
            );
        }
    }
    // Changes only to this machine's files (SSH aliases) are no change to the account.
    Ok(if detailed_exitcode && plan.has_account_changes() {
        Exit::Changes
    } else {
        Exit::Success
    })
}

/// The jobs `apply` runs after it, in order, one line each.
pub fn jobs_text(spec: &tether::spec::Spec) -> String {
    let selected = tether::jobs::selection(spec, &[]).unwrap_or_default();
    let order = tether::jobs::order(spec, &selected);
    let mut text = String::from(
        "\nAfter applying, these jobs run (`--no-jobs` skips them, `tether run` runs them alone):",
    );
    for name in order {
        text.push_str(&format!(
            "\n  {}",
            tether::jobs::describe(&spec.jobs[&name])
        ));
    }
    text
}

/// A warning when the lab as planned costs more a month than the spec's budget allows, its
/// instances, disks and Elastic IPs alone.
fn over_budget(
    spec: &tether::spec::Spec,
    costs: Option<&tether::pricing::Costs>,
) -> Option<String> {
    let budget = spec.budget.as_ref()?;
    let monthly = costs?.monthly()?;
    (monthly > budget.monthly).then(|| {
        format!(
            "warning: the lab as planned costs about ${monthly:.2} a month (its instances running all month, disks and Elastic IPs alone), over the budget's ${} (`budget` at {}:{})",
            budget.monthly_usd, budget.location.file, budget.location.line
        )
    })
}
