//! AWS Budgets: a monthly cost budget on the project's tag, its alerts (notifications) and
//! their e-mail subscribers; and activating the project's tag as a cost allocation tag (a
//! Cost Explorer call), without which the budget's filter matches nothing.
//!
//! Budgets are addressed by account and name; the account is the credentials' own (STS).

use std::collections::BTreeMap;

use aws_sdk_budgets::types::{
    Budget, BudgetType, ComparisonOperator, Expression, MatchOption, Notification,
    NotificationType, Spend, Subscriber, SubscriptionType, TagValues, ThresholdType, TimeUnit,
};

use super::{classify, done_if, none_if, AwsError, AwsErrorKind, Cloud};
use crate::model::{Address, AlertKind, BudgetAlert, Kind};

/// A budget as AWS holds it, in tether's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetInfo {
    /// The monthly limit in USD, as AWS wrote it (`"100.0"`).
    pub limit_usd: String,
    /// The tags its filter expression counts: key and values.
    pub tag_filter: BTreeMap<String, Vec<String>>,
    pub alerts: Vec<BudgetAlert>,
}

fn address(name: &str) -> String {
    Address::new(Kind::Budget, name).to_string()
}

fn invalid(operation: &'static str, name: &str, message: String) -> AwsError {
    AwsError {
        operation,
        resource: address(name),
        code: None,
        message,
        kind: AwsErrorKind::Service,
    }
}

fn notification(alert: &BudgetAlert, name: &str) -> Result<Notification, AwsError> {
    let threshold: f64 = alert.percent.parse().map_err(|_| {
        invalid(
            "CreateNotification",
            name,
            format!("`{}` is no percentage", alert.percent),
        )
    })?;
    Notification::builder()
        .notification_type(match alert.kind {
            AlertKind::Actual => NotificationType::Actual,
            AlertKind::Forecasted => NotificationType::Forecasted,
        })
        .comparison_operator(ComparisonOperator::GreaterThan)
        .threshold(threshold)
        .threshold_type(ThresholdType::Percentage)
        .build()
        .map_err(|e| invalid("CreateNotification", name, e.to_string()))
}

fn subscribers(alert: &BudgetAlert, name: &str) -> Result<Vec<Subscriber>, AwsError> {
    alert
        .subscribers
        .iter()
        .map(|address| {
            Subscriber::builder()
                .subscription_type(SubscriptionType::Email)
                .address(address)
                .build()
                .map_err(|e| invalid("CreateNotification", name, e.to_string()))
        })
        .collect()
}

fn budget(
    name: &str,
    limit_usd: &str,
    tag_filter: &BTreeMap<String, Vec<String>>,
) -> Result<Budget, AwsError> {
    let limit = Spend::builder()
        .amount(limit_usd)
        .unit("USD")
        .build()
        .map_err(|e| invalid("CreateBudget", name, e.to_string()))?;
    // One tag (the project's): a filter expression of one tag condition.
    let mut filter = Expression::builder();
    for (key, values) in tag_filter {
        filter = filter.tags(
            TagValues::builder()
                .key(key)
                .set_values(Some(values.clone()))
                .match_options(MatchOption::Equals)
                .build(),
        );
    }
    Budget::builder()
        .budget_name(name)
        .budget_limit(limit)
        .time_unit(TimeUnit::Monthly)
        .budget_type(BudgetType::Cost)
        .filter_expression(filter.build())
        .build()
        .map_err(|e| invalid("CreateBudget", name, e.to_string()))
}

impl Cloud {
    /// The budget `name` of the credentials' account; `None` when there is none.
    pub async fn budget(&self, name: &str) -> Result<Option<BudgetInfo>, AwsError> {
        let account = self.account_id().await?;
        let result = self
            .budgets
            .describe_budget()
            .account_id(&account)
            .budget_name(name)
            .send()
            .await
            .map_err(|e| classify("DescribeBudget", &address(name), e));
        let Some(output) = none_if(result, "NotFoundException")? else {
            return Ok(None);
        };
        let Some(found) = output.budget() else {
            return Ok(None);
        };
        let limit_usd = found
            .budget_limit()
            .map(|spend| spend.amount().to_string())
            .unwrap_or_default();
        let tag_filter = found
            .filter_expression()
            .and_then(Expression::tags)
            .and_then(|tags| Some((tags.key()?.to_string(), tags.values().to_vec())))
            .into_iter()
            .collect();
        let mut alerts = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .budgets
                .describe_notifications_for_budget()
                .account_id(&account)
                .budget_name(name)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("DescribeNotificationsForBudget", &address(name), e))?;
            for notification in page.notifications() {
                let kind = match notification.notification_type() {
                    NotificationType::Forecasted => AlertKind::Forecasted,
                    _ => AlertKind::Actual,
                };
                let subscribers = self
                    .budgets
                    .describe_subscribers_for_notification()
                    .account_id(&account)
                    .budget_name(name)
                    .notification(notification.clone())
                    .send()
                    .await
                    .map_err(|e| classify("DescribeSubscribersForNotification", &address(name), e))?
                    .subscribers()
                    .iter()
                    .map(|s| s.address().to_string())
                    .collect();
                alerts.push(BudgetAlert {
                    kind,
                    percent: crate::model::decimal_text(notification.threshold()),
                    subscribers,
                });
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        alerts.sort();
        Ok(Some(BudgetInfo {
            limit_usd,
            tag_filter,
            alerts,
        }))
    }

