//! The account password policy: a singleton owned through the project's record, like the
//! alias; a plan names each setting a change makes weaker.

use serde::{Deserialize, Serialize};

use crate::model::{
    attribute, setting_value_hash, Attribute, AttributeFormat, Kind, Ownership, OwnershipRecord,
    PasswordPolicyState,
};

use crate::model::{Address, ACCOUNT_PASSWORD_POLICY};
use crate::spec::Spec;

use super::account_alias::{setting_change, setting_record};
use super::record::RecordOp;
use super::{
    Context, DesiredResource, Intent, ResourceKind, ResourceState, SpecContext, Step, StepFailure,
};

/// The password policy as a resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasswordPolicySetting {
    pub policy: PasswordPolicyState,
    /// How the project came to own it (live only; `None`: not this project's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<OwnershipRecord>,
}

/// The policy's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyOp {
    Put { policy: PasswordPolicyState },
    Delete,
    Record(RecordOp),
}

/// The password policy kind.
pub struct PasswordPolicy;

/// Reads the password policy and the project's record of it; `None` when the account has
/// none.
pub(crate) async fn read(
    cloud: &crate::aws::Cloud,
    project: &str,
) -> Result<Option<super::LiveResource>, crate::aws::AwsError> {
    let Some(policy) = cloud.password_policy().await? else {
        return Ok(None);
    };
    let record =
        super::record::read_setting(cloud, project, ACCOUNT_PASSWORD_POLICY, &policy).await?;
    Ok(Some(super::LiveResource {
        address: Address::new(Kind::Account, ACCOUNT_PASSWORD_POLICY),
        state: ResourceState::PasswordPolicy(PasswordPolicySetting { policy, record }),
        depends_on: Vec::new(),
    }))
}

impl ResourceKind for PasswordPolicy {
    const KIND: Kind = Kind::Account;
    type State = PasswordPolicySetting;
    type Op = PolicyOp;

    fn desired(spec: &Spec, _env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.account
            .password_policy
            .iter()
            .map(|policy| DesiredResource {
                address: Address::new(Kind::Account, ACCOUNT_PASSWORD_POLICY),
                state: ResourceState::PasswordPolicy(PasswordPolicySetting {
                    policy: policy.policy.clone(),
                    record: None,
                }),
                adopt: policy.adopt,
                depends_on: Vec::new(),
                location: policy.location.clone(),
            })
            .collect()
    }

    fn attributes(state: &PasswordPolicySetting) -> Vec<Attribute> {
        vec![attribute(
            "password_policy",
            &state.policy,
            AttributeFormat::Map,
        )]
    }

    fn ownership(state: &PasswordPolicySetting, _project: &str) -> Ownership {
        match state.record {
            Some(_) => Ownership::Owned,
            None => Ownership::Unowned,
        }
    }

