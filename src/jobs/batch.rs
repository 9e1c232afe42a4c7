//! Jobs on AWS Batch: one array job per run, one child per share of the inputs.
//!
//! The machine that starts the job stages it in the input bucket under
//! `.tether/<project>/<job>/<run-id>/`: the spec, one share file per child, and (unless the
//! image carries tether) a Linux build of tether under `.tether/<project>/bin/`, which each
//! child fetches with `curl`, signing the request (SigV4) with its own job role's
//! credentials from the container's credentials endpoint: nothing it fetches depends on the
//! operator's session, which may end long before a queued child starts. It submits the array job, follows
//! it (children by status), and merges the results the children wrote back to the stage,
//! exactly as for instances. Each child runs `tether agent --batch <stage>`, which takes
//! its share by `AWS_BATCH_JOB_ARRAY_INDEX`, reads and writes S3 with the job role, and
//! writes `result-<index>.json`; a child run again (a Batch retry, a spot reclaim) redoes
//! its share, and its outputs are complete objects or absent.
//!
//! No data is pasted into the container's command: the stage and the binary's URL reach it
//! as environment variables.
//!
//! Children trust nothing for sitting in the stage: anyone who may write the bucket could
//! put a file there. The job's environment (set by the submitting run, and not changeable
//! once submitted) carries the SHA-256 of the stage's manifest (`TETHER_STAGE_SHA256`),
//! which names the SHA-256 of the spec and of every share; a child checks each before it
//! reads it, and checks the fetched binary against `TETHER_BINARY_SHA256` before it runs
//! it. A stage never sits in a bucket whose policy lets the public read it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::remote::{self, Share};
use super::{Event, Input, JobSummary, OnEvent, Options, TaskSummary};
use crate::aws::{AwsError, Cloud, SubmitRequest};
use crate::spec::{BatchRun, Inputs, JobSpec, Shares, Spec};

/// How often a submitted job's status is read.
const POLL_EVERY: Duration = Duration::from_secs(10);

/// How often, while a job waits in `RUNNABLE`, its queue and compute environments are read.
const CHECK_QUEUE_EVERY: Duration = Duration::from_secs(60);

/// How long a job may wait in `RUNNABLE` on healthy environments before tether says why
/// that usually happens.
const RUNNABLE_NOTE_AFTER: Duration = Duration::from_secs(5 * 60);

/// The command of a child that fetches tether first. Its data is in the environment.
///
/// The job role's credentials come from the container credentials endpoint that ECS (and
/// so Batch) gives every container (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, or a full URI
/// with its authorization token); curl (7.75 or later) signs the GET with them. The object
/// is addressed path-style in the stage's region, or at the endpoint the job was told.
pub const FETCH_AND_RUN: &str = "set -e; d=$(mktemp -d); \
if [ -n \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\" ]; then u=\"$AWS_CONTAINER_CREDENTIALS_FULL_URI\"; else u=\"http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI\"; fi; \
if [ -n \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\" ]; then c=$(curl -fsS -H \"Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN\" \"$u\"); else c=$(curl -fsS \"$u\"); fi; \
field() { printf '%s\\n' \"$c\" | sed -n \"s/.*\\\"$1\\\" *: *\\\"\\([^\\\"]*\\)\\\".*/\\1/p\" | head -n 1; }; \
k=$(field AccessKeyId); s=$(field SecretAccessKey); t=$(field Token); \
e=\"${AWS_ENDPOINT_URL_S3:-${AWS_ENDPOINT_URL:-https://s3.$TETHER_BINARY_REGION.amazonaws.com}}\"; \
if [ -n \"$t\" ]; then curl -fsS --compressed --aws-sigv4 \"aws:amz:$TETHER_BINARY_REGION:s3\" --user \"$k:$s\" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -H \"x-amz-security-token: $t\" -o \"$d/tether\" \"$e/$TETHER_BINARY_OBJECT\"; \
else curl -fsS --compressed --aws-sigv4 \"aws:amz:$TETHER_BINARY_REGION:s3\" --user \"$k:$s\" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -o \"$d/tether\" \"$e/$TETHER_BINARY_OBJECT\"; fi; \
if [ \"$(sha256sum \"$d/tether\" | cut -d' ' -f1)\" != \"$TETHER_BINARY_SHA256\" ]; then echo \"tether: the staged binary is not the one this job was submitted with (SHA-256 $TETHER_BINARY_SHA256); refusing to run it\" >&2; exit 1; fi; chmod 755 \"$d/tether\"; exec \"$d/tether\" agent --batch \"$TETHER_STAGE\"";

/// The stage's manifest: the SHA-256 of the spec and of each share, by file name.
const MANIFEST: &str = "manifest.json";

