//! IAM groups: owned by their path (`/tether/<project>/`, since groups take no tags), with
//! attached managed policies.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{
    attribute, path_ownership, Attribute, AttributeFormat::Value as Scalar, Kind, Ownership,
};

use crate::model::{iam_path, Address};
use crate::spec::Spec;

use super::{
    Context, DesiredResource, Intent, ResourceKind, ResourceState, SpecContext, Step, StepFailure,
};

/// The comparable state of an IAM group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// IAM path; `/tether/<project>/` marks ownership, since groups take no tags.
    pub path: String,
    /// Attached managed policy ARNs.
    pub policies: BTreeSet<String>,
}

/// A group's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupOp {
    Create {
        group: String,
        path: String,
    },
    SetPath {
        group: String,
        path: String,
    },
    AttachPolicy {
        group: String,
        arn: String,
    },
    DetachPolicy {
        group: String,
        arn: String,
    },
    /// Detaches its policies and removes its members first, as IAM requires.
    Delete {
        group: String,
    },
}

/// The IAM group kind.
pub struct IamGroup;

/// Reads a listed group: its attached policies.
pub(crate) async fn read(
    cloud: &crate::aws::Cloud,
    group: crate::aws::IamEntity,
) -> Result<super::LiveResource, crate::aws::AwsError> {
    let policies = cloud.group_policies(&group.name).await?;
    Ok(super::LiveResource {
        address: Address::new(Kind::IamGroup, &group.name),
        state: ResourceState::IamGroup(GroupState {
            path: group.path,
            policies,
        }),
        depends_on: Vec::new(),
    })
}

impl ResourceKind for IamGroup {
    const KIND: Kind = Kind::IamGroup;
    type State = GroupState;
    type Op = GroupOp;

    /// Groups take no tags: their IAM path records the owner.
    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.groups
            .values()
            .map(|group| DesiredResource {
                address: Address::new(Kind::IamGroup, &group.name),
                state: ResourceState::IamGroup(GroupState {
                    path: iam_path(env.project),
                    policies: group.policies.clone(),
                }),
                adopt: group.adopt,
                depends_on: Vec::new(),
                location: group.location.clone(),
            })
            .collect()
    }

    fn attributes(group: &GroupState) -> Vec<Attribute> {
        vec![
            attribute("path", &group.path, Scalar),
            attribute("policies", &group.policies, Scalar),
        ]
    }

    fn ownership(group: &GroupState, project: &str) -> Ownership {
        path_ownership(&group.path, project)
    }

    /// Back to IAM's root path, `/`: the path is the group's only mark of ownership.
    fn disowned(group: &GroupState) -> Result<GroupState, &'static str> {
        Ok(GroupState {
            path: "/".to_string(),
            ..group.clone()
        })
    }

    fn create(
        name: &str,
        group: &GroupState,
        _replacing: Option<&GroupState>,
        _context: &Context,
    ) -> Vec<GroupOp> {
        let mut ops = vec![GroupOp::Create {
            group: name.to_string(),
            path: group.path.clone(),
        }];
        ops.extend(group.policies.iter().map(|arn| GroupOp::AttachPolicy {
            group: name.to_string(),
            arn: arn.clone(),
        }));
        ops
    }

    fn update(
        name: &str,
        before: &GroupState,
        after: &GroupState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<GroupOp> {
        let mut ops = Vec::new();
        if before.path != after.path {
            ops.push(GroupOp::SetPath {
                group: name.to_string(),
                path: after.path.clone(),
            });
        }
        ops.extend(
            after
                .policies
                .difference(&before.policies)
                .map(|arn| GroupOp::AttachPolicy {
                    group: name.to_string(),
                    arn: arn.clone(),
                }),
        );
        ops.extend(
            before
                .policies
                .difference(&after.policies)
                .map(|arn| GroupOp::DetachPolicy {
                    group: name.to_string(),
                    arn: arn.clone(),
                }),
        );
        ops
    }

    fn delete(
        name: &str,
        _before: &GroupState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<GroupOp> {
        vec![GroupOp::Delete {
            group: name.to_string(),
        }]
    }

    fn describe(op: &GroupOp) -> &'static str {
        match op {
            GroupOp::Create { .. } => "creating group",
            GroupOp::SetPath { .. } => "setting path",
            GroupOp::AttachPolicy { .. } => "attaching policy",
            GroupOp::DetachPolicy { .. } => "detaching policy",
            GroupOp::Delete { .. } => "deleting group",
        }
    }

    async fn run(op: &GroupOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let cloud = step.cloud;
        Ok(match op {
            GroupOp::Create { group, path } => cloud.create_group(group, path).await,
            GroupOp::SetPath { group, path } => cloud.set_group_path(group, path).await,
            GroupOp::AttachPolicy { group, arn } => cloud.attach_group_policy(group, arn).await,
            GroupOp::DetachPolicy { group, arn } => cloud.detach_group_policy(group, arn).await,
            GroupOp::Delete { group } => cloud.delete_group(group).await,
        }?)
    }

    fn policy_arns(group: &GroupState) -> Vec<&str> {
        group.policies.iter().map(String::as_str).collect()
    }
}
