//! AWS Batch compute environments: managed, in the default VPC's subnets, owned by tags.
//! vCPUs, security groups and the service role change in place; the kind, instance types,
//! bid and instance role are fixed at creation (a replacement). Batch requires an
//! environment to be disabled, and out of every queue, before it is deleted.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::aws::{Cloud, ComputeEnvironmentInfo, ComputeEnvironmentRequest};
use crate::model::{
    attribute, ownership, ownership_tags, Address, Attribute, AttributeFormat, Kind, Ownership,
};
use crate::spec::Spec;

use super::{
    refused, removed_keys, Context, DesiredResource, Intent, ResourceKind, ResourceState,
    SpecContext, Step, StepFailure,
};

/// The comparable state of a compute environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComputeEnvironmentState {
    pub tags: BTreeMap<String, String>,
    /// `EC2`, `SPOT`, `FARGATE` or `FARGATE_SPOT`.
    pub kind: String,
    pub max_vcpus: i32,
    pub min_vcpus: Option<i32>,
    pub instance_types: BTreeSet<String>,
    pub bid_percentage: Option<i32>,
    /// Security group names.
    pub security_groups: BTreeSet<String>,
    /// The instance profile's (and its role's) name.
    pub instance_role: Option<String>,
    /// The service role's name; `None`: Batch's service-linked role.
    pub service_role: Option<String>,
    /// Batch's status and reason (live only; shown, not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A compute environment's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum ComputeEnvironmentOp {
    /// Resolve the security groups, subnets and roles, create it, wait until it is valid.
    Create {
        name: String,
        state: Box<ComputeEnvironmentState>,
    },
    Update {
        name: String,
        state: Box<ComputeEnvironmentState>,
    },
    SetTags {
        name: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// Disable, wait, delete, wait until gone.
    Delete { name: String },
}

/// The compute environment kind.
pub struct BatchComputeEnvironment;

/// The role names of ARNs, as states hold them: Batch's own service-linked role is no
/// role of the spec's, so it reads as none.
pub fn role_name(arn: Option<&str>) -> Option<String> {
    arn.map(crate::aws::arn_name)
        .filter(|name| name != "AWSServiceRoleForBatch")
}

/// An environment as a state: security group ids as names (by `group_names`), role ARNs as
/// names, the status shown.
pub fn state_of(
    info: &ComputeEnvironmentInfo,
    group_names: &BTreeMap<String, String>,
) -> ComputeEnvironmentState {
    ComputeEnvironmentState {
        tags: info.tags.clone(),
        kind: info.kind.clone(),
        max_vcpus: info.max_vcpus,
        min_vcpus: info.min_vcpus.filter(|_| !info.kind.starts_with("FARGATE")),
        instance_types: info.instance_types.iter().cloned().collect(),
        bid_percentage: info.bid_percentage.filter(|_| info.kind == "SPOT"),
        security_groups: info
            .security_group_ids
            .iter()
            .map(|id| group_names.get(id).cloned().unwrap_or_else(|| id.clone()))
            .collect(),
        instance_role: info.instance_role.as_deref().map(crate::aws::arn_name),
        service_role: role_name(info.service_role.as_deref()),
        status: Some(match &info.status_reason {
            Some(reason) => format!("{} {} ({reason})", info.state, info.status),
            None => format!("{} {}", info.state, info.status),
        }),
    }
}

/// A listed environment as a live resource (`group_names`: security group names by id).
pub(crate) fn read(
    info: &ComputeEnvironmentInfo,
    group_names: &BTreeMap<String, String>,
) -> super::LiveResource {
    let state = state_of(info, group_names);
    let mut depends_on: Vec<Address> = state
        .security_groups
        .iter()
        .map(|g| Address::new(Kind::SecurityGroup, g))
        .collect();
    depends_on.extend(
        state
            .instance_role
            .iter()
            .map(|p| Address::new(Kind::InstanceProfile, p)),
    );
    depends_on.extend(
        state
            .service_role
            .iter()
            .map(|r| Address::new(Kind::IamRole, r)),
    );
    super::LiveResource {
        address: Address::new(Kind::BatchComputeEnvironment, &info.name),
        depends_on,
        state: ResourceState::BatchComputeEnvironment(state),
    }
}