/// Why a Batch job did not run, or did not end with every share's result.
#[derive(Debug, thiserror::Error)]
pub enum BatchJobError {
    /// The job reads no S3 prefix to stage next to.
    #[error("a Batch job reads its inputs from S3")]
    NotS3,
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A local file (the spec, the agent binary) cannot be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The job ended, and some shares left no result.
    #[error("Batch job {id} ({status}): {}", .missing.join("; "))]
    Children {
        id: String,
        status: String,
        missing: Vec<String>,
    },
    /// The stage's bucket lets the public read it.
    #[error("job `{job}` would stage its spec, shares and results in bucket `{bucket}`, whose policy lets anyone read it")]
    PublicStage { job: String, bucket: String },
    /// The job waits in `RUNNABLE` on a queue that cannot run it.
    #[error("Batch job {id} cannot start: {reason}. It stays queued: fix that (`tether plan` shows what differs from the spec) and follow it with `tether run --attach`, or end it with `aws batch terminate-job --job-id {id} --reason cancelled`")]
    CannotStart { id: String, reason: String },
    /// `--attach` found no submitted job to follow.
    #[error("no Batch job `{name}` was submitted to queue `{queue}`; run it without --attach")]
    NotSubmitted { name: String, queue: String },
}

/// Batch's job name for `job` of `project`: letters, digits, `-` and `_`, 128 at most.
pub fn job_name(project: &str, job: &str) -> String {
    let name: String = format!("tether-{project}-{job}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.chars().take(128).collect()
}

/// How many children `inputs` make under `shares`: never more than the inputs (a child
/// with nothing to do is no child), never more than Batch's 10,000.
pub fn share_count(shares: Shares, inputs: &[Input]) -> usize {
    let wanted = match shares {
        Shares::Count(count) => usize::try_from(count).unwrap_or(usize::MAX),
        Shares::Size(size) => {
            let total: u64 = inputs.iter().map(|i| i.size).sum();
            usize::try_from(total.div_ceil(size.max(1))).unwrap_or(usize::MAX)
        }
    };
    wanted
        .min(inputs.len())
        .min(crate::spec::MAX_ARRAY_SIZE as usize)
        .max(1)
}

/// The stage of a run: its bucket and prefix (ending in `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    pub bucket: String,
    pub prefix: String,
}

