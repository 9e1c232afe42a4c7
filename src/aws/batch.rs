//! AWS Batch: compute environments, job queues and job definitions, one function (or one
//! idempotent sequence) each, in tether's types. Creating what exists and deleting what is
//! gone succeed; a compute environment or queue is disabled before it is deleted, and the
//! deletion waits until Batch has let it go, as Batch requires.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_batch::types::{
    CeState, ComputeEnvironmentOrder, ComputeResource, ComputeResourceUpdate, CrType, JobTimeout,
    JqState, PlatformCapability, ResourceRequirement, ResourceType, RetryStrategy,
};

use super::{classify, AwsError, AwsErrorKind, Cloud};
use crate::model::{Address, Kind};

/// How long a compute environment or queue may take to settle (Batch documents minutes).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(900);

fn address(kind: Kind, name: &str) -> String {
    Address::new(kind, name).to_string()
}

fn service_error(operation: &'static str, resource: String, message: String) -> AwsError {
    AwsError {
        operation,
        resource,
        code: None,
        message,
        kind: AwsErrorKind::Service,
    }
}

fn tags_of(tags: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn hash_tags(tags: &BTreeMap<String, String>) -> HashMap<String, String> {
    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The last segment of an ARN's resource path (`.../name` or `...:name`).
pub fn arn_name(arn: &str) -> String {
    arn.rsplit(['/', ':']).next().unwrap_or(arn).to_string()
}

/// Waits until a compute environment or queue is no longer being created or updated (or,
/// with `gone`, deleted): `look` gives its status and reason, `None` once it is gone. An
/// `INVALID` one is an error with Batch's reason.
async fn settle<F, Fut>(
    operation: &'static str,
    resource: String,
    what: &str,
    gone: bool,
    mut look: F,
) -> Result<(), AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<(String, Option<String>)>, AwsError>>,
{
    let started = Instant::now();
    loop {
        match look().await? {
            None if gone => return Ok(()),
            None => {
                return Err(service_error(
                    operation,
                    resource,
                    format!("the {what} does not exist"),
                ))
            }
            Some((status, reason)) if !gone && status == "INVALID" => {
                return Err(service_error(
                    operation,
                    resource,
                    format!("the {what} is INVALID: {}", reason.unwrap_or_default()),
                ))
            }
            Some((status, _)) if !gone && status == "VALID" => return Ok(()),
            Some(_) => {}
        }
        if started.elapsed() > SETTLE_TIMEOUT {
            return Err(service_error(
                operation,
                resource,
                format!("the {what} did not settle within 15 minutes"),
            ));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// A compute environment as Batch describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComputeEnvironmentInfo {
    pub name: String,
    pub arn: String,
    /// `EC2`, `SPOT`, `FARGATE` or `FARGATE_SPOT`.
    pub kind: String,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    /// `CREATING`, `UPDATING`, `DELETING`, `DELETED`, `VALID` or `INVALID`.
    pub status: String,
    pub status_reason: Option<String>,
    pub max_vcpus: i32,
    pub min_vcpus: Option<i32>,
    pub instance_types: Vec<String>,
    pub bid_percentage: Option<i32>,
    pub security_group_ids: Vec<String>,
    /// The instance profile (ARN or name) its instances get.
    pub instance_role: Option<String>,
    pub service_role: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// What creating a compute environment takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComputeEnvironmentRequest {
    pub kind: String,
    pub max_vcpus: i32,
    pub min_vcpus: Option<i32>,
    pub instance_types: Vec<String>,
    pub bid_percentage: Option<i32>,
    pub subnets: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// The instance profile's ARN (EC2 and SPOT only).
    pub instance_role: Option<String>,
    /// The service role's ARN; `None`: Batch's service-linked role.
    pub service_role: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// A job queue as Batch describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobQueueInfo {
    pub name: String,
    pub arn: String,
    pub state: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub priority: i32,
    /// Compute environment names, in order.
    pub compute_environments: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// An active revision of a job definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobDefinitionInfo {
    pub name: String,
    pub arn: String,
    pub revision: i32,
    pub image: String,
    /// As Batch takes it: `1`, `0.25`, ...
    pub vcpus: String,
    pub memory_mb: String,
    pub job_role: Option<String>,
    pub execution_role: Option<String>,
    pub attempts: Option<i32>,
    /// Its retry strategy retries only attempts whose host was terminated (see
    /// `RECLAIMED`).
    pub retry_on_reclaim_only: bool,
    pub timeout_seconds: Option<i32>,
    /// `EC2` or `FARGATE`.
    pub platform: String,
    pub tags: BTreeMap<String, String>,
}

/// What registering a job definition revision takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobDefinitionRequest {
    pub image: String,
    pub vcpus: String,
    pub memory_mb: String,
    /// The job role's ARN.
    pub job_role: Option<String>,
    /// The execution role's ARN.
    pub execution_role: Option<String>,
    pub attempts: Option<i32>,
    /// Retry only attempts whose host was terminated (a spot reclaim).
    pub retry_on_reclaim_only: bool,
    pub timeout_seconds: Option<i32>,
    pub platform: String,
    pub tags: BTreeMap<String, String>,
}

/// How Batch words an attempt whose instance went away (a spot reclaim among them), as a
/// pattern of `evaluateOnExit`'s `onStatusReason`.
const RECLAIMED: &str = "Host EC2*";

/// The retry strategy's conditions for `retry_on: reclaim`: retry a reclaimed attempt, end
/// the job on any other failure.
fn reclaim_only() -> Vec<aws_sdk_batch::types::EvaluateOnExit> {
    use aws_sdk_batch::types::{EvaluateOnExit, RetryAction};
    vec![
        EvaluateOnExit::builder()
            .on_status_reason(RECLAIMED)
            .action(RetryAction::Retry)
            .build(),
        EvaluateOnExit::builder()
            .on_reason("*")
            .action(RetryAction::Exit)
            .build(),
    ]
}

/// Whether a retry strategy's conditions are `reclaim_only`'s. Batch takes actions in any
/// case and may give them back in lower case (`retry`), so they are compared without it.
fn is_reclaim_only(conditions: &[aws_sdk_batch::types::EvaluateOnExit]) -> bool {
    let action = |c: &aws_sdk_batch::types::EvaluateOnExit, wanted: &str| {
        c.action()
            .is_some_and(|a| a.as_str().eq_ignore_ascii_case(wanted))
    };
    let retries_reclaim = conditions
        .iter()
        .any(|c| action(c, "RETRY") && c.on_status_reason() == Some(RECLAIMED));
    let exits_otherwise = conditions
        .iter()
        .any(|c| action(c, "EXIT") && c.on_reason() == Some("*"));
    retries_reclaim && exits_otherwise
}

impl Cloud {
    /// The compute environments named (all of the region's when `names` is empty).
    pub async fn compute_environments(
        &self,
        names: &[String],
    ) -> Result<Vec<ComputeEnvironmentInfo>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self
            .batch
            .describe_compute_environments()
            .set_compute_environments((!names.is_empty()).then(|| names.to_vec()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeComputeEnvironments", "", e))?;
            for ce in page.compute_environments() {
                let resources = ce.compute_resources();
                found.push(ComputeEnvironmentInfo {
                    name: ce
                        .compute_environment_name()
                        .unwrap_or_default()
                        .to_string(),
                    arn: ce.compute_environment_arn().unwrap_or_default().to_string(),
                    kind: resources
                        .and_then(|r| r.r#type())
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    state: ce
                        .state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    status: ce
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    status_reason: ce.status_reason().map(str::to_string),
                    max_vcpus: resources.and_then(ComputeResource::maxv_cpus).unwrap_or(0),
                    min_vcpus: resources.and_then(ComputeResource::minv_cpus),
                    instance_types: resources
                        .map(|r| r.instance_types().to_vec())
                        .unwrap_or_default(),
                    bid_percentage: resources.and_then(ComputeResource::bid_percentage),
                    security_group_ids: resources
                        .map(|r| r.security_group_ids().to_vec())
                        .unwrap_or_default(),
                    instance_role: resources
                        .and_then(ComputeResource::instance_role)
                        .map(str::to_string),
                    service_role: ce.service_role().map(str::to_string),
                    tags: tags_of(ce.tags()),
                });
            }
        }
        Ok(found)
    }

    /// The compute environment of this name, unless it is gone.
    pub async fn compute_environment(
        &self,
        name: &str,
    ) -> Result<Option<ComputeEnvironmentInfo>, AwsError> {
        Ok(self
            .compute_environments(&[name.to_string()])
            .await?
            .into_iter()
            .find(|ce| ce.name == name && ce.status != "DELETED"))
    }

    /// Creates a managed compute environment, unless it exists; then waits until it is
    /// `VALID`.
    pub async fn create_compute_environment(
        &self,
        name: &str,
        request: &ComputeEnvironmentRequest,
    ) -> Result<(), AwsError> {
        let resource = address(Kind::BatchComputeEnvironment, name);
        if self.compute_environment(name).await?.is_none() {
            let fargate = request.kind.starts_with("FARGATE");
            let mut resources = ComputeResource::builder()
                .r#type(CrType::from(request.kind.as_str()))
                .maxv_cpus(request.max_vcpus)
                .set_subnets(Some(request.subnets.clone()))
                .set_security_group_ids(Some(request.security_group_ids.clone()));
            if !fargate {
                resources = resources
                    .minv_cpus(request.min_vcpus.unwrap_or(0))
                    .set_instance_types(Some(request.instance_types.clone()))
                    .set_instance_role(request.instance_role.clone())
                    .set_bid_percentage(request.bid_percentage);
            }
            let resources = resources.build();
            self.batch
                .create_compute_environment()
                .compute_environment_name(name)
                .r#type(aws_sdk_batch::types::CeType::Managed)
                .state(CeState::Enabled)
                .compute_resources(resources)
                .set_service_role(request.service_role.clone())
                .set_tags(Some(hash_tags(&request.tags)))
                .send()
                .await
                .map_err(|e| classify("CreateComputeEnvironment", &resource, e))?;
        }
        self.settle_compute_environment(name, false).await
    }

    /// Changes what Batch changes in place: vCPUs, security groups, the service role.
    pub async fn update_compute_environment(
        &self,
        name: &str,
        max_vcpus: i32,
        min_vcpus: Option<i32>,
        security_group_ids: &[String],
        service_role: Option<&str>,
    ) -> Result<(), AwsError> {
        let resource = address(Kind::BatchComputeEnvironment, name);
        let update = ComputeResourceUpdate::builder()
            .maxv_cpus(max_vcpus)
            .set_minv_cpus(min_vcpus)
            .set_security_group_ids(Some(security_group_ids.to_vec()))
            .build();
        self.batch
            .update_compute_environment()
            .compute_environment(name)
            .compute_resources(update)
            .set_service_role(service_role.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify("UpdateComputeEnvironment", &resource, e))?;
        self.settle_compute_environment(name, false).await
    }

    pub async fn set_compute_environment_tags(
        &self,
        arn: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        self.retag_batch(
            arn,
            &address(Kind::BatchComputeEnvironment, name),
            tags,
            remove,
        )
        .await
    }

    /// Disables the compute environment, waits until Batch has settled it, deletes it and
    /// waits until it is gone. Gone already is fine.
    pub async fn delete_compute_environment(&self, name: &str) -> Result<(), AwsError> {
        let resource = address(Kind::BatchComputeEnvironment, name);
        let Some(found) = self.compute_environment(name).await? else {
            return Ok(());
        };
        if found.state != "DISABLED" {
            self.settle_compute_environment(name, false).await?;
            self.batch
                .update_compute_environment()
                .compute_environment(name)
                .state(CeState::Disabled)
                .send()
                .await
                .map_err(|e| classify("UpdateComputeEnvironment", &resource, e))?;
            self.settle_compute_environment(name, false).await?;
        }
        if found.status != "DELETING" {
            self.batch
                .delete_compute_environment()
                .compute_environment(name)
                .send()
                .await
                .map_err(|e| classify("DeleteComputeEnvironment", &resource, e))?;
        }
        self.settle_compute_environment(name, true).await
    }

    /// Waits until the compute environment is no longer being created, updated (or, with
    /// `gone`, deleted); an `INVALID` one is an error with Batch's reason.
    async fn settle_compute_environment(&self, name: &str, gone: bool) -> Result<(), AwsError> {
        settle(
            "DescribeComputeEnvironments",
            address(Kind::BatchComputeEnvironment, name),
            "compute environment",
            gone,
            || async {
                Ok(self
                    .compute_environment(name)
                    .await?
                    .map(|ce| (ce.status, ce.status_reason)))
            },
        )
        .await
    }

    /// The job queues named (all of the region's when `names` is empty).
    pub async fn job_queues(&self, names: &[String]) -> Result<Vec<JobQueueInfo>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self
            .batch
            .describe_job_queues()
            .set_job_queues((!names.is_empty()).then(|| names.to_vec()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeJobQueues", "", e))?;
            for queue in page.job_queues() {
                let mut order: Vec<&ComputeEnvironmentOrder> =
                    queue.compute_environment_order().iter().collect();
                order.sort_by_key(|o| o.order());
                found.push(JobQueueInfo {
                    name: queue.job_queue_name().unwrap_or_default().to_string(),
                    arn: queue.job_queue_arn().unwrap_or_default().to_string(),
                    state: queue
                        .state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    status: queue
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    status_reason: queue.status_reason().map(str::to_string),
                    priority: queue.priority().unwrap_or(0),
                    compute_environments: order
                        .iter()
                        .filter_map(|o| o.compute_environment().map(arn_name))
                        .collect(),
                    tags: tags_of(queue.tags()),
                });
            }
        }
        Ok(found)
    }

    /// The job queue of this name, unless it is gone.
    pub async fn job_queue(&self, name: &str) -> Result<Option<JobQueueInfo>, AwsError> {
        Ok(self
            .job_queues(&[name.to_string()])
            .await?
            .into_iter()
            .find(|q| q.name == name && q.status != "DELETED"))
    }

    /// The queue's order of environments, by ARN (as Batch documents it) from names.
    async fn order(
        &self,
        queue: &str,
        compute_environments: &[String],
    ) -> Result<Vec<ComputeEnvironmentOrder>, AwsError> {
        let arns: BTreeMap<String, String> = self
            .compute_environments(compute_environments)
            .await?
            .into_iter()
            .filter(|ce| ce.status != "DELETED")
            .map(|ce| (ce.name, ce.arn))
            .collect();
        compute_environments
            .iter()
            .zip(1..)
            .map(|(ce, order)| {
                let arn = arns.get(ce).ok_or_else(|| {
                    service_error(
                        "CreateJobQueue",
                        address(Kind::BatchJobQueue, queue),
                        format!("compute environment `{ce}` does not exist"),
                    )
                })?;
                Ok(ComputeEnvironmentOrder::builder()
                    .order(order)
                    .compute_environment(arn)
                    .build())
            })
            .collect()
    }

    /// Creates the queue, unless it exists; then waits until it is `VALID`.
    pub async fn create_job_queue(
        &self,
        name: &str,
        priority: i32,
        compute_environments: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let resource = address(Kind::BatchJobQueue, name);
        if self.job_queue(name).await?.is_none() {
            self.batch
                .create_job_queue()
                .job_queue_name(name)
                .priority(priority)
                .state(JqState::Enabled)
                .set_compute_environment_order(Some(self.order(name, compute_environments).await?))
                .set_tags(Some(hash_tags(tags)))
                .send()
                .await
                .map_err(|e| classify("CreateJobQueue", &resource, e))?;
        }
        self.settle_job_queue(name, false).await
    }

    pub async fn update_job_queue(
        &self,
        name: &str,
        priority: i32,
        compute_environments: &[String],
    ) -> Result<(), AwsError> {
        let resource = address(Kind::BatchJobQueue, name);
        self.batch
            .update_job_queue()
            .job_queue(name)
            .priority(priority)
            .set_compute_environment_order(Some(self.order(name, compute_environments).await?))
            .send()
            .await
            .map_err(|e| classify("UpdateJobQueue", &resource, e))?;
        self.settle_job_queue(name, false).await
    }

    pub async fn set_job_queue_tags(
        &self,
        arn: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        self.retag_batch(arn, &address(Kind::BatchJobQueue, name), tags, remove)
            .await
    }

    /// Disables the queue, waits, deletes it and waits until it is gone.
    pub async fn delete_job_queue(&self, name: &str) -> Result<(), AwsError> {
        let resource = address(Kind::BatchJobQueue, name);
        let Some(found) = self.job_queue(name).await? else {
            return Ok(());
        };
        if found.state != "DISABLED" {
            self.settle_job_queue(name, false).await?;
            self.batch
                .update_job_queue()
                .job_queue(name)
                .state(JqState::Disabled)
                .send()
                .await
                .map_err(|e| classify("UpdateJobQueue", &resource, e))?;
            self.settle_job_queue(name, false).await?;
        }
        if found.status != "DELETING" {
            self.batch
                .delete_job_queue()
                .job_queue(name)
                .send()
                .await
                .map_err(|e| classify("DeleteJobQueue", &resource, e))?;
        }
        self.settle_job_queue(name, true).await
    }

    async fn settle_job_queue(&self, name: &str, gone: bool) -> Result<(), AwsError> {
        settle(
            "DescribeJobQueues",
            address(Kind::BatchJobQueue, name),
            "job queue",
            gone,
            || async {
                Ok(self
                    .job_queue(name)
                    .await?
                    .map(|queue| (queue.status, queue.status_reason)))
            },
        )
        .await
    }

    /// The active revisions of the job definitions named `name` (of all when `None`).
    pub async fn job_definitions(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<JobDefinitionInfo>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self
            .batch
            .describe_job_definitions()
            .status("ACTIVE")
            .set_job_definition_name(name.map(str::to_string))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeJobDefinitions", "", e))?;
            for definition in page.job_definitions() {
                let container = definition.container_properties();
                let requirement = |kind: ResourceType| {
                    container.and_then(|c| {
                        c.resource_requirements()
                            .iter()
                            .find(|r| r.r#type() == Some(&kind))
                            .and_then(|r| r.value().map(str::to_string))
                    })
                };
                // Definitions registered before resource requirements carry these.
                #[allow(deprecated)]
                let legacy_vcpus = container.and_then(|c| c.vcpus()).map(|v| v.to_string());
                #[allow(deprecated)]
                let legacy_memory = container.and_then(|c| c.memory()).map(|v| v.to_string());
                found.push(JobDefinitionInfo {
                    name: definition
                        .job_definition_name()
                        .unwrap_or_default()
                        .to_string(),
                    arn: definition
                        .job_definition_arn()
                        .unwrap_or_default()
                        .to_string(),
                    revision: definition.revision().unwrap_or(0),
                    image: container
                        .and_then(|c| c.image())
                        .unwrap_or_default()
                        .to_string(),
                    vcpus: requirement(ResourceType::Vcpu)
                        .or(legacy_vcpus)
                        .unwrap_or_default(),
                    memory_mb: requirement(ResourceType::Memory)
                        .or(legacy_memory)
                        .unwrap_or_default(),
                    job_role: container.and_then(|c| c.job_role_arn()).map(str::to_string),
                    execution_role: container
                        .and_then(|c| c.execution_role_arn())
                        .map(str::to_string),
                    attempts: definition
                        .retry_strategy()
                        .and_then(RetryStrategy::attempts),
                    retry_on_reclaim_only: definition
                        .retry_strategy()
                        .is_some_and(|r| is_reclaim_only(r.evaluate_on_exit())),
                    timeout_seconds: definition
                        .timeout()
                        .and_then(JobTimeout::attempt_duration_seconds),
                    platform: if definition
                        .platform_capabilities()
                        .contains(&PlatformCapability::Fargate)
                    {
                        "FARGATE".to_string()
                    } else {
                        "EC2".to_string()
                    },
                    tags: tags_of(definition.tags()),
                });
            }
        }
        Ok(found)
    }

    /// Registers a new revision of the job definition; returns its ARN.
    pub async fn register_job_definition(
        &self,
        name: &str,
        request: &JobDefinitionRequest,
    ) -> Result<String, AwsError> {
        let resource = address(Kind::BatchJobDefinition, name);
        let requirement = |kind: ResourceType, value: &str| {
            ResourceRequirement::builder()
                .r#type(kind)
                .value(value)
                .build()
        };
        let container = aws_sdk_batch::types::ContainerProperties::builder()
            .image(&request.image)
            .resource_requirements(requirement(ResourceType::Vcpu, &request.vcpus))
            .resource_requirements(requirement(ResourceType::Memory, &request.memory_mb))
            .set_job_role_arn(request.job_role.clone())
            .set_execution_role_arn(request.execution_role.clone())
            .build();
        let platform = if request.platform == "FARGATE" {
            PlatformCapability::Fargate
        } else {
            PlatformCapability::Ec2
        };
        let output = self
            .batch
            .register_job_definition()
            .job_definition_name(name)
            .r#type(aws_sdk_batch::types::JobDefinitionType::Container)
            .container_properties(container)
            .platform_capabilities(platform)
            .set_retry_strategy(request.attempts.map(|attempts| {
                RetryStrategy::builder()
                    .attempts(attempts)
                    .set_evaluate_on_exit(request.retry_on_reclaim_only.then(reclaim_only))
                    .build()
            }))
            .set_timeout(request.timeout_seconds.map(|seconds| {
                JobTimeout::builder()
                    .attempt_duration_seconds(seconds)
                    .build()
            }))
            .set_tags(Some(hash_tags(&request.tags)))
            .send()
            .await
            .map_err(|e| classify("RegisterJobDefinition", &resource, e))?;
        Ok(output.job_definition_arn().unwrap_or_default().to_string())
    }

    /// Deregisters one revision (by ARN); an inactive one is fine.
    pub async fn deregister_job_definition(&self, name: &str, arn: &str) -> Result<(), AwsError> {
        let result = self
            .batch
            .deregister_job_definition()
            .job_definition(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    "DeregisterJobDefinition",
                    &address(Kind::BatchJobDefinition, name),
                    e,
                )
            });
        match result {
            Err(error) if error.message.contains("INACTIVE") => Ok(()),
            other => other,
        }
    }

    async fn retag_batch(
        &self,
        arn: &str,
        resource: &str,
        tags: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        if !remove.is_empty() {
            self.batch
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(remove.to_vec()))
                .send()
                .await
                .map_err(|e| classify("UntagResource", resource, e))?;
        }
        if !tags.is_empty() {
            self.batch
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(hash_tags(tags)))
                .send()
                .await
                .map_err(|e| classify("TagResource", resource, e))?;
        }
        Ok(())
    }

    /// The default VPC's default subnets (one per availability zone), where tether's
    /// compute environments run.
    pub async fn default_subnets(&self) -> Result<Vec<String>, AwsError> {
        use aws_sdk_ec2::types::Filter;
        let Some(vpc) = self.default_vpc().await? else {
            return Ok(Vec::new());
        };
        let output = self
            .ec2
            .describe_subnets()
            .filters(Filter::builder().name("vpc-id").values(vpc).build())
            .send()
            .await
            .map_err(|e| classify("DescribeSubnets", "", e))?;
        let mut subnets: Vec<String> = output
            .subnets()
            .iter()
            .filter_map(|s| s.subnet_id().map(str::to_string))
            .collect();
        subnets.sort();
        Ok(subnets)
    }

    /// A role's ARN, if it exists.
    pub async fn role_arn(&self, role: &str) -> Result<Option<String>, AwsError> {
        let result = self
            .iam
            .get_role()
            .role_name(role)
            .send()
            .await
            .map_err(|e| classify("GetRole", &address(Kind::IamRole, role), e));
        Ok(super::none_if(result, "NoSuchEntity")?
            .and_then(|out| out.role().map(|r| r.arn().to_string())))
    }

    /// An instance profile's ARN, if it exists.
    pub async fn instance_profile_arn(&self, profile: &str) -> Result<Option<String>, AwsError> {
        let result = self
            .iam
            .get_instance_profile()
            .instance_profile_name(profile)
            .send()
            .await
            .map_err(|e| {
                classify(
                    "GetInstanceProfile",
                    &address(Kind::InstanceProfile, profile),
                    e,
                )
            });
        Ok(super::none_if(result, "NoSuchEntity")?
            .and_then(|out| out.instance_profile().map(|p| p.arn().to_string())))
    }

    /// Submits a job (an array job of `size` children when `size` > 1) with the command and
    /// environment given; returns its id.
    pub async fn submit_job(&self, job: &SubmitRequest) -> Result<String, AwsError> {
        let resource = address(Kind::BatchJobQueue, &job.queue);
        let environment: Vec<aws_sdk_batch::types::KeyValuePair> = job
            .environment
            .iter()
            .map(|(name, value)| {
                aws_sdk_batch::types::KeyValuePair::builder()
                    .name(name)
                    .value(value)
                    .build()
            })
            .collect();
        let overrides = aws_sdk_batch::types::ContainerOverrides::builder()
            .set_command(Some(job.command.clone()))
            .set_environment(Some(environment))
            .build();
        let mut request = self
            .batch
            .submit_job()
            .job_name(&job.name)
            .job_queue(&job.queue)
            .job_definition(&job.definition)
            .container_overrides(overrides)
            .set_tags(Some(hash_tags(&job.tags)));
        if job.size > 1 {
            request = request.array_properties(
                aws_sdk_batch::types::ArrayProperties::builder()
                    .size(job.size)
                    .build(),
            );
        }
        let output = request
            .send()
            .await
            .map_err(|e| classify("SubmitJob", &resource, e))?;
        Ok(output.job_id().unwrap_or_default().to_string())
    }

    /// Job `id` as DescribeJobs gives it, if Batch still knows it.
    async fn describe_job(
        &self,
        id: &str,
    ) -> Result<Option<aws_sdk_batch::types::JobDetail>, AwsError> {
        let output = self
            .batch
            .describe_jobs()
            .jobs(id)
            .send()
            .await
            .map_err(|e| classify("DescribeJobs", id, e))?;
        Ok(output.jobs().first().cloned())
    }

    /// A submitted job's status, its children's counts by status, and what it was given.
    pub async fn job_status(&self, id: &str) -> Result<Option<JobStatusInfo>, AwsError> {
        Ok(self.describe_job(id).await?.map(|job| JobStatusInfo {
            id: job.job_id().unwrap_or_default().to_string(),
            name: job.job_name().unwrap_or_default().to_string(),
            status: job
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            status_reason: job.status_reason().map(str::to_string),
            size: job.array_properties().and_then(|a| a.size()).unwrap_or(1),
            children: job
                .array_properties()
                .and_then(|a| a.status_summary())
                .map(|summary| {
                    summary
                        .iter()
                        .map(|(status, count)| (status.clone(), *count))
                        .collect()
                })
                .unwrap_or_default(),
            environment: job
                .container()
                .map(|c| {
                    c.environment()
                        .iter()
                        .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            created: job.created_at().unwrap_or(0),
            queue: arn_name(job.job_queue().unwrap_or_default()),
            attempts_allowed: job
                .retry_strategy()
                .and_then(RetryStrategy::attempts)
                .unwrap_or(1),
            attempts: job.attempts().iter().map(attempt_reason).collect(),
        }))
    }

    /// The children of array job `id` that succeeded after more than one attempt (a spot
    /// instance reclaimed under them, say), with why each earlier attempt ended.
    pub async fn retried_children(&self, id: &str) -> Result<Vec<RetriedChild>, AwsError> {
        let children = self
            .children(id, aws_sdk_batch::types::JobStatus::Succeeded)
            .await?;
        let mut found: Vec<RetriedChild> = children
            .iter()
            .filter(|child| child.attempts().len() > 1)
            .map(|child| {
                let attempts = child.attempts();
                RetriedChild {
                    index: child_index(child),
                    ended: attempts[..attempts.len() - 1]
                        .iter()
                        .map(attempt_reason)
                        .collect(),
                }
            })
            .collect();
        found.sort_by_key(|child| child.index);
        Ok(found)
    }

    /// The failed children of an array job: index, reason, log stream.
    pub async fn failed_children(&self, id: &str) -> Result<Vec<FailedChild>, AwsError> {
        let children = self
            .children(id, aws_sdk_batch::types::JobStatus::Failed)
            .await?;
        let mut found: Vec<FailedChild> = children
            .iter()
            .map(|child| FailedChild {
                index: child_index(child),
                reason: child.status_reason().map(str::to_string).or_else(|| {
                    child
                        .container()
                        .and_then(|c| c.reason())
                        .map(str::to_string)
                }),
                log_stream: child
                    .container()
                    .and_then(|c| c.log_stream_name())
                    .map(str::to_string),
            })
            .collect();
        found.sort_by_key(|child| child.index);
        Ok(found)
    }

    /// Job `id`'s status (`None` when Batch no longer knows it) and the log streams of its
    /// containers: each child's (or, for a job that is no array, the job's own), one per
    /// attempt that started a container, oldest first.
    pub async fn log_streams(
        &self,
        id: &str,
    ) -> Result<(Option<String>, Vec<ChildStream>), AwsError> {
        let Some(job) = self.describe_job(id).await? else {
            return Ok((None, Vec::new()));
        };
        let status = job.status().map(|s| s.as_str().to_string());
        let details = if job.array_properties().and_then(|a| a.size()).is_some() {
            use aws_sdk_batch::types::JobStatus;
            let mut children = Vec::new();
            for status in [
                JobStatus::Starting,
                JobStatus::Running,
                JobStatus::Succeeded,
                JobStatus::Failed,
            ] {
                children.extend(self.children(id, status).await?);
            }
            children
        } else {
            vec![job]
        };
        let mut streams = Vec::new();
        for detail in &details {
            let index = child_index(detail);
            let mut names: Vec<&str> = detail
                .attempts()
                .iter()
                .filter_map(|a| a.container().and_then(|c| c.log_stream_name()))
                .collect();
            // The attempt under way is not among the ended ones yet.
            if let Some(current) = detail.container().and_then(|c| c.log_stream_name()) {
                if !names.contains(&current) {
                    names.push(current);
                }
            }
            streams.extend(
                names
                    .into_iter()
                    .enumerate()
                    .map(|(n, stream)| ChildStream {
                        index,
                        attempt: n + 1,
                        stream: stream.to_string(),
                    }),
            );
        }
        streams.sort_by_key(|s| (s.index, s.attempt));
        Ok((status, streams))
    }

    /// The full descriptions of array job `id`'s children in `status`: listed, then
    /// described 100 per call (attempts and log streams are only in a description).
    async fn children(
        &self,
        id: &str,
        status: aws_sdk_batch::types::JobStatus,
    ) -> Result<Vec<aws_sdk_batch::types::JobDetail>, AwsError> {
        let mut ids = Vec::new();
        let mut pages = self
            .batch
            .list_jobs()
            .array_job_id(id)
            .job_status(status)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListJobs", id, e))?;
            ids.extend(
                page.job_summary_list()
                    .iter()
                    .filter_map(|child| child.job_id().map(str::to_string)),
            );
        }
        let mut described = Vec::new();
        for chunk in ids.chunks(100) {
            let output = self
                .batch
                .describe_jobs()
                .set_jobs(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| classify("DescribeJobs", id, e))?;
            described.extend(output.jobs().iter().cloned());
        }
        Ok(described)
    }

    /// The ids of the jobs named `name` in `queue`, newest first.
    pub async fn jobs_named(&self, queue: &str, name: &str) -> Result<Vec<String>, AwsError> {
        let mut found: Vec<(i64, String)> = Vec::new();
        let mut pages = self
            .batch
            .list_jobs()
            .job_queue(queue)
            .filters(
                aws_sdk_batch::types::KeyValuesPair::builder()
                    .name("JOB_NAME")
                    .values(name)
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| classify("ListJobs", &address(Kind::BatchJobQueue, queue), e))?;
            for job in page.job_summary_list() {
                // A child's id is its array job's and its index (`<id>:<index>`); only the
                // array job itself is followed.
                let child = job.array_properties().and_then(|a| a.index()).is_some()
                    || job.job_id().is_some_and(|id| id.contains(':'));
                if job.job_name() == Some(name) && !child {
                    found.push((
                        job.created_at().unwrap_or(0),
                        job.job_id().unwrap_or_default().to_string(),
                    ));
                }
            }
        }
        found.sort();
        Ok(found.into_iter().rev().map(|(_, id)| id).collect())
    }

    /// Asks Batch to end the job (and its children).
    pub async fn terminate_job(&self, id: &str, reason: &str) -> Result<(), AwsError> {
        self.batch
            .terminate_job()
            .job_id(id)
            .reason(reason)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("TerminateJob", id, e))
    }
}

