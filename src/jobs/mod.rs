//! The job runner: runs the spec's data jobs on this machine, in `after` order.
//!
//! Before any job starts, every selected job is checked against the world: its buckets
//! exist (declared in the spec or present in the account), and its inputs match something
//! (unless `allow_empty`). Jobs that wait for others resolve their inputs when they start,
//! since those may be what the earlier jobs write. Then the jobs run one at a time through
//! the same coordinator that applies plans (a job already uses every core); a failed job
//! skips the jobs that wait for it.
//!
//! Within a job, [`builtin`] counts in-process on a rayon pool (local files, read in cache-sized blocks)
//! or as S3 bodies stream in; [`command`] runs one child process per input with bounded
//! parallelism. Each job ends with a [`JobSummary`], the JSON document written to the job's
//! `output` when that names one file.

pub mod batch;
mod builtin;
mod command;
pub mod count;
mod inputs;
pub mod logs;

pub mod remote;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::aws::{AwsError, Cloud};
use crate::coordinator::{self, Outcome};
use crate::diagnostic::Diagnostic;
use crate::spec::{Builtin, JobSpec, Output, Placement, Spec, Work};
pub use inputs::{Input, Source};

/// How jobs run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Stop a job at its first failed task (the tasks running finish; no new ones start).
    pub fail_fast: bool,
    /// Run a failed task again up to this many times.
    pub retries: u32,
    /// Relative paths in the spec (globs, local outputs) start here: the spec's directory.
    pub base_dir: PathBuf,
    /// Cores to use; the machine's count by default.
    pub cores: usize,
    /// Skip the tasks whose output this job's definition already wrote from the same
    /// input (`--resume`).
    pub resume: bool,
    /// Where command jobs keep their tasks' logs, a directory per job ([`logs`]); `None`:
    /// nowhere after the run.
    pub logs: Option<PathBuf>,
    /// Write a failed task's whole log to this process's stderr too (a Batch child, whose
    /// stderr goes to CloudWatch Logs).
    pub echo_failed: bool,
}

/// Why jobs could not start at all.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Jobs asked for by name that the spec does not have.
    #[error("no job named {}", .0.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))]
    UnknownJobs(Vec<String>),
    /// Checks against the world failed; nothing ran.
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n\nerror: "))]
    Preflight(Vec<Diagnostic>),
    /// Reading the account to check the jobs failed.
    #[error("cannot check the jobs' buckets and inputs")]
    Aws(#[source] AwsError),
}

/// Why a job could not run its tasks at all (a task's own failure is in its summary).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The threads that count local files could not start.
    #[error("cannot start the counting threads: {0}")]
    Threads(#[source] rayon::ThreadPoolBuildError),
    /// The job's working directory (for downloads and outputs) could not be made.
    #[error("cannot make a working directory: {0}")]
    WorkDir(#[source] std::io::Error),
    /// The job's log directory could not be made or written.
    #[error("cannot write the tasks' logs: {0}")]
    Logs(#[source] std::io::Error),
}

/// How a job or task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Failed,
    /// Not run: a job it waits for failed, or `--fail-fast` stopped the job first.
    Skipped,
}

/// The result of one job: its JSON summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    pub job: String,
    pub status: Status,
    /// `word_count`, `line_count`, `byte_count`, or `command`.
    pub kind: String,
    pub duration_ms: u64,
    /// Input bytes processed.
    pub bytes: u64,
    /// For builtins: the count over all inputs (`words`, `lines` or `bytes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    pub tasks: Vec<TaskSummary>,
    /// Where the results went (the summary, or the task outputs' prefix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why the job failed as a whole (not a task's failure), or why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The instances it ran on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
    /// The instances stopped after it (`then: stop`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<String>,
    /// What else happened (an instance's share run again elsewhere).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// A builtin job's record of what it counted (`job_record`), kept with the stored
    /// summary of a run that succeeded; not part of the summary itself.
    #[serde(skip)]
    pub record: Option<String>,
}

