//! AWS Batch job queues: a priority and an ordered list of compute environments, owned by
//! tags, changed in place. Batch requires a queue to be disabled before it is deleted; its
//! compute environments are deleted after it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    attribute, ownership, ownership_tags, Address, Attribute, AttributeFormat, Kind, Ownership,
};
use crate::spec::Spec;

use super::{
    refused, removed_keys, Context, DesiredResource, Intent, ResourceKind, ResourceState,
    SpecContext, Step, StepFailure,
};

/// The comparable state of a job queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobQueueState {
    pub tags: BTreeMap<String, String>,
    pub priority: i32,
    /// Compute environment names, in the order Batch tries them.
    pub compute_environments: Vec<String>,
    /// Batch's status and reason (live only; shown, not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A queue's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum JobQueueOp {
    Create {
        name: String,
        priority: i32,
        compute_environments: Vec<String>,
        tags: BTreeMap<String, String>,
    },
    Update {
        name: String,
        priority: i32,
        compute_environments: Vec<String>,
    },
    SetTags {
        name: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// Disable, wait, delete, wait until gone.
    Delete { name: String },
}

/// The job queue kind.
pub struct BatchJobQueue;

/// A listed job queue as a live resource, its status shown.
pub(crate) fn read(queue: crate::aws::JobQueueInfo) -> super::LiveResource {
    super::LiveResource {
        address: Address::new(Kind::BatchJobQueue, &queue.name),
        // A queue refers to its environments: they are deleted after it.
        depends_on: queue
            .compute_environments
            .iter()
            .map(|ce| Address::new(Kind::BatchComputeEnvironment, ce))
            .collect(),
        state: ResourceState::BatchJobQueue(JobQueueState {
            tags: queue.tags,
            priority: queue.priority,
            compute_environments: queue.compute_environments,
            status: Some(match queue.status_reason {
                Some(reason) => format!("{} {} ({reason})", queue.state, queue.status),
                None => format!("{} {}", queue.state, queue.status),
            }),
        }),
    }
}

impl ResourceKind for BatchJobQueue {
    const KIND: Kind = Kind::BatchJobQueue;
    type State = JobQueueState;
    type Op = JobQueueOp;

    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.batch
            .job_queues
            .values()
            .map(|queue| {
                let mut tags = queue.tags.clone();
                tags.extend(ownership_tags(env.project, &queue.name));
                DesiredResource {
                    address: Address::new(Kind::BatchJobQueue, &queue.name),
                    state: ResourceState::BatchJobQueue(JobQueueState {
                        tags,
                        priority: queue.priority,
                        compute_environments: queue.compute_environments.clone(),
                        status: None,
                    }),
                    adopt: queue.adopt,
                    depends_on: queue
                        .compute_environments
                        .iter()
                        .map(|ce| Address::new(Kind::BatchComputeEnvironment, ce))
                        .collect(),
                    location: queue.location.clone(),
                }
            })
            .collect()
    }

    fn attributes(queue: &JobQueueState) -> Vec<Attribute> {
        use AttributeFormat::{Map, Value as Scalar};
        vec![
            attribute("priority", queue.priority, Scalar),
            attribute("compute_environments", &queue.compute_environments, Scalar),
            attribute("tags", &queue.tags, Map),
        ]
    }

    fn ownership(queue: &JobQueueState, project: &str) -> Ownership {
        ownership(&queue.tags, project)
    }

    fn create(
        name: &str,
        queue: &JobQueueState,
        _replacing: Option<&JobQueueState>,
        _context: &Context,
    ) -> Vec<JobQueueOp> {
        vec![JobQueueOp::Create {
            name: name.to_string(),
            priority: queue.priority,
            compute_environments: queue.compute_environments.clone(),
            tags: queue.tags.clone(),
        }]
    }

    fn update(
        name: &str,
        before: &JobQueueState,
        after: &JobQueueState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<JobQueueOp> {
        let mut ops = Vec::new();
        if before.tags != after.tags {
            ops.push(JobQueueOp::SetTags {
                name: name.to_string(),
                tags: after.tags.clone(),
                remove: removed_keys(&before.tags, &after.tags),
            });
        }
        if (before.priority, &before.compute_environments)
            != (after.priority, &after.compute_environments)
        {
            ops.push(JobQueueOp::Update {
                name: name.to_string(),
                priority: after.priority,
                compute_environments: after.compute_environments.clone(),
            });
        }
        ops
    }

    fn delete(
        name: &str,
        _before: &JobQueueState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<JobQueueOp> {
        vec![JobQueueOp::Delete {
            name: name.to_string(),
        }]
    }

    fn describe(op: &JobQueueOp) -> &'static str {
        match op {
            JobQueueOp::Create { .. } => "creating job queue, then waiting until it is valid",
            JobQueueOp::Update { .. } => "updating job queue",
            JobQueueOp::SetTags { .. } => "tagging",
            JobQueueOp::Delete { .. } => {
                "disabling and deleting job queue, then waiting until it is gone"
            }
        }
    }

    async fn run(op: &JobQueueOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let cloud = step.cloud;
        match op {
            JobQueueOp::Create {
                name,
                priority,
                compute_environments,
                tags,
            } => {
                cloud
                    .create_job_queue(name, *priority, compute_environments, tags)
                    .await?;
            }
            JobQueueOp::Update {
                name,
                priority,
                compute_environments,
            } => {
                cloud
                    .update_job_queue(name, *priority, compute_environments)
                    .await?;
            }
            JobQueueOp::SetTags { name, tags, remove } => {
                let arn = cloud.job_queue(name).await?.map(|q| q.arn).ok_or_else(|| {
                    refused(
                        "TagResource",
                        Address::new(Kind::BatchJobQueue, name).to_string(),
                        "the job queue does not exist".into(),
                    )
                })?;
                cloud.set_job_queue_tags(&arn, name, tags, remove).await?;
            }
            JobQueueOp::Delete { name } => cloud.delete_job_queue(name).await?,
        }
        Ok(())
    }
}
