//! AWS Batch job definitions: a container image with its vCPUs, memory, roles, retries and
//! timeout, owned by tags. Batch never changes a revision: a change registers the next
//! revision and deregisters the one the plan saw, so jobs already submitted keep theirs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aws::{Cloud, JobDefinitionInfo, JobDefinitionRequest};
use crate::model::{
    attribute, ownership, ownership_tags, Address, Attribute, AttributeFormat, Kind, Ownership,
};
use crate::spec::{RetryOn, Spec};

use super::{
    refused, Context, DesiredResource, Intent, ResourceKind, ResourceState, SpecContext, Step,
    StepFailure,
};

/// The comparable state of a job definition (its active revision).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobDefinitionState {
    pub tags: BTreeMap<String, String>,
    pub image: String,
    pub vcpus: String,
    pub memory_mb: String,
    /// Role names.
    pub job_role: Option<String>,
    pub execution_role: Option<String>,
    pub attempts: Option<i32>,
    /// Which failed attempts run again.
    #[serde(default)]
    pub retry_on: RetryOn,
    pub timeout_seconds: Option<i32>,
    /// `EC2` or `FARGATE`.
    pub platform: String,
    /// The active revision's ARN (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

/// A job definition's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum JobDefinitionOp {
    /// Resolve the roles and register a new revision.
    Register {
        name: String,
        state: Box<JobDefinitionState>,
    },
    /// Deregister one revision (the one the plan saw).
    Deregister { name: String, arn: String },
    /// Deregister every active revision.
    DeregisterAll { name: String },
}

/// The job definition kind.
pub struct BatchJobDefinition;

/// A listed revision (the newest active one of its name) as a live resource.
pub(crate) fn read(definition: &JobDefinitionInfo) -> super::LiveResource {
    let state = state_of(definition);
    super::LiveResource {
        address: Address::new(Kind::BatchJobDefinition, &definition.name),
        depends_on: state
            .job_role
            .iter()
            .chain(&state.execution_role)
            .map(|role| Address::new(Kind::IamRole, role))
            .collect(),
        state: ResourceState::BatchJobDefinition(state),
    }
}