impl JobSummary {
    /// The summary of `job` before any task: no counts, no results yet. The instances are
    /// those it runs on.
    fn of(job: &JobSpec, status: Status, error: Option<String>) -> JobSummary {
        JobSummary {
            job: job.name.clone(),
            status,
            kind: kind_of(job),
            duration_ms: 0,
            bytes: 0,
            total: None,
            tasks: Vec::new(),
            output: None,
            error,
            instances: match &job.placement {
                Placement::Instances(remote) => remote.run_on.clone(),
                Placement::Here | Placement::Batch(_) => Vec::new(),
            },
            stopped: Vec::new(),
            notes: Vec::new(),
            record: None,
        }
    }
}

/// One task: one input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub input: String,
    pub status: Status,
    pub duration_ms: u64,
    pub bytes: u64,
    /// A builtin's count for this input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Runs of the task, retries included.
    pub attempts: u32,
    /// Where its `{output}` went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// What went wrong: the last lines of stderr, or the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Not run: `--resume` found its output, written by this job's definition from this
    /// input.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

/// Progress of the jobs, for the printer.
#[derive(Debug)]
pub enum Event<'a> {
    JobStarted {
        job: &'a str,
        tasks: usize,
        bytes: u64,
    },
    TaskFinished {
        job: &'a str,
        status: Status,
        bytes: u64,
    },
    JobFinished {
        summary: &'a JobSummary,
    },
    /// The preflight waits for an instance's sshd to answer.
    WaitingForSsh {
        instance: &'a str,
        waited: std::time::Duration,
    },
    /// Files go to an instance or a bucket before a job starts there (tether's own build,
    /// the job's `upload` files): `bytes` in all.
    Uploading {
        job: &'a str,
        to: &'a str,
        bytes: u64,
    },
    /// The uploads announced by `Uploading` are done.
    Uploaded {
        job: &'a str,
        to: &'a str,
    },
    /// This run submitted a Batch job; until `BatchReleased`, stopping the run early should
    /// terminate it (nothing else will: Batch keeps a job after its submitter is gone).
    BatchSubmitted {
        job: &'a str,
        id: &'a str,
    },
    /// The run is done with a Batch job it follows: the job ended (`SUCCEEDED` or
    /// `FAILED`), or it is left queued on purpose (it cannot start as things stand); from
    /// here on, stopping the run early does not concern it.
    BatchReleased {
        job: &'a str,
        id: &'a str,
    },
    /// Something the operator should know about a Batch job that is not a status change.
    BatchNote {
        job: &'a str,
        id: &'a str,
        note: &'a str,
    },
    /// A Batch job's status changed: `RUNNING: 3 running, 5 succeeded`.
    BatchStatus {
        job: &'a str,
        id: &'a str,
        status: &'a str,
    },
    /// An instance answered ssh and its host key is verified (or, for `FirstUse`, trusted
    /// because nothing could verify it).
    Reached {
        instance: &'a str,
        trust: crate::ssh::reach::Trust,
    },
}

/// Called with each event; must be cheap (it runs on the workers' threads).
pub type OnEvent<'a> = &'a (dyn Fn(Event<'_>) + Sync);

/// The jobs to run for `names` (all when empty), with everything they wait for.
pub fn selection(spec: &Spec, names: &[String]) -> Result<BTreeSet<String>, JobError> {
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !spec.jobs.contains_key(*n))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(JobError::UnknownJobs(unknown));
    }
    let mut selected = BTreeSet::new();
    let mut queue: Vec<String> = if names.is_empty() {
        spec.jobs.keys().cloned().collect()
    } else {
        names.to_vec()
    };
    while let Some(name) = queue.pop() {
        if selected.insert(name.clone()) {
            queue.extend(spec.jobs[&name].after.iter().cloned());
        }
    }
    Ok(selected)
}

/// The selected jobs in an order they can run in: each after the jobs it runs `after`,
/// ties by name.
pub fn order(spec: &Spec, selected: &BTreeSet<String>) -> Vec<String> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < selected.len() {
        let ready = selected.iter().find(|name| {
            !done.contains(name.as_str())
                && spec.jobs[*name]
                    .after
                    .iter()
                    .all(|after| done.contains(after.as_str()) || !selected.contains(after))
        });
        // The spec has no cycles; should one slip through, list the rest by name.
        let Some(next) = ready.or_else(|| selected.iter().find(|n| !done.contains(n.as_str())))
        else {
            break;
        };
        done.insert(next);
        order.push(next.clone());
    }
    order
}