impl ResourceKind for BatchComputeEnvironment {
    const KIND: Kind = Kind::BatchComputeEnvironment;
    type State = ComputeEnvironmentState;
    type Op = ComputeEnvironmentOp;

    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.batch
            .compute_environments
            .values()
            .map(|ce| {
                let mut tags = ce.tags.clone();
                tags.extend(ownership_tags(env.project, &ce.name));
                let mut depends_on: Vec<Address> = ce
                    .security_groups
                    .iter()
                    .map(|g| Address::new(Kind::SecurityGroup, g))
                    .collect();
                depends_on.extend(
                    ce.instance_role
                        .iter()
                        .map(|r| Address::new(Kind::InstanceProfile, r)),
                );
                depends_on.extend(
                    ce.service_role
                        .iter()
                        .map(|r| Address::new(Kind::IamRole, r)),
                );
                DesiredResource {
                    address: Address::new(Kind::BatchComputeEnvironment, &ce.name),
                    state: ResourceState::BatchComputeEnvironment(ComputeEnvironmentState {
                        tags,
                        kind: ce.kind.as_str().to_string(),
                        max_vcpus: ce.max_vcpus,
                        min_vcpus: ce.min_vcpus,
                        instance_types: ce.instance_types.clone(),
                        bid_percentage: ce.bid_percentage,
                        security_groups: ce.security_groups.clone(),
                        instance_role: ce.instance_role.clone(),
                        service_role: ce.service_role.clone(),
                        status: None,
                    }),
                    adopt: ce.adopt,
                    depends_on,
                    location: ce.location.clone(),
                }
            })
            .collect()
    }

    fn attributes(ce: &ComputeEnvironmentState) -> Vec<Attribute> {
        use AttributeFormat::{Map, Value as Scalar};
        vec![
            attribute("kind", &ce.kind, Scalar).forcing(),
            attribute("max_vcpus", ce.max_vcpus, Scalar),
            attribute("min_vcpus", ce.min_vcpus, Scalar),
            attribute("instance_types", &ce.instance_types, Scalar).forcing(),
            attribute("bid_percentage", ce.bid_percentage, Scalar).forcing(),
            attribute("security_groups", &ce.security_groups, Scalar),
            attribute("instance_role", &ce.instance_role, Scalar).forcing(),
            attribute("service_role", &ce.service_role, Scalar),
            attribute("tags", &ce.tags, Map),
        ]
    }

    fn ownership(ce: &ComputeEnvironmentState, project: &str) -> Ownership {
        ownership(&ce.tags, project)
    }

    fn create(
        name: &str,
        ce: &ComputeEnvironmentState,
        _replacing: Option<&ComputeEnvironmentState>,
        _context: &Context,
    ) -> Vec<ComputeEnvironmentOp> {
        vec![ComputeEnvironmentOp::Create {
            name: name.to_string(),
            state: Box::new(ce.clone()),
        }]
    }

    /// Tags first (an adoption marks it), then what Batch changes in place.
    fn update(
        name: &str,
        before: &ComputeEnvironmentState,
        after: &ComputeEnvironmentState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<ComputeEnvironmentOp> {
        let mut ops = Vec::new();
        if before.tags != after.tags {
            ops.push(ComputeEnvironmentOp::SetTags {
                name: name.to_string(),
                tags: after.tags.clone(),
                remove: removed_keys(&before.tags, &after.tags),
            });
        }
        let in_place = |s: &ComputeEnvironmentState| {
            (
                s.max_vcpus,
                s.min_vcpus,
                s.security_groups.clone(),
                s.service_role.clone(),
            )
        };
        if in_place(before) != in_place(after) {
            ops.push(ComputeEnvironmentOp::Update {
                name: name.to_string(),
                state: Box::new(after.clone()),
            });
        }
        ops
    }

    fn delete(
        name: &str,
        _before: &ComputeEnvironmentState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<ComputeEnvironmentOp> {
        vec![ComputeEnvironmentOp::Delete {
            name: name.to_string(),
        }]
    }

    fn describe(op: &ComputeEnvironmentOp) -> &'static str {
        match op {
            ComputeEnvironmentOp::Create { .. } => {
                "creating compute environment, then waiting until it is valid"
            }
            ComputeEnvironmentOp::Update { .. } => "updating compute environment",
            ComputeEnvironmentOp::SetTags { .. } => "tagging",
            ComputeEnvironmentOp::Delete { .. } => {
                "disabling and deleting compute environment, then waiting until it is gone"
            }
        }
    }

    async fn run(op: &ComputeEnvironmentOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let cloud = step.cloud;
        match op {
            ComputeEnvironmentOp::Create { name, state } => {
                let request = request(cloud, name, state).await?;
                cloud.create_compute_environment(name, &request).await?;
            }
            ComputeEnvironmentOp::Update { name, state } => {
                let request = request(cloud, name, state).await?;
                cloud
                    .update_compute_environment(
                        name,
                        request.max_vcpus,
                        request.min_vcpus,
                        &request.security_group_ids,
                        request.service_role.as_deref(),
                    )
                    .await?;
            }
            ComputeEnvironmentOp::SetTags { name, tags, remove } => {
                let arn = cloud
                    .compute_environment(name)
                    .await?
                    .map(|ce| ce.arn)
                    .ok_or_else(|| {
                        refused(
                            "TagResource",
                            Address::new(Kind::BatchComputeEnvironment, name).to_string(),
                            "the compute environment does not exist".into(),
                        )
                    })?;
                cloud
                    .set_compute_environment_tags(&arn, name, tags, remove)
                    .await?;
            }
            ComputeEnvironmentOp::Delete { name } => cloud.delete_compute_environment(name).await?,
        }
        Ok(())
    }

    fn hint(op: &ComputeEnvironmentOp, error: &crate::aws::AwsError) -> Option<String> {
        match op {
            ComputeEnvironmentOp::Delete { .. } if error.message.contains("queue") => Some(
                "a job queue still uses it: remove it from the queue's `compute_environments` (or delete the queue) first".into(),
            ),
            _ => error.hint(),
        }
    }
}