impl Stage {
    /// `s3://bucket/prefix/`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// The stage a `s3://bucket/prefix/` URL names.
    pub fn parse(url: &str) -> Option<Stage> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/')?;
        (!bucket.is_empty() && prefix.ends_with('/')).then(|| Stage {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The stage of run `run_id` of `job` in `project`, in `bucket`.
    fn for_run(bucket: &str, project: &str, job: &str, run_id: &str) -> Stage {
        Stage {
            bucket: bucket.to_string(),
            prefix: format!(".tether/{project}/{job}/{run_id}/"),
        }
    }

    /// The stage a Batch job's `TETHER_STAGE` names, when it is a stage of this job's runs:
    /// in the job's input bucket, under `.tether/<project>/<job>/<run id>/`. The variable
    /// comes from the account, where anyone allowed to submit jobs could set it: nothing
    /// else is read from, nor deleted.
    pub fn of_job(url: &str, bucket: &str, project: &str, job: &str) -> Option<Stage> {
        let stage = Stage::parse(url)?;
        let run_id = stage
            .prefix
            .strip_prefix(&format!(".tether/{project}/{job}/"))?
            .strip_suffix('/')?;
        let is_run_id = run_id.len() == 16 && run_id.chars().all(|c| c.is_ascii_hexdigit());
        (stage.bucket == bucket && is_run_id).then_some(stage)
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// What the submitting run wrote and the children wrote back, by name: the spec, and
    /// each child's share and result. Deleted once the results are merged.
    fn scratch_keys(&self, size: i32) -> Vec<String> {
        [self.key("spec.yaml"), self.key(MANIFEST)]
            .into_iter()
            .chain((0..size).flat_map(|i| {
                [
                    self.key(&format!("share-{i}.json")),
                    self.key(&format!("result-{i}.json")),
                ]
            }))
            .collect()
    }
}

/// The merged tasks of a run, kept in its stage once the shares' files are deleted, so that
/// following the job again (`--attach`) still finds its results.
const MERGED: &str = "merged.json";

/// Where a job on Batch stages its runs: its input bucket, and the project and job names
/// that its stages' prefixes must carry.
struct Home<'a> {
    bucket: &'a str,
    project: &'a str,
    job: &'a str,
}

/// Stages and submits the job's shares as one array job, follows it, and merges what the
/// children wrote. Returns the tasks and notes for the summary.
pub async fn run(
    cloud: &Cloud,
    context: &remote::Context<'_>,
    job: &JobSpec,
    batch: &BatchRun,
    inputs: Vec<Input>,
    options: &Options,
    on_event: OnEvent<'_>,
) -> Result<(Vec<TaskSummary>, Vec<String>), BatchJobError> {
    let name = job_name(&context.spec.project, &job.name);
    let Some(Inputs::S3 { bucket, .. }) = &job.inputs else {
        return Err(BatchJobError::NotS3);
    };
    let home = Home {
        bucket,
        project: &context.spec.project,
        job: &job.name,
    };
    if context.attach_only {
        let id = cloud
            .jobs_named(&batch.queue, &name)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| BatchJobError::NotSubmitted {
                name: name.clone(),
                queue: batch.queue.clone(),
            })?;
        return follow_and_collect(cloud, &home, &id, on_event).await;
    }
    on_event(Event::JobStarted {
        job: &job.name,
        tasks: inputs.len(),
        bytes: inputs.iter().map(|i| i.size).sum(),
    });
    // The stage holds the spec and every result: never where the public may read.
    if cloud
        .bucket_policy(bucket)
        .await?
        .as_ref()
        .is_some_and(crate::policy::grants_public_access)
    {
        return Err(BatchJobError::PublicStage {
            job: job.name.clone(),
            bucket: bucket.clone(),
        });
    }
    let count = share_count(batch.shares, &inputs);
    let shares = remote::split(inputs, count);
    let run_id = crate::lock::new_lock_id();
    let stage = Stage::for_run(bucket, &context.spec.project, &job.name, &run_id);
    let spec_text = std::fs::read(context.spec_file).map_err(|source| BatchJobError::Read {
        path: context.spec_file.display().to_string(),
        source,
    })?;
    let mut manifest =
        BTreeMap::from([("spec.yaml".to_string(), crate::hash::sha256_hex(&spec_text))]);
    cloud
        .put_document(
            &stage.bucket,
            &stage.key("spec.yaml"),
            spec_text,
            "application/yaml",
        )
        .await?;
    for (index, share) in shares.into_iter().enumerate() {
        let share = Share {
            job: job.name.clone(),
            run_id: run_id.clone(),
            inputs: share,
            retries: options.retries,
            fail_fast: options.fail_fast,
            resume: options.resume,
        };
        let text = serde_json::to_vec(&share).expect("a share serialises");
        let name = format!("share-{index}.json");
        manifest.insert(name.clone(), crate::hash::sha256_hex(&text));
        cloud
            .put_document(&stage.bucket, &stage.key(&name), text, "application/json")
            .await?;
    }
    let manifest = serde_json::to_vec(&manifest).expect("a manifest serialises");
    let manifest_sha256 = crate::hash::sha256_hex(&manifest);
    cloud
        .put_document(
            &stage.bucket,
            &stage.key(MANIFEST),
            manifest,
            "application/json",
        )
        .await?;
    let mut environment = context.agent_env.clone();
    environment.push(("TETHER_STAGE".to_string(), stage.url()));
    environment.push(("TETHER_STAGE_SHA256".to_string(), manifest_sha256));
    let command = if batch.tether_in_image {
        vec![
            "tether".to_string(),
            "agent".to_string(),
            "--batch".to_string(),
            stage.url(),
        ]
    } else {
        let (object, sha256) = stage_binary(cloud, context, &job.name, &stage, on_event).await?;
        environment.push(("TETHER_BINARY_OBJECT".to_string(), object));
        environment.push((
            "TETHER_BINARY_REGION".to_string(),
            cloud.region().to_string(),
        ));
        environment.push(("TETHER_BINARY_SHA256".to_string(), sha256));
        vec![
            "sh".to_string(),
            "-c".to_string(),
            FETCH_AND_RUN.to_string(),
        ]
    };
    let id = cloud
        .submit_job(&SubmitRequest {
            name,
            queue: batch.queue.clone(),
            definition: batch.definition.clone(),
            size: i32::try_from(count).unwrap_or(1),
            command,
            environment,
            tags: crate::model::ownership_tags(&context.spec.project, &job.name),
        })
        .await?;
    on_event(Event::BatchSubmitted {
        job: &job.name,
        id: &id,
    });
    follow_and_collect(cloud, &home, &id, on_event).await
}

/// Uploads the agent binary under its content hash (once), and returns where it is
/// (`bucket/key`, for the children to fetch with their own role) and its SHA-256, which
/// children check before they run what they fetched.
async fn stage_binary(
    cloud: &Cloud,
    context: &remote::Context<'_>,
    job: &str,
    stage: &Stage,
    on_event: OnEvent<'_>,
) -> Result<(String, String), BatchJobError> {
    let binary = match &context.agent_binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe().map_err(|source| BatchJobError::Read {
            path: "tether's own binary".into(),
            source,
        })?,
    };
    let unreadable = |source| BatchJobError::Read {
        path: binary.display().to_string(),
        source,
    };
    let hash = context
        .agent_build
        .sha256(&binary)
        .await
        .map_err(unreadable)?
        .to_string();
    // Stored gzipped, with `Content-Encoding: gzip`: the child's curl (`--compressed`)
    // undoes it as it fetches, and checks the build it got against its SHA-256.
    let key = format!(
        ".tether/{}/bin/tether-{}.gz",
        context.spec.project,
        &hash[..16]
    );
    if !cloud.object_exists(&stage.bucket, &key).await? {
        let (gzip, bytes) = context
            .agent_build
            .gzip(&binary)
            .await
            .map_err(unreadable)?;
        let to = format!("s3://{}", stage.bucket);
        on_event(Event::Uploading {
            job,
            to: &to,
            bytes: *bytes,
        });
        let headers = crate::aws::Headers {
            metadata: None,
            content_encoding: Some("gzip"),
        };
        cloud
            .upload_with(&stage.bucket, &key, gzip, headers)
            .await?;
        on_event(Event::Uploaded { job, to: &to });
    }
    Ok((format!("{}/{key}", stage.bucket), hash))
}