/// A one-line description of a job, for plans and progress.
pub fn describe(job: &JobSpec) -> String {
    let what = match &job.work {
        Work::Builtin(builtin) => format!("builtin {}", builtin.as_str()),
        Work::Command { template, .. } => format!("`{template}`"),
    };
    let inputs = match &job.inputs {
        Some(crate::spec::Inputs::S3 { bucket, prefix }) => format!(" over s3://{bucket}/{prefix}"),
        Some(crate::spec::Inputs::Glob(glob)) => format!(" over {glob}"),
        None => String::new(),
    };
    let after = if job.after.is_empty() {
        String::new()
    } else {
        format!(", after {}", job.after.join(", "))
    };
    format!("{}: {what}{inputs}{after}", job.name)
}

/// Runs the selected jobs. Returns one summary per job, in name order; an `Err` means
/// nothing ran.
pub async fn run(
    cloud: &Cloud,
    spec: &Spec,
    selected: &BTreeSet<String>,
    options: &Options,
    remote: Option<&remote::Context<'_>>,
    on_event: OnEvent<'_>,
) -> Result<Vec<JobSummary>, JobError> {
    let jobs: Vec<&JobSpec> = selected.iter().map(|name| &spec.jobs[name]).collect();
    if let Some(context) = remote {
        let problems = remote::preflight(context, cloud, &jobs, on_event)
            .await
            .map_err(JobError::Aws)?;
        if !problems.is_empty() {
            return Err(JobError::Preflight(problems));
        }
    }
    let mut resolved = preflight(cloud, spec, &jobs, options).await?;
    let graph: Vec<(String, Vec<String>)> = jobs
        .iter()
        .map(|job| (job.name.clone(), job.after.clone()))
        .collect();
    let summaries = std::sync::Mutex::new(BTreeMap::new());
    let resolved_inputs = std::sync::Mutex::new(std::mem::take(&mut resolved));
    let outcomes = coordinator::run(graph, 1, |name: String| {
        let job = &spec.jobs[&name];
        let ready = resolved_inputs.lock().expect("inputs lock").remove(&name);
        let summaries = &summaries;
        async move {
            let summary = run_job(cloud, job, ready, options, remote, on_event).await;
            on_event(Event::JobFinished { summary: &summary });
            let failed = summary.status != Status::Succeeded;
            summaries
                .lock()
                .expect("summaries lock")
                .insert(name.clone(), summary);
            if failed {
                Err(())
            } else {
                Ok(())
            }
        }
    })
    .await;
    let mut summaries = summaries.into_inner().expect("summaries lock");
    for (name, outcome) in outcomes {
        if let Outcome::Skipped { because } = outcome {
            let error = match because {
                Some(job) => format!("job `{job}`, which it runs after, did not succeed"),
                None => "it is part of an `after` cycle".to_string(),
            };
            // A job that did not run ran on no instance.
            let summary = JobSummary {
                instances: Vec::new(),
                ..JobSummary::of(&spec.jobs[&name], Status::Skipped, Some(error))
            };
            on_event(Event::JobFinished { summary: &summary });
            summaries.insert(name, summary);
        }
    }
    // `then: stop`: once every job on them has ended, whatever the outcome.
    let stops_after = |summary: &JobSummary| {
        summary.status != Status::Skipped
            && matches!(&spec.jobs[&summary.job].placement, Placement::Instances(r) if r.then_stop)
    };
    let to_stop: BTreeSet<String> = summaries
        .values()
        .filter(|s| stops_after(s))
        .flat_map(|s| s.instances.iter().cloned())
        .collect();
    if !to_stop.is_empty() {
        let instances: Vec<String> = to_stop.into_iter().collect();
        let (stopped, failure) = stop_instances(cloud, &spec.project, &instances).await;
        for summary in summaries.values_mut().filter(|s| stops_after(s)) {
            summary.stopped = summary
                .instances
                .iter()
                .filter(|i| stopped.contains(i))
                .cloned()
                .collect();
            if failure.is_some() {
                summary.status = Status::Failed;
                summary.error = failure.clone();
            }
            // The stored summary says so too.
            if let Err(error) =
                write_summary(cloud, &spec.jobs[&summary.job], summary, options).await
            {
                summary.status = Status::Failed;
                summary.error = Some(format!("cannot write the summary: {error}"));
            }
        }
    }
    Ok(summaries.into_values().collect())
}

