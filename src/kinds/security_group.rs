//! Security groups of the default VPC: owned by tags, with ingress rules added before old
//! ones are revoked so access never lapses.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{
    attribute, ownership, Attribute, AttributeFormat, IngressRule, Kind, Ownership,
};

use crate::model::{ownership_tags, Address};
use crate::spec::Spec;

use super::{
    removed_keys, Context, DesiredResource, Intent, ResourceKind, ResourceState, SpecContext, Step,
    StepFailure,
};

/// The comparable state of a security group (of the default VPC).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupState {
    /// Cannot change after creation.
    pub description: String,
    pub tags: BTreeMap<String, String>,
    pub ingress: BTreeSet<IngressRule>,
}

/// A security group's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum SecurityGroupOp {
    Create {
        name: String,
        description: String,
        tags: BTreeMap<String, String>,
    },
    SetTags {
        name: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    AuthorizeIngress {
        group: String,
        rules: Vec<IngressRule>,
    },
    RevokeIngress {
        group: String,
        rules: Vec<IngressRule>,
    },
    Delete {
        name: String,
    },
}

/// The security group kind.
pub struct SecurityGroup;

/// A listed security group as a live resource.
pub(crate) fn read(group: crate::aws::SecurityGroupInfo) -> super::LiveResource {
    super::LiveResource {
        address: Address::new(Kind::SecurityGroup, &group.name),
        state: ResourceState::SecurityGroup(SecurityGroupState {
            description: group.description,
            tags: group.tags,
            ingress: group.ingress,
        }),
        depends_on: Vec::new(),
    }
}

impl ResourceKind for SecurityGroup {
    const KIND: Kind = Kind::SecurityGroup;
    type State = SecurityGroupState;
    type Op = SecurityGroupOp;

    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.security_groups
            .values()
            .map(|group| DesiredResource {
                address: Address::new(Kind::SecurityGroup, &group.name),
                state: ResourceState::SecurityGroup(SecurityGroupState {
                    description: group.description.clone(),
                    tags: ownership_tags(env.project, &group.name),
                    ingress: group
                        .ingress
                        .iter()
                        .map(|rule| IngressRule {
                            protocol: rule.protocol.as_str().to_string(),
                            from_port: rule.port.into(),
                            to_port: rule.port.into(),
                            source: rule.cidr.clone(),
                        })
                        .collect(),
                }),
                adopt: group.adopt,
                depends_on: Vec::new(),
                location: group.location.clone(),
            })
            .collect()
    }

    fn attributes(group: &SecurityGroupState) -> Vec<Attribute> {
        use AttributeFormat::{Map, Value as Scalar};
        vec![
            attribute("description", &group.description, Scalar).forcing(),
            attribute("tags", &group.tags, Map),
            attribute(
                "ingress",
                group
                    .ingress
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
                Scalar,
            ),
        ]
    }

    fn ownership(group: &SecurityGroupState, project: &str) -> Ownership {
        ownership(&group.tags, project)
    }

    fn disowned(group: &SecurityGroupState) -> Result<SecurityGroupState, &'static str> {
        Ok(SecurityGroupState {
            tags: crate::model::without_tether_tags(&group.tags),
            ..group.clone()
        })
    }

    fn create(
        name: &str,
        group: &SecurityGroupState,
        _replacing: Option<&SecurityGroupState>,
        _context: &Context,
    ) -> Vec<SecurityGroupOp> {
        let mut ops = vec![SecurityGroupOp::Create {
            name: name.to_string(),
            description: group.description.clone(),
            tags: group.tags.clone(),
        }];
        if !group.ingress.is_empty() {
            ops.push(SecurityGroupOp::AuthorizeIngress {
                group: name.to_string(),
                rules: group.ingress.iter().cloned().collect(),
            });
        }
        ops
    }

    fn update(
        name: &str,
        before: &SecurityGroupState,
        after: &SecurityGroupState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<SecurityGroupOp> {
        let mut ops = Vec::new();
        if before.tags != after.tags {
            ops.push(SecurityGroupOp::SetTags {
                name: name.to_string(),
                tags: after.tags.clone(),
                remove: removed_keys(&before.tags, &after.tags),
            });
        }
        // New rules first, so access never lapses while rules are swapped.
        let added: Vec<IngressRule> = after.ingress.difference(&before.ingress).cloned().collect();
        let removed: Vec<IngressRule> =
            before.ingress.difference(&after.ingress).cloned().collect();
        if !added.is_empty() {
            ops.push(SecurityGroupOp::AuthorizeIngress {
                group: name.to_string(),
                rules: added,
            });
        }
        if !removed.is_empty() {
            ops.push(SecurityGroupOp::RevokeIngress {
                group: name.to_string(),
                rules: removed,
            });
        }
        ops
    }

    fn delete(
        name: &str,
        _before: &SecurityGroupState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<SecurityGroupOp> {
        vec![SecurityGroupOp::Delete {
            name: name.to_string(),
        }]
    }

    fn describe(op: &SecurityGroupOp) -> &'static str {
        match op {
            SecurityGroupOp::Create { .. } => "creating security group",
            SecurityGroupOp::SetTags { .. } => "tagging",
            SecurityGroupOp::AuthorizeIngress { .. } => "adding ingress rules",
            SecurityGroupOp::RevokeIngress { .. } => "removing ingress rules",
            SecurityGroupOp::Delete { .. } => "deleting security group",
        }
    }

    async fn run(op: &SecurityGroupOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let cloud = step.cloud;
        Ok(match op {
            SecurityGroupOp::Create {
                name,
                description,
                tags,
            } => cloud.create_security_group(name, description, tags).await,
            SecurityGroupOp::SetTags { name, tags, remove } => {
                cloud.set_security_group_tags(name, tags, remove).await
            }
            SecurityGroupOp::AuthorizeIngress { group, rules } => {
                cloud.authorize_ingress(group, rules).await
            }
            SecurityGroupOp::RevokeIngress { group, rules } => {
                cloud.revoke_ingress(group, rules).await
            }
            SecurityGroupOp::Delete { name } => cloud.delete_security_group(name).await,
        }?)
    }
}