/// What Batch needs, resolved from names: security group ids, the default VPC's subnets,
/// the instance profile's and service role's ARNs.
async fn request(
    cloud: &Cloud,
    name: &str,
    state: &ComputeEnvironmentState,
) -> Result<ComputeEnvironmentRequest, StepFailure> {
    let address = Address::new(Kind::BatchComputeEnvironment, name).to_string();
    let security_group_ids = cloud
        .security_group_ids(&address, &state.security_groups)
        .await?;
    let subnets = cloud.default_subnets().await?;
    if subnets.is_empty() {
        return Err(refused(
            "CreateComputeEnvironment",
            address,
            "the region has no default VPC subnets for the compute environment".into(),
        ));
    }
    let instance_role = match &state.instance_role {
        None => None,
        Some(profile) => Some(cloud.instance_profile_arn(profile).await?.ok_or_else(|| {
            refused(
                "CreateComputeEnvironment",
                address.clone(),
                format!("instance profile `{profile}` does not exist"),
            )
        })?),
    };
    let service_role = match &state.service_role {
        None => None,
        Some(role) => Some(cloud.role_arn(role).await?.ok_or_else(|| {
            refused(
                "CreateComputeEnvironment",
                address.clone(),
                format!("role `{role}` does not exist"),
            )
        })?),
    };
    Ok(ComputeEnvironmentRequest {
        kind: state.kind.clone(),
        max_vcpus: state.max_vcpus,
        min_vcpus: state.min_vcpus,
        instance_types: state.instance_types.iter().cloned().collect(),
        bid_percentage: state.bid_percentage,
        subnets,
        security_group_ids,
        instance_role,
        service_role,
        tags: state.tags.clone(),
    })
}