fn kind_of(job: &JobSpec) -> String {
    match &job.work {
        Work::Builtin(builtin) => builtin.as_str().to_string(),
        Work::Command { .. } => "command".to_string(),
    }
}

/// Checks buckets and resolves the inputs of jobs that wait for no other job. Every
/// problem is reported at once, at the spec's line.
async fn preflight(
    cloud: &Cloud,
    spec: &Spec,
    jobs: &[&JobSpec],
    options: &Options,
) -> Result<BTreeMap<String, Vec<Input>>, JobError> {
    let mut problems = Vec::new();
    // Buckets the spec declares are there after apply; others must exist already.
    let mut buckets: BTreeMap<&str, &JobSpec> = BTreeMap::new();
    for job in jobs {
        if let Some(crate::spec::Inputs::S3 { bucket, .. }) = &job.inputs {
            buckets.entry(bucket).or_insert(job);
        }
        if let Some(bucket) = job.output.as_ref().and_then(Output::bucket) {
            buckets.entry(bucket).or_insert(job);
        }
    }
    for (bucket, job) in buckets {
        if spec.buckets.contains_key(bucket) {
            continue;
        }
        if !cloud.bucket_exists(bucket).await.map_err(JobError::Aws)? {
            problems.push(
                Diagnostic::new(
                    format!("job `{}` uses bucket `{bucket}`, which is neither in the spec nor in the account", job.name),
                    Some(job.location.clone()),
                )
                .with_hint(format!("declare `{bucket}` under `buckets`, or check the name")),
            );
        }
    }
    let mut resolved = BTreeMap::new();
    if problems.is_empty() {
        for job in jobs.iter().filter(|j| j.after.is_empty()) {
            match inputs::resolve(cloud, job, &options.base_dir).await {
                Ok(found) => {
                    resolved.insert(job.name.clone(), found);
                }
                Err(inputs::ResolveError::Refused(diagnostic)) => problems.push(diagnostic),
                Err(inputs::ResolveError::Aws(error)) => return Err(JobError::Aws(error)),
            }
        }
    }
    if problems.is_empty() {
        Ok(resolved)
    } else {
        Err(JobError::Preflight(problems))
    }
}

/// Stops these instances (`then: stop`). Returns those stopped (or stopping already), and
/// the last failure: an instance that cannot be stopped makes its jobs fail, since it would
/// go on costing money.
async fn stop_instances(
    cloud: &Cloud,
    project: &str,
    instances: &[String],
) -> (Vec<String>, Option<String>) {
    let mut stopped = Vec::new();
    let mut failure = None;
    for name in instances {
        let result = async {
            let Some(instance) = cloud.find_instance(project, name).await? else {
                return Ok(false);
            };
            if instance.state.is_down() {
                return Ok(true);
            }
            cloud.stop_instance(name, &instance.id).await?;
            Ok::<_, AwsError>(true)
        }
        .await;
        match result {
            Ok(true) => stopped.push(name.clone()),
            Ok(false) => {}
            Err(error) => failure = Some(format!("could not stop instance `{name}`: {error}")),
        }
    }
    (stopped, failure)
}