impl ResourceKind for BatchJobDefinition {
    const KIND: Kind = Kind::BatchJobDefinition;
    type State = JobDefinitionState;
    type Op = JobDefinitionOp;

    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.batch
            .job_definitions
            .values()
            .map(|definition| {
                let mut tags = definition.tags.clone();
                tags.extend(ownership_tags(env.project, &definition.name));
                DesiredResource {
                    address: Address::new(Kind::BatchJobDefinition, &definition.name),
                    state: ResourceState::BatchJobDefinition(JobDefinitionState {
                        tags,
                        image: definition.image.clone(),
                        vcpus: definition.vcpus.clone(),
                        memory_mb: definition.memory_mb.to_string(),
                        job_role: definition.job_role.clone(),
                        execution_role: definition.execution_role.clone(),
                        attempts: definition.attempts,
                        retry_on: definition.retry_on,
                        timeout_seconds: definition.timeout_seconds,
                        platform: definition.platform.clone(),
                        arn: None,
                    }),
                    adopt: definition.adopt,
                    depends_on: definition
                        .job_role
                        .iter()
                        .chain(&definition.execution_role)
                        .map(|role| Address::new(Kind::IamRole, role))
                        .collect(),
                    location: definition.location.clone(),
                }
            })
            .collect()
    }

    fn attributes(definition: &JobDefinitionState) -> Vec<Attribute> {
        use AttributeFormat::{Map, Value as Scalar};
        vec![
            attribute("image", &definition.image, Scalar),
            attribute("vcpus", &definition.vcpus, Scalar),
            attribute("memory_mb", &definition.memory_mb, Scalar),
            attribute("job_role", &definition.job_role, Scalar),
            attribute("execution_role", &definition.execution_role, Scalar),
            attribute("attempts", definition.attempts, Scalar),
            attribute("retry_on", definition.retry_on, Scalar),
            attribute("timeout_seconds", definition.timeout_seconds, Scalar),
            attribute("platform", &definition.platform, Scalar),
            attribute("tags", &definition.tags, Map),
        ]
    }

    fn ownership(definition: &JobDefinitionState, project: &str) -> Ownership {
        ownership(&definition.tags, project)
    }

    fn create(
        name: &str,
        definition: &JobDefinitionState,
        _replacing: Option<&JobDefinitionState>,
        _context: &Context,
    ) -> Vec<JobDefinitionOp> {
        vec![JobDefinitionOp::Register {
            name: name.to_string(),
            state: Box::new(definition.clone()),
        }]
    }

    /// The next revision first, so that the definition is never without an active one.
    fn update(
        name: &str,
        before: &JobDefinitionState,
        after: &JobDefinitionState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<JobDefinitionOp> {
        let mut ops = vec![JobDefinitionOp::Register {
            name: name.to_string(),
            state: Box::new(after.clone()),
        }];
        ops.extend(before.arn.iter().map(|arn| JobDefinitionOp::Deregister {
            name: name.to_string(),
            arn: arn.clone(),
        }));
        ops
    }

    fn delete(
        name: &str,
        _before: &JobDefinitionState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<JobDefinitionOp> {
        vec![JobDefinitionOp::DeregisterAll {
            name: name.to_string(),
        }]
    }

    fn describe(op: &JobDefinitionOp) -> &'static str {
        match op {
            JobDefinitionOp::Register { .. } => "registering job definition revision",
            JobDefinitionOp::Deregister { .. } => "deregistering the previous revision",
            JobDefinitionOp::DeregisterAll { .. } => "deregistering job definition",
        }
    }

    async fn run(op: &JobDefinitionOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let cloud = step.cloud;
        match op {
            JobDefinitionOp::Register { name, state } => {
                // A repeated step finds the revision it registered: active, and equal.
                let current = cloud
                    .job_definitions(Some(name))
                    .await?
                    .into_iter()
                    .max_by_key(|d| d.revision);
                let done = current.is_some_and(|current| {
                    let mut found = state_of(&current);
                    found.arn = None;
                    found == **state
                });
                if !done {
                    let request = request(cloud, name, state).await?;
                    cloud.register_job_definition(name, &request).await?;
                }
            }
            JobDefinitionOp::Deregister { name, arn } => {
                cloud.deregister_job_definition(name, arn).await?;
            }
            JobDefinitionOp::DeregisterAll { name } => {
                for definition in cloud.job_definitions(Some(name)).await? {
                    cloud
                        .deregister_job_definition(name, &definition.arn)
                        .await?;
                }
            }
        }
        Ok(())
    }

    fn update_note(before: &JobDefinitionState, _after: &JobDefinitionState) -> Option<String> {
        Some(match &before.arn {
            Some(arn) => format!(
                "registers the next revision and deregisters {}; jobs already submitted keep theirs",
                // `arn:...:job-definition/count:1` -> `count:1`
                arn.rsplit('/').next().unwrap_or(arn)
            ),
            None => "registers the next revision".to_string(),
        })
    }
}

/// A revision as a state: role ARNs as names.
pub fn state_of(info: &JobDefinitionInfo) -> JobDefinitionState {
    JobDefinitionState {
        tags: info.tags.clone(),
        image: info.image.clone(),
        vcpus: info.vcpus.clone(),
        memory_mb: info.memory_mb.clone(),
        job_role: info.job_role.as_deref().map(crate::aws::arn_name),
        execution_role: info.execution_role.as_deref().map(crate::aws::arn_name),
        attempts: info.attempts,
        retry_on: if info.retry_on_reclaim_only {
            RetryOn::Reclaim
        } else {
            RetryOn::Failure
        },
        timeout_seconds: info.timeout_seconds,
        platform: info.platform.clone(),
        arn: Some(info.arn.clone()),
    }
}

async fn request(
    cloud: &Cloud,
    name: &str,
    state: &JobDefinitionState,
) -> Result<JobDefinitionRequest, StepFailure> {
    let address = Address::new(Kind::BatchJobDefinition, name).to_string();
    let mut arns = Vec::new();
    for role in [&state.job_role, &state.execution_role] {
        arns.push(match role {
            None => None,
            Some(role) => Some(cloud.role_arn(role).await?.ok_or_else(|| {
                refused(
                    "RegisterJobDefinition",
                    address.clone(),
                    format!("role `{role}` does not exist"),
                )
            })?),
        });
    }
    let execution_role = arns.pop().flatten();
    let job_role = arns.pop().flatten();
    Ok(JobDefinitionRequest {
        image: state.image.clone(),
        vcpus: state.vcpus.clone(),
        memory_mb: state.memory_mb.clone(),
        job_role,
        execution_role,
        attempts: state.attempts,
        retry_on_reclaim_only: state.retry_on == RetryOn::Reclaim,
        timeout_seconds: state.timeout_seconds,
        platform: state.platform.clone(),
        tags: state.tags.clone(),
    })
}
