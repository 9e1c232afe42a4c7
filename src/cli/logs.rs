//! `tether logs JOB`: what a job's tasks wrote. A local job's failed tasks' stderr from this
//! machine; a job on instances: the agent's log and the tasks' logs on each instance, over
//! ssh; a Batch job: its children's CloudWatch Logs streams, in time order. `--follow`
//! keeps reading until the job ends.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use super::printer::Printer;
use super::Exit;
use tether::jobs::logs::{Follow, Line};
use tether::jobs::Event;
use tether::spec::Placement;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The job whose logs to show.
    #[arg(value_name = "JOB")]
    pub job: String,
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Keep reading while the job runs, and end when it ends.
    #[arg(long)]
    pub follow: bool,
    /// Only this task's log (the input it ran on, as the run's summary names it).
    #[arg(long, value_name = "NAME")]
    pub task: Option<String>,
    /// Only this Batch child's log (its array index).
    #[arg(long, value_name = "INDEX")]
    pub child: Option<i32>,
    /// Each line as a JSON object (`source`, `text`) on its own line.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for an instance's sshd to answer.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = super::parse_duration)]
    pub ssh_timeout: Duration,
}

/// How often a followed log is read: every two seconds on this machine and on instances,
/// every five on Batch (CloudWatch Logs' own delay is longer than that).
fn poll_every(batch: bool) -> Duration {
    // Tests follow jobs faster (debug builds only, as every test hook).
    let test = cfg!(debug_assertions)
        .then(|| std::env::var("TETHER_TEST_LOGS_POLL_MS").ok())
        .flatten()
        .and_then(|v| v.parse().ok());
    if let Some(ms) = test {
        return Duration::from_millis(ms);
    }
    Duration::from_secs(if batch { 5 } else { 2 })
}

pub async fn exec(args: LogsArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let LogsArgs {
        job,
        file,
        follow,
        task,
        child,
        json,
        ssh_timeout,
    } = args;
    let path = super::spec_path(file);
    let spec = super::load_spec(&path)?;
    let Some(job_spec) = spec.jobs.get(&job) else {
        bail!("the spec has no job named `{job}`");
    };
    let mut printed = 0usize;
    let mut failure: Option<std::io::Error> = None;
    let mut sink = |line: Line| {
        if failure.is_some() {
            return;
        }
        printed += 1;
        let text = if json {
            let mut text =
                serde_json::json!({"source": line.source, "text": line.text}).to_string();
            text.push('\n');
            printer.json(&text)
        } else {
            printer.data(&format!(
                "[{}] {}\n",
                tether::render::one_line(&line.source),
                tether::render::one_line(&line.text)
            ))
        };
        if let Err(error) = text {
            failure = Some(error);
        }
    };
    if child.is_some() && !matches!(job_spec.placement, Placement::Batch(_)) {
        bail!("job `{job}` does not run on Batch: --child names a Batch child");
    }
    match &job_spec.placement {
        Placement::Here => {
            let Some(home) = super::home() else {
                bail!("HOME is not set, so there is no log directory to read");
            };
            let root = tether::jobs::logs::local_root(&home, &spec.project);
            let dir = tether::jobs::logs::job_dir(&root, &job);
            let how = Follow {
                follow,
                every: poll_every(false),
            };
            let found = tether::jobs::logs::local(&dir, task.as_deref(), how, &mut sink)
                .await
                .with_context(|| format!("cannot read the logs in `{}`", dir.display()))?;
            if !found {
                printer.status(&format!(
                    "Job `{job}` has no logs on this machine: it has not run here (a local job's logs stay where it ran, in {})",
                    dir.display()
                ));
                return Ok(Exit::Success);
            }
        }
        Placement::Instances(remote) => {
            let cloud = super::connect(spec.region.as_deref()).await?;
            let config_file = super::ssh_config_file(&spec);
            let context = super::reading_context(&spec, &config_file, cloud.region(), ssh_timeout)?;
            let progress = super::jobs::JobProgress::new(printer);
            let on_event = |event: Event<'_>| progress.event(event);
            let mut reached = Vec::new();
            let mut failed = Vec::new();
            for instance in &remote.run_on {
                match tether::jobs::remote::reach_instance(&context, &cloud, instance, &on_event)
                    .await
                {
                    Ok(()) => reached.push(instance.clone()),
                    Err(error) => failed.push((instance.clone(), error.to_string())),
                }
            }
            let how = Follow {
                follow,
                every: poll_every(false),
            };
            let unread = tether::jobs::logs::instances(
                &context,
                job_spec,
                &reached,
                task.as_deref(),
                how,
                &mut sink,
            )
            .await;
            context.close_connections().await;
            failed.extend(unread.into_iter().map(|(i, e)| (i, e.to_string())));
            for (instance, error) in &failed {
                printer.status(&format!(
                    "cannot read the logs of `{job}` on {instance}: {}",
                    tether::render::one_line(error)
                ));
            }
            if !failed.is_empty() {
                return Ok(Exit::Error);
            }
        }
        Placement::Batch(batch) => {
            let cloud = super::connect(spec.region.as_deref()).await?;
            let how = Follow {
                follow,
                every: poll_every(true),
            };
            let id = tether::jobs::logs::batch(
                &cloud,
                &spec.project,
                job_spec,
                batch,
                (child, task.as_deref()),
                how,
                &mut sink,
            )
            .await
            .with_context(|| format!("cannot read the logs of Batch job `{job}`"))?;
            if id.is_none() {
                printer.status(&format!(
                    "Job `{job}` was never submitted to Batch queue {}: it has no logs",
                    batch.queue
                ));
                return Ok(Exit::Success);
            }
        }
    }
    if let Some(error) = failure {
        return Err(error.into());
    }
    if printed == 0 {
        let why = match job_spec.placement {
            Placement::Batch(_) => "CloudWatch Logs holds no line of its children yet",
            Placement::Here => {
                "its last run's tasks succeeded (a task that succeeds takes its log with it)"
            }
            Placement::Instances(_) => {
                "its last run's tasks succeeded (a task that succeeds takes its log with it), or it has not run there"
            }
        };
        printer.status(&format!(
            "Job `{job}` has no log lines{}: {why}",
            task.map(|t| format!(" for task `{}`", tether::render::one_line(&t)))
                .unwrap_or_default()
        ));
    }
    Ok(Exit::Success)
}
