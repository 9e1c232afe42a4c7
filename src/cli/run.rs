//! `tether run [JOB...]`: run the spec's jobs (with the jobs they run after) on this
//! machine, without planning or applying. `apply` runs them too, after a successful apply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use super::printer::Printer;
use super::progress::Live;
use super::Exit;
use tether::jobs::{Event, JobSummary, Status};
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
    pub options: JobOptions,
}

/// Options of every command that runs jobs (`run`, `apply`).
#[derive(Debug, Args)]
pub struct JobOptions {
    /// Stop a job at its first failed task (running tasks finish, no new one starts).
    #[arg(long)]
    pub fail_fast: bool,
    /// Run a failed task again, up to N times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// How long to wait for an instance's sshd to answer (a new or started instance boots
    /// for a while after EC2 reports it running).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::parse_duration)]
    pub ssh_timeout: Duration,
    /// The tether binary to copy to instances for jobs on them (a static Linux build),
    /// instead of the spec's `agent_binary` or this tether itself.
    #[arg(long, value_name = "PATH")]
    pub agent_binary: Option<PathBuf>,
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
    run_jobs(
        printer,
        &cloud,
        &spec,
        &path,
        &jobs,
        &options,
        How {
            json,
            attach_only: attach,
        },
    )
    .await
}

/// The context of jobs on instances: the spec's alias file, the project's known_hosts file
/// and a fresh set of connections.
fn remote_context<'a>(
    spec: &'a Spec,
    spec_file: &'a Path,
    config_file: &'a Path,
    agent_env: Vec<(String, String)>,
    attach_only: bool,
    ssh_timeout: Duration,
    agent_binary: Option<PathBuf>,
) -> anyhow::Result<tether::jobs::remote::Context<'a>> {
    let home = super::home();
    let known_hosts = tether::ssh::hostkeys::known_hosts_file(
        home.as_deref().unwrap_or(Path::new(".")),
        &spec.project,
    );
    Ok(tether::jobs::remote::Context {
        spec,
        spec_file,
        config_file,
        agent_env,
        home,
        attach_only,
        known_hosts,
        ssh_timeout,
        connections: tether::jobs::remote::Connections::new()
            .context("cannot make a private directory for ssh connections")?,
        agent_binary,
    })
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
    let context = remote_context(
        spec,
        Path::new(super::DEFAULT_SPEC),
        &config_file,
        Vec::new(),
        true,
        ssh_timeout,
        None,
    )?;
    let cloud = super::connect(spec.region.as_deref()).await?;
    let progress = JobProgress::new(printer);
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
    context.connections.close(&context).await;
    if lines.is_empty() {
        printer.status("No job of the spec runs on instances or on Batch.");
    } else {
        printer.data(&format!("{}\n", lines.join("\n")))?;
    }
    Ok(Exit::Success)
}

/// How `run_jobs` reports, and whether it only follows jobs already running.
#[derive(Clone, Copy, Debug, Default)]
pub struct How {
    /// Summaries as JSON on stdout.
    pub json: bool,
    /// `--attach`: start nothing, follow what runs.
    pub attach_only: bool,
}

/// Runs the named jobs (all when none) and prints progress and summaries.
pub async fn run_jobs(
    printer: &Printer,
    cloud: &tether::aws::Cloud,
    spec: &Spec,
    spec_path: &Path,
    names: &[String],
    options: &JobOptions,
    how: How,
) -> anyhow::Result<Exit> {
    let How { json, attach_only } = how;
    let JobOptions {
        fail_fast,
        retries,
        ssh_timeout,
        agent_binary,
    } = options;
    let selected = tether::jobs::selection(spec, names)?;
    if selected.is_empty() {
        printer.status("The spec declares no jobs.");
        return Ok(Exit::Success);
    }
    let base_dir = spec_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base_dir = base_dir
        .canonicalize()
        .with_context(|| format!("cannot find the spec's directory `{}`", base_dir.display()))?;
    let job_options = tether::jobs::Options {
        fail_fast: *fail_fast,
        retries: *retries,
        base_dir,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let progress = JobProgress::new(printer);
    let on_event = |event: Event<'_>| {
        super::interrupt::track(cloud, &event);
        progress.event(event);
    };
    // A job on instances gets the region and endpoint settings, never credentials: the
    // instance has its own.
    let mut agent_env = vec![("AWS_REGION".to_string(), cloud.region().to_string())];
    for name in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"] {
        if let Ok(value) = std::env::var(name) {
            agent_env.push((name.to_string(), value));
        }
    }
    let config_file = super::ssh_config_file(spec);
    // The flag wins over the spec, whose path is relative to the spec's directory.
    let agent_binary = agent_binary.clone().or_else(|| {
        spec.agent_binary
            .as_ref()
            .map(|path| job_options.base_dir.join(path))
    });
    let remote = remote_context(
        spec,
        spec_path,
        &config_file,
        agent_env,
        attach_only,
        *ssh_timeout,
        agent_binary,
    )?;
    let summaries = tether::jobs::run(
        cloud,
        spec,
        &selected,
        &job_options,
        Some(&remote),
        &on_event,
    )
    .await;
    // One connection per instance for the whole run, closed at its end.
    remote.connections.close(&remote).await;
    let summaries = summaries?;
    if json {
        let mut text = serde_json::to_string_pretty(&summaries).expect("summaries serialise");
        text.push('\n');
        printer.json(&text)?;
    }
    printer.status(&table(&summaries));
    for summary in &summaries {
        for note in &summary.notes {
            printer.status(&format!("{}: {note}", summary.job));
        }
        if !summary.stopped.is_empty() {
            printer.status(&format!(
                "{}: stopped {} (then: stop)",
                summary.job,
                summary.stopped.join(", ")
            ));
        }
    }
    Ok(if summaries.iter().all(|s| s.status == Status::Succeeded) {
        Exit::Success
    } else {
        Exit::Error
    })
}