/// A child's index in its array job: from its array properties, or from its id
/// (`<array job id>:<index>`, as Batch documents it).
fn child_index(child: &aws_sdk_batch::types::JobDetail) -> Option<i32> {
    child
        .array_properties()
        .and_then(|a| a.index())
        .or_else(|| {
            child
                .job_id()
                .and_then(|id| id.rsplit_once(':'))
                .and_then(|(_, index)| index.parse().ok())
        })
}

/// Why an attempt ended: its status reason (`Host EC2 (instance i-…) terminated.` after a
/// spot reclaim), else its container's reason or exit code.
fn attempt_reason(attempt: &aws_sdk_batch::types::AttemptDetail) -> String {
    let container = attempt.container();
    attempt
        .status_reason()
        .or_else(|| container.and_then(|c| c.reason()))
        .map(str::to_string)
        .or_else(|| {
            container
                .and_then(|c| c.exit_code())
                .map(|code| format!("exit code {code}"))
        })
        .unwrap_or_else(|| "no reason given".to_string())
}

/// What submitting a job takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitRequest {
    pub name: String,
    pub queue: String,
    /// The definition's name (its active revision) or ARN.
    pub definition: String,
    /// Children of the array job; 1: a plain job.
    pub size: i32,
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub tags: BTreeMap<String, String>,
}