/// Follows job `id` until it ends, then merges the results its children wrote to the stage
/// (named in its environment).
async fn follow_and_collect(
    cloud: &Cloud,
    home: &Home<'_>,
    id: &str,
    on_event: OnEvent<'_>,
) -> Result<(Vec<TaskSummary>, Vec<String>), BatchJobError> {
    let job = home.job;
    let mut last = String::new();
    let mut queue_checked: Option<std::time::Instant> = None;
    let mut noted_wait = false;
    let info = loop {
        let info = cloud.job_status(id).await?.ok_or_else(|| {
            BatchJobError::Aws(AwsError {
                operation: "DescribeJobs",
                resource: id.to_string(),
                code: None,
                message: "Batch does not know the job".into(),
                kind: crate::aws::AwsErrorKind::Service,
            })
        })?;
        let line = progress(&info.status, &info.children);
        if line != last {
            on_event(Event::BatchStatus {
                job,
                id,
                status: &line,
            });
            last = line;
        }
        if info.status == "SUCCEEDED" || info.status == "FAILED" {
            on_event(Event::BatchReleased { job, id });
            break info;
        }
        if waiting_for_capacity(&info)
            && queue_checked.is_none_or(|at| at.elapsed() >= CHECK_QUEUE_EVERY)
        {
            queue_checked = Some(std::time::Instant::now());
            let queue = cloud.job_queue(&info.queue).await?;
            let environments = match &queue {
                Some(queue) => {
                    cloud
                        .compute_environments(&queue.compute_environments)
                        .await?
                }
                None => Vec::new(),
            };
            if let Some(reason) = cannot_start(&info.queue, queue.as_ref(), &environments) {
                // Left queued for whoever fixes the queue: not this run's to terminate.
                on_event(Event::BatchReleased { job, id });
                return Err(BatchJobError::CannotStart {
                    id: id.to_string(),
                    reason,
                });
            }
            let waited = waited_since(info.created);
            if !noted_wait && waited >= RUNNABLE_NOTE_AFTER {
                noted_wait = true;
                on_event(Event::BatchNote {
                    job,
                    id,
                    note: &runnable_note(&info, waited, &environments),
                });
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    let stage = info
        .environment
        .get("TETHER_STAGE")
        .and_then(|url| Stage::of_job(url, home.bucket, home.project, home.job))
        .ok_or_else(|| BatchJobError::Children {
            id: id.to_string(),
            status: info.status.clone(),
            missing: vec![format!(
                "the job names no stage of this job's runs (under s3://{}/.tether/{}/{}/): it was not submitted by tether for this job",
                home.bucket, home.project, home.job
            )],
        })?;
    let size = info.size.max(1);
    let mut notes = Vec::new();
    // A run collected before left its merged tasks, and deleted the shares' files.
    let merged = cloud
        .object_bytes(&stage.bucket, &stage.key(MERGED))
        .await?
        .and_then(|bytes| serde_json::from_slice::<Vec<TaskSummary>>(&bytes).ok());
    let tasks = match merged {
        Some(tasks) => tasks,
        None => {
            let tasks = collect_results(cloud, &stage, id, &info).await?;
            notes.extend(tidy_stage(cloud, &stage, size, &tasks).await);
            tasks
        }
    };
    notes.insert(
        0,
        format!(
            "ran as Batch job {id} ({size} {})",
            if size == 1 { "job" } else { "children" }
        ),
    );
    if info.attempts_allowed > 1 {
        notes.extend(retry_notes(cloud, id, &info).await);
    }
    Ok((tasks, notes))
}

/// Every child's result from the stage, merged; an error naming each share that left none
/// (with Batch's reason and log stream for a child that failed).
async fn collect_results(
    cloud: &Cloud,
    stage: &Stage,
    id: &str,
    info: &crate::aws::JobStatusInfo,
) -> Result<Vec<TaskSummary>, BatchJobError> {
    let size = info.size.max(1);
    let mut tasks = Vec::new();
    let mut missing = Vec::new();
    for index in 0..size {
        let key = stage.key(&format!("result-{index}.json"));
        match cloud.object_bytes(&stage.bucket, &key).await? {
            Some(bytes) => match serde_json::from_slice::<JobSummary>(&bytes) {
                Ok(summary) => tasks.extend(summary.tasks),
                Err(_) => missing.push(index),
            },
            None => missing.push(index),
        }
    }
    if !missing.is_empty() {
        let failed: BTreeMap<i32, crate::aws::FailedChild> = cloud
            .failed_children(id)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|child| Some((child.index?, child)))
            .collect();
        let missing = missing
            .into_iter()
            .map(|index| match failed.get(&index) {
                Some(child) => format!(
                    "share {index} failed ({}; log stream {})",
                    child.reason.as_deref().unwrap_or("no reason given"),
                    child.log_stream.as_deref().unwrap_or("none")
                ),
                None => format!("share {index} wrote no result"),
            })
            .collect();
        return Err(BatchJobError::Children {
            id: id.to_string(),
            status: info.status.clone(),
            missing,
        });
    }
    tasks.sort_by(|a, b| a.input.cmp(&b.input));
    Ok(tasks)
}

/// Keeps the merged tasks in the stage, then deletes what the run and its children wrote
/// there (the spec, and each share and result, by name). A stage that cannot be tidied is
/// a note, not a failure: the results are merged.
async fn tidy_stage(cloud: &Cloud, stage: &Stage, size: i32, tasks: &[TaskSummary]) -> Vec<String> {
    let merged = serde_json::to_vec(tasks).expect("tasks serialise");
    let tidied = async {
        cloud
            .put_document(
                &stage.bucket,
                &stage.key(MERGED),
                merged,
                "application/json",
            )
            .await?;
        cloud
            .delete_keys(&stage.bucket, &stage.scratch_keys(size))
            .await
    };
    match tidied.await {
        Ok(_) => Vec::new(),
        Err(error) => vec![format!(
            "the results are merged, but the stage {} keeps its files: {error}",
            stage.url()
        )],
    }
}

/// Which shares ran more than once, and why their earlier attempts ended (a spot instance
/// reclaimed under them reads `Host EC2 (instance i-…) terminated.`).
async fn retry_notes(cloud: &Cloud, id: &str, info: &crate::aws::JobStatusInfo) -> Vec<String> {
    let retried = if info.size > 1 {
        match cloud.retried_children(id).await {
            Ok(children) => children
                .into_iter()
                .map(|child| (child.index.unwrap_or_default(), child.ended))
                .collect(),
            Err(error) => return vec![format!("cannot tell which shares Batch retried: {error}")],
        }
    } else {
        let ended = info.attempts.len().saturating_sub(1);
        if ended == 0 {
            Vec::new()
        } else {
            vec![(0, info.attempts[..ended].to_vec())]
        }
    };
    retried
        .into_iter()
        .map(|(index, ended)| retry_note(index, &ended))
        .collect()
}

/// `share 3 succeeded on attempt 2 (attempt 1: Host EC2 (instance i-…) terminated.)`.
fn retry_note(index: i32, ended: &[String]) -> String {
    let earlier: Vec<String> = ended
        .iter()
        .enumerate()
        .map(|(n, reason)| format!("attempt {}: {reason}", n + 1))
        .collect();
    format!(
        "share {index} succeeded on attempt {} ({})",
        ended.len() + 1,
        earlier.join("; ")
    )
}

/// Whether no child has started yet: the job (or every unfinished child) waits for Batch
/// to place it on an instance.
fn waiting_for_capacity(info: &crate::aws::JobStatusInfo) -> bool {
    let count = |status: &str| info.children.get(status).copied().unwrap_or(0);
    info.status == "RUNNABLE"
        || (count("RUNNABLE") > 0 && count("STARTING") == 0 && count("RUNNING") == 0)
}

/// How long ago a job was created (Batch's `createdAt`, milliseconds since the epoch).
fn waited_since(created_ms: i64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(Duration::from_millis(
        u64::try_from(created_ms).unwrap_or(0),
    ))
}

/// Why a job in `queue` can never leave `RUNNABLE` as things stand: the queue is gone,
/// disabled or invalid, or none of its compute environments is enabled and valid. `None`
/// while some environment can still take it.
fn cannot_start(
    queue_name: &str,
    queue: Option<&crate::aws::JobQueueInfo>,
    environments: &[crate::aws::ComputeEnvironmentInfo],
) -> Option<String> {
    let Some(queue) = queue else {
        return Some(format!("its queue `{queue_name}` no longer exists"));
    };
    if queue.state == "DISABLED" {
        return Some(format!("its queue `{}` is DISABLED", queue.name));
    }
    if queue.status == "INVALID" {
        return Some(format!(
            "its queue `{}` is INVALID ({})",
            queue.name,
            queue.status_reason.as_deref().unwrap_or("no reason given")
        ));
    }
    let usable = |ce: &&crate::aws::ComputeEnvironmentInfo| {
        ce.state == "ENABLED" && matches!(ce.status.as_str(), "VALID" | "CREATING" | "UPDATING")
    };
    if environments.iter().any(|ce| usable(&ce)) {
        return None;
    }
    let each: Vec<String> = queue
        .compute_environments
        .iter()
        .map(
            |name| match environments.iter().find(|ce| &ce.name == name) {
                None => format!("`{name}` no longer exists"),
                Some(ce) if ce.state != "ENABLED" => format!("`{name}` is {}", ce.state),
                Some(ce) => format!(
                    "`{name}` is {} ({})",
                    ce.status,
                    ce.status_reason.as_deref().unwrap_or("no reason given")
                ),
            },
        )
        .collect();
    Some(format!(
        "no compute environment of queue `{}` can run it: {}",
        queue.name,
        if each.is_empty() {
            "it has none".to_string()
        } else {
            each.join("; ")
        }
    ))
}

/// What tether says of a job that has waited long in `RUNNABLE` on healthy environments.
fn runnable_note(
    info: &crate::aws::JobStatusInfo,
    waited: Duration,
    environments: &[crate::aws::ComputeEnvironmentInfo],
) -> String {
    let waiting = info.children.get("RUNNABLE").copied().unwrap_or(1);
    let each: Vec<String> = environments
        .iter()
        .map(|ce| {
            format!(
                "`{}` {}, at most {} vCPUs of {}",
                ce.name,
                ce.kind,
                ce.max_vcpus,
                if ce.instance_types.is_empty() {
                    "any type".to_string()
                } else {
                    ce.instance_types.join(", ")
                }
            )
        })
        .collect();
    format!(
        "{waiting} {} RUNNABLE for {}m on healthy environments ({}): Batch has found no capacity yet. Check that the job definition's vCPUs and memory fit one instance type, that max vCPUs leave room, and the account's EC2 vCPU quota; spot capacity may also be short",
        if waiting == 1 { "job" } else { "children" },
        waited.as_secs() / 60,
        each.join("; ")
    )
}

/// `RUNNING: 3 running, 5 succeeded` from the job's status and its children's counts.
fn progress(status: &str, children: &BTreeMap<String, i32>) -> String {
    let counts: Vec<String> = children
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(state, count)| format!("{count} {}", state.to_ascii_lowercase()))
        .collect();
    if counts.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {}", counts.join(", "))
    }
}

