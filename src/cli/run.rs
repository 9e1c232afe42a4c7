//! `tether run [JOB...]`: run the spec's jobs (with the jobs they run after) on this
//! machine, without planning or applying. `apply` runs them too, after a successful apply.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::printer::Printer;
use super::Exit;
use tether::jobs::Event;
use tether::spec::Spec;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Jobs to run, each with the jobs it runs after; all jobs when none is named.
    #[arg(value_name = "JOB")]
    pub jobs: Vec<String>,
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print the jobs' summaries as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Follow jobs already running on their instances (after a dropped connection, or from
    /// another machine) until they end; start nothing.
    #[arg(long)]
    pub attach: bool,
    /// List the jobs on instances and what their sessions are doing; run nothing.
    #[arg(long, conflicts_with = "attach")]
    pub status: bool,
    #[command(flatten)]
    pub options: super::jobs::JobOptions,
}

pub async fn exec(args: RunArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let RunArgs {
        jobs,
        file,
        json,
        attach,
        status,
        options,
    } = args;
    let path = super::spec_path(file);
    let spec = super::load_spec(&path)?;
    if status {
        return show_status(printer, &spec, &jobs, options.ssh_timeout).await;
    }
    let selected = tether::jobs::selection(&spec, &jobs)?;
    let cloud = if selected.iter().any(|name| spec.jobs[name].needs_aws()) {
        super::connect(spec.region.as_deref()).await?
    } else {
        // Jobs over local files make no AWS call: they run without any AWS configuration
        // (no region, credentials or endpoint). The client exists, unused; credentials are
        // only ever looked for when a call is made.
        super::connect(Some(spec.region.as_deref().unwrap_or(LOCAL_ONLY_REGION))).await?
    };
    super::jobs::run_jobs(
        printer,
        &cloud,
        &spec,
        &path,
        &jobs,
        &options,
        super::jobs::How {
            json,
            attach_only: attach,
        },
    )
    .await
}

/// The region a client for local-only jobs is made with; it never calls AWS.
const LOCAL_ONLY_REGION: &str = "us-east-1";

/// `--status`: each remote job's session on each of its instances.
async fn show_status(
    printer: &Printer,
    spec: &Spec,
    names: &[String],
    ssh_timeout: Duration,
) -> anyhow::Result<Exit> {
    let selected = tether::jobs::selection(spec, names)?;
    let config_file = super::ssh_config_file(spec);
    let cloud = super::connect(spec.region.as_deref()).await?;
    let context = super::reading_context(spec, &config_file, cloud.region(), ssh_timeout)?;
    let progress = super::jobs::JobProgress::new(printer);
    let on_event = |event: Event<'_>| progress.event(event);
    let mut lines = Vec::new();
    for name in &selected {
        let job = &spec.jobs[name];
        let remote = match &job.placement {
            tether::spec::Placement::Here => continue,
            tether::spec::Placement::Batch(batch) => {
                lines.push(
                    match tether::jobs::batch::status_line(&cloud, &spec.project, job, batch).await
                    {
                        Ok(line) => line,
                        Err(error) => format!("{name} on Batch: cannot tell ({error})"),
                    },
                );
                continue;
            }
            tether::spec::Placement::Instances(remote) => remote,
        };
        for instance in &remote.run_on {
            let reached =
                tether::jobs::remote::reach_instance(&context, &cloud, instance, &on_event).await;
            let status = match reached {
                Ok(()) => tether::jobs::remote::session_status(&context, job, instance)
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            let line = match status {
                Err(error) => format!("{name} on {instance}: cannot tell ({error})"),
                Ok((alive, status)) => {
                    let progress = status
                        .as_ref()
                        .map(|s| format!("{}/{} tasks done, {} failed", s.done, s.total, s.failed));
                    let ended = status
                        .as_ref()
                        .and_then(|s| s.summary.as_ref())
                        .map(|s| format!("{:?}", s.status).to_lowercase());
                    match (alive, ended, progress) {
                        (true, _, Some(progress)) => {
                            format!("{name} on {instance}: running, {progress}")
                        }
                        (true, _, None) => format!("{name} on {instance}: starting"),
                        (false, Some(ended), Some(progress)) => {
                            format!("{name} on {instance}: ended, {ended} ({progress})")
                        }
                        (false, _, _) => format!("{name} on {instance}: not running"),
                    }
                }
            };
            lines.push(line);
        }
    }
    context.close_connections().await;
    if lines.is_empty() {
        printer.status("No job of the spec runs on instances or on Batch.");
    } else {
        printer.data(&format!("{}\n", lines.join("\n")))?;
    }
    Ok(Exit::Success)
}
