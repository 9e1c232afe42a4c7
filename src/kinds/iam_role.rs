//! IAM roles: owned by their path like users and groups (or, when adopted, by their tags,
//! since IAM cannot change a role's path), with a trust policy (who may assume
//! the role), managed and inline policies, and tags. A role's `jobs:` shorthand becomes the
//! inline policy `tether-jobs`, derived from the jobs' S3 inputs and outputs, so the plan
//! shows exactly what it grants.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::{
    attribute, iam_path, ownership_tags, path_or_tag_ownership, Address, Attribute,
    AttributeFormat, Kind, Ownership,
};
use crate::policy;
use crate::spec::{Inputs, Output, RoleSpec, Spec, JOBS_POLICY};

use super::{
    policy_changes, removed_keys, Context, DesiredResource, Intent, ResourceKind, ResourceState,
    SpecContext, Step, StepFailure,
};

/// The comparable state of an IAM role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleState {
    /// IAM path; `/tether/<project>/` marks ownership. Fixed at creation, so not compared:
    /// an adopted role keeps its own.
    pub path: String,
    /// Who may assume the role, normalised.
    pub trust_policy: Value,
    /// Attached managed policy ARNs.
    pub policies: BTreeSet<String>,
    /// Inline policies by name, normalised.
    pub inline_policies: BTreeMap<String, Value>,
    /// All tags, tether's included.
    pub tags: BTreeMap<String, String>,
}

/// A role's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum RoleOp {
    Create {
        role: String,
        path: String,
        trust_policy: Value,
        tags: BTreeMap<String, String>,
    },
    SetTrustPolicy {
        role: String,
        trust_policy: Value,
    },
    /// Make the role's tags exactly `tags`.
    SetTags {
        role: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    AttachPolicy {
        role: String,
        arn: String,
    },
    DetachPolicy {
        role: String,
        arn: String,
    },
    PutInlinePolicy {
        role: String,
        name: String,
        document: Value,
    },
    DeleteInlinePolicy {
        role: String,
        name: String,
    },
    /// Take the role out of its instance profiles, detach and delete its policies, then
    /// delete it: the order IAM requires.
    Delete {
        role: String,
    },
}

/// The IAM role kind.
pub struct IamRole;

/// Reads a listed role: its trust policy, tags and policies; `None` when it went away
/// between the list and the read (as if never listed).
pub(crate) async fn read(
    cloud: &crate::aws::Cloud,
    name: &str,
) -> Result<Option<super::LiveResource>, crate::aws::AwsError> {
    let (info, policies, inline) = tokio::try_join!(
        cloud.role(name),
        cloud.role_policies(name),
        cloud.role_inline_policies(name),
    )?;
    Ok(info.map(|info| super::LiveResource {
        address: Address::new(Kind::IamRole, name),
        depends_on: Vec::new(),
        state: ResourceState::IamRole(RoleState {
            path: info.path,
            trust_policy: policy::normalise(&info.trust_policy),
            policies,
            inline_policies: inline
                .iter()
                .map(|(name, document)| (name.clone(), policy::normalise(document)))
                .collect(),
            tags: info.tags,
        }),
    }))
}

impl ResourceKind for IamRole {
    const KIND: Kind = Kind::IamRole;
    type State = RoleState;
    type Op = RoleOp;