    /// The setting stays as it is; only the project's record of it goes.
    fn disowned(state: &PasswordPolicySetting) -> Result<PasswordPolicySetting, &'static str> {
        Ok(PasswordPolicySetting {
            record: None,
            ..state.clone()
        })
    }

    fn forget(
        name: &str,
        _before: &PasswordPolicySetting,
        _after: &PasswordPolicySetting,
        context: &Context,
    ) -> Vec<PolicyOp> {
        vec![PolicyOp::Record(RecordOp::Delete {
            parameter: crate::parameters::setting_record_parameter(&context.project, name),
        })]
    }

    /// The record first, as for the alias.
    fn create(
        name: &str,
        state: &PasswordPolicySetting,
        _replacing: Option<&PasswordPolicySetting>,
        context: &Context,
    ) -> Vec<PolicyOp> {
        vec![
            PolicyOp::Record(setting_record(
                context,
                name,
                OwnershipRecord::Created,
                &[setting_value_hash(&state.policy)],
            )),
            PolicyOp::Put {
                policy: state.policy.clone(),
            },
        ]
    }

    /// As for the alias: the record names the old and the new policy while it changes.
    fn update(
        name: &str,
        before: &PasswordPolicySetting,
        after: &PasswordPolicySetting,
        intent: &Intent,
        context: &Context,
    ) -> Vec<PolicyOp> {
        let put = (before.policy != after.policy).then(|| PolicyOp::Put {
            policy: after.policy.clone(),
        });
        setting_change(
            context,
            name,
            (before.record, intent),
            (&before.policy, &after.policy),
            put,
            PolicyOp::Record,
        )
    }

    /// The record last, as for the alias.
    fn delete(
        name: &str,
        _before: &PasswordPolicySetting,
        _intent: &Intent,
        context: &Context,
    ) -> Vec<PolicyOp> {
        vec![
            PolicyOp::Delete,
            PolicyOp::Record(RecordOp::Delete {
                parameter: crate::parameters::setting_record_parameter(&context.project, name),
            }),
        ]
    }

    fn describe(op: &PolicyOp) -> &'static str {
        match op {
            PolicyOp::Put { .. } => "setting password policy",
            PolicyOp::Delete => "deleting password policy",
            PolicyOp::Record(record) => record.describe(),
        }
    }

    async fn run(op: &PolicyOp, step: &Step<'_>) -> Result<(), StepFailure> {
        Ok(match op {
            PolicyOp::Put { policy } => step.cloud.put_password_policy(policy).await,
            PolicyOp::Delete => step.cloud.delete_password_policy().await,
            PolicyOp::Record(record) => return record.run(step).await,
        }?)
    }

    fn setting_record(state: &PasswordPolicySetting) -> Option<OwnershipRecord> {
        state.record
    }

    /// A shorter minimum, a character class no longer required, passwords that live
    /// longer or may be reused sooner, expiry no longer hard. Deleting the policy weakens
    /// everything it sets.
    fn weakens(
        before: &PasswordPolicySetting,
        after: Option<&PasswordPolicySetting>,
    ) -> Vec<String> {
        match after {
            Some(after) => weakened_settings(&before.policy, &after.policy),
            None => vec!["the policy is deleted: IAM's defaults apply".to_string()],
        }
    }
}
fn weakened_settings(old: &PasswordPolicyState, new: &PasswordPolicyState) -> Vec<String> {
    let mut weaker = Vec::new();
    if new.minimum_length < old.minimum_length {
        weaker.push(format!(
            "minimum_length {} -> {}",
            old.minimum_length, new.minimum_length
        ));
    }
    for (name, was, is) in [
        ("require_symbols", old.require_symbols, new.require_symbols),
        ("require_numbers", old.require_numbers, new.require_numbers),
        (
            "require_uppercase",
            old.require_uppercase,
            new.require_uppercase,
        ),
        (
            "require_lowercase",
            old.require_lowercase,
            new.require_lowercase,
        ),
        ("hard_expiry", old.hard_expiry, new.hard_expiry),
    ] {
        if was && !is {
            weaker.push(format!("{name} true -> false"));
        }
    }
    let show = |days: Option<u16>| days.map_or("none".to_string(), |d| d.to_string());
    // A maximum age or a reuse count of none is the weakest of all.
    let longer = match (old.max_age_days, new.max_age_days) {
        (Some(_), None) => true,
        (Some(was), Some(is)) => is > was,
        _ => false,
    };
    if longer {
        weaker.push(format!(
            "max_age_days {} -> {}",
            show(old.max_age_days),
            show(new.max_age_days)
        ));
    }
    let fewer = match (old.reuse_prevention, new.reuse_prevention) {
        (Some(_), None) => true,
        (Some(was), Some(is)) => is < was,
        _ => false,
    };
    if fewer {
        weaker.push(format!(
            "reuse_prevention {} -> {}",
            show(old.reuse_prevention),
            show(new.reuse_prevention)
        ));
    }
    weaker
}