    /// Creates the monthly cost budget `name` with its alerts; one that exists already
    /// (a retried step) is success.
    pub async fn create_budget(
        &self,
        name: &str,
        limit_usd: &str,
        tag_filter: &BTreeMap<String, Vec<String>>,
        alerts: &[BudgetAlert],
    ) -> Result<(), AwsError> {
        let account = self.account_id().await?;
        let mut request = self
            .budgets
            .create_budget()
            .account_id(&account)
            .budget(budget(name, limit_usd, tag_filter)?);
        for alert in alerts {
            request = request.notifications_with_subscribers(
                aws_sdk_budgets::types::NotificationWithSubscribers::builder()
                    .notification(notification(alert, name)?)
                    .set_subscribers(Some(subscribers(alert, name)?))
                    .build()
                    .map_err(|e| invalid("CreateBudget", name, e.to_string()))?,
            );
        }
        let result = request
            .send()
            .await
            .map_err(|e| classify("CreateBudget", &address(name), e));
        done_if(result, "DuplicateRecordException")
    }

    /// Sets the budget's limit and filter (UpdateBudget replaces the budget's definition;
    /// its alerts stay).
    pub async fn update_budget(
        &self,
        name: &str,
        limit_usd: &str,
        tag_filter: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), AwsError> {
        let account = self.account_id().await?;
        self.budgets
            .update_budget()
            .account_id(&account)
            .new_budget(budget(name, limit_usd, tag_filter)?)
            .send()
            .await
            .map_err(|e| classify("UpdateBudget", &address(name), e))?;
        Ok(())
    }

    /// Adds an alert; one that exists already is success.
    pub async fn create_budget_alert(
        &self,
        name: &str,
        alert: &BudgetAlert,
    ) -> Result<(), AwsError> {
        let account = self.account_id().await?;
        let result = self
            .budgets
            .create_notification()
            .account_id(&account)
            .budget_name(name)
            .notification(notification(alert, name)?)
            .set_subscribers(Some(subscribers(alert, name)?))
            .send()
            .await
            .map_err(|e| classify("CreateNotification", &address(name), e));
        done_if(result, "DuplicateRecordException")
    }

    /// Removes an alert (and its subscribers); one that is gone already is success.
    pub async fn delete_budget_alert(
        &self,
        name: &str,
        alert: &BudgetAlert,
    ) -> Result<(), AwsError> {
        let account = self.account_id().await?;
        let result = self
            .budgets
            .delete_notification()
            .account_id(&account)
            .budget_name(name)
            .notification(notification(alert, name)?)
            .send()
            .await
            .map_err(|e| classify("DeleteNotification", &address(name), e));
        done_if(result, "NotFoundException")
    }

    /// Deletes the budget; one that is gone already is success.
    pub async fn delete_budget(&self, name: &str) -> Result<(), AwsError> {
        let account = self.account_id().await?;
        let result = self
            .budgets
            .delete_budget()
            .account_id(&account)
            .budget_name(name)
            .send()
            .await
            .map_err(|e| classify("DeleteBudget", &address(name), e));
        done_if(result, "NotFoundException")
    }

    /// Activates `key` as a cost allocation tag. AWS answers a key billing has not seen yet
    /// (it lists a new key up to a day after resources first carry it) with an error for
    /// that key inside a successful answer: that is an error here too, so the plan offers
    /// the activation again next time.
    pub async fn activate_cost_tag(&self, key: &str) -> Result<(), AwsError> {
        use aws_sdk_costexplorer::types::{CostAllocationTagStatus, CostAllocationTagStatusEntry};
        let entry = CostAllocationTagStatusEntry::builder()
            .tag_key(key)
            .status(CostAllocationTagStatus::Active)
            .build()
            .map_err(|e| invalid("UpdateCostAllocationTagsStatus", key, e.to_string()))?;
        let output = self
            .ce
            .update_cost_allocation_tags_status()
            .cost_allocation_tags_status(entry)
            .send()
            .await
            .map_err(|e| classify("UpdateCostAllocationTagsStatus", key, e))?;
        match output.errors().first() {
            None => Ok(()),
            Some(error) => Err(AwsError {
                operation: "UpdateCostAllocationTagsStatus",
                resource: key.to_string(),
                code: error.code().map(str::to_string),
                message: error.message().unwrap_or("refused").to_string(),
                kind: AwsErrorKind::Service,
            }),
        }
    }
}