    /// The role's path marks the owner and its tags carry the ownership tags too; the jobs
    /// it serves add `tether-jobs`.
    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.roles
            .values()
            .map(|role| {
                let mut tags = role.tags.clone();
                tags.extend(ownership_tags(env.project, &role.name));
                let mut inline_policies: BTreeMap<String, Value> = role
                    .inline_policies
                    .iter()
                    .map(|(name, document)| (name.clone(), policy::normalise(document)))
                    .collect();
                if let Some(grants) = job_grants(spec, role, env.region) {
                    inline_policies.insert(JOBS_POLICY.to_string(), policy::normalise(&grants));
                }
                DesiredResource {
                    address: Address::new(Kind::IamRole, &role.name),
                    state: ResourceState::IamRole(RoleState {
                        path: iam_path(env.project),
                        trust_policy: policy::normalise(&role.trust_policy),
                        policies: role.policies.clone(),
                        inline_policies,
                        tags,
                    }),
                    adopt: role.adopt,
                    depends_on: Vec::new(),
                    location: role.location.clone(),
                }
            })
            .collect()
    }

    fn attributes(role: &RoleState) -> Vec<Attribute> {
        use AttributeFormat::{Document, Map, Value as Scalar};
        vec![
            attribute("trust_policy", &role.trust_policy, Document),
            attribute("policies", &role.policies, Scalar),
            attribute("inline_policies", &role.inline_policies, Document),
            attribute("tags", &role.tags, Map),
        ]
    }

    fn ownership(role: &RoleState, project: &str) -> Ownership {
        path_or_tag_ownership(&role.path, &role.tags, project)
    }

    fn disowned(_role: &RoleState) -> Result<RoleState, &'static str> {
        Err("IAM cannot change a role's path, which marks it as the project's; keep it in the spec, or remove it from the spec to delete it")
    }

    fn create(
        name: &str,
        role: &RoleState,
        _replacing: Option<&RoleState>,
        context: &Context,
    ) -> Vec<RoleOp> {
        let mut ops = vec![RoleOp::Create {
            role: name.to_string(),
            path: role.path.clone(),
            trust_policy: role.trust_policy.clone(),
            tags: role.tags.clone(),
        }];
        let bare = RoleState {
            policies: BTreeSet::new(),
            inline_policies: BTreeMap::new(),
            ..role.clone()
        };
        ops.extend(Self::update(name, &bare, role, &Intent::default(), context));
        ops
    }

    /// Ownership (tags) first, so an adoption marks the role before changing it; grants
    /// are added before old ones go, so the role never briefly has neither.
    fn update(
        name: &str,
        before: &RoleState,
        after: &RoleState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<RoleOp> {
        let role = || name.to_string();
        let mut ops = Vec::new();
        if before.tags != after.tags {
            ops.push(RoleOp::SetTags {
                role: role(),
                tags: after.tags.clone(),
                remove: removed_keys(&before.tags, &after.tags),
            });
        }
        if before.trust_policy != after.trust_policy {
            ops.push(RoleOp::SetTrustPolicy {
                role: role(),
                trust_policy: after.trust_policy.clone(),
            });
        }
        let changes = policy_changes(
            (&before.policies, &before.inline_policies),
            (&after.policies, &after.inline_policies),
        );
        ops.extend(changes.attach.into_iter().map(|arn| RoleOp::AttachPolicy {
            role: role(),
            arn: arn.clone(),
        }));
        ops.extend(
            changes
                .put
                .into_iter()
                .map(|(policy, document)| RoleOp::PutInlinePolicy {
                    role: role(),
                    name: policy.clone(),
                    document: document.clone(),
                }),
        );
        ops.extend(changes.detach.into_iter().map(|arn| RoleOp::DetachPolicy {
            role: role(),
            arn: arn.clone(),
        }));
        ops.extend(
            changes
                .delete
                .into_iter()
                .map(|policy| RoleOp::DeleteInlinePolicy {
                    role: role(),
                    name: policy.clone(),
                }),
        );
        ops
    }

    fn delete(
        name: &str,
        _before: &RoleState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<RoleOp> {
        vec![RoleOp::Delete {
            role: name.to_string(),
        }]
    }

    fn describe(op: &RoleOp) -> &'static str {
        match op {
            RoleOp::Create { .. } => "creating role",
            RoleOp::SetTrustPolicy { .. } => "setting trust policy",
            RoleOp::SetTags { .. } => "tagging",
            RoleOp::AttachPolicy { .. } => "attaching policy",
            RoleOp::DetachPolicy { .. } => "detaching policy",
            RoleOp::PutInlinePolicy { .. } => "putting inline policy",
            RoleOp::DeleteInlinePolicy { .. } => "deleting inline policy",
            RoleOp::Delete { .. } => "deleting role",
        }
    }

    async fn run(op: &RoleOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let cloud = step.cloud;
        Ok(match op {
            RoleOp::Create {
                role,
                path,
                trust_policy,
                tags,
            } => cloud.create_role(role, path, trust_policy, tags).await,
            RoleOp::SetTrustPolicy { role, trust_policy } => {
                cloud.set_trust_policy(role, trust_policy).await
            }
            RoleOp::SetTags { role, tags, remove } => cloud.set_role_tags(role, tags, remove).await,
            RoleOp::AttachPolicy { role, arn } => cloud.attach_role_policy(role, arn).await,
            RoleOp::DetachPolicy { role, arn } => cloud.detach_role_policy(role, arn).await,
            RoleOp::PutInlinePolicy {
                role,
                name,
                document,
            } => cloud.put_role_policy(role, name, document).await,
            RoleOp::DeleteInlinePolicy { role, name } => cloud.delete_role_policy(role, name).await,
            RoleOp::Delete { role } => cloud.delete_role(role).await,
        }?)
    }

    fn policy_arns(role: &RoleState) -> Vec<&str> {
        role.policies.iter().map(String::as_str).collect()
    }
}

/// What the role's jobs need from S3, least privilege: reading the objects under each S3
/// input prefix, and writing under each S3 output prefix (the outputs the tasks upload from
/// the instance; a job's summary is written by the machine that started it); for a job on
/// Batch, also reading and writing its stage (`.tether/<project>/<job>/` in the input
/// bucket: the share in, the result out) and reading tether's build
/// (`.tether/<project>/bin/`) unless its image has one. `None` when
/// the role serves no job with S3 inputs or outputs.
fn job_grants(spec: &Spec, role: &RoleSpec, region: &str) -> Option<Value> {
    let partition = policy::partition(region);
    let mut reads = BTreeSet::new();
    let mut writes = BTreeSet::new();
    for job in role.jobs.iter().filter_map(|name| spec.jobs.get(name)) {
        if let Some(Inputs::S3 { bucket, prefix }) = &job.inputs {
            reads.insert(format!("arn:{partition}:s3:::{bucket}/{prefix}*"));
            // A Batch child reads its share and writes its result next to the inputs, and
            // fetches tether's build from there unless its image carries one.
            if let crate::spec::Placement::Batch(batch) = &job.placement {
                let stage = format!(
                    "arn:{partition}:s3:::{bucket}/.tether/{}/{}/*",
                    spec.project, job.name
                );
                reads.insert(stage.clone());
                writes.insert(stage);
                if !batch.tether_in_image {
                    reads.insert(format!(
                        "arn:{partition}:s3:::{bucket}/.tether/{}/bin/*",
                        spec.project
                    ));
                }
            }
        }
        if let Some(Output::S3Prefix { bucket, prefix }) = &job.output {
            writes.insert(format!("arn:{partition}:s3:::{bucket}/{prefix}*"));
        }
    }
    let mut statements = Vec::new();
    if !reads.is_empty() {
        statements.push(json!({
            "Sid": "ReadJobInputs",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": reads.into_iter().collect::<Vec<_>>(),
        }));
    }
    if !writes.is_empty() {
        statements.push(json!({
            "Sid": "WriteJobOutputs",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": writes.into_iter().collect::<Vec<_>>(),
        }));
    }
    (!statements.is_empty()).then(|| json!({"Version": "2012-10-17", "Statement": statements}))
}
