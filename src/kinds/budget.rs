//! The project's monthly cost budget (AWS Budgets): a limit, a filter on the project's tag,
//! alerts with their e-mail subscribers, and the project's tag active as a cost allocation
//! tag (else the filter matches nothing). Budgets take no tags in every setup, so the
//! project owns its budget by its name (`tether-<project>`) and the record it wrote when it
//! made it; a budget of that name without the record is adopted only when the spec says so.

use serde::{Deserialize, Serialize};

use crate::aws::{AwsError, TagStatus};
use crate::model::{
    attribute, budget_name, budget_tag_filter, Address, Attribute, AttributeFormat, BudgetAlert,
    Kind, Ownership, OwnershipRecord, TAG_PROJECT,
};
use crate::spec::Spec;

use super::record::RecordOp;
use super::{
    Context, DesiredResource, Intent, LiveResource, ResourceKind, ResourceState, SpecContext, Step,
    StepFailure,
};

/// A budget, desired or live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetState {
    /// The month's limit in USD, as decimal text (`100`, `42.5`).
    pub limit_usd: String,
    /// The tags the budget counts: `tether:project` = the project.
    pub tag_filter: std::collections::BTreeMap<String, Vec<String>>,
    /// Its alerts, sorted.
    pub alerts: Vec<BudgetAlert>,
    /// `tether:project` is an active cost allocation tag of the account (shared by every
    /// project in it: activated for the budget, never deactivated).
    pub cost_tag_active: bool,
    /// The project's record of making or adopting it (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<OwnershipRecord>,
}

/// The budget's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum BudgetOp {
    ActivateCostTag,
    Create {
        name: String,
        limit_usd: String,
        tag_filter: std::collections::BTreeMap<String, Vec<String>>,
        alerts: Vec<BudgetAlert>,
    },
    Update {
        name: String,
        limit_usd: String,
        tag_filter: std::collections::BTreeMap<String, Vec<String>>,
    },
    AddAlert {
        name: String,
        alert: BudgetAlert,
    },
    RemoveAlert {
        name: String,
        alert: BudgetAlert,
    },
    Delete {
        name: String,
    },
    Record(RecordOp),
}

/// The budget kind.
pub struct Budget;

/// A limit as tether writes it (`100.0` from AWS is `100`).
fn limit_text(amount: &str) -> String {
    amount
        .parse::<f64>()
        .map_or_else(|_| amount.to_string(), crate::model::decimal_text)
}

/// Reads the project's budget, the record of it, and whether the project's tag is an
/// active cost allocation tag; `None` when the account has no budget of its name.
pub(crate) async fn read(
    cloud: &crate::aws::Cloud,
    project: &str,
) -> Result<Option<LiveResource>, AwsError> {
    let name = budget_name(project);
    let parameter = crate::parameters::budget_record_parameter(project, &name);
    let (found, record, tag) = tokio::try_join!(
        cloud.budget(&name),
        super::record::read(cloud, &parameter),
        cloud.cost_tag_status(TAG_PROJECT),
    )?;
    let Some(found) = found else {
        return Ok(None);
    };
    Ok(Some(LiveResource {
        address: Address::new(Kind::Budget, &name),
        state: ResourceState::Budget(BudgetState {
            limit_usd: limit_text(&found.limit_usd),
            tag_filter: found.tag_filter,
            alerts: found.alerts,
            cost_tag_active: tag == TagStatus::Active,
            record,
        }),
        depends_on: Vec::new(),
    }))
}

