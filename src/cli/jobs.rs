//! What the commands that run jobs (`run`, `apply`) share: their options, running the
//! selected jobs with progress drawn as they go, and the table of summaries at the end.
//! Not a command: `run` and `apply` call it, and it calls the library.

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

/// Options of every command that runs jobs (`run`, `apply`).
#[derive(Debug, Args)]
pub struct JobOptions {
    /// Stop a job at its first failed task (running tasks finish, no new one starts).
    #[arg(long)]
    pub fail_fast: bool,
    /// Run a failed task again, up to N times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// Skip the tasks whose output is already in S3, written by this job's command from
    /// the same version of its input (a record on the object says so); run the rest.
    #[arg(long)]
    pub resume: bool,
    /// How long to wait for an instance's sshd to answer (a new or started instance boots
    /// for a while after EC2 reports it running).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::parse_duration)]
    pub ssh_timeout: Duration,
    /// The tether binary to copy to instances for jobs on them (the wheel's, built for
    /// glibc 2.17, runs on every image), instead of the spec's `agent_binary` or this
    /// tether itself.
    #[arg(long, value_name = "PATH", env = "TETHER_AGENT_BINARY")]
    pub agent_binary: Option<PathBuf>,
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
        resume,
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
        resume: *resume,
        logs: super::home().map(|home| tether::jobs::logs::local_root(&home, &spec.project)),
        echo_failed: false,
        base_dir,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let progress = JobProgress::new(printer);
    let on_event = |event: Event<'_>| {
        super::interrupt::track(cloud, &event);
        progress.event(event);
    };
    let config_file = super::ssh_config_file(spec);
    // The flag wins over the spec, whose path is relative to the spec's directory.
    let agent_binary = agent_binary.clone().or_else(|| {
        spec.agent_binary
            .as_ref()
            .map(|path| job_options.base_dir.join(path))
    });
    let remote = tether::jobs::remote::Context::new(
        tether::jobs::remote::Setup {
            spec,
            spec_file: spec_path,
            config_file: &config_file,
            home: super::home(),
            attach_only,
            ssh_timeout: *ssh_timeout,
            agent_binary,
        },
        cloud.region(),
    )
    .context("cannot make a private directory for ssh connections")?;
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
    remote.close_connections().await;
    let summaries = summaries?;
    if json {
        let mut text = serde_json::to_string_pretty(&summaries).expect("summaries serialise");
        text.push('\n');
        printer.json(&text)?;
    }
    printer.status(&table(&summaries, &log_command(spec_path)));
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
pub(super) struct JobProgress<'a> {
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
    pub(super) fn new(printer: &'a Printer) -> JobProgress<'a> {
        JobProgress {
            live: Live::new(printer),
            state: Mutex::new(BTreeMap::new()),
            batch: Mutex::new(BTreeMap::new()),
            uploads: Mutex::new(BTreeMap::new()),
        }
    }

    pub(super) fn event(&self, event: Event<'_>) {
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
                let resumed = summary.tasks.iter().filter(|t| t.resumed).count();
                let resumed = match resumed {
                    0 => String::new(),
                    n => format!(
                        " ({n} of {} task(s) resumed: done before)",
                        summary.tasks.len()
                    ),
                };
                let line = match summary.status {
                    Status::Succeeded => format!(
                        "{}: succeeded in {:.2}s{resumed}",
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

/// `tether logs` as the operator would type it for this spec (`-f` when it is not the
/// default), waiting for the job and its options.
fn log_command(spec_path: &Path) -> String {
    if spec_path == Path::new(super::DEFAULT_SPEC) {
        "tether logs".to_string()
    } else {
        format!(
            "tether logs -f {}",
            tether::render::shell_word(&spec_path.display().to_string())
        )
    }
}

/// The jobs' results as a table, then each failed task with its error and the command that
/// shows its whole log.
fn table(summaries: &[JobSummary], log_command: &str) -> String {
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
        let resumed = summary.tasks.iter().filter(|t| t.resumed).count();
        if resumed > 0 {
            lines.push(format!(
                "\n{}: {resumed} task(s) resumed: their outputs were there, made by this command from the same inputs",
                summary.job
            ));
        }
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
            // A command's task that ran (not one whose input could not be read) has a log.
            if summary.kind == "command" && task.attempts > 0 {
                lines.push(format!(
                    "  whole log: {log_command} {} --task {}",
                    tether::render::shell_word(&summary.job),
                    tether::render::shell_word(&task.input)
                ));
            }
        }
        if summary.status == Status::Failed
            && summary.kind == "command"
            && !summary.tasks.iter().any(|t| t.status == Status::Failed)
            && summary.error.is_some()
        {
            lines.push(format!(
                "  logs: {log_command} {}",
                tether::render::shell_word(&summary.job)
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