pub(crate) async fn run_job(
    cloud: &Cloud,
    job: &JobSpec,
    resolved: Option<Vec<Input>>,
    options: &Options,
    remote: Option<&remote::Context<'_>>,
    on_event: OnEvent<'_>,
) -> JobSummary {
    let started = std::time::Instant::now();
    let failed = |error: String| JobSummary {
        duration_ms: millis(started.elapsed()),
        ..JobSummary::of(job, Status::Failed, Some(error))
    };
    let inputs = match resolved {
        Some(inputs) => inputs,
        None => match inputs::resolve(cloud, job, &options.base_dir).await {
            Ok(inputs) => inputs,
            Err(inputs::ResolveError::Refused(diagnostic)) => return failed(diagnostic.message),
            Err(inputs::ResolveError::Aws(error)) => return failed(error.to_string()),
        },
    };
    // A finished, merged count of these very inputs is not made again.
    let record = job_record(job, &inputs);
    if options.resume {
        if let Some(summary) = resumed_summary(cloud, job, record.as_deref()).await {
            return summary;
        }
    }
    // Where the job runs, matched once.
    match (&job.placement, remote) {
        (Placement::Batch(_), None) => {
            return failed("this job runs on AWS Batch, which this run cannot submit to".into())
        }
        (Placement::Batch(batch), Some(context)) => {
            let (tasks, notes) =
                match batch::run(cloud, context, job, batch, inputs, options, on_event).await {
                    Ok(done) => done,
                    Err(error) => return failed(error.to_string()),
                };
            return finish(cloud, job, (tasks, notes, record), started, options).await;
        }
        (Placement::Instances(_), None) => {
            return failed("this job runs on instances, which this run cannot reach".into())
        }
        (Placement::Instances(instances), Some(context)) => {
            let (tasks, notes) =
                match remote::run(context, job, instances, inputs, options, on_event).await {
                    Ok(done) => done,
                    Err(error) => return failed(error.to_string()),
                };
            return finish(cloud, job, (tasks, notes, record), started, options).await;
        }
        (Placement::Here, Some(context)) if context.attach_only => {
            return failed("this job runs on this machine: there is nothing to attach to".into())
        }
        (Placement::Here, _) => {}
    }
    on_event(Event::JobStarted {
        job: &job.name,
        tasks: inputs.len().max(usize::from(job.inputs.is_none())),
        bytes: inputs.iter().map(|i| i.size).sum(),
    });
    let tasks = match &job.work {
        Work::Builtin(builtin) => {
            builtin::run(cloud, job, *builtin, inputs, options, on_event).await
        }
        Work::Command {
            script,
            writes_output,
            mode,
            parallelism,
            ..
        } => {
            command::run(
                cloud,
                job,
                command::Settings {
                    script,
                    writes_output: *writes_output,
                    mode: *mode,
                    parallelism: *parallelism,
                },
                inputs,
                options,
                on_event,
            )
            .await
        }
    };
    let tasks = match tasks {
        Ok(tasks) => tasks,
        Err(error) => return failed(error.to_string()),
    };
    finish(cloud, job, (tasks, Vec::new(), record), started, options).await
}

/// What a builtin job's summary counts: the builtin and every input's name, size and
/// version, as one SHA-256. `None` for a command job (its tasks carry their own records),
/// a job whose summary is not one S3 object, or an input of unknown version.
fn job_record(job: &JobSpec, inputs: &[Input]) -> Option<String> {
    let Work::Builtin(builtin) = job.work else {
        return None;
    };
    if !matches!(job.output, Some(Output::S3Object { .. })) {
        return None;
    }
    let inputs: Option<Vec<serde_json::Value>> = inputs
        .iter()
        .map(|i| Some(serde_json::json!([i.name, i.size, i.version.as_deref()?])))
        .collect();
    let identity = serde_json::json!({"builtin": unit(builtin), "inputs": inputs?});
    Some(crate::hash::sha256_hex(identity.to_string().as_bytes()))
}