impl ResourceKind for Budget {
    const KIND: Kind = Kind::Budget;
    type State = BudgetState;
    type Op = BudgetOp;

    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.budget
            .iter()
            .map(|budget| DesiredResource {
                address: Address::new(Kind::Budget, budget_name(env.project)),
                state: ResourceState::Budget(BudgetState {
                    limit_usd: budget.monthly_usd.clone(),
                    tag_filter: budget_tag_filter(env.project),
                    alerts: budget.alerts.clone(),
                    cost_tag_active: true,
                    record: None,
                }),
                adopt: budget.adopt,
                depends_on: Vec::new(),
                location: budget.location.clone(),
            })
            .collect()
    }

    fn attributes(state: &BudgetState) -> Vec<Attribute> {
        vec![
            attribute("monthly_usd", &state.limit_usd, AttributeFormat::Value),
            attribute("tag_filter", &state.tag_filter, AttributeFormat::Map),
            attribute("alerts", &state.alerts, AttributeFormat::Document),
            attribute(
                "cost_tag_active",
                state.cost_tag_active,
                AttributeFormat::Value,
            ),
        ]
    }

    fn ownership(state: &BudgetState, _project: &str) -> Ownership {
        match state.record {
            Some(_) => Ownership::Owned,
            None => Ownership::Unowned,
        }
    }

    /// The setting stays as it is; only the project's record of it goes.
    fn disowned(state: &BudgetState) -> Result<BudgetState, &'static str> {
        Ok(BudgetState {
            record: None,
            ..state.clone()
        })
    }

    fn forget(
        name: &str,
        _before: &BudgetState,
        _after: &BudgetState,
        context: &Context,
    ) -> Vec<BudgetOp> {
        vec![BudgetOp::Record(RecordOp::Delete {
            parameter: crate::parameters::budget_record_parameter(&context.project, name),
        })]
    }

    /// The tag first (the budget counts nothing without it), then the record, then the
    /// budget with its alerts: a run killed between the last two leaves a budget its record
    /// already vouches for, which the next apply completes ("already exists" is success),
    /// never one that looks like someone else's. A record without a budget makes the next
    /// plan create it.
    fn create(
        name: &str,
        after: &BudgetState,
        _replacing: Option<&BudgetState>,
        context: &Context,
    ) -> Vec<BudgetOp> {
        vec![
            BudgetOp::ActivateCostTag,
            BudgetOp::Record(context.record(
                crate::parameters::budget_record_parameter(&context.project, name),
                name,
                OwnershipRecord::Created,
                Vec::new(),
            )),
            BudgetOp::Create {
                name: name.to_string(),
                limit_usd: after.limit_usd.clone(),
                tag_filter: after.tag_filter.clone(),
                alerts: after.alerts.clone(),
            },
        ]
    }

    /// In place: the limit and filter, alerts added before old ones go (someone is always
    /// told), the tag activated; an adoption records first.
    fn update(
        name: &str,
        before: &BudgetState,
        after: &BudgetState,
        intent: &Intent,
        context: &Context,
    ) -> Vec<BudgetOp> {
        let mut ops = Vec::new();
        if intent.adopt {
            ops.push(BudgetOp::Record(context.record(
                crate::parameters::budget_record_parameter(&context.project, name),
                name,
                OwnershipRecord::Adopted,
                Vec::new(),
            )));
        }
        if after.cost_tag_active && !before.cost_tag_active {
            ops.push(BudgetOp::ActivateCostTag);
        }
        if before.limit_usd != after.limit_usd || before.tag_filter != after.tag_filter {
            ops.push(BudgetOp::Update {
                name: name.to_string(),
                limit_usd: after.limit_usd.clone(),
                tag_filter: after.tag_filter.clone(),
            });
        }
        // An alert whose subscribers change is one alert removed and one added.
        for alert in after.alerts.iter().filter(|a| !before.alerts.contains(a)) {
            if let Some(old) = before
                .alerts
                .iter()
                .find(|old| old.kind == alert.kind && old.percent == alert.percent)
            {
                ops.push(BudgetOp::RemoveAlert {
                    name: name.to_string(),
                    alert: old.clone(),
                });
            }
            ops.push(BudgetOp::AddAlert {
                name: name.to_string(),
                alert: alert.clone(),
            });
        }
        for alert in before.alerts.iter().filter(|old| {
            !after
                .alerts
                .iter()
                .any(|a| a.kind == old.kind && a.percent == old.percent)
        }) {
            ops.push(BudgetOp::RemoveAlert {
                name: name.to_string(),
                alert: alert.clone(),
            });
        }
        ops
    }

    /// The budget, then the record; the cost allocation tag stays active (other projects
    /// count on it).
    fn delete(
        name: &str,
        _before: &BudgetState,
        _intent: &Intent,
        context: &Context,
    ) -> Vec<BudgetOp> {
        vec![
            BudgetOp::Delete {
                name: name.to_string(),
            },
            BudgetOp::Record(RecordOp::Delete {
                parameter: crate::parameters::budget_record_parameter(&context.project, name),
            }),
        ]
    }

    fn describe(op: &BudgetOp) -> &'static str {
        match op {
            BudgetOp::ActivateCostTag => "activating the project's cost allocation tag",
            BudgetOp::Create { .. } => "creating budget",
            BudgetOp::Update { .. } => "updating budget",
            BudgetOp::AddAlert { .. } => "adding budget alert",
            BudgetOp::RemoveAlert { .. } => "removing budget alert",
            BudgetOp::Delete { .. } => "deleting budget",
            BudgetOp::Record(record) => record.describe(),
        }
    }

    async fn run(op: &BudgetOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let cloud = step.cloud;
        Ok(match op {
            BudgetOp::ActivateCostTag => cloud.activate_cost_tag(TAG_PROJECT).await,
            BudgetOp::Create {
                name,
                limit_usd,
                tag_filter,
                alerts,
            } => {
                cloud
                    .create_budget(name, limit_usd, tag_filter, alerts)
                    .await
            }
            BudgetOp::Update {
                name,
                limit_usd,
                tag_filter,
            } => cloud.update_budget(name, limit_usd, tag_filter).await,
            BudgetOp::AddAlert { name, alert } => cloud.create_budget_alert(name, alert).await,
            BudgetOp::RemoveAlert { name, alert } => cloud.delete_budget_alert(name, alert).await,
            BudgetOp::Delete { name } => cloud.delete_budget(name).await,
            BudgetOp::Record(record) => return record.run(step).await,
        }?)
    }

    fn hint(op: &BudgetOp, error: &AwsError) -> Option<String> {
        match op {
            BudgetOp::ActivateCostTag => Some(
                "only the organization's management account may activate cost allocation tags, and billing lists a new tag key up to a day after resources first carry it: apply again later, or activate `tether:project` in the Billing console".into(),
            ),
            _ => error.hint(),
        }
    }
}
