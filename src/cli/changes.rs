//! What the commands that change the account (`apply`, `destroy`) share: their options,
//! and applying a plan with progress drawn as it goes and a report per resource at the
//! end. Not a command: `apply` and `destroy` call it, and it calls the library.

use clap::Args;

use super::printer::Printer;
use super::Exit;
use tether::apply::{Progress, Report, StepResult};
use tether::plan::{Action, Plan};

/// Options of every command that changes the account (`apply`, `destroy`).
#[derive(Debug, Args)]
pub struct ChangeOptions {
    /// Go ahead without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many resources to change at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    #[command(flatten)]
    pub lock: super::LockOptions,
    /// Empty buckets tagged `force_destroy` that the plan deletes even without the project's
    /// record of creating them (a tag anyone may write is no proof).
    #[arg(long)]
    pub empty_tagged_buckets: bool,
}

/// Applies `plan` and prints progress and the per-resource report. Shared by `apply` and `destroy`.
pub async fn run_plan(
    printer: &Printer,
    cloud: &tether::aws::Cloud,
    plan: &Plan,
    parallelism: usize,
) -> anyhow::Result<Exit> {
    if !plan.has_changes() {
        printer.status("Nothing to apply.");
        return Ok(Exit::Success);
    }
    printer.status("");
    // On a terminal a wait is a spinner per resource, cleared when the resource is done;
    // elsewhere a line now and then.
    let live = super::progress::Live::new(printer);
    let waiting =
        std::sync::Mutex::new(std::collections::BTreeMap::<String, indicatif::ProgressBar>::new());
    let done_waiting = |address: &tether::model::Address| {
        if let Some(spinner) = waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&address.to_string())
        {
            spinner.finish_and_clear();
        }
    };
    let progress = |event: Progress<'_>| match event {
        Progress::Started { address, operation } => {
            live.status(&format!("{address}: {}...", operation.describe()));
        }
        Progress::Finished {
            address,
            action,
            elapsed,
        } => {
            done_waiting(address);
            live.status(&format!(
                "{address}: {} in {:.1}s",
                past_tense(action),
                elapsed.as_secs_f64()
            ));
        }
        Progress::Failed { address, .. } => {
            done_waiting(address);
            live.status(&format!("{address}: failed"));
        }
        Progress::Waiting {
            address,
            state,
            elapsed,
        } => {
            let mut spinners = waiting.lock().unwrap_or_else(|e| e.into_inner());
            let message = format!("still {state}");
            match spinners.get(&address.to_string()) {
                Some(spinner) => {
                    spinner.set_message(super::printer::terminal_safe(&message).into_owned());
                }
                None => match live.spinner(&address.to_string(), &message) {
                    Some(spinner) => {
                        spinners.insert(address.to_string(), spinner);
                    }
                    None => printer.status(&format!(
                        "{address}: still {state} after {}s...",
                        elapsed.as_secs()
                    )),
                },
            }
        }
    };
    let report = tether::apply::apply(
        cloud,
        plan,
        super::home().as_deref(),
        parallelism,
        &progress,
    )
    .await;
    print_report(printer, &report);
    Ok(if report.succeeded() {
        Exit::Success
    } else {
        Exit::Error
    })
}

fn past_tense(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Delete => "deleted",
        Action::Adopt => "adopted",
        Action::Forget => "let go",
        Action::NoOp => "unchanged",
    }
}

fn print_report(printer: &Printer, report: &Report) {
    let failed = report
        .results
        .iter()
        .filter(|(_, _, r)| !matches!(r, StepResult::Done))
        .count();
    let mut text = if failed == 0 {
        format!(
            "\nApply complete: {} resource(s) changed.",
            report.results.len()
        )
    } else {
        format!(
            "\nApply failed: {failed} of {} resource(s) not changed. Every step is safe to repeat: fix the cause and apply again.",
            report.results.len()
        )
    };
    for (address, action, result) in &report.results {
        let line = match result {
            StepResult::Done => format!("  ok       {address}  {}", past_tense(*action)),
            StepResult::Failed(error) => {
                let hint = error
                    .hint
                    .as_deref()
                    .map(|h| format!("\n             hint: {h}"))
                    .unwrap_or_default();
                format!("  FAILED   {address}  {error}{hint}")
            }
            StepResult::Skipped {
                because: Some(cause),
            } => format!("  skipped  {address}  ({cause} failed)"),
            StepResult::Skipped { because: None } => {
                format!("  skipped  {address}  (dependency cycle)")
            }
        };
        text.push('\n');
        text.push_str(&line);
    }
    printer.status(&text);
}