/// A submitted job as Batch describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStatusInfo {
    pub id: String,
    pub name: String,
    /// `SUBMITTED`, `PENDING`, `RUNNABLE`, `STARTING`, `RUNNING`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub status_reason: Option<String>,
    /// Children of the array job; 1 for a plain job.
    pub size: i32,
    /// Children by status (array jobs).
    pub children: BTreeMap<String, i32>,
    /// The container's environment as submitted.
    pub environment: BTreeMap<String, String>,
    /// Milliseconds since the Unix epoch.
    pub created: i64,
    /// The queue's name.
    pub queue: String,
    /// Attempts its retry strategy allows (1: no retry).
    pub attempts_allowed: i32,
    /// Why each ended attempt of a plain job ended (an array job's are its children's).
    pub attempts: Vec<String>,
}

/// A child that succeeded on a later attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetriedChild {
    pub index: Option<i32>,
    /// Why each earlier attempt ended.
    pub ended: Vec<String>,
}

/// A container's log stream of a Batch job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildStream {
    /// The child's array index; `None` for a job that is no array.
    pub index: Option<i32>,
    /// Which attempt of the child (1 for the first) wrote it.
    pub attempt: usize,
    pub stream: String,
}

/// A child that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedChild {
    pub index: Option<i32>,
    pub reason: Option<String>,
    pub log_stream: Option<String>,
}
