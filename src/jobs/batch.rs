//! Jobs on AWS Batch: one array job per run, one child per share of the inputs.
//!
//! The machine that starts the job stages it in the input bucket under
//! `.tether/<project>/<job>/<run-id>/`: the spec, one share file per child, and (unless the
//! image carries tether) a Linux build of tether under `.tether/<project>/bin/`, which each
//! child fetches with `curl` through a presigned URL. It submits the array job, follows
//! it (children by status), and merges the results the children wrote back to the stage,
//! exactly as for instances. Each child runs `tether agent --batch <stage>`, which takes
//! its share by `AWS_BATCH_JOB_ARRAY_INDEX`, reads and writes S3 with the job role, and
//! writes `result-<index>.json`; a child run again (a Batch retry, a spot reclaim) redoes
//! its share, and its outputs are complete objects or absent.
//!
//! No data is pasted into the container's command: the stage and the binary's URL reach it
//! as environment variables.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::remote::{self, Share};
use super::{Event, Input, JobSummary, OnEvent, Options, TaskSummary};
use crate::aws::{AwsError, Cloud, SubmitRequest};
use crate::spec::{Inputs, JobSpec, Shares, Spec};

/// How long the presigned URL of the agent binary stays valid: children that wait a long
/// time in `RUNNABLE` still fetch it.
const BINARY_URL_VALID_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often a submitted job's status is read.
const POLL_EVERY: Duration = Duration::from_secs(10);

/// The command of a child that fetches tether first. Its data is in the environment.
const FETCH_AND_RUN: &str = "set -e; d=$(mktemp -d); curl -fsSL \"$TETHER_BINARY_URL\" -o \"$d/tether\"; chmod 755 \"$d/tether\"; exec \"$d/tether\" agent --batch \"$TETHER_STAGE\"";

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

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// Stages and submits the job's shares as one array job, follows it, and merges what the
/// children wrote. Returns the tasks and notes for the summary.
pub async fn run(
    cloud: &Cloud,
    context: &remote::Context<'_>,
    job: &JobSpec,
    inputs: Vec<Input>,
    options: &Options,
    on_event: OnEvent<'_>,
) -> Result<(Vec<TaskSummary>, Vec<String>), BatchJobError> {
    let batch = job.batch.as_ref().expect("a job on Batch");
    let name = job_name(&context.spec.project, &job.name);
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
        return follow_and_collect(cloud, &job.name, &id, on_event).await;
    }
    let Some(Inputs::S3 { bucket, .. }) = &job.inputs else {
        return Err(BatchJobError::NotS3);
    };
    on_event(Event::JobStarted {
        job: &job.name,
        tasks: inputs.len(),
        bytes: inputs.iter().map(|i| i.size).sum(),
    });
    let count = share_count(batch.shares, &inputs);
    let shares = remote::split(inputs, count);
    let run_id = crate::lock::new_lock_id();
    let stage = Stage {
        bucket: bucket.clone(),
        prefix: format!(".tether/{}/{}/{run_id}/", context.spec.project, job.name),
    };
    let spec_text = std::fs::read(context.spec_file).map_err(|source| BatchJobError::Read {
        path: context.spec_file.display().to_string(),
        source,
    })?;
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
        };
        let text = serde_json::to_vec(&share).expect("a share serialises");
        cloud
            .put_document(
                &stage.bucket,
                &stage.key(&format!("share-{index}.json")),
                text,
                "application/json",
            )
            .await?;
    }
    let mut environment = context.agent_env.clone();
    environment.push(("TETHER_STAGE".to_string(), stage.url()));
    let command = if batch.tether_in_image {
        vec![
            "tether".to_string(),
            "agent".to_string(),
            "--batch".to_string(),
            stage.url(),
        ]
    } else {
        let url = stage_binary(cloud, context, &stage).await?;
        environment.push(("TETHER_BINARY_URL".to_string(), url));
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
    follow_and_collect(cloud, &job.name, &id, on_event).await
}

/// Uploads the agent binary under its content hash (once), and returns a presigned URL.
async fn stage_binary(
    cloud: &Cloud,
    context: &remote::Context<'_>,
    stage: &Stage,
) -> Result<String, BatchJobError> {
    let binary = match &context.agent_binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe().map_err(|source| BatchJobError::Read {
            path: "tether's own binary".into(),
            source,
        })?,
    };
    let bytes = std::fs::read(&binary).map_err(|source| BatchJobError::Read {
        path: binary.display().to_string(),
        source,
    })?;
    let hash = crate::hash::sha256_hex(&bytes);
    let key = format!(
        ".tether/{}/bin/tether-{}",
        context.spec.project,
        &hash[..16]
    );
    if !cloud.object_exists(&stage.bucket, &key).await? {
        cloud.upload(&stage.bucket, &key, &binary).await?;
    }
    Ok(cloud
        .presigned_get(&stage.bucket, &key, BINARY_URL_VALID_FOR)
        .await?)
}

/// Follows job `id` until it ends, then merges the results its children wrote to the stage
/// (named in its environment).
async fn follow_and_collect(
    cloud: &Cloud,
    job: &str,
    id: &str,
    on_event: OnEvent<'_>,
) -> Result<(Vec<TaskSummary>, Vec<String>), BatchJobError> {
    let mut last = String::new();
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
            break info;
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    let stage = info
        .environment
        .get("TETHER_STAGE")
        .and_then(|url| Stage::parse(url))
        .ok_or_else(|| BatchJobError::Children {
            id: id.to_string(),
            status: info.status.clone(),
            missing: vec!["the job was not submitted by tether (no stage)".into()],
        })?;
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
            status: info.status,
            missing,
        });
    }
    tasks.sort_by(|a, b| a.input.cmp(&b.input));
    let notes = vec![format!(
        "ran as Batch job {id} ({size} {})",
        if size == 1 { "job" } else { "children" }
    )];
    Ok((tasks, notes))
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
pub async fn status_line(cloud: &Cloud, project: &str, job: &JobSpec) -> Result<String, AwsError> {
    let batch = job.batch.as_ref().expect("a job on Batch");
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
    index: usize,
    scratch: &Path,
) -> Result<JobSummary, AgentError> {
    let fetch = |name: String| async move {
        cloud
            .object_bytes(&stage.bucket, &stage.key(&name))
            .await?
            .ok_or(AgentError::Missing(name))
    };
    let spec_text = fetch("spec.yaml".into()).await?;
    let spec_text = String::from_utf8_lossy(&spec_text).into_owned();
    let spec: Spec = crate::spec::parse("tether.yaml", &spec_text)
        .map_err(|e| AgentError::Spec(e.to_string()))?;
    let share: Share = serde_json::from_slice(&fetch(format!("share-{index}.json")).await?)
        .map_err(|e| AgentError::Spec(e.to_string()))?;
    let summary = remote::agent(
        cloud,
        &spec,
        share,
        scratch.to_path_buf(),
        &scratch.join("status.json"),
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
}
