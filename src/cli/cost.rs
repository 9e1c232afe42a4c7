//! `tether cost`: what the project has cost in a month, by day and by service, from Cost
//! Explorer (resources tagged with the project), AWS's forecast for the rest of the month,
//! and what the plan's price table predicts for the same days. Read-only.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::printer::Printer;
use super::Exit;
use tether::cost::{Answers, Period};
use tether::model::TAG_PROJECT;
use tether::plan::Mode;

/// Columns of the chart's longest bar.
const CHART_WIDTH: usize = 30;

#[derive(Debug, Args)]
pub struct CostArgs {
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The month to report, YYYY-MM (this month, in UTC, when not given).
    #[arg(long, value_name = "YYYY-MM")]
    pub month: Option<String>,
    /// Print the report as JSON on stdout (format_version 1), and nothing else there.
    #[arg(long)]
    pub json: bool,
}

/// Asks Cost Explorer about `period` for `project`: the daily figures (an error stops the
/// report), the tag's status and the forecast (each a note when it cannot be asked).
async fn ask(
    printer: &Printer,
    cloud: &tether::aws::Cloud,
    project: &str,
    period: &Period,
) -> anyhow::Result<Answers> {
    let tag = (TAG_PROJECT, project);
    let (start, end) = (period.start.to_string(), period.end.to_string());
    let forecast = async {
        match period.forecast {
            Some((from, to)) => Some(
                cloud
                    .cost_forecast(tag, &from.to_string(), &to.to_string())
                    .await,
            ),
            None => None,
        }
    };
    let (days, status, forecast) = tokio::join!(
        cloud.daily_costs(tag, &start, &end),
        cloud.cost_tag_status(TAG_PROJECT),
        forecast
    );
    let days = days.context("cannot read the project's costs from Cost Explorer")?;
    let tag_status = match status {
        Ok(status) => Some(status),
        Err(error) => {
            printer.status(&format!(
                "warning: cannot ask whether `{TAG_PROJECT}` is a cost allocation tag: {error}"
            ));
            None
        }
    };
    let forecast = match forecast {
        None => None,
        Some(Ok(amount)) => Some(amount),
        Some(Err(error)) => {
            printer.status(&format!(
                "warning: no forecast for the rest of the month: {error}"
            ));
            None
        }
    };
    Ok(Answers {
        tag_status,
        days,
        forecast,
    })
}

pub async fn exec(args: CostArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let CostArgs { file, month, json } = args;
    let month = month
        .as_deref()
        .map(tether::cost::parse_month)
        .transpose()?;
    let period = tether::cost::period(month, super::today()?)?;
    let spec = super::load_spec(&super::spec_path(file))?;
    let cloud = super::connect(spec.region.as_deref()).await?;
    let (answers, plan) = tokio::join!(
        ask(printer, &cloud, &spec.project, &period),
        super::fresh_plan(printer, &cloud, &spec, Mode::Apply, false, &[])
    );
    let answers = answers?;
    // The prediction is for the lab as planned; without a plan there is none, not an error.
    let predicted = match plan {
        Ok(plan) => super::plan_costs(printer, &plan)?.and_then(|costs| {
            let per_day = costs.per_day()?;
            let sources: Vec<&str> = costs
                .price_sources
                .iter()
                .map(|origin| origin.source.as_str())
                .collect();
            Some((per_day, costs.prices_as_of, sources.join(" and ")))
        }),
        Err(error) => {
            printer.status(&format!(
                "warning: no prediction from the price table: the lab cannot be planned: {error:#}"
            ));
            None
        }
    };
    let budget = spec.budget.as_ref().map(|b| b.monthly_usd.as_str());
    let report = tether::cost::report(&spec.project, &period, &answers, predicted, budget)?;
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["format_version"] = serde_json::json!(1);
        printer.json(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
    } else {
        let chart = std::io::stdout().is_terminal().then_some(CHART_WIDTH);
        printer.data(&tether::render::cost_text(&report, chart))?;
    }
    Ok(Exit::Success)
}