/// What `tether run --status` says of a job on Batch: the newest array job of its name in
/// its queue, with its children by status.
pub async fn status_line(
    cloud: &Cloud,
    project: &str,
    job: &JobSpec,
    batch: &BatchRun,
) -> Result<String, AwsError> {
    let name = job_name(project, &job.name);
    let Some(id) = cloud
        .jobs_named(&batch.queue, &name)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(format!(
            "{} on Batch queue {}: not submitted",
            job.name, batch.queue
        ));
    };
    let status = cloud.job_status(&id).await?.map_or_else(
        || "unknown".to_string(),
        |info| progress(&info.status, &info.children),
    );
    Ok(format!(
        "{} on Batch queue {}: job {id} {}",
        job.name,
        batch.queue,
        status.to_lowercase()
    ))
}

/// Runs one child's share, for `tether agent --batch <stage>`: the share of
/// `AWS_BATCH_JOB_ARRAY_INDEX` (0 for a plain job), with the spec staged next to it, in a
/// scratch directory; its summary goes back to the stage as `result-<index>.json`.
pub async fn agent(
    cloud: &Cloud,
    stage: &Stage,
    manifest_sha256: &str,
    index: usize,
    scratch: &Path,
) -> Result<JobSummary, AgentError> {
    let fetch = |name: String, sha256: Option<String>| async move {
        let bytes = cloud
            .object_bytes(&stage.bucket, &stage.key(&name))
            .await?
            .ok_or_else(|| AgentError::Missing(name.clone()))?;
        match sha256 {
            Some(sha256) if crate::hash::sha256_hex(&bytes) != sha256 => {
                Err(AgentError::Tampered(name))
            }
            _ => Ok(bytes),
        }
    };
    // The manifest is checked against the job's environment, the rest against it.
    let manifest: BTreeMap<String, String> =
        serde_json::from_slice(&fetch(MANIFEST.into(), Some(manifest_sha256.to_string())).await?)
            .map_err(|e| AgentError::Spec(e.to_string()))?;
    let checked = |name: &str| {
        manifest
            .get(name)
            .cloned()
            .ok_or_else(|| AgentError::Missing(format!("{name} in the manifest")))
    };
    let spec_text = fetch("spec.yaml".into(), Some(checked("spec.yaml")?)).await?;
    let spec_text = String::from_utf8_lossy(&spec_text).into_owned();
    let spec: Spec = crate::spec::parse("tether.yaml", &spec_text)
        .map_err(|e| AgentError::Spec(e.to_string()))?;
    let share_name = format!("share-{index}.json");
    let share_sha256 = checked(&share_name)?;
    let share: Share = serde_json::from_slice(&fetch(share_name, Some(share_sha256)).await?)
        .map_err(|e| AgentError::Spec(e.to_string()))?;
    let summary = remote::agent(
        cloud,
        &spec,
        share,
        (scratch.to_path_buf(), &scratch.join("status.json")),
        true,
    )
    .await;
    let text = serde_json::to_vec(&summary).expect("a summary serialises");
    cloud
        .put_document(
            &stage.bucket,
            &stage.key(&format!("result-{index}.json")),
            text,
            "application/json",
        )
        .await?;
    Ok(summary)
}

