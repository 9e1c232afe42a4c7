//! The account alias (the name in the console's sign-in link): a singleton that takes no
//! tags, owned through the project's record in Parameter Store (`created` or `adopted`).

use serde::{Deserialize, Serialize};

use crate::model::{
    attribute, setting_value_hash, Attribute, AttributeFormat, Kind, Ownership, OwnershipRecord,
};

use crate::model::{Address, ACCOUNT_ALIAS};
use crate::spec::Spec;

use super::record::RecordOp;
use super::{
    Context, DesiredResource, Intent, ResourceKind, ResourceState, SpecContext, Step, StepFailure,
};

/// The account alias as a resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountAliasState {
    pub alias: String,
    /// How the project came to own it (live only; `None`: not this project's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<OwnershipRecord>,
}

/// The alias's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum AliasOp {
    /// An account has one alias: the old one, if any, is removed first.
    Set {
        alias: String,
        previous: Option<String>,
    },
    Delete {
        alias: String,
    },
    Record(RecordOp),
}

/// The account alias kind.
pub struct AccountAlias;

/// The record operation for account setting `name`, naming the values it may hold
/// (`model::setting_value_hash` of each): the record is the project's evidence for those
/// values only.
pub(super) fn setting_record(
    context: &Context,
    name: &str,
    record: OwnershipRecord,
    values: &[String],
) -> RecordOp {
    context.record(
        crate::parameters::setting_record_parameter(&context.project, name),
        name,
        record,
        values.to_vec(),
    )
}

/// The operations that change an account setting the project owns (recorded as
/// `recorded`), or adopts now, from value `before` to value `after`, with `change` the call
/// that writes it (`None` when the value stays). The record names both values while the
/// change is under way, then the new one only: a crash at any point leaves a setting whose
/// value the record names, so the next run still finds it the project's, and the setting
/// is never the project's for a value it did not write.
pub(super) fn setting_change<Op, Value: Serialize>(
    context: &Context,
    name: &str,
    (recorded, intent): (Option<OwnershipRecord>, &Intent),
    (before, after): (&Value, &Value),
    change: Option<Op>,
    wrap: impl Fn(RecordOp) -> Op,
) -> Vec<Op> {
    if change.is_none() && !intent.adopt {
        return Vec::new();
    }
    let record = if intent.adopt {
        OwnershipRecord::Adopted
    } else {
        recorded.unwrap_or(OwnershipRecord::Created)
    };
    let (old, new) = (setting_value_hash(before), setting_value_hash(after));
    match change {
        Some(change) => vec![
            wrap(setting_record(context, name, record, &[old, new.clone()])),
            change,
            wrap(setting_record(context, name, record, &[new])),
        ],
        None => vec![wrap(setting_record(context, name, record, &[new]))],
    }
}

/// Reads the account alias and the project's record of it; `None` when the account has no
/// alias.
pub(crate) async fn read(
    cloud: &crate::aws::Cloud,
    project: &str,
) -> Result<Option<super::LiveResource>, crate::aws::AwsError> {
    let Some(alias) = cloud.account_alias().await? else {
        return Ok(None);
    };
    let record = super::record::read_setting(cloud, project, ACCOUNT_ALIAS, &alias).await?;
    Ok(Some(super::LiveResource {
        address: Address::new(Kind::Account, ACCOUNT_ALIAS),
        state: ResourceState::AccountAlias(AccountAliasState { alias, record }),
        depends_on: Vec::new(),
    }))
}

impl ResourceKind for AccountAlias {
    const KIND: Kind = Kind::Account;
    type State = AccountAliasState;
    type Op = AliasOp;

    fn desired(spec: &Spec, _env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.account
            .alias
            .iter()
            .map(|alias| DesiredResource {
                address: Address::new(Kind::Account, ACCOUNT_ALIAS),
                state: ResourceState::AccountAlias(AccountAliasState {
                    alias: alias.name.clone(),
                    record: None,
                }),
                adopt: alias.adopt,
                depends_on: Vec::new(),
                location: alias.location.clone(),
            })
            .collect()
    }

    fn attributes(state: &AccountAliasState) -> Vec<Attribute> {
        vec![attribute("alias", &state.alias, AttributeFormat::Value)]
    }

    /// The project's record in Parameter Store says whether it owns the setting.
    fn ownership(state: &AccountAliasState, _project: &str) -> Ownership {
        match state.record {
            Some(_) => Ownership::Owned,
            None => Ownership::Unowned,
        }
    }

    /// The setting stays as it is; only the project's record of it goes.
    fn disowned(state: &AccountAliasState) -> Result<AccountAliasState, &'static str> {
        Ok(AccountAliasState {
            record: None,
            ..state.clone()
        })
    }

    fn forget(
        name: &str,
        _before: &AccountAliasState,
        _after: &AccountAliasState,
        context: &Context,
    ) -> Vec<AliasOp> {
        vec![AliasOp::Record(RecordOp::Delete {
            parameter: crate::parameters::setting_record_parameter(&context.project, name),
        })]
    }

    /// The record goes first: a crash after it leaves a setting the project owns, never one
    /// it set but would refuse as someone else's.
    fn create(
        name: &str,
        state: &AccountAliasState,
        _replacing: Option<&AccountAliasState>,
        context: &Context,
    ) -> Vec<AliasOp> {
        vec![
            AliasOp::Record(setting_record(
                context,
                name,
                OwnershipRecord::Created,
                &[setting_value_hash(&state.alias)],
            )),
            AliasOp::Set {
                alias: state.alias.clone(),
                previous: None,
            },
        ]
    }

    /// An adoption or a change is recorded first (see `setting_change`), so that a crash
    /// leaves the setting owned, never half-adopted.
    fn update(
        name: &str,
        before: &AccountAliasState,
        after: &AccountAliasState,
        intent: &Intent,
        context: &Context,
    ) -> Vec<AliasOp> {
        let set = (before.alias != after.alias).then(|| AliasOp::Set {
            alias: after.alias.clone(),
            previous: Some(before.alias.clone()),
        });
        setting_change(
            context,
            name,
            (before.record, intent),
            (&before.alias, &after.alias),
            set,
            AliasOp::Record,
        )
    }

    /// The record goes last: a crash before it leaves a record of a setting that is gone,
    /// which is harmless, never a setting the project would no longer own.
    fn delete(
        name: &str,
        before: &AccountAliasState,
        _intent: &Intent,
        context: &Context,
    ) -> Vec<AliasOp> {
        vec![
            AliasOp::Delete {
                alias: before.alias.clone(),
            },
            AliasOp::Record(RecordOp::Delete {
                parameter: crate::parameters::setting_record_parameter(&context.project, name),
            }),
        ]
    }

    fn describe(op: &AliasOp) -> &'static str {
        match op {
            AliasOp::Set { .. } => "setting account alias",
            AliasOp::Delete { .. } => "deleting account alias",
            AliasOp::Record(record) => record.describe(),
        }
    }

    async fn run(op: &AliasOp, step: &Step<'_>) -> Result<(), StepFailure> {
        Ok(match op {
            AliasOp::Set { alias, previous } => {
                step.cloud
                    .set_account_alias(alias, previous.as_deref())
                    .await
            }
            AliasOp::Delete { alias } => step.cloud.delete_account_alias(alias).await,
            AliasOp::Record(record) => return record.run(step).await,
        }?)
    }

    fn setting_record(state: &AccountAliasState) -> Option<OwnershipRecord> {
        state.record
    }
}