/// The stored summary of this job, when it carries `record`: the same count of the same
/// inputs, finished; its tasks are marked resumed. Anything else runs the job.
async fn resumed_summary(cloud: &Cloud, job: &JobSpec, record: Option<&str>) -> Option<JobSummary> {
    let record = record?;
    let Some(Output::S3Object { bucket, key }) = &job.output else {
        return None;
    };
    let metadata = cloud.object_metadata(bucket, key).await.ok()??;
    if metadata.get(command::SOURCE_METADATA).map(String::as_str) != Some(record) {
        return None;
    }
    let stored = cloud.object_bytes(bucket, key).await.ok()??;
    let mut summary: JobSummary = serde_json::from_slice(&stored).ok()?;
    if summary.job != job.name || summary.status != Status::Succeeded {
        return None;
    }
    for task in &mut summary.tasks {
        task.resumed = true;
    }
    summary.record = Some(record.to_string());
    Some(summary)
}

/// The job's summary from its tasks, written where `output` names one file.
async fn finish(
    cloud: &Cloud,
    job: &JobSpec,
    (tasks, notes, record): (Vec<TaskSummary>, Vec<String>, Option<String>),
    started: std::time::Instant,
    options: &Options,
) -> JobSummary {
    let status = if tasks.iter().all(|t| t.status == Status::Succeeded) {
        Status::Succeeded
    } else {
        Status::Failed
    };
    let total = match job.work {
        Work::Builtin(_) => Some(tasks.iter().filter_map(|t| t.count).sum()),
        Work::Command { .. } => None,
    };
    let mut summary = JobSummary {
        duration_ms: millis(started.elapsed()),
        bytes: tasks.iter().map(|t| t.bytes).sum(),
        total,
        tasks,
        output: job.output.as_ref().map(output_text),
        notes,
        // Only a finished count is evidence for `--resume`.
        record: record.filter(|_| status == Status::Succeeded),
        ..JobSummary::of(job, status, None)
    };
    if let Err(error) = write_summary(cloud, job, &summary, options).await {
        summary.status = Status::Failed;
        summary.error = Some(format!("cannot write the summary: {error}"));
    }
    summary
}

/// The output as the user wrote it.
fn output_text(output: &Output) -> String {
    match output {
        Output::S3Object { bucket, key } => format!("s3://{bucket}/{key}"),
        Output::S3Prefix { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        Output::Local(path) => path.clone(),
    }
}

/// Writes the summary where `output` names one file; a prefix or directory holds the
/// tasks' outputs instead.
async fn write_summary(
    cloud: &Cloud,
    job: &JobSpec,
    summary: &JobSummary,
    options: &Options,
) -> Result<(), String> {
    let mut document = serde_json::to_vec_pretty(summary).map_err(|e| e.to_string())?;
    document.push(b'\n');
    match &job.output {
        Some(Output::S3Object { bucket, key }) => {
            let metadata = summary
                .record
                .as_deref()
                .map(|record| (command::SOURCE_METADATA, record));
            cloud
                .put_document_with(bucket, key, document, "application/json", metadata)
                .await
                .map_err(|e| e.to_string())
        }
        Some(Output::Local(path)) if !path.ends_with('/') => {
            let path = options.base_dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            // Through a temporary file, so a reader never sees half a summary.
            let temporary = path.with_extension("json.partial");
            std::fs::write(&temporary, &document).map_err(|e| e.to_string())?;
            std::fs::rename(&temporary, &path).map_err(|e| e.to_string())
        }
        _ => Ok(()),
    }
}

/// The last `lines` lines of `text`, at most `max_bytes` of them.
pub(crate) fn tail(text: &str, lines: usize, max_bytes: usize) -> String {
    let kept: Vec<&str> = text.lines().rev().take(lines).collect();
    let mut tail: String = kept.into_iter().rev().collect::<Vec<_>>().join("\n");
    if tail.len() > max_bytes {
        let mut cut = tail.len() - max_bytes;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = format!("...{}", &tail[cut..]);
    }
    tail
}

/// A local file's version: its modification time in nanoseconds since the epoch.
fn file_version(metadata: &std::fs::Metadata) -> Option<String> {
    metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos().to_string())
}

/// The duration in whole milliseconds, for summaries.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Which builtin counts what, for summaries.
pub fn unit(builtin: Builtin) -> &'static str {
    match builtin {
        Builtin::WordCount => "words",
        Builtin::LineCount => "lines",
        Builtin::ByteCount => "bytes",
    }
}