/// Why a Batch child could not run its share.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Reading the stage or writing the result failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The stage lacks a file the run put there.
    #[error("the stage has no `{0}`")]
    Missing(String),
    /// A staged file is not what the submitting run wrote (its SHA-256 differs from the
    /// one the job was submitted with): it is not run.
    #[error("the staged `{0}` is not what this job was submitted with (its SHA-256 differs); refusing to run it")]
    Tampered(String),
    /// The staged spec or share cannot be read.
    #[error("the staged job cannot be read: {0}")]
    Spec(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Source;

    fn input(size: u64) -> Input {
        Input {
            name: format!("{size}"),
            relative: format!("{size}"),
            source: Source::S3 {
                bucket: "b".into(),
                key: format!("{size}"),
            },
            size,
            version: None,
        }
    }

    #[test]
    fn shares_never_outnumber_inputs_nor_batchs_limit() {
        let inputs: Vec<Input> = (1..=5).map(|i| input(i * 100)).collect();
        assert_eq!(share_count(Shares::Count(3), &inputs), 3);
        assert_eq!(share_count(Shares::Count(50), &inputs), 5);
        assert_eq!(
            share_count(Shares::Size(600), &inputs),
            3,
            "1500 bytes in 600s"
        );
        assert_eq!(share_count(Shares::Size(1), &[]), 1);
    }

    #[test]
    fn stages_and_names_round_trip() {
        let stage = Stage::parse("s3://lab-data/.tether/p/count/abc/").expect("stage");
        assert_eq!(stage.url(), "s3://lab-data/.tether/p/count/abc/");
        assert!(Stage::parse("s3://lab-data/no-slash").is_none());
        // Only a stage of this job's runs, in its bucket, is read or tidied.
        let run = "s3://lab-data/.tether/p/count/0123456789abcdef/";
        assert!(Stage::of_job(run, "lab-data", "p", "count").is_some());
        for foreign in [
            "s3://other/.tether/p/count/0123456789abcdef/",
            "s3://lab-data/.tether/p/other/0123456789abcdef/",
            "s3://lab-data/.tether/q/count/0123456789abcdef/",
            "s3://lab-data/.tether/p/count/0123456789abcdef/../../../../",
            "s3://lab-data/important/",
            "s3://lab-data/.tether/p/count/notarunid/",
        ] {
            assert!(
                Stage::of_job(foreign, "lab-data", "p", "count").is_none(),
                "{foreign}"
            );
        }
        let stage = Stage::of_job(run, "lab-data", "p", "count").expect("stage");
        assert_eq!(
            stage.scratch_keys(2),
            [
                ".tether/p/count/0123456789abcdef/spec.yaml",
                ".tether/p/count/0123456789abcdef/manifest.json",
                ".tether/p/count/0123456789abcdef/share-0.json",
                ".tether/p/count/0123456789abcdef/result-0.json",
                ".tether/p/count/0123456789abcdef/share-1.json",
                ".tether/p/count/0123456789abcdef/result-1.json",
            ]
        );
        assert_eq!(job_name("lab", "word.count"), "tether-lab-word-count");
        assert_eq!(
            progress(
                "RUNNING",
                &BTreeMap::from([
                    ("RUNNING".into(), 2),
                    ("SUCCEEDED".into(), 1),
                    ("FAILED".into(), 0)
                ])
            ),
            "RUNNING: 2 running, 1 succeeded"
        );
    }

    fn environment(name: &str, state: &str, status: &str) -> crate::aws::ComputeEnvironmentInfo {
        crate::aws::ComputeEnvironmentInfo {
            name: name.into(),
            arn: format!("arn:aws:batch:us-east-1:1:compute-environment/{name}"),
            kind: "SPOT".into(),
            state: state.into(),
            status: status.into(),
            status_reason: (status == "INVALID").then(|| "CLIENT_ERROR - no role".into()),
            max_vcpus: 16,
            min_vcpus: None,
            instance_types: vec!["m5.large".into()],
            bid_percentage: None,
            security_group_ids: Vec::new(),
            instance_role: None,
            service_role: None,
            tags: BTreeMap::new(),
        }
    }

    fn queue(state: &str, environments: &[&str]) -> crate::aws::JobQueueInfo {
        crate::aws::JobQueueInfo {
            name: "q".into(),
            arn: "arn:aws:batch:us-east-1:1:job-queue/q".into(),
            state: state.into(),
            status: "VALID".into(),
            status_reason: None,
            priority: 1,
            compute_environments: environments.iter().map(|e| e.to_string()).collect(),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn a_job_cannot_start_when_no_environment_of_its_queue_is_enabled_and_valid() {
        let both = queue("ENABLED", &["a", "b"]);
        let invalid = environment("a", "ENABLED", "INVALID");
        let disabled = environment("b", "DISABLED", "VALID");
        assert_eq!(
            cannot_start("q", Some(&both), &[invalid.clone(), disabled.clone()]).as_deref(),
            Some("no compute environment of queue `q` can run it: `a` is INVALID (CLIENT_ERROR - no role); `b` is DISABLED")
        );
        let valid = environment("b", "ENABLED", "VALID");
        assert_eq!(
            cannot_start("q", Some(&both), &[invalid.clone(), valid]),
            None
        );
        assert_eq!(
            cannot_start("q", Some(&queue("ENABLED", &["a", "gone"])), &[invalid]).as_deref(),
            Some("no compute environment of queue `q` can run it: `a` is INVALID (CLIENT_ERROR - no role); `gone` no longer exists")
        );
        assert_eq!(
            cannot_start("q", Some(&queue("DISABLED", &["b"])), &[disabled]).as_deref(),
            Some("its queue `q` is DISABLED")
        );
        assert_eq!(
            cannot_start("q", None, &[]).as_deref(),
            Some("its queue `q` no longer exists")
        );
    }

    fn status(status: &str, children: &[(&str, i32)]) -> crate::aws::JobStatusInfo {
        crate::aws::JobStatusInfo {
            id: "j".into(),
            name: "n".into(),
            status: status.into(),
            status_reason: None,
            size: 4,
            children: children.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            environment: BTreeMap::new(),
            created: 0,
            queue: "q".into(),
            attempts_allowed: 1,
            attempts: Vec::new(),
        }
    }

    #[test]
    fn a_job_waits_for_capacity_until_some_child_starts() {
        assert!(waiting_for_capacity(&status("RUNNABLE", &[])));
        assert!(waiting_for_capacity(&status("PENDING", &[("RUNNABLE", 4)])));
        assert!(!waiting_for_capacity(&status(
            "RUNNING",
            &[("RUNNABLE", 3), ("RUNNING", 1)]
        )));
        assert!(!waiting_for_capacity(&status("SUBMITTED", &[])));
        let note = runnable_note(
            &status("PENDING", &[("RUNNABLE", 4)]),
            Duration::from_secs(600),
            &[environment("a", "ENABLED", "VALID")],
        );
        assert!(
            note.starts_with("4 children RUNNABLE for 10m on healthy environments (`a` SPOT, at most 16 vCPUs of m5.large)"),
            "{note}"
        );
    }

    #[test]
    fn a_retried_share_names_why_each_earlier_attempt_ended() {
        assert_eq!(
            retry_note(3, &["Host EC2 (instance i-0abc) terminated.".into()]),
            "share 3 succeeded on attempt 2 (attempt 1: Host EC2 (instance i-0abc) terminated.)"
        );
    }
}