/// Progress as jobs run: a bar per job (and a spinner per Batch job) on a terminal, a line
/// now and then otherwise.
struct JobProgress<'a> {
    live: Live<'a>,
    state: Mutex<BTreeMap<String, JobState>>,
    /// Batch jobs being followed, by job name: their spinners.
    batch: Mutex<BTreeMap<String, indicatif::ProgressBar>>,
    /// Uploads under way, by job and destination: their spinners.
    uploads: Mutex<BTreeMap<String, indicatif::ProgressBar>>,
}

struct JobState {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: usize,
    failed: usize,
    bytes: u64,
    total_bytes: u64,
    started: Instant,
    last_line: Instant,
}

impl<'a> JobProgress<'a> {
    fn new(printer: &'a Printer) -> JobProgress<'a> {
        JobProgress {
            live: Live::new(printer),
            state: Mutex::new(BTreeMap::new()),
            batch: Mutex::new(BTreeMap::new()),
            uploads: Mutex::new(BTreeMap::new()),
        }
    }

    fn event(&self, event: Event<'_>) {
        let mut state = self.state.lock().expect("progress lock");
        match event {
            Event::JobStarted { job, tasks, bytes } => {
                // The bar counts tasks (a remote job reports tasks, not bytes); the bytes
                // of the inputs and their rate are in the message.
                let bar = self.live.bar(
                    tasks as u64,
                    "{prefix:>14} [{bar:30}] {pos}/{len} tasks, {msg}, ETA {eta}",
                );
                match &bar {
                    Some(bar) => {
                        bar.set_prefix(job.to_string());
                        bar.set_message(format!("0 B of {}", human_bytes(bytes)));
                    }
                    None => self.live.status(&format!(
                        "{job}: started, {tasks} task(s), {}",
                        human_bytes(bytes)
                    )),
                }
                state.insert(
                    job.to_string(),
                    JobState {
                        bar,
                        total: tasks,
                        done: 0,
                        failed: 0,
                        bytes: 0,
                        total_bytes: bytes,
                        started: Instant::now(),
                        last_line: Instant::now(),
                    },
                );
            }
            Event::TaskFinished { job, status, bytes } => {
                let Some(job_state) = state.get_mut(job) else {
                    return;
                };
                job_state.done += 1;
                if status == Status::Failed {
                    job_state.failed += 1;
                }
                job_state.bytes += bytes;
                match &job_state.bar {
                    Some(bar) => {
                        bar.inc(1);
                        let elapsed_ms = job_state.started.elapsed().as_millis().max(1);
                        let rate = u128::from(job_state.bytes) * 1000 / elapsed_ms;
                        bar.set_message(format!(
                            "{} of {} ({}/s)",
                            human_bytes(job_state.bytes),
                            human_bytes(job_state.total_bytes),
                            human_bytes(u64::try_from(rate).unwrap_or(u64::MAX))
                        ));
                    }
                    None if job_state.last_line.elapsed() >= Duration::from_secs(2) => {
                        job_state.last_line = Instant::now();
                        self.live.status(&format!(
                            "{job}: {}/{} tasks done, {} failed",
                            job_state.done, job_state.total, job_state.failed
                        ));
                    }
                    None => {}
                }
            }
            Event::Uploading { job, to, bytes } => {
                if bytes == 0 {
                    return;
                }
                let message = format!("uploading {}", human_bytes(bytes));
                match self.live.spinner(&format!("{job} to {to}"), &message) {
                    Some(spinner) => {
                        self.uploads
                            .lock()
                            .expect("progress lock")
                            .insert(format!("{job} {to}"), spinner);
                    }
                    None => self.live.status(&format!("{job}: {message} to {to}")),
                }
            }
            Event::Uploaded { job, to } => {
                let key = format!("{job} {to}");
                if let Some(spinner) = self.uploads.lock().expect("progress lock").remove(&key) {
                    spinner.finish_and_clear();
                }
            }
            Event::BatchSubmitted { job, id } => {
                self.live.status(&format!(
                    "{job}: submitted Batch job {id} (Ctrl-C terminates it)"
                ));
            }
            Event::BatchReleased { job, .. } => {
                if let Some(spinner) = self.batch.lock().expect("progress lock").remove(job) {
                    spinner.finish_and_clear();
                }
            }
            Event::BatchNote { job, id, note } => {
                self.live.status(&format!("{job}: Batch job {id}: {note}"));
            }
            Event::BatchStatus { job, id, status } => {
                let status = status.to_lowercase();
                let mut spinners = self.batch.lock().expect("progress lock");
                match spinners.get(job) {
                    Some(spinner) => {
                        spinner.set_message(super::printer::terminal_safe(&status).into_owned());
                    }
                    None => {
                        if let Some(spinner) = self
                            .live
                            .spinner(&format!("{job}: Batch job {id}"), &status)
                        {
                            spinners.insert(job.to_string(), spinner);
                        }
                    }
                }
                // Every change is also a line: in a log it is the only trace, and on a
                // terminal it stays above the spinner as the job's history.
                self.live
                    .status(&format!("{job}: Batch job {id}: {status}"));
            }
            Event::WaitingForSsh { instance, waited } => {
                self.live.status(&format!(
                    "waiting for `{instance}` to answer ssh ({}s)",
                    waited.as_secs()
                ));
            }
            Event::Reached { instance, trust } => match trust {
                tether::ssh::reach::Trust::Recorded => {}
                tether::ssh::reach::Trust::Console => self.live.status(&format!(
                    "`{instance}`: host key verified against its console output"
                )),
                tether::ssh::reach::Trust::FirstUse => {
                    self.live.status(&super::first_use_warning(instance));
                }
            },
            Event::JobFinished { summary } => {
                if let Some(bar) = state.get(&summary.job).and_then(|s| s.bar.as_ref()) {
                    bar.finish_and_clear();
                }
                let line = match summary.status {
                    Status::Succeeded => format!(
                        "{}: succeeded in {:.2}s",
                        summary.job,
                        summary.duration_ms as f64 / 1000.0
                    ),
                    Status::Failed => format!("{}: failed", summary.job),
                    Status::Skipped => format!(
                        "{}: skipped ({})",
                        summary.job,
                        summary.error.as_deref().unwrap_or("not run")
                    ),
                };
                self.live.status(&line);
            }
        }
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The jobs' results as a table, then each failed task with its error.
fn table(summaries: &[JobSummary]) -> String {
    let mut lines = vec![format!(
        "\n{:<20} {:<10} {:>6} {:>7} {:>10} {:>9}  result",
        "job", "status", "tasks", "failed", "input", "time"
    )];
    for summary in summaries {
        let status = match summary.status {
            Status::Succeeded => "ok",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        };
        let failed = summary
            .tasks
            .iter()
            .filter(|t| t.status == Status::Failed)
            .count();
        let result = match (summary.total, &summary.output) {
            (Some(total), Some(output)) => format!("{total} {} -> {output}", unit_of(summary)),
            (Some(total), None) => format!("{total} {}", unit_of(summary)),
            (None, Some(output)) => format!("-> {output}"),
            (None, None) => String::new(),
        };
        lines.push(format!(
            "{:<20} {:<10} {:>6} {:>7} {:>10} {:>8.2}s  {result}",
            summary.job,
            status,
            summary.tasks.len(),
            failed,
            human_bytes(summary.bytes),
            summary.duration_ms as f64 / 1000.0
        ));
    }
    for summary in summaries {
        if let Some(error) = &summary.error {
            lines.push(format!("\n{}: {error}", summary.job));
        }
        for task in summary.tasks.iter().filter(|t| t.status == Status::Failed) {
            lines.push(format!(
                "\n{}: task {} failed after {} attempt(s): {}",
                summary.job,
                task.input,
                task.attempts,
                task.error.as_deref().unwrap_or("unknown error")
            ));
        }
    }
    lines.join("\n")
}

fn unit_of(summary: &JobSummary) -> &'static str {
    match summary.kind.as_str() {
        "word_count" => "words",
        "line_count" => "lines",
        _ => "bytes",
    }
}
