//! IAM instance profiles: what gives an instance its role. tether makes one per declared
//! role that EC2 may assume, of the role's name and path; an instance's `role:` names it.
//! Owned like roles: by path, or by tags when adopted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    attribute, iam_path, ownership_tags, path_or_tag_ownership, Address, Attribute,
    AttributeFormat, Kind, Ownership,
};
use crate::spec::Spec;

use super::{
    removed_keys, Context, DesiredResource, Intent, ResourceKind, ResourceState, SpecContext, Step,
    StepFailure,
};

/// The comparable state of an instance profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileState {
    /// IAM path; `/tether/<project>/` marks ownership. Fixed at creation, not compared.
    pub path: String,
    /// The role in it (a profile holds at most one).
    pub role: Option<String>,
    /// All tags, tether's included.
    pub tags: BTreeMap<String, String>,
}

/// A profile's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum ProfileOp {
    Create {
        profile: String,
        path: String,
        tags: BTreeMap<String, String>,
    },
    /// Make the profile's tags exactly `tags`.
    SetTags {
        profile: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    AddRole {
        profile: String,
        role: String,
    },
    RemoveRole {
        profile: String,
        role: String,
    },
    /// Take its role out, then delete it.
    Delete {
        profile: String,
    },
}

/// The instance profile kind.
pub struct InstanceProfile;

/// Reads a listed instance profile: its tags.
pub(crate) async fn read(
    cloud: &crate::aws::Cloud,
    profile: crate::aws::ProfileInfo,
) -> Result<super::LiveResource, crate::aws::AwsError> {
    let tags = cloud.profile_tags(&profile.name).await?;
    Ok(super::LiveResource {
        address: Address::new(Kind::InstanceProfile, &profile.name),
        // A profile refers to its role: the role is deleted after it.
        depends_on: profile
            .roles
            .iter()
            .map(|role| Address::new(Kind::IamRole, role))
            .collect(),
        state: ResourceState::InstanceProfile(ProfileState {
            path: profile.path,
            role: profile.roles.into_iter().next(),
            tags,
        }),
    })
}

impl ResourceKind for InstanceProfile {
    const KIND: Kind = Kind::InstanceProfile;
    type State = ProfileState;
    type Op = ProfileOp;

    /// One per role EC2 may assume, after the role.
    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.roles
            .values()
            .filter(|role| role.for_instances())
            .map(|role| DesiredResource {
                address: Address::new(Kind::InstanceProfile, &role.name),
                state: ResourceState::InstanceProfile(ProfileState {
                    path: iam_path(env.project),
                    role: Some(role.name.clone()),
                    tags: ownership_tags(env.project, &role.name),
                }),
                adopt: role.adopt,
                depends_on: vec![Address::new(Kind::IamRole, &role.name)],
                location: role.location.clone(),
            })
            .collect()
    }

    fn attributes(profile: &ProfileState) -> Vec<Attribute> {
        vec![
            attribute("role", &profile.role, AttributeFormat::Value),
            attribute("tags", &profile.tags, AttributeFormat::Map),
        ]
    }

    fn ownership(profile: &ProfileState, project: &str) -> Ownership {
        path_or_tag_ownership(&profile.path, &profile.tags, project)
    }

    fn create(
        name: &str,
        profile: &ProfileState,
        _replacing: Option<&ProfileState>,
        _context: &Context,
    ) -> Vec<ProfileOp> {
        let mut ops = vec![ProfileOp::Create {
            profile: name.to_string(),
            path: profile.path.clone(),
            tags: profile.tags.clone(),
        }];
        ops.extend(profile.role.iter().map(|role| ProfileOp::AddRole {
            profile: name.to_string(),
            role: role.clone(),
        }));
        ops
    }

    /// Tags first (an adoption marks it); the old role goes out before the new one goes
    /// in: a profile holds one role.
    fn update(
        name: &str,
        before: &ProfileState,
        after: &ProfileState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<ProfileOp> {
        let mut ops = Vec::new();
        if before.tags != after.tags {
            ops.push(ProfileOp::SetTags {
                profile: name.to_string(),
                tags: after.tags.clone(),
                remove: removed_keys(&before.tags, &after.tags),
            });
        }
        if before.role != after.role {
            ops.extend(before.role.iter().map(|role| ProfileOp::RemoveRole {
                profile: name.to_string(),
                role: role.clone(),
            }));
            ops.extend(after.role.iter().map(|role| ProfileOp::AddRole {
                profile: name.to_string(),
                role: role.clone(),
            }));
        }
        ops
    }

    fn delete(
        name: &str,
        _before: &ProfileState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<ProfileOp> {
        vec![ProfileOp::Delete {
            profile: name.to_string(),
        }]
    }

    fn describe(op: &ProfileOp) -> &'static str {
        match op {
            ProfileOp::Create { .. } => "creating instance profile",
            ProfileOp::SetTags { .. } => "tagging",
            ProfileOp::AddRole { .. } => "adding role",
            ProfileOp::RemoveRole { .. } => "removing role",
            ProfileOp::Delete { .. } => "deleting instance profile",
        }
    }

    async fn run(op: &ProfileOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let cloud = step.cloud;
        Ok(match op {
            ProfileOp::Create {
                profile,
                path,
                tags,
            } => cloud.create_instance_profile(profile, path, tags).await,
            ProfileOp::SetTags {
                profile,
                tags,
                remove,
            } => cloud.set_profile_tags(profile, tags, remove).await,
            ProfileOp::AddRole { profile, role } => cloud.add_role_to_profile(profile, role).await,
            ProfileOp::RemoveRole { profile, role } => {
                cloud.remove_role_from_profile(profile, role).await
            }
            ProfileOp::Delete { profile } => cloud.delete_instance_profile(profile).await,
        }?)
    }
}
